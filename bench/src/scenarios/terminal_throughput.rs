//! terminal-throughput: an agent floods terminal output; MiB/s at the operator through
//! fleetgate and through the raw relay, and the same machine's heartbeat write lag meanwhile.
//! Then a reader ten times slower than the agent: with flow control the shell is held back
//! and nothing is dropped; a v1 agent (no flow control) is not held back, so the server keeps
//! its memory bounded and tells the reader what it dropped.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use fleetgate_agent::simulate::{FleetConfig, ShellMode};
use serde_json::json;

use super::{connect_fleet, mib, sqlite_server};
use crate::checks::Checks;
use crate::db_probe::{DbProbe, LagProbe};
use crate::relay::{self, RelayProcess};
use crate::report::{Percentiles, Table, publish, ratio};
use crate::server::ServerUnderTest;
use crate::terminal_peer::{RelayTerminal, TerminalEvent, TerminalPeer};

/// Flags of `terminal-throughput`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Output the agent floods in the fast-reader runs, MiB.
    #[arg(long, default_value_t = 256)]
    pub mib: u64,
    /// Output the agent writes in the slow-reader run, MiB.
    #[arg(long, default_value_t = 64)]
    pub slow_mib: u64,
    /// The agent's pace in the slow-reader run, MiB/s (the reader takes a tenth of it).
    #[arg(long, default_value_t = 8)]
    pub slow_agent_mib_per_sec: u64,
}

/// Output per agent frame (the real agent coalesces up to 16 KiB).
const CHUNK: usize = 16 * 1024;
/// fleetgate's default per-session output buffer (limits.terminal_buffer_bytes).
const BUFFER_LIMIT_KIB: u64 = 1024;

/// What a reader got.
#[derive(Debug, Default)]
struct Received {
    bytes: u64,
    dropped: u64,
    drop_notices: u64,
    elapsed: Duration,
    /// CPU the server (or relay) spent meanwhile.
    cpu_secs: f64,
}

