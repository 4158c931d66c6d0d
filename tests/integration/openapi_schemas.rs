//! The served OpenAPI document against real answers: every operation with a body names its
//! schema, and what the server answers matches it.

use fleetgate_actors::identity::Role;
use serde_json::json;

use crate::agent_client::ScriptedAgent;
use crate::api_client::call;
use crate::support::{eventually, spawn_app};
use crate::web_client::user;

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

/// Every `$ref` in `value`.
fn collect_refs(value: &serde_json::Value, refs: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner.as_str()) {
                    ("$ref", Some(reference)) => refs.push(reference.to_owned()),
                    _ => collect_refs(inner, refs),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

#[actix_web::test]
async fn every_json_answer_has_a_schema_and_real_answers_match_it() {
    let server = spawn_app().await;
    let (_, document) = call(&server, "GET", "/openapi.json", None, None).await;
    // Every operation that answers with a body names its schema, and every one that takes a
    // body names that too.
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operation") {
            let responses = operation["responses"].as_object().expect("responses");
            let (status, ok) = responses
                .iter()
                .find(|(status, _)| status.starts_with('2'))
                .unwrap_or_else(|| panic!("{method} {path} has no success answer"));
            assert!(
                status == "204"
                    || ok["content"].as_object().is_some_and(|types| {
                        !types.is_empty() && types.values().all(|t| t["schema"].is_object())
                    }),
                "{method} {path} has no response schema"
            );
            let bodiless = ["/auth/refresh", "/auth/logout"].contains(&path.as_str());
            if method != "get" && method != "delete" && !bodiless {
                let named =
                    &operation["requestBody"]["content"]["application/json"]["schema"]["$ref"];
                let takes_none = path.ends_with("/rotate-secret");
                assert!(
                    takes_none || named.is_string(),
                    "{method} {path} has no request schema"
                );
            }
        }
    }
    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    assert!(refs.len() > 40, "the document refers to its schemas");
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{reference} is not a schema reference"));
        assert!(
            document["components"]["schemas"][name].is_object(),
            "{reference} names no schema"
        );
    }
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
