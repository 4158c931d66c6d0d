//! `AgentSession`: the actor behind one `/ws/agent` socket (docs/protocol.md section 2).

mod inbox;

pub use inbox::{RouteError, SendToAgent, ToAgent};

use std::time::{Duration, Instant};

use actix::{Actor, ActorFutureExt, AsyncContext, Handler, Recipient, SpawnHandle, WrapFuture};
use actix_web_actors::ws::{CloseCode, WebsocketContext};
use bytestring::ByteString;
use chrono::Utc;

use crate::command::CommandChunk;
use crate::direct_routes::DirectRoutes;
use crate::protocol::agent::{
    AgentMessage, Capabilities, Heartbeat, MachineSecret, Register, message_type,
    parse_agent_message,
};
use crate::protocol::server::registered_frame;
use crate::protocol::{CommandId, ConnectionId, ErrorCode, ErrorFrame, MachineId, SessionId};
use crate::registry::{
    HeartbeatSeen, RegisterAgent, RouteCommandResponse, RouteTerminalExit, RouteTerminalOutput,
    UnregisterAgent,
};
use crate::repo::Enrollment;
use crate::repo::audit::RecordAudit;
use crate::repo::machine::{AuthenticateMachine, MachineDetails, MachineError, TouchLastSeen};
use crate::repo::metric::{MetricSample, RecordMetric};
use crate::repo::port::SyncPorts;
use crate::security_events::{SecurityEvent, SecurityEvents};
use crate::shutdown::ShutdownSignal;
use crate::socket::{self, CLOSE_UNAUTHENTICATED, InboundFrames, SocketActor, SocketConfig};
use crate::terminal::TerminalEvent;
use crate::violations::ViolationCounter;

/// Settings an agent socket needs.
#[derive(Debug, Clone)]
pub struct AgentSessionConfig {
    /// Keep-alive, frame size and violation limits.
    pub socket: SocketConfig,
    /// `register` must arrive within this long.
    pub register_timeout: Duration,
    /// Enrolment policy.
    pub enrollment: Enrollment,
}

/// The actors an agent session talks to (recipients, so tests can stand in probes).
#[derive(Clone)]
pub struct AgentLinks {
    /// `MachineRepo`: secret check at register.
    pub authenticate: Recipient<AuthenticateMachine>,
    /// `MachineRepo`: coalesced last-seen writes.
    pub touch_last_seen: Recipient<TouchLastSeen>,
    /// `Registry`: announce this connection.
    pub register: Recipient<RegisterAgent>,
    /// `Registry`: withdraw this connection.
    pub unregister: Recipient<UnregisterAgent>,
    /// `Registry`: liveness.
    pub heartbeat_seen: Recipient<HeartbeatSeen>,
    /// `MetricRepo`: one row per heartbeat.
    pub record_metric: Recipient<RecordMetric>,
    /// `PortRepo`: listening ports.
    pub sync_ports: Recipient<SyncPorts>,
    /// `Registry`: shell output by sessionId.
    pub terminal_output: Recipient<RouteTerminalOutput>,
    /// `Registry`: shell exits by sessionId.
    pub terminal_exit: Recipient<RouteTerminalExit>,
    /// `Registry`: command output by commandId.
    pub command_response: Recipient<RouteCommandResponse>,
    /// `AuditRepo`: security events.
    pub audit: Recipient<RecordAudit>,
    /// Security events, rate-limited per peer address.
    pub security: SecurityEvents,
}

/// Where the session is in the register handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for `register`.
    AwaitingRegister,
    /// `register` received; the secret is being checked.
    Registering,
    /// Registered as this machine.
    Registered(MachineId),
}

/// One connected agent.
pub struct AgentSession {
    config: AgentSessionConfig,
    links: AgentLinks,
    shutdown: ShutdownSignal,
    connection_id: ConnectionId,
    stage: Stage,
    register_deadline: Option<SpawnHandle>,
    capabilities: Capabilities,
    inbound: InboundFrames,
    violations: ViolationCounter,
    routes: DirectRoutes,
    peer: Option<String>,
}

