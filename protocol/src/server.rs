//! Server → agent messages that carry no signature.

use super::ids::{MachineId, SessionId};

/// The `registered` reply, with `machineId` top-level as docs/protocol.md requires.
/// A UUID never needs JSON escaping, so the frame is formatted directly.
pub fn registered_frame(machine_id: MachineId) -> String {
    format!(r#"{{"type":"registered","machineId":"{machine_id}"}}"#)
}

/// `spawn_shell` (docs/protocol.md 2.6, not signed in v1). Towards an agent with the `flow_control`
/// extension it carries `flowWindow`: the output bytes the new shell may send before it needs
/// a `terminal_credit`. Session ids are hex, so the frame is formatted directly.
pub fn spawn_shell_frame(session_id: &SessionId, flow_window: Option<u64>) -> String {
    match flow_window {
        Some(window) => format!(
            r#"{{"type":"spawn_shell","data":{{"sessionId":"{session_id}","flowWindow":{window}}}}}"#
        ),
        None => format!(r#"{{"type":"spawn_shell","data":{{"sessionId":"{session_id}"}}}}"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_has_a_top_level_machine_id() {
        let id = MachineId::parse("6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f").expect("uuid");
        assert_eq!(
            registered_frame(id),
            r#"{"type":"registered","machineId":"6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f"}"#
        );
    }

    #[test]
    fn spawn_shell_carries_a_window_only_for_flow_control() {
        let id = SessionId::parse("3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c31").expect("id");
        assert_eq!(
            spawn_shell_frame(&id, None),
            r#"{"type":"spawn_shell","data":{"sessionId":"3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c31"}}"#
        );
        let with_window: serde_json::Value =
            serde_json::from_str(&spawn_shell_frame(&id, Some(262_144))).expect("json");
        assert_eq!(with_window["data"]["flowWindow"], 262_144);
    }
}
