//! One connection to the server: register, heartbeat, and act on server messages — signed ones
//! only after verifying HMAC, timestamp and nonce.

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use fleetgate_protocol::envelope::{SignedKind, VerifiedEnvelope, verify_envelope};
use fleetgate_protocol::nonce::NonceCache;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::commands;
use crate::system::{Sampler, listening_ports, primary_ip, register_fields};
use crate::terminal::Terminals;

/// Capabilities this agent announces (docs/protocol.md section 7).
pub const CAPABILITIES: [&str; 5] = [
    "terminal_close",
    "terminal_exit",
    "nonce_check",
    "ordered",
    "flow_control",
];
/// Nonces remembered for replay protection.
const NONCE_CACHE: usize = 100_000;

/// What the agent's tasks hand to the socket writer.
#[derive(Debug)]
pub enum Outbound {
    /// A frame to send.
    Frame(String),
    /// A session's shell ended (its output stream closed).
    ShellEnded(String),
}

/// Queues a frame; `false` once the connection is gone.
pub async fn send(out: &mpsc::Sender<Outbound>, frame: String) -> bool {
    let sent = out.send(Outbound::Frame(frame)).await.is_ok();
    if !sent {
        tracing::debug!("connection gone; frame not sent");
    }
    sent
}

/// Settings of a connection.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// `ws[s]://host:port/ws/agent`.
    pub server: String,
    /// The machine secret (64 hex).
    pub secret: String,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Command timeout.
    pub command_timeout: Duration,
    /// CA certificates (PEM) trusted for `wss://` instead of the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// The SHA-256 fingerprint of the one server certificate trusted for `wss://`.
    pub pin_sha256: Option<String>,
}

#[derive(Deserialize)]
struct ServerFrame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

/// Connects, registers and serves until the connection ends.
pub async fn run_once(config: &AgentConfig) -> anyhow::Result<()> {
    let connector = if config.server.starts_with("wss://") {
        let trust = fleetgate_client_tls::Trust {
            ca_file: config.ca_file.as_deref(),
            pin_sha256: config.pin_sha256.as_deref(),
        };
        Some(tokio_tungstenite::Connector::Rustls(
            fleetgate_client_tls::client_config(trust)?,
        ))
    } else {
        None
    };
    let (socket, _) = tokio_tungstenite::connect_async_tls_with_config(
        config.server.as_str(),
        None,
        true,
        connector,
    )
    .await
    .with_context(|| format!("connecting to {}", config.server))?;
    let (mut sink, mut stream) = socket.split();
    let host = config
        .server
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .unwrap_or("127.0.0.1");
    let mut register = register_fields();
    register["type"] = json!("register");
    register["ip"] = json!(primary_ip(host));
    register["secretKey"] = json!(config.secret);
    register["agentVersion"] = json!(env!("CARGO_PKG_VERSION"));
    register["capabilities"] = json!(CAPABILITIES);
    sink.send(Message::text(format!("{register}\n"))).await?;
    let machine_id = loop {
        let Some(message) = stream.next().await else {
            bail!("closed before registered")
        };
        let Message::Text(text) = message? else {
            continue;
        };
        let reply: Value = serde_json::from_str(&text).context("server sent invalid JSON")?;
        match reply["type"].as_str() {
            Some("registered") => {
                break reply["machineId"]
                    .as_str()
                    .context("registered without machineId")?
                    .to_owned();
            }
            Some("error") => bail!("register refused: {}", reply["message"]),
            _ => continue,
        }
    };
    tracing::info!(%machine_id, "registered");

    let (out_tx, mut out_rx) = mpsc::channel::<Outbound>(256);
    let mut terminals = Terminals::default();
    let mut nonces = NonceCache::new(NONCE_CACHE);
    let mut sampler = Sampler::new();
    let mut heartbeat = tokio::time::interval(config.heartbeat);
    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                let beat = json!({ "type": "heartbeat", "machineId": machine_id, "metrics": sampler.metrics(), "ports": listening_ports() });
                sink.send(Message::text(format!("{beat}\n"))).await?;
            }
            outbound = out_rx.recv() => match outbound {
                Some(Outbound::Frame(frame)) => sink.send(Message::text(frame)).await?,
                Some(Outbound::ShellEnded(session_id)) => {
                    let exit_code = terminals.exited(&session_id).unwrap_or(-1);
                    let exit = json!({ "type": "terminal_exit", "sessionId": session_id, "exitCode": exit_code });
                    sink.send(Message::text(exit.to_string())).await?;
                }
                None => bail!("outbound channel closed"),
            },
            incoming = stream.next() => {
                let Some(message) = incoming else { return Ok(()) };
                match message? {
                    Message::Text(text) => handle(&text, &machine_id, config, &mut terminals, &mut nonces, &out_tx),
                    Message::Close(_) => return Ok(()),
                    _ => {}
                }
            }
        }
    }
}

