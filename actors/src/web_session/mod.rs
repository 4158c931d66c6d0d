//! `WebSession`: the actor behind one `/ws/web` socket of an authenticated operator.
//! Requests are parsed once, authorised against the repository, and dispatched
//! (`requests.rs`; one file per kind of request: `terminals.rs`, `commands.rs`, `status.rs`);
//! events for this socket arrive as [`Deliver`].

mod commands;
mod requests;
mod status;
mod terminals;
mod watching;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, Handler, Message, Recipient, ResponseFuture};
use actix_web_actors::ws::{CloseCode, WebsocketContext};
use bytestring::ByteString;
use serde::Serialize;

use crate::cluster::view::ClusterView;
use crate::command::CommandLinks;
use crate::identity::AuthenticatedUser;
use crate::protocol::session_token::SessionTokens;
use crate::protocol::web::{ServerEvent, parse_client_frame};
use crate::protocol::{ConnectionId, ErrorCode, ErrorFrame, MachineId, SessionId};
use crate::registry::{
    FindTerminal, FindWatchable, OpenLink, RouteCommand, RouteTerminal, SubscribeStatus,
};
use crate::repo::access::{CheckAccess, VisibleMachines};
use crate::repo::audit::RecordAudit;
use crate::security_events::{SecurityEvent, SecurityEvents};
use crate::shutdown::ShutdownSignal;
use crate::socket::{
    self, CLOSE_REVOKED, CLOSE_UNAUTHENTICATED, InboundFrames, SocketActor, SocketConfig,
};
use crate::socket_drain::DrainTracker;
use crate::terminal::{LeaveWatch, OwnerRequest, TerminalConfig, TerminalLinks, leave_reason};
use crate::user_directory::{RevokeSocket, StoredUser, UnwatchSocket, WatchSocket};
use crate::violations::ViolationCounter;

/// Events (and possibly an error) for this socket, in order.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Deliver {
    /// Events to send.
    pub events: Vec<ServerEvent>,
    /// `requestId` to echo on them.
    pub request_id: Option<String>,
    /// An error to send after them.
    pub error: Option<ErrorFrame>,
    /// Frames another instance already encoded (a terminal re-attached through this instance
    /// runs there), sent last.
    pub relayed: Vec<String>,
}

impl Deliver {
    /// Just `events`, answering no request.
    pub fn events(events: Vec<ServerEvent>) -> Self {
        Self {
            events,
            request_id: None,
            error: None,
            relayed: Vec::new(),
        }
    }

    /// The frames of this delivery, encoded one at a time, in the order they are sent.
    pub fn into_frames(self) -> impl Iterator<Item = String> {
        let Deliver {
            events,
            request_id,
            error,
            relayed,
        } = self;
        events
            .into_iter()
            .map(move |event| event.to_json(request_id.as_deref()))
            .chain(error.map(|error| error.to_json()))
            .chain(relayed)
    }
}

/// The session a `terminal_closed` frame announces, if `frame` is one.
pub fn closed_session(frame: &str) -> Option<SessionId> {
    if !frame.starts_with(r#"{"type":"terminal_closed""#) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(frame).ok()?;
    SessionId::parse(value.get("sessionId")?.as_str()?)
}

/// `hello`: the first message after the upgrade.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "hello")]
struct Hello<'a> {
    #[serde(rename = "userId")]
    user_id: String,
    role: &'a str,
    #[serde(rename = "serverVersion")]
    server_version: &'a str,
}

/// Settings a web socket needs.
#[derive(Debug, Clone)]
pub struct WebSessionConfig {
    /// Keep-alive, frame size and violation limits.
    pub socket: SocketConfig,
    /// Terminal limits.
    pub terminal: TerminalConfig,
    /// Default command timeout.
    pub command_timeout: Duration,
}

/// What a web session asks the Registry.
#[derive(Clone)]
pub struct WebRouting {
    /// A link to a machine's agent.
    pub open_link: Recipient<OpenLink>,
    /// Route a new terminal's checked path and owner inboxes.
    pub route_terminal: Recipient<RouteTerminal>,
    /// Route a new command's output.
    pub route_command: Recipient<RouteCommand>,
    /// The owner inboxes of a live session (reattach).
    pub find_terminal: Recipient<FindTerminal>,
    /// The watch inboxes of a live session on this instance.
    pub find_watchable: Recipient<FindWatchable>,
    /// Status transitions from now on.
    pub subscribe_status: Recipient<SubscribeStatus>,
}

/// What a web session asks the authorisation repository.
#[derive(Clone)]
pub struct WebAccess {
    /// May the user do this on this machine?
    pub check: Recipient<CheckAccess>,
    /// The machines the user may see.
    pub visible: Recipient<VisibleMachines>,
}

