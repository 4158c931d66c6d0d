//! keystroke-rtt: one operator types single bytes one at a time into an echo shell; each
//! round trip is timed through fleetgate and through the raw relay.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use fleetgate_agent::simulate::FleetConfig;
use serde_json::json;

use super::{Connected, connect_fleet};
use crate::checks::Checks;
use crate::relay::{self, RelayProcess};
use crate::report::{Percentiles, Table, publish, ratio};
use crate::server::ServerOptions;
use crate::terminal_peer::{RelayTerminal, TerminalEvent, TerminalPeer};

/// Flags of `keystroke-rtt`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Timed inputs (after 100 untimed warm-up inputs).
    #[arg(long, default_value_t = 10_000)]
    pub inputs: usize,
}

/// Untimed inputs first, to warm caches and connections on both paths.
pub(super) const WARM_UP: usize = 100;

/// Inputs typed on one path before switching to the other: both paths are measured in
/// alternating blocks, so a noisy moment on the machine hits both alike.
pub(super) const BLOCK: usize = 500;

/// Opens a terminal through the relay and one through fleetgate, then types into them in
/// alternating blocks.
pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Checks> {
    let mut checks = Checks::default();
    let (relay, relay_fleet) = RelayProcess::start_with_agent(FleetConfig::new("")).await?;
    let mut relay_peer = RelayTerminal::open(&relay.client_url(), relay::AGENT_SECRET).await?;
    let gateway_fleet = fleetgate_with_one_agent(binary, options.inputs).await?;
    let token = gateway_fleet.server.admin_token().await?;
    let mut gateway_peer = gateway_fleet.open_terminal(&token).await?;
    let (mut relay, mut gateway) = (Vec::new(), Vec::new());
    let mut wrong = [0usize; 2];
    await_echo(&mut relay_peer, "sim$ ")
        .await
        .context("relay prompt")?;
    await_echo(&mut gateway_peer, "sim$ ")
        .await
        .context("fleetgate prompt")?;
    type_block(&mut relay_peer, WARM_UP, &mut Vec::new(), &mut wrong[0]).await?;
    type_block(&mut gateway_peer, WARM_UP, &mut Vec::new(), &mut wrong[1]).await?;
    while relay.len() < options.inputs {
        let block = BLOCK.min(options.inputs - relay.len());
        type_block(&mut relay_peer, block, &mut relay, &mut wrong[0]).await?;
        type_block(&mut gateway_peer, block, &mut gateway, &mut wrong[1]).await?;
    }
    for (path, wrong) in ["relay", "fleetgate"].iter().zip(wrong) {
        checks.check(
            wrong == 0,
            format!("keystroke-rtt {path}: {wrong} echoes did not match their input"),
        );
    }
    relay_fleet.stop().await;
    let mut server = gateway_fleet.server;
    gateway_fleet.fleet.stop().await;
    server.stop().await?;
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
pub(super) async fn await_echo(
    peer: &mut impl TerminalPeer,
    expected: &str,
) -> anyhow::Result<bool> {
    loop {
        match peer.next_event().await? {
            TerminalEvent::Output(text) => return Ok(text == expected),
            TerminalEvent::Closed => anyhow::bail!("terminal closed"),
            TerminalEvent::Dropped(_) | TerminalEvent::Other => continue,
        }
    }
}

/// Types `count` single bytes one at a time, appending each round trip to `round_trips`.
pub(super) async fn type_block(
    peer: &mut impl TerminalPeer,
    count: usize,
    round_trips: &mut Vec<Duration>,
    wrong: &mut usize,
) -> anyhow::Result<()> {
    for index in 0..count {
        let key = char::from(b'a' + (index % 26) as u8).to_string();
        let sent = Instant::now();
        peer.send_input(&key).await?;
        if !await_echo(peer, &key).await? {
            *wrong += 1;
        }
        round_trips.push(sent.elapsed());
    }
    Ok(())
}

/// A server with one simulated agent and an input limit raised for the test.
async fn fleetgate_with_one_agent(binary: &Path, inputs: usize) -> anyhow::Result<Connected> {
    // The default input limit (100 messages/s, burst 200 per session) is meant for humans;
    // typing one byte per round trip goes far beyond it.
    let unlimited = ((inputs + WARM_UP) * 10).to_string();
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
    connect_fleet(server, 1, FleetConfig::new(""), Duration::from_secs(30)).await
}
