//! Probe actors that stand in for the registry and the repositories, recording what they get.

#![allow(dead_code)]

pub mod nats;
pub mod registry_harness;
pub mod server_frames;
pub mod terminal_harness;
pub mod web_harness;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Context, Handler, Message};
use fleetgate_actors::agent_session::{RouteError, SendToAgent, ToAgent};
use fleetgate_actors::command::CommandChunk;
use fleetgate_actors::protocol::MachineId;
use fleetgate_actors::registry::{
    DropCommand, DropTerminal, HeartbeatSeen, MachineStatusChanged, RegisterAgent,
    RouteCommandResponse, RouteTerminalExit, RouteTerminalOutput, UnregisterAgent,
};
use fleetgate_actors::repo::audit::RecordAudit;
use fleetgate_actors::repo::machine::{
    AuthenticateMachine, MachineError, SetMachineStatus, TouchLastSeen,
};
use fleetgate_actors::repo::metric::RecordMetric;
use fleetgate_actors::repo::port::{PortSync, SyncPorts};
use fleetgate_actors::repo::session::{SessionClosed, SessionOpened};
use fleetgate_actors::terminal::TerminalEvent;
use fleetgate_actors::web_session::Deliver;

/// A shared, growing list of what a probe received.
pub type Log<T> = Arc<Mutex<Vec<T>>>;

/// A new empty log.
pub fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

/// A copy of a log's entries.
pub fn entries<T: Clone>(log: &Log<T>) -> Vec<T> {
    log.lock().expect("log lock").clone()
}

/// Waits (in short steps, up to 5 s) until `check` holds.
pub async fn until(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if check() {
            return true;
        }
        actix::clock::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Records every message of one type; answers `()`.
pub struct Probe<M> {
    /// What it received.
    pub seen: Log<M>,
}

impl<M: 'static + Unpin> Actor for Probe<M> {
    type Context = Context<Self>;
}

macro_rules! unit_probe {
    ($($message:ty),*) => {$(
        impl Handler<$message> for Probe<$message> {
            type Result = ();
            fn handle(&mut self, message: $message, _: &mut Context<Self>) {
                self.seen.lock().expect("log lock").push(message);
            }
        }
    )*};
}

unit_probe!(
    RecordMetric,
    TouchLastSeen,
    HeartbeatSeen,
    UnregisterAgent,
    SetMachineStatus,
    MachineStatusChanged,
    ToAgent,
    TerminalEvent,
    CommandChunk,
    DropTerminal,
    DropCommand,
    SessionOpened,
    SessionClosed,
    Deliver,
    fleetgate_actors::repo::access::ForgetUser,
    fleetgate_actors::user_directory::RevokeSocket,
    fleetgate_actors::user_directory::WatchSocket,
    fleetgate_actors::user_directory::UnwatchSocket,
    fleetgate_actors::cluster::bridge::MachineConnected
);

/// The bridge's answer: the machine did not move (the close is an offline transition).
impl Handler<fleetgate_actors::cluster::bridge::MachineDisconnected>
    for Probe<fleetgate_actors::cluster::bridge::MachineDisconnected>
{
    type Result = bool;
    fn handle(
        &mut self,
        message: fleetgate_actors::cluster::bridge::MachineDisconnected,
        _: &mut Context<Self>,
    ) -> bool {
        self.seen.lock().expect("log lock").push(message);
        false
    }
}

impl Handler<RecordAudit> for Probe<RecordAudit> {
    type Result = Result<(), sea_orm::DbErr>;
    fn handle(&mut self, message: RecordAudit, _: &mut Context<Self>) -> Self::Result {
        self.seen.lock().expect("log lock").push(message);
        Ok(())
    }
}

impl Handler<SendToAgent> for Probe<SendToAgent> {
    type Result = Result<(), RouteError>;
    fn handle(&mut self, message: SendToAgent, _: &mut Context<Self>) -> Self::Result {
        self.seen.lock().expect("log lock").push(message);
        Ok(())
    }
}

