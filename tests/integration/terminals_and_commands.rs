//! Terminals and commands end to end: web client → fleetgate → scripted agent and back.

use std::time::Duration;

use chrono::Utc;
use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::envelope::{SignedKind, verify_envelope};
use fleetgate_actors::protocol::nonce::NonceCache;
use fleetgate_entity::{audit_log, commands, terminal_sessions};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::agent_client::ScriptedAgent;
use crate::support::{TestServer, enroll, eventually, spawn_app, spawn_app_with};
use crate::web_client::{WebClient, user};

/// An enrolled, registered agent: (agent, machine id, secret).
async fn online_agent(server: &TestServer, name: &str) -> (ScriptedAgent, String, String) {
    let (id, secret) = enroll(server, name).await;
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent.register(&secret, name).await;
    (agent, id, secret)
}

/// Verifies a signed frame the agent received; returns (kind, payload).
fn verified(
    frame: &serde_json::Value,
    secret: &str,
    nonces: &mut NonceCache,
) -> (SignedKind, String) {
    let envelope =
        verify_envelope(&frame.to_string(), secret, Utc::now(), nonces).expect("valid envelope");
    (envelope.kind, envelope.payload)
}

async fn audit_actions(server: &TestServer) -> Vec<String> {
    audit_log::Entity::find()
        .all(&server.db)
        .await
        .expect("audit")
        .into_iter()
        .map(|row| row.action)
        .collect()
}

