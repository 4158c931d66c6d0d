//! Every figure fleetgate exports at `/metrics` (Prometheus; `metrics.bind`), named in one
//! place. Recording goes through the `metrics` facade: without an installed recorder (tests,
//! `metrics.bind` off) each call does nothing.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

use crate::protocol::ErrorCode;

/// Agents connected to this instance now.
pub fn agents_connected(count: usize) {
    gauge!("fleetgate_agents_connected").set(count as f64);
}

/// An operator socket opened (`+1`) or closed (`-1`).
pub fn web_sockets(change: f64) {
    gauge!("fleetgate_web_sockets").increment(change);
}

/// A terminal session started (`+1`) or ended (`-1`).
pub fn terminals_open(change: f64) {
    gauge!("fleetgate_terminals_open").increment(change);
}

/// A command started (`+1`) or finished (`-1`).
pub fn commands_running(change: f64) {
    gauge!("fleetgate_commands_running").increment(change);
}

/// A message taken in from an agent (`peer = "agent"`) or an operator (`"web"`), by type.
pub fn frame_in(peer: &'static str, kind: &'static str) {
    counter!("fleetgate_frames_in_total", "peer" => peer, "type" => kind).increment(1);
}

/// A message refused, by the error code it was answered with.
pub fn frame_refused(peer: &'static str, code: ErrorCode) {
    let reason = serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "other".to_owned());
    counter!("fleetgate_frames_refused_total", "peer" => peer, "reason" => reason).increment(1);
}

/// Terminal output relayed to operators, bytes.
pub fn terminal_output_bytes(bytes: usize) {
    counter!("fleetgate_terminal_output_bytes_total").increment(bytes as u64);
}

/// A request refused by a rate limit (`what`: `terminal_input`, `login`).
pub fn rate_limited(what: &'static str) {
    counter!("fleetgate_rate_limited_total", "what" => what).increment(1);
}

/// A login attempt (`outcome`: `ok`, `failed`, `throttled`).
pub fn login(outcome: &'static str) {
    counter!("fleetgate_logins_total", "outcome" => outcome).increment(1);
}

/// A batch of metric rows written, and how long its oldest sample waited for the database.
pub fn metric_batch_written(rows: usize, write_lag: Duration) {
    histogram!("fleetgate_metric_batch_rows").record(rows as f64);
    histogram!("fleetgate_db_write_lag_seconds").record(write_lag.as_secs_f64());
}

/// Whether this instance's NATS connection is up (cluster mode).
pub fn nats_connected(up: bool) {
    gauge!("fleetgate_nats_connected").set(if up { 1.0 } else { 0.0 });
}
