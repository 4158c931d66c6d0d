//! Messages between instances of a cluster. Every message one instance publishes for another is
//! sealed with the cluster key: an HMAC-SHA256 over the sending instance, the subject it was
//! published on, a timestamp, a nonce and the body. The receiving instance opens it before it
//! acts on it (and before anything reaches an agent): a message without the key, changed on the
//! way, moved to another subject, too old or seen before is refused, with a typed reason.
//!
//! Wire form (one JSON object per NATS message):
//! `{"v":1,"from":"fra-1","subject":"fg.prod.agent.<machineId>.in","ts":"<RFC 3339>",
//! "nonce":"<32 hex>","body":"<text>","mac":"<64 hex>"}`; the MAC is taken over
//! `fleetgate-cluster-v1\n{from}\n{subject}\n{ts}\n{nonce}\n{body}`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::envelope::envelope_timestamp;
use crate::ids::random_hex_id;
use crate::nonce::{NonceCache, Unfresh, check_fresh};

/// How far a message's timestamp may be from the receiver's clock (instances run NTP).
pub const CLUSTER_WINDOW: chrono::Duration = chrono::Duration::seconds(30);

/// Version of the sealed form.
const VERSION: u8 = 1;
/// Domain separation: a cluster MAC is never valid as anything else.
const CONTEXT: &str = "fleetgate-cluster-v1";

/// The key every instance of one cluster shares (32 bytes or more).
#[derive(Clone)]
pub struct ClusterKey(Vec<u8>);

impl ClusterKey {
    /// The key from its hex form (at least 64 hex digits); `None` otherwise.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        (bytes.len() >= 32).then_some(Self(bytes))
    }

    /// The key from 32 random bytes (as kept in the secrets file).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes.to_vec())
    }

    fn mac(&self, fields: &SealedFields<'_>) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for part in [
            CONTEXT,
            fields.from,
            fields.subject,
            fields.ts,
            fields.nonce,
        ] {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        mac.update(fields.body.as_bytes());
        mac
    }
}

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

/// Why a cluster message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClusterRefusal {
    /// Not the sealed form, another version, or a field with a line break.
    #[error("malformed cluster message")]
    Malformed,
    /// The MAC does not match: no cluster key, or changed on the way.
    #[error("bad cluster MAC")]
    BadMac,
    /// Sealed for another subject than the one it arrived on.
    #[error("cluster message for another subject")]
    WrongSubject,
    /// Its timestamp is outside the window.
    #[error("stale cluster message")]
    Stale,
    /// Its nonce was seen before.
    #[error("replayed cluster message")]
    Replayed,
}

/// A message that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedMessage {
    /// The instance that sent it.
    pub from: String,
    /// What it carries.
    pub body: String,
}

/// The fields the MAC covers.
struct SealedFields<'a> {
    from: &'a str,
    subject: &'a str,
    ts: &'a str,
    nonce: &'a str,
    body: &'a str,
}

/// The wire form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    v: u8,
    from: String,
    subject: String,
    ts: String,
    nonce: String,
    body: String,
    mac: String,
}

/// Seals `body`, sent by instance `from` on `subject` at `now`.
pub fn seal(key: &ClusterKey, from: &str, subject: &str, body: &str, now: DateTime<Utc>) -> String {
    let (ts, nonce) = (envelope_timestamp(now), random_hex_id());
    let fields = SealedFields {
        from,
        subject,
        ts: &ts,
        nonce: &nonce,
        body,
    };
    let mac = hex::encode(key.mac(&fields).finalize().into_bytes());
    let sealed = Sealed {
        v: VERSION,
        from: from.to_owned(),
        subject: subject.to_owned(),
        ts,
        nonce,
        body: body.to_owned(),
        mac,
    };
    serde_json::to_string(&sealed).unwrap_or_else(|_| unreachable!("strings always serialize"))
}

