//! What instances tell each other about agents: the subjects keyed by id and the bodies sealed
//! onto them. The operator's instance sends [`ToAgentWire`] on `fg.<cluster>.agent.<machineId>.in`
//! (the instance holding that agent forwards it); the agent's instance sends [`FromAgentWire`]
//! on `fg.<cluster>.session.<sessionId>.out` and `fg.<cluster>.command.<commandId>.out`, and
//! answers requests with [`ReplyWire`]. docs/architecture.md describes the exchange.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::command::CommandChunk;
use crate::protocol::escaped::EscapedText;
use crate::protocol::{CommandId, MachineId, SessionId};
use crate::terminal::TerminalEvent;

/// Where frames for `machine`'s agent go.
pub fn agent_in_subject(cluster: &str, machine: MachineId) -> String {
    format!("fg.{cluster}.agent.{machine}.in")
}

/// Every machine's `agent_in_subject`.
pub fn agent_in_wildcard(cluster: &str) -> String {
    format!("fg.{cluster}.agent.*.in")
}

/// The machine an `agent_in_subject` names.
pub fn machine_of_agent_in(cluster: &str, subject: &str) -> Option<MachineId> {
    let rest = subject.strip_prefix(&format!("fg.{cluster}.agent."))?;
    MachineId::parse(rest.strip_suffix(".in")?)
}

/// Where a session's agent events go.
pub fn session_out_subject(cluster: &str, session: &SessionId) -> String {
    format!("fg.{cluster}.session.{session}.out")
}

/// Where a command's output goes.
pub fn command_out_subject(cluster: &str, command: &CommandId) -> String {
    format!("fg.{cluster}.command.{command}.out")
}

/// A request from the operator's instance to the instance holding an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ToAgentWire {
    /// From now on, send this session's agent events to its `session_out_subject`.
    RouteTerminal {
        /// The session.
        session_id: String,
    },
    /// From now on, send this command's output to its `command_out_subject`.
    RouteCommand {
        /// The command.
        command_id: String,
    },
    /// The session ended: forget its route.
    DropTerminal {
        /// The session.
        session_id: String,
    },
    /// The command ended: forget its route.
    DropCommand {
        /// The command.
        command_id: String,
    },
    /// Forward this frame to the agent as it is (the sender signed it where the protocol
    /// signs that type).
    Frame {
        /// The text frame.
        frame: String,
    },
}

/// A request with the instance it is for: every instance listens on every machine's subject,
/// and only the one named (the one holding the agent when the link was opened) acts and
/// answers. Without a name, whichever instance holds the agent acts (used for clean-ups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRequest {
    /// The instance meant to act, if one is meant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// What it asks.
    #[serde(flatten)]
    pub request: ToAgentWire,
}

impl AgentRequest {
    /// The sealed body of `request` for instance `to` (any holder when `None`).
    pub fn body(to: Option<&str>, request: ToAgentWire) -> String {
        let request = AgentRequest {
            to: to.map(str::to_owned),
            request,
        };
        serde_json::to_string(&request).unwrap_or_default()
    }

    /// Whether instance `instance` is meant to act.
    pub fn is_for(&self, instance: &str) -> bool {
        self.to.as_deref().is_none_or(|to| to == instance)
    }
}

/// How a terminal output body starts.
const OUTPUT_PREFIX: &str = r#"{"kind":"output","data":"#;

/// Agent events for a session or a command, from the instance holding the agent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum FromAgentWire {
    /// Shell output, as the agent escaped it: written and read as [`OUTPUT_PREFIX`] + the JSON
    /// string + `}` (passed on without decoding; serde cannot borrow raw JSON inside a tagged
    /// enum).
    Output {
        /// The text.
        data: String,
    },
    /// The shell exited.
    Exited {
        /// Its exit code.
        code: i32,
    },
    /// The agent is gone (disconnected, or its instance is shutting down).
    AgentGone,
    /// Command output.
    Chunk {
        /// Output.
        output: String,
        /// Whether this is the last chunk.
        completed: bool,
        /// Exit code (meaningful when completed).
        exit_code: i32,
    },
}

