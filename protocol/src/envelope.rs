//! Signed server → agent envelopes (docs/protocol.md section 3) and their verification.

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::ids::random_hex_id;
use super::nonce::{NonceCache, Unfresh, check_fresh};

/// Accepted distance between an envelope's timestamp and the verifier's clock.
pub const TIMESTAMP_WINDOW: chrono::Duration = chrono::Duration::minutes(5);

/// A message that travels signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedKind {
    /// `terminal_stdin`, signed as `terminal_input`.
    TerminalInput,
    /// `terminal_resize`.
    TerminalResize,
    /// `execute_command`.
    ExecuteCommand,
    /// `terminal_close` (fleetgate extension).
    TerminalClose,
    /// `terminal_credit` (fleetgate extension `flow_control`): more output the agent may send.
    TerminalCredit,
}

impl SignedKind {
    /// The frame's `type`.
    pub fn wire_type(self) -> &'static str {
        match self {
            SignedKind::TerminalInput => "terminal_stdin",
            SignedKind::TerminalResize => "terminal_resize",
            SignedKind::ExecuteCommand => "execute_command",
            SignedKind::TerminalClose => "terminal_close",
            SignedKind::TerminalCredit => "terminal_credit",
        }
    }

    /// The type name inside the signed text.
    pub fn signed_type(self) -> &'static str {
        match self {
            SignedKind::TerminalInput => "terminal_input",
            other => other.wire_type(),
        }
    }

    fn from_wire(wire: &str) -> Option<Self> {
        [
            Self::TerminalInput,
            Self::TerminalResize,
            Self::ExecuteCommand,
            Self::TerminalClose,
            Self::TerminalCredit,
        ]
        .into_iter()
        .find(|kind| kind.wire_type() == wire)
    }
}

/// The fields of one envelope before signing.
#[derive(Debug, Clone)]
pub struct EnvelopeFields<'a> {
    /// What is signed.
    pub kind: SignedKind,
    /// The session (or the fresh id of a command).
    pub session_id: &'a str,
    /// The machine.
    pub machine_id: &'a str,
    /// The payload object as compact JSON.
    pub payload: &'a str,
    /// 32 hex chars, never reused.
    pub nonce: &'a str,
    /// ISO 8601 with milliseconds and `Z`.
    pub timestamp: &'a str,
}

/// The timestamp format of envelopes: `2026-01-02T03:04:05.678Z`.
pub fn envelope_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The exact text that is signed; `payload_literal` is the JSON string literal of the payload.
fn signed_text(fields: &EnvelopeFields<'_>, payload_literal: &str) -> String {
    format!(
        r#"{{"type":"{}","sessionId":"{}","machineId":"{}","payload":{},"nonce":"{}","timestamp":"{}"}}"#,
        fields.kind.signed_type(),
        fields.session_id,
        fields.machine_id,
        payload_literal,
        fields.nonce,
        fields.timestamp
    )
}

fn mac(secret: &str, text: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(text.as_bytes());
    mac
}

/// Lowercase hex HMAC-SHA256 over the signed text (key: ASCII bytes of the 64-hex secret).
pub fn envelope_hmac(fields: &EnvelopeFields<'_>, secret: &str) -> String {
    let literal = json_string_literal(fields.payload);
    hex::encode(
        mac(secret, &signed_text(fields, &literal))
            .finalize()
            .into_bytes(),
    )
}

fn json_string_literal(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// The complete frame; `payload` carries exactly the bytes that were signed.
pub fn envelope_frame(fields: &EnvelopeFields<'_>, secret: &str) -> String {
    let literal = json_string_literal(fields.payload);
    let hmac = hex::encode(
        mac(secret, &signed_text(fields, &literal))
            .finalize()
            .into_bytes(),
    );
    format!(
        r#"{{"type":"{}","data":{{"sessionId":"{}","machineId":"{}","payload":{},"nonce":"{}","timestamp":"{}","hmac":"{}"}}}}"#,
        fields.kind.wire_type(),
        fields.session_id,
        fields.machine_id,
        literal,
        fields.nonce,
        fields.timestamp,
        hmac
    )
}

/// Signs `payload` for `machine_id` now, with a fresh nonce.
pub fn sign_now(
    kind: SignedKind,
    session_id: &str,
    machine_id: &str,
    payload: &str,
    secret: &str,
) -> String {
    let nonce = random_hex_id();
    let timestamp = envelope_timestamp(Utc::now());
    let fields = EnvelopeFields {
        kind,
        session_id,
        machine_id,
        payload,
        nonce: &nonce,
        timestamp: &timestamp,
    };
    envelope_frame(&fields, secret)
}

/// Why an envelope was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not an envelope frame.
    #[error("malformed envelope")]
    Malformed,
    /// The HMAC does not match.
    #[error("bad signature")]
    BadSignature,
    /// The timestamp is outside ±5 minutes.
    #[error("stale or future timestamp")]
    StaleTimestamp,
    /// The nonce was seen within the window.
    #[error("replayed nonce")]
    Replayed,
}

