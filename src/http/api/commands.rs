//! `/commands`: run commands on one or many machines, and read their results.

use std::time::Duration;

use actix::Actor;
use actix_web::{HttpResponse, web};
use fleetgate_actors::command::{CommandRun, CommandSpec};
use fleetgate_actors::protocol::web::MAX_COMMAND_BYTES;
use fleetgate_actors::protocol::{CommandId, MachineId};
use fleetgate_actors::registry::{OpenLink, RouteCommand};
use fleetgate_actors::repo::access::Action;
use fleetgate_actors::repo::queries::GetCommand;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::caller::Caller;
use super::checks::{audit_committed, authorize};
use super::error::ApiError;
use crate::app::AppState;

/// Most machines one request may target.
const MAX_TARGETS: usize = 1000;

/// Body of `POST /machines/{id}/commands`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunCommand {
    command: String,
    #[serde(rename = "timeoutSecs")]
    timeout_secs: Option<u64>,
}

/// Body of `POST /commands`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunMany {
    #[serde(rename = "machineIds")]
    machine_ids: Vec<Uuid>,
    command: String,
    #[serde(rename = "timeoutSecs")]
    timeout_secs: Option<u64>,
}

fn check_command(command: &str, timeout_secs: Option<u64>) -> Result<(), ApiError> {
    if command.is_empty() || command.len() > MAX_COMMAND_BYTES {
        return Err(ApiError::BadRequest(
            "command must be 1 byte to 16 KiB".into(),
        ));
    }
    if timeout_secs.is_some_and(|t| t == 0 || t > 24 * 3600) {
        return Err(ApiError::BadRequest(
            "timeoutSecs must be between 1 and 86400".into(),
        ));
    }
    Ok(())
}

/// Authorises, records and sends one command; answers with its id once it is recorded.
async fn start(
    state: &AppState,
    caller: &Caller,
    machine: Uuid,
    command: &str,
    timeout_secs: Option<u64>,
) -> Result<CommandId, ApiError> {
    authorize(state, caller, machine, Action::Command).await?;
    let machine_id = MachineId(machine);
    let agent = state
        .services
        .registry
        .send(OpenLink { machine_id })
        .await?
        .ok_or(ApiError::MachineOffline)?;
    let command_id = CommandId::random();
    audit_committed(
        state,
        caller,
        "command.run",
        Some(machine),
        json!({ "commandId": command_id.to_string(), "command": command }),
    )
    .await?;
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let spec = CommandSpec {
        command_id: command_id.clone(),
        agent,
        user_id: caller.user_id,
        command: command.to_owned(),
        timeout: timeout_secs.map_or(state.web_session.command_timeout, Duration::from_secs),
        requester: None,
        request_id: None,
        on_started: Some(started_tx),
    };
    let run = CommandRun::new(spec, state.services.web_links().command).start();
    state.services.registry.do_send(RouteCommand {
        command_id: command_id.clone(),
        machine_id,
        chunks: run.recipient(),
    });
    match started_rx.await {
        Ok(true) => Ok(command_id),
        _ => Err(ApiError::internal("command could not be recorded")),
    }
}

/// `POST /machines/{id}/commands` → 202 `{commandId}`
pub async fn run_one(
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<RunCommand>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_command(&body.command, body.timeout_secs)?;
    let id = start(
        &state,
        &caller,
        path.into_inner(),
        &body.command,
        body.timeout_secs,
    )
    .await?;
    Ok(HttpResponse::Accepted().json(json!({ "commandId": id.to_string() })))
}

/// `POST /commands` → 202 with the started commands and the per-machine refusals.
pub async fn run_many(
    caller: Caller,
    body: web::Json<RunMany>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_command(&body.command, body.timeout_secs)?;
    if body.machine_ids.is_empty() || body.machine_ids.len() > MAX_TARGETS {
        return Err(ApiError::BadRequest(
            "machineIds must name 1 to 1000 machines".into(),
        ));
    }
    let mut started = Vec::new();
    let mut refused = Vec::new();
    for machine in body.machine_ids {
        match start(&state, &caller, machine, &body.command, body.timeout_secs).await {
            Ok(id) => started
                .push(json!({ "machineId": machine.to_string(), "commandId": id.to_string() })),
            Err(err) => {
                use actix_web::ResponseError;
                refused.push(json!({ "machineId": machine.to_string(), "status": err.status_code().as_u16(), "detail": err.to_string() }));
            }
        }
    }
    Ok(HttpResponse::Accepted().json(json!({ "started": started, "refused": refused })))
}

/// `GET /commands/{id}`: status, exit code and output so far (the requester or an admin).
pub async fn show(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = CommandId::parse(&path.into_inner())
        .ok_or_else(|| ApiError::NotFound("no such command".into()))?;
    let row = state
        .services
        .queries
        .send(GetCommand {
            command_id: id.to_string(),
        })
        .await??
        .ok_or_else(|| ApiError::NotFound("no such command".into()))?;
    if caller.role != fleetgate_actors::identity::Role::Admin && row.user_id != caller.user_id.0 {
        return Err(ApiError::NotFound("no such command".into()));
    }
    Ok(HttpResponse::Ok().json(json!({
        "commandId": row.id, "machineId": row.machine_id.to_string(), "userId": row.user_id.to_string(),
        "command": row.command, "status": row.status, "exitCode": row.exit_code,
        "startedAt": row.started_at.to_rfc3339(), "finishedAt": row.finished_at.map(|t| t.to_rfc3339()),
        "outputBytes": row.output_bytes, "output": row.output,
    })))
}
