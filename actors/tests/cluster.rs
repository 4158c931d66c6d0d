//! The cluster's presence against a real NATS server with JetStream: the buckets (announce, look
//! up, a machine moving between instances, where a late withdrawal leaves the new entry alone;
//! leases, after which a dead instance's machines are held by nobody) and the `NatsBridge` actor
//! that keeps them for an instance (message-level: connected, disconnected, held while its lease
//! is renewed). Uses `FLEETGATE_TEST_NATS_URL` (CI sets it and starts nats-server); without it,
//! 127.0.0.1:4222 if something listens there, else the tests say they were skipped.

mod common;

use std::time::Duration;

use actix::Actor;
use chrono::Utc;
use fleetgate_actors::cluster::bridge::{
    ClusterLink, MachineConnected, MachineDisconnected, NatsBridge, WhereIs,
};
use fleetgate_actors::cluster::presence::{HeldAgent, PresenceBook, Withdrawal};
use fleetgate_actors::protocol::agent::Capabilities;
use fleetgate_actors::protocol::cluster::ClusterKey;
use fleetgate_actors::protocol::{ConnectionId, MachineId};

use common::nats::{cluster, nats};

/// An agent held on `connection` since now, announcing `ordered` and `terminal_exit`.
fn held(connection: ConnectionId) -> HeldAgent {
    HeldAgent {
        connection_id: connection,
        since: Utc::now(),
        capabilities: Capabilities::from_names(&["ordered".into(), "terminal_exit".into()]),
    }
}

async fn book(
    jetstream: &async_nats::jetstream::Context,
    cluster: &str,
    instance: &str,
    ttl: Duration,
) -> PresenceBook {
    PresenceBook::open(
        jetstream,
        cluster,
        instance,
        &format!("{instance}-region"),
        ttl,
    )
    .await
    .expect("presence bucket")
}

/// Instance `instance` of `cluster` on `client`, with a fixed cluster key.
fn link_of(client: async_nats::Client, cluster: &str, instance: &str) -> ClusterLink {
    ClusterLink {
        client,
        key: ClusterKey::from_bytes([5; 32]),
        cluster: cluster.to_owned(),
        instance: instance.to_owned(),
    }
}

async fn drop_bucket(jetstream: &async_nats::jetstream::Context, cluster: &str) {
    let _ = jetstream
        .delete_key_value(format!("fg_{cluster}_presence"))
        .await;
    let _ = jetstream
        .delete_key_value(format!("fg_{cluster}_instances"))
        .await;
}

#[actix::test]
async fn a_moved_machine_is_not_withdrawn_by_its_old_instance() {
    let Some(client) = nats().await else {
        return;
    };
    let jetstream = async_nats::jetstream::new(client.clone());
    let cluster = cluster();
    let frankfurt = book(&jetstream, &cluster, "fra-1", Duration::from_secs(60)).await;
    let virginia = book(&jetstream, &cluster, "iad-1", Duration::from_secs(60)).await;
    let machine = MachineId(uuid::Uuid::new_v4());
    assert_eq!(frankfurt.lookup(machine).await.expect("lookup"), None);

    frankfurt
        .announce(machine, held(ConnectionId(7)))
        .await
        .expect("announce");
    let seen = virginia
        .lookup(machine)
        .await
        .expect("lookup")
        .expect("present");
    assert_eq!(
        (
            seen.instance.as_str(),
            seen.region.as_str(),
            seen.connection_id
        ),
        ("fra-1", "fra-1-region", 7),
        "every instance sees where the machine is"
    );
    assert_eq!(
        Capabilities::from_names(&seen.capabilities),
        held(ConnectionId(7)).capabilities,
        "and what its agent announced"
    );

    // The agent reconnects to Virginia; Frankfurt's socket closes late.
    virginia
        .announce(machine, held(ConnectionId(3)))
        .await
        .expect("announce");
    assert_eq!(
        frankfurt
            .withdraw(machine, ConnectionId(7))
            .await
            .expect("withdraw"),
        Withdrawal::Moved
    );
    assert_eq!(
        virginia
            .withdraw(machine, ConnectionId(4))
            .await
            .expect("withdraw"),
        Withdrawal::Moved,
        "another socket of the same instance"
    );
    let seen = frankfurt
        .lookup(machine)
        .await
        .expect("lookup")
        .expect("still present");
    assert_eq!((seen.instance.as_str(), seen.connection_id), ("iad-1", 3));

    assert_eq!(
        virginia
            .withdraw(machine, ConnectionId(3))
            .await
            .expect("withdraw"),
        Withdrawal::Withdrawn
    );
    assert_eq!(frankfurt.lookup(machine).await.expect("lookup"), None);
    assert_eq!(
        virginia
            .withdraw(machine, ConnectionId(3))
            .await
            .expect("withdraw twice"),
        Withdrawal::Absent
    );
    drop_bucket(&jetstream, &cluster).await;
}

