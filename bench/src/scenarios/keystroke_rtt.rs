//! keystroke-rtt: one operator types single bytes one at a time into an echo shell; each
//! round trip is timed through fleetgate and through the raw relay.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use fleetgate_agent::simulate::FleetConfig;
use serde_json::json;

use super::connect_fleet;
use crate::checks::Checks;
use crate::fleet::Fleet;
use crate::relay::RelayProcess;
use crate::report::{Percentiles, Table, publish, ratio};
use crate::server::ServerOptions;
use crate::terminal_peer::{FleetgateTerminal, RelayTerminal, TerminalEvent, TerminalPeer};

/// Flags of `keystroke-rtt`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Timed inputs (after 100 untimed warm-up inputs).
    #[arg(long, default_value_t = 10_000)]
    pub inputs: usize,
}

/// Untimed inputs first, to warm caches and connections on both paths.
const WARM_UP: usize = 100;

/// A key for the relay run (the relay checks nothing; the agent verifies envelopes with it).
const RELAY_SECRET: &str = "5f1e0b9c8d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c";

/// Runs the relay, then fleetgate.
pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Checks> {
    let mut checks = Checks::default();
    let mut relay = relay_round_trips(options.inputs, &mut checks).await?;
    let mut gateway = fleetgate_round_trips(binary, options.inputs, &mut checks).await?;
    let (relay_p, gateway_p) = (Percentiles::of(&mut relay), Percentiles::of(&mut gateway));
    let mut table = Table::new(
        format!(
            "keystroke-rtt ({} single-byte inputs, one at a time, echo shell)",
            options.inputs
        ),
        &["round trip", "fleetgate", "raw relay", "fleetgate / relay"],
    );
    for (name, ours, theirs) in [
        ("p50", gateway_p.p50_ms, relay_p.p50_ms),
        ("p99", gateway_p.p99_ms, relay_p.p99_ms),
        ("max", gateway_p.max_ms, relay_p.max_ms),
    ] {
        table.row(vec![
            name.into(),
            format!("{ours:.3} ms"),
            format!("{theirs:.3} ms"),
            ratio(ours, theirs),
        ]);
    }
    let results = json!({
        "inputs": options.inputs,
        "fleetgate": gateway_p.to_json(),
        "relay": relay_p.to_json(),
        "p99_ratio": gateway_p.p99_ms / relay_p.p99_ms,
        "p50_ratio": gateway_p.p50_ms / relay_p.p50_ms,
    });
    publish("keystroke-rtt", &[table], results)?;
    Ok(checks)
}

/// Reads until `expected` comes back as output; anything else is skipped.
async fn await_echo(peer: &mut impl TerminalPeer, expected: &str) -> anyhow::Result<bool> {
    loop {
        match peer.next_event().await? {
            TerminalEvent::Output(text) => return Ok(text == expected),
            TerminalEvent::Closed => anyhow::bail!("terminal closed"),
            TerminalEvent::Dropped(_) | TerminalEvent::Other => continue,
        }
    }
}

/// Types `inputs` single bytes one at a time; returns the timed round trips.
async fn type_one_at_a_time(
    peer: &mut impl TerminalPeer,
    inputs: usize,
    checks: &mut Checks,
    path: &str,
) -> anyhow::Result<Vec<Duration>> {
    await_echo(peer, "sim$ ")
        .await
        .context("waiting for the prompt")?;
    let mut round_trips = Vec::with_capacity(inputs);
    let mut wrong = 0usize;
    for index in 0..WARM_UP + inputs {
        let key = char::from(b'a' + (index % 26) as u8).to_string();
        let sent = Instant::now();
        peer.send_input(&key).await?;
        if !await_echo(peer, &key).await? {
            wrong += 1;
        }
        if index >= WARM_UP {
            round_trips.push(sent.elapsed());
        }
    }
    checks.check(
        wrong == 0,
        format!("keystroke-rtt {path}: {wrong} echoes did not match their input"),
    );
    Ok(round_trips)
}

async fn relay_round_trips(inputs: usize, checks: &mut Checks) -> anyhow::Result<Vec<Duration>> {
    let relay = RelayProcess::start().await?;
    let fleet = Fleet::start(FleetConfig::new(relay.agent_url()), RELAY_SECRET);
    let mut peer = RelayTerminal::open(&relay.client_url(), RELAY_SECRET).await?;
    let round_trips = type_one_at_a_time(&mut peer, inputs, checks, "relay").await?;
    fleet.stop().await;
    Ok(round_trips)
}

async fn fleetgate_round_trips(
    binary: &Path,
    inputs: usize,
    checks: &mut Checks,
) -> anyhow::Result<Vec<Duration>> {
    // The default input limit (100 messages/s, burst 200 per session) is meant for humans;
    // typing one byte per round trip goes far beyond it.
    let unlimited = (inputs * 10).to_string();
    let server = ServerOptions {
        binary: binary.to_owned(),
        postgres: None,
        env: vec![
            (
                "FLEETGATE__LIMITS__TERMINAL_MSGS_PER_SEC".into(),
                unlimited.clone(),
            ),
            ("FLEETGATE__LIMITS__TERMINAL_BURST".into(), unlimited),
        ],
    };
    let connected = connect_fleet(server, 1, FleetConfig::new(""), Duration::from_secs(30)).await?;
    let machine_id = connected
        .keys
        .split_whitespace()
        .next()
        .context("enrolled machine id")?
        .to_owned();
    let token = connected.server.admin_token().await?;
    let mut peer = FleetgateTerminal::open(connected.server.addr(), &token, &machine_id).await?;
    let round_trips = type_one_at_a_time(&mut peer, inputs, checks, "fleetgate").await?;
    let mut server = connected.server;
    connected.fleet.stop().await;
    server.stop().await?;
    Ok(round_trips)
}
