//! TerminalSession's fleetgate extensions, message by message with probe actors: the size sent
//! again for v1 agents, output offsets and replay on reattach, flow-control credit.

mod common;

use std::time::Duration;

use chrono::Utc;
use fleetgate_actors::protocol::agent::Capabilities;
use fleetgate_actors::protocol::envelope::{SignedKind, verify_envelope};
use fleetgate_actors::protocol::nonce::NonceCache;
use fleetgate_actors::protocol::web::ServerEvent;
use fleetgate_actors::terminal::{OwnerRequest, TerminalConfig, TerminalEvent};
use fleetgate_actors::web_session::Deliver;

use common::terminal_harness::{
    SECRET, attach_new_owner, config, events, frames, start, start_configured,
};
use common::until;

/// The signed payloads of every `terminal_resize` the agent was sent.
fn resizes(h: &common::terminal_harness::Harness) -> Vec<String> {
    let mut nonces = NonceCache::new(64);
    frames(&h.agent)
        .iter()
        .filter_map(|frame| verify_envelope(frame, SECRET, Utc::now(), &mut nonces).ok())
        .filter(|envelope| envelope.kind == SignedKind::TerminalResize)
        .map(|envelope| envelope.payload)
        .collect()
}

#[actix::test]
async fn v1_agents_get_the_size_again_once_the_shell_has_spoken() {
    let h = start(Capabilities::default());
    assert!(until(|| frames(&h.agent).len() == 2).await);
    h.terminal.do_send(OwnerRequest::Resize {
        from: h.owner_connection,
        cols: 132,
        rows: 50,
    });
    h.terminal.do_send(TerminalEvent::Output("$ ".into()));
    h.terminal.do_send(TerminalEvent::Output("more".into()));
    assert!(until(|| resizes(&h).len() == 3).await);
    assert_eq!(
        resizes(&h),
        vec![
            r#"{"cols":80,"rows":24}"#,
            r#"{"cols":132,"rows":50}"#,
            r#"{"cols":132,"rows":50}"#
        ],
        "the latest size is sent again once, on the first output"
    );
    actix::clock::sleep(Duration::from_millis(50)).await;
    assert_eq!(resizes(&h).len(), 3);
}

#[actix::test]
async fn agents_that_apply_messages_in_order_keep_one_resize() {
    let h = start(Capabilities {
        ordered: true,
        ..Capabilities::default()
    });
    assert!(until(|| frames(&h.agent).len() == 2).await);
    h.terminal.do_send(TerminalEvent::Output("$ ".into()));
    assert!(until(|| !events(&h.owner).is_empty()).await);
    assert!(
        until(|| events(&h.owner)
            .iter()
            .any(|e| matches!(e, ServerEvent::TerminalOutput { .. })))
        .await
    );
    assert_eq!(resizes(&h), vec![r#"{"cols":80,"rows":24}"#]);
}

/// Output events as (offset, data), drop notices as (u64::MAX, bytes).
fn output_stream(log: &common::Log<Deliver>) -> Vec<(u64, String)> {
    events(log)
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::TerminalOutput { offset, data, .. } => Some((offset, data.to_text())),
            ServerEvent::OutputDropped { bytes, .. } => Some((u64::MAX, bytes.to_string())),
            _ => None,
        })
        .collect()
}

#[actix::test]
async fn output_carries_offsets_and_a_reattach_replays_after_the_clients_offset() {
    let h = start(Capabilities::default());
    for (sent, chunk) in ["hello ", "world", "!"].into_iter().enumerate() {
        h.terminal.do_send(TerminalEvent::Output(chunk.into()));
        assert!(until(|| output_stream(&h.owner).len() == sent + 1).await);
    }
    assert_eq!(
        output_stream(&h.owner),
        vec![
            (0, "hello ".to_owned()),
            (6, "world".to_owned()),
            (11, "!".to_owned())
        ]
    );
    // The client saw only "hello " before its socket died; the rest was in flight.
    h.terminal.do_send(OwnerRequest::OwnerGone {
        from: h.owner_connection,
    });
    h.terminal.do_send(TerminalEvent::Output(" after".into()));
    let (attached, again_log) = attach_new_owner(&h, Some(6)).await;
    assert_eq!(attached, Ok(()));
    assert!(until(|| output_stream(&again_log).len() == 2).await);
    let stream = output_stream(&again_log);
    assert_eq!(
        stream[0],
        (6, "world!".to_owned()),
        "replayed from offset 6"
    );
    assert_eq!(
        stream[1],
        (12, " after".to_owned()),
        "then the buffered output"
    );
}

