//! Watchers of a live session, read-only unless the owner hands one the keyboard. Each watcher
//! has its own bounded buffer and its own delivery in flight, so a slow watcher drops its own
//! output (`output_dropped`) and never holds up the owner or another watcher. The owner is told
//! who joins and leaves and may end any watcher; every leave and hand-over is audited (the join
//! is audited by the watcher's socket before it asks).

use actix::{AsyncContext, Context, Handler, Message, Recipient};

use super::output::deliver_then;
use super::{DELIVERY_BATCH, TerminalSession};
use crate::output_buffer::OutputBuffer;
use crate::protocol::escaped::EscapedText;
use crate::protocol::web::ServerEvent;
use crate::protocol::{ConnectionId, ErrorCode, UserId};
use crate::repo::audit::RecordAudit;
use crate::web_session::Deliver;

/// Most watchers one session admits.
pub const MAX_WATCHERS: usize = 16;

/// Recent output a new watcher gets before the live output (the current screen, about), bytes.
pub const WATCH_BACKLOG_BYTES: u64 = 64 * 1024;

/// Why a watcher stopped watching (the `reason` of `watcher_left` and `watch_ended`).
pub mod leave_reason {
    /// The watcher asked (`unwatch_terminal`).
    pub const LEFT: &str = "left";
    /// The watcher's socket closed.
    pub const DISCONNECTED: &str = "disconnected";
    /// The owner ended it (`remove_watcher`).
    pub const REMOVED: &str = "removed";
    /// The owner's socket closed: nobody is left to see who watches.
    pub const OWNER_DISCONNECTED: &str = "owner_disconnected";
}

/// A socket asks to watch the session (already authorised and audited by it).
#[derive(Message)]
#[rtype(result = "Result<(), ErrorCode>")]
pub struct JoinWatch {
    /// Who.
    pub user_id: UserId,
    /// Their display name, if known.
    pub name: Option<String>,
    /// The watching socket.
    pub connection_id: ConnectionId,
    /// Where its events go.
    pub deliver: Recipient<Deliver>,
    /// `requestId` of the `watch_terminal`, echoed on `terminal_watching`.
    pub request_id: Option<String>,
    /// Whether the owner may let this watcher type: it may open a terminal on this machine
    /// itself (never a viewer).
    pub may_type: bool,
}

/// A watcher stops watching.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct LeaveWatch {
    /// The watching socket.
    pub from: ConnectionId,
    /// One of [`leave_reason`].
    pub reason: &'static str,
}

/// One admitted watcher.
pub(super) struct Watcher {
    id: String,
    user_id: UserId,
    name: Option<String>,
    connection_id: ConnectionId,
    deliver: Recipient<Deliver>,
    buffer: OutputBuffer,
    delivering: bool,
    may_type: bool,
    /// The owner lets it type now.
    typing: bool,
}

impl Watcher {
    fn joined_event(&self, session_id: String) -> ServerEvent {
        ServerEvent::WatcherJoined {
            session_id,
            watcher_id: self.id.clone(),
            user_id: self.user_id.to_string(),
            name: self.name.clone(),
        }
    }

    fn input_event(&self, session_id: String) -> ServerEvent {
        ServerEvent::WatcherInput {
            session_id,
            watcher_id: self.id.clone(),
            allowed: self.typing,
        }
    }

    fn send(&self, events: Vec<ServerEvent>, request_id: Option<String>) {
        self.deliver.do_send(Deliver {
            request_id,
            ..Deliver::events(events)
        });
    }
}

