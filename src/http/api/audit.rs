//! `GET /audit` (admin): the audit trail, newest first, with cursor pagination.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use fleetgate_actors::repo::queries::QueryAudit;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::caller::Caller;
use super::error::ApiError;
use crate::app::AppState;

/// Filters of `GET /audit`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    actor: Option<String>,
    machine: Option<Uuid>,
    action: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    /// The `nextCursor` of the previous page.
    cursor: Option<i64>,
    limit: Option<u64>,
}

/// `GET /audit?actor=&machine=&action=&since=&until=&cursor=&limit=`
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
            machine_id: f.machine,
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
    let items: Vec<_> = rows
        .iter()
        .map(|r| json!({
            "id": r.id, "at": r.at.to_rfc3339(), "actor": r.actor, "action": r.action,
            "machineId": r.machine_id.map(|m| m.to_string()), "detail": r.detail, "sourceIp": r.source_ip,
        }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items, "nextCursor": next_cursor })))
}
