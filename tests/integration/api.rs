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

#[actix_web::test]
async fn the_machine_list_pages_filters_and_carries_the_latest_metrics() {
    let server = spawn_app().await;
    let mut ids = Vec::new();
    for name in [
        "alpha-web",
        "beta-db",
        "gamma-web",
        "delta-cache",
        "Epsilon-WEB",
    ] {
        ids.push(enroll(&server, name).await.0);
    }
    ids.sort();
    let (_, admin) = user(&server, Role::Admin, &[]).await;
    let (_, viewer) = user(
        &server,
        Role::Viewer,
        &[(&ids[1], "view"), (&ids[3], "view")],
    )
    .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/machines?limit=2&cursor={c}"),
            None => "/machines?limit=2".to_owned(),
        };
        let (status, page) = call(&server, "GET", &path, Some(&admin), None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|m| m["id"].as_str().expect("id").to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every machine once, in id order, across pages");

    let (_, web) = call(&server, "GET", "/machines?q=WeB", Some(&admin), None).await;
    let mut names: Vec<&str> = web["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["name"].as_str().expect("name"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["Epsilon-WEB", "alpha-web", "gamma-web"],
        "case-insensitive search"
    );
    let (_, literal) = call(&server, "GET", "/machines?q=%25", Some(&admin), None).await;
    assert!(
        literal["items"].as_array().expect("items").is_empty(),
        "% is matched literally"
    );
    let (_, online) = call(
        &server,
        "GET",
        "/machines?status=online",
        Some(&admin),
        None,
    )
    .await;
    assert!(online["items"].as_array().expect("items").is_empty());
    let (status, _) = call(
        &server,
        "GET",
        "/machines?status=sideways",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(&server, "GET", "/machines?limit=0", Some(&admin), None).await;
    assert_eq!(status, 400);

    let (_, mine) = call(&server, "GET", "/machines?limit=10", Some(&viewer), None).await;
    let visible: Vec<&str> = mine["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        visible,
        [ids[1].as_str(), ids[3].as_str()],
        "a viewer pages through their grants only"
    );

    // A heartbeat's metrics show in the list without a read of the metrics table per machine.
    let (machine, secret) = enroll(&server, "beating").await;
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent.register(&secret, "beating").await;
    agent
        .send(&crate::agent_client::heartbeat_frame(&machine, 42.5, &[]))
        .await;
    let listed = eventually(|| {
        let (server, admin, machine) = (&server, admin.clone(), machine.clone());
        async move {
            let (_, list) = call(server, "GET", "/machines?q=beating", Some(&admin), None).await;
            list["items"][0]["id"] == machine.as_str()
                && list["items"][0]["latestMetrics"]["cpu"] == 42.5
        }
    })
    .await;
    assert!(listed, "the latest sample is listed");
    server.stop().await;
}

/// What `body` breaks of schema `name` of the served OpenAPI document.
fn schema_errors(
    document: &serde_json::Value,
    name: &str,
    body: &serde_json::Value,
) -> Vec<String> {
    let mut root = document.clone();
    root["$ref"] = json!(format!("#/components/schemas/{name}"));
    let validator = jsonschema::validator_for(&root).expect("a valid schema");
    validator.iter_errors(body).map(|e| e.to_string()).collect()
}

/// Fails unless `body` matches schema `name` of the served OpenAPI document.
fn assert_matches_schema(document: &serde_json::Value, name: &str, body: &serde_json::Value) {
    let errors = schema_errors(document, name, body);
    assert!(errors.is_empty(), "{name}: {errors:?}\n{body}");
}

#[actix_web::test]
async fn every_json_answer_has_a_schema_and_real_answers_match_it() {
    let server = spawn_app().await;
    let (_, document) = call(&server, "GET", "/openapi.json", None, None).await;
    // Every operation that answers with a body names its schema.
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operation") {
            let ok = &operation["responses"]["2XX"];
            let no_body = ok["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("204"));
            assert!(
                no_body || ok["content"]["application/json"]["schema"]["$ref"].is_string(),
                "{method} {path} has no response schema"
            );
        }
    }
    assert_matches_schema(&document, "OpenApiDocument", &document);
    let wrong = json!({"token": 1, "expiresAt": "soon", "extra": true});
    assert!(
        !schema_errors(&document, "Token", &wrong).is_empty(),
        "the schemas do check"
    );

    fleetgate::cli::users::add_user(&server.db, "dana", Role::Admin, "dana-password".into())
        .await
        .expect("user");
    let (_, token) = call(
        &server,
        "POST",
        "/auth/login",
        None,
        Some(json!({"username": "dana", "password": "dana-password"})),
    )
    .await;
    assert_matches_schema(&document, "Token", &token);
    let admin = token["token"].as_str().expect("token").to_owned();
    let admin = Some(admin.as_str());
    let (status, enrolled) = call(
        &server,
        "POST",
        "/machines",
        admin,
        Some(json!({"name": "schema-box"})),
    )
    .await;
    assert_eq!(status, 201);
    assert_matches_schema(&document, "EnrolledMachine", &enrolled);
    let machine = enrolled["machine"]["id"].as_str().expect("id").to_owned();
    let secret = enrolled["secret"].as_str().expect("secret").to_owned();
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent.register(&secret, "schema-box").await;
    agent
        .send(&crate::agent_client::heartbeat_frame(
            &machine,
            3.5,
            &[(22, "tcp", "ssh")],
        ))
        .await;
    let with_metrics = eventually(|| {
        let (server, machine) = (&server, machine.clone());
        async move {
            let (_, shown) =
                call(server, "GET", &format!("/machines/{machine}"), admin, None).await;
            !shown["latestMetrics"].is_null()
        }
    })
    .await;
    assert!(with_metrics);
    let (_, operator) = user(&server, Role::Operator, &[]).await;
    let operator_id = server.jwt.verify(&operator).expect("token").sub;
    let (_, command) = call(
        &server,
        "POST",
        &format!("/machines/{machine}/commands"),
        admin,
        Some(json!({"command": "true"})),
    )
    .await;
    let command_id = command["commandId"].as_str().expect("commandId").to_owned();
    let samples: Vec<(&str, String, Option<serde_json::Value>, &str)> = vec![
        ("POST", "/auth/refresh".into(), None, "Token"),
        ("GET", "/machines".into(), None, "MachinePage"),
        ("GET", "/machines?limit=1".into(), None, "MachinePage"),
        ("GET", format!("/machines/{machine}"), None, "Machine"),
        (
            "GET",
            format!("/machines/{machine}/metrics"),
            None,
            "MetricPoints",
        ),
        (
            "GET",
            format!("/machines/{machine}/ports"),
            None,
            "PortList",
        ),
        (
            "PUT",
            format!("/machines/{machine}/access/{operator_id}"),
            Some(json!({"levels": ["view"]})),
            "GrantsSet",
        ),
        (
            "POST",
            format!("/machines/{machine}/commands"),
            Some(json!({"command": "uptime"})),
            "CommandAccepted",
        ),
        (
            "POST",
            "/commands".into(),
            Some(json!({"machineIds": [machine, uuid::Uuid::new_v4()], "command": "id"})),
            "CommandBatch",
        ),
        ("GET", format!("/commands/{command_id}"), None, "Command"),
        ("GET", "/sessions".into(), None, "SessionList"),
        ("GET", "/audit?limit=5".into(), None, "AuditPage"),
        ("GET", "/users".into(), None, "UserList"),
        (
            "POST",
            format!("/machines/{machine}/rotate-secret"),
            None,
            "RotatedSecret",
        ),
    ];
    for (method, path, body, schema) in samples {
        let (status, answer) = call(&server, method, &path, admin, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        assert_matches_schema(&document, schema, &answer);
    }
    let (_, problem) = call(&server, "GET", "/machines/not-a-uuid", admin, None).await;
    assert_matches_schema(&document, "Problem", &problem);
    server.stop().await;
}
