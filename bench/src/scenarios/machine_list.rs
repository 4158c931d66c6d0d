//! machine-list: N agents heartbeating; how fast `GET /api/v1/machines` answers one page of 100
//! and the whole list, with every machine's latest metrics.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fleetgate_agent::simulate::FleetConfig;
use serde_json::json;

use super::{connect_fleet, sqlite_server};
use crate::checks::Checks;
use crate::http::request_as;
use crate::report::{Percentiles, Table, publish};

/// Flags of `machine-list`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Fleet size.
    #[arg(long, default_value_t = 10_000)]
    pub agents: usize,
    /// Requests per measurement.
    #[arg(long, default_value_t = 20)]
    pub samples: usize,
    /// Give up waiting for registrations after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub limit_secs: u64,
}

/// One timed `GET`; answers the time and the number of items.
async fn timed_list(
    addr: std::net::SocketAddr,
    token: &str,
    path: &str,
) -> anyhow::Result<(Duration, usize, usize)> {
    let started = Instant::now();
    let (status, body) = request_as(addr, Some(token), "GET", path, None).await?;
    let took = started.elapsed();
    if status != 200 {
        bail!("{path} answered {status}");
    }
    let reply: serde_json::Value = serde_json::from_str(&body).context("list reply")?;
    let items = reply["items"].as_array().context("items")?;
    let with_metrics = items
        .iter()
        .filter(|m| !m["latestMetrics"].is_null())
        .count();
    Ok((took, items.len(), with_metrics))
}

/// Runs the scenario.
pub async fn run(binary: &Path, options: Options) -> anyhow::Result<Checks> {
    let mut checks = Checks::default();
    let config = FleetConfig {
        ramp_per_sec: 0,
        reconnect: true,
        ..FleetConfig::new("")
    };
    let heartbeat = config.heartbeat;
    let limit = Duration::from_secs(options.limit_secs);
    let connected = connect_fleet(sqlite_server(binary), options.agents, config, limit).await?;
    checks.check(
        connected.all_registered_after.is_some(),
        format!("machine-list: not all {} agents registered", options.agents),
    );
    // A heartbeat round and a metric flush, so that every machine has a latest sample.
    tokio::time::sleep(heartbeat + Duration::from_secs(2)).await;
    let addr = connected.server.addr();
    let token = connected.server.admin_token().await?;
    let mut page = Vec::new();
    let mut full = Vec::new();
    let (mut page_items, mut full_items, mut full_metrics) = (0, 0, 0);
    for _ in 0..options.samples {
        let (took, items, _) = timed_list(addr, &token, "/api/v1/machines?limit=100").await?;
        page.push(took);
        page_items = items;
    }
    for _ in 0..options.samples.div_ceil(4) {
        let (took, items, metrics) = timed_list(addr, &token, "/api/v1/machines").await?;
        full.push(took);
        (full_items, full_metrics) = (items, metrics);
    }
    checks.check(
        page_items == options.agents.min(100),
        format!("a page listed {page_items} machines"),
    );
    checks.check(
        full_items == options.agents,
        format!(
            "the full list had {full_items} of {} machines",
            options.agents
        ),
    );
    checks.check(
        full_metrics == options.agents,
        format!("only {full_metrics} machines were listed with their latest metrics"),
    );
    let (page, full) = (Percentiles::of(&mut page), Percentiles::of(&mut full));
    let mut table = Table::new(
        format!(
            "machine-list ({} machines heartbeating, admin caller)",
            options.agents
        ),
        &["request", "p50", "max"],
    );
    let ms = |d: f64| format!("{d:.1} ms");
    table.row(vec![
        "GET /api/v1/machines?limit=100".into(),
        ms(page.p50_ms),
        ms(page.max_ms),
    ]);
    table.row(vec![
        format!("GET /api/v1/machines (all {full_items})"),
        ms(full.p50_ms),
        ms(full.max_ms),
    ]);
    let mut server = connected.server;
    connected.fleet.stop().await;
    server.stop().await?;
    publish(
        "machine-list",
        &[table],
        json!({ "agents": options.agents, "page_of_100": page.to_json(), "full_list": full.to_json() }),
    )?;
    Ok(checks)
}