#[derive(Deserialize)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: String,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    #[serde(rename = "sessionId")]
    session_id: String,
    #[serde(rename = "machineId")]
    machine_id: String,
    payload: String,
    nonce: String,
    timestamp: String,
    hmac: String,
}

/// A verified envelope's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEnvelope {
    /// What it is.
    pub kind: SignedKind,
    /// Session (or command envelope) id.
    pub session_id: String,
    /// Machine id.
    pub machine_id: String,
    /// The payload JSON text.
    pub payload: String,
}

/// Verifies a frame: signature, timestamp within the window of `now`, nonce not seen before.
pub fn verify_envelope(
    frame: &str,
    secret: &str,
    now: DateTime<Utc>,
    nonces: &mut NonceCache,
) -> Result<VerifiedEnvelope, EnvelopeError> {
    let raw: RawFrame =
        serde_json::from_str(frame.trim_end()).map_err(|_| EnvelopeError::Malformed)?;
    let kind = SignedKind::from_wire(&raw.kind).ok_or(EnvelopeError::Malformed)?;
    let data = raw.data;
    let fields = EnvelopeFields {
        kind,
        session_id: &data.session_id,
        machine_id: &data.machine_id,
        payload: &data.payload,
        nonce: &data.nonce,
        timestamp: &data.timestamp,
    };
    let expected = hex::decode(&data.hmac).map_err(|_| EnvelopeError::BadSignature)?;
    let literal = json_string_literal(&data.payload);
    mac(secret, &signed_text(&fields, &literal))
        .verify_slice(&expected)
        .map_err(|_| EnvelopeError::BadSignature)?;
    check_fresh(nonces, &data.timestamp, &data.nonce, now, TIMESTAMP_WINDOW).map_err(
        |unfresh| match unfresh {
            Unfresh::Malformed => EnvelopeError::Malformed,
            Unfresh::Stale => EnvelopeError::StaleTimestamp,
            Unfresh::Replayed => EnvelopeError::Replayed,
        },
    )?;
    Ok(VerifiedEnvelope {
        kind,
        session_id: data.session_id,
        machine_id: data.machine_id,
        payload: data.payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a97eef2fbf0dbe58d4d7411321e6641d463bdeb5ed1ec1dcc3fffc29b1085de4";
    const SESSION: &str = "3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c31";
    const MACHINE: &str = "6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f";
    const NONCE: &str = "00112233445566778899aabbccddeeff";
    const TIMESTAMP: &str = "2026-01-02T03:04:05.678Z";

    fn fields(kind: SignedKind, payload: &str) -> EnvelopeFields<'_> {
        EnvelopeFields {
            kind,
            session_id: SESSION,
            machine_id: MACHINE,
            payload,
            nonce: NONCE,
            timestamp: TIMESTAMP,
        }
    }

    fn vector_time() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(TIMESTAMP)
            .expect("ts")
            .with_timezone(&Utc)
    }

    #[test]
    fn protocol_test_vectors_match() {
        let input = serde_json::json!({"data": "ls -la\r"}).to_string();
        assert_eq!(input, "{\"data\":\"ls -la\\r\"}");
        assert_eq!(
            envelope_hmac(&fields(SignedKind::TerminalInput, &input), SECRET),
            "49dbcf9a7e4d184d8a875d88066559a5d76eb0255a1440a4e82bf59351838a2d"
        );
        assert_eq!(
            envelope_hmac(
                &fields(SignedKind::TerminalResize, r#"{"cols":120,"rows":40}"#),
                SECRET
            ),
            "ca3efffe784bab44b4f6bffe07de3be7c1ff2647bbbff07925a623dd066fa2c5"
        );
        let command = r#"{"commandId":"c0ffee00c0ffee00c0ffee00c0ffee00","command":"uptime"}"#;
        assert_eq!(
            envelope_hmac(&fields(SignedKind::ExecuteCommand, command), SECRET),
            "20bf69dbb63573d729fc70e6a51c8d2590a409e6cd6e8668d4c9f56edef62f4a"
        );
    }

    #[test]
    fn signed_text_matches_the_protocol_example() {
        let input = "{\"data\":\"ls -la\\r\"}";
        let literal = json_string_literal(input);
        assert_eq!(
            signed_text(&fields(SignedKind::TerminalInput, input), &literal),
            r#"{"type":"terminal_input","sessionId":"3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c31","machineId":"6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f","payload":"{\"data\":\"ls -la\\r\"}","nonce":"00112233445566778899aabbccddeeff","timestamp":"2026-01-02T03:04:05.678Z"}"#
        );
    }

    #[test]
    fn frame_uses_the_wire_type_and_the_signed_payload_bytes() {
        let input = "{\"data\":\"ls -la\\r\"}";
        let frame = envelope_frame(&fields(SignedKind::TerminalInput, input), SECRET);
        assert!(frame.starts_with(r#"{"type":"terminal_stdin","data":{"sessionId":"3f2a"#));
        assert!(frame.contains(r#""payload":"{\"data\":\"ls -la\\r\"}""#));
        assert!(frame.contains("49dbcf9a7e4d184d8a875d88066559a5d76eb0255a1440a4e82bf59351838a2d"));
        let mut nonces = NonceCache::new(16);
        let verified =
            verify_envelope(&frame, SECRET, vector_time(), &mut nonces).expect("verifies");
        assert_eq!(verified.payload, input);
        assert_eq!(verified.kind, SignedKind::TerminalInput);
    }

    #[test]
    fn a_changed_byte_in_any_signed_field_is_rejected() {
        let frame = envelope_frame(
            &fields(SignedKind::TerminalResize, r#"{"cols":120,"rows":40}"#),
            SECRET,
        );
        let tampered = [
            frame.replace("terminal_resize", "terminal_stdin"),
            frame.replace(SESSION, "3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c32"),
            frame.replace(MACHINE, "6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5e"),
            frame.replace("120", "121"),
            frame.replace(NONCE, "00112233445566778899aabbccddeefe"),
            frame.replace("05.678Z", "05.679Z"),
        ];
        for changed in tampered {
            let mut nonces = NonceCache::new(16);
            assert_eq!(
                verify_envelope(&changed, SECRET, vector_time(), &mut nonces),
                Err(EnvelopeError::BadSignature),
                "{changed}"
            );
        }
        let mut nonces = NonceCache::new(16);
        let other_secret = "b".repeat(64);
        assert_eq!(
            verify_envelope(&frame, &other_secret, vector_time(), &mut nonces),
            Err(EnvelopeError::BadSignature)
        );
    }

    #[test]
    fn stale_timestamps_and_replayed_nonces_are_rejected() {
        let frame = envelope_frame(
            &fields(SignedKind::TerminalResize, r#"{"cols":1,"rows":1}"#),
            SECRET,
        );
        let mut nonces = NonceCache::new(16);
        let late = vector_time() + chrono::Duration::minutes(6);
        assert_eq!(
            verify_envelope(&frame, SECRET, late, &mut nonces),
            Err(EnvelopeError::StaleTimestamp)
        );
        let early = vector_time() - chrono::Duration::minutes(6);
        assert_eq!(
            verify_envelope(&frame, SECRET, early, &mut nonces),
            Err(EnvelopeError::StaleTimestamp)
        );
        assert!(verify_envelope(&frame, SECRET, vector_time(), &mut nonces).is_ok());
        assert_eq!(
            verify_envelope(&frame, SECRET, vector_time(), &mut nonces),
            Err(EnvelopeError::Replayed)
        );
    }

    #[test]
    fn sign_now_uses_fresh_nonces() {
        let a = sign_now(SignedKind::TerminalClose, SESSION, MACHINE, "{}", SECRET);
        let b = sign_now(SignedKind::TerminalClose, SESSION, MACHINE, "{}", SECRET);
        let mut nonces = NonceCache::new(16);
        assert!(verify_envelope(&a, SECRET, Utc::now(), &mut nonces).is_ok());
        assert!(verify_envelope(&b, SECRET, Utc::now(), &mut nonces).is_ok());
    }

    #[test]
    fn nonce_cache_is_bounded() {
        let mut nonces = NonceCache::new(2);
        let now = Utc::now();
        assert!(nonces.check_and_insert("a", now));
        assert!(nonces.check_and_insert("b", now));
        assert!(nonces.check_and_insert("c", now));
        assert_eq!(nonces.len(), 2);
    }
}
