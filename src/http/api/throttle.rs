//! Failed-login counting per user name and per source address within a minute. Past the
//! limit, a user name's attempts are refused with `Retry-After` until its oldest failure
//! expires; an address's attempts are only slowed down (see `auth::login`).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The counting window.
const WINDOW: Duration = Duration::from_secs(60);
/// Keys kept before expired ones are swept.
const SWEEP_ABOVE: usize = 10_000;

/// Recent failures by key (`user:<name>` or `ip:<address>`).
#[derive(Debug)]
pub struct LoginThrottle {
    limit: usize,
    failures: HashMap<String, VecDeque<Instant>>,
}

impl LoginThrottle {
    /// Allows `limit` failures per key per minute.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            failures: HashMap::new(),
        }
    }

    /// Seconds to wait before `key` may try again, if it is throttled now.
    pub fn retry_after(&mut self, key: &str, now: Instant) -> Option<u64> {
        let window = self.failures.get_mut(key)?;
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            window.pop_front();
        }
        if window.len() < self.limit {
            return None;
        }
        let oldest = *window.front()?;
        let wait = WINDOW.saturating_sub(now.duration_since(oldest));
        Some(wait.as_secs().max(1))
    }

    /// Records one failure of `key`.
    pub fn record_failure(&mut self, key: &str, now: Instant) {
        if self.failures.len() > SWEEP_ABOVE {
            self.failures
                .retain(|_, w| w.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        self.failures
            .entry(key.to_owned())
            .or_default()
            .push_back(now);
    }

    /// Forgets the failures of `key` (after a successful login).
    pub fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_after_the_limit_until_the_window_passes() {
        let mut throttle = LoginThrottle::new(2);
        let start = Instant::now();
        assert_eq!(throttle.retry_after("user:a", start), None);
        throttle.record_failure("user:a", start);
        throttle.record_failure("user:a", start);
        assert_eq!(
            throttle.retry_after("user:a", start + Duration::from_secs(10)),
            Some(50)
        );
        assert_eq!(throttle.retry_after("user:b", start), None);
        assert_eq!(
            throttle.retry_after("user:a", start + Duration::from_secs(61)),
            None
        );
    }
}
