//! A bounded cache of recently seen nonces, for replay protection.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};

use super::envelope::TIMESTAMP_WINDOW;

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
