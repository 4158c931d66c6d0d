//! A terminal's output on its way to the owner: taken from the bounded buffer in deliveries,
//! one at a time, each done once the owner's socket has written it; kept for replay; and
//! handed back to agents with `flow_control` as credit.

use actix::{Addr, AsyncContext, Context, Handler, Message, Recipient};

use super::{DELIVERY_BATCH, TerminalSession};
use crate::output_buffer::TakenOutput;
use crate::protocol::envelope::SignedKind;
use crate::protocol::payloads::credit_payload;
use crate::protocol::web::ServerEvent;
use crate::web_session::Deliver;

impl TerminalSession {
    /// Takes up to about `max_bytes` of buffered output as events (a drop notice first if
    /// output was dropped, then the output) and keeps a copy for replay.
    pub(super) fn take_output(&mut self, max_bytes: usize) -> Vec<ServerEvent> {
        let taken = self.buffer.take(max_bytes);
        self.credit_owed += taken.dropped + taken.data.len() as u64;
        self.replay.record(taken.offset, &taken.data);
        self.output_events(taken)
    }

    /// `output_dropped` (when bytes were lost) and `terminal_output` (when there is output).
    pub(super) fn output_events(&self, taken: TakenOutput) -> Vec<ServerEvent> {
        let session_id = self.spec.session_id.to_string();
        let mut events = Vec::with_capacity(2);
        if taken.dropped > 0 {
            events.push(ServerEvent::OutputDropped {
                session_id: session_id.clone(),
                bytes: taken.dropped,
            });
        }
        if !taken.data.is_empty() {
            events.push(ServerEvent::TerminalOutput {
                session_id,
                data: taken.data,
                offset: taken.offset,
            });
        }
        events
    }

    /// Output already handed out after `seen`, for a client that reattaches: what is still
    /// kept, after a drop notice for what is not.
    pub(super) fn replay_events(&self, seen: u64) -> Vec<ServerEvent> {
        let replay = self.replay.since(seen);
        self.output_events(TakenOutput {
            dropped: replay.gap,
            offset: replay.offset,
            data: replay.data,
        })
    }

    /// Hands buffered output to the owner, one delivery at a time (back-pressure).
    pub(super) fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.delivering || self.buffer.is_empty() {
            return;
        }
        let Some(owner) = self.owner.clone() else {
            return;
        };
        let events = self.take_output(DELIVERY_BATCH);
        self.delivering = true;
        deliver_then(&owner.deliver, events, ctx.address(), DeliveryDone);
    }

    /// Agents with `flow_control` may send output only as far as their credit goes: hand back
    /// what the owner's socket has written (or what was dropped), in steps of a quarter
    /// window, or all of it once nothing waits.
    fn return_credit(&mut self) {
        if !self.spec.agent.capabilities().flow_control || self.credit_owed == 0 {
            return;
        }
        let step = (self.config.flow_window / 4).max(1);
        if self.credit_owed >= step || self.buffer.is_empty() {
            let bytes = std::mem::take(&mut self.credit_owed);
            self.send_signed(SignedKind::TerminalCredit, &credit_payload(bytes));
        }
    }
}

/// Sends `events` to a socket, then posts `done` to the session once the socket has written
/// them (or is gone). Detached from the session: if it ends meanwhile, the delivery in flight
/// still reaches the socket (a dropped request would be skipped by its receiver).
pub(super) fn deliver_then<M>(
    socket: &Recipient<Deliver>,
    events: Vec<ServerEvent>,
    session: Addr<TerminalSession>,
    done: M,
) where
    M: Message<Result = ()> + Send + 'static,
    TerminalSession: Handler<M>,
{
    let delivery = socket.send(Deliver::events(events));
    actix::spawn(async move {
        if delivery.await.is_err() {
            tracing::debug!("socket gone during a terminal delivery");
        }
        session.do_send(done);
    });
}

/// The owner's socket has written the last delivery: the next may go.
#[derive(actix::Message)]
#[rtype(result = "()")]
struct DeliveryDone;

impl Handler<DeliveryDone> for TerminalSession {
    type Result = ();

    fn handle(&mut self, _: DeliveryDone, ctx: &mut Context<Self>) {
        self.delivering = false;
        self.pump(ctx);
        self.return_credit();
    }
}
