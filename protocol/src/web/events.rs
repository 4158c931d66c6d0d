//! Events the server sends to a web client (docs/protocol.md section 4).

use serde::Serialize;

use crate::error::{ErrorCode, ErrorFrame};
use crate::escaped::EscapedText;

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
    /// This socket now watches a session read-only (extension, docs/protocol.md): the recent
    /// output follows, then the live output.
    TerminalWatching {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// The machine.
        #[serde(rename = "machineId")]
        machine_id: String,
        /// The user whose session it is.
        #[serde(rename = "ownerId")]
        owner_id: String,
        /// This watcher, as the owner sees it.
        #[serde(rename = "watcherId")]
        watcher_id: String,
        /// The terminal's current size.
        cols: u16,
        /// The terminal's current size.
        rows: u16,
    },
    /// To a session's owner: someone started watching it (extension).
    WatcherJoined {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// For `remove_watcher`.
        #[serde(rename = "watcherId")]
        watcher_id: String,
        /// Who.
        #[serde(rename = "userId")]
        user_id: String,
        /// Their display name, when their login token carries one.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// To a session's owner: a watcher is gone (extension).
    WatcherLeft {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// From `watcher_joined`.
        #[serde(rename = "watcherId")]
        watcher_id: String,
        /// Who.
        #[serde(rename = "userId")]
        user_id: String,
        /// `left`, `disconnected`, `removed` or `owner_disconnected`.
        reason: &'static str,
    },
    /// To a session's owner and to the watcher: the watcher may now type, or no longer
    /// (hand-over; extension).
    WatcherInput {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// From `watcher_joined`.
        #[serde(rename = "watcherId")]
        watcher_id: String,
        /// Whether the watcher may type.
        allowed: bool,
    },
    /// To a watcher: it no longer watches the session, which goes on (extension).
    WatchEnded {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// `left`, `removed` or `owner_disconnected`.
        reason: &'static str,
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

    #[test]
    fn watch_events_serialize_as_the_protocol_shows() {
        let watching = ServerEvent::TerminalWatching {
            session_id: "s1".into(),
            machine_id: "m1".into(),
            owner_id: "u1".into(),
            watcher_id: "w1".into(),
            cols: 120,
            rows: 40,
        };
        assert_eq!(
            watching.to_json(Some("w-1")),
            r#"{"type":"terminal_watching","sessionId":"s1","machineId":"m1","ownerId":"u1","watcherId":"w1","cols":120,"rows":40,"requestId":"w-1"}"#
        );
        let joined = ServerEvent::WatcherJoined {
            session_id: "s1".into(),
            watcher_id: "w1".into(),
            user_id: "u2".into(),
            name: None,
        };
        assert_eq!(
            joined.to_json(None),
            r#"{"type":"watcher_joined","sessionId":"s1","watcherId":"w1","userId":"u2"}"#,
            "no name when the token has none"
        );
        let ended = ServerEvent::WatchEnded {
            session_id: "s1".into(),
            reason: "removed",
        };
        assert_eq!(
            ended.to_json(None),
            r#"{"type":"watch_ended","sessionId":"s1","reason":"removed"}"#
        );
    }
}
