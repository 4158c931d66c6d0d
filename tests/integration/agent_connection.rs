//! Agents over real sockets: register, heartbeats, offline on drop, replacement, refusal.

use fleetgate_actors::repo::Enrollment;
use fleetgate_entity::{machines, metrics, ports};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use crate::agent_client::{ScriptedAgent, heartbeat_frame};
use crate::support::{enroll, eventually, http_post, spawn_app, spawn_app_with};

async fn machine_status(db: &sea_orm::DatabaseConnection, id: &str) -> String {
    let id = Uuid::parse_str(id).expect("uuid");
    machines::Entity::find_by_id(id)
        .one(db)
        .await
        .expect("query")
        .expect("machine row")
        .status
}

/// Whether the machine's stored status becomes `status` in time.
async fn reaches_status(db: &sea_orm::DatabaseConnection, id: &str, status: &str) -> bool {
    eventually(|| async { machine_status(db, id).await == status }).await
}

#[actix_web::test]
async fn enrolled_agent_registers_and_its_heartbeats_are_stored() {
    let server = spawn_app().await;
    let (id, secret) = enroll(&server, "web-1").await;
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    let machine_id = agent.register(&secret, "web-1.example").await;
    assert_eq!(machine_id, id);

    agent
        .send(&heartbeat_frame(
            &machine_id,
            12.5,
            &[(22, "tcp", "sshd"), (53, "udp", "dns")],
        ))
        .await;
    agent
        .send(&heartbeat_frame(&machine_id, 20.0, &[(22, "tcp", "sshd")]))
        .await;

    let uuid = Uuid::parse_str(&machine_id).expect("uuid");
    let db = server.db.clone();
    let stored = eventually(|| {
        let db = db.clone();
        async move {
            let rows = metrics::Entity::find()
                .filter(metrics::Column::MachineId.eq(uuid))
                .count(&db)
                .await
                .expect("count");
            let port_rows = ports::Entity::find()
                .filter(ports::Column::MachineId.eq(uuid))
                .all(&db)
                .await
                .expect("ports");
            rows == 2 && port_rows.len() == 1 && port_rows[0].port == 22
        }
    })
    .await;
    assert!(stored, "two metric rows and the latest port set are stored");

    let row = machines::Entity::find_by_id(uuid)
        .one(&server.db)
        .await
        .expect("q")
        .expect("row");
    assert_eq!(row.status, "online");
    assert_eq!(row.hostname, "web-1.example");
    assert_eq!(row.os_distro.as_deref(), Some("debian"));
    assert_ne!(
        row.secret_sealed, secret,
        "the secret is not stored in plain text"
    );
    assert!(!row.secret_sealed.contains(&secret));
    server.stop().await;
}

#[actix_web::test]
async fn dropped_socket_marks_the_machine_offline() {
    let server = spawn_app().await;
    let (id, secret) = enroll(&server, "db-1").await;
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent.register(&secret, "db-1").await;
    let db = server.db.clone();
    assert!(reaches_status(&db, &id, "online").await);
    agent.drop_connection();
    assert!(
        reaches_status(&db, &id, "offline").await,
        "offline soon after the socket drops"
    );
    server.stop().await;
}

#[actix_web::test]
async fn silent_machine_goes_offline_after_the_configured_window() {
    let server = spawn_app_with(|s| {
        s.agents.heartbeat_secs = 1;
        s.agents.offline_after_secs = 1;
    })
    .await;
    let (id, secret) = enroll(&server, "quiet").await;
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent.register(&secret, "quiet").await;
    let db = server.db.clone();
    assert!(
        reaches_status(&db, &id, "offline").await,
        "no heartbeat within the window: offline while the socket is still open"
    );
    agent.send(&heartbeat_frame(&id, 1.0, &[])).await;
    assert!(
        reaches_status(&db, &id, "online").await,
        "a heartbeat brings it back online"
    );
    server.stop().await;
}

#[actix_web::test]
async fn second_connection_replaces_the_first() {
    let server = spawn_app().await;
    let (id, secret) = enroll(&server, "app-1").await;
    let mut first = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    first.register(&secret, "app-1").await;
    let mut second = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    second.register(&secret, "app-1").await;
    assert_eq!(first.close_code().await, Some(4409));

    // The old socket's late close must not take the new one offline.
    second.send(&heartbeat_frame(&id, 3.0, &[])).await;
    let db = server.db.clone();
    let uuid = Uuid::parse_str(&id).expect("uuid");
    assert!(
        eventually(|| {
            let db = db.clone();
            async move {
                metrics::Entity::find()
                    .filter(metrics::Column::MachineId.eq(uuid))
                    .count(&db)
                    .await
                    .expect("count")
                    == 1
            }
        })
        .await
    );
    assert_eq!(machine_status(&server.db, &id).await, "online");
    server.stop().await;
}

#[actix_web::test]
async fn unknown_secret_is_refused_in_token_mode() {
    let server = spawn_app().await;
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent
        .send(&crate::agent_client::register_frame(
            &"ab".repeat(32),
            "intruder",
        ))
        .await;
    let reply = agent.next_json().await.expect("error reply");
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["code"], "unauthenticated");
    assert_eq!(agent.close_code().await, Some(4401));
    let count = machines::Entity::find()
        .count(&server.db)
        .await
        .expect("count");
    assert_eq!(count, 0, "nothing was created");
    server.stop().await;
}

#[actix_web::test]
async fn open_enrollment_creates_a_machine_on_first_use() {
    let server = spawn_app_with(|s| s.agents.enrollment = Enrollment::Open).await;
    let secret = "cd".repeat(32);
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    let first_id = agent.register(&secret, "new-box").await;
    agent.drop_connection();
    let mut again = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    assert_eq!(
        again.register(&secret, "new-box").await,
        first_id,
        "same secret, same machine"
    );
    assert_eq!(
        machines::Entity::find()
            .count(&server.db)
            .await
            .expect("count"),
        1
    );
    server.stop().await;
}

#[actix_web::test]
async fn messages_before_register_are_answered_not_registered() {
    let server = spawn_app().await;
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent
        .send(&heartbeat_frame(
            "6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f",
            1.0,
            &[],
        ))
        .await;
    let reply = agent.next_json().await.expect("error reply");
    assert_eq!(reply["code"], "not_registered");
    assert_eq!(
        metrics::Entity::find()
            .count(&server.db)
            .await
            .expect("count"),
        0
    );
    server.stop().await;
}

#[actix_web::test]
async fn agent_reports_are_authenticated_by_secret() {
    let server = spawn_app().await;
    let (id, secret) = enroll(&server, "scan-1").await;
    let body = format!(
        r#"{{"machineId":"{id}","packages":[{{"name":"bash","version":"5.2"}}],"summary":{{"total":1,"updates":0,"securityUpdates":0}}}}"#
    );
    let ok = http_post(
        &server.http_url("/api/agent/scan"),
        &[("X-Agent-Secret", &secret)],
        &body,
    )
    .await;
    assert_eq!(ok, 200);
    let wrong = http_post(
        &server.http_url("/api/agent/scan"),
        &[("X-Agent-Secret", &"00".repeat(32))],
        &body,
    )
    .await;
    assert_eq!(wrong, 401);
    let malformed = http_post(
        &server.http_url("/api/agent/scan"),
        &[("X-Agent-Secret", &secret)],
        "{",
    )
    .await;
    assert_eq!(malformed, 400);
    let rows = fleetgate_entity::agent_reports::Entity::find()
        .all(&server.db)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].kind, "scan");
    server.stop().await;
}
