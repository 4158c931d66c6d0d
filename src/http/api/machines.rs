//! `/machines`: list, show, metrics, ports (enrol, rotate, delete: `machine_admin.rs`).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use fleetgate_actors::protocol::MachineId;
use fleetgate_actors::repo::access::{Action, MachineFilter, VisibleMachines};
use fleetgate_actors::repo::metric::MetricSample;
use fleetgate_actors::repo::queries::{ListPorts, MetricRange};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::caller::Caller;
use super::checks::authorize;
use super::error::ApiError;
use super::machine_views::{MachinePage, MachineView, latest_of};
use crate::app::AppState;

/// Most points a metrics query returns after downsampling.
const MAX_POINTS: i64 = 2000;

/// Query of `GET /machines`: a page (`limit`, `cursor`) and filters (`status`, `q`).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Page size, 1 to 1000; without it, every machine.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
    /// `nextCursor` of the previous page.
    cursor: Option<Uuid>,
    /// `online` or `offline`.
    #[param(pattern = "^(online|offline)$")]
    status: Option<String>,
    /// Case-insensitive substring of name, hostname or IP.
    q: Option<String>,
}

/// A machine id in the path.
pub(super) const MACHINE_ID: &str = "machine id";

/// Longest page of `GET /machines`.
const MAX_PAGE: u64 = 1000;

/// List the machines the caller may view.
///
/// Without `limit`, every machine the caller may view; with it, one page by id and the cursor
/// of the next (`nextCursor`, null at the end).
#[utoipa::path(get, path = "/machines", tag = "machines", params(ListQuery),
    responses(
        (status = 200, description = "machines with their latest metrics", body = MachinePage),
        (status = 400, description = "bad limit, cursor or status"),
    ))]
pub async fn list(
    caller: Caller,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if query.limit.is_some_and(|l| l == 0 || l > MAX_PAGE) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_PAGE}"
        )));
    }
    if query
        .status
        .as_deref()
        .is_some_and(|s| s != "online" && s != "offline")
    {
        return Err(ApiError::BadRequest(
            "status must be online or offline".into(),
        ));
    }
    let filter = MachineFilter {
        after: query.cursor.map(MachineId),
        limit: query.limit,
        status: query.status,
        text: query.q,
    };
    let rows = state
        .services
        .access
        .send(VisibleMachines {
            user_id: caller.user_id,
            filter,
        })
        .await?
        .map_err(|err| ApiError::Forbidden(err.to_string()))?;
    let next_cursor = match (query.limit, rows.last()) {
        (Some(limit), Some(last)) if rows.len() as u64 == limit => Some(last.id.0),
        _ => None,
    };
    let latest = latest_of(&state, &rows).await?;
    let items = rows
        .iter()
        .map(|row| MachineView::new(row, latest.get(&row.id), &state.services.cluster))
        .collect();
    Ok(HttpResponse::Ok().json(MachinePage { items, next_cursor }))
}

/// One machine with its latest metrics.
#[utoipa::path(get, path = "/machines/{id}", tag = "machines",
    params(("id" = Uuid, Path, description = MACHINE_ID)),
    responses(
        (status = 200, description = "the machine", body = MachineView),
        (status = 404, description = "no such machine, or not visible to the caller"),
    ))]
pub async fn show(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let row = authorize(&state, &caller, path.into_inner(), Action::View).await?;
    let latest = latest_of(&state, std::slice::from_ref(&row)).await?;
    Ok(HttpResponse::Ok().json(MachineView::new(
        &row,
        latest.get(&row.id),
        &state.services.cluster,
    )))
}

/// Query of `GET /machines/{id}/metrics`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// Start (RFC 3339); default an hour before `until`.
    since: Option<DateTime<Utc>>,
    /// End (RFC 3339); default now.
    until: Option<DateTime<Utc>>,
    /// Bucket width, seconds (default 60; widened so that at most 2000 points come back).
    step: Option<i64>,
}

/// Metrics averaged into buckets.
#[derive(Serialize, ToSchema)]
pub struct MetricPoints {
    /// Bucket width, seconds.
    step: i64,
    points: Vec<MetricPoint>,
}