/// Opens a message that arrived on `subject`: MAC, subject, timestamp within
/// [`CLUSTER_WINDOW`] of `now`, nonce not seen before (remembered only once the MAC holds).
pub fn open(
    key: &ClusterKey,
    subject: &str,
    message: &[u8],
    now: DateTime<Utc>,
    nonces: &mut NonceCache,
) -> Result<OpenedMessage, ClusterRefusal> {
    let sealed: Sealed = serde_json::from_slice(message).map_err(|_| ClusterRefusal::Malformed)?;
    let single_line = [&sealed.from, &sealed.subject, &sealed.ts, &sealed.nonce]
        .iter()
        .all(|field| !field.contains('\n'));
    if sealed.v != VERSION || !single_line {
        return Err(ClusterRefusal::Malformed);
    }
    let expected = hex::decode(&sealed.mac).map_err(|_| ClusterRefusal::BadMac)?;
    let fields = SealedFields {
        from: &sealed.from,
        subject: &sealed.subject,
        ts: &sealed.ts,
        nonce: &sealed.nonce,
        body: &sealed.body,
    };
    key.mac(&fields)
        .verify_slice(&expected)
        .map_err(|_| ClusterRefusal::BadMac)?;
    if sealed.subject != subject {
        return Err(ClusterRefusal::WrongSubject);
    }
    check_fresh(nonces, &sealed.ts, &sealed.nonce, now, CLUSTER_WINDOW).map_err(|unfresh| {
        match unfresh {
            Unfresh::Malformed => ClusterRefusal::Malformed,
            Unfresh::Stale => ClusterRefusal::Stale,
            Unfresh::Replayed => ClusterRefusal::Replayed,
        }
    })?;
    Ok(OpenedMessage {
        from: sealed.from,
        body: sealed.body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "5f0c1e2d3b4a59687766554433221100ffeeddccbbaa99887766554433221100";
    const SUBJECT: &str = "fg.prod.agent.6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f.in";

    fn key() -> ClusterKey {
        ClusterKey::from_hex(KEY).expect("key")
    }

    fn open_now(
        message: &str,
        subject: &str,
        nonces: &mut NonceCache,
    ) -> Result<OpenedMessage, ClusterRefusal> {
        open(&key(), subject, message.as_bytes(), Utc::now(), nonces)
    }

    #[test]
    fn a_sealed_message_opens_once_on_its_subject() {
        let mut nonces = NonceCache::new(100);
        let message = seal(
            &key(),
            "fra-1",
            SUBJECT,
            r#"{"type":"terminal_input"}"#,
            Utc::now(),
        );
        let opened = open_now(&message, SUBJECT, &mut nonces).expect("opens");
        assert_eq!(opened.from, "fra-1");
        assert_eq!(opened.body, r#"{"type":"terminal_input"}"#);
        assert_eq!(
            open_now(&message, SUBJECT, &mut nonces),
            Err(ClusterRefusal::Replayed)
        );
    }

    #[test]
    fn changed_moved_stale_or_unkeyed_messages_are_refused() {
        let mut nonces = NonceCache::new(100);
        let message = seal(&key(), "fra-1", SUBJECT, "body", Utc::now());
        let changed = |from: &str, to: &str| message.replacen(from, to, 1);
        assert_eq!(
            open_now(
                &changed(r#""body":"body""#, r#""body":"bodY""#),
                SUBJECT,
                &mut nonces
            ),
            Err(ClusterRefusal::BadMac)
        );
        assert_eq!(
            open_now(&changed("fra-1", "iad-1"), SUBJECT, &mut nonces),
            Err(ClusterRefusal::BadMac)
        );
        let other_subject = "fg.prod.agent.00000000-0000-4000-8000-000000000000.in";
        assert_eq!(
            open_now(&changed(SUBJECT, other_subject), other_subject, &mut nonces),
            Err(ClusterRefusal::BadMac),
            "the subject is sealed"
        );
        assert_eq!(
            open_now(&message, other_subject, &mut nonces),
            Err(ClusterRefusal::WrongSubject),
            "a captured message replayed on another subject"
        );
        let old = seal(
            &key(),
            "fra-1",
            SUBJECT,
            "body",
            Utc::now() - chrono::Duration::seconds(31),
        );
        assert_eq!(
            open_now(&old, SUBJECT, &mut nonces),
            Err(ClusterRefusal::Stale)
        );
        let other_key = ClusterKey::from_hex(&"ab".repeat(32)).expect("key");
        let forged = seal(&other_key, "fra-1", SUBJECT, "body", Utc::now());
        assert_eq!(
            open_now(&forged, SUBJECT, &mut nonces),
            Err(ClusterRefusal::BadMac)
        );
        assert_eq!(
            open_now("not json", SUBJECT, &mut nonces),
            Err(ClusterRefusal::Malformed)
        );
        assert!(nonces.is_empty(), "no refused message spends a nonce");
        open_now(&message, SUBJECT, &mut nonces).expect("the original still opens");
    }

    #[test]
    fn short_or_non_hex_keys_are_refused() {
        assert!(ClusterKey::from_hex("ab").is_none());
        assert!(ClusterKey::from_hex(&"zz".repeat(32)).is_none());
        assert!(ClusterKey::from_hex(KEY).is_some());
        assert_eq!(format!("{:?}", key()), "ClusterKey(..)");
    }
}
