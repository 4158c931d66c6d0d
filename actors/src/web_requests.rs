//! What a `WebSession` does with each client request: authorise against the repository,
//! then open terminals, forward input, reattach, run commands, subscribe to status.

use actix::{Actor, ActorFutureExt, AsyncContext, Handler, WrapFuture};
use actix_web_actors::ws::WebsocketContext;
use chrono::Utc;

use crate::agent_link::AgentLink;
use crate::command::{CommandRun, CommandSpec};
use crate::protocol::session_token::SessionTokenError;
use crate::protocol::web::{ClientFrame, ClientRequest, ServerEvent};
use crate::protocol::{CommandId, ErrorCode, MachineId, SessionId};
use crate::registry::{
    FindTerminal, MachineStatusChanged, OpenLink, RouteCommand, RouteTerminal, SubscribeStatus,
    TerminalInboxes,
};
use crate::repo::access::{AccessError, Action, CheckAccess, VisibleMachines};
use crate::repo::audit::RecordAudit;
use crate::terminal::{AttachOwner, Owner, OwnerRequest, TerminalSession, TerminalSpec};
use crate::web_session::WebSession;

type Ctx = WebsocketContext<WebSession>;

impl WebSession {
    /// Handles one parsed client request.
    pub(crate) fn dispatch(&mut self, frame: ClientFrame, ctx: &mut Ctx) {
        let request_id = frame.request_id;
        match frame.request {
            ClientRequest::SubscribeMachines {} => self.subscribe(request_id, ctx),
            ClientRequest::SpawnTerminal {
                machine_id,
                cols,
                rows,
            } => self.spawn_terminal(&machine_id, cols, rows, request_id, ctx),
            ClientRequest::TerminalInput { session_id, data } => {
                let from = self.connection_id;
                self.forward_to_terminal(&session_id, request_id, ctx, |request_id| {
                    OwnerRequest::Input {
                        from,
                        data,
                        request_id,
                    }
                })
            }
            ClientRequest::TerminalResize {
                session_id,
                cols,
                rows,
            } => {
                let from = self.connection_id;
                self.forward_to_terminal(&session_id, request_id, ctx, |_| OwnerRequest::Resize {
                    from,
                    cols,
                    rows,
                })
            }
            ClientRequest::CloseTerminal { session_id } => {
                let from = self.connection_id;
                self.forward_to_terminal(&session_id, request_id, ctx, |_| OwnerRequest::Close {
                    from,
                })
            }
            ClientRequest::AttachTerminal {
                session_token,
                offset,
            } => self.attach(&session_token, offset, request_id, ctx),
            ClientRequest::ExecuteCommand {
                machine_id,
                command,
                timeout_secs,
            } => self.execute(&machine_id, command, timeout_secs, request_id, ctx),
        }
    }

    /// Forwards a request to one of this socket's sessions.
    fn forward_to_terminal(
        &mut self,
        session_id: &str,
        request_id: Option<String>,
        ctx: &mut Ctx,
        request: impl FnOnce(Option<String>) -> OwnerRequest,
    ) {
        match SessionId::parse(session_id).and_then(|id| self.terminals.get(&id)) {
            Some(inbox) => inbox.do_send(request(request_id)),
            None => self.error(
                ctx,
                ErrorCode::UnknownSession,
                "no such session on this connection",
                request_id,
            ),
        }
    }

