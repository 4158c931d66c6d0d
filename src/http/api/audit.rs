//! `GET /audit` (admin): the audit trail, newest first, with cursor pagination.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use fleetgate_actors::protocol::MachineId;
use fleetgate_actors::repo::queries::QueryAudit;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::caller::Caller;
use super::error::ApiError;
use crate::app::AppState;

/// Filters of `GET /audit`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// Only this actor (a user id, or `login:NAME`, `cli`, …).
    actor: Option<String>,
    /// Only entries about this machine.
    machine: Option<Uuid>,
    /// Only this action, e.g. `terminal.open`.
    action: Option<String>,
    /// From (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Until (RFC 3339).
    until: Option<DateTime<Utc>>,
    /// The `nextCursor` of the previous page.
    cursor: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
}

/// A page of the audit trail, newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    items: Vec<AuditEntry>,
    /// The `cursor` of the next page; null on the last.
    next_cursor: Option<i64>,
}

/// One audit entry.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    id: i64,
    #[schema(format = DateTime)]
    at: String,
    actor: String,
    action: String,
    machine_id: Option<Uuid>,
    /// What the action was about (never a secret or a keystroke).
    detail: serde_json::Value,
    source_ip: Option<String>,
}

/// The audit trail (admin), newest first, with cursor pagination.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditFilter),
    responses(
        (status = 200, description = "a page of entries", body = AuditPage),
        (status = 403, description = "not an admin"),
    ))]
pub async fn list(
    caller: Caller,
    query: web::Query<AuditFilter>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let f = query.into_inner();
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .services
        .queries
        .send(QueryAudit {
            actor: f.actor,
            machine_id: f.machine.map(MachineId),
            action: f.action,
            since: f.since,
            until: f.until,
            before_id: f.cursor,
            limit,
        })
        .await??;
    let next_cursor = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let items = rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: r.at.to_rfc3339(),
            actor: r.actor,
            action: r.action,
            machine_id: r.machine_id.map(|m| m.0),
            detail: r.detail,
            source_ip: r.source_ip,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AuditPage { items, next_cursor }))
}
