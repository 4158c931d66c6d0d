//! `WebSession`: the actor behind one `/ws/web` socket of an authenticated operator.

use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext, StreamHandler};
use actix_web_actors::ws::{self, CloseCode, WebsocketContext};
use serde::Serialize;

use crate::identity::AuthenticatedUser;
use crate::protocol::{ErrorCode, ErrorFrame};
use crate::shutdown::ShutdownSignal;
use crate::socket::{self, CLOSE_UNAUTHENTICATED, Inbound, SocketConfig};
use crate::violations::ViolationCounter;

/// `hello`: the first message after the upgrade.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "hello")]
struct Hello<'a> {
    #[serde(rename = "userId")]
    user_id: &'a str,
    role: &'a str,
    #[serde(rename = "serverVersion")]
    server_version: &'a str,
}

/// One operator socket.
pub struct WebSession {
    user: AuthenticatedUser,
    config: SocketConfig,
    shutdown: ShutdownSignal,
    last_heard: Instant,
    violations: ViolationCounter,
}

impl WebSession {
    /// A session for a socket whose JWT was verified before the upgrade.
    pub fn new(user: AuthenticatedUser, config: SocketConfig, shutdown: ShutdownSignal) -> Self {
        let violations = ViolationCounter::new(config.violations_per_minute);
        Self {
            user,
            config,
            shutdown,
            last_heard: Instant::now(),
            violations,
        }
    }

    fn refuse(&mut self, ctx: &mut WebsocketContext<Self>, frame: ErrorFrame) {
        tracing::warn!(security = true, user_id = %self.user.user_id, code = ?frame.code, "web frame refused");
        socket::send_error(ctx, &frame);
        if self.violations.record(Instant::now()) {
            socket::close(ctx, CloseCode::Policy, "repeated protocol violations");
        }
    }

    /// Closes the socket with 4401 when the JWT expires, after telling the client.
    fn schedule_expiry(&self, ctx: &mut WebsocketContext<Self>) {
        let now = chrono::Utc::now().timestamp();
        let left = u64::try_from(self.user.expires_at.saturating_sub(now)).unwrap_or(0);
        ctx.run_later(Duration::from_secs(left), |_session, ctx| {
            let frame = ErrorFrame::new(ErrorCode::Unauthenticated, "token expired");
            socket::send_error(ctx, &frame);
            socket::close(
                ctx,
                CloseCode::Other(CLOSE_UNAUTHENTICATED),
                "token expired",
            );
        });
    }
}

impl Actor for WebSession {
    type Context = WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        socket::start_keepalive(ctx, &self.config, |session| session.last_heard);
        socket::close_on_shutdown(ctx, self.shutdown.clone());
        self.schedule_expiry(ctx);
        let hello = Hello {
            user_id: &self.user.user_id,
            role: self.user.role.as_str(),
            server_version: env!("CARGO_PKG_VERSION"),
        };
        match serde_json::to_string(&hello) {
            Ok(text) => ctx.text(text),
            Err(err) => tracing::error!(error = %err, "could not encode hello"),
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WebSession {
    fn handle(&mut self, event: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match socket::triage(event, ctx, &mut self.last_heard) {
            Inbound::Text(_) => self.refuse(
                ctx,
                ErrorFrame::new(ErrorCode::UnknownType, "no client messages are served yet"),
            ),
            Inbound::Refused(frame) => self.refuse(ctx, frame),
            Inbound::Handled => {}
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
