//! The region of every machine's agent, cluster-wide, in memory: the bridge watches the presence
//! bucket (current entries first, then every change) and keeps a [`RegionMap`] that the machine
//! list and `subscribe_machines` read without asking NATS per machine. An entry that expired (its
//! instance died) is not announced by the bucket; the sweep marks such machines offline, and the
//! region of an offline machine is not shown.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix::{AsyncContext, Context, Handler, Message};
use async_nats::jetstream::kv::Operation;
use futures_util::StreamExt;

use super::bridge::NatsBridge;
use super::presence::PresenceEntry;
use super::subscription::Guarded;
use crate::protocol::MachineId;

/// machineId → the region of the instance holding its agent. Cheap to clone; empty when the
/// instance runs standalone.
#[derive(Clone, Default, Debug)]
pub struct RegionMap(Arc<RwLock<HashMap<MachineId, String>>>);

impl RegionMap {
    /// The region `machine`'s agent was last seen connected in.
    pub fn get(&self, machine: &MachineId) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(machine)
            .cloned()
    }

    fn set(&self, machine: MachineId, region: Option<String>) {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        match region {
            Some(region) => map.insert(machine, region),
            None => map.remove(&machine),
        };
    }
}

/// Keep `map` up to date with the presence bucket from now on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchRegions {
    /// The map to keep.
    pub map: RegionMap,
}

impl Handler<WatchRegions> for NatsBridge {
    type Result = ();

    fn handle(&mut self, watch: WatchRegions, ctx: &mut Context<Self>) {
        let presence = self.presence().clone();
        ctx.spawn(actix::fut::wrap_future(async move {
            let mut changes = match presence.watch().await {
                Ok(changes) => Guarded::new(changes),
                Err(err) => {
                    tracing::error!(error = %err, "cannot watch the presence bucket; regions unknown");
                    return;
                }
            };
            while let Some(change) = changes.next().await {
                let Ok(change) = change else { continue };
                let Some(machine) = MachineId::parse(&change.key) else {
                    continue;
                };
                let region = match change.operation {
                    Operation::Put => serde_json::from_slice::<PresenceEntry>(&change.value)
                        .ok()
                        .map(|entry| entry.region),
                    Operation::Delete | Operation::Purge => None,
                };
                watch.map.set(machine, region);
            }
        }));
    }
}