#[actix::test]
async fn a_reattach_from_before_the_replay_window_is_told_what_is_gone() {
    let small = TerminalConfig {
        replay_bytes: 10,
        ..config()
    };
    let h = start_configured(Capabilities::default(), small);
    for (sent, chunk) in ["aaaaa", "bbbbb", "ccccc"].into_iter().enumerate() {
        h.terminal.do_send(TerminalEvent::Output(chunk.into()));
        assert!(until(|| output_stream(&h.owner).len() == sent + 1).await);
    }
    h.terminal.do_send(OwnerRequest::OwnerGone {
        from: h.owner_connection,
    });
    let (attached, again_log) = attach_new_owner(&h, Some(2)).await;
    assert_eq!(attached, Ok(()));
    assert!(until(|| output_stream(&again_log).len() == 2).await);
    assert_eq!(
        output_stream(&again_log),
        vec![(u64::MAX, "3".to_owned()), (5, "bbbbbccccc".to_owned())],
        "bytes 2..5 are announced as dropped, the rest replayed"
    );
}

/// The byte counts of every `terminal_credit` the agent was sent.
fn credits(h: &common::terminal_harness::Harness) -> Vec<u64> {
    let mut nonces = NonceCache::new(256);
    frames(&h.agent)
        .iter()
        .filter_map(|frame| verify_envelope(frame, SECRET, Utc::now(), &mut nonces).ok())
        .filter(|envelope| envelope.kind == SignedKind::TerminalCredit)
        .map(|envelope| {
            let payload: serde_json::Value =
                serde_json::from_str(&envelope.payload).expect("payload");
            payload["bytes"].as_u64().expect("bytes")
        })
        .collect()
}

fn flow_control() -> Capabilities {
    Capabilities {
        flow_control: true,
        ordered: true,
        ..Capabilities::default()
    }
}

#[actix::test]
async fn flow_control_grants_a_window_and_returns_credit_once_the_owner_has_read() {
    let (h, gate) = common::terminal_harness::start_gated_with(flow_control());
    assert!(until(|| !frames(&h.agent).is_empty()).await);
    let spawn: serde_json::Value = serde_json::from_str(&frames(&h.agent)[0]).expect("json");
    assert_eq!(spawn["data"]["flowWindow"], config().flow_window);
    // Within the harness's 1 KiB buffer, as a window-respecting agent would stay.
    for _ in 0..4 {
        h.terminal
            .do_send(TerminalEvent::Output("x".repeat(250).into()));
    }
    assert!(until(|| !events(&h.owner).is_empty()).await);
    actix::clock::sleep(Duration::from_millis(50)).await;
    assert!(
        credits(&h).is_empty(),
        "nothing is returned while the owner has not written its delivery"
    );
    gate.add_permits(1000);
    assert!(until(|| credits(&h).iter().sum::<u64>() == 1000).await);
    let delivered: usize = events(&h.owner)
        .iter()
        .filter_map(|e| match e {
            ServerEvent::TerminalOutput { data, .. } => Some(data.len()),
            _ => None,
        })
        .sum();
    assert_eq!(delivered, 1000, "nothing dropped");
}

#[actix::test]
async fn no_credit_is_returned_while_nobody_is_attached() {
    let h = start(flow_control());
    assert!(until(|| !frames(&h.agent).is_empty()).await);
    h.terminal.do_send(OwnerRequest::OwnerGone {
        from: h.owner_connection,
    });
    h.terminal
        .do_send(TerminalEvent::Output("y".repeat(2000).into()));
    actix::clock::sleep(Duration::from_millis(50)).await;
    assert!(credits(&h).is_empty());
}

#[actix::test]
async fn agents_without_flow_control_get_no_window_and_no_credit() {
    let h = start(Capabilities::default());
    assert!(until(|| !frames(&h.agent).is_empty()).await);
    assert!(!frames(&h.agent)[0].contains("flowWindow"));
    h.terminal
        .do_send(TerminalEvent::Output("z".repeat(2000).into()));
    assert!(until(|| !events(&h.owner).is_empty()).await);
    actix::clock::sleep(Duration::from_millis(50)).await;
    assert!(credits(&h).is_empty());
}
