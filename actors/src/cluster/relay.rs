//! `OutputRelay`: on the instance holding an agent, stands in for a terminal or a command whose
//! operator is on another instance. The agent's output is routed to it like to a local terminal
//! or command, and it publishes each event, sealed, on the session's or command's `.out`
//! subject, where the operator's instance listens. It stops after the last event.

use actix::{Actor, ActorContext, Context, Handler};

use super::outbox::ClusterOutbox;
use super::wire::FromAgentWire;
use crate::command::CommandChunk;
use crate::terminal::TerminalEvent;

/// Publishes one session's or one command's agent events to the operator's instance.
pub struct OutputRelay {
    outbox: ClusterOutbox,
    subject: String,
}

impl OutputRelay {
    /// A relay publishing on `subject`.
    pub fn new(outbox: ClusterOutbox, subject: String) -> Self {
        Self { outbox, subject }
    }
}

impl Actor for OutputRelay {
    type Context = Context<Self>;
}

impl Handler<TerminalEvent> for OutputRelay {
    type Result = ();

    fn handle(&mut self, event: TerminalEvent, ctx: &mut Context<Self>) {
        self.outbox
            .publish(self.subject.clone(), FromAgentWire::terminal_body(&event));
        if !matches!(event, TerminalEvent::Output(_)) {
            ctx.stop();
        }
    }
}

impl Handler<CommandChunk> for OutputRelay {
    type Result = ();

    fn handle(&mut self, chunk: CommandChunk, ctx: &mut Context<Self>) {
        self.outbox
            .publish(self.subject.clone(), FromAgentWire::chunk_body(&chunk));
        if chunk.completed {
            ctx.stop();
        }
    }
}
