//! `Registry`: the single owner of routing. It knows who is connected and whether each machine
//! is online, hands out the [`AgentLink`] through which terminals and commands reach an agent,
//! and routes agent output by sessionId and commandId (`routes.rs`) when it does not take a
//! link's fast path.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, ArbiterHandle, AsyncContext, Context, Handler, Message, Recipient,
    ResponseFuture, WrapFuture,
};
use chrono::{DateTime, Utc};

use crate::agent_link::{AgentLink, LocalAgent};
use crate::agent_session::{RouteError, SendToAgent, ToAgent};
use crate::cluster::bridge::{MachineConnected, MachineDisconnected};
use crate::protocol::agent::{Capabilities, MachineSecret};
use crate::protocol::{CommandId, ConnectionId, MachineId, SessionId};
use crate::repo::machine::SetMachineStatus;
use crate::socket::CLOSE_REPLACED;
use crate::terminal::TerminalEvent;

mod presence;
mod remote;
mod routes;

pub use presence::PresenceLinks;
pub use remote::ClusterRouting;

pub use routes::{
    DropCommand, DropTerminal, FindTerminal, FindWatchable, RouteCommand, RouteCommandResponse,
    RouteTerminal, RouteTerminalExit, RouteTerminalOutput, ShutdownTerminals, TerminalInboxes,
    WatchInboxes, Watchable,
};

/// An agent's socket has registered as `machine_id`; replaces any older connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterAgent {
    /// The machine.
    pub machine_id: MachineId,
    /// The registering socket.
    pub connection_id: ConnectionId,
    /// Hostname, for status events.
    pub hostname: String,
    /// Where to send frames for this machine.
    pub recipient: Recipient<ToAgent>,
    /// The same socket, for senders that want to know whether the frame could be sent.
    pub frames: Recipient<SendToAgent>,
    /// The verified secret, to sign envelopes.
    pub secret: MachineSecret,
    /// Extensions the agent announced.
    pub capabilities: Capabilities,
    /// The thread the agent's socket runs on: its terminals run there too, so that shell
    /// output reaches its terminal without crossing threads.
    pub arbiter: ArbiterHandle,
}

/// An agent's socket closed; a no-op unless `connection_id` is the machine's current one.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct UnregisterAgent {
    /// The machine.
    pub machine_id: MachineId,
    /// The closing socket.
    pub connection_id: ConnectionId,
}

/// A heartbeat arrived on `connection_id`.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct HeartbeatSeen {
    /// The machine.
    pub machine_id: MachineId,
    /// The socket it came on.
    pub connection_id: ConnectionId,
}

/// A link to a machine's agent, wherever in the cluster it is connected: the only way
/// terminals and commands send to it. `MachineOffline` if no instance holds it,
/// `RegionUnreachable` if the cluster cannot be asked.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<AgentLink, RouteError>")]
pub struct OpenLink {
    /// The machine.
    pub machine_id: MachineId,
}

/// A machine went online or offline.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct MachineStatusChanged {
    /// The machine.
    pub machine_id: MachineId,
    /// Its hostname.
    pub hostname: String,
    /// Whether it is online now.
    pub online: bool,
    /// When it changed.
    pub at: DateTime<Utc>,
}

/// Receive every status transition from now on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeStatus {
    /// Where to send them.
    pub subscriber: Recipient<MachineStatusChanged>,
}

/// Which machines are online right now.
#[derive(Message, Debug)]
#[rtype(result = "Vec<MachineId>")]
pub struct OnlineMachines;

/// Timings of the registry.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Offline after this long without a heartbeat.
    pub offline_after: Duration,
    /// How often to look for silent machines.
    pub sweep_every: Duration,
}

struct AgentEntry {
    connection_id: ConnectionId,
    recipient: Recipient<ToAgent>,
    frames: Recipient<SendToAgent>,
    hostname: String,
    last_heartbeat: Instant,
    online: bool,
    secret: MachineSecret,
    capabilities: Capabilities,
    arbiter: ArbiterHandle,
}

