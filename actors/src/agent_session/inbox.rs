//! What an agent's socket takes from the rest of the server: control messages and frames to
//! send. Only [`crate::agent_link::AgentLink`] and the Registry send them.

use actix::{Message, Recipient};

use crate::protocol::{MachineId, SessionId};
use crate::terminal::TerminalEvent;

/// Something for an agent's socket to do.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum ToAgent {
    /// Close the socket with this code.
    Disconnect {
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: &'static str,
    },
    /// Hand this session's output straight to its terminal (no hop through the registry).
    /// Sent by [`crate::agent_link::AgentLink::start_terminal`] from the terminal's own start,
    /// before the shell is spawned, so all of the session's output takes this one path and
    /// stays in order.
    RouteTerminal {
        /// The session.
        session_id: SessionId,
        /// Its terminal's event inbox.
        events: Recipient<TerminalEvent>,
    },
    /// The session ended: forget its route.
    DropTerminal {
        /// The session.
        session_id: SessionId,
    },
}

/// Why a frame could not be routed to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The machine has no connected agent.
    #[error("machine is offline")]
    MachineOffline,
    /// The machine's agent is connected to another instance that cannot be reached (NATS is
    /// away, or that instance did not answer).
    #[error("the machine's region is unreachable")]
    RegionUnreachable,
    /// The machine's instance did not answer in time.
    #[error("the machine's instance did not answer in time")]
    Timeout,
}

impl RouteError {
    /// The error code a web client is told.
    pub fn code(self) -> crate::protocol::ErrorCode {
        use crate::protocol::ErrorCode;
        match self {
            RouteError::MachineOffline => ErrorCode::MachineOffline,
            RouteError::RegionUnreachable => ErrorCode::RegionUnreachable,
            RouteError::Timeout => ErrorCode::Timeout,
        }
    }
}

/// Send a frame to a machine's agent; refused unless the socket is registered as that machine.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), RouteError>")]
pub struct SendToAgent {
    /// The machine.
    pub machine_id: MachineId,
    /// The text frame.
    pub frame: String,
}
