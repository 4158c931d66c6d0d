//! Server → agent messages that carry no signature.

use serde::Serialize;

use super::ids::MachineId;

/// `{"type":"registered","machineId":"…"}`
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "registered")]
struct Registered {
    #[serde(rename = "machineId")]
    machine_id: String,
}

/// The `registered` reply, with `machineId` top-level as PROTOCOL.md requires.
pub fn registered_frame(machine_id: MachineId) -> String {
    serde_json::to_string(&Registered {
        machine_id: machine_id.to_string(),
    })
    .unwrap_or_default()
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