impl FromAgentWire {
    /// The body for a terminal event.
    pub fn terminal_body(event: &TerminalEvent) -> String {
        match event {
            TerminalEvent::Output(text) => {
                format!(r#"{OUTPUT_PREFIX}"{}"}}"#, text.as_escaped())
            }
            TerminalEvent::Exited(code) => {
                format!(r#"{{"kind":"exited","code":{code}}}"#)
            }
            TerminalEvent::AgentGone | TerminalEvent::ServerShutdown => {
                r#"{"kind":"agent_gone"}"#.to_owned()
            }
        }
    }

    /// The body for a command chunk.
    pub fn chunk_body(chunk: &CommandChunk) -> String {
        let wire = FromAgentWire::Chunk {
            output: chunk.output.clone(),
            completed: chunk.completed,
            exit_code: chunk.exit_code,
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Reads a terminal event; `None` if `body` is not one.
    pub fn terminal_event(body: &str) -> Option<TerminalEvent> {
        if let Some(rest) = body.strip_prefix(OUTPUT_PREFIX) {
            let literal = rest.strip_suffix('}')?;
            // The same checks as an agent's frame: a JSON string, nothing after it.
            serde_json::from_str::<&RawValue>(literal).ok()?;
            return EscapedText::from_literal(literal)
                .ok()
                .map(TerminalEvent::Output);
        }
        match serde_json::from_str(body).ok()? {
            FromAgentWire::Output { data } => {
                Some(TerminalEvent::Output(EscapedText::from_text(&data)))
            }
            FromAgentWire::Exited { code } => Some(TerminalEvent::Exited(code)),
            FromAgentWire::AgentGone => Some(TerminalEvent::AgentGone),
            FromAgentWire::Chunk { .. } => None,
        }
    }

    /// Reads a command chunk; `None` if `body` is not one.
    pub fn command_chunk(body: &str) -> Option<CommandChunk> {
        match serde_json::from_str(body).ok()? {
            FromAgentWire::Chunk {
                output,
                completed,
                exit_code,
            } => Some(CommandChunk {
                output,
                completed,
                exit_code,
            }),
            _ => None,
        }
    }
}

/// The answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReplyWire {
    /// The agent's socket took the frame.
    Sent,
    /// The agent is not connected to the answering instance.
    MachineOffline,
    /// A re-attach was refused: the session belongs to another user.
    Refused,
    /// A re-attach found the session ending.
    Gone,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_events_survive_the_wire_with_their_escaping() {
        let text = EscapedText::from_text("a\u{1b}[0m\"\n\u{1F600}");
        for event in [
            TerminalEvent::Output(text.clone()),
            TerminalEvent::Exited(3),
            TerminalEvent::AgentGone,
        ] {
            let body = FromAgentWire::terminal_body(&event);
            assert_eq!(FromAgentWire::terminal_event(&body), Some(event));
        }
        let shutdown = FromAgentWire::terminal_body(&TerminalEvent::ServerShutdown);
        assert_eq!(
            FromAgentWire::terminal_event(&shutdown),
            Some(TerminalEvent::AgentGone)
        );
    }

    #[test]
    fn a_chunk_is_not_a_terminal_event_and_an_output_is_not_a_chunk() {
        let chunk = CommandChunk {
            output: "hi\n".into(),
            completed: true,
            exit_code: 2,
        };
        let body = FromAgentWire::chunk_body(&chunk);
        assert_eq!(FromAgentWire::command_chunk(&body), Some(chunk));
        assert_eq!(FromAgentWire::terminal_event(&body), None);
        let output =
            FromAgentWire::terminal_body(&TerminalEvent::Output(EscapedText::from_text("x")));
        assert_eq!(FromAgentWire::command_chunk(&output), None);
        assert_eq!(
            FromAgentWire::terminal_event(r#"{"kind":"output","data":"\ud800"}"#),
            None
        );
    }

    #[test]
    fn subjects_name_their_machine_and_nothing_else() {
        let machine = MachineId::parse("6f1c2a52-93a8-4c1e-9a3e-2f4b7e1d0c11").unwrap();
        let subject = agent_in_subject("eu", machine);
        assert_eq!(machine_of_agent_in("eu", &subject), Some(machine));
        assert_eq!(machine_of_agent_in("us", &subject), None);
        assert_eq!(machine_of_agent_in("eu", "fg.eu.agent.nope.in"), None);
        let wire = ToAgentWire::RouteTerminal {
            session_id: "s1".into(),
        };
        let body = AgentRequest::body(Some("iad-1"), wire.clone());
        assert_eq!(
            body,
            r#"{"to":"iad-1","kind":"route_terminal","sessionId":"s1"}"#
        );
        let read: AgentRequest = serde_json::from_str(&body).unwrap();
        assert_eq!(read.request, wire);
        assert!(read.is_for("iad-1") && !read.is_for("fra-1"));
        let anyone: AgentRequest = serde_json::from_str(&AgentRequest::body(None, wire)).unwrap();
        assert!(anyone.is_for("fra-1"));
    }
}
