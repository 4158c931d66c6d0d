//! What this instance knows of the cluster, in memory: every machine's presence entry and every
//! instance's last lease renewal, kept by two watches of the buckets (current entries first,
//! then every change). Lookups (where is a machine, in which region) and the sweep read it
//! without asking NATS per machine. A lease counts as alive for one TTL after its renewal was
//! seen; an instance never seen counts as dead once the view has watched for a whole TTL.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{Operation, Watch};
use futures_util::StreamExt;

use super::presence::{PresenceBook, PresenceEntry};
use super::subscription::Guarded;
use crate::protocol::MachineId;

#[derive(Debug, Default)]
struct ViewState {
    machines: HashMap<MachineId, PresenceEntry>,
    leases: HashMap<String, Instant>,
    watching_since: Option<Instant>,
    ttl: Duration,
}

impl ViewState {
    fn alive(&self, instance: &str, now: Instant) -> bool {
        self.leases
            .get(instance)
            .is_some_and(|renewed| now.duration_since(*renewed) < self.ttl)
    }

    /// Whether instances never seen can be taken for dead.
    fn settled(&self, now: Instant) -> bool {
        self.watching_since
            .is_some_and(|since| now.duration_since(since) >= self.ttl)
    }
}

/// The cluster as this instance sees it. Cheap to clone; empty (nothing anywhere) standalone.
#[derive(Clone, Default, Debug)]
pub struct ClusterView(Arc<RwLock<ViewState>>);

impl ClusterView {
    /// A view in which leases live `ttl` after their renewal.
    pub fn new(ttl: Duration) -> Self {
        Self(Arc::new(RwLock::new(ViewState {
            ttl,
            ..ViewState::default()
        })))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ViewState> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ViewState> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Where `machine`'s agent is connected, if the instance holding it is alive.
    pub fn holder(&self, machine: &MachineId) -> Option<PresenceEntry> {
        let state = self.read();
        state
            .machines
            .get(machine)
            .filter(|entry| state.alive(&entry.instance, Instant::now()))
            .cloned()
    }

    /// The region `machine`'s agent is connected in (none if no live instance holds it).
    pub fn region_of(&self, machine: &MachineId) -> Option<String> {
        self.holder(machine).map(|entry| entry.region)
    }

    /// Whether `instance` renewed its lease within the TTL.
    pub fn is_alive(&self, instance: &str) -> bool {
        self.read().alive(instance, Instant::now())
    }

    /// Whether any entry, live or not, names `machine`.
    pub fn knows(&self, machine: &MachineId) -> bool {
        self.read().machines.contains_key(machine)
    }

    /// Machines whose entries name an instance that is dead, with that instance (nothing until
    /// the view has watched for a whole TTL).
    pub fn orphans(&self) -> Vec<(MachineId, String)> {
        let state = self.read();
        let now = Instant::now();
        if !state.settled(now) {
            return Vec::new();
        }
        state
            .machines
            .iter()
            .filter(|(_, entry)| !state.alive(&entry.instance, now))
            .map(|(machine, entry)| (*machine, entry.instance.clone()))
            .collect()
    }

    /// Whether `instance` leads the sweep: the first live instance by name.
    pub fn leads(&self, instance: &str) -> bool {
        let state = self.read();
        let now = Instant::now();
        state.settled(now)
            && state
                .leases
                .keys()
                .filter(|name| state.alive(name, now))
                .min()
                .is_some_and(|first| first == instance)
    }

    /// The machines whose entries name `instance` with `connection`.
    pub fn held_by(&self, instance: &str) -> HashSet<(MachineId, u64)> {
        self.read()
            .machines
            .iter()
            .filter(|(_, entry)| entry.instance == instance)
            .map(|(machine, entry)| (*machine, entry.connection_id))
            .collect()
    }

    fn set_machine(&self, machine: MachineId, entry: Option<PresenceEntry>) {
        let mut state = self.write();
        match entry {
            Some(entry) => state.machines.insert(machine, entry),
            None => state.machines.remove(&machine),
        };
    }

    fn renewed(&self, instance: String, at: Instant) {
        self.write().leases.insert(instance, at);
    }

    fn start_watching(&self) {
        self.write().watching_since.get_or_insert_with(Instant::now);
    }
}

/// Keeps `view` up to date with the presence and lease buckets (runs until NATS goes for good).
pub(super) async fn follow(presence: PresenceBook, view: ClusterView) {
    let (machines, leases) = match (presence.watch().await, presence.watch_leases().await) {
        (Ok(machines), Ok(leases)) => (machines, leases),
        (Err(err), _) | (_, Err(err)) => {
            tracing::error!(error = %err, "cannot watch the cluster; remote machines unknown");
            return;
        }
    };
    view.start_watching();
    tokio::join!(
        follow_machines(machines, &view),
        follow_leases(leases, &view)
    );
}

async fn follow_machines(machines: Watch, view: &ClusterView) {
    let mut changes = Guarded::new(machines);
    while let Some(change) = changes.next().await {
        let Ok(change) = change else { continue };
        let Some(machine) = MachineId::parse(&change.key) else {
            continue;
        };
        let entry = match change.operation {
            Operation::Put => serde_json::from_slice::<PresenceEntry>(&change.value).ok(),
            Operation::Delete | Operation::Purge => None,
        };
        view.set_machine(machine, entry);
    }
}

async fn follow_leases(leases: Watch, view: &ClusterView) {
    let mut changes = Guarded::new(leases);
    while let Some(change) = changes.next().await {
        let Ok(change) = change else { continue };
        if change.operation == Operation::Put {
            view.renewed(change.key, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(instance: &str) -> PresenceEntry {
        PresenceEntry {
            instance: instance.into(),
            region: format!("{instance}-region"),
            connection_id: 1,
            since: chrono::Utc::now(),
            capabilities: Vec::new(),
        }
    }

    #[test]
    fn machines_of_dead_instances_are_orphans_once_the_view_has_settled() {
        let ttl = Duration::from_millis(50);
        let view = ClusterView::new(ttl);
        let (here, gone) = (
            MachineId(uuid::Uuid::new_v4()),
            MachineId(uuid::Uuid::new_v4()),
        );
        view.start_watching();
        view.renewed("fra-1".into(), Instant::now());
        view.set_machine(here, Some(entry("fra-1")));
        view.set_machine(gone, Some(entry("iad-dead")));
        assert_eq!(view.region_of(&here).as_deref(), Some("fra-1-region"));
        assert_eq!(view.holder(&gone), None, "no lease, not held");
        assert!(view.orphans().is_empty(), "not before a whole TTL watched");
        assert!(!view.leads("fra-1"), "nobody leads before then");
        std::thread::sleep(ttl);
        view.renewed("fra-1".into(), Instant::now());
        assert_eq!(view.orphans(), vec![(gone, "iad-dead".to_owned())]);
        assert!(view.leads("fra-1") && !view.leads("iad-dead"));
        view.renewed("aaa-1".into(), Instant::now());
        assert!(
            view.leads("aaa-1") && !view.leads("fra-1"),
            "the first live name leads"
        );
        std::thread::sleep(ttl);
        assert_eq!(view.holder(&here), None, "a lease not renewed expires");
        view.set_machine(gone, None);
        assert!(!view.knows(&gone));
    }
}