impl AgentSession {
    /// A session for a freshly upgraded socket.
    pub fn new(config: AgentSessionConfig, links: AgentLinks, shutdown: ShutdownSignal) -> Self {
        let violations = ViolationCounter::new(config.socket.violations_per_minute);
        let inbound = InboundFrames::new(config.socket.max_frame_bytes)
            .with_initial_limit(config.socket.unauthenticated_frame_bytes);
        Self {
            config,
            links,
            shutdown,
            connection_id: ConnectionId::next(),
            stage: Stage::AwaitingRegister,
            register_deadline: None,
            capabilities: Capabilities::default(),
            inbound,
            violations,
            routes: DirectRoutes::default(),
            peer: None,
        }
    }

    /// The same session, knowing the peer's address (named in security events).
    pub fn with_peer(mut self, peer: Option<String>) -> Self {
        self.peer = peer;
        self
    }

    /// Reports a security event about this connection (rate-limited per address).
    fn report(&self, action: &'static str, detail: serde_json::Value) {
        let machine_id = match self.stage {
            Stage::Registered(id) => Some(id),
            _ => None,
        };
        self.links.security.report(SecurityEvent {
            actor: machine_id.map_or_else(|| "agent".to_owned(), |id| format!("machine:{id}")),
            action,
            machine_id,
            peer: self.peer.clone(),
            detail,
        });
    }

    /// A malformed `register`: refused with 4401 at once (not after the register timeout).
    fn refuse_register(&mut self, frame: ErrorFrame, ctx: &mut WebsocketContext<Self>) {
        self.report(
            "security.register_refused",
            serde_json::json!({ "code": frame.code, "message": frame.message }),
        );
        socket::send_error(ctx, &frame);
        socket::close(
            ctx,
            CloseCode::Other(CLOSE_UNAUTHENTICATED),
            "register refused",
        );
    }

    fn handle_text(&mut self, text: &ByteString, ctx: &mut WebsocketContext<Self>) {
        let message = match parse_agent_message(text) {
            Ok(message) => message,
            Err(frame)
                if self.stage == Stage::AwaitingRegister
                    && message_type(text).as_deref() == Some("register") =>
            {
                return self.refuse_register(frame, ctx);
            }
            Err(frame) => return self.refuse(ctx, frame),
        };
        crate::instruments::frame_in("agent", message.kind());
        match (self.stage, message) {
            (Stage::AwaitingRegister, AgentMessage::Register(register)) => {
                self.start_register(register, ctx)
            }
            (Stage::Registered(id), AgentMessage::Heartbeat(heartbeat)) => {
                self.handle_heartbeat(id, heartbeat, ctx)
            }
            (Stage::Registered(_), AgentMessage::Register(_)) => self.refuse(
                ctx,
                ErrorFrame::new(ErrorCode::InvalidField, "already registered"),
            ),
            (Stage::Registered(id), AgentMessage::TerminalOutput(output)) => {
                let Some(session_id) = known_shape(SessionId::parse(&output.session_id), id) else {
                    return;
                };
                let event = TerminalEvent::Output(output.output);
                if let Err(TerminalEvent::Output(text)) = self.routes.deliver(&session_id, event) {
                    self.links.terminal_output.do_send(RouteTerminalOutput {
                        machine_id: id,
                        session_id,
                        output: text,
                    });
                }
            }
            (Stage::Registered(id), AgentMessage::TerminalExit(exit))
                if self.capabilities.terminal_exit =>
            {
                let Some(session_id) = known_shape(SessionId::parse(&exit.session_id), id) else {
                    return;
                };
                let event = TerminalEvent::Exited(exit.exit_code);
                if self.routes.deliver(&session_id, event).is_err() {
                    self.links.terminal_exit.do_send(RouteTerminalExit {
                        machine_id: id,
                        session_id,
                        exit_code: exit.exit_code,
                    });
                }
            }
            (Stage::Registered(id), AgentMessage::CommandResponse(response)) => {
                if MachineId::parse(&response.machine_id) != Some(id) {
                    return self.refuse(
                        ctx,
                        ErrorFrame::new(
                            ErrorCode::InvalidField,
                            "machineId is not this connection's machine",
                        ),
                    );
                }
                let Some(command_id) = known_shape(CommandId::parse(&response.command_id), id)
                else {
                    return;
                };
                self.links.command_response.do_send(RouteCommandResponse {
                    machine_id: id,
                    command_id,
                    chunk: CommandChunk {
                        output: response.output,
                        completed: response.completed,
                        exit_code: response.exit_code,
                    },
                });
            }
            (Stage::Registered(_), AgentMessage::TerminalExit(_)) => self.refuse(
                ctx,
                ErrorFrame::new(
                    ErrorCode::UnknownType,
                    "terminal_exit needs the terminal_exit capability",
                ),
            ),
            (_, _) => self.refuse(
                ctx,
                ErrorFrame::new(ErrorCode::NotRegistered, "send register first"),
            ),
        }
    }

