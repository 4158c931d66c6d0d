//! The operator's end of one terminal, through fleetgate (web protocol) or through the raw
//! relay (speaking the server side of the agent protocol itself), behind one interface so
//! both are measured by the same code.

use anyhow::{Context, bail};
use fleetgate_protocol::envelope::{SignedKind, sign_now};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What arrived for the terminal.
#[derive(Debug, PartialEq, Eq)]
pub enum TerminalEvent {
    /// Output text.
    Output(String),
    /// The server dropped this many bytes because the reader fell behind.
    Dropped(u64),
    /// The terminal ended.
    Closed,
    /// Anything else (pings, other frames).
    Other,
}

/// One end of a terminal an operator types into and reads from.
#[allow(async_fn_in_trait)]
pub trait TerminalPeer {
    /// Sends keystrokes.
    async fn send_input(&mut self, data: &str) -> anyhow::Result<()>;
    /// Waits for the next frame.
    async fn next_event(&mut self) -> anyhow::Result<TerminalEvent>;
}

async fn connect(request: impl IntoClientRequest + Unpin) -> anyhow::Result<Socket> {
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true).await?;
    Ok(socket)
}

async fn next_json(socket: &mut Socket) -> anyhow::Result<Value> {
    loop {
        match socket.next().await.context("socket closed")?? {
            Message::Text(text) => return Ok(serde_json::from_str(&text)?),
            Message::Close(frame) => bail!("socket closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// A terminal through fleetgate's `/ws/web`.
pub struct FleetgateTerminal {
    socket: Socket,
    session_id: String,
}

impl FleetgateTerminal {
    /// Connects with a JWT and opens a terminal on `machine_id`.
    pub async fn open(
        addr: std::net::SocketAddr,
        token: &str,
        machine_id: &str,
    ) -> anyhow::Result<Self> {
        let mut request = format!("ws://{addr}/ws/web").into_client_request()?;
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {token}").parse()?);
        let mut socket = connect(request).await?;
        let hello = next_json(&mut socket).await?;
        anyhow::ensure!(hello["type"] == "hello", "expected hello, got {hello}");
        let spawn =
            json!({"type": "spawn_terminal", "machineId": machine_id, "cols": 80, "rows": 24});
        socket.send(Message::text(spawn.to_string())).await?;
        loop {
            let reply = next_json(&mut socket).await?;
            match reply["type"].as_str() {
                Some("terminal_opened") => {
                    let session_id = reply["sessionId"].as_str().context("sessionId")?.to_owned();
                    return Ok(Self { socket, session_id });
                }
                Some("error") => bail!("spawn_terminal refused: {reply}"),
                _ => continue,
            }
        }
    }
}

impl TerminalPeer for FleetgateTerminal {
    async fn send_input(&mut self, data: &str) -> anyhow::Result<()> {
        let input = json!({"type": "terminal_input", "sessionId": self.session_id, "data": data});
        Ok(self.socket.send(Message::text(input.to_string())).await?)
    }

    async fn next_event(&mut self) -> anyhow::Result<TerminalEvent> {
        let frame = next_json(&mut self.socket).await?;
        Ok(match frame["type"].as_str() {
            Some("terminal_output") => {
                TerminalEvent::Output(frame["data"].as_str().unwrap_or_default().to_owned())
            }
            Some("output_dropped") => TerminalEvent::Dropped(frame["bytes"].as_u64().unwrap_or(0)),
            Some("terminal_closed") => TerminalEvent::Closed,
            Some("error") => bail!("server error: {frame}"),
            _ => TerminalEvent::Other,
        })
    }
}

/// A terminal through the raw relay: this end plays the server's part of the agent protocol
/// (answers `register`, sends `spawn_shell` and signed `terminal_stdin`), so the simulated
/// agent does exactly the work it does behind fleetgate.
pub struct RelayTerminal {
    socket: Socket,
    session_id: String,
    machine_id: String,
    secret: String,
}

impl RelayTerminal {
    /// Connects to the relay's client side, completes the agent's registration and spawns a shell.
    pub async fn open(client_url: &str, secret: &str) -> anyhow::Result<Self> {
        let mut socket = connect(client_url).await?;
        let register = next_json(&mut socket).await?;
        anyhow::ensure!(
            register["type"] == "register",
            "expected register, got {register}"
        );
        let machine_id = "00000000-0000-4000-8000-000000000001".to_owned();
        let session_id = "0123456789abcdef0123456789abcdef".to_owned();
        let registered = json!({"type": "registered", "machineId": machine_id});
        socket.send(Message::text(registered.to_string())).await?;
        let spawn = json!({"type": "spawn_shell", "data": {"sessionId": session_id}});
        socket.send(Message::text(spawn.to_string())).await?;
        Ok(Self {
            socket,
            session_id,
            machine_id,
            secret: secret.to_owned(),
        })
    }
}

impl TerminalPeer for RelayTerminal {
    async fn send_input(&mut self, data: &str) -> anyhow::Result<()> {
        let payload = json!({ "data": data }).to_string();
        let frame = sign_now(
            SignedKind::TerminalInput,
            &self.session_id,
            &self.machine_id,
            &payload,
            &self.secret,
        );
        Ok(self.socket.send(Message::text(frame)).await?)
    }

    async fn next_event(&mut self) -> anyhow::Result<TerminalEvent> {
        let frame = next_json(&mut self.socket).await?;
        Ok(match frame["type"].as_str() {
            Some("terminal_output") => {
                TerminalEvent::Output(frame["output"].as_str().unwrap_or_default().to_owned())
            }
            Some("terminal_exit") => TerminalEvent::Closed,
            _ => TerminalEvent::Other,
        })
    }
}
