//! The `Recorder` actor at message level: a session's events become a signed asciicast v2
//! (header, output byte-exact and in order, resizes); a changed file or signature is reported
//! as tampered; a full disk stops the recording with an audit event and nothing else.

mod common;

use std::time::{Duration, Instant};

use actix::Actor;
use fleetgate_actors::protocol::escaped::EscapedText;
use fleetgate_actors::recording::cast::CastHeader;
use fleetgate_actors::recording::stored::{PlaybackError, open_verified, paths};
use fleetgate_actors::recording::{
    CastEvent, FinishRecording, RecordEvent, Recorder, RecordingConfig, RecordingKey,
};
use fleetgate_actors::repo::audit::RecordAudit;

use common::{entries, probe, until};

const SESSION: &str = "3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c31";

fn header() -> CastHeader {
    CastHeader {
        width: 80,
        height: 24,
        timestamp: 1_767_323_045,
        session_id: SESSION.into(),
        machine_id: "6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f".into(),
        user_id: "0b7c9d7e-8a51-4d55-9d3e-3c0f7c3f2a11".into(),
    }
}

fn config(dir: &std::path::Path) -> RecordingConfig {
    RecordingConfig {
        dir: dir.to_path_buf(),
        input: false,
        key: RecordingKey::from_bytes([3; 32]),
        by_default: true,
    }
}

#[actix::test]
async fn a_session_becomes_a_signed_asciicast_and_any_change_to_it_is_found() {
    let dir = tempfile::tempdir().expect("dir");
    let (audit, audited) = probe::<RecordAudit>();
    let started = Instant::now();
    let recorder = Recorder::new(config(dir.path()), header(), started, audit).start();
    let events = [
        CastEvent::Output(EscapedText::from_literal(r#""caf\u00e9 \"q\"\r\n""#).expect("literal")),
        CastEvent::Resize(100, 30),
        CastEvent::Output(EscapedText::from_text("\u{1b}[1mbold\u{1b}[0m")),
    ];
    for (i, event) in events.into_iter().enumerate() {
        recorder.do_send(RecordEvent {
            at: started + Duration::from_millis(100 * i as u64),
            event,
        });
    }
    recorder.do_send(FinishRecording);
    let (plain, compressed, signature) = paths(dir.path(), SESSION);
    assert!(until(|| signature.exists()).await, "compressed and signed");
    assert!(!plain.exists(), "the plain file is gone");
    assert!(entries(&audited).is_empty(), "nothing went wrong");

    let key = config(dir.path()).key;
    let cast = open_verified(dir.path(), SESSION, &key).expect("verified");
    let lines: Vec<serde_json::Value> = cast
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines[0]["version"], 2);
    assert_eq!(
        (lines[0]["width"].as_u64(), lines[0]["height"].as_u64()),
        (Some(80), Some(24))
    );
    assert_eq!(lines[0]["fleetgate"]["sessionId"], SESSION);
    let body: Vec<(&str, &str)> = lines[1..]
        .iter()
        .map(|e| (e[1].as_str().expect("code"), e[2].as_str().expect("data")))
        .collect();
    assert_eq!(
        body,
        vec![
            ("o", "café \"q\"\r\n"),
            ("r", "100x30"),
            ("o", "\u{1b}[1mbold\u{1b}[0m")
        ]
    );
    assert!(
        lines[3][0].as_f64().expect("time") >= 0.2,
        "times from the start"
    );

    let mut bytes = std::fs::read(&compressed).expect("file");
    let last = bytes.len() - 9;
    bytes[last] ^= 0x01;
    std::fs::write(&compressed, &bytes).expect("tamper");
    assert!(matches!(
        open_verified(dir.path(), SESSION, &key),
        Err(PlaybackError::Tampered)
    ));
    bytes[last] ^= 0x01;
    std::fs::write(&compressed, &bytes).expect("restore");
    assert!(open_verified(dir.path(), SESSION, &key).is_ok());
    std::fs::write(&signature, "00".repeat(32)).expect("forge the signature");
    assert!(matches!(
        open_verified(dir.path(), SESSION, &key),
        Err(PlaybackError::Tampered)
    ));
    assert!(matches!(
        open_verified(dir.path(), "00000000000000000000000000000000", &key),
        Err(PlaybackError::Missing)
    ));
}

#[actix::test]
async fn a_full_disk_stops_the_recording_with_an_audit_event() {
    let dir = tempfile::tempdir().expect("dir");
    let (plain, _, _) = paths(dir.path(), SESSION);
    // Every write to /dev/full fails with ENOSPC, as on a full disk.
    std::os::unix::fs::symlink("/dev/full", &plain).expect("symlink");
    let (audit, audited) = probe::<RecordAudit>();
    let recorder = Recorder::new(config(dir.path()), header(), Instant::now(), audit).start();
    for _ in 0..3 {
        recorder.do_send(RecordEvent {
            at: Instant::now(),
            event: CastEvent::Output(EscapedText::from_text(&"x".repeat(8192))),
        });
    }
    assert!(
        until(|| !entries(&audited).is_empty()).await,
        "the stop is audited"
    );
    let stopped = &entries(&audited)[0];
    assert_eq!(stopped.action, "recording.stopped");
    assert_eq!(stopped.detail["sessionId"], SESSION);
    assert!(
        stopped.detail["error"]
            .as_str()
            .is_some_and(|e| e.to_lowercase().contains("space")),
        "{}",
        stopped.detail
    );
    recorder.do_send(RecordEvent {
        at: Instant::now(),
        event: CastEvent::Resize(10, 10),
    });
    recorder.do_send(FinishRecording);
    assert!(
        until(|| !recorder.connected()).await,
        "the recorder ends quietly"
    );
    assert_eq!(entries(&audited).len(), 1, "stopped once");
}

/// Opens and closes a terminal on a server recording by default or not (`by_default`), on a
/// machine that says `machine`; whether a recording was written.
async fn recorded(by_default: bool, machine: Option<bool>) -> bool {
    use common::terminal_harness::{config as terminal_config, start_on_machine};
    use fleetgate_actors::protocol::ConnectionId;
    use fleetgate_actors::terminal::{Owner, OwnerRequest};
    use fleetgate_actors::web_session::Deliver;
    let dir = tempfile::tempdir().expect("dir");
    let mut recording = config(dir.path());
    recording.by_default = by_default;
    let terminal_config = fleetgate_actors::terminal::TerminalConfig {
        recording: Some(recording),
        ..terminal_config()
    };
    let (deliver, owner_log) = probe::<Deliver>();
    let owner = Owner {
        connection_id: ConnectionId::next(),
        deliver,
    };
    let connection = owner.connection_id;
    let h = start_on_machine(
        Default::default(),
        owner,
        owner_log,
        terminal_config,
        machine,
    );
    h.terminal.do_send(OwnerRequest::Close { from: connection });
    assert!(until(|| !h.closed.lock().expect("log").is_empty()).await);
    // A recorder opens its file as it starts, right after the session: this is ample time.
    actix::clock::sleep(Duration::from_millis(300)).await;
    std::fs::read_dir(dir.path())
        .map(|entries| entries.count() > 0)
        .unwrap_or(false)
}

#[actix::test]
async fn a_machines_own_setting_overrides_the_servers() {
    assert!(recorded(true, None).await, "the server records by default");
    assert!(
        !recorded(true, Some(false)).await,
        "this machine is never recorded"
    );
    assert!(
        recorded(false, Some(true)).await,
        "this machine is always recorded"
    );
    assert!(
        !recorded(false, None).await,
        "the server records nothing by default"
    );
}
