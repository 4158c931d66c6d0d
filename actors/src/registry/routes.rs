//! Routing by sessionId and commandId: agent output reaches the one terminal or command it
//! belongs to, and only when it comes from that session's machine.

use actix::{Context, Handler, Message, Recipient};

use super::Registry;
use crate::agent_session::ToAgent;
use crate::cluster::wire::ToAgentWire;
use crate::command::CommandChunk;
use crate::protocol::escaped::EscapedText;
use crate::protocol::{CommandId, MachineId, SessionId, UserId};
use crate::terminal::{AttachOwner, JoinWatch, LeaveWatch, OwnerRequest, TerminalEvent};

/// A terminal session's route.
pub(super) struct TerminalRoute {
    pub(super) machine_id: MachineId,
    pub(super) events: Recipient<TerminalEvent>,
    /// None for a session whose terminal is on another instance (its events are relayed).
    inboxes: Option<TerminalInboxes>,
}

impl TerminalRoute {
    /// The route of a session whose terminal is on another instance.
    pub(super) fn relayed(machine_id: MachineId, events: Recipient<TerminalEvent>) -> Self {
        Self {
            machine_id,
            events,
            inboxes: None,
        }
    }
}

/// Where a live session takes requests from its owner's sockets.
#[derive(Clone)]
pub struct TerminalInboxes {
    /// Re-binding to another socket.
    pub attach: Recipient<AttachOwner>,
    /// Input, resize, close.
    pub requests: Recipient<OwnerRequest>,
    /// Where watchers join and leave (`None`: a stand-in for a session on another instance,
    /// which cannot be watched from here).
    pub watch: Option<WatchInboxes>,
}

/// Where a live session takes its watchers.
#[derive(Clone)]
pub struct WatchInboxes {
    /// The user whose session it is.
    pub owner: UserId,
    /// A socket joins.
    pub join: Recipient<JoinWatch>,
    /// A socket leaves.
    pub leave: Recipient<LeaveWatch>,
    /// Input from a watcher the owner lets type (the session checks it again).
    pub requests: Recipient<OwnerRequest>,
}

/// A live session that may be watched, and its machine (for the access check).
#[derive(Clone)]
pub struct Watchable {
    /// The session's machine.
    pub machine_id: MachineId,
    /// Its watch inboxes.
    pub inboxes: WatchInboxes,
}

/// A command's route.
pub(super) struct CommandRoute {
    machine_id: MachineId,
    chunks: Recipient<CommandChunk>,
}

impl CommandRoute {
    /// Output of `machine_id`'s agent for the command goes to `chunks`.
    pub(super) fn new(machine_id: MachineId, chunks: Recipient<CommandChunk>) -> Self {
        Self { machine_id, chunks }
    }
}

/// Route a session's agent events to its terminal actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RouteTerminal {
    /// The session.
    pub session_id: SessionId,
    /// Its machine (output from any other machine is refused).
    pub machine_id: MachineId,
    /// The terminal's event inbox.
    pub events: Recipient<TerminalEvent>,
    /// The terminal's owner inboxes.
    pub inboxes: TerminalInboxes,
}

/// Withdraw a session's route.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct DropTerminal {
    /// The session.
    pub session_id: SessionId,
}

/// The owner inboxes of a live session.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Option<TerminalInboxes>")]
pub struct FindTerminal {
    /// The session.
    pub session_id: SessionId,
    /// In cluster mode, for a session not running here: the inboxes of a stand-in that asks
    /// the other instances for it when attached (`RemoteTerminal`).
    pub in_cluster: bool,
}

/// A live session running on this instance, to watch.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Option<Watchable>")]
pub struct FindWatchable {
    /// The session.
    pub session_id: SessionId,
}

/// Output an agent sent for a session.
#[derive(Message, Debug, Clone)]
#[rtype(result = "bool")]
pub struct RouteTerminalOutput {
    /// The agent's machine.
    pub machine_id: MachineId,
    /// The session it names.
    pub session_id: SessionId,
    /// The output.
    pub output: EscapedText,
}

/// An agent reported that a session's shell exited.
#[derive(Message, Debug, Clone)]
#[rtype(result = "bool")]
pub struct RouteTerminalExit {
    /// The agent's machine.
    pub machine_id: MachineId,
    /// The session it names.
    pub session_id: SessionId,
    /// The shell's exit code.
    pub exit_code: i32,
}

/// Route a command's output chunks to its run.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RouteCommand {
    /// The command.
    pub command_id: CommandId,
    /// Its machine.
    pub machine_id: MachineId,
    /// The run's chunk inbox.
    pub chunks: Recipient<CommandChunk>,
}

/// Withdraw a command's route.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct DropCommand {
    /// The command.
    pub command_id: CommandId,
}

/// A `command_response` an agent sent.
#[derive(Message, Debug, Clone)]
#[rtype(result = "bool")]
pub struct RouteCommandResponse {
    /// The agent's machine.
    pub machine_id: MachineId,
    /// The command it names.
    pub command_id: CommandId,
    /// The chunk.
    pub chunk: CommandChunk,
}

impl Handler<RouteTerminal> for Registry {
    type Result = ();

    fn handle(&mut self, msg: RouteTerminal, _: &mut Context<Self>) {
        let route = TerminalRoute {
            machine_id: msg.machine_id,
            events: msg.events,
            inboxes: Some(msg.inboxes),
        };
        self.terminals.insert(msg.session_id, route);
    }
}

