//! connect-storm: N pre-enrolled agents connect and register as fast as they can.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fleetgate_agent::simulate::FleetConfig;
use serde_json::json;

use super::{connect_fleet, mib, secs, sqlite_server};
use crate::checks::Checks;
use crate::report::{Table, publish};

/// Flags of `connect-storm`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Fleet sizes to try, one fresh server each.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
    pub agents: Vec<usize>,
    /// Give up waiting for registrations after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub limit_secs: u64,
}

/// Runs the storm for each size.
pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Checks> {
    let mut checks = Checks::default();
    let mut table = Table::new(
        "connect-storm (agents start all at once, reconnecting with backoff on failure)",
        &[
            "agents",
            "all registered after",
            "failed attempts",
            "server peak RSS",
            "server RSS / agent",
            "server CPU",
        ],
    );
    let mut results = Vec::new();
    for &agents in &options.agents {
        let config = FleetConfig {
            ramp_per_sec: 0,
            reconnect: true,
            ..FleetConfig::new("")
        };
        let limit = Duration::from_secs(options.limit_secs);
        let connected = connect_fleet(sqlite_server(binary), agents, config, limit).await?;
        let after = connected.server.sample()?;
        let stats = &connected.fleet.stats;
        let failed = stats.failed.load(Ordering::Relaxed);
        let registered = stats.registered.load(Ordering::Relaxed);
        let per_agent = after.rss_kib.saturating_sub(connected.idle.rss_kib) as f64 / agents as f64;
        let cpu = after.cpu_secs - connected.idle.cpu_secs;
        checks.check(
            connected.all_registered_after.is_some(),
            format!(
                "connect-storm {agents}: only {registered} registered within {} s",
                options.limit_secs
            ),
        );
        table.row(vec![
            agents.to_string(),
            secs(connected.all_registered_after, "not all"),
            failed.to_string(),
            mib(after.peak_rss_kib),
            format!("{per_agent:.1} KiB"),
            format!("{cpu:.1} s"),
        ]);
        results.push(json!({
            "agents": agents,
            "all_registered_secs": connected.all_registered_after.map(|d| d.as_secs_f64()),
            "registered": registered,
            "failed_attempts": failed,
            "server_idle_rss_kib": connected.idle.rss_kib,
            "server_rss_kib": after.rss_kib,
            "server_peak_rss_kib": after.peak_rss_kib,
            "server_rss_per_agent_kib": per_agent,
            "server_cpu_secs": cpu,
        }));
        let mut server = connected.server;
        connected.fleet.stop().await;
        server.stop().await?;
    }
    publish("connect-storm", &[table], json!(results))?;
    Ok(checks)
}
