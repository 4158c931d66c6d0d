//! The fake shell and command runner of a simulated agent.

use std::time::{Duration, Instant};

use chrono::Utc;
use fleetgate_protocol::agent::terminal_output_frame;
use fleetgate_protocol::envelope::{SignedKind, verify_envelope};
use fleetgate_protocol::nonce::NonceCache;
use serde_json::{Value, json};

/// What a simulated shell does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellMode {
    /// Prints a prompt, then echoes every input.
    Echo,
    /// Writes `bytes` of output in `chunk_bytes` frames as soon as it is spawned (at
    /// `bytes_per_sec` when set, else as fast as the socket takes it), then exits with 0.
    Flood {
        /// Output bytes in all.
        bytes: u64,
        /// Output bytes per `terminal_output` frame.
        chunk_bytes: usize,
        /// Pace, bytes per second; `None` for as fast as possible.
        bytes_per_sec: Option<u64>,
    },
}

/// What the agent sends in answer to one server frame.
#[derive(Debug)]
pub(super) enum Reply {
    /// One frame.
    Frame(String),
    /// A stream of output frames ending with `terminal_exit`.
    Flood(Flood),
    /// More output credit for a session (flow control).
    Credit {
        /// The session.
        session_id: String,
        /// Bytes granted.
        bytes: u64,
    },
}

/// A flood of terminal output for one session.
#[derive(Debug)]
pub(super) struct Flood {
    session_id: String,
    bytes: u64,
    chunk_bytes: usize,
    bytes_per_sec: Option<u64>,
    /// Output bytes it may still send, under flow control (`flowWindow` of `spawn_shell`).
    credit: Option<i64>,
}

/// One frame of a flood and the output bytes it carries.
pub(super) struct FloodFrame {
    /// The frame.
    pub text: String,
    /// Output bytes in it (0 for the final `terminal_exit`).
    pub output_bytes: u64,
}

/// Printable filler: 63 characters and a newline, no JSON escaping needed.
const FILLER: &[u8; 64] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\n";

impl Flood {
    /// The output frames, then `terminal_exit`.
    #[cfg(test)]
    pub fn frames(&self) -> impl Iterator<Item = FloodFrame> + '_ {
        (0..).map_while(|index| self.frame_at(index))
    }

    /// Frame number `index`: output chunks, then `terminal_exit`, then nothing.
    pub fn frame_at(&self, index: u64) -> Option<FloodFrame> {
        let chunk = self.chunk_bytes.max(1) as u64;
        let outputs = self.bytes.div_ceil(chunk);
        if index > outputs {
            return None;
        }
        if index == outputs {
            return Some(FloodFrame {
                text: json!({"type": "terminal_exit", "sessionId": self.session_id, "exitCode": 0})
                    .to_string(),
                output_bytes: 0,
            });
        }
        let size = chunk.min(self.bytes - index * chunk);
        let data: String = FILLER
            .iter()
            .cycle()
            .take(size as usize)
            .map(|&byte| byte as char)
            .collect();
        Some(FloodFrame {
            text: terminal_output_frame(&self.session_id, &data),
            output_bytes: size,
        })
    }

    /// When the next frame is due after `sent` bytes, for a paced flood.
    pub fn due(&self, started: Instant, sent: u64) -> Option<Instant> {
        let rate = self.bytes_per_sec?.max(1);
        Some(started + Duration::from_secs_f64(sent as f64 / rate as f64))
    }

    /// The session it floods.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Whether the next frame may go: always without flow control, else while credit lasts.
    pub fn has_credit(&self) -> bool {
        self.credit.is_none_or(|credit| credit > 0)
    }

    /// Adds credit granted by the server.
    pub fn grant(&mut self, bytes: u64) {
        if let Some(credit) = &mut self.credit {
            *credit = credit.saturating_add(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    /// Spends credit on a frame just sent.
    pub fn spend(&mut self, bytes: u64) {
        if let Some(credit) = &mut self.credit {
            *credit = credit.saturating_sub(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }
}

/// Answers one server frame: shells, signed input, commands.
pub(super) fn respond(
    text: &str,
    machine_id: &str,
    secret: &str,
    mode: &ShellMode,
    nonces: &mut NonceCache,
) -> Vec<Reply> {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    if frame["type"] == "spawn_shell" {
        let session_id = frame["data"]["sessionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let flow_window = frame["data"]["flowWindow"].as_u64();
        return vec![spawned(session_id, flow_window, mode)];
    }
    let Ok(envelope) = verify_envelope(text, secret, Utc::now(), nonces) else {
        return Vec::new();
    };
    let payload: Value = serde_json::from_str(&envelope.payload).unwrap_or(Value::Null);
    let frames = match envelope.kind {
        SignedKind::TerminalInput => {
            let data = payload["data"].as_str().unwrap_or_default();
            vec![terminal_output_frame(&envelope.session_id, data)]
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
        SignedKind::TerminalCredit => {
            return vec![Reply::Credit {
                session_id: envelope.session_id,
                bytes: payload["bytes"].as_u64().unwrap_or(0),
            }];
        }
    };
    frames.into_iter().map(Reply::Frame).collect()
}

/// What a freshly spawned shell sends.
fn spawned(session_id: String, flow_window: Option<u64>, mode: &ShellMode) -> Reply {
    match mode {
        ShellMode::Echo => Reply::Frame(terminal_output_frame(&session_id, "sim$ ")),
        ShellMode::Flood {
            bytes,
            chunk_bytes,
            bytes_per_sec,
        } => Reply::Flood(Flood {
            session_id,
            bytes: *bytes,
            chunk_bytes: *chunk_bytes,
            bytes_per_sec: *bytes_per_sec,
            credit: flow_window.map(|window| i64::try_from(window).unwrap_or(i64::MAX)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_carries_exactly_its_bytes_then_exits() {
        let flood = Flood {
            session_id: "s".into(),
            bytes: 100_000,
            chunk_bytes: 16_384,
            bytes_per_sec: None,
            credit: None,
        };
        let frames: Vec<FloodFrame> = flood.frames().collect();
        let total: u64 = frames.iter().map(|frame| frame.output_bytes).sum();
        assert_eq!(total, 100_000);
        assert_eq!(frames.len(), 8, "6 full chunks, 1 partial, 1 exit");
        let last: Value = serde_json::from_str(&frames[7].text).expect("json");
        assert_eq!(last["type"], "terminal_exit");
        let first: Value = serde_json::from_str(&frames[0].text).expect("json");
        assert_eq!(first["output"].as_str().map(str::len), Some(16_384));
    }

    #[test]
    fn a_flood_under_flow_control_stops_without_credit() {
        let mut flood = Flood {
            session_id: "s".into(),
            bytes: 10,
            chunk_bytes: 1,
            bytes_per_sec: None,
            credit: Some(2),
        };
        flood.spend(2);
        assert!(!flood.has_credit());
        flood.grant(1);
        assert!(flood.has_credit());
    }

    #[test]
    fn a_paced_flood_is_due_by_its_rate() {
        let flood = Flood {
            session_id: "s".into(),
            bytes: 10,
            chunk_bytes: 1,
            bytes_per_sec: Some(1000),
            credit: None,
        };
        let start = Instant::now();
        assert_eq!(
            flood.due(start, 500),
            Some(start + Duration::from_millis(500))
        );
    }
}
