//! Terminal sessions recorded through the real server: the asciicast has its header, the
//! output in order and byte-exact, the resizes, and no keystroke unless `recording.input`; the
//! playback API serves it to the owner and admins only; a changed file is reported as tampered;
//! the close's audit entry links to the recording.

use std::time::Duration;

use fleetgate_actors::identity::Role;
use fleetgate_entity::audit_log;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::agent_client::ScriptedAgent;
use crate::api_client::call_raw;
use crate::cli::cli;
use crate::fixtures::online_agent;
use crate::support::{TestServer, eventually, spawn_app, spawn_app_with};
use crate::web_client::{WebClient, user};

/// Runs a short session on `agent`'s machine for `token`: output, typed keys, a resize, close.
/// Returns its id once the recording is sealed.
async fn recorded_session(
    server: &TestServer,
    agent: &mut ScriptedAgent,
    machine: &str,
    token: &str,
) -> String {
    let mut web = WebClient::connect(server, token).await;
    let (session, _) = web.spawn(machine).await;
    agent.next_of("spawn_shell").await;
    for chunk in ["caf\u{e9} \"1\"\r\n", "\u{1b}[1mtwo\u{1b}[0m\r\n"] {
        let frame = json!({"type":"terminal_output","sessionId":session,"output":chunk});
        agent.send(&format!("{frame}\n")).await;
        web.next_of("terminal_output").await;
    }
    web.send(json!({"type":"terminal_input","sessionId":session,"data":"top-secret\r"}))
        .await;
    agent.next_of("terminal_stdin").await;
    web.send(json!({"type":"terminal_resize","sessionId":session,"cols":100,"rows":30}))
        .await;
    web.send(json!({"type":"close_terminal","sessionId":session}))
        .await;
    web.next_of("terminal_closed").await;
    let sealed = server
        .settings
        .storage
        .data_dir
        .join("recordings")
        .join(format!("{session}.cast.gz.sig"));
    assert!(eventually(|| async { sealed.exists() }).await, "sealed");
    session
}

