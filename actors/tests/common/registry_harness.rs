//! A Registry with probe peers, and the helpers its message-level tests share.

use std::time::Duration;

use actix::Actor;
use fleetgate_actors::agent_session::{SendToAgent, ToAgent};
use fleetgate_actors::protocol::{ConnectionId, MachineId};
use fleetgate_actors::registry::{MachineStatusChanged, RegisterAgent, Registry, RegistryConfig};
use fleetgate_actors::repo::machine::SetMachineStatus;

use super::{Log, entries, probe};

/// A register from `recipient` as `connection_id`.
pub fn register(
    machine_id: MachineId,
    connection_id: ConnectionId,
    hostname: String,
    recipient: actix::Recipient<ToAgent>,
) -> RegisterAgent {
    RegisterAgent {
        machine_id,
        connection_id,
        hostname,
        recipient,
        frames: probe::<SendToAgent>().0,
        secret: fleetgate_actors::protocol::agent::MachineSecret::new("ab".repeat(32)),
        capabilities: Default::default(),
        arbiter: actix::Arbiter::current(),
    }
}

/// Machine number `n`.
pub fn machine(n: u8) -> MachineId {
    MachineId(uuid::Uuid::from_bytes([n; 16]))
}

/// A started Registry whose status store is a probe.
pub fn registry(offline_after: Duration) -> (actix::Addr<Registry>, Log<SetMachineStatus>) {
    let (store, stored) = probe::<SetMachineStatus>();
    let config = RegistryConfig {
        offline_after,
        sweep_every: Duration::from_millis(20),
    };
    (Registry::new(config, store).start(), stored)
}

/// The stored transitions as (machine, online).
pub fn statuses(log: &Log<SetMachineStatus>) -> Vec<(MachineId, bool)> {
    entries(log)
        .into_iter()
        .map(|s| (s.machine_id, s.online))
        .collect()
}

/// The status events told to a subscriber as (machine, online).
pub fn told(log: &Log<MachineStatusChanged>) -> Vec<(MachineId, bool)> {
    entries(log)
        .into_iter()
        .map(|c| (c.machine_id, c.online))
        .collect()
}
