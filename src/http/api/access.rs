//! `PUT/DELETE /machines/{id}/access/{userId}` (admin): per-machine grants.

use actix_web::{HttpResponse, web};
use fleetgate_actors::protocol::{MachineId, UserId};
use fleetgate_actors::repo::access::{Action, SetGrants};
use fleetgate_actors::repo::user::GetUser;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::caller::Caller;
use super::checks::{audit_committed, authorize};
use super::error::ApiError;
use crate::app::AppState;

/// Body of the PUT: the levels granted (`view`, `terminal`, `command`, `observe`; empty
/// revokes all).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    #[schema(inline, value_type = Vec<GrantLevel>)]
    levels: Vec<String>,
}

/// A level of access to one machine.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // a schema only: levels are checked against LEVELS
enum GrantLevel {
    View,
    Terminal,
    Command,
    Observe,
}

/// The grants a user now has on a machine.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantsSet {
    machine_id: Uuid,
    user_id: Uuid,
    #[schema(inline, value_type = Vec<GrantLevel>)]
    levels: Vec<String>,
}

const LEVELS: [&str; 4] = ["view", "terminal", "command", "observe"];

async fn set(
    caller: &Caller,
    machine: Uuid,
    user: Uuid,
    mut levels: Vec<String>,
    state: &AppState,
) -> Result<(), ApiError> {
    caller.require_admin()?;
    authorize(state, caller, machine, Action::View).await?;
    if state
        .services
        .users
        .send(GetUser { id: UserId(user) })
        .await??
        .is_none()
    {
        return Err(ApiError::NotFound("no such user".into()));
    }
    if let Some(bad) = levels.iter().find(|l| !LEVELS.contains(&l.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "unknown level {bad:?}; use view, terminal or command"
        )));
    }
    levels.sort();
    levels.dedup();
    state
        .services
        .access
        .send(SetGrants {
            user_id: UserId(user),
            machine_id: MachineId(machine),
            levels: levels.clone(),
        })
        .await?
        .map_err(ApiError::internal)?;
    audit_committed(
        state,
        caller,
        "access.set",
        Some(machine),
        json!({ "userId": user.to_string(), "levels": levels }),
    )
    .await?;
    Ok(())
}

/// Set a user's grants on a machine (admin).
#[utoipa::path(put, path = "/machines/{id}/access/{userId}", tag = "access", request_body = Grants,
    params(("id" = Uuid, Path, description = "machine id"), ("userId" = Uuid, Path, description = "user id")),
    responses(
        (status = 200, description = "the grants now in force", body = GrantsSet),
        (status = 400, description = "unknown level"),
        (status = 403, description = "not an admin"),
        (status = 404, description = "no such machine or user"),
    ))]
pub async fn put(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<Grants>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (machine, user) = path.into_inner();
    let levels = body.into_inner().levels;
    set(&caller, machine, user, levels.clone(), &state).await?;
    Ok(HttpResponse::Ok().json(GrantsSet {
        machine_id: machine,
        user_id: user,
        levels,
    }))
}

/// Revoke every grant of a user on a machine (admin).
#[utoipa::path(delete, path = "/machines/{id}/access/{userId}", tag = "access",
    params(("id" = Uuid, Path, description = "machine id"), ("userId" = Uuid, Path, description = "user id")),
    responses(
        (status = 204, description = "revoked"),
        (status = 403, description = "not an admin"),
        (status = 404, description = "no such machine or user"),
    ))]
pub async fn delete(
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (machine, user) = path.into_inner();
    set(&caller, machine, user, Vec::new(), &state).await?;
    Ok(HttpResponse::NoContent().finish())
}
