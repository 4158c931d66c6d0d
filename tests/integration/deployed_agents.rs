//! What deployed (protocol v1) agents do that the server must survive without losing anything:
//! fragmented messages, resizes dropped before the shell exists, abrupt closes, owner drops.

use std::time::Duration;

use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::CommandId;
use fleetgate_actors::protocol::nonce::NonceCache;
use fleetgate_entity::{commands, ports};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use crate::agent_client::ScriptedAgent;
use crate::fixtures::{online_agent, verified};
use crate::support::{eventually, spawn_app, spawn_app_with};
use crate::web_client::{WebClient, user};

/// Starts a command from `web` and returns its id as the agent saw it.
async fn start_command(web: &mut WebClient, agent: &mut ScriptedAgent, machine: &str) -> String {
    web.send(json!({"type":"execute_command","machineId":machine,"command":"seq 1 2000"}))
        .await;
    let execute = agent.next_of("execute_command").await;
    let payload: serde_json::Value =
        serde_json::from_str(execute["data"]["payload"].as_str().expect("payload"))
            .expect("payload json");
    web.next_of("command_started").await;
    payload["commandId"].as_str().expect("commandId").to_owned()
}

fn command_response(machine: &str, command_id: &str, output: &str, completed: bool) -> String {
    let code = if completed { 7 } else { 0 };
    format!(
        "{}\n",
        json!({"type":"command_response","machineId":machine,"commandId":command_id,
               "output":output,"exitCode":code,"completed":completed})
    )
}

/// Reads `command_output` until the completed one; returns (all output, exit code).
async fn command_result(web: &mut WebClient) -> (String, Option<i64>) {
    let mut output = String::new();
    loop {
        let message = web.next_of("command_output").await;
        output.push_str(message["output"].as_str().unwrap_or(""));
        if message["completed"] == true {
            return (output, message["exitCode"].as_i64());
        }
    }
}

async fn stored_command(server: &crate::support::TestServer, id: &str) -> Option<commands::Model> {
    commands::Entity::find_by_id(CommandId::parse(id).expect("command id"))
        .one(&server.db)
        .await
        .expect("query")
}

