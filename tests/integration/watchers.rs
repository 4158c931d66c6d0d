//! Watching live terminals end to end: an auditor with the `observe` grant watches an
//! operator's shell through the real server and a scripted agent; the CLI's `shell --watch`.

use fleetgate_actors::identity::Role;
use serde_json::json;

use crate::api_client::call;
use crate::cli::cli;
use crate::fixtures::{audit_actions, online_agent};
use crate::support::{eventually, spawn_app};
use crate::web_client::{WebClient, user};

fn output(session: &str, text: &str) -> String {
    format!(
        "{}\n",
        json!({"type":"terminal_output","sessionId":session,"output":text})
    )
}

fn listed(page: &serde_json::Value, session: &str) -> bool {
    page["items"]
        .as_array()
        .is_some_and(|items| items.iter().any(|s| s["id"] == session))
}

#[actix_web::test]
async fn an_auditor_with_observe_watches_a_live_shell_read_only() {
    let server = spawn_app().await;
    let (mut agent, machine, _) = online_agent(&server, "watched-box").await;
    let (_, owner_token) = user(&server, Role::Operator, &[(&machine, "terminal")]).await;
    let (auditor_id, auditor_token) = user(&server, Role::Viewer, &[(&machine, "observe")]).await;
    let (_, other_token) = user(&server, Role::Operator, &[(&machine, "terminal")]).await;
    let mut owner = WebClient::connect(&server, &owner_token).await;
    let (session, _) = owner.spawn(&machine).await;
    agent.send(&output(&session, "before\r\n")).await;
    assert_eq!(owner.next_of("terminal_output").await["data"], "before\r\n");

    // The auditor finds the session to watch; an operator without `observe` sees only theirs.
    let open_here = format!("/sessions?machine={machine}&active=true");
    let (status, page) = call(&server, "GET", &open_here, Some(&auditor_token), None).await;
    assert!(status == 200 && listed(&page, &session), "{status} {page}");
    let (_, page) = call(&server, "GET", &open_here, Some(&other_token), None).await;
    assert!(!listed(&page, &session));

    let mut auditor = WebClient::connect(&server, &auditor_token).await;
    auditor
        .send(json!({"type":"watch_terminal","sessionId":session}))
        .await;
    let watching = auditor.next_of("terminal_watching").await;
    assert_eq!(watching["machineId"], machine.as_str());
    assert_eq!(
        auditor.next_of("terminal_output").await["data"],
        "before\r\n"
    );
    let joined = owner.next_of("watcher_joined").await;
    assert_eq!(joined["userId"], auditor_id.as_str());

    // The auditor's keystrokes are refused; the owner's reach the agent, and only they do.
    auditor
        .send(json!({"type":"terminal_input","sessionId":session,"data":"shutdown now\r"}))
        .await;
    assert_eq!(auditor.next_of("error").await["code"], "forbidden");
    owner
        .send(json!({"type":"terminal_input","sessionId":session,"data":"uptime\r"}))
        .await;
    let stdin = agent.next_of("terminal_stdin").await;
    assert!(
        stdin["data"]["payload"]
            .as_str()
            .is_some_and(|p| p.contains("uptime")),
        "the first keystrokes the agent got are the owner's: {stdin}"
    );
    agent.send(&output(&session, "live\r\n")).await;
    assert_eq!(auditor.next_of("terminal_output").await["data"], "live\r\n");
    assert_eq!(owner.next_of("terminal_output").await["data"], "live\r\n");

    // Another operator without `observe` is refused.
    let mut other = WebClient::connect(&server, &other_token).await;
    other
        .send(json!({"type":"watch_terminal","sessionId":session}))
        .await;
    assert_eq!(other.next_of("error").await["code"], "forbidden");

    // The owner's socket goes: the watch ends with a reason.
    owner.drop_connection();
    let ended = auditor.next_of("watch_ended").await;
    assert_eq!(ended["reason"], "owner_disconnected");
    assert!(
        eventually(|| async {
            let actions = audit_actions(&server).await;
            ["terminal.watch", "terminal.unwatch", "access.denied"]
                .iter()
                .all(|a| actions.iter().any(|x| x == a))
        })
        .await
    );
    server.stop().await;
}

#[actix_web::test]
async fn cli_shell_watch_prints_the_live_output_until_the_session_closes() {
    let server = spawn_app().await;
    let (mut agent, machine, _) = online_agent(&server, "watch-cli-box").await;
    fleetgate::cli::users::add_user(&server.db, "ivy", Role::Admin, "long-password".into())
        .await
        .expect("user");
    let config = tempfile::tempdir().expect("tempdir");
    let url = server.http_url("");
    let login = cli(
        config.path(),
        &["login", "--server", &url, "--user", "ivy"],
        "long-password\n",
    )
    .await;
    assert!(login.status.success());
    let (_, owner_token) = user(&server, Role::Operator, &[(&machine, "terminal")]).await;
    let mut owner = WebClient::connect(&server, &owner_token).await;
    let (session, _) = owner.spawn(&machine).await;

    let listed = cli(config.path(), &["sessions", &machine, "--json"], "").await;
    let sessions: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert!(
        sessions
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["id"] == session.as_str())),
        "{sessions}"
    );

    let (dir, watched) = (config.path().to_owned(), session.clone());
    let watcher =
        actix_web::rt::spawn(async move { cli(&dir, &["shell", "--watch", &watched], "").await });
    owner.next_of("watcher_joined").await;
    agent.send(&output(&session, "watched-output\r\n")).await;
    assert_eq!(
        owner.next_of("terminal_output").await["data"],
        "watched-output\r\n"
    );
    owner
        .send(json!({"type":"close_terminal","sessionId":session}))
        .await;
    let finished = watcher.await.expect("cli ran");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&finished.stdout),
        String::from_utf8_lossy(&finished.stderr),
    );
    assert!(finished.status.success(), "{stderr}");
    assert!(stdout.contains("watched-output"), "{stdout}");
    assert!(stderr.contains("session closed: closed"), "{stderr}");
    server.stop().await;
}
