//! fleetgate-agent: connects out to fleetgate, registers, heartbeats, and runs the shells and
//! commands the server signs for it. Reconnects forever with jittered exponential backoff.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use fleetgate_protocol::key::machine_secret_from_key;

use fleetgate_agent::backoff::{Backoff, random_unit};
use fleetgate_agent::connection::{AgentConfig, run_once};
use fleetgate_agent::failover::ServerList;

/// A connection that lasted this long served: the next one starts at the home server again.
const SERVED_AFTER: Duration = Duration::from_secs(10);

/// Command line of the agent.
#[derive(Debug, Parser)]
#[command(name = "fleetgate-agent", version, about)]
struct Args {
    /// TOML file with the same settings (server, key_file, key, heartbeat_secs, …); flags and
    /// environment variables win over it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Server WebSocket URL, e.g. wss://gateway:7070/ws/agent. Give it more than once (or a
    /// comma-separated list) to fail over: the first is home, the others are tried in order
    /// when a connection fails, and home again once a connection has served.
    #[arg(long, env = "FLEETGATE_AGENT_SERVER", value_delimiter = ',')]
    server: Vec<String>,
    /// File holding the key.
    #[arg(long, conflicts_with = "key")]
    key_file: Option<PathBuf>,
    /// The key (prefer --key-file or FLEETGATE_AGENT_KEY: command lines are visible to others).
    #[arg(long, env = "FLEETGATE_AGENT_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 5)]
    heartbeat_secs: u64,
    /// CA certificates (PEM) to trust for wss:// instead of the system roots.
    #[arg(long, conflicts_with = "pin_sha256")]
    ca_file: Option<PathBuf>,
    /// Trust exactly the server certificate with this SHA-256 fingerprint (what a server with
    /// `server.tls = "self-signed"` prints), for wss://.
    #[arg(long)]
    pin_sha256: Option<String>,
    /// Seconds before a command is killed.
    #[arg(long, default_value_t = 600)]
    command_timeout_secs: u64,
    /// Run a simulated fleet instead of one agent.
    #[command(subcommand)]
    command: Option<Mode>,
}

/// Other modes.
#[derive(Debug, Subcommand)]
enum Mode {
    /// N simulated agents in one process (keys from `fleetgate machine add --count N --out FILE`).
    Simulate(SimulateArgs),
}

/// Flags of `simulate`.
#[derive(Debug, clap::Args)]
struct SimulateArgs {
    /// How many agents (at most the number of keys).
    #[arg(long)]
    agents: usize,
    /// File of keys, one per line (`id secret` lines are fine).
    #[arg(long)]
    keys: PathBuf,
    /// New agents started per second (0: all at once).
    #[arg(long, default_value_t = 1000)]
    ramp: u32,
    /// Reconnect with backoff when a connection fails or ends, like the real agent.
    #[arg(long)]
    reconnect: bool,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    duration_secs: Option<u64>,
    /// Heartbeats carry in `uptime` the milliseconds since this Unix time (ms) instead of a
    /// fake uptime, so a benchmark reading the stored rows can tell when each was sent.
    #[arg(long)]
    stamp_uptime_since_unix_ms: Option<u64>,
}

/// Flags and environment, completed from the `--config` file where they were not given.
fn load_args() -> anyhow::Result<Args> {
    use fleetgate_agent::settings::{given, read_file};
    let matches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches)?;
    let Some(path) = args.config.clone() else {
        return Ok(args);
    };
    let file = read_file(&path)?;
    if !given(&matches, "server")
        && let Some(servers) = file.server
    {
        args.server = servers.into_vec();
    }
    if !given(&matches, "key_file") && !given(&matches, "key") {
        args.key_file = file.key_file.or(args.key_file);
        args.key = file.key.or(args.key);
    }
    if !given(&matches, "heartbeat_secs") {
        args.heartbeat_secs = file.heartbeat_secs.unwrap_or(args.heartbeat_secs);
    }
    if !given(&matches, "command_timeout_secs") {
        args.command_timeout_secs = file
            .command_timeout_secs
            .unwrap_or(args.command_timeout_secs);
    }
    if !given(&matches, "ca_file") && !given(&matches, "pin_sha256") {
        args.ca_file = file.ca_file.or(args.ca_file);
        args.pin_sha256 = file.pin_sha256.or(args.pin_sha256);
    }
    Ok(args)
}

