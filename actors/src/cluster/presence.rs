//! Presence: which instance each machine's agent is connected to, in a JetStream key-value
//! bucket shared by the cluster (`fg_<cluster>_presence`, key = machineId), and which instances
//! are alive (`fg_<cluster>_instances`, key = instance name). An instance writes a machine's
//! entry when its agent registers and deletes it when the socket closes; it renews its own lease
//! every third of the TTL, and a lease expires with the TTL when its instance stops renewing it.
//! A machine whose entry names an instance without a lease is held by nobody (its instance
//! died): the sweep marks it offline and removes the entry. One lease per instance instead of
//! one refresh per machine keeps NATS traffic independent of the fleet's size. A machine that
//! reconnects elsewhere is announced by its new instance; the old instance's late withdrawal
//! then finds another connection's entry and leaves it alone (the ConnectionId rule,
//! cluster-wide).

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::protocol::agent::Capabilities;
use crate::protocol::{ConnectionId, MachineId};

/// Where a machine's agent is connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceEntry {
    /// The instance holding the agent's socket.
    pub instance: String,
    /// That instance's region.
    pub region: String,
    /// The socket on that instance.
    pub connection_id: u64,
    /// When the agent registered there.
    pub since: DateTime<Utc>,
    /// The capabilities its agent announced (names as in `register`).
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// What a withdrawal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// The entry named the closed socket and is gone.
    Withdrawn,
    /// There was no entry (it expired, or was never written).
    Absent,
    /// The entry names another socket, here or on another instance: the machine moved.
    Moved,
}

/// An agent connected to this instance, as announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldAgent {
    /// Its socket here.
    pub connection_id: ConnectionId,
    /// When it registered.
    pub since: DateTime<Utc>,
    /// What it announced.
    pub capabilities: Capabilities,
}

/// Why presence could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// NATS or JetStream refused or could not be reached.
    #[error("presence store: {0}")]
    Store(String),
    /// An entry that is not a presence entry.
    #[error("presence entry of machine {0} is unreadable")]
    Unreadable(MachineId),
}

fn store_error(err: impl std::fmt::Display) -> PresenceError {
    PresenceError::Store(err.to_string())
}

/// An instance's lease, as renewed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// The instance's region.
    pub region: String,
    /// When it renewed the lease.
    pub at: DateTime<Utc>,
}

/// One instance's handle on the cluster's presence and lease buckets.
#[derive(Clone)]
pub struct PresenceBook {
    jetstream: jetstream::Context,
    cluster: String,
    store: kv::Store,
    leases: kv::Store,
    instance: String,
    region: String,
}

impl PresenceBook {
    /// Opens (creating them if needed) the presence and lease buckets of `cluster` for
    /// `instance` in `region`; leases expire `ttl` after they were last renewed (every instance
    /// of the cluster must use the same `ttl`: JetStream refuses another configuration).
    pub async fn open(
        jetstream: &jetstream::Context,
        cluster: &str,
        instance: &str,
        region: &str,
        ttl: Duration,
    ) -> Result<Self, PresenceError> {
        let bucket = |name: &str, max_age: Duration| kv::Config {
            bucket: format!("fg_{cluster}_{name}"),
            history: 1,
            max_age,
            ..Default::default()
        };
        let store = jetstream
            .create_key_value(bucket("presence", Duration::ZERO))
            .await
            .map_err(store_error)?;
        let leases = jetstream
            .create_key_value(bucket("instances", ttl))
            .await
            .map_err(store_error)?;
        Ok(Self {
            jetstream: jetstream.clone(),
            cluster: cluster.to_owned(),
            store,
            leases,
            instance: instance.to_owned(),
            region: region.to_owned(),
        })
    }

    /// Announces that `machine`'s agent is connected here as `held`, without waiting for
    /// JetStream to acknowledge it: announcements are published in order on one connection,
    /// and a writer keeps many acknowledgements outstanding (a connect storm of thousands of
    /// agents is not written one round trip at a time). Resolves to the acknowledgement.
    pub async fn announce_unacked(
        &self,
        machine: MachineId,
        held: HeldAgent,
    ) -> Result<jetstream::context::PublishAckFuture, PresenceError> {
        let value = serde_json::to_vec(&self.entry_of(held)).map_err(store_error)?;
        let subject = format!("$KV.fg_{}_presence.{machine}", self.cluster);
        self.jetstream
            .publish(subject, value.into())
            .await
            .map_err(store_error)
    }

