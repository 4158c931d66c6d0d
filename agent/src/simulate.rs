//! The fleet simulator: many agents in one process, each with its own key, plausible fake
//! metrics and ports, an echo "shell" and a fake command runner. The load generator of the
//! benchmarks; it verifies every signed message like the real agent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use fleetgate_protocol::envelope::{SignedKind, verify_envelope};
use fleetgate_protocol::nonce::NonceCache;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Counts shared by all simulated agents.
#[derive(Debug, Default)]
pub struct FleetStats {
    /// Sockets opened.
    pub connected: AtomicU64,
    /// Agents that received `registered`.
    pub registered: AtomicU64,
    /// Connections or registrations that failed.
    pub failed: AtomicU64,
    /// Heartbeats sent.
    pub heartbeats: AtomicU64,
}

impl FleetStats {
    /// `connected / registered / failed / heartbeats` as a line.
    pub fn summary(&self) -> String {
        format!(
            "connected={} registered={} failed={} heartbeats={}",
            self.connected.load(Ordering::Relaxed),
            self.registered.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.heartbeats.load(Ordering::Relaxed),
        )
    }
}

/// Settings of a simulated fleet.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// `ws://host:port/ws/agent`.
    pub server: String,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// New connections per second.
    pub ramp_per_sec: u32,
}

/// Reads secrets from a `machine add --count N --out FILE` file (`id secret` per line) or from a
/// file of bare keys.
pub fn read_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.split_whitespace().last())
        .map(fleetgate_protocol::key::machine_secret_from_key)
        .collect()
}

/// Starts one simulated agent per key, paced by the ramp; returns when all have ended.
pub async fn run_fleet(config: FleetConfig, keys: Vec<String>, stats: Arc<FleetStats>) {
    let pause = Duration::from_secs_f64(1.0 / f64::from(config.ramp_per_sec.max(1)));
    let mut agents = tokio::task::JoinSet::new();
    for (index, secret) in keys.into_iter().enumerate() {
        let (config, stats) = (config.clone(), stats.clone());
        agents.spawn(async move { simulated_agent(index, secret, config, stats).await });
        tokio::time::sleep(pause).await;
    }
    while agents.join_next().await.is_some() {}
}

fn fake_metrics(index: usize, tick: u64) -> Value {
    let wobble = ((index as u64 * 7 + tick * 13) % 100) as f64;
    json!({
        "cpuUsage": wobble / 2.0, "ramUsage": 40.0 + wobble / 10.0, "ramTotal": 16.0, "ramUsed": 6.4 + wobble / 50.0,
        "diskUsage": 63.0, "diskTotal": 480.0, "diskUsed": 302.4,
        "disks": [{"path": "/", "usage": 63.0, "total": 480.0, "used": 302.4}],
        "uptime": 86_400 + tick * 5,
    })
}

/// One simulated agent: register, heartbeat, answer shells and commands; never reconnects.
async fn simulated_agent(
    index: usize,
    secret: String,
    config: FleetConfig,
    stats: Arc<FleetStats>,
) {
    let Ok((socket, _)) = tokio_tungstenite::connect_async(config.server.as_str()).await else {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = socket.split();
    let register = json!({
        "type": "register", "hostname": format!("sim-{index}"), "ip": format!("10.{}.{}.{}", index / 65536 % 256, index / 256 % 256, index % 256),
        "osInfo": {"distro": "debian", "release": "12", "kernel": "6.1.0-sim"}, "secretKey": secret, "platform": "linux",
        "agentVersion": env!("CARGO_PKG_VERSION"), "capabilities": ["terminal_close", "terminal_exit", "nonce_check"],
    });
    if sink
        .send(Message::text(format!("{register}\n")))
        .await
        .is_err()
    {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let machine_id = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                let reply: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if reply["type"] == "registered" {
                    break reply["machineId"].as_str().unwrap_or_default().to_owned();
                }
                if reply["type"] == "error" {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            Some(Ok(_)) => continue,
            _ => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    };
    stats.registered.fetch_add(1, Ordering::Relaxed);
    let mut nonces = NonceCache::new(1024);
    let mut heartbeat = tokio::time::interval(config.heartbeat);
    let mut tick = 0u64;
    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                tick += 1;
                let beat = json!({ "type": "heartbeat", "machineId": machine_id, "metrics": fake_metrics(index, tick),
                    "ports": [{"port": 22, "proto": "tcp", "service": "sshd", "state": "LISTEN"}] });
                if sink.send(Message::text(format!("{beat}\n"))).await.is_err() { return; }
                stats.heartbeats.fetch_add(1, Ordering::Relaxed);
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    for reply in respond(&text, &machine_id, &secret, &mut nonces) {
                        if sink.send(Message::text(reply)).await.is_err() { return; }
                    }
                }
                // Pings are answered by the WebSocket layer; keep going.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Binary(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
            }
        }
    }
}

/// The echo shell and fake command runner of a simulated agent.
fn respond(text: &str, machine_id: &str, secret: &str, nonces: &mut NonceCache) -> Vec<String> {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    if frame["type"] == "spawn_shell" {
        let session = frame["data"]["sessionId"].as_str().unwrap_or_default();
        return vec![
            json!({"type": "terminal_output", "sessionId": session, "output": "sim$ "}).to_string(),
        ];
    }
    let Ok(envelope) = verify_envelope(text, secret, Utc::now(), nonces) else {
        return Vec::new();
    };
    let payload: Value = serde_json::from_str(&envelope.payload).unwrap_or(Value::Null);
    match envelope.kind {
        SignedKind::TerminalInput => {
            let data = payload["data"].as_str().unwrap_or_default();
            vec![json!({"type": "terminal_output", "sessionId": envelope.session_id, "output": data}).to_string()]
        }
        SignedKind::ExecuteCommand => {
            let id = payload["commandId"].as_str().unwrap_or_default();
            vec![
                json!({"type": "command_response", "machineId": machine_id, "commandId": id, "output": "simulated\n", "exitCode": 0, "completed": false}).to_string(),
                json!({"type": "command_response", "machineId": machine_id, "commandId": id, "output": "", "exitCode": 0, "completed": true}).to_string(),
            ]
        }
        SignedKind::TerminalClose => {
            vec![
                json!({"type": "terminal_exit", "sessionId": envelope.session_id, "exitCode": 0})
                    .to_string(),
            ]
        }
        SignedKind::TerminalResize => Vec::new(),
    }
}