#[actix::test]
async fn a_dead_instance_s_machines_are_held_by_nobody_in_a_living_instance_s_view() {
    let Some(client) = nats().await else {
        return;
    };
    let jetstream = async_nats::jetstream::new(client.clone());
    let cluster = cluster();
    let ttl = Duration::from_secs(1);
    let link = link_of(client, &cluster, "fra-1");
    let living = NatsBridge::new(link, book(&jetstream, &cluster, "fra-1", ttl).await, ttl);
    let view = living.view();
    let living = living.start();
    let dying = book(&jetstream, &cluster, "iad-1", ttl).await;
    let (gone, kept) = (
        MachineId(uuid::Uuid::new_v4()),
        MachineId(uuid::Uuid::new_v4()),
    );
    dying.renew_lease().await.expect("lease");
    dying
        .announce(gone, held(ConnectionId(1)))
        .await
        .expect("announce");
    living.do_send(MachineConnected {
        machine_id: kept,
        connection_id: ConnectionId(2),
        since: Utc::now(),
        capabilities: Capabilities::default(),
    });
    let both_held = within_5s(|| async {
        dying.renew_lease().await.expect("lease");
        view.holder(&gone).is_some() && view.holder(&kept).is_some()
    })
    .await;
    assert!(both_held, "both held while both instances renew");
    // The dying instance stops renewing; the living one's bridge goes on.
    assert!(
        within_5s(|| async { view.holder(&gone).is_none() }).await,
        "the dead instance's machine is held by nobody once its lease expired"
    );
    assert_eq!(view.orphans(), vec![(gone, "iad-1".to_owned())]);
    assert!(view.leads("fra-1"), "the living instance leads the sweep");
    tokio::time::sleep(ttl * 2).await;
    assert_eq!(
        view.region_of(&kept).as_deref(),
        Some("fra-1-region"),
        "a renewing instance's machine stays held"
    );
    drop_bucket(&jetstream, &cluster).await;
}

/// Polls `check` every 50 ms for up to 5 s.
async fn within_5s<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[actix::test]
async fn the_bridge_announces_refreshes_and_withdraws_its_machines() {
    let Some(client) = nats().await else {
        return;
    };
    let jetstream = async_nats::jetstream::new(client.clone());
    let cluster = cluster();
    let ttl = Duration::from_secs(1);
    let link = link_of(client, &cluster, "fra-1");
    let presence = book(&jetstream, &cluster, "fra-1", ttl).await;
    let bridge = NatsBridge::new(link, presence, ttl).start();
    let elsewhere = book(&jetstream, &cluster, "iad-1", ttl).await;
    let machine = MachineId(uuid::Uuid::new_v4());
    let where_is = || {
        let bridge = bridge.clone();
        async move {
            bridge
                .send(WhereIs {
                    machine_id: machine,
                })
                .await
                .expect("send")
                .expect("lookup")
        }
    };
    bridge.do_send(MachineConnected {
        machine_id: machine,
        connection_id: ConnectionId(1),
        since: Utc::now(),
        capabilities: Capabilities::default(),
    });
    assert!(
        within_5s(|| async { where_is().await.is_some_and(|e| e.instance == "fra-1") }).await,
        "announced on register"
    );
    // Held for three TTLs: the bridge's lease renewals keep it.
    tokio::time::sleep(ttl * 3).await;
    let seen = elsewhere.lookup(machine).await.expect("lookup");
    assert_eq!(
        seen.map(|e| e.connection_id),
        Some(1),
        "held while the lease is renewed"
    );

    // Reconnected here on another socket, then the old socket's close arrives.
    bridge.do_send(MachineConnected {
        machine_id: machine,
        connection_id: ConnectionId(2),
        since: Utc::now(),
        capabilities: Capabilities::default(),
    });
    bridge.do_send(MachineDisconnected {
        machine_id: machine,
        connection_id: ConnectionId(1),
    });
    tokio::time::sleep(ttl * 2).await;
    let seen = where_is().await;
    assert_eq!(
        seen.map(|e| e.connection_id),
        Some(2),
        "a late close changes nothing"
    );

    bridge.do_send(MachineDisconnected {
        machine_id: machine,
        connection_id: ConnectionId(2),
    });
    assert!(
        within_5s(|| async { where_is().await.is_none() }).await,
        "withdrawn when its socket closes"
    );
    tokio::time::sleep(ttl * 2).await;
    assert!(where_is().await.is_none(), "and not announced again");
    drop_bucket(&jetstream, &cluster).await;
}
