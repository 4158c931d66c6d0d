//! `/metrics` in Prometheus text format on its own listener (`metrics.bind`, off by default):
//! the figures recorded through `fleetgate_actors::instruments`, plus the process's resident
//! memory, CPU time and open files, read from `/proc` at each scrape.

use std::net::SocketAddr;
use std::sync::OnceLock;

use actix_web::{App, HttpResponse, HttpServer, web};
use metrics::gauge;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The process-wide recorder (one per process, whatever the number of servers in it).
static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder once; `None` if another recorder was installed first.
pub fn recorder() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let lag_buckets = [
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0,
            ];
            let batch_buckets = [1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0];
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("fleetgate_db_write_lag_seconds".into()),
                    &lag_buckets,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("fleetgate_metric_batch_rows".into()),
                        &batch_buckets,
                    )
                })
                .and_then(|b| b.install_recorder())
                .map_err(|err| tracing::error!(error = %err, "metrics recorder not installed"))
                .ok()
        })
        .clone()
}

/// Serves `/metrics` on `bind`; returns the address it listens on.
pub fn start(bind: SocketAddr) -> std::io::Result<SocketAddr> {
    let Some(handle) = recorder() else {
        return Err(std::io::Error::other("no metrics recorder"));
    };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(handle.clone()))
            .route("/metrics", web::get().to(scrape))
    })
    .workers(1)
    .disable_signals()
    .bind(bind)?;
    let address = server.addrs().first().copied().unwrap_or(bind);
    actix_web::rt::spawn(server.run());
    tracing::info!(%address, "metrics on /metrics");
    Ok(address)
}

async fn scrape(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    record_process_figures();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}

/// Resident memory, CPU time and open files of this process, from `/proc/self`.
fn record_process_figures() {
    const PAGE_BYTES: f64 = 4096.0;
    const TICKS_PER_SEC: f64 = 100.0;
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm")
        && let Some(Ok(pages)) = statm.split_whitespace().nth(1).map(str::parse::<f64>)
    {
        gauge!("fleetgate_process_resident_memory_bytes").set(pages * PAGE_BYTES);
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may hold spaces): utime is 14th, stime 15th.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
            gauge!("fleetgate_process_cpu_seconds").set((user + system) / TICKS_PER_SEC);
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        gauge!("fleetgate_process_open_fds").set(entries.count() as f64);
    }
}
