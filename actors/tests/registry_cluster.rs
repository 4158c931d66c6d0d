//! Registry message-level tests in a cluster (probe actors, no NATS): what it tells the cluster
//! about the agents connected here, and what it does with what other instances report.

mod common;

use std::time::Duration;

use actix::Actor;
use fleetgate_actors::agent_session::ToAgent;
use fleetgate_actors::cluster::bridge::{MachineConnected, MachineDisconnected};
use fleetgate_actors::cluster::status::RemoteStatus;
use fleetgate_actors::cluster::sweep::PresenceLost;
use fleetgate_actors::protocol::ConnectionId;
use fleetgate_actors::registry::{
    MachineStatusChanged, PresenceLinks, Registry, RegistryConfig, SubscribeStatus, UnregisterAgent,
};
use fleetgate_actors::repo::machine::SetMachineStatus;

use common::registry_harness::{machine, register, registry, statuses, told};
use common::{entries, probe, until};

#[actix::test]
async fn in_a_cluster_connections_are_announced_and_only_the_current_one_withdrawn() {
    let (store, _) = probe::<SetMachineStatus>();
    let (connected, announced) = probe::<MachineConnected>();
    let (disconnected, withdrawn) = probe::<MachineDisconnected>();
    let (status, published) = probe::<MachineStatusChanged>();
    let config = RegistryConfig {
        offline_after: Duration::from_secs(60),
        sweep_every: Duration::from_millis(20),
    };
    let registry = Registry::new(config, store)
        .with_presence(PresenceLinks {
            connected,
            disconnected,
            status,
        })
        .start();
    let (old_conn, new_conn) = (ConnectionId::next(), ConnectionId::next());
    for conn in [old_conn, new_conn] {
        registry
            .send(register(machine(9), conn, "h".into(), probe::<ToAgent>().0))
            .await
            .expect("send");
    }
    for conn in [old_conn, new_conn] {
        registry
            .send(UnregisterAgent {
                machine_id: machine(9),
                connection_id: conn,
            })
            .await
            .expect("send");
    }
    let announced_on = |log: &common::Log<MachineConnected>| {
        entries(log)
            .into_iter()
            .map(|c| (c.machine_id, c.connection_id))
            .collect::<Vec<_>>()
    };
    assert!(
        until(|| announced_on(&announced) == vec![(machine(9), old_conn), (machine(9), new_conn)])
            .await
    );
    assert!(
        until(|| entries(&withdrawn)
            .into_iter()
            .map(|d| (d.machine_id, d.connection_id))
            .collect::<Vec<_>>()
            == vec![(machine(9), new_conn)])
        .await,
        "the late close of the replaced socket is not a withdrawal"
    );
    assert!(
        until(|| told(&published) == vec![(machine(9), true), (machine(9), false)]).await,
        "transitions go to the cluster too"
    );
}

/// A Registry with a status subscriber and `here`'s agent registered: (registry, stored
/// transitions, transitions the subscriber heard).
async fn subscribed_with_agent_here(
    here: fleetgate_actors::protocol::MachineId,
) -> (
    actix::Addr<Registry>,
    common::Log<SetMachineStatus>,
    common::Log<MachineStatusChanged>,
) {
    let (registry, stored) = registry(Duration::from_secs(60));
    let (subscriber, heard) = probe::<MachineStatusChanged>();
    registry
        .send(SubscribeStatus { subscriber })
        .await
        .expect("send");
    let agent = register(
        here,
        ConnectionId::next(),
        "here".into(),
        probe::<ToAgent>().0,
    );
    registry.send(agent).await.expect("send");
    (registry, stored, heard)
}

#[actix::test]
async fn transitions_from_other_instances_reach_subscribers_unless_the_agent_is_here() {
    let (registry, stored, heard) = subscribed_with_agent_here(machine(7)).await;
    for (n, online) in [(8, true), (7, false), (8, false)] {
        registry
            .send(RemoteStatus(MachineStatusChanged {
                machine_id: machine(n),
                hostname: "there".into(),
                online,
                at: chrono::Utc::now(),
            }))
            .await
            .expect("send");
    }
    // Machine 7 is connected here: taken for offline elsewhere, it is said online again.
    let expected = vec![
        (machine(7), true),
        (machine(8), true),
        (machine(7), true),
        (machine(8), false),
    ];
    assert!(
        until(|| told(&heard) == expected).await,
        "{:?}",
        told(&heard)
    );
    assert_eq!(
        statuses(&stored),
        vec![(machine(7), true), (machine(7), true)],
        "the other instance stored its own transitions; this one re-asserts its machine"
    );
}

#[actix::test]
async fn a_machine_no_instance_holds_goes_offline_unless_its_agent_is_here() {
    let (registry, stored, heard) = subscribed_with_agent_here(machine(5)).await;
    for n in [5, 6] {
        registry
            .send(PresenceLost {
                machine_id: machine(n),
                hostname: "lost".into(),
            })
            .await
            .expect("send");
    }
    assert!(until(|| statuses(&stored) == vec![(machine(5), true), (machine(6), false)]).await);
    assert_eq!(told(&heard), vec![(machine(5), true), (machine(6), false)]);
}

/// A bridge whose withdrawals find the machine held by another connection (it moved).
struct MovedBridge;

impl actix::Actor for MovedBridge {
    type Context = actix::Context<Self>;
}

impl actix::Handler<MachineDisconnected> for MovedBridge {
    type Result = bool;
    fn handle(&mut self, _: MachineDisconnected, _: &mut actix::Context<Self>) -> bool {
        true
    }
}

#[actix::test]
async fn a_late_close_after_the_machine_moved_to_another_instance_is_not_an_offline() {
    let (store, stored) = probe::<SetMachineStatus>();
    let (status, published) = probe::<MachineStatusChanged>();
    let config = RegistryConfig {
        offline_after: Duration::from_secs(60),
        sweep_every: Duration::from_millis(20),
    };
    let registry = Registry::new(config, store)
        .with_presence(PresenceLinks {
            connected: probe::<MachineConnected>().0,
            disconnected: MovedBridge.start().recipient(),
            status,
        })
        .start();
    let conn = ConnectionId::next();
    registry
        .send(register(machine(4), conn, "h".into(), probe::<ToAgent>().0))
        .await
        .expect("send");
    registry
        .send(UnregisterAgent {
            machine_id: machine(4),
            connection_id: conn,
        })
        .await
        .expect("send");
    assert!(until(|| told(&published) == vec![(machine(4), true)]).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        (statuses(&stored), told(&published)),
        (vec![(machine(4), true)], vec![(machine(4), true)]),
        "neither stored nor published offline: the new instance holds it"
    );
}
