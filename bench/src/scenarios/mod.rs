//! The scenarios, and the set-up most of them share: a server with N pre-enrolled machines and
//! a simulated fleet connecting to it.

pub mod cluster_fleet;
pub mod connect_storm;
pub mod cross_region_rtt;
pub mod keystroke_rtt;
pub mod machine_list;
pub mod reconnect_storm;
pub mod region_loss;
pub mod steady_fleet;
pub mod terminal_throughput;

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use fleetgate_agent::simulate::FleetConfig;

use crate::fleet::{Fleet, wait_for};
use crate::proc_stats::ProcSample;
use crate::server::{ServerOptions, ServerUnderTest};
use crate::terminal_peer::FleetgateTerminal;

/// A server with a fleet connected to it.
pub struct Connected {
    /// The server process.
    pub server: ServerUnderTest,
    /// The simulated agents.
    pub fleet: Fleet,
    /// The server before any agent connected.
    pub idle: ProcSample,
    /// From starting the fleet until every agent was registered (`None`: not within the limit).
    pub all_registered_after: Option<Duration>,
    /// `id secret` lines of the enrolled machines.
    pub keys: String,
}

impl Connected {
    /// Opens a terminal on the first enrolled machine as the holder of `token`.
    pub async fn open_terminal(&self, token: &str) -> anyhow::Result<FleetgateTerminal> {
        let machine_id = self
            .keys
            .split_whitespace()
            .next()
            .context("enrolled machine id")?;
        FleetgateTerminal::open(self.server.addr(), token, machine_id).await
    }
}

/// Starts a server, enrols `agents` machines, and starts a fleet with `config` (its server
/// URL is filled in) against it, waiting up to `limit` for every agent to register.
pub async fn connect_fleet(
    options: ServerOptions,
    agents: usize,
    mut config: FleetConfig,
    limit: Duration,
) -> anyhow::Result<Connected> {
    let mut server = ServerUnderTest::prepare(options).await?;
    let keys = server.enroll(agents).await?;
    server.start().await?;
    // Let start-up work (migrations, first flushes) settle before the idle reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = server.sample()?;
    config.servers = vec![server.agent_url()];
    let fleet = Fleet::start(config, &keys);
    let all_registered_after = wait_for(&fleet.stats.registered, agents as u64, limit).await;
    Ok(Connected {
        server,
        fleet,
        idle,
        all_registered_after,
        keys,
    })
}

/// Server options for `binary` with SQLite and default settings.
pub fn sqlite_server(binary: &Path) -> ServerOptions {
    ServerOptions {
        binary: binary.to_owned(),
        postgres: None,
        env: Vec::new(),
    }
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A duration in seconds with two decimals, or the reason there is none.
pub fn secs(duration: Option<Duration>, missing: &str) -> String {
    duration.map_or_else(
        || missing.to_owned(),
        |d| format!("{:.2} s", d.as_secs_f64()),
    )
}

/// Where the instances of a benchmark's cluster meet: one PostgreSQL, one NATS, one name.
pub struct ClusterPlace<'a> {
    /// The shared database.
    pub postgres: &'a str,
    /// The cluster's NATS.
    pub nats: &'a str,
    /// The cluster's name.
    pub cluster: &'a str,
}

impl ClusterPlace<'_> {
    /// Settings of an instance in `region`, with more `FLEETGATE__…` settings (`KEY`, value).
    pub fn instance(&self, binary: &Path, region: &str, more: &[(&str, &str)]) -> ServerOptions {
        let cluster = [
            ("CLUSTER__NATS_URL", self.nats),
            ("CLUSTER__NAME", self.cluster),
            ("CLUSTER__REGION", region),
        ];
        ServerOptions {
            binary: binary.to_owned(),
            postgres: Some(self.postgres.to_owned()),
            env: cluster
                .iter()
                .chain(more)
                .map(|(key, value)| (format!("FLEETGATE__{key}"), (*value).to_owned()))
                .collect(),
        }
    }
}
