//! Registry message-level tests with probe actors (no sockets).

mod common;

use std::time::Duration;

use actix::Actor;
use fleetgate_actors::protocol::{ConnectionId, MachineId};
use fleetgate_actors::registry::{
    HeartbeatSeen, OnlineMachines, RegisterAgent, Registry, RegistryConfig, RouteError,
    SendToAgent, SubscribeStatus, ToAgent, UnregisterAgent,
};
use fleetgate_actors::repo::machine::SetMachineStatus;

use common::{entries, probe, until};

fn machine(n: u8) -> MachineId {
    MachineId(uuid::Uuid::from_bytes([n; 16]))
}

fn registry(offline_after: Duration) -> (actix::Addr<Registry>, common::Log<SetMachineStatus>) {
    let (store, stored) = probe::<SetMachineStatus>();
    let config = RegistryConfig {
        offline_after,
        sweep_every: Duration::from_millis(20),
    };
    (Registry::new(config, store).start(), stored)
}

fn statuses(log: &common::Log<SetMachineStatus>) -> Vec<(MachineId, bool)> {
    entries(log)
        .into_iter()
        .map(|s| (s.machine_id, s.online))
        .collect()
}

#[actix::test]
async fn register_then_unregister_sets_online_then_offline() {
    let (registry, stored) = registry(Duration::from_secs(60));
    let (agent, _) = probe::<ToAgent>();
    let conn = ConnectionId::next();
    registry
        .send(RegisterAgent {
            machine_id: machine(1),
            connection_id: conn,
            hostname: "h".into(),
            recipient: agent,
        })
        .await
        .expect("send");
    assert_eq!(
        registry.send(OnlineMachines).await.expect("send"),
        vec![machine(1)]
    );
    registry
        .send(UnregisterAgent {
            machine_id: machine(1),
            connection_id: conn,
        })
        .await
        .expect("send");
    assert!(
        registry
            .send(OnlineMachines)
            .await
            .expect("send")
            .is_empty()
    );
    assert!(until(|| statuses(&stored) == vec![(machine(1), true), (machine(1), false)]).await);
}

#[actix::test]
async fn newer_connection_replaces_and_stale_unregister_is_ignored() {
    let (registry, stored) = registry(Duration::from_secs(60));
    let (old_agent, old_seen) = probe::<ToAgent>();
    let (new_agent, new_seen) = probe::<ToAgent>();
    let (old_conn, new_conn) = (ConnectionId::next(), ConnectionId::next());
    registry
        .send(RegisterAgent {
            machine_id: machine(2),
            connection_id: old_conn,
            hostname: "h".into(),
            recipient: old_agent,
        })
        .await
        .expect("send");
    registry
        .send(RegisterAgent {
            machine_id: machine(2),
            connection_id: new_conn,
            hostname: "h".into(),
            recipient: new_agent,
        })
        .await
        .expect("send");
    assert!(
        until(|| entries(&old_seen)
            == vec![ToAgent::Disconnect {
                code: 4409,
                reason: "replaced by a newer connection"
            }])
        .await
    );

    // The old socket closes late: the new one must stay.
    registry
        .send(UnregisterAgent {
            machine_id: machine(2),
            connection_id: old_conn,
        })
        .await
        .expect("send");
    assert_eq!(
        registry.send(OnlineMachines).await.expect("send"),
        vec![machine(2)]
    );
    registry
        .send(SendToAgent {
            machine_id: machine(2),
            frame: "hello".into(),
        })
        .await
        .expect("send")
        .expect("routed");
    assert!(until(|| entries(&new_seen) == vec![ToAgent::Frame("hello".into())]).await);
    assert_eq!(
        statuses(&stored),
        vec![(machine(2), true)],
        "no offline blip on replacement"
    );
}

#[actix::test]
async fn sending_to_an_unknown_machine_is_an_error_not_a_panic() {
    let (registry, _) = registry(Duration::from_secs(60));
    let outcome = registry
        .send(SendToAgent {
            machine_id: machine(3),
            frame: "x".into(),
        })
        .await
        .expect("send");
    assert_eq!(outcome, Err(RouteError::MachineOffline));
}

#[actix::test]
async fn silent_machines_go_offline_and_come_back_with_a_heartbeat() {
    let (registry, stored) = registry(Duration::from_millis(50));
    let (subscriber, events) = probe::<fleetgate_actors::registry::MachineStatusChanged>();
    registry
        .send(SubscribeStatus { subscriber })
        .await
        .expect("send");
    let (agent, _) = probe::<ToAgent>();
    let conn = ConnectionId::next();
    registry
        .send(RegisterAgent {
            machine_id: machine(4),
            connection_id: conn,
            hostname: "quiet".into(),
            recipient: agent,
        })
        .await
        .expect("send");
    assert!(until(|| statuses(&stored) == vec![(machine(4), true), (machine(4), false)]).await);
    registry
        .send(HeartbeatSeen {
            machine_id: machine(4),
            connection_id: conn,
        })
        .await
        .expect("send");
    assert!(until(|| statuses(&stored).len() >= 3).await);
    assert_eq!(statuses(&stored)[2], (machine(4), true));
    let published: Vec<bool> = entries(&events).iter().map(|e| e.online).collect();
    assert_eq!(&published[..3], &[true, false, true]);
    assert!(entries(&events).iter().all(|e| e.hostname == "quiet"));
}