/// The actors a web session talks to (all as recipients, so tests can stand in for them).
#[derive(Clone)]
pub struct WebLinks {
    /// `Registry`.
    pub routing: WebRouting,
    /// `AccessRepo`.
    pub access: WebAccess,
    /// Audit trail.
    pub audit: Recipient<RecordAudit>,
    /// What terminal sessions need.
    pub terminal: TerminalLinks,
    /// What commands need.
    pub command: CommandLinks,
    /// Security events, rate-limited per peer address.
    pub security: SecurityEvents,
    /// `UserDirectory`: revokes this socket when its user changes.
    pub watch_user: Recipient<WatchSocket>,
    /// `UserDirectory`: this socket closed.
    pub unwatch_user: Recipient<UnwatchSocket>,
    /// Where each machine's agent is, cluster-wide (empty standalone).
    pub cluster: ClusterView,
}

/// One operator socket.
pub struct WebSession {
    user: AuthenticatedUser,
    source_ip: Option<String>,
    connection_id: ConnectionId,
    config: WebSessionConfig,
    links: WebLinks,
    tokens: SessionTokens,
    terminals: HashMap<SessionId, Recipient<OwnerRequest>>,
    /// Sessions this socket watches.
    watching: HashMap<SessionId, watching::Watched>,
    subscribed: bool,
    shutdown: ShutdownSignal,
    inbound: InboundFrames,
    drain: DrainTracker,
    violations: ViolationCounter,
}

impl WebSession {
    /// A session for a socket whose JWT was verified before the upgrade, with the role
    /// stored for its user then (not the one the token claims).
    pub fn new(
        user: AuthenticatedUser,
        source_ip: Option<String>,
        config: WebSessionConfig,
        links: WebLinks,
        tokens: SessionTokens,
        shutdown: ShutdownSignal,
        drain: DrainTracker,
    ) -> Self {
        let violations = ViolationCounter::new(config.socket.violations_per_minute);
        let inbound = InboundFrames::new(config.socket.max_frame_bytes);
        Self {
            user,
            source_ip,
            connection_id: ConnectionId::next(),
            config,
            links,
            tokens,
            terminals: HashMap::new(),
            watching: HashMap::new(),
            subscribed: false,
            shutdown,
            inbound,
            drain,
            violations,
        }
    }

    /// Records an audit entry for this user and socket.
    fn audit(
        &self,
        action: &'static str,
        machine_id: Option<MachineId>,
        detail: serde_json::Value,
    ) {
        self.links.audit.do_send(RecordAudit {
            actor: self.user.user_id.to_string(),
            action,
            machine_id,
            detail,
            source_ip: self.source_ip.clone(),
        });
    }

    /// Queues one text message, counted so that deliveries can wait until it was written.
    fn send_text(&mut self, ctx: &mut WebsocketContext<Self>, text: String) {
        self.drain.queued(text.len());
        ctx.text(text);
    }

    /// Sends an error frame.
    fn error(
        &mut self,
        ctx: &mut WebsocketContext<Self>,
        code: ErrorCode,
        message: &str,
        request_id: Option<String>,
    ) {
        let frame = ErrorFrame {
            code,
            message: message.to_owned(),
            request_id,
        };
        self.send_text(ctx, frame.to_json());
    }

    /// Closes the socket with 4401 when the JWT expires, after telling the client.
    fn schedule_expiry(&self, ctx: &mut WebsocketContext<Self>) {
        let now = chrono::Utc::now().timestamp();
        let left = u64::try_from(self.user.expires_at.saturating_sub(now)).unwrap_or(0);
        ctx.run_later(Duration::from_secs(left), |session, ctx| {
            session.audit("ws.token_expired", None, serde_json::json!({}));
            session.send_text(
                ctx,
                ErrorFrame::new(ErrorCode::Unauthenticated, "token expired").to_json(),
            );
            socket::close(
                ctx,
                CloseCode::Other(CLOSE_UNAUTHENTICATED),
                "token expired",
            );
        });
    }

    /// Keeps this socket's own and watched sessions in step with an event it is sent.
    fn follow(&mut self, event: &ServerEvent) {
        match event {
            ServerEvent::TerminalClosed { session_id, .. } => {
                if let Some(id) = SessionId::parse(session_id) {
                    self.terminals.remove(&id);
                    self.watching.remove(&id);
                }
            }
            ServerEvent::WatchEnded { session_id, .. } => {
                if let Some(id) = SessionId::parse(session_id) {
                    self.watching.remove(&id);
                }
            }
            ServerEvent::WatcherInput {
                session_id,
                allowed,
                ..
            } => {
                let id = SessionId::parse(session_id);
                if let Some(watched) = id.and_then(|id| self.watching.get_mut(&id)) {
                    watched.typing = *allowed;
                }
            }
            _ => {}
        }
    }

