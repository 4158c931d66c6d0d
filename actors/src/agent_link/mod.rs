//! `AgentLink`: the only way to reach a machine's agent. The Registry hands one out when a
//! terminal or a command opens ([`crate::registry::OpenLink`]); terminals and commands send
//! every frame through it. The fast path lives here and nowhere else: a local link sends
//! straight to the agent's socket, and [`AgentLink::start_terminal`] starts a terminal on the
//! socket's thread with the socket's route to it set up in the same step, so shell output
//! reaches its terminal without a hop through the Registry or a thread switch. A link to an
//! agent connected to another instance of the cluster ([`RemoteAgent`], `remote.rs`) has the
//! same methods, carried over NATS.

use std::future::Future;
use std::pin::Pin;

use actix::{Actor, Addr, ArbiterHandle, Recipient};

use crate::agent_session::{RouteError, SendToAgent, ToAgent};
use crate::command::CommandChunk;
use crate::protocol::agent::{Capabilities, MachineSecret};
use crate::protocol::{CommandId, MachineId, SessionId};
use crate::terminal::TerminalSession;

/// A way to a machine's agent.
#[derive(Clone, Debug)]
pub enum AgentLink {
    /// The agent's socket is an actor of this process.
    Local(LocalAgent),
    /// The agent's socket is on another instance of the cluster.
    Remote(Box<RemoteAgent>),
}

mod remote;

pub use remote::RemoteAgent;

/// An agent connected to this process.
#[derive(Clone, Debug)]
pub struct LocalAgent {
    /// The machine.
    pub machine_id: MachineId,
    /// Its secret, to sign envelopes.
    pub secret: MachineSecret,
    /// What its agent announced.
    pub capabilities: Capabilities,
    /// Its socket, for routes and control.
    pub socket: Recipient<ToAgent>,
    /// Its socket, for frames whose sender wants to know they went out.
    pub frames: Recipient<SendToAgent>,
    /// The thread its socket runs on.
    pub arbiter: ArbiterHandle,
}

/// Resolves once the agent's socket took a frame (or could not).
pub type Sent = Pin<Box<dyn Future<Output = Result<(), RouteError>>>>;

impl AgentLink {
    /// The machine at the other end.
    pub fn machine_id(&self) -> MachineId {
        match self {
            AgentLink::Local(agent) => agent.machine_id,
            AgentLink::Remote(agent) => agent.machine_id,
        }
    }

    /// The machine's secret, to sign envelopes.
    pub fn secret(&self) -> &MachineSecret {
        match self {
            AgentLink::Local(agent) => &agent.secret,
            AgentLink::Remote(agent) => &agent.secret,
        }
    }

    /// What the agent announced.
    pub fn capabilities(&self) -> Capabilities {
        match self {
            AgentLink::Local(agent) => agent.capabilities,
            AgentLink::Remote(agent) => agent.capabilities,
        }
    }

    /// Sends a frame; resolves once the agent's socket took it, or with why not.
    pub fn send(&self, frame: String) -> Sent {
        match self {
            AgentLink::Local(agent) => {
                let sent = agent.frames.send(SendToAgent {
                    machine_id: agent.machine_id,
                    frame,
                });
                Box::pin(async move { sent.await.unwrap_or(Err(RouteError::MachineOffline)) })
            }
            AgentLink::Remote(agent) => Box::pin(agent.send(frame)),
        }
    }

    /// Sends a frame without waiting for the socket.
    pub fn post(&self, frame: String) {
        match self {
            AgentLink::Local(agent) => agent.frames.do_send(SendToAgent {
                machine_id: agent.machine_id,
                frame,
            }),
            AgentLink::Remote(agent) => agent.post(frame),
        }
    }

    /// Starts session `session_id`'s terminal where the agent's output arrives and routes
    /// that output to it, in one step (before the terminal can spawn the shell).
    pub fn start_terminal(
        &self,
        session_id: SessionId,
        build: impl FnOnce() -> TerminalSession + Send + 'static,
    ) -> Addr<TerminalSession> {
        match self {
            AgentLink::Local(agent) => {
                let socket = agent.socket.clone();
                TerminalSession::start_in_arbiter(&agent.arbiter, move |ctx| {
                    socket.do_send(ToAgent::RouteTerminal {
                        session_id,
                        events: actix::AsyncContext::address(ctx).recipient(),
                    });
                    build()
                })
            }
            AgentLink::Remote(agent) => agent.start_terminal(session_id, build),
        }
    }

    /// Makes command `command_id`'s output reach `chunks` (before its `execute_command` is
    /// sent). A local agent's output takes the Registry's route, which the caller sets up.
    pub fn open_command(&self, command_id: &CommandId, chunks: Recipient<CommandChunk>) {
        match self {
            AgentLink::Local(_) => {}
            AgentLink::Remote(agent) => agent.open_command(command_id, chunks),
        }
    }

    /// Where the agent is connected: `None` for this instance, else the region of the
    /// instance holding it.
    pub fn region(&self) -> Option<&str> {
        match self {
            AgentLink::Local(_) => None,
            AgentLink::Remote(agent) => Some(&agent.region),
        }
    }
}
