//! Managing users through the API and the CLI: a disabled, deleted or re-roled user loses
//! their open sockets and terminals at once, and the next upgrade is refused.

use std::time::{Duration, Instant};

use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::SessionId;
use fleetgate_entity::terminal_sessions;
use sea_orm::EntityTrait;
use serde_json::json;

use crate::api_client::call;
use crate::fixtures::{assert_audited, online_agent};
use crate::support::{admin_cli, eventually, spawn_app};
use crate::web_client::{WebClient, upgrade_status, user};

/// `PATCH /users/{id}` as `admin`.
async fn patch_user(
    server: &crate::support::TestServer,
    admin: &str,
    id: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    call(
        server,
        "PATCH",
        &format!("/users/{id}"),
        Some(admin),
        Some(body),
    )
    .await
}

#[actix_web::test]
async fn disabling_a_user_closes_their_socket_within_a_second_and_ends_their_terminals() {
    let server = spawn_app().await;
    let (_agent, machine, _secret) = online_agent(&server, "box").await;
    let (_, admin) = user(&server, Role::Admin, &[]).await;
    let (alice_id, alice) = user(&server, Role::Operator, &[(&machine, "terminal")]).await;
    let mut socket = WebClient::connect(&server, &alice).await;
    let (session, _) = socket.spawn(&machine).await;

    let started = Instant::now();
    let (status, body) = patch_user(&server, &admin, &alice_id, json!({"disabled": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disabled"], true);
    assert_eq!(socket.next_of("error").await["code"], "forbidden");
    assert_eq!(socket.close_code().await, Some(4403));
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(1), "closed after {elapsed:?}");

    let db = server.db.clone();
    let ended = eventually(|| {
        let (db, session) = (db.clone(), session.clone());
        async move {
            terminal_sessions::Entity::find_by_id(SessionId::parse(&session).expect("session id"))
                .one(&db)
                .await
                .expect("q")
                .is_some_and(|row| row.ended_at.is_some())
        }
    })
    .await;
    assert!(ended, "the user's terminal ended");
    assert_eq!(upgrade_status(&server, &alice).await, 403);
    let (status, _) = call(&server, "GET", "/machines", Some(&alice), None).await;
    assert_eq!(status, 401, "the API refuses a disabled user at once");

    let (status, _) = patch_user(&server, &admin, &alice_id, json!({"disabled": false})).await;
    assert_eq!(status, 200);
    assert_eq!(upgrade_status(&server, &alice).await, 101);
    assert_audited(&server, &["user.disable", "user.enable", "ws.revoked"]).await;
    server.stop().await;
}

#[actix_web::test]
async fn hello_reports_the_stored_role_and_a_role_change_closes_the_socket() {
    let server = spawn_app().await;
    let (_, admin) = user(&server, Role::Admin, &[]).await;
    let (bob_id, _) = user(&server, Role::Operator, &[]).await;
    // A token claiming more than is stored (signed with the server's own key).
    let (claims_admin, _) = server.jwt.issue(&bob_id, Role::Admin, None).expect("token");
    let (mut socket, hello) = WebClient::connect_with_hello(&server, &claims_admin).await;
    assert_eq!(hello["role"], "operator");

    let (status, _) = patch_user(&server, &admin, &bob_id, json!({"role": "viewer"})).await;
    assert_eq!(status, 200);
    assert_eq!(socket.close_code().await, Some(4403));
    let (_again, hello) = WebClient::connect_with_hello(&server, &claims_admin).await;
    assert_eq!(hello["role"], "viewer");
    server.stop().await;
}

#[actix_web::test]
async fn users_are_created_listed_deleted_and_the_last_admin_is_kept() {
    let server = spawn_app().await;
    let (admin_id, admin) = user(&server, Role::Admin, &[]).await;
    let (status, created) = call(
        &server,
        "POST",
        "/users",
        Some(&admin),
        Some(json!({"username": "erin", "role": "operator", "password": "first-password"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let erin_id = created["id"].as_str().expect("id").to_owned();
    let login = |password: &str| json!({"username": "erin", "password": password});
    let (status, token) = call(
        &server,
        "POST",
        "/auth/login",
        None,
        Some(login("first-password")),
    )
    .await;
    assert_eq!(status, 200);
    let erin = token["token"].as_str().expect("token").to_owned();

    let (status, _) = call(
        &server,
        "PUT",
        &format!("/users/{erin_id}/password"),
        Some(&erin),
        Some(json!({"password": "second-password"})),
    )
    .await;
    assert_eq!(status, 204, "a user may set their own password");
    let (old, _) = call(
        &server,
        "POST",
        "/auth/login",
        None,
        Some(login("first-password")),
    )
    .await;
    let (new, _) = call(
        &server,
        "POST",
        "/auth/login",
        None,
        Some(login("second-password")),
    )
    .await;
    assert_eq!((old, new), (401, 200));

    let (status, list) = call(&server, "GET", "/users", Some(&admin), None).await;
    assert_eq!(status, 200);
    assert!(
        list.as_array()
            .expect("array")
            .iter()
            .any(|u| u["username"] == "erin")
    );
    assert!(
        list.to_string().find("password").is_none(),
        "no hashes listed"
    );
    let (status, _) = call(&server, "GET", "/users", Some(&erin), None).await;
    assert_eq!(status, 403);

    let mut socket = WebClient::connect(&server, &erin).await;
    let (status, _) = call(
        &server,
        "DELETE",
        &format!("/users/{erin_id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(socket.close_code().await, Some(4403));
    assert_eq!(upgrade_status(&server, &erin).await, 401);

    for (method, body) in [("PATCH", Some(json!({"disabled": true}))), ("DELETE", None)] {
        let (status, problem) = call(
            &server,
            method,
            &format!("/users/{admin_id}"),
            Some(&admin),
            body,
        )
        .await;
        assert_eq!(status, 409, "the last admin stays: {problem}");
    }
    assert_audited(&server, &["user.add", "user.password", "user.delete"]).await;
    server.stop().await;
}

#[actix_web::test]
async fn a_user_disabled_from_the_cli_loses_their_socket() {
    let server = spawn_app().await;
    let (frank_id, frank) = user(&server, Role::Viewer, &[]).await;
    let mut socket = WebClient::connect(&server, &frank).await;
    let output = admin_cli(&server, &["user", "disable", &format!("user-{frank_id}")]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let started = Instant::now();
    assert_eq!(socket.close_code().await, Some(4403));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(upgrade_status(&server, &frank).await, 403);
    server.stop().await;
}

#[actix_web::test]
async fn cli_user_commands_and_secret_rotation_are_audited() {
    let server = spawn_app().await;
    let (grace_id, _) = user(&server, Role::Operator, &[]).await;
    let name = format!("user-{grace_id}");
    for args in [
        vec!["user", "role", name.as_str(), "viewer"],
        vec!["user", "delete", name.as_str()],
        vec!["secrets", "rotate-jwt"],
    ] {
        let output = admin_cli(&server, &args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let listed = admin_cli(&server, &["user", "list"]);
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(&name),
        "deleted users are not listed"
    );
    assert_audited(&server, &["user.role", "user.delete", "secrets.rotate_jwt"]).await;
    server.stop().await;
}
