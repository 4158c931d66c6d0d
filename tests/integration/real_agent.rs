//! fleetgate's own agent against the real server in-process: register, heartbeats, a real PTY,
//! commands with exit codes and long output.

use std::time::Duration;

use fleetgate_actors::identity::Role;
use fleetgate_agent::connection::{AgentConfig, run_once};
use fleetgate_entity::metrics;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;

use crate::support::{enroll, eventually, spawn_app};
use crate::web_client::{WebClient, user};

/// Starts fleetgate's agent for `machine`'s secret on its own runtime, as in its own process.
fn start_agent(server: &crate::support::TestServer, secret: String) {
    run_agent_thread(AgentConfig {
        server: server.ws_url("/ws/agent"),
        secret,
        heartbeat: Duration::from_millis(300),
        command_timeout: Duration::from_secs(30),
        ca_file: None,
        pin_sha256: None,
    });
}

/// Runs fleetgate's agent with `config` on a runtime of its own, as in its own process.
pub(crate) fn run_agent_thread(config: AgentConfig) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        if let Err(err) = runtime.block_on(run_once(&config)) {
            eprintln!("agent stopped: {err:#}");
        }
    });
}

/// Waits until the agent's heartbeats are stored.
async fn wait_for_heartbeats(server: &crate::support::TestServer) {
    let db = server.db.clone();
    assert!(
        eventually(|| {
            let db = db.clone();
            async move { metrics::Entity::find().count(&db).await.expect("count") >= 2 }
        })
        .await,
        "heartbeat rows appear"
    );
}

#[actix_web::test]
async fn the_agent_serves_terminals_and_commands() {
    let server = spawn_app().await;
    let (machine, secret) = enroll(&server, "real").await;
    start_agent(&server, secret);
    wait_for_heartbeats(&server).await;

    let (_, token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;

    // A real shell in a real PTY.
    let (session, _) = web.spawn(&machine).await;
    web.send(json!({"type":"terminal_input","sessionId":session,"data":"echo hel''lo\r"}))
        .await;
    let mut seen = String::new();
    while !seen.contains("hello") {
        seen.push_str(
            web.next_of("terminal_output").await["data"]
                .as_str()
                .unwrap_or(""),
        );
    }
    web.send(json!({"type":"terminal_resize","sessionId":session,"cols":132,"rows":43}))
        .await;
    web.send(json!({"type":"terminal_input","sessionId":session,"data":"stty size\r"}))
        .await;
    while !seen.contains("43 132") {
        seen.push_str(
            web.next_of("terminal_output").await["data"]
                .as_str()
                .unwrap_or(""),
        );
    }
    web.send(json!({"type":"terminal_input","sessionId":session,"data":"exit\r"}))
        .await;
    assert_eq!(
        web.next_of("terminal_closed").await["reason"],
        "shell_exited",
        "terminal_exit capability in use"
    );

    // A command's exit code, and long output complete and in order.
    web.send(json!({"type":"execute_command","machineId":machine,"command":"exit 3"}))
        .await;
    let done = loop {
        let out = web.next_of("command_output").await;
        if out["completed"] == true {
            break out;
        }
    };
    assert_eq!(done["exitCode"], 3);
    web.send(json!({"type":"execute_command","machineId":machine,"command":"seq 1 20000"}))
        .await;
    let mut output = String::new();
    loop {
        let out = web.next_of("command_output").await;
        output.push_str(out["output"].as_str().unwrap_or(""));
        if out["completed"] == true {
            assert_eq!(out["exitCode"], 0);
            break;
        }
    }
    let expected: String = (1..=20000).map(|n| format!("{n}\n")).collect();
    assert_eq!(output.len(), expected.len());
    assert!(
        output == expected,
        "long output arrives complete and in order"
    );
    server.stop().await;
}

#[actix_web::test]
async fn flow_control_holds_the_shell_back_for_a_reader_that_pauses() {
    let server = spawn_app().await;
    let (machine, secret) = enroll(&server, "flow").await;
    start_agent(&server, secret);
    wait_for_heartbeats(&server).await;
    let (_, token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;
    let (session, _) = web.spawn(&machine).await;

    // 20 MB of output, far more than the server's 1 MiB per-session buffer and the sockets'
    // buffers; the reader looks away for two seconds first.
    const BYTES: usize = 20_000_000;
    web.send(json!({"type":"terminal_input","sessionId":session,
        "data":format!("stty -echo; head -c {BYTES} /dev/zero | tr '\\0' '\\132'; echo; echo DONE$((6*7))\r")}))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Counted as 'Z' (octal 132 for tr), a letter the command line itself does not contain.
    let mut xs = 0usize;
    let mut tail = String::new();
    loop {
        let event = web.next().await.expect("socket open");
        match event["type"].as_str() {
            Some("output_dropped") => panic!("output was dropped: {event}"),
            Some("terminal_output") => {
                let data = event["data"].as_str().unwrap_or("");
                xs += data.bytes().filter(|b| *b == b'Z').count();
                tail.push_str(data);
                if tail.contains("DONE42") {
                    break;
                }
                let keep = tail.len().saturating_sub(16);
                let keep = (keep..=tail.len())
                    .find(|i| tail.is_char_boundary(*i))
                    .unwrap_or(0);
                tail.drain(..keep);
            }
            _ => {}
        }
    }
    assert_eq!(xs, BYTES, "every byte arrived, none dropped");
    server.stop().await;
}