/// Acts on one server frame; never panics on malformed input.
fn handle(
    text: &str,
    machine_id: &str,
    config: &AgentConfig,
    terminals: &mut Terminals,
    nonces: &mut NonceCache,
    out: &mpsc::Sender<Outbound>,
) {
    let Ok(frame) = serde_json::from_str::<ServerFrame>(text) else {
        tracing::warn!("server sent an invalid frame; ignored");
        return;
    };
    match frame.kind.as_str() {
        "spawn_shell" => {
            let Some(session_id) = frame.data["sessionId"].as_str().filter(|id| id.len() >= 8)
            else {
                tracing::warn!("spawn_shell without a usable sessionId; ignored");
                return;
            };
            let flow_window = frame.data["flowWindow"].as_u64();
            if let Err(err) = terminals.spawn(session_id, flow_window, out.clone()) {
                tracing::error!(session_id, error = %err, "cannot start a shell");
            }
        }
        "terminal_stdin" | "terminal_resize" | "execute_command" | "terminal_close"
        | "terminal_credit" => match verify_envelope(text, &config.secret, Utc::now(), nonces) {
            Ok(envelope) if envelope.machine_id == machine_id => {
                act(envelope, machine_id, config, terminals, out)
            }
            Ok(_) => tracing::warn!(
                security = true,
                "signed message for another machine refused"
            ),
            Err(err) => {
                tracing::warn!(security = true, kind = frame.kind, reason = %err, "signed message refused")
            }
        },
        "trigger_scan" => {
            tracing::info!("trigger_scan received; this agent has no package scanner")
        }
        "update_agent" => tracing::warn!(
            security = true,
            "update_agent refused: this agent never self-updates"
        ),
        "error" => tracing::warn!(code = %frame.data, "server reported an error"),
        other => tracing::debug!(kind = other, "unknown message ignored"),
    }
}

