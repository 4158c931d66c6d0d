//! Plumbing shared by every WebSocket actor: keep-alive, shutdown, frame triage and closing.

use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext};
use actix_web_actors::ws::{self, CloseCode, CloseReason, WebsocketContext};

use crate::protocol::{ErrorCode, ErrorFrame};
use crate::shutdown::ShutdownSignal;

/// Close code: not authenticated (no or failed register, register timeout, JWT expired).
pub const CLOSE_UNAUTHENTICATED: u16 = 4401;
/// Close code: machine deleted or its secret rotated.
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
    /// Largest accepted frame, bytes.
    pub max_frame_bytes: usize,
    /// Violations per minute before close 1008.
    pub violations_per_minute: u32,
}

/// What a socket actor should do with one incoming WebSocket event.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A text frame to parse.
    Text(String),
    /// A frame refused at the transport level; reply with this error and count a violation.
    Refused(ErrorFrame),
    /// Nothing to do (ping, pong, or the socket is closing).
    Handled,
}

/// Sorts a WebSocket event: answers pings, records liveness, closes on close or overflow.
pub fn triage<A>(
    event: Result<ws::Message, ws::ProtocolError>,
    ctx: &mut WebsocketContext<A>,
    last_heard: &mut Instant,
) -> Inbound
where
    A: Actor<Context = WebsocketContext<A>>,
{
    *last_heard = Instant::now();
    match event {
        Ok(ws::Message::Text(text)) => Inbound::Text(text.to_string()),
        Ok(ws::Message::Binary(_)) => Inbound::Refused(ErrorFrame::new(
            ErrorCode::BinaryFrame,
            "binary frames are refused; send one JSON object per text frame",
        )),
        Ok(ws::Message::Continuation(_)) => Inbound::Refused(ErrorFrame::new(
            ErrorCode::BadJson,
            "fragmented messages are refused; send one JSON object per text frame",
        )),
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
        Err(ws::ProtocolError::Overflow) => {
            let frame = ErrorFrame::new(ErrorCode::TooLarge, "frame exceeds the size limit");
            send_error(ctx, &frame);
            close(ctx, CloseCode::Size, "frame too large");
            Inbound::Handled
        }
        Err(ws::ProtocolError::Io(err)) => {
            // v1 agents drop the connection without a close frame: routine, not an attack.
            tracing::info!(error = %err, "websocket connection lost");
            ctx.stop();
            Inbound::Handled
        }
        Err(err) => {
            tracing::warn!(security = true, error = %err, "websocket protocol error; closing");
            close(ctx, CloseCode::Protocol, "protocol error");
            Inbound::Handled
        }
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
