//! Counting protocol violations in a sliding one-minute window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Window over which violations are counted.
const WINDOW: Duration = Duration::from_secs(60);

/// Counts a peer's protocol violations; past the limit the socket is closed with 1008.
#[derive(Debug)]
pub struct ViolationCounter {
    limit: u32,
    seen: VecDeque<Instant>,
}

impl ViolationCounter {
    /// A counter that trips after more than `limit` violations within a minute.
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            seen: VecDeque::new(),
        }
    }

    /// Records one violation at `now`; returns `true` when the peer is over the limit.
    pub fn record(&mut self, now: Instant) -> bool {
        while let Some(first) = self.seen.front() {
            if now.duration_since(*first) >= WINDOW {
                self.seen.pop_front();
            } else {
                break;
            }
        }
        self.seen.push_back(now);
        self.seen.len() > self.limit as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_only_past_the_limit_within_a_minute() {
        let mut counter = ViolationCounter::new(3);
        let start = Instant::now();
        assert!(!counter.record(start));
        assert!(!counter.record(start));
        assert!(!counter.record(start));
        assert!(counter.record(start));
    }

    #[test]
    fn old_violations_expire() {
        let mut counter = ViolationCounter::new(2);
        let start = Instant::now();
        assert!(!counter.record(start));
        assert!(!counter.record(start));
        assert!(!counter.record(start + Duration::from_secs(61)));
        assert!(!counter.record(start + Duration::from_secs(62)));
    }
}
