//! The fleet simulator: many agents in one process, each with its own key, plausible fake
//! metrics and ports, a fake shell (echo or flood) and a fake command runner. The load generator
//! of the benchmarks; it verifies every signed message like the real agent.

mod agent;
mod shell;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

pub use shell::ShellMode;

/// Counts shared by all simulated agents.
#[derive(Debug, Default)]
pub struct FleetStats {
    /// Sockets opened (every attempt that reached the server, reconnects included).
    pub connected: AtomicU64,
    /// `register` frames sent.
    pub registers_sent: AtomicU64,
    /// `registered` replies received (reconnects included).
    pub registered: AtomicU64,
    /// Agents registered and still connected right now.
    pub online: AtomicU64,
    /// Connection attempts or registrations that failed.
    pub failed: AtomicU64,
    /// Heartbeats sent.
    pub heartbeats: AtomicU64,
}

impl FleetStats {
    /// `connected / registered / online / failed / heartbeats` as a line.
    pub fn summary(&self) -> String {
        format!(
            "connected={} registered={} online={} failed={} heartbeats={}",
            self.connected.load(Ordering::Relaxed),
            self.registered.load(Ordering::Relaxed),
            self.online.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.heartbeats.load(Ordering::Relaxed),
        )
    }
}

/// Settings of a simulated fleet.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// `ws://host:port/ws/agent`, home first, then where agents fail over to (with
    /// `reconnect`).
    pub servers: Vec<String>,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// New agents started per second; 0 starts them all at once.
    pub ramp_per_sec: u32,
    /// Reconnect with the real agent's backoff (1 s doubling to 60 s, full jitter) when a
    /// connection fails or ends; otherwise an agent stops at its first failure.
    pub reconnect: bool,
    /// What a spawned shell does.
    pub shell: ShellMode,
    /// When set, heartbeats carry the milliseconds between this instant and their sending in
    /// `uptime`, so a benchmark can tell when each stored row was sent.
    pub stamp_uptime_since: Option<SystemTime>,
    /// Announce `flow_control` (hold shell output back until the server grants credit);
    /// without it a flood runs as a v1 agent's would.
    pub flow_control: bool,
}

impl FleetConfig {
    /// Defaults: 5 s heartbeats, 1000 agents/s, no reconnect, echo shells, fake uptimes, flow
    /// control.
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            servers: vec![server.into()],
            heartbeat: Duration::from_secs(5),
            ramp_per_sec: 1000,
            reconnect: false,
            shell: ShellMode::Echo,
            stamp_uptime_since: None,
            flow_control: true,
        }
    }
}

/// Reads secrets from a `machine add --count N --out FILE` file (`id secret` per line) or from a
/// file of bare keys.
pub fn read_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.split_whitespace().last())
        .map(fleetgate_protocol::key::machine_secret_from_key)
        .collect()
}

/// Starts one simulated agent per key, paced by the ramp; returns when all have ended.
/// Dropping the future stops every agent.
pub async fn run_fleet(config: FleetConfig, keys: Vec<String>, stats: Arc<FleetStats>) {
    let started = Instant::now();
    let per_agent = (config.ramp_per_sec > 0)
        .then(|| Duration::from_secs_f64(1.0 / f64::from(config.ramp_per_sec)));
    let mut agents = tokio::task::JoinSet::new();
    for (index, secret) in keys.into_iter().enumerate() {
        if let Some(per_agent) = per_agent {
            // Pace against the schedule, not with a sleep per agent: timers are coarser than
            // a millisecond, so sleeping per agent would cap the ramp far below the request.
            let due = started + per_agent.mul_f64(index as f64);
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let (config, stats) = (config.clone(), stats.clone());
        agents.spawn(agent::simulated_agent(index, secret, config, stats));
    }
    while agents.join_next().await.is_some() {}
}
