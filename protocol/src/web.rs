//! The web-client protocol (docs/protocol.md section 4): client requests and server events.

use serde::{Deserialize, Serialize};

use super::error::{ErrorCode, ErrorFrame};
use super::escaped::EscapedText;

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
}

const KNOWN_TYPES: [&str; 7] = [
    "subscribe_machines",
    "spawn_terminal",
    "terminal_input",
    "terminal_resize",
    "close_terminal",
    "attach_terminal",
    "execute_command",
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

/// Events the server sends to a web client.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    /// A machine's status.
    MachineStatus {
        /// The machine.
        #[serde(rename = "machineId")]
        machine_id: String,
        /// Its hostname.
        hostname: String,
        /// `online` or `offline`.
        status: &'static str,
        /// ISO 8601.
        #[serde(rename = "lastSeen")]
        last_seen: Option<String>,
        /// The region of the instance its agent is connected to, while online (cluster mode;
        /// extension, docs/protocol.md).
        #[serde(skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
    /// A shell is open.
    TerminalOpened {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// The machine.
        #[serde(rename = "machineId")]
        machine_id: String,
        /// For `attach_terminal`.
        #[serde(rename = "sessionToken")]
        session_token: String,
        /// Token expiry, ISO 8601.
        #[serde(rename = "expiresAt")]
        expires_at: String,
    },
    /// Shell output.
    TerminalOutput {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// The output, kept escaped (it is forwarded as the agent escaped it).
        data: EscapedText,
        /// Offset of the first byte of `data` in the session's whole output (bytes).
        offset: u64,
    },
    /// Output discarded because the client fell behind.
    OutputDropped {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// How many bytes.
        bytes: u64,
    },
    /// The session ended.
    TerminalClosed {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// Why.
        reason: &'static str,
    },
    /// A command was sent.
    CommandStarted {
        /// The command.
        #[serde(rename = "commandId")]
        command_id: String,
        /// The machine.
        #[serde(rename = "machineId")]
        machine_id: String,
    },
    /// Command output.
    CommandOutput {
        /// The command.
        #[serde(rename = "commandId")]
        command_id: String,
        /// A chunk of output.
        output: String,
        /// Whether it is finished.
        completed: bool,
        /// Exit code, when completed.
        #[serde(rename = "exitCode", skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        /// `running`, `completed` or `timed_out`.
        status: &'static str,
    },
}

/// A server event with the `requestId` it answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply<'a> {
    /// The event.
    #[serde(flatten)]
    pub event: &'a ServerEvent,
    /// Echoed `requestId`.
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
}

impl ServerEvent {
    /// The event as JSON text, echoing `request_id` when given.
    pub fn to_json(&self, request_id: Option<&str>) -> String {
        if let (
            ServerEvent::TerminalOutput {
                session_id,
                data,
                offset,
            },
            None,
        ) = (self, request_id)
            && is_plain_id(session_id)
        {
            // The hot path: output goes out with the agent's escaping, never decoded.
            let escaped = data.as_escaped();
            let mut text = String::with_capacity(escaped.len() + session_id.len() + 80);
            text.push_str(r#"{"type":"terminal_output","sessionId":""#);
            text.push_str(session_id);
            text.push_str(r#"","data":""#);
            text.push_str(escaped);
            text.push_str(r#"","offset":"#);
            text.push_str(&offset.to_string());
            text.push('}');
            return text;
        }
        serde_json::to_string(&Reply {
            event: self,
            request_id,
        })
        .unwrap_or_else(|err| {
            ErrorFrame::new(
                ErrorCode::Internal,
                format!("could not encode event: {err}"),
            )
            .to_json()
        })
    }
}

/// Whether `id` needs no JSON escaping (session ids are hex).
fn is_plain_id(id: &str) -> bool {
    id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_output_is_written_with_the_agents_escaping() {
        let escaped = EscapedText::from_literal(r#""caf\u00e9 \"ok\"\r\n""#).expect("valid");
        let event = ServerEvent::TerminalOutput {
            session_id: "3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c31".into(),
            data: escaped,
            offset: 42,
        };
        let text = event.to_json(None);
        assert_eq!(
            text,
            r#"{"type":"terminal_output","sessionId":"3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c31","data":"caf\u00e9 \"ok\"\r\n","offset":42}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(parsed["data"], "café \"ok\"\r\n");
        let with_request: serde_json::Value =
            serde_json::from_str(&event.to_json(Some("r1"))).expect("json");
        assert_eq!(
            with_request["data"], parsed["data"],
            "the general path agrees"
        );
        assert_eq!(with_request["requestId"], "r1");
    }

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

    #[test]
    fn events_serialize_as_the_protocol_shows() {
        let event = ServerEvent::CommandOutput {
            command_id: "c".into(),
            output: "".into(),
            completed: true,
            exit_code: Some(3),
            status: "completed",
        };
        assert_eq!(
            event.to_json(Some("r")),
            r#"{"type":"command_output","commandId":"c","output":"","completed":true,"exitCode":3,"status":"completed","requestId":"r"}"#
        );
    }
}
