//! Reconnect delays: exponential backoff with full jitter, 1 s doubling to a 60 s cap, reset
//! after a minute connected.

use std::time::Duration;

/// First delay ceiling.
const BASE: Duration = Duration::from_secs(1);
/// Largest delay ceiling.
const CAP: Duration = Duration::from_secs(60);
/// A connection that lasted this long resets the schedule.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);

/// The reconnect schedule.
#[derive(Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The ceiling of the next delay: 1 s, 2 s, 4 s, … 60 s.
    pub fn ceiling(&self) -> Duration {
        BASE.saturating_mul(1u32 << self.attempt.min(6)).min(CAP)
    }

    /// The next delay for a random `unit` in [0, 1) (full jitter), advancing the schedule.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let delay = self.ceiling().mul_f64(unit.clamp(0.0, 1.0));
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Called when a connection ends after lasting `connected_for`.
    pub fn connection_ended(&mut self, connected_for: Duration) {
        if connected_for >= STABLE_AFTER {
            self.attempt = 0;
        }
    }
}

/// A random number in [0, 1) from the OS RNG.
pub fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_to_the_cap() {
        let mut backoff = Backoff::default();
        let ceilings: Vec<u64> = (0..9)
            .map(|_| {
                let ceiling = backoff.ceiling().as_secs();
                backoff.next_delay(0.5);
                ceiling
            })
            .collect();
        assert_eq!(ceilings, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn delays_are_jittered_within_the_ceiling() {
        let mut backoff = Backoff::default();
        backoff.next_delay(0.0);
        backoff.next_delay(0.0);
        assert_eq!(backoff.next_delay(0.25), Duration::from_secs(1));
        assert_eq!(backoff.next_delay(0.0), Duration::ZERO);
        let unit = random_unit();
        assert!((0.0..1.0).contains(&unit));
    }

    #[test]
    fn a_stable_connection_resets_the_schedule() {
        let mut backoff = Backoff::default();
        for _ in 0..5 {
            backoff.next_delay(0.5);
        }
        backoff.connection_ended(Duration::from_secs(5));
        assert_eq!(backoff.ceiling(), Duration::from_secs(32));
        backoff.connection_ended(STABLE_AFTER);
        assert_eq!(backoff.ceiling(), Duration::from_secs(1));
    }
}