/// Carries out a verified envelope.
fn act(
    envelope: VerifiedEnvelope,
    machine_id: &str,
    config: &AgentConfig,
    terminals: &mut Terminals,
    out: &mpsc::Sender<Outbound>,
) {
    let Ok(payload) = serde_json::from_str::<Value>(&envelope.payload) else {
        tracing::warn!("signed payload is not JSON; ignored");
        return;
    };
    let session_id = envelope.session_id.as_str();
    match envelope.kind {
        SignedKind::TerminalInput => {
            terminals.input(session_id, payload["data"].as_str().unwrap_or(""))
        }
        SignedKind::TerminalResize => {
            let size = |key: &str| {
                payload[key]
                    .as_u64()
                    .and_then(|v| u16::try_from(v).ok())
                    .filter(|v| *v > 0)
            };
            if let (Some(cols), Some(rows)) = (size("cols"), size("rows")) {
                terminals.resize(session_id, cols, rows);
            }
        }
        SignedKind::TerminalClose => terminals.close(session_id),
        SignedKind::TerminalCredit => match payload["bytes"].as_u64() {
            Some(bytes) => terminals.grant(session_id, bytes),
            None => tracing::warn!("terminal_credit without bytes; ignored"),
        },
        SignedKind::ExecuteCommand => {
            let (Some(command_id), Some(command)) =
                (payload["commandId"].as_str(), payload["command"].as_str())
            else {
                tracing::warn!("execute_command without commandId or command; ignored");
                return;
            };
            tokio::spawn(commands::run(
                machine_id.to_owned(),
                command_id.to_owned(),
                command.to_owned(),
                config.command_timeout,
                out.clone(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use fleetgate_protocol::envelope::{EnvelopeFields, envelope_frame, envelope_timestamp};

    use super::*;

    const SECRET: &str = "a97eef2fbf0dbe58d4d7411321e6641d463bdeb5ed1ec1dcc3fffc29b1085de4";
    const MACHINE: &str = "6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f";

    fn config() -> AgentConfig {
        AgentConfig {
            server: "ws://127.0.0.1:1/ws/agent".into(),
            secret: SECRET.into(),
            heartbeat: Duration::from_secs(5),
            command_timeout: Duration::from_secs(5),
            ca_file: None,
            pin_sha256: None,
        }
    }

    fn execute_frame(nonce: &str, at: chrono::DateTime<Utc>) -> String {
        let payload = r#"{"commandId":"c0ffee00c0ffee00c0ffee00c0ffee00","command":"exit 7"}"#;
        let timestamp = envelope_timestamp(at);
        envelope_frame(
            &EnvelopeFields {
                kind: SignedKind::ExecuteCommand,
                session_id: "3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c31",
                machine_id: MACHINE,
                payload,
                nonce,
                timestamp: &timestamp,
            },
            SECRET,
        )
    }

    /// Handles `frame`; answers with the first frame the agent sent back, if any.
    async fn reply(frame: &str, nonces: &mut NonceCache) -> Option<String> {
        let (out, mut rx) = mpsc::channel(16);
        let mut terminals = Terminals::default();
        handle(frame, MACHINE, &config(), &mut terminals, nonces, &out);
        drop(out);
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(Outbound::Frame(frame))) => Some(frame),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_valid_envelope_runs_once_and_its_replay_is_refused() {
        let mut nonces = NonceCache::new(64);
        let frame = execute_frame("00112233445566778899aabbccddeeff", Utc::now());
        let ran = reply(&frame, &mut nonces)
            .await
            .expect("a valid command runs");
        assert!(
            ran.contains(r#""completed":true"#) && ran.contains(r#""exitCode":7"#),
            "{ran}"
        );
        assert_eq!(
            reply(&frame, &mut nonces).await,
            None,
            "the same nonce again does nothing"
        );
    }

    #[tokio::test]
    async fn tampered_or_stale_envelopes_do_nothing() {
        let mut nonces = NonceCache::new(64);
        let tampered = execute_frame("10112233445566778899aabbccddeeff", Utc::now())
            .replace("exit 7", "exit 8");
        assert_eq!(
            reply(&tampered, &mut nonces).await,
            None,
            "tampered payload"
        );
        let stale = execute_frame(
            "20112233445566778899aabbccddeeff",
            Utc::now() - chrono::Duration::minutes(6),
        );
        assert_eq!(reply(&stale, &mut nonces).await, None, "stale timestamp");
        let malformed = r#"{"type":"execute_command","data":{"sessionId":"x"}}"#;
        assert_eq!(
            reply(malformed, &mut nonces).await,
            None,
            "malformed: no panic, nothing run"
        );
        let update = r#"{"type":"update_agent","data":{"url":"http://evil"}}"#;
        assert_eq!(
            reply(update, &mut nonces).await,
            None,
            "update_agent is never acted on"
        );
    }
}
