//! Server → agent messages that carry no signature.

use super::ids::MachineId;

/// The `registered` reply, with `machineId` top-level as PROTOCOL.md requires.
/// A UUID never needs JSON escaping, so the frame is formatted directly.
pub fn registered_frame(machine_id: MachineId) -> String {
    format!(r#"{{"type":"registered","machineId":"{machine_id}"}}"#)
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
}
