//! The raw relay: the physical limit a gateway is compared with. It accepts one socket on
//! `/agent` and one on `/client` and forwards frames between them untouched: no auth, no
//! signing, no parsing, no database. On `/register` it plays the least a server can do for a
//! connecting agent: it answers the first message with `registered` and reads the rest. It runs
//! as its own process, like the server under test.

use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use crate::fleet::Fleet;
use crate::proc_stats::{self, ProcSample};
use fleetgate_agent::simulate::FleetConfig;

type Socket = WebSocketStream<TcpStream>;

/// The simulated agent's key behind the relay (the relay checks nothing; the agent verifies
/// envelopes with it and the bench signs them with it).
pub const AGENT_SECRET: &str = "5f1e0b9c8d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c";

/// Serves the relay on `addr` until the process is killed (`fleetgate-bench relay`).
pub async fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    // The same listen backlog as the server under test, so that a storm is not refused here.
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(4096)?;
    let (agents_tx, mut agents) = mpsc::unbounded_channel::<Socket>();
    let (clients_tx, mut clients) = mpsc::unbounded_channel::<Socket>();
    tokio::spawn(async move {
        while let (Some(agent), Some(client)) = (agents.recv().await, clients.recv().await) {
            tokio::spawn(forward_pair(agent, client));
        }
    });
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let (agents_tx, clients_tx) = (agents_tx.clone(), clients_tx.clone());
        tokio::spawn(async move {
            let mut path = String::new();
            #[allow(clippy::result_large_err)] // the signature tungstenite asks for
            let callback = |request: &Request, response: Response| {
                path = request.uri().path().to_owned();
                Ok(response)
            };
            let Ok(socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                return;
            };
            if path == "/register" {
                answer_register(socket).await;
                return;
            }
            let queue = if path == "/agent" {
                &agents_tx
            } else {
                &clients_tx
            };
            if queue.send(socket).is_err() {
                eprintln!("relay: pairing task gone; dropping a {path} socket");
            }
        });
    }
}

/// Answers the agent's first message with `registered`, then reads until it closes.
async fn answer_register(mut socket: Socket) {
    use tokio_tungstenite::tungstenite::Message;
    const REGISTERED: &str =
        r#"{"type":"registered","machineId":"00000000-0000-4000-8000-000000000000"}"#;
    if !matches!(socket.next().await, Some(Ok(Message::Text(_)))) {
        return;
    }
    if socket.send(Message::text(REGISTERED)).await.is_err() {
        return;
    }
    while let Some(Ok(_)) = socket.next().await {}
}

/// Forwards every frame both ways until either side closes.
async fn forward_pair(agent: Socket, client: Socket) {
    let (mut agent_tx, mut agent_rx) = agent.split();
    let (mut client_tx, mut client_rx) = client.split();
    let upstream = async {
        while let Some(Ok(message)) = client_rx.next().await {
            if agent_tx.send(message).await.is_err() {
                break;
            }
        }
    };
    let downstream = async {
        while let Some(Ok(message)) = agent_rx.next().await {
            if client_tx.send(message).await.is_err() {
                break;
            }
        }
    };
    tokio::select! { _ = upstream => {}, _ = downstream => {} }
}

/// A relay process started by the benchmark.
pub struct RelayProcess {
    child: Child,
    addr: SocketAddr,
}

impl RelayProcess {
    /// Starts `fleetgate-bench relay` on a free port and waits until it accepts.
    pub async fn start() -> anyhow::Result<Self> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let exe = std::env::current_exe()?;
        let child = Command::new(exe)
            .args(["relay", "--bind", &addr.to_string()])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting the relay")?;
        let started = Instant::now();
        while TcpStream::connect(addr).await.is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                bail!("relay not listening after 10 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(Self { child, addr })
    }

    /// Starts a relay and one simulated agent (with `config`) behind it.
    pub async fn start_with_agent(mut config: FleetConfig) -> anyhow::Result<(Self, Fleet)> {
        let relay = Self::start().await?;
        config.servers = vec![relay.agent_url()];
        let fleet = Fleet::start(config, AGENT_SECRET);
        Ok((relay, fleet))
    }

    /// `ws://host:port/agent`.
    pub fn agent_url(&self) -> String {
        format!("ws://{}/agent", self.addr)
    }

    /// `ws://host:port/register`: answers `register` and nothing else.
    pub fn register_url(&self) -> String {
        format!("ws://{}/register", self.addr)
    }

    /// `ws://host:port/client`.
    pub fn client_url(&self) -> String {
        format!("ws://{}/client", self.addr)
    }

    /// Memory and CPU of the relay.
    pub fn sample(&self) -> anyhow::Result<ProcSample> {
        proc_stats::sample(self.child.id().context("relay not running")?)
    }
}
