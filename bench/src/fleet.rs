//! The load generator: the agent crate's fleet simulator, run in the background of this
//! process, and a way to wait on its counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fleetgate_agent::simulate::{FleetConfig, FleetStats, read_keys, run_fleet};
use tokio::task::JoinHandle;

/// A simulated fleet running in this process; dropped, it disconnects every agent.
pub struct Fleet {
    /// Live counters.
    pub stats: Arc<FleetStats>,
    task: JoinHandle<()>,
}

impl Fleet {
    /// Starts one agent per key of a `machine add --out` file.
    pub fn start(config: FleetConfig, keys_file: &str) -> Self {
        let stats = Arc::new(FleetStats::default());
        let task = tokio::spawn(run_fleet(config, read_keys(keys_file), stats.clone()));
        Self { stats, task }
    }

    /// Disconnects every agent.
    pub async fn stop(mut self) {
        self.task.abort();
        // An aborted task ends with a cancellation error: that is the expected outcome.
        let _ = (&mut self.task).await;
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `counter` every 10 ms until it reaches `target` or `limit` passes; returns when it
/// got there, or `None`.
pub async fn wait_for(counter: &AtomicU64, target: u64, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if counter.load(Ordering::Relaxed) >= target {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}
