//! The `error` message (docs/protocol.md 2.8).

use serde::Serialize;

/// Machine-readable error codes, spelled as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    BadJson,
    /// The object has no `type`.
    MissingType,
    /// The `type` is not one this endpoint accepts.
    UnknownType,
    /// A field is missing or has a bad value.
    InvalidField,
    /// The frame exceeds the size limit.
    TooLarge,
    /// A binary frame was sent.
    BinaryFrame,
    /// The agent has not registered yet.
    NotRegistered,
    /// Authentication failed or expired.
    Unauthenticated,
    /// Not allowed.
    Forbidden,
    /// No such machine.
    UnknownMachine,
    /// The machine is not connected.
    MachineOffline,
    /// The machine's agent is connected to another instance of the cluster, which cannot be
    /// reached (extension, docs/protocol.md).
    RegionUnreachable,
    /// The machine's instance did not answer in time (extension, docs/protocol.md).
    Timeout,
    /// No such terminal session.
    UnknownSession,
    /// No such command.
    UnknownCommand,
    /// Too many messages.
    RateLimited,
    /// A server-side failure.
    Internal,
}

/// `{"type":"error","code":…,"message":…,"requestId":…}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename = "error")]
pub struct ErrorFrame {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// Echo of the client's `requestId`, if it sent one.
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorFrame {
    /// An error without a request id.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            request_id: None,
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings and a unit enum cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| {
            String::from(r#"{"type":"error","code":"internal","message":"internal error"}"#)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_frame_matches_the_protocol_shape() {
        let mut frame = ErrorFrame::new(ErrorCode::UnknownType, "no such type");
        assert_eq!(
            frame.to_json(),
            r#"{"type":"error","code":"unknown_type","message":"no such type"}"#
        );
        frame.request_id = Some("r1".into());
        assert_eq!(
            frame.to_json(),
            r#"{"type":"error","code":"unknown_type","message":"no such type","requestId":"r1"}"#
        );
    }
}