/// `GET /sessions/{id}/recording` as `token`: status and body.
async fn playback(server: &TestServer, session: &str, token: &str) -> (u16, String) {
    let mut response = awc::Client::default()
        .get(server.http_url(&format!("/api/v1/sessions/{session}/recording")))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("request");
    let body = response.body().await.expect("body");
    (
        response.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn events(cast: &str) -> (Value, Vec<(String, String)>) {
    let mut lines = cast
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"));
    let header = lines.next().expect("header");
    let events = lines
        .map(|e| {
            (
                e[1].as_str().unwrap_or("").to_owned(),
                e[2].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    (header, events)
}

#[actix_web::test]
async fn a_session_is_recorded_and_played_back_to_its_owner_and_admins_only() {
    let server = spawn_app().await;
    let (mut agent, machine, _) = online_agent(&server, "rec-1").await;
    let (owner_id, owner) = user(&server, Role::Operator, &[(&machine, "terminal")]).await;
    let session = recorded_session(&server, &mut agent, &machine, &owner).await;

    let (status, cast) = playback(&server, &session, &owner).await;
    assert_eq!(status, 200, "{cast}");
    let (header, events) = events(&cast);
    assert_eq!(header["version"], 2);
    assert_eq!(
        (header["width"].as_u64(), header["height"].as_u64()),
        (Some(80), Some(24))
    );
    assert_eq!(header["fleetgate"]["userId"], owner_id.as_str());
    assert_eq!(header["fleetgate"]["machineId"], machine.as_str());
    let output: Vec<&str> = events
        .iter()
        .filter(|(code, _)| code == "o")
        .map(|(_, data)| data.as_str())
        .collect();
    assert_eq!(
        output,
        ["caf\u{e9} \"1\"\r\n", "\u{1b}[1mtwo\u{1b}[0m\r\n"],
        "in order, byte-exact"
    );
    assert!(
        events
            .iter()
            .any(|(code, data)| code == "r" && data == "100x30")
    );
    assert!(
        !events.iter().any(|(code, _)| code == "i"),
        "no input by default"
    );
    assert!(!cast.contains("top-secret"), "no keystroke anywhere");

    let (_, admin) = user(&server, Role::Admin, &[]).await;
    assert_eq!(playback(&server, &session, &admin).await.0, 200);
    // `fleetgate play` replays it in a terminal (here, into a pipe).
    fleetgate::cli::users::add_user(&server.db, "auditor", Role::Admin, "long-password".into())
        .await
        .expect("user");
    let config = tempfile::tempdir().expect("config");
    let url = server.http_url("");
    let login = cli(
        config.path(),
        &["login", "--server", &url, "--user", "auditor"],
        "long-password\n",
    )
    .await;
    assert!(login.status.success());
    let played = cli(config.path(), &["play", &session, "--speed", "50"], "").await;
    assert!(
        played.status.success(),
        "{}",
        String::from_utf8_lossy(&played.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&played.stdout),
        "caf\u{e9} \"1\"\r\n\u{1b}[1mtwo\u{1b}[0m\r\n",
        "the output as it was shown"
    );
    let (_, other) = user(&server, Role::Operator, &[(&machine, "terminal")]).await;
    assert_eq!(playback(&server, &session, &other).await.0, 403);
    let (_, viewer) = user(&server, Role::Viewer, &[(&machine, "view")]).await;
    assert_eq!(playback(&server, &session, &viewer).await.0, 403);
    let (status, _, _) = call_raw(
        &server,
        "GET",
        "/sessions/00000000000000000000000000000000/recording",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 404);

    let closes = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("terminal.close"))
        .all(&server.db)
        .await
        .expect("audit");
    let link = format!("/api/v1/sessions/{session}/recording");
    assert!(
        closes
            .iter()
            .any(|row| row.detail["recording"] == link.as_str()),
        "the audit entry links to it"
    );

    let file = server
        .settings
        .storage
        .data_dir
        .join("recordings")
        .join(format!("{session}.cast.gz"));
    let mut bytes = std::fs::read(&file).expect("recording");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&file, bytes).expect("tamper");
    let (status, problem) = playback(&server, &session, &owner).await;
    assert_eq!(status, 409);
    assert!(problem.contains("changed after it was made"), "{problem}");
    server.stop().await;
}

#[actix_web::test]
async fn keystrokes_are_recorded_only_when_the_policy_says_so() {
    let server = spawn_app_with(|s| s.recording.input = true).await;
    let (mut agent, machine, _) = online_agent(&server, "rec-2").await;
    let (_, owner) = user(&server, Role::Operator, &[(&machine, "terminal")]).await;
    let session = recorded_session(&server, &mut agent, &machine, &owner).await;
    let (status, cast) = playback(&server, &session, &owner).await;
    assert_eq!(status, 200);
    let (_, events) = events(&cast);
    assert!(events.contains(&("i".to_owned(), "top-secret\r".to_owned())));
    server.stop().await;

    let off = spawn_app_with(|s| s.recording.mode = "none".into()).await;
    let (mut agent, machine, _) = online_agent(&off, "rec-3").await;
    let (_, owner) = user(&off, Role::Operator, &[(&machine, "terminal")]).await;
    let mut web = WebClient::connect(&off, &owner).await;
    let (session, _) = web.spawn(&machine).await;
    agent.next_of("spawn_shell").await;
    web.send(json!({"type":"close_terminal","sessionId":session}))
        .await;
    web.next_of("terminal_closed").await;
    assert_eq!(
        playback(&off, &session, &owner).await.0,
        404,
        "not recorded"
    );
    off.stop().await;
}

/// `PUT /machines/{machine}/recording {"mode": mode}` as `token`.
async fn set_recording(
    server: &TestServer,
    machine: &str,
    token: &str,
    mode: &str,
) -> (u16, Value, Option<String>) {
    let path = format!("/machines/{machine}/recording");
    let body = json!({ "mode": mode }).to_string();
    call_raw(server, "PUT", &path, Some(token), Some(body)).await
}

#[actix_web::test]
async fn a_machine_is_recorded_or_not_by_its_own_setting_whatever_the_server_says() {
    let server = spawn_app_with(|s| s.recording.mode = "none".into()).await;
    let (mut agent, machine, _) = online_agent(&server, "rec-4").await;
    let (_, admin) = user(&server, Role::Admin, &[]).await;
    let (_, owner) = user(&server, Role::Operator, &[(&machine, "terminal")]).await;
    assert_eq!(
        set_recording(&server, &machine, &owner, "on").await.0,
        403,
        "admins only"
    );
    assert_eq!(
        set_recording(&server, &machine, &admin, "sometimes")
            .await
            .0,
        400
    );
    let (status, shown, _) = call_raw(
        &server,
        "GET",
        &format!("/machines/{machine}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (status, shown["recording"].as_str()),
        (200, Some("default"))
    );

    let (status, answer, _) = set_recording(&server, &machine, &admin, "on").await;
    assert_eq!((status, answer["mode"].as_str()), (200, Some("on")));
    let session = recorded_session(&server, &mut agent, &machine, &owner).await;
    assert_eq!(playback(&server, &session, &owner).await.0, 200);

    assert_eq!(set_recording(&server, &machine, &admin, "off").await.0, 200);
    let mut web = WebClient::connect(&server, &owner).await;
    let (unrecorded, _) = web.spawn(&machine).await;
    web.send(json!({"type":"close_terminal","sessionId":unrecorded}))
        .await;
    web.next_of("terminal_closed").await;
    assert_eq!(playback(&server, &unrecorded, &owner).await.0, 404);
    let changes = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("machine.recording"))
        .all(&server.db)
        .await
        .expect("audit");
    assert_eq!(
        changes.len(),
        2,
        "each accepted change is audited, refused ones change nothing"
    );
    server.stop().await;
}