/// Owns the routing table of connected agents and their online status.
pub struct Registry {
    config: RegistryConfig,
    agents: HashMap<MachineId, AgentEntry>,
    terminals: HashMap<SessionId, routes::TerminalRoute>,
    commands: HashMap<CommandId, routes::CommandRoute>,
    status_store: Recipient<SetMachineStatus>,
    subscribers: Vec<Recipient<MachineStatusChanged>>,
    presence: Option<PresenceLinks>,
    cluster: Option<ClusterRouting>,
}

impl Registry {
    /// A registry persisting status transitions through `status_store`.
    pub fn new(config: RegistryConfig, status_store: Recipient<SetMachineStatus>) -> Self {
        Self {
            config,
            agents: HashMap::new(),
            terminals: HashMap::new(),
            commands: HashMap::new(),
            status_store,
            subscribers: Vec::new(),
            presence: None,
            cluster: None,
        }
    }

    /// Also reaches agents connected to other instances, and serves theirs.
    pub fn with_cluster(mut self, routing: ClusterRouting) -> Self {
        self.cluster = Some(routing);
        self
    }

    /// Also tells the cluster which agents are connected here.
    pub fn with_presence(mut self, presence: PresenceLinks) -> Self {
        self.presence = Some(presence);
        self
    }

    /// Persists and publishes a transition.
    fn publish(&mut self, machine_id: MachineId, hostname: &str, online: bool) {
        let at = Utc::now();
        tracing::info!(%machine_id, online, "machine status changed");
        self.status_store.do_send(SetMachineStatus {
            machine_id,
            online,
            at,
        });
        let event = MachineStatusChanged {
            machine_id,
            hostname: hostname.to_owned(),
            online,
            at,
        };
        if let Some(presence) = &self.presence {
            presence.status.do_send(event.clone());
        }
        self.tell_subscribers(&event);
    }

    fn tell_subscribers(&mut self, event: &MachineStatusChanged) {
        self.subscribers.retain(|s| s.connected());
        for subscriber in &self.subscribers {
            subscriber.do_send(event.clone());
        }
    }

    /// Ends the sessions open on `machine_id`'s agent: it is gone (here or on its instance).
    fn end_terminals_of(&self, machine_id: MachineId) {
        for route in self
            .terminals
            .values()
            .filter(|r| r.machine_id == machine_id)
        {
            route.events.do_send(TerminalEvent::AgentGone);
        }
    }

    /// Marks machines without a recent heartbeat offline.
    fn sweep(&mut self) {
        let silent: Vec<(MachineId, String)> = self
            .agents
            .iter_mut()
            .filter(|(_, e)| e.online && e.last_heartbeat.elapsed() > self.config.offline_after)
            .map(|(id, e)| {
                e.online = false;
                (*id, e.hostname.clone())
            })
            .collect();
        for (machine_id, hostname) in silent {
            tracing::warn!(%machine_id, "no heartbeat in time; machine marked offline");
            self.publish(machine_id, &hostname, false);
        }
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.config.sweep_every, |registry, _| registry.sweep());
    }
}

impl Handler<RegisterAgent> for Registry {
    type Result = ();

    fn handle(&mut self, msg: RegisterAgent, _: &mut Context<Self>) {
        if let Some(presence) = &self.presence {
            presence.connected.do_send(MachineConnected {
                machine_id: msg.machine_id,
                connection_id: msg.connection_id,
                since: Utc::now(),
                capabilities: msg.capabilities,
            });
        }
        let entry = AgentEntry {
            connection_id: msg.connection_id,
            recipient: msg.recipient,
            frames: msg.frames,
            hostname: msg.hostname.clone(),
            last_heartbeat: Instant::now(),
            online: true,
            secret: msg.secret,
            capabilities: msg.capabilities,
            arbiter: msg.arbiter,
        };
        let previous = self.agents.insert(msg.machine_id, entry);
        crate::instruments::agents_connected(self.agents.len());
        let was_online = match previous {
            Some(old) => {
                tracing::info!(machine_id = %msg.machine_id, "newer connection replaces the old one");
                old.recipient.do_send(ToAgent::Disconnect {
                    code: CLOSE_REPLACED,
                    reason: "replaced by a newer connection",
                });
                old.online
            }
            None => false,
        };
        if !was_online {
            self.publish(msg.machine_id, &msg.hostname, true);
        }
    }
}

impl Handler<UnregisterAgent> for Registry {
    type Result = ();

