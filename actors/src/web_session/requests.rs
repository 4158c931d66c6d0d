//! Dispatching a client request, and what every request shares: the access check that yields
//! a link to the agent, and auditing before acting.

use actix::{ActorFutureExt, AsyncContext, WrapFuture};
use actix_web_actors::ws::WebsocketContext;

use super::WebSession;
use crate::agent_link::AgentLink;
use crate::protocol::web::{ClientFrame, ClientRequest};
use crate::protocol::{ErrorCode, MachineId, SessionId};
use crate::registry::OpenLink;
use crate::repo::access::{AccessError, Action, CheckAccess};
use crate::repo::audit::RecordAudit;
use crate::repo::machine_record::Machine;
use crate::terminal::OwnerRequest;

type Ctx = WebsocketContext<WebSession>;

impl WebSession {
    /// Handles one parsed client request.
    pub(super) fn dispatch(&mut self, frame: ClientFrame, ctx: &mut Ctx) {
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
                let input = move |request_id| OwnerRequest::Input {
                    from,
                    data,
                    request_id,
                };
                match self.typing_into(&session_id) {
                    Some(watched) => watched.do_send(input(request_id)),
                    None => self.forward_to_terminal(&session_id, request_id, ctx, input),
                }
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
            ClientRequest::WatchTerminal { session_id } => self.watch(&session_id, request_id, ctx),
            ClientRequest::UnwatchTerminal { session_id } => {
                self.unwatch(&session_id, request_id, ctx)
            }
            ClientRequest::SetWatcherInput {
                session_id,
                watcher_id,
                allowed,
            } => {
                let from = self.connection_id;
                self.forward_to_terminal(&session_id, request_id, ctx, |request_id| {
                    OwnerRequest::SetWatcherInput {
                        from,
                        watcher_id,
                        allowed,
                        request_id,
                    }
                })
            }
            ClientRequest::RemoveWatcher {
                session_id,
                watcher_id,
            } => {
                let from = self.connection_id;
                self.forward_to_terminal(&session_id, request_id, ctx, |request_id| {
                    OwnerRequest::RemoveWatcher {
                        from,
                        watcher_id,
                        request_id,
                    }
                })
            }
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
        let session_id = SessionId::parse(session_id);
        match session_id.as_ref().and_then(|id| self.terminals.get(id)) {
            Some(inbox) => inbox.do_send(request(request_id)),
            None if session_id.is_some_and(|id| self.watching.contains_key(&id)) => {
                self.refuse_watcher_request(request_id, ctx)
            }
            None => self.error(
                ctx,
                ErrorCode::UnknownSession,
                "no such session on this connection",
                request_id,
            ),
        }
    }

    /// Checks access, asks the Registry for a link to the agent, then runs `then` with it.
    pub(super) fn with_agent(
        &mut self,
        machine: &str,
        action: Action,
        request_id: Option<String>,
        ctx: &mut Ctx,
        then: impl FnOnce(&mut WebSession, Machine, AgentLink, Option<String>, &mut Ctx) + 'static,
    ) {
        let Some(machine_id) = MachineId::parse(machine) else {
            return self.error(
                ctx,
                ErrorCode::UnknownMachine,
                "no such machine",
                request_id,
            );
        };
        self.with_access(
            machine_id,
            action,
            request_id,
            ctx,
            move |session, machine, request_id, ctx| {
                let link = session
                    .links
                    .routing
                    .open_link
                    .send(OpenLink { machine_id });
                ctx.spawn(link.into_actor(session).map(
                    move |outcome, session, ctx| match outcome {
                        Ok(Ok(agent)) => then(session, machine, agent, request_id, ctx),
                        Ok(Err(why)) => {
                            session.error(ctx, why.code(), &why.to_string(), request_id)
                        }
                        Err(err) => session.access_failed(
                            AccessError::Database(err.to_string()),
                            machine_id,
                            action,
                            request_id,
                            ctx,
                        ),
                    },
                ));
            },
        );
    }

    /// Checks that this user may do `action` on `machine_id`, then runs `then` with the
    /// machine; a refusal is answered (and a denial audited) here.
    pub(super) fn with_access(
        &mut self,
        machine_id: MachineId,
        action: Action,
        request_id: Option<String>,
        ctx: &mut Ctx,
        then: impl FnOnce(&mut WebSession, Machine, Option<String>, &mut Ctx) + 'static,
    ) {
        let check = self.links.access.check.send(CheckAccess {
            user_id: self.user.user_id,
            machine_id,
            action,
        });
        ctx.spawn(check.into_actor(self).map(move |outcome, session, ctx| {
            match outcome.unwrap_or_else(|err| Err(AccessError::Database(err.to_string()))) {
                Ok(machine) => then(session, machine, request_id, ctx),
                Err(why) => session.access_failed(why, machine_id, action, request_id, ctx),
            }
        }));
    }

    /// Answers a failed access check.
    fn access_failed(
        &mut self,
        why: AccessError,
        machine_id: MachineId,
        action: Action,
        request_id: Option<String>,
        ctx: &mut Ctx,
    ) {
        match why {
            AccessError::UnknownMachine => self.error(
                ctx,
                ErrorCode::UnknownMachine,
                "no such machine",
                request_id,
            ),
            AccessError::Forbidden => {
                tracing::warn!(security = true, user_id = %self.user.user_id, %machine_id, action = action.level(), "access denied");
                self.audit(
                    "access.denied",
                    Some(machine_id),
                    serde_json::json!({ "action": action.level() }),
                );
                self.error(
                    ctx,
                    ErrorCode::Forbidden,
                    "not allowed on this machine",
                    request_id,
                );
            }
            AccessError::Database(err) => {
                tracing::error!(error = %err, "authorisation check failed");
                self.error(ctx, ErrorCode::Internal, "internal error", request_id);
            }
        }
    }

    /// Records an audit entry and runs `then` once it is committed: a security-relevant action
    /// reaches no agent before its audit entry is stored. If it cannot be stored, the request
    /// fails and nothing is done.
    pub(super) fn after_audit(
        &mut self,
        action: &'static str,
        machine_id: MachineId,
        detail: serde_json::Value,
        request_id: Option<String>,
        ctx: &mut Ctx,
        then: impl FnOnce(&mut WebSession, Option<String>, &mut Ctx) + 'static,
    ) {
        let stored = self.links.audit.send(RecordAudit {
            actor: self.user.user_id.to_string(),
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
}