/// Reads until the terminal ends, sleeping after each output so that it reads at most
/// `bytes_per_sec` (`None`: as fast as possible).
async fn read_all(
    peer: &mut impl TerminalPeer,
    bytes_per_sec: Option<u64>,
) -> anyhow::Result<Received> {
    let mut received = Received::default();
    let started = Instant::now();
    loop {
        match peer.next_event().await? {
            TerminalEvent::Output(text) => {
                received.bytes += text.len() as u64;
                if let Some(rate) = bytes_per_sec {
                    let due =
                        started + Duration::from_secs_f64(received.bytes as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
            }
            TerminalEvent::Dropped(bytes) => {
                received.dropped += bytes;
                received.drop_notices += 1;
            }
            TerminalEvent::Closed => break,
            TerminalEvent::Other => {}
        }
    }
    received.elapsed = started.elapsed();
    Ok(received)
}

/// Heartbeat interval of the flooding agent (its write lag is measured during the flood).
const HEARTBEAT: Duration = Duration::from_millis(250);

fn flood(bytes: u64, bytes_per_sec: Option<u64>, flow_control: bool) -> FleetConfig {
    FleetConfig {
        shell: ShellMode::Flood {
            bytes,
            chunk_bytes: CHUNK,
            bytes_per_sec,
        },
        heartbeat: HEARTBEAT,
        stamp_uptime_since: Some(SystemTime::now()),
        flow_control,
        ..FleetConfig::new("")
    }
}

fn mib_per_sec(received: &Received) -> f64 {
    received.bytes as f64 / 1_048_576.0 / received.elapsed.as_secs_f64()
}

/// Runs the relay, fleetgate with a fast reader, fleetgate with a slow reader.
pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Checks> {
    let mut checks = Checks::default();
    let bytes = options.mib * 1_048_576;
    let relay = through_relay(bytes).await?;
    checks.check(
        relay.bytes == bytes,
        format!("relay delivered {} of {bytes} bytes", relay.bytes),
    );
    let fast_run = through_fleetgate(binary, flood(bytes, None, true), None).await?;
    let gateway = &fast_run.received;
    checks.check(
        gateway.bytes + gateway.dropped == bytes,
        format!(
            "fleetgate: {} delivered + {} dropped ≠ {bytes} sent",
            gateway.bytes, gateway.dropped
        ),
    );
    checks.check(
        gateway.dropped == 0,
        format!(
            "flow control: {} bytes dropped for a fast reader",
            gateway.dropped
        ),
    );
    let mut fast = Table::new(
        format!(
            "terminal-throughput ({} MiB flood, {} KiB frames, reader as fast as it can, flow control)",
            options.mib,
            CHUNK / 1024
        ),
        &["figure", "fleetgate", "raw relay", "fleetgate / relay"],
    );
    let (ours, theirs) = (mib_per_sec(gateway), mib_per_sec(&relay));
    fast.row(vec![
        "MiB/s at the reader".into(),
        format!("{ours:.1}"),
        format!("{theirs:.1}"),
        ratio(ours, theirs),
    ]);
    fast.row(vec![
        "CPU seconds per GiB (server / relay process)".into(),
        format!("{:.2}", gateway.cpu_secs * 1024.0 / options.mib as f64),
        format!("{:.2}", relay.cpu_secs * 1024.0 / options.mib as f64),
        ratio(gateway.cpu_secs, relay.cpu_secs),
    ]);
    fast.row(vec![
        "bytes delivered".into(),
        gateway.bytes.to_string(),
        relay.bytes.to_string(),
        String::new(),
    ]);
    fast.row(vec![
        "bytes dropped (output_dropped)".into(),
        gateway.dropped.to_string(),
        "–".into(),
        String::new(),
    ]);
    let lag = |p: &Percentiles| format!("{:.0} / {:.0} ms", p.p50_ms, p.max_ms);
    fast.row(vec![
        format!(
            "same machine's heartbeat write lag p50 / max, before → during the flood ({} ms heartbeats)",
            HEARTBEAT.as_millis()
        ),
        format!(
            "{} → {}",
            lag(&fast_run.lag_before),
            lag(&fast_run.lag_during)
        ),
        "–".into(),
        String::new(),
    ]);
    checks.check(
        fast_run.lag_samples_during > 0,
        "no heartbeat of the flooding machine was stored during the flood",
    );

    let slow_bytes = options.slow_mib * 1_048_576;
    let agent_rate = options.slow_agent_mib_per_sec * 1_048_576;
    let reader_rate = agent_rate / 10;
    let held = through_fleetgate(
        binary,
        flood(slow_bytes, Some(agent_rate), true),
        Some(reader_rate),
    )
    .await?;
    checks.check(
        held.received.bytes == slow_bytes && held.received.dropped == 0,
        format!(
            "slow reader, flow control: {} delivered, {} dropped of {slow_bytes}",
            held.received.bytes, held.received.dropped
        ),
    );
    let reader_secs = slow_bytes as f64 / reader_rate as f64;
    checks.check(
        held.received.elapsed.as_secs_f64() >= 0.8 * reader_secs,
        format!(
            "slow reader, flow control: done in {:.1} s, the reader alone needs {reader_secs:.1} s",
            held.received.elapsed.as_secs_f64()
        ),
    );
    let unheld = through_fleetgate(
        binary,
        flood(slow_bytes, Some(agent_rate), false),
        Some(reader_rate),
    )
    .await?;
    let slow = &unheld.received;
    checks.check(
        slow.bytes + slow.dropped == slow_bytes,
        format!(
            "slow reader, v1 agent: {} delivered + {} dropped ≠ {slow_bytes} sent",
            slow.bytes, slow.dropped
        ),
    );
    checks.check(
        slow.drop_notices > 0,
        "slow reader, v1 agent: no output_dropped notice",
    );
    let mut slow_table = Table::new(
        format!(
            "terminal-throughput, slow reader (agent writes {} MiB at {} MiB/s, reader takes a tenth)",
            options.slow_mib, options.slow_agent_mib_per_sec
        ),
        &[
            "figure",
            "fleetgate-agent (flow control)",
            "v1 agent (no flow control)",
        ],
    );
    let both = |figure: &str, value: &dyn Fn(&FleetgateRun) -> String| {
        vec![figure.to_owned(), value(&held), value(&unheld)]
    };
    slow_table.row(both("bytes delivered", &|run| {
        run.received.bytes.to_string()
    }));
    slow_table.row(both("bytes dropped / notices", &|run| {
        format!("{} / {}", run.received.dropped, run.received.drop_notices)
    }));
    slow_table.row(both("seconds until the shell finished", &|run| {
        format!("{:.1}", run.received.elapsed.as_secs_f64())
    }));
    slow_table.row(both("server RSS idle → peak", &|run| {
        format!(
            "{} → {}",
            mib(run.memory.idle_kib),
            mib(run.memory.peak_kib)
        )
    }));
    slow_table.row(both("server RSS growth, first half → whole run", &|run| {
        let growth = run.memory.peak_kib.saturating_sub(run.memory.idle_kib);
        format!(
            "{} → {}",
            mib(run.memory.first_half_growth_kib),
            mib(growth)
        )
    }));
    slow_table.row(vec![
        "configured output buffer per session".into(),
        mib(BUFFER_LIMIT_KIB),
        mib(BUFFER_LIMIT_KIB),
    ]);
    let memory_json = |run: &FleetgateRun| {
        json!({
            "delivered": run.received.bytes, "dropped": run.received.dropped,
            "drop_notices": run.received.drop_notices, "secs": run.received.elapsed.as_secs_f64(),
            "server_idle_rss_kib": run.memory.idle_kib, "server_peak_rss_kib": run.memory.peak_kib,
            "server_growth_first_half_kib": run.memory.first_half_growth_kib,
        })
    };
    let results = json!({
        "flood_bytes": bytes,
        "fleetgate": { "mib_per_sec": ours, "delivered": gateway.bytes, "dropped": gateway.dropped, "secs": gateway.elapsed.as_secs_f64(), "server_cpu_secs": gateway.cpu_secs,
            "heartbeat_lag_before": fast_run.lag_before.to_json(), "heartbeat_lag_during": fast_run.lag_during.to_json() },
        "relay": { "mib_per_sec": theirs, "delivered": relay.bytes, "secs": relay.elapsed.as_secs_f64(), "relay_cpu_secs": relay.cpu_secs },
        "ratio": ours / theirs,
        "slow_reader": {
            "agent_bytes": slow_bytes, "agent_bytes_per_sec": agent_rate, "reader_bytes_per_sec": reader_rate,
            "flow_control": memory_json(&held), "v1_agent": memory_json(&unheld),
            "buffer_limit_kib": BUFFER_LIMIT_KIB,
        },
    });
    publish("terminal-throughput", &[fast, slow_table], results)?;
    Ok(checks)
}

async fn through_relay(bytes: u64) -> anyhow::Result<Received> {
    let (relay, fleet) = RelayProcess::start_with_agent(flood(bytes, None, false)).await?;
    let cpu_before = relay.sample()?.cpu_secs;
    let mut peer = RelayTerminal::open(&relay.client_url(), relay::AGENT_SECRET).await?;
    let mut received = read_all(&mut peer, None).await?;
    received.cpu_secs = relay.sample()?.cpu_secs - cpu_before;
    fleet.stop().await;
    Ok(received)
}

/// Server memory while a terminal ran.
#[derive(Debug, Default)]
struct Memory {
    idle_kib: u64,
    peak_kib: u64,
    first_half_growth_kib: u64,
}

/// Samples the server's RSS every 50 ms until stopped.
async fn watch_memory(
    server: &ServerUnderTest,
    idle_kib: u64,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<u64> {
    let mut samples = Vec::new();
    while !*stop.borrow() {
        if let Ok(sample) = server.sample() {
            samples.push(sample.rss_kib.max(idle_kib));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    samples
}

/// What one run through fleetgate measured.
struct FleetgateRun {
    received: Received,
    memory: Memory,
    /// The flooding machine's heartbeat write lag before the terminal opened.
    lag_before: Percentiles,
    /// The same while the flood ran.
    lag_during: Percentiles,
    lag_samples_during: usize,
}

/// Collects the write lag of heartbeats stored until `stop`.
async fn watch_lag(
    probe: &mut LagProbe,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<Duration>> {
    let mut lags = Vec::new();
    while !*stop.borrow() {
        probe.poll(0, &mut lags).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(lags)
}

async fn through_fleetgate(
    binary: &Path,
    config: FleetConfig,
    reader_rate: Option<u64>,
) -> anyhow::Result<FleetgateRun> {
    let epoch = config.stamp_uptime_since.unwrap_or_else(SystemTime::now);
    let connected =
        connect_fleet(sqlite_server(binary), 1, config, Duration::from_secs(30)).await?;
    let token = connected.server.admin_token().await?;
    let mut probe = LagProbe::new(
        DbProbe::connect(&connected.server.database_url(), connected.server.schema()).await?,
        epoch,
    );
    // A baseline of the machine's heartbeat write lag before any output flows.
    let (baseline_stop, baseline_watch) = tokio::sync::watch::channel(false);
    let baseline = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        baseline_stop.send_replace(true);
    };
    let (before, ()) = tokio::join!(watch_lag(&mut probe, baseline_watch), baseline);
    let lag_before = Percentiles::of(&mut before?);
    let idle = connected.server.sample()?;
    let idle_kib = idle.rss_kib;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let reading = async {
        let received = async {
            let mut peer = connected.open_terminal(&token).await?;
            read_all(&mut peer, reader_rate).await
        }
        .await;
        let _ = stop_tx.send(true);
        received
    };
    let (received, samples, during) = tokio::join!(
        reading,
        watch_memory(&connected.server, idle_kib, stop_rx.clone()),
        watch_lag(&mut probe, stop_rx)
    );
    let mut received = received?;
    let mut during = during?;
    received.cpu_secs = connected.server.sample()?.cpu_secs - idle.cpu_secs;
    let half = samples.len() / 2;
    let memory = Memory {
        idle_kib,
        peak_kib: samples.iter().copied().max().unwrap_or(idle_kib),
        first_half_growth_kib: samples[..half]
            .iter()
            .copied()
            .max()
            .unwrap_or(idle_kib)
            .saturating_sub(idle_kib),
    };
    let mut server = connected.server;
    connected.fleet.stop().await;
    server.stop().await?;
    Ok(FleetgateRun {
        received,
        memory,
        lag_before,
        lag_samples_during: during.len(),
        lag_during: Percentiles::of(&mut during),
    })
}
