//! WebSession message-level tests: one operator socket wired to probe actors standing in for
//! the Registry, the access repository, the audit trail and the user directory
//! (`common/web_harness.rs`).

mod common;

use common::server_frames::Reply;
use common::web_harness::{MACHINE, USER, start};
use common::{entries, until};
use fleetgate_actors::repo::access::AccessError;
use fleetgate_actors::user_directory::RevokeSocket;

#[actix::test]
async fn hello_comes_first_and_the_socket_is_watched_for_user_changes() {
    let mut h = start(true, Ok(()));
    let hello = h.next_of("hello").await;
    assert_eq!(
        (hello["userId"].as_str(), hello["role"].as_str()),
        (Some(USER), Some("operator"))
    );
    assert!(until(|| entries(&h.watched).len() == 1).await);
    assert_eq!(entries(&h.watched)[0].user_id.to_string(), USER);
}

#[actix::test]
async fn spawn_terminal_is_checked_audited_then_opened_through_the_link() {
    let mut h = start(true, Ok(()));
    h.send(serde_json::json!({"type":"spawn_terminal","machineId":MACHINE,"cols":100,"rows":30,"requestId":"r1"}));
    let opened = h.next_of("terminal_opened").await;
    assert_eq!(opened["requestId"], "r1");
    let session = opened["sessionId"].as_str().expect("sessionId").to_owned();
    assert!(
        h.audited("terminal.open"),
        "audited before the shell was spawned"
    );
    let spawned = entries(&h.agent_frames);
    assert!(spawned[0].frame.contains("spawn_shell") && spawned[0].frame.contains(&session));
    assert_eq!(entries(&h.routed_terminals), vec![session]);
}

#[actix::test]
async fn a_refused_check_reaches_no_agent_and_is_audited() {
    let mut h = start(true, Err(AccessError::Forbidden));
    h.send(serde_json::json!({"type":"execute_command","machineId":MACHINE,"command":"id"}));
    assert_eq!(h.next_of("error").await["code"], "forbidden");
    assert!(until(|| h.audited("access.denied")).await);
    assert!(entries(&h.asked_links).is_empty(), "no link was asked for");
    assert!(entries(&h.agent_frames).is_empty());
}

#[actix::test]
async fn an_offline_machine_is_reported_and_nothing_is_audited_as_run() {
    let mut h = start(false, Ok(()));
    h.send(serde_json::json!({"type":"execute_command","machineId":MACHINE,"command":"id"}));
    assert_eq!(h.next_of("error").await["code"], "machine_offline");
    assert!(!h.audited("command.run"));
    assert!(entries(&h.routed_commands).is_empty());
}

#[actix::test]
async fn a_command_is_audited_routed_and_sent_signed() {
    let mut h = start(true, Ok(()));
    h.send(serde_json::json!({"type":"execute_command","machineId":MACHINE,"command":"uptime"}));
    let started = h.next_of("command_started").await;
    let command_id = started["commandId"].as_str().expect("commandId").to_owned();
    assert!(h.audited("command.run"));
    assert!(until(|| entries(&h.routed_commands) == vec![command_id.clone()]).await);
    assert!(
        until(|| entries(&h.agent_frames)
            .iter()
            .any(|f| f.frame.contains("execute_command")))
        .await
    );
}

#[actix::test]
async fn a_revoked_socket_is_told_closed_with_4403_and_unwatched() {
    let mut h = start(true, Ok(()));
    h.next_of("hello").await;
    h.session.do_send(RevokeSocket {
        reason: "user disabled",
    });
    assert_eq!(h.next_of("error").await["code"], "forbidden");
    assert_eq!(h.reply().await, Reply::Close(Some(4403)));
    assert!(until(|| entries(&h.unwatched).len() == 1).await);
    assert!(until(|| h.audited("ws.revoked")).await);
}

#[actix::test]
async fn a_bad_frame_is_refused_and_reported_with_the_peer_address() {
    let mut h = start(true, Ok(()));
    h.send(serde_json::json!({"type":"no_such_request"}));
    assert_eq!(h.next_of("error").await["code"], "unknown_type");
    assert!(
        until(|| entries(&h.audits).iter().any(
            |a| a.action == "security.bad_frame" && a.source_ip.as_deref() == Some("192.0.2.7")
        ))
        .await
    );
}
