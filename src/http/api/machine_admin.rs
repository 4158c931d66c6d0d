//! The admin's actions on machines: enrol (`POST /machines`), rotate a secret, delete; each
//! audited, the last two closing the machine's agent socket.

use actix_web::{HttpResponse, web};
use fleetgate_actors::protocol::MachineId;
use fleetgate_actors::registry::DisconnectAgent;
use fleetgate_actors::repo::machine::EnrollMachine;
use fleetgate_actors::repo::machine_admin::{DeleteMachine, RotateSecret};
use fleetgate_actors::socket::CLOSE_REVOKED;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::caller::Caller;
use super::checks::audit_committed;
use super::error::ApiError;
use super::machines::MACHINE_ID;
use crate::app::AppState;

/// Body of `POST /machines`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMachine {
    #[schema(min_length = 1, max_length = 255)]
    name: String,
}

/// A machine just enrolled, with its secret (shown this once).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnrolledMachine {
    machine: EnrolledMachineSummary,
    /// The machine's secret key, 64 hex digits; only its hash is kept.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    secret: String,
    /// The agent command line to paste on the machine.
    connect_command: String,
}

/// The machine part of [`EnrolledMachine`].
#[derive(Serialize, ToSchema)]
pub struct EnrolledMachineSummary {
    id: Uuid,
    name: String,
    /// Always `offline` until its agent connects.
    #[schema(pattern = "^offline$")]
    status: &'static str,
}

/// A machine's new secret (shown this once).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedSecret {
    #[schema(pattern = "^[0-9a-f]{64}$")]
    secret: String,
    connect_command: String,
}

fn connect_command(state: &AppState, secret: &str) -> String {
    let ws = state.public_url.replacen("http", "ws", 1);
    format!("fleetgate-agent --server {ws}/ws/agent --key {secret}")
}

/// Enrol a machine (admin): the machine and its secret, shown once.
#[utoipa::path(post, path = "/machines", tag = "machines", request_body = NewMachine,
    responses(
        (status = 201, description = "enrolled", body = EnrolledMachine),
        (status = 400, description = "bad name"),
        (status = 403, description = "not an admin"),
    ))]
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
    Ok(HttpResponse::Created().json(EnrolledMachine {
        machine: EnrolledMachineSummary {
            id: enrolled.id.0,
            name,
            status: "offline",
        },
        secret: enrolled.secret,
        connect_command: command,
    }))
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

/// Give a machine a new secret (admin); its agent is disconnected.
#[utoipa::path(post, path = "/machines/{id}/rotate-secret", tag = "machines",
    params(("id" = Uuid, Path, description = MACHINE_ID)),
    responses(
        (status = 200, description = "the new secret", body = RotatedSecret),
        (status = 403, description = "not an admin"),
        (status = 404, description = "no such machine"),
    ))]
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
    Ok(HttpResponse::Ok().json(RotatedSecret {
        secret: rotated.secret,
        connect_command: command,
    }))
}

/// Delete a machine (admin); its agent is disconnected.
#[utoipa::path(delete, path = "/machines/{id}", tag = "machines",
    params(("id" = Uuid, Path, description = MACHINE_ID)),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "not an admin"),
        (status = 404, description = "no such machine"),
    ))]
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
