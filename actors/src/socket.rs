//! Plumbing shared by every WebSocket actor: keep-alive, shutdown, frame triage and closing.

use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext};
use actix_web_actors::ws::{self, CloseCode, CloseReason, WebsocketContext};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use bytestring::ByteString;
use futures_util::Stream;

use crate::inbound_guard::{FrameLimit, GuardedInput, OversizeFlag, guard_input};
use crate::message_assembly::{AssemblyError, MessageAssembler};
use crate::protocol::{ErrorCode, ErrorFrame};
use crate::shutdown::ShutdownSignal;

/// Close code: not authenticated (no or failed register, register timeout, JWT expired).
pub const CLOSE_UNAUTHENTICATED: u16 = 4401;
/// Close code: revoked: the machine was deleted or its secret rotated, or the operator's user
/// was disabled, deleted or given another role.
pub const CLOSE_REVOKED: u16 = 4403;
/// Close code: replaced by a newer connection of the same machine.
pub const CLOSE_REPLACED: u16 = 4409;

/// Limits and timings of one kind of socket.
#[derive(Debug, Clone)]
pub struct SocketConfig {
    /// How often the server pings.
    pub ping_interval: Duration,
    /// A peer silent for this long is disconnected.
    pub client_timeout: Duration,
    /// Largest accepted message, bytes.
    pub max_frame_bytes: usize,
    /// Largest accepted message before the peer authenticated (agents: before `register`).
    pub unauthenticated_frame_bytes: usize,
    /// Violations per minute before close 1008.
    pub violations_per_minute: u32,
}

/// What a socket actor should do with one incoming WebSocket event.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A whole text message (reassembled if it came in fragments) to parse.
    Text(ByteString),
    /// A message refused at the transport level: reply with this error, record the
    /// violation, then close with `code`.
    Fatal {
        /// The `error` frame to send first.
        error: ErrorFrame,
        /// The close code.
        code: CloseCode,
        /// The close reason.
        reason: &'static str,
    },
    /// Nothing to do (ping, pong, a fragment of an unfinished message, or the socket is closing).
    Handled,
}

/// The incoming side of one socket: liveness, the message being reassembled, and whether
/// the input guard refused an oversized frame.
#[derive(Debug)]
pub struct InboundFrames {
    last_heard: Instant,
    assembler: MessageAssembler,
    max_message_bytes: usize,
    limit: FrameLimit,
    oversized: OversizeFlag,
}

impl InboundFrames {
    /// Incoming frames of a socket whose whole messages may be at most `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            last_heard: Instant::now(),
            assembler: MessageAssembler::new(max_message_bytes),
            max_message_bytes,
            limit: FrameLimit::new(max_message_bytes),
            oversized: OversizeFlag::default(),
        }
    }

    /// The same, but messages are limited to `bytes` until [`Self::lift_initial_limit`] (a
    /// peer that has not authenticated yet gets a small limit).
    pub fn with_initial_limit(self, bytes: usize) -> Self {
        self.limit.set(bytes.min(self.max_message_bytes));
        self
    }

    /// From now on messages may be as large as the socket's full limit.
    pub fn lift_initial_limit(&self) {
        self.limit.set(self.max_message_bytes);
    }

    /// Wraps the socket's incoming bytes in the guard that refuses oversized frames from
    /// their headers (see `inbound_guard`).
    pub fn guard<S>(&self, stream: S) -> GuardedInput<S>
    where
        S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
    {
        guard_input(stream, self.limit.clone(), self.oversized.clone())
    }

    /// What to do once the incoming stream has ended: refuse with 1009 when the guard stopped
    /// an oversized frame, else nothing more.
    pub fn ended(&self) -> Option<Inbound> {
        self.oversized
            .is_set()
            .then(|| fatal(AssemblyError::TooLarge))
    }

    /// When the peer was last heard from.
    pub fn last_heard(&self) -> Instant {
        self.last_heard
    }

    /// Sorts a WebSocket event: answers pings, records liveness, reassembles fragmented
    /// messages, closes on close or overflow.
    pub fn triage<A>(
        &mut self,
        event: Result<ws::Message, ws::ProtocolError>,
        ctx: &mut WebsocketContext<A>,
    ) -> Inbound
    where
        A: Actor<Context = WebsocketContext<A>>,
    {
        self.last_heard = Instant::now();
        match event {
            Ok(ws::Message::Text(_)) if self.assembler.in_progress() => {
                fatal(AssemblyError::StartBeforeEnd)
            }
            Ok(ws::Message::Text(text)) => Inbound::Text(text),
            Ok(ws::Message::Binary(_)) => fatal(AssemblyError::Binary),
            Ok(ws::Message::Continuation(item)) => match self.assembler.push(item) {
                Ok(Some(text)) => Inbound::Text(ByteString::from(text)),
                Ok(None) => Inbound::Handled,
                Err(err) => fatal(err),
            },
            Ok(ws::Message::Ping(payload)) => {
                ctx.pong(&payload);
                Inbound::Handled
            }
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => Inbound::Handled,
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
                Inbound::Handled
            }
            Err(ws::ProtocolError::Overflow) => fatal(AssemblyError::TooLarge),
            // Behind the input guard, the only I/O error left is the stream's own check that a
            // text frame is UTF-8.
            Err(ws::ProtocolError::Io(_)) => fatal(AssemblyError::InvalidUtf8),
            Err(
                ws::ProtocolError::ContinuationNotStarted | ws::ProtocolError::ContinuationStarted,
            ) => fatal(if self.assembler.in_progress() {
                AssemblyError::StartBeforeEnd
            } else {
                AssemblyError::ContinuationWithoutStart
            }),
            Err(err) => {
                tracing::warn!(security = true, error = %err, "websocket protocol error; closing");
                close(ctx, CloseCode::Protocol, "protocol error");
                Inbound::Handled
            }
        }
    }
}

