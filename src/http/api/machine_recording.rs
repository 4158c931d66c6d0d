//! `PUT /machines/{id}/recording` (admin): whether this machine's terminal sessions are
//! recorded, whatever `recording.mode` says.

use actix_web::{HttpResponse, web};
use fleetgate_actors::protocol::MachineId;
use fleetgate_actors::repo::machine_admin::SetMachineRecording;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::caller::Caller;
use super::checks::audit_committed;
use super::error::ApiError;
use crate::app::AppState;

/// Body of the PUT.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordingChoice {
    /// `on` (always record), `off` (never) or `default` (as the server's `recording.mode`).
    #[schema(pattern = "^(on|off|default)$")]
    mode: String,
}

/// The machine's recording setting now.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingSet {
    machine_id: Uuid,
    /// `on`, `off` or `default`.
    mode: String,
}

/// Record this machine's terminal sessions, or not, or as the server says (admin); applies to
/// sessions opened from now on.
#[utoipa::path(put, path = "/machines/{id}/recording", tag = "machines", request_body = RecordingChoice,
    params(("id" = Uuid, Path, description = "machine id")),
    responses(
        (status = 200, description = "the setting now in force", body = RecordingSet),
        (status = 400, description = "unknown mode"),
        (status = 403, description = "not an admin"),
        (status = 404, description = "no such machine"),
    ))]
pub async fn put(
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<RecordingChoice>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let machine = path.into_inner();
    let mode = body.into_inner().mode;
    let recording = match mode.as_str() {
        "on" => Some(true),
        "off" => Some(false),
        "default" => None,
        _ => {
            return Err(ApiError::BadRequest(
                "mode must be \"on\", \"off\" or \"default\"".into(),
            ));
        }
    };
    let found = state
        .services
        .machines
        .send(SetMachineRecording {
            machine_id: MachineId(machine),
            recording,
        })
        .await?
        .map_err(ApiError::internal)?;
    if !found {
        return Err(ApiError::NotFound("no such machine".into()));
    }
    audit_committed(
        &state,
        &caller,
        "machine.recording",
        Some(machine),
        json!({ "mode": mode }),
    )
    .await?;
    Ok(HttpResponse::Ok().json(RecordingSet {
        machine_id: machine,
        mode,
    }))
}