    /// In a cluster the offline transition waits for the presence withdrawal: if the machine
    /// has meanwhile registered on another instance, this late close must not mark it offline
    /// (the ConnectionId rule, cluster-wide).
    fn handle(&mut self, msg: UnregisterAgent, ctx: &mut Context<Self>) {
        let is_current = self
            .agents
            .get(&msg.machine_id)
            .is_some_and(|e| e.connection_id == msg.connection_id);
        if !is_current {
            return;
        }
        let machine_id = msg.machine_id;
        let withdrawn = self.presence.as_ref().map(|presence| {
            presence.disconnected.send(MachineDisconnected {
                machine_id,
                connection_id: msg.connection_id,
            })
        });
        // The agent's shells are gone with it (v1 agents keep them, but nobody can reach them).
        self.end_terminals_of(machine_id);
        let removed = self.agents.remove(&machine_id);
        crate::instruments::agents_connected(self.agents.len());
        let Some(entry) = removed.filter(|e| e.online) else {
            return;
        };
        let Some(withdrawn) = withdrawn else {
            return self.publish(machine_id, &entry.hostname, false);
        };
        ctx.spawn(withdrawn.into_actor(self).map(move |moved, registry, _| {
            if matches!(moved, Ok(true)) {
                tracing::info!(%machine_id, "machine moved to another connection; not offline");
            } else if !registry.agents.contains_key(&machine_id) {
                registry.publish(machine_id, &entry.hostname, false);
            }
        }));
    }
}

impl Handler<HeartbeatSeen> for Registry {
    type Result = ();

    fn handle(&mut self, msg: HeartbeatSeen, _: &mut Context<Self>) {
        let Some(entry) = self.agents.get_mut(&msg.machine_id) else {
            return;
        };
        if entry.connection_id != msg.connection_id {
            return;
        }
        entry.last_heartbeat = Instant::now();
        if !entry.online {
            entry.online = true;
            let hostname = entry.hostname.clone();
            self.publish(msg.machine_id, &hostname, true);
        }
    }
}

impl Handler<OpenLink> for Registry {
    type Result = ResponseFuture<Result<AgentLink, RouteError>>;

    /// A local link at once if the agent is connected here; else, in cluster mode, a link to
    /// the instance holding it.
    fn handle(&mut self, msg: OpenLink, _: &mut Context<Self>) -> Self::Result {
        let machine_id = msg.machine_id;
        if let Some(entry) = self.agents.get(&machine_id) {
            let link = AgentLink::Local(LocalAgent {
                machine_id,
                secret: entry.secret.clone(),
                capabilities: entry.capabilities,
                socket: entry.recipient.clone(),
                frames: entry.frames.clone(),
                arbiter: entry.arbiter.clone(),
            });
            return Box::pin(async move { Ok(link) });
        }
        match &self.cluster {
            Some(routing) => remote::remote_link(routing.clone(), machine_id),
            None => Box::pin(async { Err(RouteError::MachineOffline) }),
        }
    }
}

impl Handler<SubscribeStatus> for Registry {
    type Result = ();

    fn handle(&mut self, msg: SubscribeStatus, _: &mut Context<Self>) {
        self.subscribers.push(msg.subscriber);
    }
}

impl Handler<OnlineMachines> for Registry {
    type Result = Vec<MachineId>;

    fn handle(&mut self, _: OnlineMachines, _: &mut Context<Self>) -> Self::Result {
        let mut online: Vec<MachineId> = self
            .agents
            .iter()
            .filter(|(_, e)| e.online)
            .map(|(id, _)| *id)
            .collect();
        online.sort();
        online
    }
}

/// Close a machine's agent socket with `code` (machine deleted or secret rotated).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct DisconnectAgent {
    /// The machine.
    pub machine_id: MachineId,
    /// WebSocket close code.
    pub code: u16,
    /// Close reason.
    pub reason: &'static str,
}

impl Handler<DisconnectAgent> for Registry {
    type Result = ();

    fn handle(&mut self, msg: DisconnectAgent, _: &mut Context<Self>) {
        if let Some(entry) = self.agents.get(&msg.machine_id) {
            entry.recipient.do_send(ToAgent::Disconnect {
                code: msg.code,
                reason: msg.reason,
            });
        }
    }
}
