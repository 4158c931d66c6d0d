//! The operator HTTP API: authorisation matrix, login, bad input, enrolment, and the CLI.

use fleetgate_actors::identity::Role;
use fleetgate_entity::{audit_log, commands, machines};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;

use crate::agent_client::ScriptedAgent;
use crate::api_client::{call, call_raw};
use crate::support::{TestServer, enroll, eventually, spawn_app};
use crate::web_client::{WebClient, user};

async fn machine_count(server: &TestServer) -> u64 {
    machines::Entity::find()
        .count(&server.db)
        .await
        .expect("count")
}

async fn command_count(server: &TestServer) -> u64 {
    commands::Entity::find()
        .count(&server.db)
        .await
        .expect("count")
}

/// The callers of the matrix: (label, token).
async fn callers(server: &TestServer, machine: &str) -> Vec<(&'static str, Option<String>)> {
    let (_, admin) = user(server, Role::Admin, &[]).await;
    let (_, granted) = user(
        server,
        Role::Operator,
        &[
            (machine, "view"),
            (machine, "command"),
            (machine, "terminal"),
        ],
    )
    .await;
    let (_, ungranted) = user(server, Role::Operator, &[]).await;
    let (_, viewer) = user(server, Role::Viewer, &[]).await;
    let (viewer_id, _) = user(server, Role::Viewer, &[]).await;
    let mut claims = server
        .jwt
        .verify(
            &server
                .jwt
                .issue(&viewer_id, Role::Viewer, None)
                .expect("issue")
                .0,
        )
        .expect("claims");
    claims.exp = chrono::Utc::now().timestamp() - 3600;
    let expired = server.jwt.sign(&claims).expect("sign");
    vec![
        ("admin", Some(admin)),
        ("operator with grant", Some(granted)),
        ("operator without grant", Some(ungranted)),
        ("viewer", Some(viewer)),
        ("no token", None),
        ("expired token", Some(expired)),
    ]
}

