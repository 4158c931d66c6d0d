//! `spawn_terminal` and `attach_terminal`: opening a shell through the agent's link, and
//! rebinding a live session to this socket.

use actix::{ActorFutureExt, AsyncContext, WrapFuture};
use actix_web_actors::ws::WebsocketContext;
use chrono::Utc;

use super::WebSession;
use crate::agent_link::AgentLink;
use crate::protocol::session_token::SessionTokenError;
use crate::protocol::{ErrorCode, MachineId, SessionId};
use crate::registry::{FindTerminal, RouteTerminal, TerminalInboxes, WatchInboxes};
use crate::repo::access::Action;
use crate::terminal::{AttachOwner, Owner, TerminalSession, TerminalSpec};

type Ctx = WebsocketContext<WebSession>;

/// A terminal about to open: what `spawn_terminal` decided.
struct Opening {
    session_id: SessionId,
    agent: AgentLink,
    size: (u16, u16),
    /// The machine's recording setting.
    recording: Option<bool>,
}

impl WebSession {
    /// `spawn_terminal`: checks access, audits, then opens the shell through the agent's link.
    pub(super) fn spawn_terminal(
        &mut self,
        machine: &str,
        cols: u16,
        rows: u16,
        request_id: Option<String>,
        ctx: &mut Ctx,
    ) {
        self.with_agent(machine, Action::Terminal, request_id, ctx, move |session, machine, agent, request_id, ctx| {
            let session_id = SessionId::random();
            let detail = serde_json::json!({ "sessionId": session_id.to_string(), "cols": cols, "rows": rows });
            session.after_audit("terminal.open", machine.id, detail, request_id, ctx, move |session, request_id, ctx| {
                let opening = Opening { session_id, agent, size: (cols, rows), recording: machine.recording };
                session.open_terminal(opening, request_id, ctx);
            });
        });
    }

    /// Starts a terminal (already authorised and audited) through the agent's link, and
    /// routes its owner's requests and the Registry's checked path to it.
    fn open_terminal(&mut self, opening: Opening, request_id: Option<String>, ctx: &mut Ctx) {
        let Opening {
            session_id,
            agent,
            size,
            recording,
        } = opening;
        let owner = Owner {
            connection_id: self.connection_id,
            deliver: ctx.address().recipient(),
        };
        let machine_id = agent.machine_id();
        let spec = TerminalSpec {
            session_id: session_id.clone(),
            agent: agent.clone(),
            user_id: self.user.user_id,
            cols: size.0,
            rows: size.1,
            owner,
            request_id,
            recording,
        };
        let (config, links, tokens) = (
            self.config.terminal.clone(),
            self.links.terminal.clone(),
            self.tokens.clone(),
        );
        let terminal = agent.start_terminal(session_id.clone(), move || {
            TerminalSession::new(spec, config, links, tokens)
        });
        let inboxes = TerminalInboxes {
            attach: terminal.clone().recipient(),
            requests: terminal.clone().recipient(),
            watch: Some(WatchInboxes {
                owner: self.user.user_id,
                join: terminal.clone().recipient(),
                leave: terminal.clone().recipient(),
                requests: terminal.clone().recipient(),
            }),
        };
        self.links.routing.route_terminal.do_send(RouteTerminal {
            session_id: session_id.clone(),
            machine_id,
            events: terminal.clone().recipient(),
            inboxes,
        });
        self.terminals.insert(session_id, terminal.recipient());
    }

    /// `attach_terminal`: rebinds a live session of this user to this socket, replaying the
    /// output after `seen_offset`.
    pub(super) fn attach(
        &mut self,
        token: &str,
        seen_offset: Option<u64>,
        request_id: Option<String>,
        ctx: &mut Ctx,
    ) {
        let claims = match self.tokens.verify(token, Utc::now().timestamp()) {
            Ok(claims) => claims,
            Err(err) => {
                self.audit(
                    "terminal.attach_refused",
                    None,
                    serde_json::json!({ "reason": err.to_string() }),
                );
                let message = match err {
                    SessionTokenError::Expired => "session token expired",
                    SessionTokenError::Invalid => "invalid session token",
                };
                return self.error(ctx, ErrorCode::Unauthenticated, message, request_id);
            }
        };
        if claims.user_id != self.user.user_id {
            tracing::warn!(security = true, user_id = %self.user.user_id, "attach with another user's session token");
            self.audit(
                "terminal.attach_refused",
                MachineId::parse(&claims.machine_id),
                serde_json::json!({ "reason": "other user", "sessionId": claims.session_id }),
            );
            return self.error(ctx, ErrorCode::Forbidden, "not your session", request_id);
        }
        let Some(session_id) = SessionId::parse(&claims.session_id) else {
            return self.error(
                ctx,
                ErrorCode::Unauthenticated,
                "invalid session token",
                request_id,
            );
        };
        let owner = Owner {
            connection_id: self.connection_id,
            deliver: ctx.address().recipient(),
        };
        let user_id = self.user.user_id;
        let machine_id = MachineId::parse(&claims.machine_id);
        let find = self.links.routing.find_terminal.send(FindTerminal {
            session_id: session_id.clone(),
            in_cluster: true,
        });
        // The session is recorded on this socket before the attach is sent, so that input typed
        // right after `terminal_opened` is never refused and a drop right after is noticed.
        ctx.spawn(find.into_actor(self).map(move |found, session, ctx| {
            let found = found.unwrap_or_else(|err| {
                tracing::error!(error = %err, "registry unreachable");
                None
            });
            let Some(inboxes) = found else {
                return session.error(
                    ctx,
                    ErrorCode::UnknownSession,
                    "session cannot be attached",
                    request_id,
                );
            };
            session
                .terminals
                .insert(session_id.clone(), inboxes.requests.clone());
            let attach = inboxes.attach.send(AttachOwner {
                user_id,
                owner,
                seen_offset,
            });
            ctx.spawn(
                attach
                    .into_actor(session)
                    .map(move |outcome, session, ctx| match outcome {
                        Ok(Ok(())) => session.audit(
                            "terminal.attach",
                            machine_id,
                            serde_json::json!({ "sessionId": session_id.to_string() }),
                        ),
                        Ok(Err(code)) => {
                            session.terminals.remove(&session_id);
                            session.error(ctx, code, "session cannot be attached", request_id);
                        }
                        Err(_) => {
                            session.terminals.remove(&session_id);
                            session.error(
                                ctx,
                                ErrorCode::UnknownSession,
                                "session cannot be attached",
                                request_id,
                            );
                        }
                    }),
            );
        }));
    }
}
