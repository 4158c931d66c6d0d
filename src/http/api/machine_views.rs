//! Machines and their metrics as the API shows them (never a machine's secret).

use std::collections::HashMap;

use fleetgate_actors::cluster::view::ClusterView;
use fleetgate_actors::protocol::MachineId;
use fleetgate_actors::repo::machine_record::Machine;
use fleetgate_actors::repo::metric::{LatestMetrics, MetricSample};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::ApiError;
use crate::app::AppState;

/// A machine's latest sample as the API shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = MetricSample)]
#[serde(rename_all = "camelCase")]
pub(super) struct SampleView {
    #[schema(format = DateTime)]
    at: String,
    /// CPU use, percent.
    cpu: f64,
    /// Memory in use, bytes.
    ram_used: f64,
    ram_total: f64,
    /// Disk in use, bytes.
    disk_used: f64,
    disk_total: f64,
    /// Seconds since boot.
    uptime: i64,
}

impl From<&MetricSample> for SampleView {
    fn from(sample: &MetricSample) -> Self {
        Self {
            at: sample.at.to_rfc3339(),
            cpu: sample.cpu,
            ram_used: sample.ram_used,
            ram_total: sample.ram_total,
            disk_used: sample.disk_used,
            disk_total: sample.disk_total,
            uptime: sample.uptime,
        }
    }
}

/// The operating system a machine's agent reported.
#[derive(Serialize, ToSchema)]
#[schema(as = MachineOs)]
pub(super) struct OsView<'a> {
    distro: Option<&'a str>,
    release: Option<&'a str>,
    kernel: Option<&'a str>,
}

/// A machine as the API shows it (never its secret).
#[derive(Serialize, ToSchema)]
#[schema(as = Machine)]
#[serde(rename_all = "camelCase")]
pub(super) struct MachineView<'a> {
    id: Uuid,
    name: &'a str,
    hostname: &'a str,
    ip: &'a str,
    os: OsView<'a>,
    platform: Option<&'a str>,
    /// `online` or `offline`.
    #[schema(pattern = "^(online|offline)$")]
    status: &'a str,
    #[schema(format = DateTime)]
    last_seen: Option<String>,
    latest_metrics: Option<SampleView>,
    /// While online in a cluster: the region of the instance its agent is connected to.
    region: Option<String>,
    /// Whether its terminal sessions are recorded: `on`, `off`, or `default` (as the server's
    /// `recording.mode`).
    #[schema(pattern = "^(on|off|default)$")]
    recording: &'static str,
}

impl<'a> MachineView<'a> {
    pub(super) fn new(
        row: &'a Machine,
        latest: Option<&MetricSample>,
        cluster: &ClusterView,
    ) -> Self {
        Self {
            id: row.id.0,
            name: &row.name,
            hostname: &row.details.hostname,
            ip: &row.details.ip,
            os: OsView {
                distro: row.details.os_distro.as_deref(),
                release: row.details.os_release.as_deref(),
                kernel: row.details.os_kernel.as_deref(),
            },
            platform: row.details.platform.as_deref(),
            status: row.status(),
            last_seen: row.last_seen.map(|t| t.to_rfc3339()),
            latest_metrics: latest.map(SampleView::from),
            region: (row.status() == "online")
                .then(|| cluster.region_of(&row.id))
                .flatten(),
            recording: match row.recording {
                Some(true) => "on",
                Some(false) => "off",
                None => "default",
            },
        }
    }
}

/// The latest sample of each of `rows` (from memory, not one metrics query per row).
pub(super) async fn latest_of(
    state: &AppState,
    rows: &[Machine],
) -> Result<HashMap<MachineId, MetricSample>, ApiError> {
    let machine_ids = rows.iter().map(|row| row.id).collect();
    Ok(state
        .services
        .metrics
        .send(LatestMetrics { machine_ids })
        .await??)
}

/// A page of machines as the API shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct MachinePage<'a> {
    pub(super) items: Vec<MachineView<'a>>,
    /// The `cursor` of the next page; null on the last page (and without `limit`).
    pub(super) next_cursor: Option<Uuid>,
}