    /// Checks access, asks the Registry for a link to the agent, then runs `then` with it.
    fn with_agent(
        &mut self,
        machine: &str,
        action: Action,
        request_id: Option<String>,
        ctx: &mut Ctx,
        then: impl FnOnce(&mut WebSession, MachineId, AgentLink, Option<String>, &mut Ctx) + 'static,
    ) {
        let Some(machine_id) = MachineId::parse(machine) else {
            return self.error(
                ctx,
                ErrorCode::UnknownMachine,
                "no such machine",
                request_id,
            );
        };
        let check = CheckAccess {
            user_id: self.user.user_id.clone(),
            machine_id,
            action,
        };
        let open_link = self.links.routing.open_link.clone();
        let lookup = self.links.access.check.send(check);
        let work = async move {
            match lookup.await {
                Ok(Ok(_machine)) => open_link
                    .send(OpenLink { machine_id })
                    .await
                    .map_err(|err| AccessError::Database(err.to_string())),
                Ok(Err(err)) => Err(err),
                Err(err) => Err(AccessError::Database(err.to_string())),
            }
        };
        ctx.spawn(work.into_actor(self).map(move |outcome, session, ctx| match outcome {
            Ok(Some(agent)) => then(session, machine_id, agent, request_id, ctx),
            Ok(None) => session.error(ctx, ErrorCode::MachineOffline, "machine is offline", request_id),
            Err(AccessError::UnknownMachine) => session.error(ctx, ErrorCode::UnknownMachine, "no such machine", request_id),
            Err(AccessError::Forbidden) => {
                tracing::warn!(security = true, user_id = %session.user.user_id, %machine_id, action = action.level(), "access denied");
                session.audit("access.denied", Some(machine_id), serde_json::json!({ "action": action.level() }));
                session.error(ctx, ErrorCode::Forbidden, "not allowed on this machine", request_id);
            }
            Err(AccessError::Database(err)) => {
                tracing::error!(error = %err, "authorisation check failed");
                session.error(ctx, ErrorCode::Internal, "internal error", request_id);
            }
        }));
    }

    fn spawn_terminal(
        &mut self,
        machine: &str,
        cols: u16,
        rows: u16,
        request_id: Option<String>,
        ctx: &mut Ctx,
    ) {
        self.with_agent(machine, Action::Terminal, request_id, ctx, move |session, machine_id, agent, request_id, ctx| {
            let session_id = SessionId::random();
            let detail = serde_json::json!({ "sessionId": session_id.to_string(), "cols": cols, "rows": rows });
            session.after_audit("terminal.open", machine_id, detail, request_id, ctx, move |session, request_id, ctx| {
                session.open_terminal(session_id, agent, (cols, rows), request_id, ctx);
            });
        });
    }

    /// Starts a terminal (already authorised and audited) through the agent's link, and
    /// routes its owner's requests and the Registry's checked path to it.
    fn open_terminal(
        &mut self,
        session_id: SessionId,
        agent: AgentLink,
        size: (u16, u16),
        request_id: Option<String>,
        ctx: &mut Ctx,
    ) {
        let owner = Owner {
            connection_id: self.connection_id,
            deliver: ctx.address().recipient(),
        };
        let machine_id = agent.machine_id();
        let spec = TerminalSpec {
            session_id: session_id.clone(),
            agent: agent.clone(),
            user_id: self.user.user_id.clone(),
            cols: size.0,
            rows: size.1,
            owner,
            request_id,
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
        };
        self.links.routing.route_terminal.do_send(RouteTerminal {
            session_id: session_id.clone(),
            machine_id,
            events: terminal.clone().recipient(),
            inboxes,
        });
        self.terminals.insert(session_id, terminal.recipient());
    }

    /// Records an audit entry and runs `then` once it is committed: a security-relevant action
    /// reaches no agent before its audit entry is stored. If it cannot be stored, the request
    /// fails and nothing is done.
    fn after_audit(
        &mut self,
        action: &'static str,
        machine_id: MachineId,
        detail: serde_json::Value,
        request_id: Option<String>,
        ctx: &mut Ctx,
        then: impl FnOnce(&mut WebSession, Option<String>, &mut Ctx) + 'static,
    ) {
        let stored = self.links.audit.send(RecordAudit {
            actor: self.user.user_id.clone(),
            action,
            machine_id: Some(machine_id),
            detail,
            source_ip: self.source_ip.clone(),
        });
        ctx.spawn(
            stored
                .into_actor(self)
                .map(move |outcome, session, ctx| match outcome {
                    Ok(Ok(())) => then(session, request_id, ctx),
                    _ => {
                        tracing::error!(action, "audit entry not stored; request refused");
                        session.error(
                            ctx,
                            ErrorCode::Internal,
                            "the action could not be audited",
                            request_id,
                        );
                    }
                }),
        );
    }

