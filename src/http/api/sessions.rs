//! `/sessions`: terminal session history, and the admin kill switch.

use actix_web::{HttpResponse, web};
use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::{MachineId, SessionId, UserId};
use fleetgate_actors::registry::FindTerminal;
use fleetgate_actors::repo::access::{Action, CheckAccess};
use fleetgate_actors::repo::queries::ListSessions;
use fleetgate_actors::terminal::OwnerRequest;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::caller::Caller;
use super::checks::audit_committed;
use super::error::ApiError;
use crate::app::AppState;

/// Filters of `GET /sessions`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SessionFilter {
    /// Only this user's (admins, and holders of `observe` on `machine` listing its open
    /// sessions; others always see their own).
    user: Option<Uuid>,
    /// Only on this machine.
    machine: Option<Uuid>,
    /// Only open (`true`) or ended (`false`) sessions.
    active: Option<bool>,
    /// At most this many (default 100).
    limit: Option<u64>,
}

/// Terminal sessions, newest first.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    items: Vec<SessionView>,
}

/// One terminal session.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    id: String,
    user_id: Uuid,
    machine_id: Uuid,
    #[schema(format = DateTime)]
    started_at: String,
    /// Null while the session is open.
    #[schema(format = DateTime)]
    ended_at: Option<String>,
    /// Keystroke bytes sent to the shell.
    bytes_in: i64,
    /// Output bytes received from the shell.
    bytes_out: i64,
    close_reason: Option<String>,
}

/// Terminal session history: an admin sees everyone's; a holder of the `observe` grant on a
/// machine sees everyone's open sessions there (`?machine=…&active=true`, to pick one to watch);
/// others see their own.
#[utoipa::path(get, path = "/sessions", tag = "sessions", params(SessionFilter),
    responses((status = 200, description = "sessions, newest first", body = SessionList)))]
pub async fn list(
    caller: Caller,
    query: web::Query<SessionFilter>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let filter = query.into_inner();
    let user_id = listable_user(&caller, &filter, &state).await?;
    let rows = state
        .services
        .queries
        .send(ListSessions {
            user_id,
            machine_id: filter.machine.map(MachineId),
            active: filter.active,
            limit: filter.limit.unwrap_or(100),
        })
        .await??;
    let items = rows
        .into_iter()
        .map(|s| SessionView {
            id: s.id.to_string(),
            user_id: s.user_id.0,
            machine_id: s.machine_id.0,
            started_at: s.started_at.to_rfc3339(),
            ended_at: s.ended_at.map(|t| t.to_rfc3339()),
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            close_reason: s.close_reason,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SessionList { items }))
}

/// Whose sessions `filter` may show the caller.
async fn listable_user(
    caller: &Caller,
    filter: &SessionFilter,
    state: &AppState,
) -> Result<Option<UserId>, ApiError> {
    let requested = filter.user.map(UserId);
    if let (Some(machine), Some(true), false) =
        (filter.machine, filter.active, caller.role == Role::Admin)
    {
        let check = CheckAccess {
            user_id: caller.user_id,
            machine_id: MachineId(machine),
            action: Action::Observe,
        };
        if state.services.access.send(check).await?.is_ok() {
            return Ok(requested);
        }
    }
    Ok(caller.visible_user(requested))
}

/// Close a live terminal (admin).
#[utoipa::path(delete, path = "/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "session id")),
    responses(
        (status = 204, description = "closed"),
        (status = 403, description = "not an admin"),
        (status = 404, description = "no such live session"),
    ))]
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
            in_cluster: false,
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
