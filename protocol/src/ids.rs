//! Newtype ids, parsed at the edge.

use std::fmt;

use uuid::Uuid;

/// A machine's id (a UUID, sent as `machineId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MachineId(pub Uuid);

impl MachineId {
    /// Parses the wire form; `None` when it is not a UUID.
    pub fn parse(text: &str) -> Option<Self> {
        Uuid::parse_str(text).ok().map(Self)
    }
}

impl fmt::Display for MachineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Identifies one socket, so that a late close of an old socket never removes its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub u64);

impl ConnectionId {
    /// A process-unique connection id.
    pub fn next() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// 16 random bytes as 32 lowercase hex chars (session ids, command ids, nonces).
pub fn random_hex_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS RNG does not fail on Linux; fall back to a v4 UUID's randomness regardless.
        bytes = *Uuid::new_v4().as_bytes();
    }
    hex::encode(bytes)
}

/// Whether `text` has the shape of a 32-hex id.
fn is_hex_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A 32-hex random id type with parsing at the edge.
macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// A fresh random id.
            pub fn random() -> Self {
                Self(random_hex_id())
            }

            /// Parses the wire form; `None` unless it is 32 lowercase hex chars.
            pub fn parse(text: &str) -> Option<Self> {
                is_hex_id(text).then(|| Self(text.to_owned()))
            }

            /// The wire form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

hex_id!(
    /// A terminal session's id: 128 random bits as 32 lowercase hex chars.
    SessionId
);
hex_id!(
    /// A command's id: 128 random bits as 32 lowercase hex chars.
    CommandId
);

/// A user's id (a UUID; the JWT `sub`), parsed where it comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub Uuid);

impl UserId {
    /// Parses the wire form; `None` when it is not a UUID.
    pub fn parse(text: &str) -> Option<Self> {
        Uuid::parse_str(text).ok().map(Self)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
