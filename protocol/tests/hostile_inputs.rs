//! The hostile-input suite of the protocol layer: random text, JSON shaped like the protocol's
//! messages with wrong types and values, byte-level mutations of valid frames and deep
//! nesting, fed to the agent and web frame parsers, envelope verification, the session token
//! parser and the opening of cluster messages. Each must answer with a typed refusal (or accept
//! only what is genuinely valid) and never panic. `FLEETGATE_HOSTILE_CASES` raises the number of
//! cases per property (default 1,500); the count of inputs tried is printed.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytestring::ByteString;
use chrono::Utc;
use fleetgate_protocol::ErrorCode;
use fleetgate_protocol::agent::parse_agent_message;
use fleetgate_protocol::envelope::{
    EnvelopeFields, SignedKind, envelope_frame, envelope_timestamp, verify_envelope,
};
use fleetgate_protocol::nonce::NonceCache;
use fleetgate_protocol::session_token::{SessionClaims, SessionTokens};
use fleetgate_protocol::web::parse_client_frame;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

const SECRET: &str = "a97eef2fbf0dbe58d4d7411321e6641d463bdeb5ed1ec1dcc3fffc29b1085de4";
const MACHINE: &str = "6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f";
const SESSION: &str = "0123456789abcdef0123456789abcdef";

/// Cases per property.
fn cases() -> u32 {
    std::env::var("FLEETGATE_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

/// Runs `check` over `cases()` inputs from `strategy`; prints and returns how many ran.
fn run<S: Strategy>(
    name: &str,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> usize {
    let count = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&strategy, |value| {
        count.fetch_add(1, Ordering::Relaxed);
        check(value)
    });
    if let Err(err) = outcome {
        panic!("{name}: {err}");
    }
    let count = count.into_inner();
    eprintln!("hostile-input {name}: {count} inputs, none panicked, every refusal typed");
    count
}

/// Field names of the protocol, so that random JSON often looks like a message.
const KEYS: &[&str] = &[
    "type",
    "sessionId",
    "machineId",
    "output",
    "secretKey",
    "hostname",
    "ip",
    "metrics",
    "ports",
    "cpuUsage",
    "data",
    "cols",
    "rows",
    "commandId",
    "exitCode",
    "command",
    "requestId",
    "sessionToken",
    "offset",
    "capabilities",
    "payload",
    "nonce",
    "timestamp",
    "hmac",
    "osInfo",
];

/// Type tags of both directions, and an empty one.
const TYPES: &[&str] = &[
    "register",
    "heartbeat",
    "command_response",
    "terminal_output",
    "terminal_exit",
    "subscribe_machines",
    "spawn_terminal",
    "terminal_input",
    "terminal_resize",
    "close_terminal",
    "attach_terminal",
    "execute_command",
    "spawn_shell",
    "terminal_stdin",
    "hello",
    "",
];

/// Any JSON value, biased towards the protocol's shapes.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(TYPES).prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        Just(Value::from(SECRET)),
        Just(Value::from(MACHINE)),
        Just(Value::from(u64::MAX)),
        Just(Value::from(-1)),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((proptest::sample::select(KEYS), inner), 0..8).prop_map(
                |pairs| {
                    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }
            ),
        ]
    })
}

/// An object with a protocol `type` and random protocol fields.
fn message_like() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(TYPES),
        prop::collection::vec((proptest::sample::select(KEYS), json_value()), 0..10),
    )
        .prop_map(|(kind, fields)| {
            let mut object: serde_json::Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            object.insert("type".into(), Value::from(kind));
            Value::Object(object).to_string()
        })
}

/// Valid frames of both directions, the seeds of the mutations.
fn seeds() -> Vec<String> {
    vec![
        format!(
            r#"{{"type":"register","hostname":"web-1","ip":"10.0.0.5","secretKey":"{SECRET}","platform":"linux"}}"#
        ),
        format!(
            r#"{{"type":"heartbeat","machineId":"{MACHINE}","metrics":{{"cpuUsage":1.5,"ramUsed":1,"ramTotal":2}},"ports":[{{"port":22,"proto":"tcp","service":"ssh","state":"LISTEN"}}]}}"#
        ),
        format!(
            r#"{{"type":"terminal_output","sessionId":"{SESSION}","output":"ls\r\n\u001b[0m\ud83d\ude00"}}"#
        ),
        format!(
            r#"{{"type":"command_response","commandId":"{SESSION}","output":"ok","exitCode":0}}"#
        ),
        format!(
            r#"{{"type":"spawn_terminal","machineId":"{MACHINE}","cols":80,"rows":24,"requestId":"r1"}}"#
        ),
        format!(r#"{{"type":"terminal_input","sessionId":"{SESSION}","data":"ls\n"}}"#),
        r#"{"type":"attach_terminal","sessionToken":"a.b.c.d.e","offset":10}"#.to_owned(),
    ]
}

/// A seed with random edits: characters replaced, inserted or removed.
fn mutated(seeds: Vec<String>) -> impl Strategy<Value = String> {
    (
        proptest::sample::select(seeds),
        prop::collection::vec((any::<usize>(), 0u8..3, any::<char>()), 1..6),
    )
        .prop_map(|(seed, edits)| {
            let mut chars: Vec<char> = seed.chars().collect();
            for (at, op, ch) in edits {
                let at = at % (chars.len() + 1);
                match op {
                    0 if at < chars.len() => chars[at] = ch,
                    1 => chars.insert(at, ch),
                    _ if at < chars.len() => {
                        chars.remove(at);
                    }
                    _ => chars.push(ch),
                }
            }
            chars.into_iter().collect()
        })
}

/// Text inputs of every kind above, plus deep nesting and plain noise.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => message_like(),
        3 => mutated(seeds()),
        2 => json_value().prop_map(|v| v.to_string()),
        1 => any::<String>(),
        1 => (1usize..20_000).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
        1 => (1usize..20_000).prop_map(|depth| format!(
            r#"{{"type":"heartbeat","metrics":{}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )),
    ]
}

fn typed_parse_error(code: ErrorCode) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(
            code,
            ErrorCode::BadJson
                | ErrorCode::MissingType
                | ErrorCode::UnknownType
                | ErrorCode::InvalidField
        ),
        "unexpected refusal code {:?}",
        code
    );
    Ok(())
}

