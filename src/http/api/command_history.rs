//! `GET /commands`: command history (an admin sees everyone's, others their own), newest first,
//! without the output (`GET /commands/{id}` has it).

use actix_web::{HttpResponse, web};
use fleetgate_actors::protocol::{MachineId, UserId};
use fleetgate_actors::repo::queries::ListCommands;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::caller::Caller;
use super::error::ApiError;
use crate::app::AppState;

/// Which commands.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CommandFilter {
    /// Only this user's (admins; others always see their own).
    user: Option<Uuid>,
    /// Only on this machine.
    machine: Option<Uuid>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
}

/// A page of command history.
#[derive(Serialize, ToSchema)]
pub struct CommandList {
    items: Vec<CommandSummary>,
}

/// A command without its output.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandSummary {
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
    output_bytes: i64,
}

/// Command history, newest first: an admin sees everyone's, others their own.
#[utoipa::path(get, path = "/commands", tag = "commands", params(CommandFilter),
    responses((status = 200, description = "commands, newest first", body = CommandList)))]
pub async fn list(
    caller: Caller,
    query: web::Query<CommandFilter>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let filter = query.into_inner();
    let user_id = caller.visible_user(filter.user.map(UserId));
    let rows = state
        .services
        .queries
        .send(ListCommands {
            user_id,
            machine_id: filter.machine.map(MachineId),
            limit: filter.limit.unwrap_or(100).clamp(1, 1000),
        })
        .await??;
    let items = rows
        .into_iter()
        .map(|row| CommandSummary {
            command_id: row.id.to_string(),
            machine_id: row.machine_id.0,
            user_id: row.user_id.0,
            command: row.command,
            status: row.status,
            exit_code: row.exit_code,
            started_at: row.started_at.to_rfc3339(),
            finished_at: row.finished_at.map(|t| t.to_rfc3339()),
            output_bytes: row.output_bytes,
        })
        .collect();
    Ok(HttpResponse::Ok().json(CommandList { items }))
}
