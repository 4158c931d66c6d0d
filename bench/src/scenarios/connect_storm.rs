//! connect-storm: N pre-enrolled agents connect and register as fast as they can; the same
//! fleet against the raw relay (accept, upgrade, one request/reply per agent) gives the ratio.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fleetgate_agent::simulate::FleetConfig;
use serde_json::json;

use super::{connect_fleet, mib, secs, sqlite_server};
use crate::checks::Checks;
use crate::fleet::{Fleet, wait_for};
use crate::relay::{AGENT_SECRET, RelayProcess};
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
            "raw relay",
            "fleetgate / relay",
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
        let mut server = connected.server;
        connected.fleet.stop().await;
        server.stop().await?;
        let relay = relay_storm(agents, limit).await?;
        let ratio = match (connected.all_registered_after, relay) {
            (Some(gateway), Some(relay)) => {
                format!(
                    "{:.2}×",
                    gateway.as_secs_f64() / relay.as_secs_f64().max(1e-3)
                )
            }
            _ => "–".into(),
        };
        table.row(vec![
            agents.to_string(),
            secs(connected.all_registered_after, "not all"),
            secs(relay, "not all"),
            ratio,
            failed.to_string(),
            mib(after.peak_rss_kib),
            format!("{per_agent:.1} KiB"),
            format!("{cpu:.1} s"),
        ]);
        results.push(json!({
            "agents": agents,
            "all_registered_secs": connected.all_registered_after.map(|d| d.as_secs_f64()),
            "relay_all_registered_secs": relay.map(|d| d.as_secs_f64()),
            "registered": registered,
            "failed_attempts": failed,
            "server_idle_rss_kib": connected.idle.rss_kib,
            "server_rss_kib": after.rss_kib,
            "server_peak_rss_kib": after.peak_rss_kib,
            "server_rss_per_agent_kib": per_agent,
            "server_cpu_secs": cpu,
        }));
    }
    publish("connect-storm", &[table], json!(results))?;
    Ok(checks)
}

/// The same storm against the raw relay: how long until `agents` agents got `registered`.
async fn relay_storm(agents: usize, limit: Duration) -> anyhow::Result<Option<Duration>> {
    let relay = RelayProcess::start().await?;
    let config = FleetConfig {
        ramp_per_sec: 0,
        reconnect: true,
        ..FleetConfig::new(relay.register_url())
    };
    let keys = format!("{AGENT_SECRET}\n").repeat(agents);
    let fleet = Fleet::start(config, &keys);
    let registered = wait_for(&fleet.stats.registered, agents as u64, limit).await;
    fleet.stop().await;
    Ok(registered)
}
