//! Watching a live session through WebSession: two operator sockets on one fake server (probe
//! Registry, access answers, audit), a real TerminalSession between them and a probe agent.

mod common;

use std::time::Duration;

use actix::Addr;
use common::web_harness::{FakeServer, Harness, USER, start_on};
use common::{entries, until};
use fleetgate_actors::protocol::UserId;
use fleetgate_actors::repo::access::AccessError;
use fleetgate_actors::terminal::TerminalEvent;
use serde_json::json;

const WATCHER: &str = "7d3e2f1a-5b6c-4d7e-8f90-a1b2c3d4e5f6";
const MACHINE: &str = common::web_harness::MACHINE;

struct Scene {
    server: FakeServer,
    owner: Harness,
    watcher: Harness,
    session_id: String,
    _address: Addr<FakeServer>,
}

/// The owner opens a terminal; a second user's socket is ready to watch it, with `observe`
/// answered as given.
async fn scene(observe: Result<(), AccessError>) -> Scene {
    let server = FakeServer::new(true, Ok(()), observe);
    let address = actix::Actor::start(server.clone());
    let mut owner = start_on(&server, &address, UserId::parse(USER).expect("uuid"));
    let watcher = start_on(&server, &address, UserId::parse(WATCHER).expect("uuid"));
    owner.send(json!({"type":"spawn_terminal","machineId":MACHINE,"cols":120,"rows":40}));
    let opened = owner.next_of("terminal_opened").await;
    let session_id = opened["sessionId"].as_str().expect("id").to_owned();
    Scene {
        server,
        owner,
        watcher,
        session_id,
        _address: address,
    }
}

impl Scene {
    /// Output from the agent for the session.
    fn agent_output(&self, text: &str) {
        let routes = entries(&self.server.routes);
        routes[0].3.do_send(TerminalEvent::Output(text.into()));
    }

    async fn watch(&mut self) -> serde_json::Value {
        self.watcher
            .send(json!({"type":"watch_terminal","sessionId":self.session_id,"requestId":"w1"}));
        self.watcher.next_of("terminal_watching").await
    }

    fn agent_got(&self, needle: &str) -> bool {
        entries(&self.server.agent_frames)
            .iter()
            .any(|f| f.frame.contains(needle))
    }
}

#[actix::test]
async fn a_watcher_with_observe_sees_the_output_and_the_owner_sees_the_watcher() {
    let mut s = scene(Ok(())).await;
    s.agent_output("before\r\n");
    let watching = s.watch().await;
    assert_eq!(watching["requestId"], "w1");
    assert_eq!(
        (watching["cols"].as_u64(), watching["rows"].as_u64()),
        (Some(120), Some(40))
    );
    assert_eq!(watching["ownerId"], USER);
    assert!(
        s.watcher.audited("terminal.watch"),
        "audited before joining"
    );
    let recent = s.watcher.next_of("terminal_output").await;
    assert_eq!(recent["data"], "before\r\n");
    s.agent_output("after\r\n");
    assert_eq!(
        s.watcher.next_of("terminal_output").await["data"],
        "after\r\n"
    );
    let joined = s.owner.next_of("watcher_joined").await;
    assert_eq!(joined["userId"], WATCHER);
    assert_eq!(joined["watcherId"], watching["watcherId"]);
}

