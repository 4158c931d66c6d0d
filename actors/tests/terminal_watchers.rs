//! TerminalSession watchers, message-level, with probe sockets: what a watcher gets, what the
//! owner is told, a slow watcher against the owner, and every way a watch ends.

mod common;

use std::sync::Arc;

use actix::Actor;
use fleetgate_actors::protocol::agent::Capabilities;
use fleetgate_actors::protocol::web::ServerEvent;
use fleetgate_actors::protocol::{ConnectionId, ErrorCode, UserId};
use fleetgate_actors::terminal::{
    JoinWatch, LeaveWatch, MAX_WATCHERS, OwnerRequest, TerminalEvent, leave_reason,
};
use fleetgate_actors::web_session::Deliver;

use common::terminal_harness::{
    GatedOwner, Harness, USER, attach_new_owner, events, frames, start,
};
use common::{Log, entries, log, probe, until};

const WATCHER: &str = "7d3e2f1a-5b6c-4d7e-8f90-a1b2c3d4e5f6";

/// A watcher socket: its connection and what it received.
struct WatcherSocket {
    connection_id: ConnectionId,
    seen: Log<Deliver>,
}

fn join(deliver: actix::Recipient<Deliver>, connection_id: ConnectionId) -> JoinWatch {
    JoinWatch {
        user_id: UserId::parse(WATCHER).expect("uuid"),
        name: Some("auditor".into()),
        connection_id,
        deliver,
        request_id: Some("w-1".into()),
        may_type: true,
    }
}

/// Admits a probe watcher that reads everything at once.
async fn watch(h: &Harness) -> (Result<(), ErrorCode>, WatcherSocket) {
    let (deliver, seen) = probe::<Deliver>();
    let connection_id = ConnectionId::next();
    let joined = h
        .terminal
        .send(join(deliver, connection_id))
        .await
        .expect("terminal alive");
    (
        joined,
        WatcherSocket {
            connection_id,
            seen,
        },
    )
}

fn output_text(log: &Log<Deliver>) -> String {
    events(log)
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::TerminalOutput { data, .. } => Some(data.to_text()),
            _ => None,
        })
        .collect()
}

fn watcher_id(log: &Log<Deliver>) -> String {
    events(log)
        .into_iter()
        .find_map(|e| match e {
            ServerEvent::TerminalWatching { watcher_id, .. } => Some(watcher_id),
            _ => None,
        })
        .expect("terminal_watching")
}

async fn opened(h: &Harness) {
    assert!(until(|| frames(&h.agent).len() == 2 && !events(&h.owner).is_empty()).await);
}

#[actix::test]
async fn a_watcher_gets_the_recent_output_then_the_live_output_and_the_owner_is_told() {
    let h = start(Capabilities::default());
    opened(&h).await;
    h.terminal.do_send(TerminalEvent::Output("$ ls\r\n".into()));
    assert!(until(|| output_text(&h.owner) == "$ ls\r\n").await);

    let (joined, watcher) = watch(&h).await;
    assert_eq!(joined, Ok(()));
    h.terminal
        .do_send(TerminalEvent::Output("notes.txt\r\n".into()));
    assert!(until(|| output_text(&watcher.seen) == "$ ls\r\nnotes.txt\r\n").await);

    let first = entries(&watcher.seen).remove(0);
    assert_eq!(first.request_id.as_deref(), Some("w-1"));
    match &first.events[0] {
        ServerEvent::TerminalWatching {
            session_id,
            owner_id,
            cols,
            rows,
            ..
        } => {
            assert_eq!(session_id, &h.session_id.to_string());
            assert_eq!((owner_id.as_str(), *cols, *rows), (USER, 80, 24));
        }
        other => panic!("expected terminal_watching first, got {other:?}"),
    }
    let offsets: Vec<u64> = events(&watcher.seen)
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::TerminalOutput { offset, .. } => Some(offset),
            _ => None,
        })
        .collect();
    assert_eq!(offsets, vec![0, 6], "the session's own offsets");
    let id = watcher_id(&watcher.seen);
    assert!(events(&h.owner).iter().any(|e| matches!(e,
        ServerEvent::WatcherJoined { watcher_id, user_id, name, .. }
            if *watcher_id == id && user_id == WATCHER && name.as_deref() == Some("auditor"))));
    assert_eq!(output_text(&h.owner), "$ ls\r\nnotes.txt\r\n");
}

