//! An instance in cluster mode against real NATS: the machines whose agents connect to it are
//! announced in the cluster's presence bucket with its region, and withdrawn when their
//! sockets close.

use std::time::Duration;

use fleetgate_actors::cluster::presence::{HeldAgent, PresenceBook};
use fleetgate_actors::protocol::MachineId;
use fleetgate_actors::protocol::agent::Capabilities;

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
        fleetgate::cluster::presence_ttl(&server.settings),
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

/// Settings that put an instance in `cluster` on `nats_url`, in `region`, with `key` as the
/// cluster key (written to its secrets file).
pub(crate) fn clustered(
    settings: &mut fleetgate::settings::Settings,
    nats_url: &str,
    cluster: &str,
    region: &str,
    key: &str,
) {
    settings.cluster.nats_url = nats_url.to_owned();
    settings.cluster.name = cluster.to_owned();
    settings.cluster.region = region.to_owned();
    let secrets = settings
        .storage
        .data_dir
        .join(fleetgate::secrets::SECRETS_FILE);
    std::fs::write(
        secrets,
        format!("{}={key}\n", fleetgate::secrets::CLUSTER_KEY_VAR),
    )
    .expect("secrets file");
}

#[actix_web::test]
async fn status_from_another_instance_reaches_subscribers_and_forgeries_do_not() {
    use futures_util::StreamExt;
    use serde_json::json;

    use crate::web_client::{WebClient, user};

    let Some(nats_url) = test_nats_url().await else {
        return;
    };
    let cluster = format!("t{}", uuid::Uuid::new_v4().simple());
    let key = "3c".repeat(32);
    let frankfurt = spawn_app_with(|s| clustered(s, &nats_url, &cluster, "fra", &key)).await;
    let shared_database = frankfurt.settings.database_url();
    let shared_schema = frankfurt.settings.database.schema.clone();
    let virginia = spawn_app_with(|s| {
        clustered(s, &nats_url, &cluster, "iad", &key);
        s.database.url = shared_database.clone();
        s.database.schema = shared_schema.clone();
    })
    .await;
    let (machine, secret) = enroll(&virginia, "over-there").await;
    let (never_connected, _) = enroll(&virginia, "never-connected").await;

    // Everything published on the cluster's status subjects, as a rogue listener would see it.
    let client = async_nats::connect(nats_url.as_str()).await.expect("NATS");
    let mut captured = client
        .subscribe(format!("fg.{cluster}.machine.*.status"))
        .await
        .expect("subscribe");

    let (_, token) = user(&frankfurt, fleetgate_actors::identity::Role::Admin, &[]).await;
    let mut web = WebClient::connect(&frankfurt, &token).await;
    web.send(json!({"type":"subscribe_machines"})).await;
    for _ in 0..2 {
        let snapshot = web.next_of("machine_status").await;
        assert_eq!(
            snapshot["status"], "offline",
            "the snapshot of both machines"
        );
    }
    let mut agent = ScriptedAgent::connect(&virginia.ws_url("/ws/agent")).await;
    agent.register(&secret, "over-there").await;
    let online = web.next_of("machine_status").await;
    assert_eq!(
        (online["machineId"].as_str(), online["status"].as_str()),
        (Some(machine.as_str()), Some("online")),
        "an operator on Frankfurt sees Virginia's machine come online"
    );

    // A captured message replayed, and one forged without the cluster key.
    let legit = tokio::time::timeout(Duration::from_secs(5), captured.next())
        .await
        .expect("published in time")
        .expect("a status message");
    client
        .publish(legit.subject.clone(), legit.payload.clone())
        .await
        .expect("replay");
    let forged_subject = format!("fg.{cluster}.machine.{never_connected}.status");
    let forged_key =
        fleetgate_actors::protocol::cluster::ClusterKey::from_hex(&"ab".repeat(32)).expect("key");
    let forged_body = json!({"machineId": never_connected, "hostname": "x", "online": true,
        "at": chrono::Utc::now()})
    .to_string();
    for payload in [
        fleetgate_actors::protocol::cluster::seal(
            &forged_key,
            "rogue",
            &forged_subject,
            &forged_body,
            chrono::Utc::now(),
        ),
        forged_body.clone(),
    ] {
        client
            .publish(forged_subject.clone(), payload.into())
            .await
            .expect("forge");
    }
    client.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(500)).await;

    agent.drop_connection();
    let next = web.next_of("machine_status").await;
    assert_eq!(
        (next["machineId"].as_str(), next["status"].as_str()),
        (Some(machine.as_str()), Some("offline")),
        "neither the replay nor the forgeries produced an event: {next}"
    );
    let _ = async_nats::jetstream::new(client)
        .delete_key_value(format!("fg_{cluster}_presence"))
        .await;
    virginia.stop().await;
    frankfurt.stop().await;
}

