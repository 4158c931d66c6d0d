//! `fleetgate-bench SCENARIO`: fleet scale, terminal latency and terminal throughput of a
//! fleetgate server running as its own process, compared with a raw WebSocket relay measured
//! in the same run. Results print as tables and go to `target/bench/SCENARIO.json`.
//! Correctness (everyone registered, every byte delivered or counted) is checked and fails the
//! run; speed never does.

mod checks;
mod db_probe;
mod fleet;
mod http;
mod proc_stats;
mod relay;
mod report;
mod scenarios;
mod server;
mod server_binary;
mod terminal_peer;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "fleetgate-bench",
    about = "fleetgate benchmarks against a raw relay"
)]
struct Cli {
    /// The `fleetgate` binary to test (default: built with cargo beside this binary, same profile).
    #[arg(long, global = true)]
    server_bin: Option<PathBuf>,
    #[command(subcommand)]
    scenario: Scenario,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
enum Scenario {
    /// N pre-enrolled agents connect at once: time until all are registered, failures, RSS, CPU.
    ConnectStorm(scenarios::connect_storm::Options),
    /// N agents heartbeating: heartbeats/s, write lag, backlog, RSS per agent, CPU.
    SteadyFleet(scenarios::steady_fleet::Options),
    /// Single-byte inputs one at a time through fleetgate and through the raw relay.
    KeystrokeRtt(scenarios::keystroke_rtt::Options),
    /// Keystrokes from an operator on one cluster instance to an agent on another (PostgreSQL, NATS).
    CrossRegionRtt(scenarios::cross_region_rtt::Options),
    /// An agent floods terminal output: MiB/s via fleetgate and the raw relay; then a slow reader.
    TerminalThroughput(scenarios::terminal_throughput::Options),
    /// N agents heartbeating: how fast the machine list answers a page and the whole list.
    MachineList(scenarios::machine_list::Options),
    /// N agents connected, the server killed and restarted: time until all are back.
    ReconnectStorm(scenarios::reconnect_storm::Options),
    /// N agents over three cluster instances heartbeating into one PostgreSQL (NATS too).
    ClusterFleet(scenarios::cluster_fleet::Options),
    /// Three cluster instances; the one holding N agents is killed: time until offline, and
    /// until the agents are back on the others (PostgreSQL, NATS).
    RegionLoss(scenarios::region_loss::Options),
    /// Runs the raw relay (started by the benchmarks themselves).
    #[command(hide = true)]
    Relay {
        /// Address to listen on.
        #[arg(long)]
        bind: SocketAddr,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(err) => {
            eprintln!("fleetgate-bench: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Runs one scenario; `Ok(false)` when a correctness check failed.
async fn run(cli: Cli) -> anyhow::Result<bool> {
    if let Scenario::Relay { bind } = cli.scenario {
        relay::serve(bind).await?;
        return Ok(true);
    }
    raise_open_files_limit();
    let binary = server_binary::locate(cli.server_bin).await?;
    let checks = match cli.scenario {
        Scenario::ConnectStorm(options) => scenarios::connect_storm::run(&binary, options).await?,
        Scenario::SteadyFleet(options) => scenarios::steady_fleet::run(&binary, options).await?,
        Scenario::KeystrokeRtt(options) => scenarios::keystroke_rtt::run(&binary, options).await?,
        Scenario::CrossRegionRtt(options) => {
            scenarios::cross_region_rtt::run(&binary, options).await?
        }
        Scenario::TerminalThroughput(options) => {
            scenarios::terminal_throughput::run(&binary, options).await?
        }
        Scenario::MachineList(options) => scenarios::machine_list::run(&binary, options).await?,
        Scenario::ReconnectStorm(options) => {
            scenarios::reconnect_storm::run(&binary, options).await?
        }
        Scenario::ClusterFleet(options) => scenarios::cluster_fleet::run(&binary, options).await?,
        Scenario::RegionLoss(options) => scenarios::region_loss::run(&binary, options).await?,
        Scenario::Relay { .. } => unreachable!("handled above"),
    };
    Ok(checks.report())
}

/// Thousands of sockets need more than the usual 1024 descriptors; children inherit the limit.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
