//! TerminalSession message-level tests with probe actors (no sockets, no database).

mod common;

use std::time::Duration;

use chrono::Utc;
use fleetgate_actors::agent_session::ToAgent;
use fleetgate_actors::protocol::agent::Capabilities;
use fleetgate_actors::protocol::envelope::{SignedKind, verify_envelope};
use fleetgate_actors::protocol::nonce::NonceCache;
use fleetgate_actors::protocol::session_token::SessionTokens;
use fleetgate_actors::protocol::web::ServerEvent;
use fleetgate_actors::protocol::{ConnectionId, ErrorCode};
use fleetgate_actors::terminal::{AttachOwner, Owner, OwnerRequest, TerminalConfig, TerminalEvent};
use fleetgate_actors::web_session::Deliver;

use common::terminal_harness::{
    SECRET, USER, attach_new_owner, config, errors, events, frames, start, start_configured,
    start_gated,
};
use common::{entries, probe, until};

#[actix::test]
async fn opening_spawns_the_shell_then_tells_the_owner() {
    let h = start(Capabilities::default());
    assert!(until(|| frames(&h.agent).len() == 2 && !events(&h.owner).is_empty()).await);
    let sent = frames(&h.agent);
    assert_eq!(
        sent[0],
        format!(
            r#"{{"type":"spawn_shell","data":{{"sessionId":"{}"}}}}"#,
            h.session_id
        )
    );
    let mut nonces = NonceCache::new(64);
    let resize = verify_envelope(&sent[1], SECRET, Utc::now(), &mut nonces).expect("signed resize");
    assert_eq!(
        (resize.kind, resize.payload.as_str()),
        (SignedKind::TerminalResize, r#"{"cols":80,"rows":24}"#)
    );
    let ServerEvent::TerminalOpened {
        session_id,
        session_token,
        ..
    } = &events(&h.owner)[0]
    else {
        panic!("terminal_opened first");
    };
    assert_eq!(session_id, h.session_id.as_str());
    let claims = SessionTokens::new([4; 32])
        .verify(session_token, Utc::now().timestamp())
        .expect("token");
    assert_eq!(claims.user_id.to_string(), USER);
    assert_eq!(entries(&h.owner)[0].request_id.as_deref(), Some("req-1"));
    // The link routed the session's output at the agent socket as the terminal started.
    let routed: Vec<_> = entries(&h.control)
        .into_iter()
        .filter_map(|message| match message {
            ToAgent::RouteTerminal { session_id, .. } => Some(session_id),
            _ => None,
        })
        .collect();
    assert_eq!(routed, vec![h.session_id.clone()]);
}

#[actix::test]
async fn owner_input_is_signed_and_other_sockets_are_ignored() {
    let h = start(Capabilities::default());
    assert!(until(|| frames(&h.agent).len() == 2).await);
    h.terminal.do_send(OwnerRequest::Input {
        from: ConnectionId::next(),
        data: "rm -rf /\r".into(),
        request_id: None,
    });
    h.terminal.do_send(OwnerRequest::Input {
        from: h.owner_connection,
        data: "ls -la\r".into(),
        request_id: None,
    });
    assert!(until(|| frames(&h.agent).len() == 3).await);
    let mut nonces = NonceCache::new(64);
    let input =
        verify_envelope(&frames(&h.agent)[2], SECRET, Utc::now(), &mut nonces).expect("signed");
    assert_eq!(input.kind, SignedKind::TerminalInput);
    assert_eq!(input.payload, "{\"data\":\"ls -la\\r\"}");
    assert_eq!(input.session_id, h.session_id.as_str());
    assert_eq!(input.machine_id, h.machine_id.to_string());
}

#[actix::test]
async fn excess_input_is_rate_limited_and_the_session_survives() {
    let h = start(Capabilities::default());
    assert!(until(|| frames(&h.agent).len() == 2).await);
    for _ in 0..5 {
        h.terminal.do_send(OwnerRequest::Input {
            from: h.owner_connection,
            data: "x".into(),
            request_id: None,
        });
    }
    assert!(until(|| errors(&h.owner).len() == 2).await);
    assert_eq!(
        errors(&h.owner),
        vec![ErrorCode::RateLimited, ErrorCode::RateLimited]
    );
    assert_eq!(
        frames(&h.agent).len(),
        2 + 3,
        "only the burst reached the agent"
    );
    assert!(
        entries(&h.audits)
            .iter()
            .any(|a| a.action == "security.rate_limited")
    );
    h.terminal.do_send(OwnerRequest::Close {
        from: h.owner_connection,
    });
    assert!(until(|| entries(&h.closed).len() == 1).await);
    assert_eq!(entries(&h.closed)[0].reason, "closed");
}

#[actix::test]
async fn output_goes_to_the_owner() {
    let h = start(Capabilities::default());
    h.terminal
        .do_send(TerminalEvent::Output("total 0\r\n".into()));
    assert!(
        until(|| events(&h.owner).iter().any(
            |e| matches!(e, ServerEvent::TerminalOutput { data, .. } if data == "total 0\r\n")
        ))
        .await
    );
}

#[actix::test]
async fn agent_disconnect_closes_the_session() {
    let h = start(Capabilities {
        terminal_close: true,
        ..Capabilities::default()
    });
    assert!(until(|| frames(&h.agent).len() == 2).await);
    h.terminal.do_send(TerminalEvent::AgentGone);
    assert!(until(|| entries(&h.dropped).len() == 1).await);
    assert!(events(&h.owner).iter().any(|e| matches!(
        e,
        ServerEvent::TerminalClosed {
            reason: "agent_disconnected",
            ..
        }
    )));
    assert_eq!(entries(&h.closed)[0].reason, "agent_disconnected");
    assert_eq!(
        frames(&h.agent).len(),
        2,
        "no terminal_close to an agent that is gone"
    );
}

#[actix::test]
async fn owner_disconnect_ends_the_session_after_the_grace_period() {
    let h = start(Capabilities {
        terminal_close: true,
        ..Capabilities::default()
    });
    assert!(until(|| frames(&h.agent).len() == 2).await);
    h.terminal.do_send(OwnerRequest::OwnerGone {
        from: h.owner_connection,
    });
    assert!(until(|| entries(&h.closed).len() == 1).await);
    assert_eq!(entries(&h.closed)[0].reason, "owner_gone");
    let mut nonces = NonceCache::new(64);
    let close = verify_envelope(
        frames(&h.agent).last().expect("frame"),
        SECRET,
        Utc::now(),
        &mut nonces,
    )
    .expect("signed");
    assert_eq!(
        close.kind,
        SignedKind::TerminalClose,
        "agents with terminal_close get one"
    );
}

#[actix::test]
async fn reattach_by_the_same_user_delivers_buffered_output_and_others_are_refused() {
    let h = start(Capabilities::default());
    assert!(until(|| frames(&h.agent).len() == 2).await);
    h.terminal.do_send(OwnerRequest::OwnerGone {
        from: h.owner_connection,
    });
    h.terminal
        .do_send(TerminalEvent::Output("while you were away".into()));

    let (stranger, stranger_log) = probe::<Deliver>();
    let refused = h
        .terminal
        .send(AttachOwner {
            user_id: fleetgate_actors::protocol::UserId(uuid::Uuid::new_v4()),
            owner: Owner {
                connection_id: ConnectionId::next(),
                deliver: stranger,
            },
            seen_offset: None,
        })
        .await
        .expect("send");
    assert_eq!(refused, Err(ErrorCode::Forbidden));
    assert!(entries(&stranger_log).is_empty());

    let (attached, again_log) = attach_new_owner(&h, None).await;
    assert_eq!(attached, Ok(()));
    assert!(until(|| events(&again_log).len() >= 2).await);
    let received = events(&again_log);
    assert!(matches!(received[0], ServerEvent::TerminalOpened { .. }));
    assert!(
        matches!(&received[1], ServerEvent::TerminalOutput { data, .. } if data == "while you were away")
    );
    // Past the grace period the session is still alive: the attach cancelled the timer.
    actix::clock::sleep(Duration::from_millis(200)).await;
    assert!(entries(&h.closed).is_empty());
}

#[actix::test]
async fn a_slow_reader_gets_the_newest_output_and_a_drop_notice() {
    let (h, gate) = start_gated();
    for i in 0..20 {
        h.terminal.do_send(TerminalEvent::Output(
            format!("{i:02}{}", "x".repeat(98)).into(),
        ));
    }
    // Let everything queue behind the stalled reader, then release it.
    assert!(
        until(|| events(&h.owner)
            .iter()
            .any(|e| matches!(e, ServerEvent::TerminalOutput { .. })))
        .await
    );
    gate.add_permits(1000);
    assert!(
        until(|| events(&h.owner)
            .iter()
            .any(|e| matches!(e, ServerEvent::OutputDropped { .. })))
        .await
    );
    let received = events(&h.owner);
    let dropped: u64 = received
        .iter()
        .filter_map(|e| match e {
            ServerEvent::OutputDropped { bytes, .. } => Some(*bytes),
            _ => None,
        })
        .sum();
    let delivered: usize = received
        .iter()
        .filter_map(|e| match e {
            ServerEvent::TerminalOutput { data, .. } => Some(data.len()),
            _ => None,
        })
        .sum();
    assert_eq!(
        dropped as usize + delivered,
        20 * 100,
        "every byte is either delivered or counted as dropped"
    );
    assert!(
        delivered <= 100 + 1024,
        "at most one in-flight chunk plus the buffer bound"
    );
    let last = received
        .iter()
        .rev()
        .find_map(|e| match e {
            ServerEvent::TerminalOutput { data, .. } => Some(data.to_text()),
            _ => None,
        })
        .expect("output");
    assert!(
        last.ends_with(&format!("19{}", "x".repeat(98))),
        "the newest output survives"
    );
}

#[actix::test]
async fn an_idle_session_times_out() {
    let idle = TerminalConfig {
        idle_timeout: Duration::from_millis(100),
        ..config()
    };
    let h = start_configured(Capabilities::default(), idle);
    assert!(until(|| entries(&h.closed).len() == 1).await);
    assert_eq!(entries(&h.closed)[0].reason, "idle_timeout");
    assert!(events(&h.owner).iter().any(|e| matches!(
        e,
        ServerEvent::TerminalClosed {
            reason: "idle_timeout",
            ..
        }
    )));
}

#[actix::test]
async fn a_shell_exit_closes_the_session_without_a_close_envelope() {
    let h = start(Capabilities {
        terminal_close: true,
        terminal_exit: true,
        nonce_check: true,
        ordered: true,
        flow_control: false,
    });
    assert!(until(|| frames(&h.agent).len() == 2).await);
    h.terminal.do_send(TerminalEvent::Exited(0));
    assert!(until(|| entries(&h.closed).len() == 1).await);
    assert_eq!(entries(&h.closed)[0].reason, "shell_exited");
    assert_eq!(frames(&h.agent).len(), 2);
}

#[actix::test]
async fn output_still_buffered_when_the_shell_exits_reaches_the_owner_before_the_close() {
    let (h, gate) = start_gated();
    for i in 0..5 {
        h.terminal
            .do_send(TerminalEvent::Output(format!("line {i}\n").into()));
    }
    h.terminal.do_send(TerminalEvent::Exited(0));
    gate.add_permits(1000);
    assert!(
        until(|| events(&h.owner)
            .iter()
            .any(|e| matches!(e, ServerEvent::TerminalClosed { .. })))
        .await
    );
    let received = events(&h.owner);
    let output: String = received
        .iter()
        .filter_map(|e| match e {
            ServerEvent::TerminalOutput { data, .. } => Some(data.to_text()),
            _ => None,
        })
        .collect();
    assert_eq!(
        output, "line 0\nline 1\nline 2\nline 3\nline 4\n",
        "{received:?}"
    );
    assert!(
        matches!(received.last(), Some(ServerEvent::TerminalClosed { reason, .. }) if *reason == "shell_exited"),
        "the close comes last: {received:?}"
    );
}