#[actix_web::test]
async fn a_machine_no_instance_holds_any_more_goes_offline_everywhere() {
    use fleetgate_actors::protocol::ConnectionId;
    use fleetgate_entity::machines;
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    use serde_json::json;

    use crate::web_client::{WebClient, user};

    let Some(nats_url) = test_nats_url().await else {
        return;
    };
    let cluster = format!("t{}", uuid::Uuid::new_v4().simple());
    let key = "4d".repeat(32);
    let server = spawn_app_with(|s| {
        clustered(s, &nats_url, &cluster, "fra", &key);
        s.agents.heartbeat_secs = 1;
        s.agents.offline_after_secs = 4;
    })
    .await;
    let (machine, _) = enroll(&server, "orphan").await;
    let machine_id = MachineId::parse(&machine).expect("id");
    let (_, token) = user(&server, fleetgate_actors::identity::Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;
    web.send(json!({"type":"subscribe_machines"})).await;
    let snapshot = web.next_of("machine_status").await;
    assert_eq!(snapshot["status"], "offline", "enrolled, never connected");

    // An instance that has since died held the machine: its row says online and its presence
    // entry, never refreshed again, expires with the bucket's TTL. Entries live half the
    // offline window (2 s); every instance sweeps every quarter of it (1 s).
    let client = async_nats::connect(nats_url.as_str()).await.expect("NATS");
    let jetstream = async_nats::jetstream::new(client);
    let ttl = fleetgate::cluster::presence_ttl(&server.settings);
    assert_eq!(ttl, Duration::from_secs(2));
    let dead = PresenceBook::open(&jetstream, &cluster, "iad-dead", "iad", ttl)
        .await
        .expect("presence bucket");
    dead.announce(
        machine_id,
        HeldAgent {
            connection_id: ConnectionId(1),
            since: chrono::Utc::now(),
            capabilities: Capabilities::default(),
        },
    )
    .await
    .expect("announce");
    let status = || {
        let db = server.db.clone();
        async move {
            machines::Entity::find_by_id(machine_id)
                .one(&db)
                .await
                .expect("query")
                .expect("row")
                .status
        }
    };
    let row = machines::Entity::find_by_id(machine_id)
        .one(&server.db)
        .await
        .expect("query")
        .expect("row");
    let mut online: machines::ActiveModel = row.into();
    online.status = Set("online".into());
    online.update(&server.db).await.expect("online");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        status().await,
        "online",
        "left alone by the sweeps while its entry lives"
    );

    let change = web.next_of("machine_status").await;
    assert_eq!(
        (change["machineId"].as_str(), change["status"].as_str()),
        (Some(machine.as_str()), Some("offline")),
        "offline for every subscriber once no instance holds it"
    );
    assert!(
        eventually(|| async { status().await == "offline" }).await,
        "and stored offline"
    );
    let _ = jetstream
        .delete_key_value(format!("fg_{cluster}_presence"))
        .await;
    server.stop().await;
}