impl TerminalSession {
    /// Admits a watcher: it gets `terminal_watching`, the recent output, then the live output;
    /// the owner gets `watcher_joined`.
    fn admit_watcher(&mut self, join: JoinWatch) -> Result<(), ErrorCode> {
        if self.ended || self.owner.is_none() {
            return Err(ErrorCode::UnknownSession);
        }
        if self.watchers.len() >= MAX_WATCHERS {
            return Err(ErrorCode::RateLimited);
        }
        if self
            .watchers
            .iter()
            .any(|w| w.connection_id == join.connection_id)
        {
            return Err(ErrorCode::InvalidField);
        }
        self.next_watcher += 1;
        let watcher = Watcher {
            id: format!("w{}", self.next_watcher),
            user_id: join.user_id,
            name: join.name,
            connection_id: join.connection_id,
            deliver: join.deliver,
            buffer: OutputBuffer::starting_at(self.config.buffer_bytes, self.buffer.end_offset()),
            delivering: false,
            may_type: join.may_type,
            typing: false,
        };
        let session_id = self.spec.session_id.to_string();
        let mut events = vec![ServerEvent::TerminalWatching {
            session_id: session_id.clone(),
            machine_id: self.spec.agent.machine_id().to_string(),
            owner_id: self.spec.user_id.to_string(),
            watcher_id: watcher.id.clone(),
            cols: self.size.0,
            rows: self.size.1,
        }];
        events.extend(self.recent_output());
        watcher.send(events, join.request_id);
        self.tell_owner(vec![watcher.joined_event(session_id)], None);
        tracing::info!(session_id = %self.spec.session_id, watcher = %watcher.id, user_id = %watcher.user_id, "watcher joined");
        self.watchers.push(watcher);
        Ok(())
    }

    /// The last output of the session, for a new watcher: what the owner was last handed and
    /// what still waits for the owner, with their offsets.
    fn recent_output(&self) -> Vec<ServerEvent> {
        let from = self.replay.end().saturating_sub(WATCH_BACKLOG_BYTES);
        let handed = self.replay.since(from);
        let waiting = self.buffer.peek();
        [(handed.offset, handed.data), (waiting.offset, waiting.data)]
            .into_iter()
            .filter(|(_, data)| !data.is_empty())
            .map(|(offset, data)| ServerEvent::TerminalOutput {
                session_id: self.spec.session_id.to_string(),
                data,
                offset,
            })
            .collect()
    }

    /// New output for every watcher, each at its own pace.
    pub(super) fn feed_watchers(&mut self, output: &EscapedText, ctx: &mut Context<Self>) {
        for index in 0..self.watchers.len() {
            self.watchers[index].buffer.push(output.clone());
            self.pump_watcher(index, ctx);
        }
    }

    /// Hands one watcher its buffered output, one delivery at a time.
    fn pump_watcher(&mut self, index: usize, ctx: &mut Context<Self>) {
        let Some(watcher) = self.watchers.get_mut(index) else {
            return;
        };
        if watcher.delivering || watcher.buffer.is_empty() {
            return;
        }
        let taken = watcher.buffer.take(DELIVERY_BATCH);
        watcher.delivering = true;
        let (deliver, watcher_id) = (watcher.deliver.clone(), watcher.id.clone());
        let events = self.output_events(taken);
        let done = WatcherDeliveryDone { watcher_id };
        deliver_then(&deliver, events, ctx.address(), done);
    }

    /// Removes a watcher: tells it (unless its socket is gone) and the owner, and audits.
    fn drop_watcher(&mut self, index: usize, reason: &'static str) {
        let watcher = self.watchers.remove(index);
        let session_id = self.spec.session_id.to_string();
        if reason != leave_reason::DISCONNECTED {
            let ended = ServerEvent::WatchEnded {
                session_id: session_id.clone(),
                reason,
            };
            watcher.send(vec![ended], None);
        }
        self.tell_owner(
            vec![ServerEvent::WatcherLeft {
                session_id: session_id.clone(),
                watcher_id: watcher.id.clone(),
                user_id: watcher.user_id.to_string(),
                reason,
            }],
            None,
        );
        self.audit_unwatch(&watcher, reason);
    }

    fn audit_unwatch(&self, watcher: &Watcher, reason: &str) {
        self.links.audit.do_send(RecordAudit {
            actor: watcher.user_id.to_string(),
            action: "terminal.unwatch",
            machine_id: Some(self.spec.agent.machine_id()),
            detail: serde_json::json!({
                "sessionId": self.spec.session_id.to_string(),
                "watcherId": watcher.id,
                "owner": self.spec.user_id.to_string(),
                "reason": reason,
            }),
            source_ip: None,
        });
    }

    /// The owner ends one watcher (`remove_watcher`).
    pub(super) fn remove_watcher(&mut self, watcher_id: &str, request_id: Option<String>) {
        match self.watchers.iter().position(|w| w.id == watcher_id) {
            Some(index) => self.drop_watcher(index, leave_reason::REMOVED),
            None => self.error_to_owner(
                ErrorCode::InvalidField,
                "no such watcher of this session",
                request_id,
            ),
        }
    }

