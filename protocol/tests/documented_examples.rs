//! Every JSON example of `docs/protocol.md`, read as the side that receives it would: agent
//! messages by the server's agent parser, operator requests by the server's client parser,
//! signed server → agent frames verified against the test-vector secret, the rest checked for
//! their type and fields. An example without a direction tag fails, so none goes unchecked.

use chrono::{DateTime, Utc};
use fleetgate_protocol::agent::parse_agent_frame;
use fleetgate_protocol::envelope::verify_envelope;
use fleetgate_protocol::nonce::NonceCache;
use fleetgate_protocol::web::parse_client_frame;
use fleetgate_protocol::{MachineId, SessionId};
use serde_json::Value;

const DOC: &str = include_str!("../../docs/protocol.md");
/// The secret of the test vectors (docs/protocol.md section 3).
const SECRET: &str = "a97eef2fbf0dbe58d4d7411321e6641d463bdeb5ed1ec1dcc3fffc29b1085de4";

/// (direction tag, JSON text, line) of every ```json block.
fn examples() -> Vec<(String, String, usize)> {
    let mut found = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for (index, line) in DOC.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) if info.starts_with("json") => {
                let tag = info.trim_start_matches("json").trim().to_owned();
                open = Some((tag, index + 1, String::new()));
            }
            (Some(_), Some("")) => {
                let (tag, at, text) = open.take().expect("open block");
                found.push((tag, text, at));
            }
            (Some((_, _, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            _ => {}
        }
    }
    found
}

/// Fields each server → client type must carry.
fn required_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "hello" => &["userId", "role", "serverVersion"],
        "machine_status" => &["machineId", "hostname", "status", "lastSeen"],
        "terminal_opened" => &["sessionId", "machineId", "sessionToken", "expiresAt"],
        "terminal_output" => &["sessionId", "data", "offset"],
        "output_dropped" => &["sessionId", "bytes"],
        "terminal_closed" => &["sessionId", "reason"],
        "command_started" => &["commandId", "machineId"],
        "command_output" => &["commandId", "output", "completed", "status"],
        "error" => &["code", "message"],
        "terminal_watching" => &[
            "sessionId",
            "machineId",
            "ownerId",
            "watcherId",
            "cols",
            "rows",
        ],
        "watcher_joined" => &["sessionId", "watcherId", "userId"],
        "watcher_left" => &["sessionId", "watcherId", "userId", "reason"],
        "watch_ended" => &["sessionId", "reason"],
        "watcher_input" => &["sessionId", "watcherId", "allowed"],
        _ => return None,
    })
}

fn check_server_to_agent(value: &Value, text: &str) {
    let kind = value["type"].as_str().expect("type");
    match kind {
        "registered" => {
            let id = value["machineId"].as_str().expect("machineId");
            assert!(MachineId::parse(id).is_some(), "{id}");
        }
        "spawn_shell" => {
            let id = value["data"]["sessionId"].as_str().expect("sessionId");
            assert!(SessionId::parse(id).is_some(), "{id}");
        }
        _ => {
            let at: DateTime<Utc> = "2026-01-02T03:04:05.678Z".parse().expect("time");
            let verified = verify_envelope(text, SECRET, at, &mut NonceCache::new(8));
            assert!(verified.is_ok(), "{kind}: {verified:?}");
        }
    }
}

fn check_server_to_client(value: &Value) {
    let kind = value["type"].as_str().expect("type");
    let fields =
        required_fields(kind).unwrap_or_else(|| panic!("{kind} is not a server → client type"));
    for field in fields {
        assert!(value.get(*field).is_some(), "{kind} without {field}");
    }
}

#[test]
fn every_documented_example_is_read_as_its_receiver_reads_it() {
    let examples = examples();
    assert!(
        examples.len() >= 25,
        "only {} examples found",
        examples.len()
    );
    for (tag, text, line) in &examples {
        let value: Value = serde_json::from_str(text)
            .unwrap_or_else(|err| panic!("docs/protocol.md:{line}: not JSON: {err}"));
        match tag.as_str() {
            "agent-to-server" => {
                let parsed = parse_agent_frame(text);
                assert!(parsed.is_ok(), "docs/protocol.md:{line}: {parsed:?}");
            }
            "client-to-server" => {
                let parsed = parse_client_frame(text);
                assert!(parsed.is_ok(), "docs/protocol.md:{line}: {parsed:?}");
            }
            "server-to-agent" => check_server_to_agent(&value, text),
            "server-to-client" => check_server_to_client(&value),
            other => panic!(
                "docs/protocol.md:{line}: example tagged {other:?}; tag it with its direction"
            ),
        }
    }
}
