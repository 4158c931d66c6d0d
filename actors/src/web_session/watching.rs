//! `watch_terminal` and `unwatch_terminal`: joining another user's live session read-only.
//! A watcher needs the `observe` grant on the session's machine (admins need none; the
//! session's own user needs none either); the join is audited before it is asked for, and
//! anything a watcher sends towards the session is refused here and never reaches the agent,
//! but for its keystrokes while the owner lets it type (hand-over).

use actix::{ActorFutureExt, AsyncContext, WrapFuture};
use actix_web_actors::ws::WebsocketContext;

use super::WebSession;
use crate::protocol::{ErrorCode, SessionId};
use crate::registry::{FindWatchable, Watchable};
use crate::repo::access::{Action, CheckAccess};
use crate::security_events::SecurityEvent;
use crate::terminal::{JoinWatch, LeaveWatch, OwnerRequest, leave_reason};

type Ctx = WebsocketContext<WebSession>;

/// A session this socket watches.
pub(super) struct Watched {
    /// Where to say it leaves.
    pub(super) leave: actix::Recipient<LeaveWatch>,
    /// Where its input goes while the owner lets it type.
    pub(super) requests: actix::Recipient<OwnerRequest>,
    /// The owner lets it type (the last `watcher_input` said so).
    pub(super) typing: bool,
}

impl WebSession {
    /// `watch_terminal`: finds the live session, checks `observe`, audits, then joins.
    pub(super) fn watch(&mut self, session_id: &str, request_id: Option<String>, ctx: &mut Ctx) {
        let Some(session_id) = SessionId::parse(session_id) else {
            return self.error(
                ctx,
                ErrorCode::UnknownSession,
                "no such session",
                request_id,
            );
        };
        if self.watching.contains_key(&session_id) || self.terminals.contains_key(&session_id) {
            return self.error(
                ctx,
                ErrorCode::InvalidField,
                "this connection already has this session",
                request_id,
            );
        }
        let find = self.links.routing.find_watchable.send(FindWatchable {
            session_id: session_id.clone(),
        });
        ctx.spawn(find.into_actor(self).map(move |found, session, ctx| {
            let found = found.unwrap_or_else(|err| {
                tracing::error!(error = %err, "registry unreachable");
                None
            });
            let Some(target) = found else {
                return session.error(
                    ctx,
                    ErrorCode::UnknownSession,
                    "no such live session on this instance",
                    request_id,
                );
            };
            if target.inboxes.owner == session.user.user_id {
                return session.audit_and_join(session_id, target, request_id, ctx);
            }
            let machine_id = target.machine_id;
            session.with_access(
                machine_id,
                Action::Observe,
                request_id,
                ctx,
                move |session, _machine, request_id, ctx| {
                    session.audit_and_join(session_id, target, request_id, ctx);
                },
            );
        }));
    }

    /// Audits the join, then asks the session to admit this socket.
    fn audit_and_join(
        &mut self,
        session_id: SessionId,
        target: Watchable,
        request_id: Option<String>,
        ctx: &mut Ctx,
    ) {
        let detail = serde_json::json!({
            "sessionId": session_id.to_string(),
            "owner": target.inboxes.owner.to_string(),
        });
        let machine_id = target.machine_id;
        self.after_audit(
            "terminal.watch",
            machine_id,
            detail,
            request_id,
            ctx,
            move |session, request_id, ctx| {
                // May the owner hand this watcher the keyboard? Only if it could open a
                // terminal here itself.
                let check = session.links.access.check.send(CheckAccess {
                    user_id: session.user.user_id,
                    machine_id,
                    action: Action::Terminal,
                });
                ctx.spawn(check.into_actor(session).map(move |checked, session, ctx| {
                    let may_type = matches!(checked, Ok(Ok(_)));
                    session.join_watch(session_id, target, may_type, request_id, ctx);
                }));
            },
        );
    }

    /// Asks the session to admit this socket (the join is audited).
    fn join_watch(
        &mut self,
        session_id: SessionId,
        target: Watchable,
        may_type: bool,
        request_id: Option<String>,
        ctx: &mut Ctx,
    ) {
        let machine_id = target.machine_id;
        // Recorded before the join is sent: anything the watcher sends right after
        // `terminal_watching` is refused as a watcher's, and a close is noticed.
        let watched = Watched {
            leave: target.inboxes.leave.clone(),
            requests: target.inboxes.requests.clone(),
            typing: false,
        };
        self.watching.insert(session_id.clone(), watched);
        let join = target.inboxes.join.send(JoinWatch {
            user_id: self.user.user_id,
            name: self.user.name.clone(),
            connection_id: self.connection_id,
            deliver: ctx.address().recipient(),
            request_id: request_id.clone(),
            may_type,
        });
        ctx.spawn(join.into_actor(self).map(move |outcome, session, ctx| {
            let code = match outcome {
                Ok(Ok(())) => return,
                Ok(Err(code)) => code,
                Err(_) => ErrorCode::UnknownSession,
            };
            session.watching.remove(&session_id);
            let message = match code {
                ErrorCode::RateLimited => "this session has as many watchers as it admits",
                _ => "session cannot be watched (it ended, or its owner is away)",
            };
            session.audit(
                "terminal.watch_refused",
                Some(machine_id),
                serde_json::json!({ "sessionId": session_id.to_string(), "reason": message }),
            );
            session.error(ctx, code, message, request_id);
        }));
    }

    /// `unwatch_terminal`: the session answers with `watch_ended`.
    pub(super) fn unwatch(&mut self, session_id: &str, request_id: Option<String>, ctx: &mut Ctx) {
        let watched = SessionId::parse(session_id).and_then(|id| self.watching.remove(&id));
        match watched {
            Some(watched) => watched.leave.do_send(LeaveWatch {
                from: self.connection_id,
                reason: leave_reason::LEFT,
            }),
            None => self.error(
                ctx,
                ErrorCode::UnknownSession,
                "this connection does not watch that session",
                request_id,
            ),
        }
    }

    /// Where this socket's input for `session_id` goes, if it watches that session and the
    /// owner lets it type.
    pub(super) fn typing_into(&self, session_id: &str) -> Option<actix::Recipient<OwnerRequest>> {
        let watched = self.watching.get(&SessionId::parse(session_id)?)?;
        watched.typing.then(|| watched.requests.clone())
    }

    /// A watcher sent input, a resize, a close or a watcher removal: refused, reported as a
    /// security event, and nothing is forwarded.
    pub(super) fn refuse_watcher_request(&mut self, request_id: Option<String>, ctx: &mut Ctx) {
        self.links.security.report(SecurityEvent {
            actor: self.user.user_id.to_string(),
            action: "security.watcher_input_refused",
            machine_id: None,
            peer: self.source_ip.clone(),
            detail: serde_json::json!({}),
        });
        self.error(
            ctx,
            ErrorCode::Forbidden,
            "you are watching this session read-only",
            request_id,
        );
    }
}
