//! Commands, authorisation denials, restarts and live status end to end.

use std::time::Duration;

use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::envelope::SignedKind;
use fleetgate_actors::protocol::nonce::NonceCache;
use fleetgate_actors::protocol::{CommandId, SessionId};
use fleetgate_entity::{audit_log, commands, terminal_sessions};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::fixtures::{online_agent, verified};
use crate::support::{eventually, spawn_app};
use crate::web_client::{WebClient, user};

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
                commands::Entity::find_by_id(CommandId::parse(&id).expect("command id"))
                    .one(&db)
                    .await
                    .expect("q")
                    .is_some_and(|row| row.status == "completed")
            }
        })
        .await
    );
    let server = server.restart().await;
    let row = commands::Entity::find_by_id(CommandId::parse(&command_id).expect("command id"))
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
    let row =
        terminal_sessions::Entity::find_by_id(SessionId::parse(&session).expect("session id"))
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
    let command = commands::Entity::find_by_id(CommandId::parse(&command_id).expect("command id"))
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