macro_rules! bool_probe {
    ($($message:ty),*) => {$(
        impl Handler<$message> for Probe<$message> {
            type Result = bool;
            fn handle(&mut self, message: $message, _: &mut Context<Self>) -> bool {
                self.seen.lock().expect("log lock").push(message);
                true
            }
        }
    )*};
}

bool_probe!(RouteTerminalOutput, RouteTerminalExit, RouteCommandResponse);

impl Handler<SyncPorts> for Probe<SyncPorts> {
    type Result = Result<PortSync, sea_orm::DbErr>;
    fn handle(&mut self, message: SyncPorts, _: &mut Context<Self>) -> Self::Result {
        self.seen.lock().expect("log lock").push(message);
        Ok(PortSync::Unchanged)
    }
}

/// What a registering agent asked the machine repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// The secret presented.
    pub secret: String,
    /// The hostname reported.
    pub hostname: String,
}

/// Stands in for `MachineRepo`: knows one secret.
pub struct FakeMachineRepo {
    /// The one known secret.
    pub secret: String,
    /// Its machine.
    pub machine_id: MachineId,
    /// What it was asked.
    pub asked: Log<AuthRequest>,
}

impl Actor for FakeMachineRepo {
    type Context = Context<Self>;
}

impl Handler<AuthenticateMachine> for FakeMachineRepo {
    type Result = Result<MachineId, MachineError>;
    fn handle(&mut self, request: AuthenticateMachine, _: &mut Context<Self>) -> Self::Result {
        self.asked.lock().expect("log lock").push(AuthRequest {
            secret: request.secret.clone(),
            hostname: request.details.hostname.clone(),
        });
        if request.secret == self.secret {
            Ok(self.machine_id)
        } else {
            Err(MachineError::UnknownSecret)
        }
    }
}

/// What the registry was told about a registration (the recipient is kept to talk back).
#[derive(Clone)]
pub struct Registration {
    /// The machine.
    pub machine_id: MachineId,
    /// The socket's connection id.
    pub connection_id: fleetgate_actors::protocol::ConnectionId,
}

/// Stands in for the `Registry`'s `RegisterAgent` handler.
pub struct FakeRegistry {
    /// What it received.
    pub seen: Log<Registration>,
}

impl Actor for FakeRegistry {
    type Context = Context<Self>;
}

impl Handler<RegisterAgent> for FakeRegistry {
    type Result = ();
    fn handle(&mut self, message: RegisterAgent, _: &mut Context<Self>) {
        self.seen.lock().expect("log lock").push(Registration {
            machine_id: message.machine_id,
            connection_id: message.connection_id,
        });
    }
}

/// Starts a probe for `M` and returns its recipient and log.
pub fn probe<M>() -> (actix::Recipient<M>, Log<M>)
where
    M: Message + Send + Unpin + 'static,
    M::Result: Send,
    Probe<M>: Handler<M> + Actor<Context = Context<Probe<M>>>,
{
    let seen = log();
    let addr = Probe { seen: seen.clone() }.start();
    (addr.recipient(), seen)
}

/// A link to a machine whose agent socket is a pair of probes (control messages, frames), on
/// the current thread.
pub fn probe_link(
    machine_id: MachineId,
    secret: &str,
    capabilities: fleetgate_actors::protocol::agent::Capabilities,
) -> (
    fleetgate_actors::agent_link::AgentLink,
    Log<ToAgent>,
    Log<SendToAgent>,
) {
    let (socket, control) = probe::<ToAgent>();
    let (frames, sent) = probe::<SendToAgent>();
    let link =
        fleetgate_actors::agent_link::AgentLink::Local(fleetgate_actors::agent_link::LocalAgent {
            machine_id,
            secret: fleetgate_actors::protocol::agent::MachineSecret::new(secret.to_owned()),
            capabilities,
            socket,
            frames,
            arbiter: actix::Arbiter::current(),
        });
    (link, control, sent)
}