    fn start_register(&mut self, register: Register, ctx: &mut WebsocketContext<Self>) {
        self.stage = Stage::Registering;
        let os = register.os_info.unwrap_or_default();
        let details = MachineDetails {
            hostname: register.hostname,
            ip: register.ip,
            os_distro: os.distro,
            os_release: os.release,
            os_kernel: os.kernel,
            platform: register.platform,
        };
        let hostname = details.hostname.clone();
        self.capabilities = Capabilities::from_names(&register.capabilities);
        let secret = MachineSecret::new(register.secret_key.clone());
        let request = AuthenticateMachine {
            secret: register.secret_key,
            enrollment: self.config.enrollment,
            details,
        };
        let check = self.links.authenticate.send(request).into_actor(self).map(
            move |outcome, session, ctx| match outcome {
                Ok(Ok(machine_id)) => session.finish_register(machine_id, hostname, secret, ctx),
                Ok(Err(MachineError::UnknownSecret)) => {
                    session.report(
                        "security.register_refused",
                        serde_json::json!({ "reason": "unknown machine secret" }),
                    );
                    socket::send_error(
                        ctx,
                        &ErrorFrame::new(ErrorCode::Unauthenticated, "unknown machine secret"),
                    );
                    socket::close(
                        ctx,
                        CloseCode::Other(CLOSE_UNAUTHENTICATED),
                        "register refused",
                    );
                }
                Ok(Err(err)) => session.fail_internal(&err.to_string(), ctx),
                Err(err) => session.fail_internal(&err.to_string(), ctx),
            },
        );
        ctx.wait(check);
    }

    fn finish_register(
        &mut self,
        machine_id: MachineId,
        hostname: String,
        secret: MachineSecret,
        ctx: &mut WebsocketContext<Self>,
    ) {
        self.stage = Stage::Registered(machine_id);
        self.inbound.lift_initial_limit();
        if let Some(deadline) = self.register_deadline.take() {
            ctx.cancel_future(deadline);
        }
        self.links.register.do_send(RegisterAgent {
            machine_id,
            connection_id: self.connection_id,
            hostname,
            recipient: ctx.address().recipient(),
            frames: ctx.address().recipient(),
            secret,
            capabilities: self.capabilities,
            arbiter: actix::Arbiter::current(),
        });
        tracing::info!(%machine_id, connection_id = %self.connection_id, "agent registered");
        ctx.text(registered_frame(machine_id));
    }

    fn fail_internal(&mut self, error: &str, ctx: &mut WebsocketContext<Self>) {
        tracing::error!(error, "register could not be completed");
        socket::send_error(ctx, &ErrorFrame::new(ErrorCode::Internal, "internal error"));
        socket::close(ctx, CloseCode::Error, "internal error");
    }