    fn entry_of(&self, held: HeldAgent) -> PresenceEntry {
        PresenceEntry {
            instance: self.instance.clone(),
            region: self.region.clone(),
            connection_id: held.connection_id.0,
            since: held.since,
            capabilities: held.capabilities.names(),
        }
    }

    /// Announces that `machine`'s agent is connected here as `held`.
    pub async fn announce(&self, machine: MachineId, held: HeldAgent) -> Result<(), PresenceError> {
        let entry = PresenceEntry {
            instance: self.instance.clone(),
            region: self.region.clone(),
            connection_id: held.connection_id.0,
            since: held.since,
            capabilities: held.capabilities.names(),
        };
        let value = serde_json::to_vec(&entry).map_err(store_error)?;
        self.store
            .put(machine.to_string(), value.into())
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Every change to the presence bucket from now on, after the current entries.
    pub async fn watch(&self) -> Result<kv::Watch, PresenceError> {
        self.store.watch_all().await.map_err(store_error)
    }

    /// Renews this instance's lease (its machines stay held for another TTL).
    pub async fn renew_lease(&self) -> Result<(), PresenceError> {
        let lease = Lease {
            region: self.region.clone(),
            at: Utc::now(),
        };
        let value = serde_json::to_vec(&lease).map_err(store_error)?;
        self.leases
            .put(&self.instance, value.into())
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Every lease renewal from now on, after the live leases.
    pub async fn watch_leases(&self) -> Result<kv::Watch, PresenceError> {
        self.leases.watch_all().await.map_err(store_error)
    }

    /// Removes `machine`'s entry if it still names `instance` (a dead one); whether it went.
    pub async fn forget(&self, machine: MachineId, instance: &str) -> Result<bool, PresenceError> {
        let Some((entry, revision)) = self.entry(machine).await? else {
            return Ok(false);
        };
        if entry.instance != instance {
            return Ok(false);
        }
        match self
            .store
            .delete_expect_revision(machine.to_string(), Some(revision))
            .await
        {
            Ok(()) => Ok(true),
            Err(err) if matches!(err.kind(), kv::DeleteErrorKind::WrongLastRevision) => Ok(false),
            Err(err) => Err(store_error(err)),
        }
    }

    /// Where `machine`'s agent is connected, if anywhere.
    pub async fn lookup(&self, machine: MachineId) -> Result<Option<PresenceEntry>, PresenceError> {
        Ok(self.entry(machine).await?.map(|(entry, _)| entry))
    }

    /// `machine`'s agent left `connection` here: its entry goes, unless it names another
    /// connection (the machine moved, to here or to another instance).
    pub async fn withdraw(
        &self,
        machine: MachineId,
        connection: ConnectionId,
    ) -> Result<Withdrawal, PresenceError> {
        let Some((entry, revision)) = self.entry(machine).await? else {
            return Ok(Withdrawal::Absent);
        };
        if entry.instance != self.instance || entry.connection_id != connection.0 {
            return Ok(Withdrawal::Moved);
        }
        // Only the revision read above: an announcement in between wins.
        match self
            .store
            .delete_expect_revision(machine.to_string(), Some(revision))
            .await
        {
            Ok(()) => Ok(Withdrawal::Withdrawn),
            Err(err) if matches!(err.kind(), kv::DeleteErrorKind::WrongLastRevision) => {
                Ok(Withdrawal::Moved)
            }
            Err(err) => Err(store_error(err)),
        }
    }

    async fn entry(
        &self,
        machine: MachineId,
    ) -> Result<Option<(PresenceEntry, u64)>, PresenceError> {
        let Some(found) = self
            .store
            .entry(machine.to_string())
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        if found.operation != kv::Operation::Put {
            return Ok(None);
        }
        let entry =
            serde_json::from_slice(&found.value).map_err(|_| PresenceError::Unreadable(machine))?;
        Ok(Some((entry, found.revision)))
    }
}
