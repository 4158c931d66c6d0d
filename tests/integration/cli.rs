//! The `fleetgate` command-line client against a real server and a scripted agent.

use fleetgate_actors::identity::Role;
use serde_json::json;

use crate::agent_client::ScriptedAgent;
use crate::support::{enroll, spawn_app};
use crate::web_client::WebClient;

/// Runs the `fleetgate` binary with `args`, `stdin` and a private config dir.
pub(crate) async fn cli(
    config_dir: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fleetgate"))
        .args(args)
        .env("FLEETGATE_CONFIG_DIR", config_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run fleetgate");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    actix_web::rt::task::spawn_blocking(move || child.wait_with_output().expect("output"))
        .await
        .expect("join")
}

#[actix_web::test]
async fn cli_login_writes_a_private_file_and_exec_returns_the_remote_exit_code() {
    use std::os::unix::fs::PermissionsExt;
    let server = spawn_app().await;
    fleetgate::cli::users::add_user(&server.db, "dave", Role::Admin, "long-password".into())
        .await
        .expect("user");
    let (machine, secret) = enroll(&server, "cli-box").await;
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent.register(&secret, "cli-box").await;
    let config = tempfile::tempdir().expect("tempdir");
    let url = server.http_url("");

    let login = cli(
        config.path(),
        &["login", "--server", &url, "--user", "dave"],
        "long-password\n",
    )
    .await;
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let file = config.path().join("credentials.json");
    assert_eq!(
        std::fs::metadata(&file).expect("file").permissions().mode() & 0o777,
        0o600
    );

    // The scripted agent answers the command with output and exit code 3, and stays connected.
    let responder = actix_web::rt::spawn(async move {
        let execute = agent.next_of("execute_command").await;
        let payload: serde_json::Value =
            serde_json::from_str(execute["data"]["payload"].as_str().expect("payload"))
                .expect("json");
        let id = payload["commandId"].as_str().expect("id").to_owned();
        for (output, completed, code) in [("hello from cli-box\n", false, 0), ("", true, 3)] {
            agent.send(&json!({"type":"command_response","machineId":machine,"commandId":id,"output":output,"exitCode":code,"completed":completed}).to_string()).await;
        }
        (
            agent,
            payload["command"].as_str().expect("command").to_owned(),
        )
    });
    let exec = cli(
        config.path(),
        &["exec", "cli-box", "--timeout", "60", "--", "echo", "hi"],
        "",
    )
    .await;
    assert_eq!(
        exec.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&exec.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&exec.stdout),
        "hello from cli-box\n"
    );
    let (_agent, command) = responder.await.expect("agent");
    assert_eq!(command, "echo hi");

    let machines = cli(config.path(), &["machines", "--json"], "").await;
    let listed: serde_json::Value = serde_json::from_slice(&machines.stdout).expect("json");
    assert_eq!(listed[0]["status"], "online");
    server.stop().await;
}

#[actix_web::test]
async fn cli_shell_attach_replays_what_was_missed_after_a_drop() {
    let server = spawn_app().await;
    let erin =
        fleetgate::cli::users::add_user(&server.db, "erin", Role::Admin, "long-password".into())
            .await
            .expect("user");
    let (machine, secret) = enroll(&server, "attach-box").await;
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent.register(&secret, "attach-box").await;
    let config = tempfile::tempdir().expect("tempdir");
    let url = server.http_url("");
    let login = cli(
        config.path(),
        &["login", "--server", &url, "--user", "erin"],
        "long-password\n",
    )
    .await;
    assert!(login.status.success());

    // A shell of this user whose connection dies after it has seen the first output.
    let (token, _) = server
        .jwt
        .issue(&erin.id.to_string(), Role::Admin, None)
        .expect("token");
    let mut web = WebClient::connect(&server, &token).await;
    let (session, session_token) = web.spawn(&machine).await;
    let say = |text: &str| {
        format!(
            "{}\n",
            json!({"type":"terminal_output","sessionId":session,"output":text})
        )
    };
    agent.send(&say("seen-before\r\n")).await;
    let first = web.next_of("terminal_output").await;
    let offset = first["offset"].as_u64().expect("offset") + "seen-before\r\n".len() as u64;
    web.reset_connection();
    agent.send(&say("missed-while-away\r\n")).await;
    let saved = json!({"sessionId": session, "sessionToken": session_token, "offset": offset});
    let sessions = config.path().join("sessions");
    std::fs::create_dir_all(&sessions).expect("dir");
    std::fs::write(sessions.join(format!("{session}.json")), saved.to_string()).expect("file");

    let attach = cli(config.path(), &["shell", "--attach", &session], "").await;
    let stdout = String::from_utf8_lossy(&attach.stdout);
    assert!(
        attach.status.success(),
        "{}",
        String::from_utf8_lossy(&attach.stderr)
    );
    assert_eq!(
        stdout, "missed-while-away\r\n",
        "the missed output, once, nothing seen before"
    );
    assert!(
        !sessions.join(format!("{session}.json")).exists(),
        "a closed session is forgotten"
    );
    server.stop().await;
}
