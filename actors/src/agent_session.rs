//! `AgentSession`: the actor behind one `/ws/agent` socket.

use std::time::Instant;

use actix::{Actor, ActorContext, AsyncContext, StreamHandler};
use actix_web_actors::ws::{self, CloseCode, WebsocketContext};

use crate::protocol::{ErrorCode, ErrorFrame};
use crate::shutdown::ShutdownSignal;
use crate::socket::{self, CLOSE_UNAUTHENTICATED, Inbound, SocketConfig};
use crate::violations::ViolationCounter;

/// Settings an agent socket needs.
#[derive(Debug, Clone)]
pub struct AgentSessionConfig {
    /// Keep-alive, frame size and violation limits.
    pub socket: SocketConfig,
    /// `register` must arrive within this long.
    pub register_timeout: std::time::Duration,
}

/// One connected agent. Until it has registered, every frame is answered with
/// `not_registered` and otherwise ignored.
pub struct AgentSession {
    config: AgentSessionConfig,
    shutdown: ShutdownSignal,
    last_heard: Instant,
    violations: ViolationCounter,
}

impl AgentSession {
    /// A session for a freshly upgraded socket.
    pub fn new(config: AgentSessionConfig, shutdown: ShutdownSignal) -> Self {
        let violations = ViolationCounter::new(config.socket.violations_per_minute);
        Self {
            config,
            shutdown,
            last_heard: Instant::now(),
            violations,
        }
    }

    /// Replies with `error` and closes with 1008 when the peer keeps misbehaving.
    fn refuse(&mut self, ctx: &mut WebsocketContext<Self>, frame: ErrorFrame) {
        tracing::warn!(security = true, code = ?frame.code, "agent frame refused");
        socket::send_error(ctx, &frame);
        if self.violations.record(Instant::now()) {
            socket::close(ctx, CloseCode::Policy, "repeated protocol violations");
        }
    }
}

impl Actor for AgentSession {
    type Context = WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        socket::start_keepalive(ctx, &self.config.socket, |session| session.last_heard);
        socket::close_on_shutdown(ctx, self.shutdown.clone());
        ctx.run_later(self.config.register_timeout, |_session, ctx| {
            tracing::info!("agent did not register in time; closing");
            socket::close(
                ctx,
                CloseCode::Other(CLOSE_UNAUTHENTICATED),
                "register timeout",
            );
        });
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for AgentSession {
    fn handle(&mut self, event: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match socket::triage(event, ctx, &mut self.last_heard) {
            Inbound::Text(_) => self.refuse(
                ctx,
                ErrorFrame::new(ErrorCode::NotRegistered, "send register first"),
            ),
            Inbound::Refused(frame) => self.refuse(ctx, frame),
            Inbound::Handled => {}
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
