//! What every acting route does first: check the caller's access to a machine (a refusal is
//! audited), and record its action in the audit trail before acting.

use fleetgate_actors::protocol::MachineId;
use fleetgate_actors::repo::access::{AccessError, Action, CheckAccess};
use fleetgate_actors::repo::audit::RecordAudit;
use fleetgate_actors::repo::machine_record::Machine;
use serde_json::{Value, json};
use uuid::Uuid;

use super::caller::Caller;
use super::error::ApiError;
use crate::app::AppState;

/// Checks `action` on the machine for the caller; answers with the machine.
pub async fn authorize(
    state: &AppState,
    caller: &Caller,
    machine: Uuid,
    action: Action,
) -> Result<Machine, ApiError> {
    let check = CheckAccess {
        user_id: caller.user_id,
        machine_id: MachineId(machine),
        action,
    };
    match state.services.access.send(check).await? {
        Ok(row) => Ok(row),
        Err(AccessError::UnknownMachine) => Err(ApiError::NotFound("no such machine".into())),
        Err(AccessError::Forbidden) => {
            audit_committed(
                state,
                caller,
                "access.denied",
                Some(machine),
                json!({ "action": action.level() }),
            )
            .await?;
            Err(ApiError::Forbidden(format!(
                "{} not allowed on this machine",
                action.level()
            )))
        }
        Err(AccessError::Database(err)) => Err(ApiError::internal(err)),
    }
}

/// Records an audit entry for the caller and waits until it is committed: an action is
/// audited before it reaches an agent or is acknowledged, or it fails.
pub async fn audit_committed(
    state: &AppState,
    caller: &Caller,
    action: &'static str,
    machine: Option<Uuid>,
    detail: Value,
) -> Result<(), ApiError> {
    state
        .services
        .audit
        .send(RecordAudit {
            actor: caller.user_id.to_string(),
            action,
            machine_id: machine.map(MachineId),
            detail,
            source_ip: caller.source_ip.clone(),
        })
        .await?
        .map_err(ApiError::internal)
}