#[actix_web::test]
async fn fragmented_agent_messages_are_delivered_and_stored_exactly_once() {
    let server = spawn_app().await;
    let (mut agent, machine, _) = online_agent(&server, "fragments").await;
    let (_, token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;

    // A 6,000-byte command_response in 2 fragments.
    let command_id = start_command(&mut web, &mut agent, &machine).await;
    let big = "0123456789".repeat(600);
    agent
        .send_fragmented(
            &command_response(&machine, &command_id, &big, false),
            2,
            None,
        )
        .await;
    agent
        .send(&command_response(&machine, &command_id, "", true))
        .await;
    let (output, exit_code) = command_result(&mut web).await;
    assert_eq!(output, big);
    assert_eq!(exit_code, Some(7));

    // A 12,000-byte terminal_output in 3 fragments.
    let (session, _) = web.spawn(&machine).await;
    let screen = "abcdefghij".repeat(1200);
    let frame = format!(
        "{}\n",
        json!({"type":"terminal_output","sessionId":session,"output":screen})
    );
    agent.send_fragmented(&frame, 3, None).await;
    let mut seen = String::new();
    while seen.len() < screen.len() {
        seen.push_str(
            web.next_of("terminal_output").await["data"]
                .as_str()
                .unwrap_or(""),
        );
    }
    assert_eq!(seen, screen, "delivered once, whole");

    // A heartbeat with 150 ports in 40 fragments, with a ping between two of them.
    let port_list: Vec<serde_json::Value> = (1000..1150)
        .map(|p| json!({"port":p,"proto":"tcp","service":"svc","state":"LISTEN"}))
        .collect();
    let heartbeat = format!(
        "{}\n",
        json!({"type":"heartbeat","machineId":machine,"metrics":{"cpuUsage":3.0},"ports":port_list})
    );
    agent.send_fragmented(&heartbeat, 40, Some(17)).await;
    let uuid = Uuid::parse_str(&machine).expect("uuid");
    let db = server.db.clone();
    let stored = eventually(|| {
        let db = db.clone();
        async move {
            ports::Entity::find()
                .filter(ports::Column::MachineId.eq(uuid))
                .count(&db)
                .await
                .expect("count")
                == 150
        }
    })
    .await;
    assert!(stored, "all 150 ports stored");
    let row = stored_command(&server, &command_id).await.expect("row");
    assert_eq!(row.output.len(), 6000);
    server.stop().await;
}

#[actix_web::test]
async fn fragments_past_the_limit_close_with_1009_and_others_are_still_served() {
    let server = spawn_app_with(|settings| settings.limits.agent_frame_bytes = 8 * 1024).await;
    let (mut agent, machine, _) = online_agent(&server, "too-big").await;
    let (mut other, other_machine, _) = online_agent(&server, "bystander").await;
    let (_, token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;
    let command_id = start_command(&mut web, &mut agent, &machine).await;

    // Three fragments of ~4 KiB: each is within the limit, the message is not.
    let huge = "x".repeat(12 * 1024);
    agent
        .send_fragmented(
            &command_response(&machine, &command_id, &huge, true),
            3,
            None,
        )
        .await;
    assert_eq!(agent.close_code().await, Some(1009));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let row = stored_command(&server, &command_id).await.expect("row");
    assert_ne!(
        row.status, "completed",
        "nothing of the refused message is stored"
    );

    let other_command = start_command(&mut web, &mut other, &other_machine).await;
    other
        .send(&command_response(
            &other_machine,
            &other_command,
            "fine",
            true,
        ))
        .await;
    assert_eq!(command_result(&mut web).await, ("fine".into(), Some(7)));
    server.stop().await;
}

#[actix_web::test]
async fn frames_sent_right_before_the_agent_vanishes_are_delivered_and_stored() {
    let server = spawn_app().await;
    let (mut agent, machine, _) = online_agent(&server, "vanishing").await;
    let (_, token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;
    let command_id = start_command(&mut web, &mut agent, &machine).await;

    agent
        .send(&command_response(
            &machine,
            &command_id,
            "last words\n",
            false,
        ))
        .await;
    agent
        .send(&command_response(&machine, &command_id, "", true))
        .await;
    agent.drop_connection();

    assert_eq!(
        command_result(&mut web).await,
        ("last words\n".into(), Some(7))
    );
    let finished = eventually(|| async {
        stored_command(&server, &command_id)
            .await
            .is_some_and(|row| row.status == "completed" && row.exit_code == Some(7))
    })
    .await;
    assert!(finished, "stored as completed with its exit code");
    server.stop().await;
}

#[actix_web::test]
async fn a_v1_agent_that_drops_early_resizes_still_gets_the_requested_size() {
    let server = spawn_app().await;
    let (mut agent, machine, secret) = online_agent(&server, "v1-race").await;
    let (_, token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;
    let mut nonces = NonceCache::new(64);

    web.send(json!({"type":"spawn_terminal","machineId":machine,"cols":132,"rows":43}))
        .await;
    let session = agent.next_of("spawn_shell").await["data"]["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_owned();
    // Like a v1 agent: the shell is registered 100 ms after spawn_shell; a resize handled
    // before that finds no shell and is dropped.
    let registered_at = tokio::time::Instant::now() + Duration::from_millis(100);
    let mut size = (80u16, 24u16);
    while tokio::time::Instant::now() < registered_at {
        let wait = registered_at - tokio::time::Instant::now();
        if let Ok(Some(frame)) = tokio::time::timeout(wait, agent.next_json()).await {
            assert_ne!(frame["type"], "terminal_stdin");
        }
    }
    agent
        .send(&format!(
            "{}\n",
            json!({"type":"terminal_output","sessionId":session,"output":"$ "})
        ))
        .await;
    web.next_of("terminal_opened").await;
    // The operator types once the prompt is there.
    assert_eq!(web.next_of("terminal_output").await["data"], "$ ");
    web.send(json!({"type":"terminal_input","sessionId":session,"data":"stty size\r"}))
        .await;
    loop {
        let frame = agent.next_json().await.expect("agent socket open");
        let (_, payload) = match frame["type"].as_str() {
            Some("terminal_resize" | "terminal_stdin") => verified(&frame, &secret, &mut nonces),
            _ => continue,
        };
        let payload: serde_json::Value = serde_json::from_str(&payload).expect("payload");
        if frame["type"] == "terminal_resize" {
            size = (
                payload["cols"].as_u64().expect("cols") as u16,
                payload["rows"].as_u64().expect("rows") as u16,
            );
        } else if payload["data"] == "stty size\r" {
            let reply = format!("{} {}\r\n", size.1, size.0);
            agent
                .send(&format!(
                    "{}\n",
                    json!({"type":"terminal_output","sessionId":session,"output":reply})
                ))
                .await;
            break;
        }
    }
    let reply = web.next_of("terminal_output").await;
    assert_eq!(reply["data"], "43 132\r\n", "stty sees the requested size");
    server.stop().await;
}

/// Output of a terminal as the client rebuilds it: data placed at its offset; a drop notice
/// is recorded as a gap.
#[derive(Default)]
struct ClientScreen {
    bytes: String,
    gaps: u64,
}

impl ClientScreen {
    /// Takes one event; returns false for events that are not output.
    fn take(&mut self, event: &serde_json::Value) -> bool {
        match event["type"].as_str() {
            Some("terminal_output") => {
                let offset = event["offset"].as_u64().expect("offset") as usize;
                let data = event["data"].as_str().expect("data");
                assert!(
                    offset <= self.bytes.len() + self.gaps as usize,
                    "output never skips ahead silently"
                );
                let known = self.bytes.len() + self.gaps as usize;
                let fresh = &data[known.saturating_sub(offset).min(data.len())..];
                self.bytes.push_str(fresh);
                true
            }
            Some("output_dropped") => {
                self.gaps += event["bytes"].as_u64().expect("bytes");
                true
            }
            _ => false,
        }
    }

    fn seen(&self) -> u64 {
        self.bytes.len() as u64 + self.gaps
    }
}

#[actix_web::test]
async fn an_owner_that_vanishes_mid_stream_reattaches_from_its_offset_and_misses_nothing() {
    let server = spawn_app().await;
    let (mut agent, machine, _) = online_agent(&server, "replay").await;
    let (_, token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;
    let (session, session_token) = web.spawn(&machine).await;

    let lines: Vec<String> = (0..400)
        .map(|i| format!("line {i:05} {}\r\n", "=".repeat(80)))
        .collect();
    let expected: String = lines.concat();
    let mut screen = ClientScreen::default();
    let send_lines = |range: std::ops::Range<usize>| {
        range
            .map(|i| {
                format!(
                    "{}\n",
                    json!({"type":"terminal_output","sessionId":session,"output":lines[i]})
                )
            })
            .collect::<Vec<_>>()
    };
    for frame in send_lines(0..200) {
        agent.send(&frame).await;
    }
    // Read some of it, then the socket dies without a word while output keeps flowing.
    while screen.seen() < 3000 {
        let event = web.next().await.expect("open");
        screen.take(&event);
    }
    web.reset_connection();
    for frame in send_lines(200..400) {
        agent.send(&frame).await;
    }

    let mut again = WebClient::connect(&server, &token).await;
    again
        .send(json!({"type":"attach_terminal","sessionToken":session_token,"offset":screen.seen()}))
        .await;
    while screen.seen() < expected.len() as u64 {
        let event = again.next().await.expect("open");
        if event["type"] == "error" {
            panic!("attach refused: {event}");
        }
        screen.take(&event);
    }
    assert_eq!(screen.gaps, 0, "the replay window covered the drop");
    assert_eq!(screen.bytes, expected, "complete and in order");
    let _ = session;
    server.stop().await;
}

#[actix_web::test]
async fn fragmented_operator_messages_are_reassembled_too() {
    let server = spawn_app().await;
    let (mut agent, machine, secret) = online_agent(&server, "web-fragments").await;
    let (_, token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;
    let (session, _) = web.spawn(&machine).await;
    let paste = "echo fragmented paste; ".repeat(400);
    web.send_fragmented(
        json!({"type":"terminal_input","sessionId":session,"data":paste}),
        4,
    )
    .await;
    let stdin = agent.next_of("terminal_stdin").await;
    let (_, payload) = verified(&stdin, &secret, &mut NonceCache::new(16));
    let payload: serde_json::Value = serde_json::from_str(&payload).expect("payload");
    assert_eq!(
        payload["data"],
        paste.as_str(),
        "one paste, one terminal_stdin"
    );
    server.stop().await;
}