    /// Ends every watcher for `reason` (the owner left).
    pub(super) fn drop_all_watchers(&mut self, reason: &'static str) {
        while !self.watchers.is_empty() {
            self.drop_watcher(0, reason);
        }
    }

    /// Watchers whose socket closed without a word.
    pub(super) fn drop_disconnected_watchers(&mut self) {
        while let Some(index) = self.watchers.iter().position(|w| !w.deliver.connected()) {
            self.drop_watcher(index, leave_reason::DISCONNECTED);
        }
    }

    /// The session ended: each watcher gets the output still waiting for it and the close.
    pub(super) fn close_watchers(&mut self, reason: &'static str) {
        let session_id = self.spec.session_id.to_string();
        for mut watcher in std::mem::take(&mut self.watchers) {
            let taken = watcher.buffer.take(usize::MAX);
            let mut events = self.output_events(taken);
            events.push(ServerEvent::TerminalClosed {
                session_id: session_id.clone(),
                reason,
            });
            watcher.send(events, None);
            self.audit_unwatch(&watcher, reason);
        }
    }

    /// `watcher_joined` for every current watcher (and `watcher_input` for those who may
    /// type), for an owner socket that just attached.
    pub(super) fn watcher_roll_call(&self) -> Vec<ServerEvent> {
        let session_id = self.spec.session_id.to_string();
        let mut events = Vec::new();
        for watcher in &self.watchers {
            events.push(watcher.joined_event(session_id.clone()));
            if watcher.typing {
                events.push(watcher.input_event(session_id.clone()));
            }
        }
        events
    }

    /// Whether `from` is a watcher the owner lets type.
    pub(super) fn typing_watcher(&self, from: ConnectionId) -> bool {
        self.watchers
            .iter()
            .any(|w| w.connection_id == from && w.typing)
    }

    /// The owner lets one watcher type, or stops it (hand-over): both are told, and it is
    /// audited. A watcher that may not open a terminal on this machine is never let type.
    pub(super) fn set_watcher_input(
        &mut self,
        watcher_id: &str,
        allowed: bool,
        request_id: Option<String>,
    ) {
        let Some(watcher) = self.watchers.iter_mut().find(|w| w.id == watcher_id) else {
            return self.error_to_owner(
                ErrorCode::InvalidField,
                "no such watcher of this session",
                request_id,
            );
        };
        if allowed && !watcher.may_type {
            return self.error_to_owner(
                ErrorCode::Forbidden,
                "this watcher may not open a terminal on this machine, so it may not type",
                request_id,
            );
        }
        watcher.typing = allowed;
        let session_id = self.spec.session_id.to_string();
        let event = watcher.input_event(session_id.clone());
        watcher.send(vec![event.clone()], None);
        let watcher_user = watcher.user_id.to_string();
        self.tell_owner(vec![event], request_id);
        self.links.audit.do_send(RecordAudit {
            actor: self.spec.user_id.to_string(),
            action: if allowed {
                "terminal.input_granted"
            } else {
                "terminal.input_revoked"
            },
            machine_id: Some(self.spec.agent.machine_id()),
            detail: serde_json::json!({
                "sessionId": session_id, "watcherId": watcher_id, "watcher": watcher_user,
            }),
            source_ip: None,
        });
    }
}

/// A watcher's socket has written its last delivery: the next may go.
#[derive(Message)]
#[rtype(result = "()")]
struct WatcherDeliveryDone {
    watcher_id: String,
}

impl Handler<WatcherDeliveryDone> for TerminalSession {
    type Result = ();

    fn handle(&mut self, done: WatcherDeliveryDone, ctx: &mut Context<Self>) {
        if let Some(index) = self.watchers.iter().position(|w| w.id == done.watcher_id) {
            self.watchers[index].delivering = false;
            self.pump_watcher(index, ctx);
        }
    }
}

impl Handler<JoinWatch> for TerminalSession {
    type Result = Result<(), ErrorCode>;

    fn handle(&mut self, join: JoinWatch, _: &mut Context<Self>) -> Self::Result {
        self.admit_watcher(join)
    }
}

impl Handler<LeaveWatch> for TerminalSession {
    type Result = ();

    fn handle(&mut self, leave: LeaveWatch, _: &mut Context<Self>) {
        if let Some(index) = self
            .watchers
            .iter()
            .position(|w| w.connection_id == leave.from)
        {
            self.drop_watcher(index, leave.reason);
        }
    }
}
