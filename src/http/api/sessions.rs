//! `/sessions`: terminal session history, and the admin kill switch.

use actix_web::{HttpResponse, web};
use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::SessionId;
use fleetgate_actors::registry::FindTerminal;
use fleetgate_actors::repo::queries::ListSessions;
use fleetgate_actors::terminal::OwnerRequest;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::caller::Caller;
use super::checks::audit_committed;
use super::error::ApiError;
use crate::app::AppState;

/// Filters of `GET /sessions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFilter {
    user: Option<Uuid>,
    machine: Option<Uuid>,
    active: Option<bool>,
    limit: Option<u64>,
}

/// `GET /sessions`: an admin sees everyone's, others their own.
pub async fn list(
    caller: Caller,
    query: web::Query<SessionFilter>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let filter = query.into_inner();
    let user_id = if caller.role == Role::Admin {
        filter.user
    } else {
        Some(caller.user_id.0)
    };
    let rows = state
        .services
        .queries
        .send(ListSessions {
            user_id,
            machine_id: filter.machine,
            active: filter.active,
            limit: filter.limit.unwrap_or(100),
        })
        .await??;
    let items: Vec<_> = rows
        .iter()
        .map(|s| json!({
            "id": s.id, "userId": s.user_id.to_string(), "machineId": s.machine_id.to_string(),
            "startedAt": s.started_at.to_rfc3339(), "endedAt": s.ended_at.map(|t| t.to_rfc3339()),
            "bytesIn": s.bytes_in, "bytesOut": s.bytes_out, "closeReason": s.close_reason,
        }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// `DELETE /sessions/{id}` (admin): closes a live terminal.
pub async fn kill(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let id = SessionId::parse(&path.into_inner())
        .ok_or_else(|| ApiError::NotFound("no such live session".into()))?;
    let inboxes = state
        .services
        .registry
        .send(FindTerminal {
            session_id: id.clone(),
        })
        .await?
        .ok_or_else(|| ApiError::NotFound("no such live session".into()))?;
    audit_committed(
        &state,
        &caller,
        "terminal.kill",
        None,
        json!({ "sessionId": id.to_string() }),
    )
    .await?;
    inboxes.requests.do_send(OwnerRequest::Kill);
    Ok(HttpResponse::NoContent().finish())
}
