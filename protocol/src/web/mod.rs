//! The web-client protocol (docs/protocol.md section 4): client requests and server events.

use serde::Deserialize;

use super::error::{ErrorCode, ErrorFrame};

mod events;

pub use events::{Reply, ServerEvent};

/// Largest terminal input per message, bytes.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
/// Largest command text, bytes.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;
/// Longest accepted `requestId`.
pub const MAX_REQUEST_ID: usize = 64;

/// A client request and the `requestId` to echo in its replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    /// Echoed in replies.
    pub request_id: Option<String>,
    /// What the client asks.
    pub request: ClientRequest,
}

/// What a web client may ask.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientRequest {
    /// Receive machine status events.
    SubscribeMachines {},
    /// Open a shell.
    SpawnTerminal {
        /// The machine.
        #[serde(rename = "machineId")]
        machine_id: String,
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Keystrokes.
    TerminalInput {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// The keystrokes.
        data: String,
    },
    /// Resize.
    TerminalResize {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// Columns, 1–1000.
        cols: u16,
        /// Rows, 1–1000.
        rows: u16,
    },
    /// End a session.
    CloseTerminal {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
    },
    /// Re-bind a session after a dropped socket.
    AttachTerminal {
        /// From `terminal_opened`.
        #[serde(rename = "sessionToken")]
        session_token: String,
        /// fleetgate extension: the offset just past the last output byte the client
        /// received; output after it is replayed (or announced as dropped).
        #[serde(default)]
        offset: Option<u64>,
    },
    /// Run a command.
    ExecuteCommand {
        /// The machine.
        #[serde(rename = "machineId")]
        machine_id: String,
        /// The command text.
        command: String,
        /// Timeout in seconds.
        #[serde(rename = "timeoutSecs", default)]
        timeout_secs: Option<u64>,
    },
    /// Join another user's live session read-only (extension, docs/protocol.md).
    WatchTerminal {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
    },
    /// Stop watching a session (extension).
    UnwatchTerminal {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
    },
    /// The owner ends one watcher of their session (extension).
    RemoveWatcher {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// From `watcher_joined`.
        #[serde(rename = "watcherId")]
        watcher_id: String,
    },
    /// The owner lets one watcher type into the session, or stops it (hand-over; extension).
    SetWatcherInput {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// From `watcher_joined`.
        #[serde(rename = "watcherId")]
        watcher_id: String,
        /// Whether the watcher may type.
        allowed: bool,
    },
}

const KNOWN_TYPES: [&str; 11] = [
    "subscribe_machines",
    "spawn_terminal",
    "terminal_input",
    "terminal_resize",
    "close_terminal",
    "attach_terminal",
    "execute_command",
    "watch_terminal",
    "unwatch_terminal",
    "remove_watcher",
    "set_watcher_input",
];

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "requestId", default)]
    request_id: Option<serde_json::Value>,
}

impl ClientRequest {
    /// The request's wire type.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientRequest::SubscribeMachines {} => "subscribe_machines",
            ClientRequest::SpawnTerminal { .. } => "spawn_terminal",
            ClientRequest::TerminalInput { .. } => "terminal_input",
            ClientRequest::TerminalResize { .. } => "terminal_resize",
            ClientRequest::CloseTerminal { .. } => "close_terminal",
            ClientRequest::AttachTerminal { .. } => "attach_terminal",
            ClientRequest::ExecuteCommand { .. } => "execute_command",
            ClientRequest::WatchTerminal { .. } => "watch_terminal",
            ClientRequest::UnwatchTerminal { .. } => "unwatch_terminal",
            ClientRequest::RemoveWatcher { .. } => "remove_watcher",
            ClientRequest::SetWatcherInput { .. } => "set_watcher_input",
        }
    }
}