impl Handler<DropTerminal> for Registry {
    type Result = ();

    fn handle(&mut self, msg: DropTerminal, _: &mut Context<Self>) {
        let Some(route) = self.terminals.remove(&msg.session_id) else {
            return;
        };
        match self.agents.get(&route.machine_id) {
            Some(agent) => agent.recipient.do_send(ToAgent::DropTerminal {
                session_id: msg.session_id,
            }),
            None => self.tell_remote(
                route.machine_id,
                ToAgentWire::DropTerminal {
                    session_id: msg.session_id.to_string(),
                },
            ),
        }
    }
}

impl Handler<FindTerminal> for Registry {
    type Result = Option<TerminalInboxes>;

    fn handle(&mut self, msg: FindTerminal, _: &mut Context<Self>) -> Self::Result {
        match self.terminals.get(&msg.session_id) {
            Some(route) => route.inboxes.clone(),
            None if msg.in_cluster => self.remote_terminal(msg.session_id),
            None => None,
        }
    }
}

impl Handler<FindWatchable> for Registry {
    type Result = Option<Watchable>;

    fn handle(&mut self, msg: FindWatchable, _: &mut Context<Self>) -> Self::Result {
        let route = self.terminals.get(&msg.session_id)?;
        let inboxes = route.inboxes.as_ref()?.watch.clone()?;
        Some(Watchable {
            machine_id: route.machine_id,
            inboxes,
        })
    }
}

impl Registry {
    /// Withdraws `session_id`'s route if it belongs to `machine_id`, telling its agent.
    pub(super) fn drop_terminal_of(&mut self, machine_id: MachineId, session_id: &SessionId) {
        if self.terminal_of(machine_id, session_id).is_some() {
            self.terminals.remove(session_id);
            if let Some(agent) = self.agents.get(&machine_id) {
                agent.recipient.do_send(ToAgent::DropTerminal {
                    session_id: session_id.clone(),
                });
            }
        }
    }

    /// Withdraws `command_id`'s route if it belongs to `machine_id`.
    pub(super) fn drop_command_of(&mut self, machine_id: MachineId, command_id: &CommandId) {
        if self
            .commands
            .get(command_id)
            .is_some_and(|route| route.machine_id == machine_id)
        {
            self.commands.remove(command_id);
        }
    }

    /// The route of `session_id` if it exists and belongs to `machine_id`.
    fn terminal_of(&self, machine_id: MachineId, session_id: &SessionId) -> Option<&TerminalRoute> {
        match self.terminals.get(session_id) {
            Some(route) if route.machine_id == machine_id => Some(route),
            Some(_) => {
                tracing::warn!(security = true, %machine_id, "agent sent output for another machine's session; dropped");
                None
            }
            None => {
                tracing::debug!(%machine_id, "output for an unknown session dropped");
                None
            }
        }
    }
}

impl Handler<RouteTerminalOutput> for Registry {
    type Result = bool;

    fn handle(&mut self, msg: RouteTerminalOutput, _: &mut Context<Self>) -> bool {
        self.terminal_of(msg.machine_id, &msg.session_id)
            .map(|route| route.events.do_send(TerminalEvent::Output(msg.output)))
            .is_some()
    }
}

impl Handler<RouteTerminalExit> for Registry {
    type Result = bool;

    fn handle(&mut self, msg: RouteTerminalExit, _: &mut Context<Self>) -> bool {
        self.terminal_of(msg.machine_id, &msg.session_id)
            .map(|route| route.events.do_send(TerminalEvent::Exited(msg.exit_code)))
            .is_some()
    }
}

impl Handler<RouteCommand> for Registry {
    type Result = ();

    fn handle(&mut self, msg: RouteCommand, _: &mut Context<Self>) {
        let route = CommandRoute {
            machine_id: msg.machine_id,
            chunks: msg.chunks,
        };
        self.commands.insert(msg.command_id, route);
    }
}

impl Handler<DropCommand> for Registry {
    type Result = ();

    fn handle(&mut self, msg: DropCommand, _: &mut Context<Self>) {
        if let Some(route) = self.commands.remove(&msg.command_id) {
            let command_id = msg.command_id.to_string();
            self.tell_remote(route.machine_id, ToAgentWire::DropCommand { command_id });
        }
    }
}

impl Handler<RouteCommandResponse> for Registry {
    type Result = bool;

    fn handle(&mut self, msg: RouteCommandResponse, _: &mut Context<Self>) -> bool {
        match self.commands.get(&msg.command_id) {
            Some(route) if route.machine_id == msg.machine_id => {
                let last = msg.chunk.completed;
                route.chunks.do_send(msg.chunk);
                if last {
                    self.commands.remove(&msg.command_id);
                }
                true
            }
            Some(_) => {
                tracing::warn!(security = true, machine_id = %msg.machine_id, "agent sent output for another machine's command; dropped");
                false
            }
            None => {
                tracing::debug!(machine_id = %msg.machine_id, "output for an unknown command dropped");
                false
            }
        }
    }
}

/// Ends every open terminal session (server shutdown); answers with how many there were.
#[derive(Message, Debug, Clone)]
#[rtype(result = "usize")]
pub struct ShutdownTerminals;

impl Handler<ShutdownTerminals> for Registry {
    type Result = usize;

    fn handle(&mut self, _: ShutdownTerminals, _: &mut Context<Self>) -> usize {
        for route in self.terminals.values() {
            route.events.do_send(TerminalEvent::ServerShutdown);
        }
        self.terminals.len()
    }
}
