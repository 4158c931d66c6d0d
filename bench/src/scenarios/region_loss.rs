//! region-loss: three instances of one cluster (Frankfurt, Virginia, Singapore) sharing a
//! PostgreSQL database and NATS; N agents connected to Virginia, which is then killed
//! (SIGKILL). First with agents that stay down: how long until every machine shows offline
//! cluster-wide (the sweep of a surviving instance). Then, Virginia back and the agents
//! connected again, now failing over (`--server` Virginia, Frankfurt, Singapore): how long
//! until every machine is registered and shown online on the other instances.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fleetgate_agent::simulate::FleetConfig;
use serde_json::json;

use super::{ClusterPlace, secs};
use crate::checks::Checks;
use crate::db_probe::DbProbe;
use crate::fleet::{Fleet, wait_for};
use crate::report::{Table, publish};
use crate::server::ServerUnderTest;

/// Flags of `region-loss`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Agents connected to the instance that is lost.
    #[arg(long, default_value_t = 16_000)]
    pub agents: usize,
    /// `agents.offline_after_secs` of every instance.
    #[arg(long, default_value_t = 15)]
    pub offline_after_secs: u64,
    /// The PostgreSQL database the instances share.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres: String,
    /// The cluster's NATS (with JetStream).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// Give up waiting after this many seconds (each phase).
    #[arg(long, default_value_t = 180)]
    pub limit_secs: u64,
}

/// Polls the database every 100 ms until `done(online)`; when it got there.
async fn until_shown(
    probe: &DbProbe,
    since: Instant,
    limit: Duration,
    done: impl Fn(u64) -> bool,
) -> anyhow::Result<Option<Duration>> {
    while since.elapsed() < limit {
        if done(probe.machines_online().await?) {
            return Ok(Some(since.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(None)
}

/// How the fleet of both phases connects.
struct Fleets<'a> {
    keys: &'a str,
    probe: &'a DbProbe,
    heartbeat: Duration,
    agents: u64,
    limit: Duration,
}

impl Fleets<'_> {
    /// Every agent on `servers` (home first; with `reconnect` they fail over to the others);
    /// whether all registered and were shown online within the limit.
    async fn connect(
        &self,
        servers: Vec<String>,
        reconnect: bool,
    ) -> anyhow::Result<(Fleet, bool)> {
        let config = FleetConfig {
            servers,
            reconnect,
            heartbeat: self.heartbeat,
            ramp_per_sec: 4000,
            ..FleetConfig::new("")
        };
        let fleet = Fleet::start(config, self.keys);
        let registered = wait_for(&fleet.stats.registered, self.agents, self.limit).await;
        let agents = self.agents;
        let shown = until_shown(self.probe, Instant::now(), self.limit, |n| n >= agents).await?;
        Ok((fleet, registered.is_some() && shown.is_some()))
    }
}

/// Runs both phases.
pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Checks> {
    let mut checks = Checks::default();
    let agents = options.agents as u64;
    let limit = Duration::from_secs(options.limit_secs);
    let cluster = format!("loss{}", std::process::id());
    let place = ClusterPlace {
        postgres: &options.postgres,
        nats: &options.nats,
        cluster: &cluster,
    };
    let offline_after = options.offline_after_secs.to_string();
    // The simulated agents heartbeat every 5 s; a shorter offline window needs shorter beats.
    let heartbeat = options.offline_after_secs.clamp(1, 5);
    let heartbeat_secs = heartbeat.to_string();
    let settings = [
        ("AGENTS__OFFLINE_AFTER_SECS", offline_after.as_str()),
        ("AGENTS__HEARTBEAT_SECS", heartbeat_secs.as_str()),
    ];
    let mut frankfurt = ServerUnderTest::prepare(place.instance(binary, "fra", &settings)).await?;
    let keys = frankfurt.enroll(options.agents).await?;
    frankfurt.start().await?;
    let mut virginia =
        ServerUnderTest::prepare_peer(place.instance(binary, "iad", &settings), &frankfurt).await?;
    let mut singapore =
        ServerUnderTest::prepare_peer(place.instance(binary, "sgp", &settings), &frankfurt).await?;
    virginia.start().await?;
    singapore.start().await?;
    let probe = DbProbe::connect(&frankfurt.database_url(), frankfurt.schema()).await?;

    let fleets = Fleets {
        keys: &keys,
        probe: &probe,
        heartbeat: Duration::from_secs(heartbeat),
        agents,
        limit,
    };
    let home = virginia.agent_url();

    // Phase 1: the agents stay down with their instance.
    let (fleet, up) = fleets.connect(vec![home.clone()], false).await?;
    checks.check(
        up,
        format!("region-loss: {agents} agents shown online on Virginia"),
    );
    let killed = Instant::now();
    virginia.kill().await?;
    let all_offline = until_shown(&probe, killed, limit, |n| n == 0).await?;
    checks.check(
        all_offline.is_some(),
        "region-loss: every machine of the lost instance shown offline",
    );
    fleet.stop().await;

    // Phase 2: the agents fail over to the other regions.
    virginia.start().await?;
    let servers = vec![home, frankfurt.agent_url(), singapore.agent_url()];
    let (fleet, up) = fleets.connect(servers, true).await?;
    checks.check(up, "region-loss: the agents shown online on Virginia again");
    let registered_before = fleet.stats.registered.load(Ordering::Relaxed);
    let killed = Instant::now();
    virginia.kill().await?;
    let back = wait_for(&fleet.stats.registered, registered_before + agents, limit).await;
    let mut lowest_shown = agents;
    let mut shown_back = None;
    while killed.elapsed() < limit {
        let online = probe.machines_online().await?;
        lowest_shown = lowest_shown.min(online);
        if back.is_some() && online >= agents {
            shown_back = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    checks.check(
        back.is_some() && shown_back.is_some(),
        "region-loss: every agent registered elsewhere and shown online",
    );
    let failed = fleet.stats.failed.load(Ordering::Relaxed);
    fleet.stop().await;
    singapore.stop().await?;
    frankfurt.stop().await?;

    let mut table = Table::new(
        format!(
            "region-loss ({agents} agents on Virginia, SIGKILLed; 3 instances, offline after {} s)",
            options.offline_after_secs
        ),
        &["figure", "fleetgate"],
    );
    for (figure, value) in [
        (
            "agents stay down: every machine shown offline after",
            secs(all_offline, "not within the limit"),
        ),
        (
            "agents fail over: all registered elsewhere after",
            secs(back, "not within the limit"),
        ),
        (
            "agents fail over: all shown online again after",
            secs(shown_back, "not within the limit"),
        ),
        (
            "fewest shown online meanwhile",
            format!("{lowest_shown} of {agents}"),
        ),
        ("failed connection attempts", failed.to_string()),
    ] {
        table.row(vec![figure.into(), value]);
    }
    let results = json!({
        "agents": agents,
        "offline_after_secs": options.offline_after_secs,
        "all_offline_secs": all_offline.map(|d| d.as_secs_f64()),
        "all_registered_elsewhere_secs": back.map(|d| d.as_secs_f64()),
        "all_shown_online_secs": shown_back.map(|d| d.as_secs_f64()),
        "fewest_shown_online": lowest_shown,
        "failed_attempts": failed,
    });
    publish("region-loss", &[table], results)?;
    Ok(checks)
}
