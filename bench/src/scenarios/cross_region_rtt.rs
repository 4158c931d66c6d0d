//! cross-region-rtt: keystroke round trips when the operator is on one instance of a cluster and
//! the agent on another (Frankfurt → NATS → Virginia → agent and back), against the same agent
//! reached on its own instance and against the raw relay, in alternating blocks of the same run.
//! Needs PostgreSQL (shared by the instances) and NATS with JetStream.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use fleetgate_agent::simulate::FleetConfig;
use serde_json::json;

use super::ClusterPlace;
use super::keystroke_rtt::{BLOCK, WARM_UP, await_echo, type_block};
use crate::checks::Checks;
use crate::fleet::{Fleet, wait_for};
use crate::relay::{self, RelayProcess};
use crate::report::{Percentiles, Table, publish, ratio};
use crate::server::{ServerOptions, ServerUnderTest};
use crate::terminal_peer::{FleetgateTerminal, RelayTerminal};

/// Flags of `cross-region-rtt`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Timed inputs per path (after 100 untimed warm-up inputs).
    #[arg(long, default_value_t = 10_000)]
    pub inputs: usize,
    /// The PostgreSQL database both instances share.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres: String,
    /// The cluster's NATS (with JetStream).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
}

/// Settings of one instance of the benchmark's cluster, in `region`.
fn instance(binary: &Path, options: &Options, cluster: &str, region: &str) -> ServerOptions {
    // The default input limit (100 messages/s per session) is meant for humans.
    let unlimited = ((options.inputs + WARM_UP) * 10).to_string();
    let limits = [
        ("LIMITS__TERMINAL_MSGS_PER_SEC", unlimited.as_str()),
        ("LIMITS__TERMINAL_BURST", unlimited.as_str()),
    ];
    let place = ClusterPlace {
        postgres: &options.postgres,
        nats: &options.nats,
        cluster,
    };
    place.instance(binary, region, &limits)
}

/// Opens a terminal through `addr` once the cluster knows where the machine is.
async fn open_when_reachable(
    addr: std::net::SocketAddr,
    token: &str,
    machine: &str,
) -> anyhow::Result<FleetgateTerminal> {
    let mut last = None;
    for _ in 0..50 {
        match FleetgateTerminal::open(addr, token, machine).await {
            Ok(terminal) => return Ok(terminal),
            Err(err) => last = Some(err),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last.context("no attempt")?).context("terminal through the other instance")
}

/// Two instances (Frankfurt, Virginia), one agent on Virginia; terminals through the relay, on
/// Virginia (same instance) and on Frankfurt (cross-region); typed into in alternating blocks.
pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Checks> {
    let mut checks = Checks::default();
    let (relay, relay_fleet) = RelayProcess::start_with_agent(FleetConfig::new("")).await?;
    let mut relay_peer = RelayTerminal::open(&relay.client_url(), relay::AGENT_SECRET).await?;

    let cluster = format!("bench{}", std::process::id());
    let mut frankfurt =
        ServerUnderTest::prepare(instance(binary, &options, &cluster, "fra")).await?;
    let keys = frankfurt.enroll(1).await?;
    frankfurt.start().await?;
    let virginia_options = instance(binary, &options, &cluster, "iad");
    let mut virginia = ServerUnderTest::prepare_peer(virginia_options, &frankfurt).await?;
    virginia.start().await?;
    let fleet = Fleet::start(
        FleetConfig {
            servers: vec![virginia.agent_url()],
            ..FleetConfig::new("")
        },
        &keys,
    );
    let registered = wait_for(&fleet.stats.registered, 1, Duration::from_secs(30)).await;
    checks.check(
        registered.is_some(),
        "cross-region-rtt: the agent registered on Virginia",
    );
    let machine = keys.split_whitespace().next().context("machine id")?;
    let token = frankfurt.admin_token().await?;
    let mut local_peer = open_when_reachable(virginia.addr(), &token, machine).await?;
    let mut remote_peer = open_when_reachable(frankfurt.addr(), &token, machine).await?;

    await_echo(&mut relay_peer, "sim$ ")
        .await
        .context("relay prompt")?;
    await_echo(&mut local_peer, "sim$ ")
        .await
        .context("same-instance prompt")?;
    await_echo(&mut remote_peer, "sim$ ")
        .await
        .context("cross-region prompt")?;
    let (mut relay_rtt, mut local_rtt, mut remote_rtt) = (Vec::new(), Vec::new(), Vec::new());
    let mut wrong = [0usize; 3];
    type_block(&mut relay_peer, WARM_UP, &mut Vec::new(), &mut wrong[0]).await?;
    type_block(&mut local_peer, WARM_UP, &mut Vec::new(), &mut wrong[1]).await?;
    type_block(&mut remote_peer, WARM_UP, &mut Vec::new(), &mut wrong[2]).await?;
    while relay_rtt.len() < options.inputs {
        let block = BLOCK.min(options.inputs - relay_rtt.len());
        type_block(&mut relay_peer, block, &mut relay_rtt, &mut wrong[0]).await?;
        type_block(&mut local_peer, block, &mut local_rtt, &mut wrong[1]).await?;
        type_block(&mut remote_peer, block, &mut remote_rtt, &mut wrong[2]).await?;
    }
    for (path, wrong) in ["relay", "same instance", "cross-region"].iter().zip(wrong) {
        checks.check(
            wrong == 0,
            format!("cross-region-rtt {path}: {wrong} echoes did not match their input"),
        );
    }
    relay_fleet.stop().await;
    fleet.stop().await;
    virginia.stop().await?;
    frankfurt.stop().await?;

    let relay_p = Percentiles::of(&mut relay_rtt);
    let local_p = Percentiles::of(&mut local_rtt);
    let remote_p = Percentiles::of(&mut remote_rtt);
    let mut table = Table::new(
        format!(
            "cross-region-rtt ({} single-byte inputs per path, one at a time, echo shell)",
            options.inputs
        ),
        &[
            "round trip",
            "cross-region",
            "same instance",
            "raw relay",
            "cross-region / relay",
        ],
    );
    for (name, remote, local, theirs) in [
        ("p50", remote_p.p50_ms, local_p.p50_ms, relay_p.p50_ms),
        ("p99", remote_p.p99_ms, local_p.p99_ms, relay_p.p99_ms),
        ("max", remote_p.max_ms, local_p.max_ms, relay_p.max_ms),
    ] {
        table.row(vec![
            name.into(),
            format!("{remote:.3} ms"),
            format!("{local:.3} ms"),
            format!("{theirs:.3} ms"),
            ratio(remote, theirs),
        ]);
    }
    let results = json!({
        "inputs": options.inputs,
        "cross_region": remote_p.to_json(),
        "same_instance": local_p.to_json(),
        "relay": relay_p.to_json(),
        "p99_ratio": remote_p.p99_ms / relay_p.p99_ms,
        "same_instance_p99_ratio": local_p.p99_ms / relay_p.p99_ms,
    });
    publish("cross-region-rtt", &[table], results)?;
    Ok(checks)
}
