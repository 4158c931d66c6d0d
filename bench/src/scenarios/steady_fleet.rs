//! steady-fleet: N agents heartbeating; how many heartbeats are stored per second, how long
//! after sending each is committed (write lag), and whether a backlog builds up.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use fleetgate_agent::simulate::FleetConfig;
use serde_json::{Value, json};

use super::{connect_fleet, mib};
use crate::checks::Checks;
use crate::db_probe::{DbProbe, LagProbe};
use crate::report::{Percentiles, Table, publish};
use crate::server::ServerOptions;

/// Flags of `steady-fleet`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Agents.
    #[arg(long, default_value_t = 10_000)]
    pub agents: usize,
    /// Measured window, seconds (after every agent registered and one interval of warm-up).
    #[arg(long, default_value_t = 60)]
    pub duration_secs: u64,
    /// Heartbeat interval, seconds.
    #[arg(long, default_value_t = 5)]
    pub heartbeat_secs: u64,
    /// Databases to run against, in order: `sqlite`, `postgres`.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    pub databases: Vec<String>,
    /// PostgreSQL server (a fresh schema is made and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres_url: String,
}

/// Runs the window once per database.
pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Checks> {
    let mut checks = Checks::default();
    let mut table = Table::new(
        format!(
            "steady-fleet ({} agents, heartbeat every {} s, {} s window)",
            options.agents, options.heartbeat_secs, options.duration_secs
        ),
        &[
            "database",
            "heartbeats/s stored",
            "write lag p50",
            "write lag p99",
            "write lag max",
            "backlog start → end (max)",
            "drained after",
            "server RSS / agent",
            "server CPU",
        ],
    );
    let mut results = Vec::new();
    for database in &options.databases {
        let postgres = match database.as_str() {
            "sqlite" => None,
            "postgres" => Some(options.postgres_url.clone()),
            other => anyhow::bail!("unknown database {other:?}: use sqlite or postgres"),
        };
        let server = ServerOptions {
            binary: binary.to_owned(),
            postgres,
            env: Vec::new(),
        };
        let result = one_database(server, &options, &mut checks, database).await?;
        table.row(row_of(database, &result));
        results.push(result);
    }
    publish("steady-fleet", &[table], json!(results))?;
    Ok(checks)
}

fn row_of(database: &str, result: &Value) -> Vec<String> {
    let ms = |key: &str| format!("{:.0} ms", result["write_lag"][key].as_f64().unwrap_or(0.0));
    vec![
        database.to_owned(),
        format!("{:.0}", result["stored_per_sec"].as_f64().unwrap_or(0.0)),
        ms("p50_ms"),
        ms("p99_ms"),
        ms("max_ms"),
        format!(
            "{} → {} ({})",
            result["backlog_start"], result["backlog_end"], result["backlog_max"]
        ),
        result["drained_secs"]
            .as_f64()
            .map_or("not drained".into(), |s| format!("{s:.2} s")),
        format!(
            "{:.1} KiB",
            result["server_rss_per_agent_kib"].as_f64().unwrap_or(0.0)
        ),
        format!(
            "{:.0} %",
            result["server_cpu_percent"].as_f64().unwrap_or(0.0)
        ),
    ]
}

async fn one_database(
    server_options: ServerOptions,
    options: &Options,
    checks: &mut Checks,
    database: &str,
) -> anyhow::Result<Value> {
    let agents = options.agents;
    let interval = Duration::from_secs(options.heartbeat_secs.max(1));
    let epoch = SystemTime::now();
    let config = FleetConfig {
        heartbeat: interval,
        // Spread the fleet over one interval so heartbeats arrive evenly.
        ramp_per_sec: (agents as u64 / interval.as_secs()).max(1) as u32,
        reconnect: true,
        stamp_uptime_since: Some(epoch),
        ..FleetConfig::new("")
    };
    let connected = connect_fleet(server_options, agents, config, Duration::from_secs(180)).await?;
    checks.check(
        connected.all_registered_after.is_some(),
        format!("steady-fleet {database}: not every agent registered"),
    );
    let stats = connected.fleet.stats.clone();
    let mut probe = LagProbe::new(
        DbProbe::connect(&connected.server.database_url(), connected.server.schema()).await?,
        epoch,
    );
    let mut ignored = Vec::new();
    let warm_up = Instant::now();
    while warm_up.elapsed() < interval {
        probe.poll(i64::MAX, &mut ignored).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let window_start_ms = SystemTime::now().duration_since(epoch)?.as_millis() as i64;
    let start = Instant::now();
    let cpu_start = connected.server.sample()?.cpu_secs;
    let rows_start = probe.rows;
    let backlog =
        |probe: &LagProbe| stats.heartbeats.load(Ordering::Relaxed) as i64 - probe.rows as i64;
    let backlog_start = backlog(&probe);
    let mut backlog_max = backlog_start;
    let mut lags = Vec::new();
    let window = Duration::from_secs(options.duration_secs);
    while start.elapsed() < window {
        probe.poll(window_start_ms, &mut lags).await?;
        backlog_max = backlog_max.max(backlog(&probe));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let end_sample = connected.server.sample()?;
    let stored = probe.rows - rows_start;
    let backlog_end = backlog(&probe);
    let sent_by_end = stats.heartbeats.load(Ordering::Relaxed);
    let drain_start = Instant::now();
    let mut drained = None;
    while drain_start.elapsed() < Duration::from_secs(30) {
        probe.poll(i64::MAX, &mut ignored).await?;
        if probe.rows >= sent_by_end {
            drained = Some(drain_start.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    checks.check(
        drained.is_some(),
        format!(
            "steady-fleet {database}: {} heartbeats sent, only {} stored after 30 s",
            sent_by_end, probe.rows
        ),
    );
    let percentiles = Percentiles::of(&mut lags);
    let per_agent =
        end_sample.rss_kib.saturating_sub(connected.idle.rss_kib) as f64 / agents as f64;
    let result = json!({
        "database": database,
        "agents": agents,
        "heartbeat_secs": interval.as_secs(),
        "window_secs": elapsed,
        "all_registered_secs": connected.all_registered_after.map(|d| d.as_secs_f64()),
        "stored_in_window": stored,
        "stored_per_sec": stored as f64 / elapsed,
        "write_lag": percentiles.to_json(),
        "lag_samples": lags.len(),
        "backlog_start": backlog_start,
        "backlog_end": backlog_end,
        "backlog_max": backlog_max,
        "drained_secs": drained.map(|d| d.as_secs_f64()),
        "server_idle_rss_kib": connected.idle.rss_kib,
        "server_rss_kib": end_sample.rss_kib,
        "server_rss": mib(end_sample.rss_kib),
        "server_rss_per_agent_kib": per_agent,
        "server_cpu_percent": (end_sample.cpu_secs - cpu_start) / elapsed * 100.0,
        "failed_attempts": stats.failed.load(Ordering::Relaxed),
    });
    let mut server = connected.server;
    connected.fleet.stop().await;
    server.stop().await?;
    Ok(result)
}
