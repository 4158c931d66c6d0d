//! `/machines`: list, show, metrics, ports; admin-only enrolment, secret rotation and deletion.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use fleetgate_actors::protocol::MachineId;
use fleetgate_actors::registry::DisconnectAgent;
use fleetgate_actors::repo::access::{Action, MachineFilter, VisibleMachines};
use fleetgate_actors::repo::machine::EnrollMachine;
use fleetgate_actors::repo::machine_admin::{DeleteMachine, RotateSecret};
use fleetgate_actors::repo::metric::MetricSample;
use fleetgate_actors::repo::queries::{ListPorts, MetricRange};
use fleetgate_actors::socket::CLOSE_REVOKED;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::caller::Caller;
use super::checks::{audit_committed, authorize};
use super::error::ApiError;
use super::machine_views::{MachinePage, MachineView, latest_of};
use crate::app::AppState;

/// Most points a metrics query returns after downsampling.
const MAX_POINTS: i64 = 2000;

/// Query of `GET /machines`: a page (`limit`, `cursor`) and filters (`status`, `q`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u64>,
    cursor: Option<Uuid>,
    status: Option<String>,
    q: Option<String>,
}

/// Longest page of `GET /machines`.
const MAX_PAGE: u64 = 1000;

/// `GET /machines?limit=&cursor=&status=&q=`: without `limit`, every machine the caller may
/// view; with it, one page by id and the cursor of the next (`nextCursor`, null at the end).
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
        after: query.cursor,
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
        (Some(limit), Some(last)) if rows.len() as u64 == limit => Some(last.id.to_string()),
        _ => None,
    };
    let latest = latest_of(&state, &rows).await?;
    let items = rows
        .iter()
        .map(|row| MachineView::new(row, latest.get(&row.id)))
        .collect();
    Ok(HttpResponse::Ok().json(MachinePage { items, next_cursor }))
}

/// `GET /machines/{id}`
pub async fn show(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let row = authorize(&state, &caller, path.into_inner(), Action::View).await?;
    let latest = latest_of(&state, std::slice::from_ref(&row)).await?;
    Ok(HttpResponse::Ok().json(MachineView::new(&row, latest.get(&row.id))))
}

/// Query of `GET /machines/{id}/metrics`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    /// Bucket width, seconds.
    step: Option<i64>,
}

/// Averages rows into buckets of `step` seconds.
fn downsample(rows: &[MetricSample], step: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut bucket: Vec<&MetricSample> = Vec::new();
    let flush = |bucket: &mut Vec<&MetricSample>, out: &mut Vec<Value>| {
        if let Some(first) = bucket.first() {
            let n = bucket.len() as f64;
            let avg = |f: fn(&MetricSample) -> f64| bucket.iter().map(|r| f(r)).sum::<f64>() / n;
            let start = first.at.timestamp() - first.at.timestamp().rem_euclid(step);
            out.push(json!({
                "at": DateTime::<Utc>::from_timestamp(start, 0).map(|t| t.to_rfc3339()),
                "cpu": avg(|r| r.cpu), "ramUsed": avg(|r| r.ram_used), "ramTotal": avg(|r| r.ram_total),
                "diskUsed": avg(|r| r.disk_used), "diskTotal": avg(|r| r.disk_total),
                "uptime": bucket.last().map(|r| r.uptime), "samples": bucket.len(),
            }));
        }
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

/// `GET /machines/{id}/metrics?since=&until=&step=`
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
    Ok(HttpResponse::Ok().json(json!({ "step": step, "points": downsample(&rows, step) })))
}

/// `GET /machines/{id}/ports`
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
    let items: Vec<Value> = rows
        .iter()
        .map(|p| json!({ "port": p.port, "proto": p.proto, "service": p.service, "state": p.state, "updatedAt": p.updated_at.to_rfc3339() }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// Body of `POST /machines`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMachine {
    name: String,
}

fn connect_command(state: &AppState, secret: &str) -> String {
    let ws = state.public_url.replacen("http", "ws", 1);
    format!("fleetgate-agent --server {ws}/ws/agent --key {secret}")
}

/// `POST /machines` (admin): the machine and its secret, shown once.
pub async fn create(
    caller: Caller,
    body: web::Json<NewMachine>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let name = body.into_inner().name;
    if name.trim().is_empty() || name.len() > 255 {
        return Err(ApiError::BadRequest(
            "name must be 1 to 255 characters".into(),
        ));
    }
    let enrolled = state
        .services
        .machines
        .send(EnrollMachine { name: name.clone() })
        .await?
        .map_err(ApiError::internal)?;
    audit_committed(
        &state,
        &caller,
        "machine.add",
        Some(enrolled.id.0),
        json!({ "name": name }),
    )
    .await?;
    let command = connect_command(&state, &enrolled.secret);
    Ok(HttpResponse::Created().json(json!({
        "machine": { "id": enrolled.id.to_string(), "name": name, "status": "offline" },
        "secret": enrolled.secret, "connectCommand": command,
    })))
}

/// Audits why, then closes the machine's agent socket with 4403.
async fn revoke_agent(
    state: &AppState,
    caller: &Caller,
    machine_id: MachineId,
    reason: &'static str,
    action: &'static str,
) -> Result<(), ApiError> {
    audit_committed(state, caller, action, Some(machine_id.0), json!({})).await?;
    state.services.registry.do_send(DisconnectAgent {
        machine_id,
        code: CLOSE_REVOKED,
        reason,
    });
    Ok(())
}

/// `POST /machines/{id}/rotate-secret` (admin): new secret; the agent is disconnected.
pub async fn rotate_secret(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let machine_id = MachineId(path.into_inner());
    let rotated = state
        .services
        .machines
        .send(RotateSecret { machine_id })
        .await?
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound("no such machine".into()))?;
    revoke_agent(
        &state,
        &caller,
        machine_id,
        "secret rotated",
        "machine.rotate_secret",
    )
    .await?;
    let command = connect_command(&state, &rotated.secret);
    Ok(HttpResponse::Ok().json(json!({ "secret": rotated.secret, "connectCommand": command })))
}

/// `DELETE /machines/{id}` (admin): the agent is disconnected.
pub async fn delete(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let machine_id = MachineId(path.into_inner());
    let deleted = state
        .services
        .machines
        .send(DeleteMachine { machine_id })
        .await?
        .map_err(ApiError::internal)?;
    if !deleted {
        return Err(ApiError::NotFound("no such machine".into()));
    }
    revoke_agent(
        &state,
        &caller,
        machine_id,
        "machine deleted",
        "machine.delete",
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
