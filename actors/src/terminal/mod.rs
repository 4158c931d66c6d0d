//! `TerminalSession`: one open shell. Owner input is rate limited and signed towards the agent;
//! agent output goes to the owner socket only, through a bounded buffer.

use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, SpawnHandle, WrapFuture,
};
use chrono::Utc;

use crate::output_buffer::OutputBuffer;
use crate::protocol::envelope::{SignedKind, sign_now};
use crate::protocol::payloads::{CLOSE_PAYLOAD, input_payload, resize_payload};
use crate::protocol::server::spawn_shell_frame;
use crate::protocol::session_token::{SessionClaims, SessionTokens};
use crate::protocol::web::ServerEvent;
use crate::protocol::{ConnectionId, ErrorCode, ErrorFrame};
use crate::rate_limit::TokenBucket;
use crate::registry::DropTerminal;
use crate::replay_log::ReplayLog;
use crate::repo::audit::RecordAudit;
use crate::repo::session::{SessionClosed, SessionOpened};
use crate::web_session::Deliver;

mod output;
mod record;
mod spec;
mod watchers;

pub use spec::{
    AttachOwner, Owner, OwnerRequest, TerminalConfig, TerminalEvent, TerminalLinks, TerminalSpec,
};
pub use watchers::{JoinWatch, LeaveWatch, MAX_WATCHERS, WATCH_BACKLOG_BYTES, leave_reason};

/// Most output handed to the owner in one delivery, bytes.
const DELIVERY_BATCH: usize = 64 * 1024;

/// One open shell.
pub struct TerminalSession {
    spec: TerminalSpec,
    config: TerminalConfig,
    links: TerminalLinks,
    tokens: SessionTokens,
    owner: Option<Owner>,
    bucket: TokenBucket,
    buffer: OutputBuffer,
    replay: ReplayLog,
    delivering: bool,
    size: (u16, u16),
    output_seen: bool,
    credit_owed: u64,
    last_activity: Instant,
    grace_timer: Option<SpawnHandle>,
    bytes_in: u64,
    bytes_out: u64,
    ended: bool,
    recorder: Option<actix::Addr<crate::recording::Recorder>>,
    watchers: Vec<watchers::Watcher>,
    next_watcher: u64,
}

impl TerminalSession {
    /// A session for `spec`; it opens the shell when started.
    pub fn new(
        spec: TerminalSpec,
        config: TerminalConfig,
        links: TerminalLinks,
        tokens: SessionTokens,
    ) -> Self {
        let now = Instant::now();
        Self {
            owner: Some(spec.owner.clone()),
            bucket: TokenBucket::new(config.msgs_per_sec, config.burst, now),
            buffer: OutputBuffer::new(config.buffer_bytes),
            replay: ReplayLog::new(config.replay_bytes),
            size: (spec.cols, spec.rows),
            output_seen: false,
            credit_owed: 0,
            spec,
            config,
            links,
            tokens,
            delivering: false,
            last_activity: now,
            grace_timer: None,
            bytes_in: 0,
            bytes_out: 0,
            ended: false,
            recorder: None,
            watchers: Vec::new(),
            next_watcher: 0,
        }
    }

    fn is_owner(&self, connection: ConnectionId) -> bool {
        self.owner
            .as_ref()
            .is_some_and(|o| o.connection_id == connection)
    }

    fn tell_owner(&self, events: Vec<ServerEvent>, request_id: Option<String>) {
        if let Some(owner) = &self.owner {
            owner.deliver.do_send(Deliver {
                request_id,
                ..Deliver::events(events)
            });
        }
    }

    fn error_to_owner(&self, code: ErrorCode, message: &str, request_id: Option<String>) {
        if let Some(owner) = &self.owner {
            let error = ErrorFrame {
                code,
                message: message.to_owned(),
                request_id,
            };
            owner.deliver.do_send(Deliver {
                events: Vec::new(),
                request_id: None,
                error: Some(error),
                relayed: Vec::new(),
            });
        }
    }