/// One bucket: the average of its samples.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricPoint {
    /// Start of the bucket.
    #[schema(format = DateTime)]
    at: Option<String>,
    cpu: f64,
    ram_used: f64,
    ram_total: f64,
    disk_used: f64,
    disk_total: f64,
    /// Uptime at the last sample of the bucket, seconds.
    uptime: Option<i64>,
    /// Samples averaged.
    samples: usize,
}

impl MetricPoint {
    /// The average of `bucket` (not empty), which starts in the bucket of width `step`.
    fn average(bucket: &[&MetricSample], step: i64) -> Option<Self> {
        let first = bucket.first()?;
        let n = bucket.len() as f64;
        let avg = |f: fn(&MetricSample) -> f64| bucket.iter().map(|r| f(r)).sum::<f64>() / n;
        let start = first.at.timestamp() - first.at.timestamp().rem_euclid(step);
        Some(Self {
            at: DateTime::<Utc>::from_timestamp(start, 0).map(|t| t.to_rfc3339()),
            cpu: avg(|r| r.cpu),
            ram_used: avg(|r| r.ram_used),
            ram_total: avg(|r| r.ram_total),
            disk_used: avg(|r| r.disk_used),
            disk_total: avg(|r| r.disk_total),
            uptime: bucket.last().map(|r| r.uptime),
            samples: bucket.len(),
        })
    }
}

/// Averages rows into buckets of `step` seconds.
fn downsample(rows: &[MetricSample], step: i64) -> Vec<MetricPoint> {
    let mut out = Vec::new();
    let mut bucket: Vec<&MetricSample> = Vec::new();
    let flush = |bucket: &mut Vec<&MetricSample>, out: &mut Vec<MetricPoint>| {
        out.extend(MetricPoint::average(bucket, step));
        bucket.clear();
    };
    for row in rows {
        let key = |r: &MetricSample| r.at.timestamp().div_euclid(step);
        if bucket.first().is_some_and(|first| key(first) != key(row)) {
            flush(&mut bucket, &mut out);
        }
        bucket.push(row);
    }
    flush(&mut bucket, &mut out);
    out
}

/// A machine's metrics over a time range, downsampled.
#[utoipa::path(get, path = "/machines/{id}/metrics", tag = "machines",
    params(("id" = Uuid, Path, description = MACHINE_ID), MetricsQuery),
    responses(
        (status = 200, description = "averaged points", body = MetricPoints),
        (status = 400, description = "since is not before until"),
        (status = 404, description = "no such machine, or not visible to the caller"),
    ))]
pub async fn metrics(
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<MetricsQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let machine = path.into_inner();
    authorize(&state, &caller, machine, Action::View).await?;
    let until = query.until.unwrap_or_else(Utc::now);
    let since = query.since.unwrap_or(until - Duration::hours(1));
    if since >= until {
        return Err(ApiError::BadRequest("since must be before until".into()));
    }
    let span = (until - since).num_seconds().max(1);
    let step = query.step.unwrap_or(60).max(span / MAX_POINTS).max(1);
    let rows = state
        .services
        .queries
        .send(MetricRange {
            machine_id: MachineId(machine),
            since,
            until,
        })
        .await??;
    Ok(HttpResponse::Ok().json(MetricPoints {
        step,
        points: downsample(&rows, step),
    }))
}

/// A machine's open ports, as its agent last reported them.
#[derive(Serialize, ToSchema)]
pub struct PortList {
    items: Vec<PortView>,
}

/// One open port.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortView {
    port: i32,
    /// `tcp` or `udp`.
    proto: String,
    service: Option<String>,
    state: Option<String>,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// A machine's open ports.
#[utoipa::path(get, path = "/machines/{id}/ports", tag = "machines",
    params(("id" = Uuid, Path, description = MACHINE_ID)),
    responses(
        (status = 200, description = "the open ports", body = PortList),
        (status = 404, description = "no such machine, or not visible to the caller"),
    ))]
pub async fn ports(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let machine = path.into_inner();
    authorize(&state, &caller, machine, Action::View).await?;
    let rows = state
        .services
        .queries
        .send(ListPorts {
            machine_id: MachineId(machine),
        })
        .await??;
    let items = rows
        .into_iter()
        .map(|p| PortView {
            port: p.port,
            proto: p.proto,
            service: p.service,
            state: p.state,
            updated_at: p.updated_at.to_rfc3339(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(PortList { items }))
}