#[actix::test]
async fn a_watchers_input_never_reaches_the_agent() {
    let h = start(Capabilities::default());
    opened(&h).await;
    let (_, watcher) = watch(&h).await;
    let before = frames(&h.agent).len();
    h.terminal.do_send(OwnerRequest::Input {
        from: watcher.connection_id,
        data: "rm -rf /\r".into(),
        request_id: None,
    });
    h.terminal.do_send(OwnerRequest::Close {
        from: watcher.connection_id,
    });
    h.terminal.do_send(OwnerRequest::Input {
        from: h.owner_connection,
        data: "id\r".into(),
        request_id: None,
    });
    assert!(until(|| frames(&h.agent).len() == before + 1).await);
    let sent = frames(&h.agent);
    assert!(
        sent[before].contains("terminal_stdin") && !sent.iter().any(|f| f.contains("rm -rf")),
        "only the owner's input went out: {sent:?}"
    );
}

#[actix::test]
async fn a_slow_watcher_drops_its_own_output_and_never_delays_the_owner() {
    let h = start(Capabilities::default());
    opened(&h).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let stalled = log();
    let slow = GatedOwner {
        seen: stalled.clone(),
        gate: gate.clone(),
    }
    .start();
    let joined = h
        .terminal
        .send(join(slow.recipient(), ConnectionId::next()))
        .await
        .expect("alive");
    assert_eq!(joined, Ok(()));
    // The harness buffers 1 KiB per reader: 20 chunks of 100 bytes overflow the stalled
    // watcher's buffer, while the owner reads each chunk as it comes.
    let mut expected = String::new();
    for i in 0..20 {
        let chunk = format!("{i:02}{}", "x".repeat(98));
        expected.push_str(&chunk);
        h.terminal.do_send(TerminalEvent::Output(chunk.into()));
        assert!(
            until(|| output_text(&h.owner) == expected).await,
            "chunk {i} reached the owner while the watcher read nothing"
        );
    }
    assert!(
        !events(&h.owner)
            .iter()
            .any(|e| matches!(e, ServerEvent::OutputDropped { .. })),
        "the owner lost nothing"
    );
    gate.add_permits(1000);
    assert!(
        until(|| output_text(&stalled).ends_with(&format!("19{}", "x".repeat(98)))).await,
        "the watcher gets the newest output once it reads"
    );
    let dropped: u64 = events(&stalled)
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::OutputDropped { bytes, .. } => Some(bytes),
            _ => None,
        })
        .sum();
    assert_eq!(
        dropped as usize + output_text(&stalled).len(),
        2000,
        "every byte is either delivered to the watcher or counted as dropped"
    );
    assert!(dropped > 0, "the stalled watcher's own buffer overflowed");
}