    fn handle_heartbeat(
        &mut self,
        machine_id: MachineId,
        heartbeat: Heartbeat,
        ctx: &mut WebsocketContext<Self>,
    ) {
        if MachineId::parse(&heartbeat.machine_id) != Some(machine_id) {
            return self.refuse(
                ctx,
                ErrorFrame::new(
                    ErrorCode::InvalidField,
                    "machineId is not this connection's machine",
                ),
            );
        }
        let at = Utc::now();
        let m = &heartbeat.metrics;
        self.links.heartbeat_seen.do_send(HeartbeatSeen {
            machine_id,
            connection_id: self.connection_id,
        });
        self.links.record_metric.do_send(RecordMetric {
            machine_id,
            sample: MetricSample {
                at,
                cpu: m.cpu_usage,
                ram_used: m.ram_used,
                ram_total: m.ram_total,
                disk_used: m.disk_used,
                disk_total: m.disk_total,
                uptime: m.uptime as i64,
            },
        });
        self.links.sync_ports.do_send(SyncPorts {
            machine_id,
            ports: heartbeat.ports.unwrap_or_default(),
        });
        self.links
            .touch_last_seen
            .do_send(TouchLastSeen { machine_id, at });
    }
}

/// An id an agent sent, parsed where it came in; one that cannot be ours names no session or
/// command, and its output is dropped as output for an unknown one is.
fn known_shape<T>(id: Option<T>, machine_id: MachineId) -> Option<T> {
    if id.is_none() {
        tracing::debug!(%machine_id, "output naming a malformed id dropped");
    }
    id
}

impl Actor for AgentSession {
    type Context = WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        socket::start_keepalive(ctx, &self.config.socket, |session| {
            session.inbound.last_heard()
        });
        socket::close_on_shutdown(ctx, self.shutdown.clone());
        self.register_deadline = Some(ctx.run_later(self.config.register_timeout, |session, ctx| {
            if !matches!(session.stage, Stage::Registered(_)) {
                tracing::info!(connection_id = %session.connection_id, "agent did not register in time");
                socket::close(ctx, CloseCode::Other(CLOSE_UNAUTHENTICATED), "register timeout");
            }
        }));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Stage::Registered(machine_id) = self.stage {
            self.links.unregister.do_send(UnregisterAgent {
                machine_id,
                connection_id: self.connection_id,
            });
        }
    }
}

socket::socket_stream_handler!(AgentSession);

impl SocketActor for AgentSession {
    fn inbound(&mut self) -> &mut InboundFrames {
        &mut self.inbound
    }

    fn on_text(&mut self, text: &ByteString, ctx: &mut WebsocketContext<Self>) {
        self.handle_text(text, ctx);
    }

    fn refuse(&mut self, ctx: &mut WebsocketContext<Self>, frame: ErrorFrame) {
        crate::instruments::frame_refused("agent", frame.code);
        self.report(
            "security.bad_frame",
            serde_json::json!({
                "code": frame.code, "message": frame.message,
                "connectionId": self.connection_id.to_string(),
            }),
        );
        socket::send_error(ctx, &frame);
        if self.violations.record(Instant::now()) {
            socket::close(ctx, CloseCode::Policy, "repeated protocol violations");
        }
    }
}

impl Handler<ToAgent> for AgentSession {
    type Result = ();

    fn handle(&mut self, command: ToAgent, ctx: &mut Self::Context) {
        match command {
            ToAgent::Disconnect { code, reason } => {
                socket::close(ctx, CloseCode::from(code), reason)
            }
            ToAgent::RouteTerminal { session_id, events } => self.routes.add(session_id, events),
            ToAgent::DropTerminal { session_id } => self.routes.remove(&session_id),
        }
    }
}

impl Handler<SendToAgent> for AgentSession {
    type Result = Result<(), RouteError>;

    /// A frame straight from a terminal of this machine (no hop through the registry).
    fn handle(&mut self, msg: SendToAgent, ctx: &mut Self::Context) -> Self::Result {
        match self.stage {
            Stage::Registered(id) if id == msg.machine_id => {
                ctx.text(msg.frame);
                Ok(())
            }
            _ => Err(RouteError::MachineOffline),
        }
    }
}