/// Parses one client frame; errors carry the `requestId` when one could be read.
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, ErrorFrame> {
    let envelope: Envelope<'_> = serde_json::from_str(text.trim_end()).map_err(|err| {
        let code = if err.is_data() {
            ErrorCode::MissingType
        } else {
            ErrorCode::BadJson
        };
        ErrorFrame::new(code, "a frame must be one JSON object with a type")
    })?;
    let request_id = match envelope.request_id {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(id)) if id.len() <= MAX_REQUEST_ID => Some(id),
        Some(_) => {
            return Err(ErrorFrame::new(
                ErrorCode::InvalidField,
                "requestId must be a string of at most 64 chars",
            ));
        }
    };
    let fail = |code, message: String| ErrorFrame {
        code,
        message,
        request_id: request_id.clone(),
    };
    let kind = envelope
        .kind
        .ok_or_else(|| fail(ErrorCode::MissingType, "frame has no type".into()))?;
    if !KNOWN_TYPES.contains(&kind.as_ref()) {
        return Err(fail(ErrorCode::UnknownType, "unknown message type".into()));
    }
    let request: ClientRequest = serde_json::from_str(text.trim_end())
        .map_err(|err| fail(ErrorCode::InvalidField, format!("invalid field: {err}")))?;
    validate(&request).map_err(|message| fail(ErrorCode::InvalidField, message.into()))?;
    Ok(ClientFrame {
        request_id,
        request,
    })
}

fn validate(request: &ClientRequest) -> Result<(), &'static str> {
    let size_ok = |cols: u16, rows: u16| (1..=1000).contains(&cols) && (1..=1000).contains(&rows);
    match request {
        ClientRequest::SpawnTerminal { cols, rows, .. }
        | ClientRequest::TerminalResize { cols, rows, .. }
            if !size_ok(*cols, *rows) =>
        {
            Err("cols and rows must be between 1 and 1000")
        }
        ClientRequest::TerminalInput { data, .. } if data.len() > MAX_INPUT_BYTES => {
            Err("terminal input is limited to 64 KiB per message")
        }
        ClientRequest::ExecuteCommand {
            command,
            timeout_secs,
            ..
        } => {
            if command.is_empty() || command.len() > MAX_COMMAND_BYTES {
                Err("command must be 1 byte to 16 KiB")
            } else if timeout_secs.is_some_and(|t| t == 0 || t > 24 * 3600) {
                Err("timeoutSecs must be between 1 and 86400")
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_their_request_id() {
        let frame = parse_client_frame(
            r#"{"type":"spawn_terminal","machineId":"m","cols":80,"rows":24,"requestId":"r1"}"#,
        )
        .expect("parses");
        assert_eq!(frame.request_id.as_deref(), Some("r1"));
        assert_eq!(
            frame.request,
            ClientRequest::SpawnTerminal {
                machine_id: "m".into(),
                cols: 80,
                rows: 24
            }
        );
        let subscribe = parse_client_frame(r#"{"type":"subscribe_machines"}"#).expect("parses");
        assert_eq!(subscribe.request, ClientRequest::SubscribeMachines {});
    }

    #[test]
    fn bad_requests_get_codes_and_keep_the_request_id() {
        let err =
            parse_client_frame(r#"{"type":"update_agent","requestId":"r2"}"#).expect_err("refused");
        assert_eq!(err.code, ErrorCode::UnknownType);
        assert_eq!(err.request_id.as_deref(), Some("r2"));
        let err =
            parse_client_frame(r#"{"type":"terminal_resize","sessionId":"s","cols":0,"rows":5}"#)
                .expect_err("refused");
        assert_eq!(err.code, ErrorCode::InvalidField);
        assert_eq!(
            parse_client_frame("{").expect_err("refused").code,
            ErrorCode::BadJson
        );
        assert_eq!(
            parse_client_frame(r#"{"a":1}"#).expect_err("refused").code,
            ErrorCode::MissingType
        );
        let big = format!(
            r#"{{"type":"terminal_input","sessionId":"s","data":"{}"}}"#,
            "x".repeat(MAX_INPUT_BYTES + 1)
        );
        assert_eq!(
            parse_client_frame(&big).expect_err("refused").code,
            ErrorCode::InvalidField
        );
    }
}