#[actix::test]
async fn the_owner_removes_a_watcher_and_only_the_owner_may() {
    let h = start(Capabilities::default());
    opened(&h).await;
    let (_, watcher) = watch(&h).await;
    let (_, other) = watch(&h).await;
    let id = watcher_id(&watcher.seen);
    h.terminal.do_send(OwnerRequest::RemoveWatcher {
        from: other.connection_id,
        watcher_id: id.clone(),
        request_id: None,
    });
    h.terminal.do_send(OwnerRequest::RemoveWatcher {
        from: h.owner_connection,
        watcher_id: id.clone(),
        request_id: None,
    });
    assert!(
        until(|| events(&watcher.seen).iter().any(|e| matches!(e,
            ServerEvent::WatchEnded { reason, .. } if *reason == leave_reason::REMOVED)))
        .await
    );
    assert!(events(&h.owner).iter().any(|e| matches!(e,
        ServerEvent::WatcherLeft { watcher_id, reason, .. }
            if *watcher_id == id && *reason == leave_reason::REMOVED)));
    assert!(
        until(|| entries(&h.audits)
            .iter()
            .any(|a| a.action == "terminal.unwatch"
                && a.actor == WATCHER
                && a.detail["reason"] == "removed"
                && a.detail["watcherId"] == id.as_str()))
        .await
    );
    h.terminal
        .do_send(TerminalEvent::Output("later\r\n".into()));
    assert!(until(|| output_text(&other.seen) == "later\r\n").await);
    assert_eq!(
        output_text(&watcher.seen),
        "",
        "a removed watcher sees nothing more"
    );
}

#[actix::test]
async fn a_watcher_leaving_is_told_to_the_owner_and_audited() {
    let h = start(Capabilities::default());
    opened(&h).await;
    let (_, watcher) = watch(&h).await;
    h.terminal.do_send(LeaveWatch {
        from: watcher.connection_id,
        reason: leave_reason::LEFT,
    });
    assert!(
        until(|| events(&h.owner).iter().any(|e| matches!(e,
        ServerEvent::WatcherLeft { user_id, reason, .. }
            if user_id == WATCHER && *reason == leave_reason::LEFT)))
        .await
    );
    assert!(
        events(&watcher.seen)
            .iter()
            .any(|e| matches!(e, ServerEvent::WatchEnded { .. }))
    );
    assert!(
        until(|| entries(&h.audits)
            .iter()
            .any(|a| a.action == "terminal.unwatch"))
        .await
    );
}

#[actix::test]
async fn the_owners_disconnect_ends_every_watch_with_a_reason() {
    let h = start(Capabilities::default());
    opened(&h).await;
    let (_, watcher) = watch(&h).await;
    h.terminal.do_send(OwnerRequest::OwnerGone {
        from: h.owner_connection,
    });
    assert!(
        until(|| {
            events(&watcher.seen).iter().any(|e| {
                matches!(e,
            ServerEvent::WatchEnded { reason, .. } if *reason == leave_reason::OWNER_DISCONNECTED)
            })
        })
        .await
    );
    let (joined, _) = watch(&h).await;
    assert_eq!(
        joined,
        Err(ErrorCode::UnknownSession),
        "nobody joins while the owner is away"
    );
}

#[actix::test]
async fn the_sessions_end_reaches_its_watchers() {
    let h = start(Capabilities::default());
    opened(&h).await;
    let (_, watcher) = watch(&h).await;
    h.terminal.do_send(TerminalEvent::Output("bye\r\n".into()));
    h.terminal.do_send(TerminalEvent::Exited(0));
    assert!(
        until(|| events(&watcher.seen).iter().any(|e| matches!(e,
            ServerEvent::TerminalClosed { reason, .. } if *reason == "shell_exited")))
        .await
    );
    assert_eq!(output_text(&watcher.seen), "bye\r\n");
}

#[actix::test]
async fn watchers_are_bounded_and_one_socket_watches_once() {
    let h = start(Capabilities::default());
    opened(&h).await;
    let (_, first) = watch(&h).await;
    let (deliver, _) = probe::<Deliver>();
    let again = h
        .terminal
        .send(join(deliver, first.connection_id))
        .await
        .expect("alive");
    assert_eq!(again, Err(ErrorCode::InvalidField));
    for _ in 1..MAX_WATCHERS {
        assert_eq!(watch(&h).await.0, Ok(()));
    }
    assert_eq!(watch(&h).await.0, Err(ErrorCode::RateLimited));
}

