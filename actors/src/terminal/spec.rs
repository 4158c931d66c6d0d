//! What a terminal session is made of and the messages it takes.

use std::time::Duration;

use actix::{Message, Recipient};

use crate::agent_link::AgentLink;
use crate::protocol::escaped::EscapedText;
use crate::protocol::{ConnectionId, ErrorCode, SessionId, UserId};
use crate::registry::DropTerminal;
use crate::repo::audit::RecordAudit;
use crate::repo::session::{SessionClosed, SessionOpened};
use crate::web_session::Deliver;

/// Limits and timings of terminal sessions.
#[derive(Debug, Clone)]
pub struct TerminalConfig {
    /// Input messages per second.
    pub msgs_per_sec: u32,
    /// Input burst.
    pub burst: u32,
    /// Undelivered output bound, bytes.
    pub buffer_bytes: usize,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Reattach grace period after the owner socket drops.
    pub grace: Duration,
    /// Output already handed to the owner kept for replay after a reattach, bytes.
    pub replay_bytes: usize,
    /// Output an agent with `flow_control` may send ahead of what the owner has read, bytes.
    pub flow_window: u64,
    /// Where the session is recorded; `None`: not recorded.
    pub recording: Option<crate::recording::RecordingConfig>,
}

/// The actors a terminal session talks to.
#[derive(Clone)]
pub struct TerminalLinks {
    /// `Registry`: withdraw the route when done.
    pub drop_route: Recipient<DropTerminal>,
    /// `SessionRepo`: opened.
    pub opened: Recipient<SessionOpened>,
    /// `SessionRepo`: closed.
    pub closed: Recipient<SessionClosed>,
    /// `AuditRepo`.
    pub audit: Recipient<RecordAudit>,
}

/// The socket currently owning a session.
#[derive(Clone)]
pub struct Owner {
    /// The owner socket's connection.
    pub connection_id: ConnectionId,
    /// Where its events go.
    pub deliver: Recipient<Deliver>,
}

/// Everything a new session needs to know.
pub struct TerminalSpec {
    /// The session.
    pub session_id: SessionId,
    /// The way to the machine's agent (its id, secret and capabilities too).
    pub agent: AgentLink,
    /// Owner's user id (a UUID string).
    pub user_id: UserId,
    /// Initial size.
    pub cols: u16,
    /// Initial size.
    pub rows: u16,
    /// The opening socket.
    pub owner: Owner,
    /// `requestId` of the `spawn_terminal`.
    pub request_id: Option<String>,
    /// The machine's recording setting (`None`: the server's `recording.mode`).
    pub recording: Option<bool>,
}

/// What the agent side reports for a session.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum TerminalEvent {
    /// Shell output, as the agent escaped it.
    Output(EscapedText),
    /// The shell exited (agents with `terminal_exit`).
    Exited(i32),
    /// The agent disconnected.
    AgentGone,
    /// The server is shutting down.
    ServerShutdown,
}

/// A request from a socket of the owning user.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum OwnerRequest {
    /// Keystrokes.
    Input {
        /// Sending socket.
        from: ConnectionId,
        /// The keystrokes.
        data: String,
        /// Echoed on errors.
        request_id: Option<String>,
    },
    /// Resize.
    Resize {
        /// Sending socket.
        from: ConnectionId,
        /// Columns.
        cols: u16,
        /// Rows.
        rows: u16,
    },
    /// Close the session.
    Close {
        /// Sending socket.
        from: ConnectionId,
    },
    /// The owner socket closed.
    OwnerGone {
        /// The closed socket.
        from: ConnectionId,
    },
    /// The owner ends one watcher.
    RemoveWatcher {
        /// Sending socket.
        from: ConnectionId,
        /// From `watcher_joined`.
        watcher_id: String,
        /// Echoed on errors.
        request_id: Option<String>,
    },
    /// The owner lets one watcher type, or stops it.
    SetWatcherInput {
        /// Sending socket.
        from: ConnectionId,
        /// From `watcher_joined`.
        watcher_id: String,
        /// Whether the watcher may type.
        allowed: bool,
        /// Echoed on errors.
        request_id: Option<String>,
    },
    /// An administrator ended the session.
    Kill,
}

/// Re-bind the session to another socket of the same user.
#[derive(Message)]
#[rtype(result = "Result<(), ErrorCode>")]
pub struct AttachOwner {
    /// The user asking (must be the owner).
    pub user_id: UserId,
    /// The new owner socket.
    pub owner: Owner,
    /// The offset just past the last output byte the client received, when it knows it:
    /// output after it is sent again first.
    pub seen_offset: Option<u64>,
}
