//! The Registry's side of the cluster. As the operator's instance: a link to an agent connected
//! to another instance ([`remote_link`]), and telling that instance when a session or command
//! routed there ends; a stand-in for a terminal running on another instance, for its owner
//! re-attaching through this one. As the agent's instance: requests from other instances ([`FromCluster`])
//! for the agents connected here, whose output goes back through an [`OutputRelay`].

use actix::{Actor, Context, Handler, Recipient, ResponseFuture};

use super::Registry;
use super::routes::{CommandRoute, TerminalInboxes, TerminalRoute};
use crate::agent_link::{AgentLink, RemoteAgent};
use crate::agent_session::{RouteError, SendToAgent, ToAgent};
use crate::cluster::bridge::WhereIs;
use crate::cluster::inbound::FromCluster;
use crate::cluster::outbox::ClusterOutbox;
use crate::cluster::relay::OutputRelay;
use crate::cluster::remote_terminal::RemoteTerminal;
use crate::cluster::view::ClusterView;
use crate::cluster::wire::{AgentRequest, ToAgentWire, command_out_subject, session_out_subject};
use crate::protocol::agent::Capabilities;
use crate::protocol::{CommandId, MachineId, SessionId};
use crate::repo::machine_admin::MachineSecretOf;

/// What the Registry needs to reach agents connected to other instances (cluster mode).
#[derive(Clone)]
pub struct ClusterRouting {
    /// This instance's way out to the cluster.
    pub outbox: ClusterOutbox,
    /// Where a machine's agent is connected (the bridge).
    pub where_is: Recipient<WhereIs>,
    /// Machine secrets, to sign towards remote agents (`MachineRepo`).
    pub secret_of: Recipient<MachineSecretOf>,
    /// The cluster as this instance sees it (which instances are alive).
    pub view: ClusterView,
}

/// A link to `machine_id`'s agent on whichever instance holds it: `MachineOffline` if none
/// does (or only this one, whose Registry does not know it), `RegionUnreachable` if presence
/// or the secret cannot be read.
pub(super) fn remote_link(
    routing: ClusterRouting,
    machine_id: MachineId,
) -> ResponseFuture<Result<AgentLink, RouteError>> {
    Box::pin(async move {
        if !routing.outbox.is_connected() {
            return Err(RouteError::RegionUnreachable);
        }
        let entry = match routing.where_is.send(WhereIs { machine_id }).await {
            Ok(Ok(Some(entry))) => entry,
            Ok(Ok(None)) => return Err(RouteError::MachineOffline),
            Ok(Err(err)) => {
                tracing::warn!(%machine_id, error = %err, "presence unreadable");
                return Err(RouteError::RegionUnreachable);
            }
            Err(_) => return Err(RouteError::RegionUnreachable),
        };
        if entry.instance == routing.outbox.link().instance {
            return Err(RouteError::MachineOffline);
        }
        let secret = match routing.secret_of.send(MachineSecretOf { machine_id }).await {
            Ok(Ok(Some(secret))) => secret,
            Ok(Ok(None)) => return Err(RouteError::MachineOffline),
            _ => {
                tracing::error!(%machine_id, "machine secret unreadable; remote link refused");
                return Err(RouteError::RegionUnreachable);
            }
        };
        Ok(AgentLink::Remote(Box::new(RemoteAgent {
            machine_id,
            secret,
            capabilities: Capabilities::from_names(&entry.capabilities),
            instance: entry.instance,
            region: entry.region,
            outbox: routing.outbox,
        })))
    })
}

impl Registry {
    /// Tells the instance holding `machine_id`'s agent (if it is not here) that a session or
    /// command routed there ended.
    pub(super) fn tell_remote(&self, machine_id: MachineId, request: ToAgentWire) {
        if self.agents.contains_key(&machine_id) {
            return;
        }
        if let Some(routing) = &self.cluster {
            let subject =
                crate::cluster::wire::agent_in_subject(&routing.outbox.link().cluster, machine_id);
            routing
                .outbox
                .publish(subject, AgentRequest::body(None, request));
        }
    }

    /// The inboxes of a stand-in for `session_id`, running on another instance if anywhere
    /// (cluster mode only).
    pub(super) fn remote_terminal(&self, session_id: SessionId) -> Option<TerminalInboxes> {
        let routing = self.cluster.as_ref()?;
        let stand_in =
            RemoteTerminal::new(routing.outbox.clone(), routing.view.clone(), session_id).start();
        Some(TerminalInboxes {
            attach: stand_in.clone().recipient(),
            requests: stand_in.recipient(),
            watch: None,
        })
    }

    /// Routes a remote operator's session's output from the agent here back to its instance.
    fn relay_terminal(&mut self, machine_id: MachineId, session_id: SessionId) {
        let (Some(routing), Some(agent)) = (&self.cluster, self.agents.get(&machine_id)) else {
            return;
        };
        if self.terminals.contains_key(&session_id) {
            tracing::warn!(%session_id, "a route for this session exists already; left alone");
            return;
        }
        let subject = session_out_subject(&routing.outbox.link().cluster, &session_id);
        let relay = OutputRelay::new(routing.outbox.clone(), subject).start();
        agent.recipient.do_send(ToAgent::RouteTerminal {
            session_id: session_id.clone(),
            events: relay.clone().recipient(),
        });
        let route = TerminalRoute::relayed(machine_id, relay.recipient());
        self.terminals.insert(session_id, route);
    }

    /// Routes a remote operator's command's output from the agent here back to its instance.
    fn relay_command(&mut self, machine_id: MachineId, command_id: CommandId) {
        let Some(routing) = &self.cluster else { return };
        if self.commands.contains_key(&command_id) {
            tracing::warn!(%command_id, "a route for this command exists already; left alone");
            return;
        }
        let subject = command_out_subject(&routing.outbox.link().cluster, &command_id);
        let relay = OutputRelay::new(routing.outbox.clone(), subject).start();
        let route = CommandRoute::new(machine_id, relay.recipient());
        self.commands.insert(command_id, route);
    }
}

impl Handler<FromCluster> for Registry {
    type Result = ResponseFuture<Result<(), RouteError>>;

    /// Carries out another instance's request for an agent connected here; a route is only
    /// ever set up or dropped for the machine whose subject the request came on.
    fn handle(&mut self, msg: FromCluster, _: &mut Context<Self>) -> Self::Result {
        let FromCluster {
            machine_id,
            request,
            ..
        } = msg;
        let Some(agent) = self.agents.get(&machine_id) else {
            return Box::pin(async { Err(RouteError::MachineOffline) });
        };
        match request {
            ToAgentWire::Frame { frame } => {
                let sent = agent.frames.send(SendToAgent { machine_id, frame });
                return Box::pin(
                    async move { sent.await.unwrap_or(Err(RouteError::MachineOffline)) },
                );
            }
            ToAgentWire::RouteTerminal { session_id } => {
                if let Some(session_id) = SessionId::parse(&session_id) {
                    self.relay_terminal(machine_id, session_id);
                }
            }
            ToAgentWire::RouteCommand { command_id } => {
                if let Some(command_id) = CommandId::parse(&command_id) {
                    self.relay_command(machine_id, command_id);
                }
            }
            ToAgentWire::DropTerminal { session_id } => {
                if let Some(session_id) = SessionId::parse(&session_id) {
                    self.drop_terminal_of(machine_id, &session_id);
                }
            }
            ToAgentWire::DropCommand { command_id } => {
                if let Some(command_id) = CommandId::parse(&command_id) {
                    self.drop_command_of(machine_id, &command_id);
                }
            }
        }
        Box::pin(async { Ok(()) })
    }
}