    fn execute(
        &mut self,
        machine: &str,
        command: String,
        timeout_secs: Option<u64>,
        request_id: Option<String>,
        ctx: &mut Ctx,
    ) {
        let timeout =
            timeout_secs.map_or(self.config.command_timeout, std::time::Duration::from_secs);
        self.with_agent(
            machine,
            Action::Command,
            request_id,
            ctx,
            move |session, machine_id, agent, request_id, ctx| {
                let command_id = CommandId::random();
                let detail =
                    serde_json::json!({ "commandId": command_id.to_string(), "command": command });
                session.after_audit(
                    "command.run",
                    machine_id,
                    detail,
                    request_id,
                    ctx,
                    move |session, request_id, ctx| {
                        let spec = CommandSpec {
                            command_id: command_id.clone(),
                            agent,
                            user_id: session.user.user_id.clone(),
                            command,
                            timeout,
                            requester: Some(ctx.address().recipient()),
                            request_id,
                            on_started: None,
                        };
                        let run = CommandRun::new(spec, session.links.command.clone()).start();
                        session.links.routing.route_command.do_send(RouteCommand {
                            command_id,
                            machine_id,
                            chunks: run.recipient(),
                        });
                    },
                );
            },
        );
    }

    fn attach(
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
        let user_id = self.user.user_id.clone();
        let machine_id = MachineId::parse(&claims.machine_id);
        let find = self.links.routing.find_terminal.send(FindTerminal {
            session_id: session_id.clone(),
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

    fn subscribe(&mut self, request_id: Option<String>, ctx: &mut Ctx) {
        let visible = self.links.access.visible.send(VisibleMachines {
            user_id: self.user.user_id.clone(),
        });
        ctx.spawn(visible.into_actor(self).map(move |outcome, session, ctx| {
            let machines = match outcome {
                Ok(Ok(machines)) => machines,
                Ok(Err(AccessError::Forbidden)) => {
                    return session.error(ctx, ErrorCode::Forbidden, "not allowed", request_id);
                }
                _ => return session.error(ctx, ErrorCode::Internal, "internal error", request_id),
            };
            for machine in machines {
                let event = ServerEvent::MachineStatus {
                    machine_id: machine.id.to_string(),
                    hostname: machine.hostname,
                    status: if machine.status == "online" {
                        "online"
                    } else {
                        "offline"
                    },
                    last_seen: machine.last_seen.map(|t| t.to_rfc3339()),
                };
                session.send_text(ctx, event.to_json(request_id.as_deref()));
            }
            if !session.subscribed {
                session.subscribed = true;
                session
                    .links
                    .routing
                    .subscribe_status
                    .do_send(SubscribeStatus {
                        subscriber: ctx.address().recipient(),
                    });
            }
        }));
    }
}

impl Handler<MachineStatusChanged> for WebSession {
    type Result = ();

    fn handle(&mut self, change: MachineStatusChanged, ctx: &mut Ctx) {
        let check = CheckAccess {
            user_id: self.user.user_id.clone(),
            machine_id: change.machine_id,
            action: Action::View,
        };
        let allowed = self.links.access.check.send(check);
        ctx.spawn(allowed.into_actor(self).map(move |outcome, session, ctx| {
            if matches!(outcome, Ok(Ok(_))) {
                let event = ServerEvent::MachineStatus {
                    machine_id: change.machine_id.to_string(),
                    hostname: change.hostname,
                    status: if change.online { "online" } else { "offline" },
                    last_seen: Some(change.at.to_rfc3339()),
                };
                session.send_text(ctx, event.to_json(None));
            }
        }));
    }
}