#[actix_web::test]
async fn authorisation_matrix() {
    let server = spawn_app().await;
    let (machine, secret) = enroll(&server, "matrix").await;
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent.register(&secret, "matrix").await;
    let callers = callers(&server, &machine).await;
    let (victim, _) = enroll(&server, "victim").await;
    let (grantee, _) = user(&server, Role::Operator, &[]).await;

    // Expected statuses per caller, in the order of `callers`.
    let cases: Vec<(&str, String, Option<serde_json::Value>, [u16; 6])> = vec![
        (
            "GET",
            "/machines".into(),
            None,
            [200, 200, 200, 200, 401, 401],
        ),
        (
            "GET",
            format!("/machines/{machine}"),
            None,
            [200, 200, 403, 403, 401, 401],
        ),
        (
            "GET",
            format!("/machines/{machine}/ports"),
            None,
            [200, 200, 403, 403, 401, 401],
        ),
        (
            "GET",
            format!("/machines/{machine}/metrics"),
            None,
            [200, 200, 403, 403, 401, 401],
        ),
        (
            "POST",
            "/machines".into(),
            Some(json!({"name":"new"})),
            [201, 403, 403, 403, 401, 401],
        ),
        (
            "POST",
            format!("/machines/{machine}/commands"),
            Some(json!({"command":"true"})),
            [202, 202, 403, 403, 401, 401],
        ),
        (
            "PUT",
            format!("/machines/{machine}/access/{grantee}"),
            Some(json!({"levels":["view"]})),
            [200, 403, 403, 403, 401, 401],
        ),
        (
            "GET",
            "/sessions".into(),
            None,
            [200, 200, 200, 200, 401, 401],
        ),
        ("GET", "/audit".into(), None, [200, 403, 403, 403, 401, 401]),
        (
            "POST",
            "/auth/refresh".into(),
            None,
            [200, 200, 200, 200, 401, 401],
        ),
        (
            "DELETE",
            format!("/machines/{victim}"),
            None,
            [204, 403, 403, 403, 401, 401],
        ),
    ];
    // Refused callers go first, so that "nothing happened" is checked before the admin acts.
    for (method, path, body, expected) in &cases {
        for index in [5, 4, 3, 2, 1, 0] {
            let (label, token) = &callers[index];
            let machines_before = machine_count(&server).await;
            let commands_before = command_count(&server).await;
            let (status, reply) = call(&server, method, path, token.as_deref(), body.clone()).await;
            assert_eq!(
                status, expected[index],
                "{label}: {method} {path} → {reply}"
            );
            if status >= 400 {
                assert_eq!(
                    machine_count(&server).await,
                    machines_before,
                    "{label}: {method} {path} changed machines"
                );
                assert_eq!(
                    command_count(&server).await,
                    commands_before,
                    "{label}: {method} {path} ran a command"
                );
            }
            if *method == "GET" && path == "/machines" && status == 200 {
                let seen = reply["items"].as_array().map_or(0, Vec::len);
                let expected_seen = match index {
                    0 => 2,
                    1 => 1,
                    _ => 0,
                };
                assert_eq!(seen, expected_seen, "{label} sees {seen} machines");
            }
        }
    }

    // The same rules on the WebSocket.
    for (index, expected_code) in [(2, "forbidden"), (3, "forbidden")] {
        let token = callers[index].1.clone().expect("token");
        let mut web = WebClient::connect(&server, &token).await;
        web.send(json!({"type":"spawn_terminal","machineId":machine,"cols":80,"rows":24}))
            .await;
        assert_eq!(web.next_of("error").await["code"], expected_code);
        web.send(json!({"type":"execute_command","machineId":machine,"command":"id"}))
            .await;
        assert_eq!(web.next_of("error").await["code"], expected_code);
    }
    let granted = callers[1].1.clone().expect("token");
    let mut web = WebClient::connect(&server, &granted).await;
    web.send(json!({"type":"spawn_terminal","machineId":machine,"cols":80,"rows":24}))
        .await;
    assert!(web.next_of("terminal_opened").await["sessionId"].is_string());
    server.stop().await;
}