fn secret(args: &Args) -> anyhow::Result<String> {
    let key = match (&args.key_file, &args.key) {
        (Some(path), _) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, Some(key)) => key.clone(),
        (None, None) => anyhow::bail!("no key: use --key-file, --key or FLEETGATE_AGENT_KEY"),
    };
    Ok(machine_secret_from_key(&key))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fleetgate-agent: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Runs the agent (or the simulator) until interrupted; errors are configuration errors.
async fn run() -> anyhow::Result<()> {
    let args = load_args()?;
    let mut servers = ServerList::new(args.server.clone())
        .context("no server: use --server, FLEETGATE_AGENT_SERVER or `server` in --config")?;
    if let Some(Mode::Simulate(simulation)) = &args.command {
        return simulate(&args, simulation).await;
    }
    let mut config = AgentConfig {
        server: servers.current().to_owned(),
        secret: secret(&args)?,
        heartbeat: Duration::from_secs(args.heartbeat_secs.max(1)),
        command_timeout: Duration::from_secs(args.command_timeout_secs.max(1)),
        ca_file: args.ca_file.clone(),
        pin_sha256: args.pin_sha256.clone(),
    };
    let mut backoff = Backoff::default();
    loop {
        let started = Instant::now();
        config.server = servers.current().to_owned();
        match run_once(&config).await {
            Ok(()) => tracing::info!(server = %config.server, "connection closed by the server"),
            Err(err) => {
                tracing::warn!(server = %config.server, error = %format!("{err:#}"), "connection failed")
            }
        }
        if started.elapsed() >= SERVED_AFTER {
            servers.served();
        } else {
            servers.failed();
        }
        backoff.connection_ended(started.elapsed());
        let delay = backoff.next_delay(random_unit());
        tracing::info!(delay_ms = delay.as_millis() as u64, "reconnecting");
        tokio::time::sleep(delay).await;
    }
}

/// Runs a simulated fleet, printing counts every second.
async fn simulate(args: &Args, simulation: &SimulateArgs) -> anyhow::Result<()> {
    let SimulateArgs {
        agents,
        ref keys,
        ramp,
        reconnect,
        duration_secs,
        stamp_uptime_since_unix_ms,
    } = *simulation;
    use fleetgate_agent::simulate::{FleetConfig, FleetStats, read_keys, run_fleet};
    let text =
        std::fs::read_to_string(keys).with_context(|| format!("reading {}", keys.display()))?;
    let keys: Vec<String> = read_keys(&text).into_iter().take(agents).collect();
    anyhow::ensure!(
        keys.len() == agents,
        "the key file holds {} keys for {agents} agents",
        keys.len()
    );
    let stats = std::sync::Arc::new(FleetStats::default());
    let config = FleetConfig {
        heartbeat: Duration::from_secs(args.heartbeat_secs.max(1)),
        ramp_per_sec: ramp,
        reconnect,
        servers: args.server.clone(),
        stamp_uptime_since: stamp_uptime_since_unix_ms
            .map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms)),
        ..FleetConfig::new("")
    };
    let started = Instant::now();
    let fleet = tokio::spawn(run_fleet(config, keys, stats.clone()));
    let mut report = tokio::time::interval(Duration::from_secs(1));
    let deadline = tokio::time::sleep(Duration::from_secs(
        duration_secs.unwrap_or(10 * 365 * 86_400),
    ));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = report.tick() => println!("{:>6.1}s {}", started.elapsed().as_secs_f64(), stats.summary()),
            _ = tokio::signal::ctrl_c() => break,
            _ = &mut deadline => break,
        }
        if fleet.is_finished() {
            break;
        }
    }
    println!(
        "final {:.1}s {}",
        started.elapsed().as_secs_f64(),
        stats.summary()
    );
    Ok(())
}
