//! One simulated agent: connect, register, heartbeat, answer the server; reconnect if asked to.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use fleetgate_protocol::nonce::NonceCache;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::shell::{Flood, Reply, respond};
use super::{FleetConfig, FleetStats};
use crate::backoff::{Backoff, random_unit};
use crate::failover::ServerList;

/// How one connection ended.
enum Ended {
    /// It never got as far as `registered`.
    Failed,
    /// It was registered, then the socket closed.
    Closed,
}

/// Runs one agent until it fails (without reconnect) or forever (with reconnect).
pub(super) async fn simulated_agent(
    index: usize,
    secret: String,
    config: FleetConfig,
    stats: Arc<FleetStats>,
) {
    let mut backoff = Backoff::default();
    let Some(mut servers) = ServerList::new(config.servers.clone()) else {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    loop {
        let started = Instant::now();
        let ended = one_connection(index, &secret, servers.current(), &config, &stats).await;
        match ended {
            Ended::Failed => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                servers.failed();
            }
            Ended::Closed => servers.served(),
        }
        if !config.reconnect {
            return;
        }
        backoff.connection_ended(started.elapsed());
        tokio::time::sleep(backoff.next_delay(random_unit())).await;
    }
}

fn register_frame(index: usize, secret: &str, flow_control: bool) -> String {
    let capabilities: Vec<&str> = crate::connection::CAPABILITIES
        .into_iter()
        .filter(|name| flow_control || *name != "flow_control")
        .collect();
    let register = json!({
        "type": "register", "hostname": format!("sim-{index}"), "ip": format!("10.{}.{}.{}", index / 65536 % 256, index / 256 % 256, index % 256),
        "osInfo": {"distro": "debian", "release": "12", "kernel": "6.1.0-sim"}, "secretKey": secret, "platform": "linux",
        "agentVersion": env!("CARGO_PKG_VERSION"), "capabilities": capabilities,
    });
    format!("{register}\n")
}

fn fake_metrics(index: usize, tick: u64, uptime: u64) -> Value {
    let wobble = ((index as u64 * 7 + tick * 13) % 100) as f64;
    json!({
        "cpuUsage": wobble / 2.0, "ramUsage": 40.0 + wobble / 10.0, "ramTotal": 16.0, "ramUsed": 6.4 + wobble / 50.0,
        "diskUsage": 63.0, "diskTotal": 480.0, "diskUsed": 302.4,
        "disks": [{"path": "/", "usage": 63.0, "total": 480.0, "used": 302.4}],
        "uptime": uptime,
    })
}

/// `uptime` of a heartbeat: fake, or milliseconds since the stamp epoch.
fn uptime(config: &FleetConfig, tick: u64) -> u64 {
    match config.stamp_uptime_since {
        Some(epoch) => SystemTime::now()
            .duration_since(epoch)
            .map_or(0, |since| since.as_millis() as u64),
        None => 86_400 + tick * config.heartbeat.as_secs(),
    }
}

/// One connection: register, then heartbeat and answer until the socket ends.
async fn one_connection(
    index: usize,
    secret: &str,
    server: &str,
    config: &FleetConfig,
    stats: &FleetStats,
) -> Ended {
    let Ok((socket, _)) = tokio_tungstenite::connect_async(server).await else {
        return Ended::Failed;
    };
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = socket.split();
    if sink
        .send(Message::text(register_frame(
            index,
            secret,
            config.flow_control,
        )))
        .await
        .is_err()
    {
        return Ended::Failed;
    }
    stats.registers_sent.fetch_add(1, Ordering::Relaxed);
    let machine_id = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                let reply: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if reply["type"] == "registered" {
                    break reply["machineId"].as_str().unwrap_or_default().to_owned();
                }
                if reply["type"] == "error" {
                    return Ended::Failed;
                }
            }
            Some(Ok(_)) => continue,
            _ => return Ended::Failed,
        }
    };
    stats.registered.fetch_add(1, Ordering::Relaxed);
    stats.online.fetch_add(1, Ordering::Relaxed);
    let mut nonces = NonceCache::new(1024);
    let mut heartbeat = tokio::time::interval(config.heartbeat);
    let mut tick = 0u64;
    let mut flood: Option<FloodRun> = None;
    'serve: loop {
        let flooding = flood.as_ref().is_some_and(|run| run.flood.has_credit());
        let due = flood.as_ref().and_then(FloodRun::due);
        tokio::select! {
            // Heartbeats first: a flood never holds them back.
            biased;
            _ = heartbeat.tick() => {
                tick += 1;
                let beat = json!({ "type": "heartbeat", "machineId": machine_id, "metrics": fake_metrics(index, tick, uptime(config, tick)),
                    "ports": [{"port": 22, "proto": "tcp", "service": "sshd", "state": "LISTEN"}] });
                if sink.send(Message::text(format!("{beat}\n"))).await.is_err() { break; }
                stats.heartbeats.fetch_add(1, Ordering::Relaxed);
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    for reply in respond(&text, &machine_id, secret, &config.shell, &mut nonces) {
                        match reply {
                            Reply::Frame(frame) => {
                                if sink.send(Message::text(frame)).await.is_err() { break 'serve; }
                            }
                            Reply::Flood(started) => flood = Some(FloodRun::new(started)),
                            Reply::Credit { session_id, bytes } => {
                                if let Some(run) = flood.as_mut().filter(|run| run.flood.session_id() == session_id) {
                                    run.flood.grant(bytes);
                                }
                            }
                        }
                    }
                }
                // Pings are answered by the WebSocket layer; keep going.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Binary(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
            _ = wait_until(due), if flooding => {
                let next = flood.as_mut().and_then(FloodRun::next_frame);
                match next {
                    Some(frame) => {
                        if sink.send(Message::text(frame)).await.is_err() { break; }
                    }
                    None => flood = None,
                }
            }
        }
    }
    stats.online.fetch_sub(1, Ordering::Relaxed);
    Ended::Closed
}

/// Waits until `due`, or not at all.
async fn wait_until(due: Option<Instant>) {
    if let Some(at) = due {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// A flood in progress: the next frame, the pace and the credit.
struct FloodRun {
    flood: Flood,
    next: u64,
    started: Instant,
    sent: u64,
}

impl FloodRun {
    fn new(flood: Flood) -> Self {
        Self {
            flood,
            next: 0,
            started: Instant::now(),
            sent: 0,
        }
    }

    /// When the next frame is due (paced floods only).
    fn due(&self) -> Option<Instant> {
        self.flood.due(self.started, self.sent)
    }

    /// The next frame's text, spending its bytes; `None` once the flood has ended.
    fn next_frame(&mut self) -> Option<String> {
        let frame = self.flood.frame_at(self.next)?;
        self.next += 1;
        self.sent += frame.output_bytes;
        self.flood.spend(frame.output_bytes);
        Some(frame.text)
    }
}