#[actix::test]
async fn a_watchers_input_is_refused_and_reaches_nobody() {
    let mut s = scene(Ok(())).await;
    s.watch().await;
    for frame in [
        json!({"type":"terminal_input","sessionId":s.session_id,"data":"reboot\r","requestId":"i1"}),
        json!({"type":"terminal_resize","sessionId":s.session_id,"cols":10,"rows":10}),
        json!({"type":"close_terminal","sessionId":s.session_id}),
    ] {
        s.watcher.send(frame);
        let refused = s.watcher.next_of("error").await;
        assert_eq!(refused["code"], "forbidden");
    }
    assert!(until(|| s.watcher.audited("security.watcher_input_refused")).await);
    s.owner
        .send(json!({"type":"terminal_input","sessionId":s.session_id,"data":"uptime\r"}));
    assert!(until(|| s.agent_got("uptime")).await);
    assert!(
        !s.agent_got("reboot") && !s.agent_got(r#"\"cols\":10"#),
        "nothing the watcher sent reached the agent"
    );
    s.agent_output("still open\r\n");
    assert_eq!(
        s.watcher.next_of("terminal_output").await["data"],
        "still open\r\n"
    );
}

#[actix::test]
async fn without_observe_the_watch_is_refused_audited_and_the_owner_sees_nothing() {
    let mut s = scene(Err(AccessError::Forbidden)).await;
    s.watcher
        .send(json!({"type":"watch_terminal","sessionId":s.session_id,"requestId":"w1"}));
    let refused = s.watcher.next_of("error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["requestId"].as_str()),
        (Some("forbidden"), Some("w1"))
    );
    assert!(until(|| s.watcher.audited("access.denied")).await);
    assert!(!s.watcher.audited("terminal.watch"));
    s.agent_output("secret\r\n");
    let owner_saw = s.owner.next_of("terminal_output").await;
    assert_eq!(owner_saw["data"], "secret\r\n");
    let watcher_saw = tokio::time::timeout(
        Duration::from_millis(300),
        s.watcher.next_of("terminal_output"),
    )
    .await;
    assert!(watcher_saw.is_err(), "no output for a refused watcher");
}

#[actix::test]
async fn an_unknown_session_cannot_be_watched() {
    let mut s = scene(Ok(())).await;
    s.watcher
        .send(json!({"type":"watch_terminal","sessionId":"00000000000000000000000000000000"}));
    assert_eq!(s.watcher.next_of("error").await["code"], "unknown_session");
}

#[actix::test]
async fn the_owners_socket_closing_ends_the_watch_with_a_reason() {
    let mut s = scene(Ok(())).await;
    s.watch().await;
    drop(s.owner);
    let ended = s.watcher.next_of("watch_ended").await;
    assert_eq!(ended["reason"], "owner_disconnected");
    assert_eq!(ended["sessionId"], s.session_id.as_str());
}

#[actix::test]
async fn the_owner_removes_a_watcher_through_the_socket() {
    let mut s = scene(Ok(())).await;
    let watching = s.watch().await;
    s.owner.send(
        json!({"type":"remove_watcher","sessionId":s.session_id,"watcherId":watching["watcherId"]}),
    );
    assert_eq!(s.watcher.next_of("watch_ended").await["reason"], "removed");
    assert_eq!(s.owner.next_of("watcher_left").await["reason"], "removed");
    s.watcher
        .send(json!({"type":"terminal_input","sessionId":s.session_id,"data":"x"}));
    assert_eq!(
        s.watcher.next_of("error").await["code"],
        "unknown_session",
        "no longer watching"
    );
}

#[actix::test]
async fn a_watcher_leaving_or_disconnecting_is_told_to_the_owner() {
    let mut s = scene(Ok(())).await;
    s.watch().await;
    s.watcher
        .send(json!({"type":"unwatch_terminal","sessionId":s.session_id}));
    assert_eq!(s.watcher.next_of("watch_ended").await["reason"], "left");
    assert_eq!(s.owner.next_of("watcher_left").await["reason"], "left");
    s.watch().await;
    drop(s.watcher);
    assert_eq!(
        s.owner.next_of("watcher_left").await["reason"],
        "disconnected"
    );
}

#[actix::test]
async fn a_watcher_the_owner_lets_type_reaches_the_agent_until_taken_back() {
    let mut s = scene(Ok(())).await;
    let watching = s.watch().await;
    let hand = |allowed: bool| json!({"type":"set_watcher_input","sessionId":s.session_id,"watcherId":watching["watcherId"],"allowed":allowed});
    s.owner.send(hand(true));
    assert_eq!(s.watcher.next_of("watcher_input").await["allowed"], true);
    assert_eq!(s.owner.next_of("watcher_input").await["allowed"], true);
    s.watcher
        .send(json!({"type":"terminal_input","sessionId":s.session_id,"data":"handed-over\r"}));
    assert!(until(|| s.agent_got("handed-over")).await);
    s.watcher
        .send(json!({"type":"close_terminal","sessionId":s.session_id}));
    assert_eq!(
        s.watcher.next_of("error").await["code"],
        "forbidden",
        "typing is all a watcher may do"
    );

    s.owner.send(hand(false));
    assert_eq!(s.watcher.next_of("watcher_input").await["allowed"], false);
    s.watcher
        .send(json!({"type":"terminal_input","sessionId":s.session_id,"data":"taken-back\r"}));
    assert_eq!(s.watcher.next_of("error").await["code"], "forbidden");
    assert!(!s.agent_got("taken-back"));
    assert!(until(|| s.owner.audited("terminal.input_granted")).await);
}
