//! An instance in cluster mode against real NATS: the machines whose agents connect to it are
//! announced in the cluster's presence bucket with its region, and withdrawn when their
//! sockets close.

use std::time::Duration;

use fleetgate_actors::cluster::presence::PresenceBook;
use fleetgate_actors::protocol::MachineId;

use crate::agent_client::ScriptedAgent;
use crate::support::{enroll, eventually, spawn_app_with, test_nats_url};

#[actix_web::test]
async fn an_instance_announces_its_agents_in_the_cluster_and_withdraws_them() {
    let Some(nats_url) = test_nats_url().await else {
        return;
    };
    let cluster = format!("t{}", uuid::Uuid::new_v4().simple());
    let server = spawn_app_with(|settings| {
        settings.cluster.nats_url = nats_url.clone();
        settings.cluster.name = cluster.clone();
        settings.cluster.region = "fra".into();
    })
    .await;
    let client = async_nats::connect(nats_url.as_str()).await.expect("NATS");
    let jetstream = async_nats::jetstream::new(client);
    let observer = PresenceBook::open(
        &jetstream,
        &cluster,
        "observer",
        "iad",
        Duration::from_secs(15),
    )
    .await
    .expect("presence bucket");

    let (machine, secret) = enroll(&server, "clustered").await;
    let machine_id = MachineId::parse(&machine).expect("id");
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent.register(&secret, "clustered").await;
    let announced = eventually(|| {
        let observer = observer.clone();
        async move {
            observer
                .lookup(machine_id)
                .await
                .expect("lookup")
                .is_some_and(|entry| entry.region == "fra" && entry.instance.starts_with("fra-"))
        }
    })
    .await;
    assert!(
        announced,
        "the machine is present in the cluster with its region"
    );

    agent.drop_connection();
    let withdrawn = eventually(|| {
        let observer = observer.clone();
        async move { observer.lookup(machine_id).await.expect("lookup").is_none() }
    })
    .await;
    assert!(withdrawn, "a closed socket withdraws the machine");
    let _ = jetstream
        .delete_key_value(format!("fg_{cluster}_presence"))
        .await;
    server.stop().await;
}
