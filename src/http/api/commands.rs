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
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::caller::Caller;
use super::checks::{audit_committed, authorize};
use super::error::ApiError;
use crate::app::AppState;

/// Most machines one request may target.
const MAX_TARGETS: usize = 1000;

/// Body of `POST /machines/{id}/commands`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCommand {
    /// The shell command line, 1 byte to 16 KiB.
    #[schema(min_length = 1, max_length = 16384)]
    command: String,
    /// Seconds before the command is given up (default from the configuration).
    #[serde(rename = "timeoutSecs")]
    #[schema(minimum = 1, maximum = 86400)]
    timeout_secs: Option<u64>,
}

/// Body of `POST /commands`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunMany {
    /// 1 to 1000 machines.
    #[serde(rename = "machineIds")]
    #[schema(min_items = 1, max_items = 1000)]
    machine_ids: Vec<Uuid>,
    #[schema(min_length = 1, max_length = 16384)]
    command: String,
    #[serde(rename = "timeoutSecs")]
    #[schema(minimum = 1, maximum = 86400)]
    timeout_secs: Option<u64>,
}

/// A command accepted: its id, to read its result with `GET /commands/{id}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandAccepted {
    #[schema(pattern = "^[0-9a-f]{32}$")]
    command_id: String,
}

/// The commands started by `POST /commands` and the machines that refused.
#[derive(Serialize, ToSchema)]
pub struct CommandBatch {
    started: Vec<StartedCommand>,
    refused: Vec<RefusedMachine>,
}

/// A command started on one machine.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartedCommand {
    machine_id: Uuid,
    #[schema(pattern = "^[0-9a-f]{32}$")]
    command_id: String,
}

/// A machine the command was not started on, and why (as the single-machine call would say).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefusedMachine {
    machine_id: Uuid,
    /// The HTTP status the single-machine call would have answered.
    status: u16,
    detail: String,
}

/// A command's state and output so far.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    #[schema(pattern = "^[0-9a-f]{32}$")]
    command_id: String,
    machine_id: Uuid,
    user_id: Uuid,
    command: String,
    /// `running`, `completed`, `timeout`, `failed`, …
    status: String,
    exit_code: Option<i32>,
    #[schema(format = DateTime)]
    started_at: String,
    #[schema(format = DateTime)]
    finished_at: Option<String>,
    /// Output bytes received (the stored `output` may be cut at the limit).
    output_bytes: i64,
    output: String,
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
        .await??;
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

/// Run a command on one machine.
#[utoipa::path(post, path = "/machines/{id}/commands", tag = "commands", request_body = RunCommand,
    params(("id" = Uuid, Path, description = "machine id")),
    responses(
        (status = 202, description = "accepted and recorded", body = CommandAccepted),
        (status = 400, description = "empty or too long command, bad timeout"),
        (status = 403, description = "no command grant on this machine"),
        (status = 404, description = "no such machine, or not visible to the caller"),
        (status = 409, description = "the machine is offline"),
        (status = 503, description = "the machine's agent is connected to an instance that cannot be reached"),
    ))]
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
    Ok(HttpResponse::Accepted().json(CommandAccepted {
        command_id: id.to_string(),
    }))
}

/// Run a command on several machines: the started commands and the per-machine refusals.
#[utoipa::path(post, path = "/commands", tag = "commands", request_body = RunMany,
    responses(
        (status = 202, description = "started where allowed", body = CommandBatch),
        (status = 400, description = "empty or too long command, bad timeout, 0 or over 1000 machines"),
    ))]
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
            Ok(id) => started.push(StartedCommand {
                machine_id: machine,
                command_id: id.to_string(),
            }),
            Err(err) => {
                use actix_web::ResponseError;
                refused.push(RefusedMachine {
                    machine_id: machine,
                    status: err.status_code().as_u16(),
                    detail: err.to_string(),
                });
            }
        }
    }
    Ok(HttpResponse::Accepted().json(CommandBatch { started, refused }))
}

/// A command's status, exit code and output so far (the requester or an admin).
#[utoipa::path(get, path = "/commands/{id}", tag = "commands",
    params(("id" = String, Path, description = "command id, 32 hex digits")),
    responses(
        (status = 200, description = "the command", body = Command),
        (status = 404, description = "no such command, or someone else's"),
    ))]
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
        .send(GetCommand { command_id: id })
        .await??
        .ok_or_else(|| ApiError::NotFound("no such command".into()))?;
    if caller.role != fleetgate_actors::identity::Role::Admin && row.user_id != caller.user_id {
        return Err(ApiError::NotFound("no such command".into()));
    }
    Ok(HttpResponse::Ok().json(Command {
        command_id: row.id.to_string(),
        machine_id: row.machine_id.0,
        user_id: row.user_id.0,
        command: row.command,
        status: row.status,
        exit_code: row.exit_code,
        started_at: row.started_at.to_rfc3339(),
        finished_at: row.finished_at.map(|t| t.to_rfc3339()),
        output_bytes: row.output_bytes,
        output: row.output,
    }))
}
