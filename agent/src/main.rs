//! fleetgate-agent: connects out to fleetgate, registers, heartbeats, and runs the shells and
//! commands the server signs for it. Reconnects forever with jittered exponential backoff.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use fleetgate_protocol::key::machine_secret_from_key;

use fleetgate_agent::backoff::{Backoff, random_unit};
use fleetgate_agent::connection::{AgentConfig, run_once};

/// Command line of the agent.
#[derive(Debug, Parser)]
#[command(name = "fleetgate-agent", version, about)]
struct Args {
    /// Server WebSocket URL, e.g. ws://gateway:7070/ws/agent.
    #[arg(long, env = "FLEETGATE_AGENT_SERVER")]
    server: String,
    /// File holding the key.
    #[arg(long, conflicts_with = "key")]
    key_file: Option<PathBuf>,
    /// The key (prefer --key-file or FLEETGATE_AGENT_KEY: command lines are visible to others).
    #[arg(long, env = "FLEETGATE_AGENT_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 5)]
    heartbeat_secs: u64,
    /// Seconds before a command is killed.
    #[arg(long, default_value_t = 600)]
    command_timeout_secs: u64,
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
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = AgentConfig {
        server: args.server.clone(),
        secret: secret(&args)?,
        heartbeat: Duration::from_secs(args.heartbeat_secs.max(1)),
        command_timeout: Duration::from_secs(args.command_timeout_secs.max(1)),
    };
    let mut backoff = Backoff::default();
    loop {
        let started = Instant::now();
        match run_once(&config).await {
            Ok(()) => tracing::info!("connection closed by the server"),
            Err(err) => tracing::warn!(error = %format!("{err:#}"), "connection failed"),
        }
        backoff.connection_ended(started.elapsed());
        let delay = backoff.next_delay(random_unit());
        tracing::info!(delay_ms = delay.as_millis() as u64, "reconnecting");
        tokio::time::sleep(delay).await;
    }
}
