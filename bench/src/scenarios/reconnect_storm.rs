//! reconnect-storm: N agents connected, the server killed (SIGKILL) and restarted: how long
//! until every agent is registered again, the peak registration rate, failures, and whether
//! any machine was shown online before its agent really reconnected.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fleetgate_agent::simulate::FleetConfig;
use serde_json::json;

use super::{connect_fleet, secs, sqlite_server};
use crate::checks::Checks;
use crate::db_probe::DbProbe;
use crate::report::{Table, publish};

/// Flags of `reconnect-storm`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Agents.
    #[arg(long, default_value_t = 10_000)]
    pub agents: usize,
    /// Give up waiting for re-registrations after this many seconds.
    #[arg(long, default_value_t = 180)]
    pub limit_secs: u64,
}

/// Samples of the registration counter, 100 ms apart.
const SAMPLE: Duration = Duration::from_millis(100);

/// Runs the storm.
pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Checks> {
    let mut checks = Checks::default();
    let agents = options.agents as u64;
    let config = FleetConfig {
        ramp_per_sec: 0,
        reconnect: true,
        ..FleetConfig::new("")
    };
    let limit = Duration::from_secs(options.limit_secs);
    let connected = connect_fleet(sqlite_server(binary), options.agents, config, limit).await?;
    checks.check(
        connected.all_registered_after.is_some(),
        "reconnect-storm: the first connect did not complete",
    );
    let stats = connected.fleet.stats.clone();
    let mut server = connected.server;
    // Let the agents' online status reach the database before the crash.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let registered_before = stats.registered.load(Ordering::Relaxed);
    let sent_before = stats.registers_sent.load(Ordering::Relaxed);
    let killed = Instant::now();
    server.kill().await?;
    let restart = server.start().await?;
    let failed_at_ready = stats.failed.load(Ordering::Relaxed);
    let ready_after = killed.elapsed();

    let probe = DbProbe::connect(&server.database_url(), server.schema()).await?;
    let mut early_online = 0u64;
    let mut worst_excess = 0i64;
    let mut counts = Vec::new();
    let mut all_back = None;
    while killed.elapsed() < limit {
        // Online as shown, then registrations sent since the restart: the second read is later,
        // so a shown machine that had not even sent `register` is a real early "online".
        let shown_online = probe.machines_online().await? as i64;
        let registers_since = (stats.registers_sent.load(Ordering::Relaxed) - sent_before) as i64;
        if shown_online > registers_since {
            early_online += 1;
            worst_excess = worst_excess.max(shown_online - registers_since);
        }
        let registered_since = stats.registered.load(Ordering::Relaxed) - registered_before;
        counts.push(registered_since);
        if registered_since >= agents && stats.online.load(Ordering::Relaxed) >= agents {
            all_back = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(SAMPLE).await;
    }
    let peak_per_sec = counts
        .windows(11)
        .map(|w| w[10] - w[0])
        .max()
        .unwrap_or_else(|| counts.last().copied().unwrap_or(0));
    let failures_after_ready = stats.failed.load(Ordering::Relaxed) - failed_at_ready;
    // The agents know they are registered as soon as the server answers; the status write
    // follows. How long until the machine list agrees:
    let mut online_at_end = probe.machines_online().await?;
    let mut shown_after = None;
    while killed.elapsed() < limit {
        online_at_end = probe.machines_online().await?;
        if online_at_end >= agents {
            shown_after = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(SAMPLE).await;
    }
    checks.check(
        all_back.is_some(),
        format!(
            "reconnect-storm: not all {agents} agents re-registered within {} s",
            options.limit_secs
        ),
    );
    checks.check(early_online == 0, format!("reconnect-storm: {early_online} samples showed up to {worst_excess} machines online before they reconnected"));
    checks.check(
        online_at_end == agents,
        format!("reconnect-storm: {online_at_end} of {agents} shown online at the end"),
    );

    let mut table = Table::new(
        format!(
            "reconnect-storm ({agents} agents, server SIGKILLed and restarted; agents back off 1 s → 60 s with full jitter)"
        ),
        &["figure", "fleetgate"],
    );
    table.row(vec![
        "server ready after restart".into(),
        format!(
            "{:.2} s (start {:.2} s)",
            ready_after.as_secs_f64(),
            restart.as_secs_f64()
        ),
    ]);
    table.row(vec![
        "all re-registered after the kill".into(),
        secs(all_back, "not all"),
    ]);
    table.row(vec![
        "all shown online after the kill".into(),
        secs(shown_after, "not all"),
    ]);
    table.row(vec![
        "peak registrations / s (1 s window)".into(),
        peak_per_sec.to_string(),
    ]);
    table.row(vec![
        "attempts refused while the server was down".into(),
        failed_at_ready.to_string(),
    ]);
    table.row(vec![
        "failed attempts after ready".into(),
        failures_after_ready.to_string(),
    ]);
    table.row(vec![
        "samples showing a machine online too early".into(),
        early_online.to_string(),
    ]);
    let results = json!({
        "agents": agents,
        "ready_after_kill_secs": ready_after.as_secs_f64(),
        "all_back_after_kill_secs": all_back.map(|d| d.as_secs_f64()),
        "peak_registrations_per_sec": peak_per_sec,
        "failed_while_down": failed_at_ready,
        "failed_after_ready": failures_after_ready,
        "early_online_samples": early_online,
        "online_at_end": online_at_end,
        "all_shown_online_after_kill_secs": shown_after.map(|d| d.as_secs_f64()),
    });
    connected.fleet.stop().await;
    server.stop().await?;
    publish("reconnect-storm", &[table], results)?;
    Ok(checks)
}
