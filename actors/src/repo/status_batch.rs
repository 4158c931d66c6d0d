//! Status transitions written together. In a connect storm every register is followed by an
//! `online` write from the Registry; one statement per machine, one after the other in this
//! repository, was the largest cost left per register. Transitions that arrive within a few
//! milliseconds are written with one statement per status instead.

use std::collections::HashMap;

use fleetgate_entity::machines;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::machine::{STATUS_OFFLINE, STATUS_ONLINE, SetMachineStatus};
use crate::protocol::MachineId;

/// Writes `changes`, given in arrival order: each machine ends with its last status. Machines
/// that changed to the same status share one statement, and its `last_seen` is the latest
/// transition time among them (the transitions of a batch are at most milliseconds apart).
pub(super) async fn write_statuses(db: &DatabaseConnection, changes: Vec<SetMachineStatus>) {
    let mut latest: HashMap<MachineId, SetMachineStatus> = HashMap::new();
    for change in changes {
        latest.insert(change.machine_id, change);
    }
    for online in [true, false] {
        let group: Vec<&SetMachineStatus> =
            latest.values().filter(|c| c.online == online).collect();
        let Some(at) = group.iter().map(|c| c.at).max() else {
            continue;
        };
        let status = if online {
            STATUS_ONLINE
        } else {
            STATUS_OFFLINE
        };
        let machine_ids: Vec<MachineId> = group.iter().map(|c| c.machine_id).collect();
        let count = machine_ids.len();
        let result = machines::Entity::update_many()
            .col_expr(machines::Column::Status, Expr::value(status))
            .col_expr(machines::Column::LastSeen, Expr::value(at))
            .filter(machines::Column::Id.is_in(machine_ids))
            .exec(db)
            .await;
        if let Err(err) = result {
            tracing::error!(machines = count, status, error = %err, "machine status write failed");
        }
    }
}
