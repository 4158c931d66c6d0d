//! A bounded cache of recently seen nonces, for replay protection.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};

use super::envelope::TIMESTAMP_WINDOW;

/// Why a signed message's timestamp and nonce were not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfresh {
    /// The timestamp is not RFC 3339.
    Malformed,
    /// The timestamp is outside the window.
    Stale,
    /// The nonce was seen before.
    Replayed,
}

/// Accepts a message whose MAC already holds if its `timestamp` is within `window` of `now`
/// and its `nonce` is new (the nonce is remembered only then).
pub fn check_fresh(
    nonces: &mut NonceCache,
    timestamp: &str,
    nonce: &str,
    now: DateTime<Utc>,
    window: chrono::Duration,
) -> Result<(), Unfresh> {
    let at = DateTime::parse_from_rfc3339(timestamp)
        .map_err(|_| Unfresh::Malformed)?
        .with_timezone(&Utc);
    if (now - at).abs() > window {
        return Err(Unfresh::Stale);
    }
    if !nonces.check_and_insert(nonce, at) {
        return Err(Unfresh::Replayed);
    }
    Ok(())
}

/// Remembers nonces for the timestamp window (twice over, to cover clock skew), up to a size.
#[derive(Debug)]
pub struct NonceCache {
    capacity: usize,
    order: VecDeque<(DateTime<Utc>, String)>,
    seen: HashSet<String>,
}

impl NonceCache {
    /// A cache holding at most `capacity` nonces.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            order: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    /// Records `nonce` seen at `at`; `false` if it was already seen (a replay).
    pub fn check_and_insert(&mut self, nonce: &str, at: DateTime<Utc>) -> bool {
        self.expire(at);
        if self.seen.contains(nonce) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some((_, oldest)) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(nonce.to_owned());
        self.order.push_back((at, nonce.to_owned()));
        true
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn expire(&mut self, now: DateTime<Utc>) {
        while let Some((at, _)) = self.order.front() {
            if now - *at > TIMESTAMP_WINDOW * 2 {
                if let Some((_, nonce)) = self.order.pop_front() {
                    self.seen.remove(&nonce);
                }
            } else {
                break;
            }
        }
    }
}