#[actix::test]
async fn an_owner_who_reattaches_learns_who_is_watching() {
    let h = start(Capabilities::default());
    opened(&h).await;
    let (_, watcher) = watch(&h).await;
    let id = watcher_id(&watcher.seen);
    let (attached, new_owner) = attach_new_owner(&h, None).await;
    assert_eq!(attached, Ok(()));
    assert!(
        until(|| events(&new_owner).iter().any(
            |e| matches!(e, ServerEvent::WatcherJoined { watcher_id, .. } if *watcher_id == id)
        ))
        .await
    );
}

fn input(from: ConnectionId, data: &str) -> OwnerRequest {
    OwnerRequest::Input {
        from,
        data: data.into(),
        request_id: None,
    }
}

fn hand_over(from: ConnectionId, watcher_id: &str, allowed: bool) -> OwnerRequest {
    OwnerRequest::SetWatcherInput {
        from,
        watcher_id: watcher_id.into(),
        allowed,
        request_id: None,
    }
}

fn sent_input(h: &Harness, text: &str) -> bool {
    frames(&h.agent)
        .iter()
        .any(|f| f.contains("terminal_stdin") && f.contains(text))
}

#[actix::test]
async fn the_owner_hands_a_watcher_the_keyboard_and_takes_it_back() {
    let h = start(Capabilities::default());
    opened(&h).await;
    let (_, watcher) = watch(&h).await;
    let id = watcher_id(&watcher.seen);
    let me = watcher.connection_id;
    h.terminal.do_send(input(me, "too-early\r"));
    h.terminal.do_send(hand_over(me, &id, true));
    h.terminal.do_send(input(me, "self-granted\r"));
    h.terminal.do_send(hand_over(h.owner_connection, &id, true));
    h.terminal.do_send(input(me, "handed-over\r"));
    assert!(until(|| sent_input(&h, "handed-over")).await);
    assert!(
        !sent_input(&h, "too-early") && !sent_input(&h, "self-granted"),
        "nothing before the owner handed over, and a watcher cannot hand itself the keyboard"
    );
    for log in [&watcher.seen, &h.owner] {
        assert!(events(log).iter().any(|e| matches!(e,
            ServerEvent::WatcherInput { watcher_id, allowed: true, .. } if *watcher_id == id)));
    }

    h.terminal
        .do_send(hand_over(h.owner_connection, &id, false));
    h.terminal.do_send(input(me, "taken-back\r"));
    h.terminal
        .do_send(input(h.owner_connection, "owner-again\r"));
    assert!(until(|| sent_input(&h, "owner-again")).await);
    assert!(!sent_input(&h, "taken-back"));
    let actions: Vec<String> = entries(&h.audits)
        .iter()
        .map(|a| a.action.to_owned())
        .collect();
    assert!(
        actions.contains(&"terminal.input_granted".to_owned())
            && actions.contains(&"terminal.input_revoked".to_owned()),
        "{actions:?}"
    );
}

#[actix::test]
async fn a_watcher_who_may_not_open_a_terminal_is_never_handed_the_keyboard() {
    let h = start(Capabilities::default());
    opened(&h).await;
    let (deliver, seen) = probe::<Deliver>();
    let me = ConnectionId::next();
    let joined = h
        .terminal
        .send(JoinWatch {
            may_type: false,
            ..join(deliver, me)
        })
        .await
        .expect("alive");
    assert_eq!(joined, Ok(()));
    let id = watcher_id(&seen);
    h.terminal.do_send(hand_over(h.owner_connection, &id, true));
    assert!(
        until(|| entries(&h.owner).iter().any(|d| d
            .error
            .as_ref()
            .is_some_and(|e| e.code == ErrorCode::Forbidden)))
        .await
    );
    h.terminal.do_send(input(me, "viewer-keys\r"));
    h.terminal
        .do_send(input(h.owner_connection, "owner-keys\r"));
    assert!(until(|| sent_input(&h, "owner-keys")).await);
    assert!(!sent_input(&h, "viewer-keys"));
}