/// A socket actor as the shared plumbing sees it: where its incoming side lives, how it handles
/// a whole message and how it refuses one.
pub trait SocketActor: Actor<Context = WebsocketContext<Self>> {
    /// Its incoming side.
    fn inbound(&mut self) -> &mut InboundFrames;
    /// Handles one whole text message.
    fn on_text(&mut self, text: &ByteString, ctx: &mut WebsocketContext<Self>);
    /// Replies with `error`, records the violation, and may close.
    fn refuse(&mut self, ctx: &mut WebsocketContext<Self>, error: ErrorFrame);
}

/// The `StreamHandler` of a socket actor: every WebSocket event goes to [`on_event`], the end
/// of the stream to [`on_end`]. One piece of code for every socket actor.
macro_rules! socket_stream_handler {
    ($actor:ty) => {
        impl
            actix::StreamHandler<
                Result<actix_web_actors::ws::Message, actix_web_actors::ws::ProtocolError>,
            > for $actor
        {
            fn handle(
                &mut self,
                event: Result<actix_web_actors::ws::Message, actix_web_actors::ws::ProtocolError>,
                ctx: &mut Self::Context,
            ) {
                $crate::socket::on_event(self, event, ctx);
            }

            fn finished(&mut self, ctx: &mut Self::Context) {
                $crate::socket::on_end(self, ctx);
            }
        }
    };
}

pub(crate) use socket_stream_handler;

/// Handles one WebSocket event: the body of the actor's `StreamHandler::handle`.
pub fn on_event<A: SocketActor>(
    actor: &mut A,
    event: Result<ws::Message, ws::ProtocolError>,
    ctx: &mut WebsocketContext<A>,
) {
    let inbound = actor.inbound().triage(event, ctx);
    act_on(actor, inbound, ctx);
}

/// Handles the end of the incoming stream: the body of `StreamHandler::finished`. A stream the
/// input guard ended for an oversized frame is refused with 1009; any other ends the actor.
pub fn on_end<A: SocketActor>(actor: &mut A, ctx: &mut WebsocketContext<A>) {
    match actor.inbound().ended() {
        Some(refusal) => act_on(actor, refusal, ctx),
        None => ctx.stop(),
    }
}

fn act_on<A: SocketActor>(actor: &mut A, inbound: Inbound, ctx: &mut WebsocketContext<A>) {
    match inbound {
        Inbound::Text(text) => actor.on_text(&text, ctx),
        Inbound::Fatal {
            error,
            code,
            reason,
        } => {
            actor.refuse(ctx, error);
            close(ctx, code, reason);
        }
        Inbound::Handled => {}
    }
}

/// The error reply and close code for a message refused while it was assembled.
fn fatal(err: AssemblyError) -> Inbound {
    let (code, error_code, reason) = match err {
        AssemblyError::TooLarge => (CloseCode::Size, ErrorCode::TooLarge, "message too large"),
        AssemblyError::Binary => (
            CloseCode::Unsupported,
            ErrorCode::BinaryFrame,
            "binary messages are refused",
        ),
        AssemblyError::InvalidUtf8 => (CloseCode::Invalid, ErrorCode::BadJson, "invalid UTF-8"),
        AssemblyError::ContinuationWithoutStart | AssemblyError::StartBeforeEnd => (
            CloseCode::Protocol,
            ErrorCode::BadJson,
            "bad message fragmentation",
        ),
    };
    Inbound::Fatal {
        error: ErrorFrame::new(error_code, err.to_string()),
        code,
        reason,
    }
}

/// Sends an `error` frame.
pub fn send_error<A>(ctx: &mut WebsocketContext<A>, frame: &ErrorFrame)
where
    A: Actor<Context = WebsocketContext<A>>,
{
    ctx.text(frame.to_json());
}

/// Sends a close frame with `code` and stops the actor.
pub fn close<A>(ctx: &mut WebsocketContext<A>, code: CloseCode, description: &str)
where
    A: Actor<Context = WebsocketContext<A>>,
{
    ctx.close(Some(CloseReason {
        code,
        description: Some(description.to_owned()),
    }));
    ctx.stop();
}

/// Pings every `ping_interval`; closes the socket when nothing was heard for `client_timeout`.
pub fn start_keepalive<A>(
    ctx: &mut WebsocketContext<A>,
    config: &SocketConfig,
    last_heard: fn(&A) -> Instant,
) where
    A: Actor<Context = WebsocketContext<A>>,
{
    let timeout = config.client_timeout;
    ctx.run_interval(config.ping_interval, move |actor, ctx| {
        if last_heard(actor).elapsed() > timeout {
            tracing::info!("websocket peer silent too long; closing");
            close(ctx, CloseCode::Away, "no answer to pings");
        } else {
            ctx.ping(b"");
        }
    });
}

/// Closes the socket with 1001 once the server starts shutting down.
pub fn close_on_shutdown<A>(ctx: &mut WebsocketContext<A>, signal: ShutdownSignal)
where
    A: Actor<Context = WebsocketContext<A>>,
{
    let shutdown = actix::fut::wrap_future::<_, A>(signal.triggered());
    ctx.spawn(shutdown.map(|_, _actor, ctx: &mut WebsocketContext<A>| {
        close(ctx, CloseCode::Away, "server shutting down");
    }));
}