    /// `terminal_opened` with a token valid for one grace period from now.
    fn opened_event(&self) -> ServerEvent {
        let expires = Utc::now()
            + chrono::Duration::from_std(self.config.grace)
                .unwrap_or(chrono::Duration::seconds(60));
        let token = self.tokens.issue(&SessionClaims {
            session_id: self.spec.session_id.to_string(),
            user_id: self.spec.user_id,
            machine_id: self.spec.agent.machine_id().to_string(),
            expires_at: expires.timestamp(),
        });
        ServerEvent::TerminalOpened {
            session_id: self.spec.session_id.to_string(),
            machine_id: self.spec.agent.machine_id().to_string(),
            session_token: token,
            expires_at: expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    /// Signs and sends one envelope to the agent.
    fn send_signed(&self, kind: SignedKind, payload: &str) {
        let frame = sign_now(
            kind,
            self.spec.session_id.as_str(),
            &self.spec.agent.machine_id().to_string(),
            payload,
            self.spec.agent.secret().expose(),
        );
        self.spec.agent.post(frame);
    }

    /// Ends the session once: tells the owner and the agent, records it, withdraws the route.
    fn end(&mut self, reason: &'static str, ctx: &mut Context<Self>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let session_id = self.spec.session_id.to_string();
        // Output still buffered (at most the buffer limit) goes out before the close, so the
        // last screen of a finished command is never lost.
        let mut events = self.take_output(usize::MAX);
        events.push(ServerEvent::TerminalClosed {
            session_id: session_id.clone(),
            reason,
        });
        self.tell_owner(events, None);
        self.close_watchers(reason);
        let recorded = self.finish_recording();
        let agent_still_has_shell = !matches!(reason, "agent_disconnected" | "shell_exited");
        if agent_still_has_shell && self.spec.agent.capabilities().terminal_close {
            self.send_signed(SignedKind::TerminalClose, CLOSE_PAYLOAD);
        }
        self.links.closed.do_send(SessionClosed {
            session_id: self.spec.session_id.clone(),
            at: Utc::now(),
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            reason,
        });
        self.links.audit.do_send(RecordAudit {
            actor: self.spec.user_id.to_string(),
            action: "terminal.close",
            machine_id: Some(self.spec.agent.machine_id()),
            detail: serde_json::json!({
                "sessionId": session_id, "reason": reason,
                "bytesIn": self.bytes_in, "bytesOut": self.bytes_out,
                "recording": recorded.then(|| format!("/api/v1/sessions/{session_id}/recording")),
            }),
            source_ip: None,
        });
        self.links.drop_route.do_send(DropTerminal {
            session_id: self.spec.session_id.clone(),
        });
        tracing::info!(session_id = %self.spec.session_id, reason, "terminal session ended");
        ctx.stop();
    }

    /// The owner socket is gone: keep the shell for the grace period, then end the session.
    fn owner_gone(&mut self, ctx: &mut Context<Self>) {
        self.owner = None;
        self.drop_all_watchers(leave_reason::OWNER_DISCONNECTED);
        let grace = self.config.grace;
        self.grace_timer = Some(ctx.run_later(grace, |session, ctx| {
            if session.owner.is_none() {
                session.end("owner_gone", ctx);
            }
        }));
    }

    fn input(&mut self, data: String, request_id: Option<String>) {
        if !self.bucket.try_take(Instant::now()) {
            crate::instruments::rate_limited("terminal_input");
            self.links.audit.do_send(RecordAudit {
                actor: self.spec.user_id.to_string(),
                action: "security.rate_limited",
                machine_id: Some(self.spec.agent.machine_id()),
                detail: serde_json::json!({ "sessionId": self.spec.session_id.to_string() }),
                source_ip: None,
            });
            return self.error_to_owner(
                ErrorCode::RateLimited,
                "terminal input rate limit exceeded; input dropped",
                request_id,
            );
        }
        self.last_activity = Instant::now();
        self.bytes_in += data.len() as u64;
        self.record_input(&data);
        self.send_signed(SignedKind::TerminalInput, &input_payload(&data));
    }

    fn resize(&mut self, cols: u16, rows: u16) {
        self.size = (cols, rows);
        self.record(crate::recording::CastEvent::Resize(cols, rows));
        self.send_signed(SignedKind::TerminalResize, &resize_payload(cols, rows));
    }

    /// v1 agents usually drop the resize sent right after `spawn_shell` (they handle it before
    /// the shell exists, docs/protocol.md 2.9a). The shell's first output proves it exists: send the
    /// current size again then. A PTY set to the size it already has does not signal the shell,
    /// so agents that did apply the first resize see no redraw.
    fn first_output(&mut self) {
        self.output_seen = true;
        if !self.spec.agent.capabilities().ordered {
            let (cols, rows) = self.size;
            self.resize(cols, rows);
        }
    }
}

impl Actor for TerminalSession {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        crate::instruments::terminals_open(-1.0);
    }

    fn started(&mut self, ctx: &mut Self::Context) {
        crate::instruments::terminals_open(1.0);
        self.start_recording();
        let window = self.spec.agent.capabilities().flow_control;
        let spawn = spawn_shell_frame(
            &self.spec.session_id,
            window.then_some(self.config.flow_window),
        );
        let machine_id = self.spec.agent.machine_id();
        let sent = self.spec.agent.send(spawn);
        let request_id = self.spec.request_id.clone();
        ctx.wait(
            sent.into_actor(self)
                .map(move |result, session, ctx| match result {
                    Ok(()) => {
                        session.resize(session.spec.cols, session.spec.rows);
                        session.tell_owner(vec![session.opened_event()], request_id);
                        let user_id = session.spec.user_id;
                        session.links.opened.do_send(SessionOpened {
                            session_id: session.spec.session_id.clone(),
                            user_id,
                            machine_id,
                            at: Utc::now(),
                        });
                    }
                    Err(why) => {
                        session.error_to_owner(why.code(), &why.to_string(), request_id);
                        session.finish_recording();
                        session.ended = true;
                        session.links.drop_route.do_send(DropTerminal {
                            session_id: session.spec.session_id.clone(),
                        });
                        ctx.stop();
                    }
                }),
        );
        let check_every = (self.config.idle_timeout / 10).max(Duration::from_millis(50));
        ctx.run_interval(check_every, |session, ctx| {
            if session.last_activity.elapsed() >= session.config.idle_timeout {
                session.end("idle_timeout", ctx);
            }
        });
        // A socket can close before it has recorded the session (e.g. right after an attach):
        // notice a dead owner even without its `OwnerGone`.
        let owner_check =
            (self.config.grace / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        ctx.run_interval(owner_check, |session, ctx| {
            session.drop_disconnected_watchers();
            if session
                .owner
                .as_ref()
                .is_some_and(|o| !o.deliver.connected())
            {
                session.owner_gone(ctx);
            }
        });
        // Refresh the reattach token while attached, so it is valid for a grace period after a drop.
        ctx.run_interval(self.config.grace / 2, |session, _| {
            if session.owner.is_some() {
                session.tell_owner(vec![session.opened_event()], None);
            }
        });
    }
}

impl Handler<TerminalEvent> for TerminalSession {
    type Result = ();

    fn handle(&mut self, event: TerminalEvent, ctx: &mut Context<Self>) {
        match event {
            TerminalEvent::Output(output) => {
                if !self.output_seen {
                    self.first_output();
                }
                self.last_activity = Instant::now();
                self.bytes_out += output.len() as u64;
                crate::instruments::terminal_output_bytes(output.len());
                self.record(crate::recording::CastEvent::Output(output.clone()));
                self.feed_watchers(&output, ctx);
                self.buffer.push(output);
                self.pump(ctx);
            }
            TerminalEvent::Exited(code) => {
                tracing::info!(session_id = %self.spec.session_id, exit_code = code, "shell exited");
                self.end("shell_exited", ctx);
            }
            TerminalEvent::AgentGone => self.end("agent_disconnected", ctx),
            TerminalEvent::ServerShutdown => self.end("server_shutdown", ctx),
        }
    }
}

impl Handler<OwnerRequest> for TerminalSession {
    type Result = ();

    fn handle(&mut self, request: OwnerRequest, ctx: &mut Context<Self>) {
        match request {
            OwnerRequest::Input {
                from,
                data,
                request_id,
            } if self.is_owner(from) || self.typing_watcher(from) => self.input(data, request_id),
            OwnerRequest::Resize { from, cols, rows } if self.is_owner(from) => {
                self.resize(cols, rows)
            }
            OwnerRequest::Close { from } if self.is_owner(from) => self.end("closed", ctx),
            OwnerRequest::OwnerGone { from } if self.is_owner(from) => self.owner_gone(ctx),
            OwnerRequest::RemoveWatcher {
                from,
                watcher_id,
                request_id,
            } if self.is_owner(from) => self.remove_watcher(&watcher_id, request_id),
            OwnerRequest::SetWatcherInput {
                from,
                watcher_id,
                allowed,
                request_id,
            } if self.is_owner(from) => self.set_watcher_input(&watcher_id, allowed, request_id),
            OwnerRequest::Kill => self.end("killed", ctx),
            _ => {
                tracing::warn!(security = true, session_id = %self.spec.session_id, "request from a socket that does not own the session ignored")
            }
        }
    }
}

impl Handler<AttachOwner> for TerminalSession {
    type Result = Result<(), ErrorCode>;

    fn handle(&mut self, attach: AttachOwner, ctx: &mut Context<Self>) -> Self::Result {
        if attach.user_id != self.spec.user_id {
            return Err(ErrorCode::Forbidden);
        }
        if let Some(timer) = self.grace_timer.take() {
            ctx.cancel_future(timer);
        }
        if let Some(previous) = self.owner.replace(attach.owner) {
            tracing::info!(session_id = %self.spec.session_id, previous = %previous.connection_id, "session moved to another socket");
        }
        let mut events = vec![self.opened_event()];
        if let Some(seen) = attach.seen_offset {
            events.extend(self.replay_events(seen));
        }
        events.extend(self.watcher_roll_call());
        self.tell_owner(events, None);
        self.pump(ctx);
        Ok(())
    }
}
