//! cluster-fleet: N simulated agents spread over three instances of one cluster (Frankfurt,
//! Virginia, Singapore) sharing one PostgreSQL database and NATS, heartbeating for a window:
//! time until all are registered, heartbeats stored per second, write lag, RSS per agent and
//! CPU per instance, and whether presence agrees with the agents. One simulator process per
//! instance (`fleetgate-agent simulate`): no process holds more than ~19,000 sockets.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::json;

use super::{ClusterPlace, secs};
use crate::checks::Checks;
use crate::db_probe::{DbProbe, LagProbe};
use crate::report::{Percentiles, Table, publish};
use crate::server::ServerUnderTest;

/// Flags of `cluster-fleet`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Agents in all, a third per instance.
    #[arg(long, default_value_t = 50_000)]
    pub agents: usize,
    /// Seconds between heartbeats of each agent.
    #[arg(long, default_value_t = 5)]
    pub heartbeat_secs: u64,
    /// Measured window, seconds.
    #[arg(long, default_value_t = 60)]
    pub duration_secs: u64,
    /// Give up waiting for registrations after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub limit_secs: u64,
    /// The PostgreSQL database the instances share.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres: String,
    /// The cluster's NATS (with JetStream).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
}

const REGIONS: [&str; 3] = ["fra", "iad", "sgp"];

/// Entries in the cluster's presence bucket.
async fn presence_entries(nats: &str, cluster: &str) -> anyhow::Result<u64> {
    let client = async_nats::connect(nats).await?;
    let store = async_nats::jetstream::new(client)
        .get_key_value(format!("fg_{cluster}_presence"))
        .await?;
    let mut keys = store.keys().await?;
    let mut count = 0;
    while let Some(key) = keys.next().await {
        key?;
        count += 1;
    }
    Ok(count)
}

