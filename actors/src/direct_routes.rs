//! An agent socket's own table of its terminals: output goes straight to the terminal
//! actor instead of through the registry, saving two cross-thread hops per frame. Only
//! sessions opened on this agent are in it, so an agent can never reach another machine's
//! terminal this way; frames for sessions not in it take the registry's checked path.

use std::collections::HashMap;

use actix::Recipient;

use crate::protocol::SessionId;
use crate::terminal::TerminalEvent;

/// Terminals of one agent socket.
#[derive(Debug, Default)]
pub struct DirectRoutes {
    terminals: HashMap<SessionId, Recipient<TerminalEvent>>,
}

impl DirectRoutes {
    /// Routes `session_id`'s events to `events` from now on.
    pub fn add(&mut self, session_id: SessionId, events: Recipient<TerminalEvent>) {
        self.terminals.insert(session_id, events);
    }

    /// Forgets a session.
    pub fn remove(&mut self, session_id: &SessionId) {
        self.terminals.remove(session_id);
    }

    /// Delivers `event` to the session's terminal; gives it back when the session is not
    /// routed here (or its terminal is gone), for the registry to handle.
    pub fn deliver(
        &mut self,
        session_id: &SessionId,
        event: TerminalEvent,
    ) -> Result<(), TerminalEvent> {
        let Some(terminal) = self.terminals.get(session_id) else {
            return Err(event);
        };
        let last = matches!(event, TerminalEvent::Exited(_));
        match terminal.try_send(event) {
            Ok(()) => {
                if last {
                    self.terminals.remove(session_id);
                }
                Ok(())
            }
            Err(actix::dev::SendError::Full(event)) => {
                // A busy terminal: queue regardless of capacity, as the registry path does.
                terminal.do_send(event);
                Ok(())
            }
            Err(actix::dev::SendError::Closed(event)) => {
                self.terminals.remove(session_id);
                Err(event)
            }
        }
    }
}