#[actix_web::test]
async fn login_checks_passwords_throttles_and_audits() {
    let server = spawn_app().await;
    fleetgate::cli::users::add_user(&server.db, "carol", Role::Operator, "s3cret-enough".into())
        .await
        .expect("user");
    let login = |name: &str, password: &str| json!({"username": name, "password": password});

    let (status, body) = call(
        &server,
        "POST",
        "/auth/login",
        None,
        Some(login("carol", "s3cret-enough")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token");
    let claims = server.jwt.verify(token).expect("a valid JWT");
    assert_eq!(claims.role, Role::Operator);
    assert!(body["expiresAt"].is_string());

    let (status, wrong) = call(
        &server,
        "POST",
        "/auth/login",
        None,
        Some(login("carol", "nope")),
    )
    .await;
    let (status_unknown, unknown) = call(
        &server,
        "POST",
        "/auth/login",
        None,
        Some(login("mallory", "nope")),
    )
    .await;
    assert_eq!((status, status_unknown), (401, 401));
    assert_eq!(
        wrong["detail"], unknown["detail"],
        "same answer whether or not the user exists"
    );

    for _ in 0..4 {
        call(
            &server,
            "POST",
            "/auth/login",
            None,
            Some(login("carol", "nope")),
        )
        .await;
    }
    // Five failures for carol: even the right password is refused now, with Retry-After.
    let (status, _, retry_after) = call_raw(
        &server,
        "POST",
        "/auth/login",
        None,
        Some(login("carol", "s3cret-enough").to_string()),
    )
    .await;
    assert_eq!(status, 429);
    assert!(
        retry_after
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|s| (1..=60).contains(&s))
    );
    // The address has five failures too, but another user behind it still gets in.
    fleetgate::cli::users::add_user(&server.db, "dave", Role::Viewer, "dave-password".into())
        .await
        .expect("user");
    let (status, body) = call(
        &server,
        "POST",
        "/auth/login",
        None,
        Some(login("dave", "dave-password")),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let db = server.db.clone();
    assert!(
        eventually(|| {
            let db = db.clone();
            async move {
                let actions: Vec<String> = audit_log::Entity::find()
                    .all(&db)
                    .await
                    .expect("q")
                    .into_iter()
                    .map(|r| r.action)
                    .collect();
                actions.iter().filter(|a| *a == "login.failure").count() == 6
                    && actions.contains(&"login.success".to_owned())
                    && actions.contains(&"login.throttled".to_owned())
            }
        })
        .await
    );
    server.stop().await;
}

#[actix_web::test]
async fn bad_input_gets_problems_and_changes_nothing() {
    let server = spawn_app().await;
    let (_, admin) = user(&server, Role::Admin, &[]).await;
    let before = machine_count(&server).await;
    let cases: Vec<(&str, String, Option<String>, u16)> = vec![
        ("POST", "/machines".into(), Some("{not json".into()), 400),
        (
            "POST",
            "/machines".into(),
            Some(r#"{"name":"x","secret":"mine"}"#.into()),
            400,
        ),
        (
            "POST",
            "/machines".into(),
            Some(format!(r#"{{"name":"{}"}}"#, "x".repeat(70_000))),
            413,
        ),
        (
            "POST",
            "/machines".into(),
            Some(r#"{"name":""}"#.into()),
            400,
        ),
        (
            "GET",
            format!("/machines/{}", uuid::Uuid::new_v4()),
            None,
            404,
        ),
        ("GET", "/machines/not-a-uuid".into(), None, 404),
        (
            "GET",
            "/commands/ffffffffffffffffffffffffffffffff".into(),
            None,
            404,
        ),
        (
            "DELETE",
            "/sessions/00000000000000000000000000000000".into(),
            None,
            404,
        ),
        ("GET", "/audit?limit=abc".into(), None, 400),
        ("GET", "/audit?bogus=1".into(), None, 400),
    ];
    for (method, path, body, expected) in cases {
        let (status, reply, _) = call_raw(&server, method, &path, Some(&admin), body).await;
        assert_eq!(status, expected, "{method} {path}: {reply}");
    }
    assert_eq!(machine_count(&server).await, before);
    server.stop().await;
}

#[actix_web::test]
async fn enrolled_secret_registers_and_rotation_revokes_it() {
    let server = spawn_app().await;
    let (_, admin) = user(&server, Role::Admin, &[]).await;
    let (status, created) = call(
        &server,
        "POST",
        "/machines",
        Some(&admin),
        Some(json!({"name":"api-1"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let id = created["machine"]["id"].as_str().expect("id").to_owned();
    assert!(
        created["connectCommand"]
            .as_str()
            .is_some_and(|c| c.contains(&secret))
    );

    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    assert_eq!(agent.register(&secret, "api-1").await, id);

    let (status, rotated) = call(
        &server,
        "POST",
        &format!("/machines/{id}/rotate-secret"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        agent.close_code().await,
        Some(4403),
        "the agent with the old secret is disconnected"
    );

    let mut stale = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    stale
        .send(&crate::agent_client::register_frame(&secret, "api-1"))
        .await;
    assert_eq!(
        stale.next_json().await.expect("reply")["code"],
        "unauthenticated"
    );

    let mut fresh = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    assert_eq!(
        fresh
            .register(rotated["secret"].as_str().expect("secret"), "api-1")
            .await,
        id
    );
    let (status, _) = call(
        &server,
        "DELETE",
        &format!("/machines/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        fresh.close_code().await,
        Some(4403),
        "deleting the machine disconnects its agent"
    );
    server.stop().await;
}

#[actix_web::test]
async fn openapi_document_is_served() {
    let server = spawn_app().await;
    let (status, doc) = call(&server, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    server.stop().await;
}