#[test]
fn agent_frame_parser_refuses_hostile_text_with_a_typed_error() {
    run(
        "agent frames",
        hostile_text(),
        |text| match parse_agent_message(&ByteString::from(text)) {
            Ok(_) => Ok(()),
            Err(frame) => {
                prop_assert!(!frame.message.is_empty());
                typed_parse_error(frame.code)
            }
        },
    );
}

#[test]
fn web_frame_parser_refuses_hostile_text_with_a_typed_error() {
    run(
        "web frames",
        hostile_text(),
        |text| match parse_client_frame(&text) {
            Ok(_) => Ok(()),
            Err(frame) => {
                prop_assert!(!frame.message.is_empty());
                typed_parse_error(frame.code)
            }
        },
    );
}

/// A valid signed frame.
fn envelope(payload: &str, nonce: &str) -> String {
    let timestamp = envelope_timestamp(Utc::now());
    envelope_frame(
        &EnvelopeFields {
            kind: SignedKind::TerminalInput,
            session_id: SESSION,
            machine_id: MACHINE,
            payload,
            nonce,
            timestamp: &timestamp,
        },
        SECRET,
    )
}

#[test]
fn envelope_verification_accepts_only_what_was_signed() {
    let signed = envelope(r#"{"data":"ls\n"}"#, "00112233445566778899aabbccddeeff");
    let strategy = prop_oneof![
        4 => mutated(vec![signed]),
        1 => hostile_text(),
    ];
    run("envelopes", strategy, |text| {
        let mut nonces = NonceCache::new(16);
        if let Ok(verified) = verify_envelope(&text, SECRET, Utc::now(), &mut nonces) {
            // Only an edit that left the signed content as it was can pass.
            prop_assert_eq!(verified.kind, SignedKind::TerminalInput);
            prop_assert_eq!(verified.session_id, SESSION);
            prop_assert_eq!(verified.machine_id, MACHINE);
            prop_assert_eq!(verified.payload, r#"{"data":"ls\n"}"#);
            prop_assert!(
                verify_envelope(&text, SECRET, Utc::now(), &mut nonces).is_err(),
                "a replay passed"
            );
        }
        Ok(())
    });
}

#[test]
fn session_tokens_accept_only_what_was_issued() {
    let tokens = SessionTokens::new([7; 32]);
    let claims = SessionClaims {
        session_id: SESSION.into(),
        user_id: fleetgate_protocol::UserId::parse("8b0c2a4e-1111-4222-8333-944455556666")
            .expect("uuid"),
        machine_id: MACHINE.into(),
        expires_at: i64::MAX / 2,
    };
    let issued = tokens.issue(&claims);
    let strategy = prop_oneof![
        4 => mutated(vec![issued.clone()]),
        1 => any::<String>(),
        1 => "[0-9a-f.\\-]{0,300}",
    ];
    run("session tokens", strategy, |text| {
        if let Ok(found) = tokens.verify(&text, Utc::now().timestamp()) {
            prop_assert_eq!(&found, &claims);
            prop_assert_eq!(&text, &issued);
        }
        Ok(())
    });
}

#[test]
fn cluster_messages_open_only_as_sealed_on_their_subject() {
    use fleetgate_protocol::cluster::{ClusterKey, open, seal};
    let key = ClusterKey::from_hex(SECRET).expect("key");
    let subject = format!("fg.prod.agent.{MACHINE}.in");
    let sealed = seal(&key, "fra-1", &subject, r#"{"data":"ls\n"}"#, Utc::now());
    let strategy = prop_oneof![
        4 => mutated(vec![sealed]),
        1 => hostile_text(),
    ];
    run("cluster messages", strategy, |text| {
        let mut nonces = NonceCache::new(16);
        let opened = open(&key, &subject, text.as_bytes(), Utc::now(), &mut nonces);
        if let Ok(opened) = opened {
            // Only an edit that left the sealed content as it was can pass.
            prop_assert_eq!(opened.from, "fra-1");
            prop_assert_eq!(opened.body, r#"{"data":"ls\n"}"#);
            prop_assert!(
                open(&key, &subject, text.as_bytes(), Utc::now(), &mut nonces).is_err(),
                "a replay passed"
            );
        }
        Ok(())
    });
}
