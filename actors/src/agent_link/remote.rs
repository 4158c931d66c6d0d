//! A link to an agent connected to another instance of the cluster. Frames go, sealed, to
//! `fg.<cluster>.agent.<machineId>.in`, where the instance holding the agent forwards them;
//! the agent's output comes back on the session's or command's `.out` subject, to which this
//! instance listens from before the request that makes it flow. The operator's instance (this
//! one) has authorised, audited and signed everything it sends.

use std::future::Future;

use actix::{Addr, AsyncContext, Context, Recipient};

use crate::agent_session::RouteError;
use crate::cluster::outbox::{ClusterOutbox, Listener};
use crate::cluster::wire::{
    AgentRequest, FromAgentWire, ToAgentWire, agent_in_subject, command_out_subject,
    session_out_subject,
};
use crate::command::CommandChunk;
use crate::protocol::agent::{Capabilities, MachineSecret};
use crate::protocol::{CommandId, MachineId, SessionId};
use crate::terminal::TerminalSession;

/// An agent connected to another instance.
#[derive(Clone, Debug)]
pub struct RemoteAgent {
    /// The machine.
    pub machine_id: MachineId,
    /// Its secret, to sign envelopes (read from the shared database).
    pub secret: MachineSecret,
    /// What its agent announced (from its presence entry).
    pub capabilities: Capabilities,
    /// The instance holding its socket.
    pub instance: String,
    /// That instance's region.
    pub region: String,
    /// This instance's way out to the cluster.
    pub outbox: ClusterOutbox,
}

impl RemoteAgent {
    fn subject(&self) -> String {
        agent_in_subject(&self.outbox.link().cluster, self.machine_id)
    }

    fn body(&self, request: ToAgentWire) -> String {
        AgentRequest::body(Some(&self.instance), request)
    }

    /// Sends `request` to the agent's instance without waiting for an answer.
    pub(super) fn tell(&self, request: ToAgentWire) {
        self.outbox.publish(self.subject(), self.body(request));
    }

    /// Sends a frame; resolves once the agent's socket on its instance took it, or with why not.
    pub(super) fn send(
        &self,
        frame: String,
    ) -> impl Future<Output = Result<(), RouteError>> + 'static {
        let body = self.body(ToAgentWire::Frame { frame });
        self.outbox.request(self.subject(), body)
    }

    /// Sends a frame without waiting.
    pub(super) fn post(&self, frame: String) {
        self.tell(ToAgentWire::Frame { frame });
    }

    /// Starts the terminal here, listening to its session's output subject, then asks the
    /// agent's instance to route the session's output there; both before the terminal (once
    /// started) sends its `spawn_shell`.
    pub(super) fn start_terminal(
        &self,
        session_id: SessionId,
        build: impl FnOnce() -> TerminalSession,
    ) -> Addr<TerminalSession> {
        let context = Context::new();
        let terminal = context.address();
        let subject = session_out_subject(&self.outbox.link().cluster, &session_id);
        self.outbox.listen(
            subject,
            Box::new(Forward {
                to: terminal.clone().recipient(),
                read: FromAgentWire::terminal_event,
            }),
        );
        self.tell(ToAgentWire::RouteTerminal {
            session_id: session_id.to_string(),
        });
        context.run(build())
    }

    /// Listens to the command's output subject, then asks the agent's instance to route the
    /// command's output there.
    pub(super) fn open_command(&self, command_id: &CommandId, chunks: Recipient<CommandChunk>) {
        let subject = command_out_subject(&self.outbox.link().cluster, command_id);
        self.outbox.listen(
            subject,
            Box::new(Forward {
                to: chunks,
                read: FromAgentWire::command_chunk,
            }),
        );
        self.tell(ToAgentWire::RouteCommand {
            command_id: command_id.to_string(),
        });
    }
}

/// Hands what a listener opens, read as `M`, to the terminal or command waiting for it.
struct Forward<M>
where
    M: actix::Message + Send,
    M::Result: Send,
{
    to: Recipient<M>,
    read: fn(&str) -> Option<M>,
}

impl<M> Listener for Forward<M>
where
    M: actix::Message + Send + 'static,
    M::Result: Send,
{
    fn deliver(&mut self, body: &str) -> bool {
        (self.read)(body)
            .map(|message| self.to.do_send(message))
            .is_some()
    }

    fn alive(&self) -> bool {
        self.to.connected()
    }
}