#[actix_web::test]
async fn terminal_round_trip_is_signed_and_reaches_the_owner() {
    let server = spawn_app().await;
    let (mut agent, machine, secret) = online_agent(&server, "web-1").await;
    let (_, token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;
    let mut nonces = NonceCache::new(256);

    web.send(
        json!({"type":"spawn_terminal","machineId":machine,"cols":120,"rows":40,"requestId":"r1"}),
    )
    .await;
    let spawn = agent.next_of("spawn_shell").await;
    let session = spawn["data"]["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_owned();
    assert_eq!(session.len(), 32);
    let resize = agent.next_of("terminal_resize").await;
    assert_eq!(
        verified(&resize, &secret, &mut nonces),
        (
            SignedKind::TerminalResize,
            r#"{"cols":120,"rows":40}"#.into()
        )
    );
    let opened = web.next_of("terminal_opened").await;
    assert_eq!(opened["sessionId"], session.as_str());
    assert_eq!(opened["requestId"], "r1");

    web.send(json!({"type":"terminal_input","sessionId":session,"data":"ls -la\r"}))
        .await;
    let stdin = agent.next_of("terminal_stdin").await;
    assert_eq!(stdin["data"]["sessionId"], session.as_str());
    assert_eq!(
        verified(&stdin, &secret, &mut nonces),
        (SignedKind::TerminalInput, "{\"data\":\"ls -la\\r\"}".into())
    );

    agent
        .send(&format!(
            "{}\n",
            json!({"type":"terminal_output","sessionId":session,"output":"total 0\r\n"})
        ))
        .await;
    let output = web.next_of("terminal_output").await;
    assert_eq!(output["data"], "total 0\r\n");

    web.send(json!({"type":"terminal_resize","sessionId":session,"cols":100,"rows":30}))
        .await;
    let resize = agent.next_of("terminal_resize").await;
    assert_eq!(
        verified(&resize, &secret, &mut nonces).1,
        r#"{"cols":100,"rows":30}"#
    );

    web.send(json!({"type":"close_terminal","sessionId":session}))
        .await;
    assert_eq!(web.next_of("terminal_closed").await["reason"], "closed");
    let db = server.db.clone();
    let recorded = eventually(|| {
        let (db, session) = (db.clone(), session.clone());
        async move {
            terminal_sessions::Entity::find_by_id(session)
                .one(&db)
                .await
                .expect("q")
                .is_some_and(|row| {
                    row.close_reason.as_deref() == Some("closed")
                        && row.bytes_in == 7
                        && row.bytes_out == 9
                })
        }
    })
    .await;
    assert!(recorded, "session recorded with byte counts and reason");
    let actions = audit_actions(&server).await;
    assert!(
        actions.contains(&"terminal.open".to_owned())
            && actions.contains(&"terminal.close".to_owned()),
        "{actions:?}"
    );
    server.stop().await;
}

#[actix_web::test]
async fn each_user_sees_only_their_own_output() {
    let server = spawn_app().await;
    let (mut agent_a, machine_a, _) = online_agent(&server, "a").await;
    let (mut agent_b, machine_b, _) = online_agent(&server, "b").await;
    let (_, alice_token) = user(&server, Role::Operator, &[(&machine_a, "terminal")]).await;
    let (_, bob_token) = user(
        &server,
        Role::Operator,
        &[(&machine_a, "terminal"), (&machine_b, "terminal")],
    )
    .await;
    let mut alice = WebClient::connect(&server, &alice_token).await;
    let mut bob = WebClient::connect(&server, &bob_token).await;

    let (alice_a, _) = alice.spawn(&machine_a).await;
    let (bob_a, _) = bob.spawn(&machine_a).await;
    let (bob_b, _) = bob.spawn(&machine_b).await;
    for session in [&alice_a, &bob_a] {
        agent_a.send(&json!({"type":"terminal_output","sessionId":session,"output":format!("for {session}")}).to_string()).await;
    }
    agent_b
        .send(
            &json!({"type":"terminal_output","sessionId":bob_b,"output":format!("for {bob_b}")})
                .to_string(),
        )
        .await;
    // Agent B naming a session on machine A must not reach anyone.
    agent_b
        .send(
            &json!({"type":"terminal_output","sessionId":alice_a,"output":"injected"}).to_string(),
        )
        .await;

    let alice_out = alice.next_of("terminal_output").await;
    assert_eq!(
        (alice_out["sessionId"].as_str(), alice_out["data"].as_str()),
        (
            Some(alice_a.as_str()),
            Some(format!("for {alice_a}").as_str())
        )
    );
    let mut bob_seen = Vec::new();
    for _ in 0..2 {
        let out = bob.next_of("terminal_output").await;
        assert_eq!(
            out["data"],
            format!("for {}", out["sessionId"].as_str().expect("id"))
        );
        bob_seen.push(out["sessionId"].as_str().expect("id").to_owned());
    }
    bob_seen.sort();
    let mut expected = vec![bob_a.clone(), bob_b.clone()];
    expected.sort();
    assert_eq!(bob_seen, expected);

    // Bob cannot type into Alice's session, even knowing its id.
    bob.send(
        json!({"type":"terminal_input","sessionId":alice_a,"data":"whoami\r","requestId":"x"}),
    )
    .await;
    let refused = bob.next_of("error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["requestId"].as_str()),
        (Some("unknown_session"), Some("x"))
    );
    // And nothing else arrived for Alice: the next thing she sees is her own close.
    alice
        .send(json!({"type":"close_terminal","sessionId":alice_a}))
        .await;
    let next = alice.next().await.expect("message");
    assert_eq!(
        next["type"], "terminal_closed",
        "no injected or foreign output reached alice: {next}"
    );
    server.stop().await;
}

#[actix_web::test]
async fn command_output_reaches_the_requester_and_survives_a_restart() {
    let server = spawn_app().await;
    let (mut agent, machine, secret) = online_agent(&server, "cmd").await;
    let (_, token) = user(&server, Role::Operator, &[(&machine, "command")]).await;
    let mut web = WebClient::connect(&server, &token).await;
    web.send(
        json!({"type":"execute_command","machineId":machine,"command":"exit 3","requestId":"c1"}),
    )
    .await;

    let execute = agent.next_of("execute_command").await;
    let (kind, payload) = verified(&execute, &secret, &mut NonceCache::new(16));
    assert_eq!(kind, SignedKind::ExecuteCommand);
    let payload: serde_json::Value = serde_json::from_str(&payload).expect("payload");
    assert_eq!(payload["command"], "exit 3");
    let command_id = payload["commandId"].as_str().expect("commandId").to_owned();
    let started = web.next_of("command_started").await;
    assert_eq!(
        (started["commandId"].as_str(), started["requestId"].as_str()),
        (Some(command_id.as_str()), Some("c1"))
    );

    for (output, completed, code) in [
        ("part one, ", false, 0),
        ("part two", false, 0),
        ("", true, 3),
    ] {
        let chunk = json!({"type":"command_response","machineId":machine,"commandId":command_id,"output":output,"exitCode":code,"completed":completed});
        agent.send(&format!("{chunk}\n")).await;
    }
    let mut outputs = String::new();
    let last = loop {
        let message = web.next_of("command_output").await;
        outputs.push_str(message["output"].as_str().unwrap_or(""));
        if message["completed"] == true {
            break message;
        }
        assert_eq!(message["status"], "running");
    };
    assert_eq!(outputs, "part one, part two");
    assert_eq!(
        (last["exitCode"].as_i64(), last["status"].as_str()),
        (Some(3), Some("completed"))
    );

    let db = server.db.clone();
    assert!(
        eventually(|| {
            let (db, id) = (db.clone(), command_id.clone());
            async move {
                commands::Entity::find_by_id(id)
                    .one(&db)
                    .await
                    .expect("q")
                    .is_some_and(|row| row.status == "completed")
            }
        })
        .await
    );
    let server = server.restart().await;
    let row = commands::Entity::find_by_id(command_id)
        .one(&server.db)
        .await
        .expect("q")
        .expect("row after restart");
    assert_eq!(
        (
            row.exit_code,
            row.output.as_str(),
            row.output_bytes,
            row.command.as_str()
        ),
        (Some(3), "part one, part two", 18, "exit 3")
    );
    server.stop().await;
}

#[actix_web::test]
async fn a_viewer_cannot_open_a_terminal_and_the_denial_is_audited() {
    let server = spawn_app().await;
    let (mut agent, machine, _) = online_agent(&server, "locked").await;
    let (viewer_id, token) = user(&server, Role::Viewer, &[(&machine, "view")]).await;
    let mut web = WebClient::connect(&server, &token).await;
    web.send(
        json!({"type":"spawn_terminal","machineId":machine,"cols":80,"rows":24,"requestId":"v1"}),
    )
    .await;
    let error = web.next_of("error").await;
    assert_eq!(
        (error["code"].as_str(), error["requestId"].as_str()),
        (Some("forbidden"), Some("v1"))
    );
    web.send(json!({"type":"execute_command","machineId":machine,"command":"id"}))
        .await;
    assert_eq!(web.next_of("error").await["code"], "forbidden");
    assert!(
        !agent.receives_within(Duration::from_millis(300)).await,
        "nothing was sent to the agent"
    );

    let db = server.db.clone();
    assert!(
        eventually(|| {
            let (db, viewer) = (db.clone(), viewer_id.clone());
            async move {
                audit_log::Entity::find()
                    .filter(audit_log::Column::Action.eq("access.denied"))
                    .filter(audit_log::Column::Actor.eq(viewer))
                    .all(&db)
                    .await
                    .expect("q")
                    .len()
                    == 2
            }
        })
        .await
    );
    server.stop().await;
}

#[actix_web::test]
async fn a_dropped_owner_can_reattach_within_the_grace_period() {
    let server = spawn_app_with(|s| s.limits.reattach_grace_secs = 5).await;
    let (mut agent, machine, _) = online_agent(&server, "re").await;
    let (_, token) = user(&server, Role::Admin, &[]).await;
    let (_, other_token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;
    let (session, session_token) = web.spawn(&machine).await;
    web.drop_connection();
    agent
        .send(
            &json!({"type":"terminal_output","sessionId":session,"output":"kept for you"})
                .to_string(),
        )
        .await;

    let mut stranger = WebClient::connect(&server, &other_token).await;
    stranger
        .send(json!({"type":"attach_terminal","sessionToken":session_token}))
        .await;
    assert_eq!(stranger.next_of("error").await["code"], "forbidden");
    let mut tampered = WebClient::connect(&server, &token).await;
    tampered
        .send(json!({"type":"attach_terminal","sessionToken":format!("{session_token}0")}))
        .await;
    assert_eq!(tampered.next_of("error").await["code"], "unauthenticated");

    let mut again = WebClient::connect(&server, &token).await;
    again
        .send(json!({"type":"attach_terminal","sessionToken":session_token}))
        .await;
    assert_eq!(
        again.next_of("terminal_opened").await["sessionId"],
        session.as_str()
    );
    assert_eq!(
        again.next_of("terminal_output").await["data"],
        "kept for you"
    );

    // Dropped again and not reattached: the session ends after the grace period.
    again.drop_connection();
    let db = server.db.clone();
    assert!(
        eventually(|| {
            let (db, session) = (db.clone(), session.clone());
            async move {
                terminal_sessions::Entity::find_by_id(session)
                    .one(&db)
                    .await
                    .expect("q")
                    .is_some_and(|row| row.close_reason.as_deref() == Some("owner_gone"))
            }
        })
        .await
    );
    let actions = audit_actions(&server).await;
    assert!(
        actions
            .iter()
            .filter(|a| *a == "terminal.attach_refused")
            .count()
            >= 2,
        "{actions:?}"
    );
    server.stop().await;
}

#[actix_web::test]
async fn agent_disconnect_closes_its_terminals() {
    let server = spawn_app().await;
    let (agent, machine, _) = online_agent(&server, "gone").await;
    let (_, token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;
    web.spawn(&machine).await;
    agent.drop_connection();
    assert_eq!(
        web.next_of("terminal_closed").await["reason"],
        "agent_disconnected"
    );
    server.stop().await;
}

#[actix_web::test]
async fn subscribers_get_a_snapshot_and_live_status() {
    let server = spawn_app().await;
    let (agent, machine, _) = online_agent(&server, "live").await;
    let (_, token) = user(&server, Role::Operator, &[(&machine, "view")]).await;
    let (hidden_agent, hidden, _) = online_agent(&server, "hidden").await;
    let mut web = WebClient::connect(&server, &token).await;
    web.send(json!({"type":"subscribe_machines"})).await;
    let snapshot = web.next_of("machine_status").await;
    assert_eq!(
        (snapshot["machineId"].as_str(), snapshot["status"].as_str()),
        (Some(machine.as_str()), Some("online"))
    );
    hidden_agent.drop_connection();
    agent.drop_connection();
    let change = web.next_of("machine_status").await;
    assert_eq!(
        (change["machineId"].as_str(), change["status"].as_str()),
        (Some(machine.as_str()), Some("offline")),
        "the hidden machine {hidden} is never shown"
    );
    server.stop().await;
}

#[actix_web::test]
async fn a_restart_closes_open_sessions_and_interrupts_running_commands() {
    let server = spawn_app().await;
    let (mut agent, machine, _) = online_agent(&server, "restart").await;
    let (_, token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;
    let (session, _) = web.spawn(&machine).await;
    web.send(json!({"type":"execute_command","machineId":machine,"command":"sleep 1000"}))
        .await;
    let command_id = web.next_of("command_started").await["commandId"]
        .as_str()
        .expect("id")
        .to_owned();
    agent.next_of("execute_command").await;

    let server = server.restart().await;
    let row = terminal_sessions::Entity::find_by_id(session)
        .one(&server.db)
        .await
        .expect("q")
        .expect("row");
    assert_eq!(
        row.close_reason.as_deref(),
        Some("server_shutdown"),
        "graceful shutdown records open sessions"
    );
    assert!(row.ended_at.is_some());
    let command = commands::Entity::find_by_id(command_id)
        .one(&server.db)
        .await
        .expect("q")
        .expect("row");
    assert_eq!(
        command.status, "interrupted",
        "a command cut off by the restart is not left running"
    );
    server.stop().await;
}