    fn handle_text(&mut self, text: &str, ctx: &mut WebsocketContext<Self>) {
        match parse_client_frame(text) {
            Ok(frame) => {
                crate::instruments::frame_in("web", frame.request.kind());
                self.dispatch(frame, ctx)
            }
            Err(error) => self.refuse(ctx, error),
        }
    }
}

impl Actor for WebSession {
    type Context = WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        crate::instruments::web_sockets(1.0);
        socket::start_keepalive(ctx, &self.config.socket, |session| {
            session.inbound.last_heard()
        });
        socket::close_on_shutdown(ctx, self.shutdown.clone());
        self.schedule_expiry(ctx);
        self.links.watch_user.do_send(WatchSocket {
            user_id: self.user.user_id,
            connection_id: self.connection_id,
            admitted: StoredUser {
                role: Some(self.user.role),
                disabled: false,
            },
            revoke: ctx.address().recipient(),
        });
        self.audit(
            "ws.connect",
            None,
            serde_json::json!({ "role": self.user.role.as_str() }),
        );
        let hello = Hello {
            user_id: self.user.user_id.to_string(),
            role: self.user.role.as_str(),
            server_version: env!("CARGO_PKG_VERSION"),
        };
        match serde_json::to_string(&hello) {
            Ok(text) => self.send_text(ctx, text),
            Err(err) => tracing::error!(error = %err, "could not encode hello"),
        }
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        crate::instruments::web_sockets(-1.0);
        self.links.unwatch_user.do_send(UnwatchSocket {
            user_id: self.user.user_id,
            connection_id: self.connection_id,
        });
        for requests in self.terminals.values() {
            requests.do_send(OwnerRequest::OwnerGone {
                from: self.connection_id,
            });
        }
        for watched in self.watching.values() {
            watched.leave.do_send(LeaveWatch {
                from: self.connection_id,
                reason: leave_reason::DISCONNECTED,
            });
        }
        self.audit("ws.disconnect", None, serde_json::json!({}));
    }
}

socket::socket_stream_handler!(WebSession);

impl SocketActor for WebSession {
    fn inbound(&mut self) -> &mut InboundFrames {
        &mut self.inbound
    }

    fn on_text(&mut self, text: &ByteString, ctx: &mut WebsocketContext<Self>) {
        self.handle_text(text, ctx);
    }

    fn refuse(&mut self, ctx: &mut WebsocketContext<Self>, frame: ErrorFrame) {
        crate::instruments::frame_refused("web", frame.code);
        self.links.security.report(SecurityEvent {
            actor: self.user.user_id.to_string(),
            action: "security.bad_frame",
            machine_id: None,
            peer: self.source_ip.clone(),
            detail: serde_json::json!({ "code": frame.code, "message": frame.message }),
        });
        self.send_text(ctx, frame.to_json());
        if self.violations.record(Instant::now()) {
            socket::close(ctx, CloseCode::Policy, "repeated protocol violations");
        }
    }
}

impl Handler<Deliver> for WebSession {
    /// Resolves once the events have been written to the socket (or the socket is gone), so
    /// a sender that waits for it goes at the reader's pace.
    type Result = ResponseFuture<()>;

    fn handle(&mut self, delivery: Deliver, ctx: &mut Self::Context) -> Self::Result {
        for event in &delivery.events {
            self.follow(event);
        }
        for id in delivery.relayed.iter().filter_map(|f| closed_session(f)) {
            self.terminals.remove(&id);
        }
        for frame in delivery.into_frames() {
            self.send_text(ctx, frame);
        }
        Box::pin(self.drain.until_written())
    }
}

impl Handler<RevokeSocket> for WebSession {
    type Result = ();

    /// The user was disabled, deleted or given another role: their terminals end and the
    /// socket closes with 4403 at once.
    fn handle(&mut self, revoke: RevokeSocket, ctx: &mut Self::Context) {
        tracing::warn!(security = true, user_id = %self.user.user_id, reason = revoke.reason, "operator socket revoked");
        self.audit(
            "ws.revoked",
            None,
            serde_json::json!({ "reason": revoke.reason, "terminals": self.terminals.len() }),
        );
        for requests in std::mem::take(&mut self.terminals).into_values() {
            requests.do_send(OwnerRequest::Close {
                from: self.connection_id,
            });
        }
        self.error(ctx, ErrorCode::Forbidden, revoke.reason, None);
        socket::close(ctx, CloseCode::Other(CLOSE_REVOKED), revoke.reason);
    }
}
