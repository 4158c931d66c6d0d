//! Losing an instance: two real `fleetgate serve` processes in one cluster (shared PostgreSQL,
//! one NATS). The one holding a machine's agent is killed with SIGKILL: the other shows the
//! machine offline within the offline window and ends the terminal it had open there with a
//! reason; the agent reconnects to the survivor and is reachable again. Needs PostgreSQL
//! (`FLEETGATE_TEST_DATABASE_URL`: cluster mode refuses SQLite) and NATS; skipped otherwise.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::agent_client::{ScriptedAgent, heartbeat_frame};
use crate::server_process::ServerProcess;
use crate::support::{test_database, test_nats_url};
use crate::web_client::WebClient;

/// Heartbeats every second, offline after 6 s: presence entries live 3 s, sweeps every 1.5 s.
const OFFLINE_AFTER_SECS: u64 = 6;

/// Starts an instance of `cluster` in `region` on `data_dir`.
async fn instance(
    data_dir: &std::path::Path,
    database: &(String, String),
    nats_url: &str,
    cluster: &str,
    region: &str,
) -> ServerProcess {
    let offline_after = OFFLINE_AFTER_SECS.to_string();
    let env = [
        ("FLEETGATE__CLUSTER__NATS_URL", nats_url),
        ("FLEETGATE__CLUSTER__NAME", cluster),
        ("FLEETGATE__CLUSTER__REGION", region),
        ("FLEETGATE__AGENTS__HEARTBEAT_SECS", "1"),
        (
            "FLEETGATE__AGENTS__OFFLINE_AFTER_SECS",
            offline_after.as_str(),
        ),
    ];
    ServerProcess::start_with(data_dir, &database.0, &database.1, &env).await
}

/// Messages on `web` until one of `kind` about `machine` with `field` = `value` (or the deadline).
async fn wait_for(web: &mut WebClient, kind: &str, field: &str, value: &str) -> serde_json::Value {
    loop {
        let message = web.next_of(kind).await;
        if message[field] == value {
            return message;
        }
    }
}

#[actix_web::test]
async fn a_killed_instance_s_machines_go_offline_everywhere_and_come_back_through_another() {
    let Some(nats_url) = test_nats_url().await else {
        return;
    };
    let database = test_database().await;
    if database.0.is_empty() {
        eprintln!("skipped: cluster processes need PostgreSQL (FLEETGATE_TEST_DATABASE_URL)");
        return;
    }
    let cluster = format!("t{}", uuid::Uuid::new_v4().simple());
    let (fra_dir, iad_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let frankfurt = instance(fra_dir.path(), &database, &nats_url, &cluster, "fra").await;
    // One set of secrets for the cluster: Virginia gets Frankfurt's.
    let secrets = fleetgate::secrets::SECRETS_FILE;
    std::fs::copy(fra_dir.path().join(secrets), iad_dir.path().join(secrets)).expect("secrets");
    let virginia = instance(iad_dir.path(), &database, &nats_url, &cluster, "iad").await;

    let token = frankfurt.admin_token().await;
    let (status, enrolled) = frankfurt
        .api(
            "POST",
            "/machines",
            Some(&token),
            Some(json!({"name": "lost-1"})),
        )
        .await;
    assert_eq!(status, 201, "{enrolled}");
    let machine = enrolled["machine"]["id"].as_str().expect("id").to_owned();
    let secret = enrolled["secret"].as_str().expect("secret").to_owned();
    let mut agent = ScriptedAgent::connect(&virginia.ws_url("/ws/agent")).await;
    agent.register(&secret, "lost-1").await;

    let mut web = WebClient::connect_url(&frankfurt.ws_url("/ws/web"), &token).await;
    web.send(json!({"type":"subscribe_machines"})).await;
    // A terminal from Frankfurt on the machine in Virginia (retried until presence has it).
    let opened = loop {
        agent
            .send(&format!("{}\n", heartbeat_frame(&machine, 1.0, &[])))
            .await;
        let answer = web.try_spawn(&machine).await;
        if answer["type"] == "terminal_opened" {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    agent.next_of("spawn_shell").await;
    let session = opened["sessionId"].as_str().expect("sessionId").to_owned();

    virginia.kill9();
    let killed = Instant::now();
    let (mut offline, mut closed) = (None, None);
    while offline.is_none() || closed.is_none() {
        let message = web.next().await.expect("socket open");
        if message["type"] == "machine_status" && message["status"] == "offline" {
            offline.get_or_insert(killed.elapsed());
        }
        if message["type"] == "terminal_closed" && message["sessionId"] == session.as_str() {
            assert_eq!(message["reason"], "agent_disconnected");
            closed.get_or_insert(killed.elapsed());
        }
    }
    let (offline, closed) = (offline.expect("offline"), closed.expect("closed"));
    eprintln!(
        "after SIGKILL: offline on Frankfurt in {offline:?}, remote terminal ended in {closed:?}"
    );
    let window = Duration::from_secs(OFFLINE_AFTER_SECS);
    assert!(
        offline <= window,
        "offline in {offline:?}, window {window:?}"
    );
    assert!(closed <= window, "terminal ended in {closed:?}");

    // The agent fails over to Frankfurt and is reachable there.
    drop(agent);
    let mut agent = ScriptedAgent::connect(&frankfurt.ws_url("/ws/agent")).await;
    agent.register(&secret, "lost-1").await;
    let online = wait_for(&mut web, "machine_status", "status", "online").await;
    assert_eq!(online["machineId"], machine.as_str());
    web.send(json!({"type":"spawn_terminal","machineId":machine,"cols":80,"rows":24}))
        .await;
    agent.next_of("spawn_shell").await;
    web.next_of("terminal_opened").await;
    let _ = async_nats::jetstream::new(async_nats::connect(nats_url.as_str()).await.expect("NATS"))
        .delete_key_value(format!("fg_{cluster}_presence"))
        .await;
}