/// Runs the fleet.
pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Checks> {
    let mut checks = Checks::default();
    let agents = options.agents as u64;
    let simulator = binary.with_file_name("fleetgate-agent");
    anyhow::ensure!(
        simulator.exists(),
        "{} not found: build fleetgate-agent with the same profile",
        simulator.display()
    );
    let cluster = format!("fleet{}", std::process::id());
    let place = ClusterPlace {
        postgres: &options.postgres,
        nats: &options.nats,
        cluster: &cluster,
    };
    let heartbeat = options.heartbeat_secs.max(1).to_string();
    let settings = [("AGENTS__HEARTBEAT_SECS", heartbeat.as_str())];
    let mut first = ServerUnderTest::prepare(place.instance(binary, REGIONS[0], &settings)).await?;
    let keys = first.enroll(options.agents).await?;
    first.start().await?;
    let mut servers = vec![first];
    for region in &REGIONS[1..] {
        let options = place.instance(binary, region, &settings);
        let mut peer = ServerUnderTest::prepare_peer(options, &servers[0]).await?;
        peer.start().await?;
        servers.push(peer);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle: Vec<_> = servers
        .iter()
        .map(|s| s.sample())
        .collect::<Result<_, _>>()?;

    // One simulator per instance, a third of the keys each, heartbeats stamped.
    let epoch_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let epoch = UNIX_EPOCH + Duration::from_millis(epoch_ms);
    let lines: Vec<&str> = keys.lines().collect();
    let per_instance = lines.len().div_ceil(REGIONS.len());
    let keys_dir = tempfile::tempdir()?;
    let mut simulators = Vec::new();
    for (index, (server, chunk)) in servers.iter().zip(lines.chunks(per_instance)).enumerate() {
        let file = keys_dir.path().join(format!("keys-{index}.txt"));
        std::fs::write(&file, chunk.join("\n"))?;
        let ramp = (per_instance as u64 / options.heartbeat_secs.max(1)).max(1);
        let child = tokio::process::Command::new(&simulator)
            .args([
                "--server",
                &server.agent_url(),
                "--heartbeat-secs",
                &heartbeat,
            ])
            .args([
                "simulate",
                "--agents",
                &chunk.len().to_string(),
                "--reconnect",
            ])
            .args(["--ramp", &ramp.to_string()])
            .args(["--stamp-uptime-since-unix-ms", &epoch_ms.to_string()])
            .arg("--keys")
            .arg(&file)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", simulator.display()))?;
        simulators.push(child);
    }
    let probe = DbProbe::connect(&servers[0].database_url(), servers[0].schema()).await?;
    let started = Instant::now();
    let limit = Duration::from_secs(options.limit_secs);
    let mut registered_after = None;
    while started.elapsed() < limit {
        if probe.machines_online().await? >= agents {
            registered_after = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    checks.check(
        registered_after.is_some(),
        format!("cluster-fleet: not all {agents} machines shown online within the limit"),
    );

    // The window: stored heartbeats and their write lag.
    let mut lag = LagProbe::new(
        DbProbe::connect(&servers[0].database_url(), servers[0].schema()).await?,
        epoch,
    );
    let mut ignored = Vec::new();
    lag.poll(i64::MAX, &mut ignored).await?;
    let window_start_ms = SystemTime::now().duration_since(epoch)?.as_millis() as i64;
    let cpu_start: Vec<f64> = servers
        .iter()
        .map(|s| s.sample().map(|p| p.cpu_secs))
        .collect::<Result<_, _>>()?;
    let rows_start = lag.rows;
    let window = Duration::from_secs(options.duration_secs);
    let window_started = Instant::now();
    let mut lags = Vec::new();
    while window_started.elapsed() < window {
        lag.poll(window_start_ms, &mut lags).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = window_started.elapsed().as_secs_f64();
    let stored_per_sec = (lag.rows - rows_start) as f64 / elapsed;
    let ends: Vec<_> = servers
        .iter()
        .map(|s| s.sample())
        .collect::<Result<_, _>>()?;
    let online_at_end = probe.machines_online().await?;
    let present = presence_entries(&options.nats, &cluster).await?;
    checks.check(
        present == agents && online_at_end == agents,
        format!("cluster-fleet: presence {present} and shown online {online_at_end} of {agents}"),
    );
    let lag_p = Percentiles::of(&mut lags);
    for mut simulator in simulators {
        let _ = simulator.kill().await;
    }
    for server in servers.iter_mut().rev() {
        server.stop().await?;
    }

    let mut table = Table::new(
        format!(
            "cluster-fleet ({agents} agents over 3 instances, {} s heartbeats, {} s window)",
            options.heartbeat_secs, options.duration_secs
        ),
        &["figure", "fleetgate"],
    );
    let mut rows = vec![
        (
            "all shown online after".to_owned(),
            secs(registered_after, "not within the limit"),
        ),
        (
            "heartbeats stored per second".to_owned(),
            format!("{stored_per_sec:.0}"),
        ),
        (
            "write lag p50 / p99 / max".to_owned(),
            format!(
                "{:.0} / {:.0} / {:.0} ms",
                lag_p.p50_ms, lag_p.p99_ms, lag_p.max_ms
            ),
        ),
        (
            "presence entries / shown online".to_owned(),
            format!("{present} / {online_at_end}"),
        ),
    ];
    let mut per_instance_json = Vec::new();
    for ((region, idle), (end, cpu0)) in REGIONS.iter().zip(&idle).zip(ends.iter().zip(&cpu_start))
    {
        let rss_per_agent = end.rss_kib.saturating_sub(idle.rss_kib) as f64 / per_instance as f64;
        let cpu = (end.cpu_secs - cpu0) / elapsed * 100.0;
        rows.push((
            format!("{region}: RSS per agent, CPU"),
            format!("{rss_per_agent:.1} KiB, {cpu:.0} %"),
        ));
        per_instance_json.push(json!({"region": region, "rss_kib": end.rss_kib, "rss_per_agent_kib": rss_per_agent, "cpu_percent": cpu}));
    }
    for (figure, value) in rows {
        table.row(vec![figure, value]);
    }
    let results = json!({
        "agents": agents,
        "heartbeat_secs": options.heartbeat_secs,
        "window_secs": elapsed,
        "all_shown_online_secs": registered_after.map(|d| d.as_secs_f64()),
        "stored_per_sec": stored_per_sec,
        "write_lag": lag_p.to_json(),
        "presence_entries": present,
        "shown_online": online_at_end,
        "instances": per_instance_json,
    });
    publish("cluster-fleet", &[table], results)?;
    Ok(checks)
}
