//! `PortRepo`: idempotent sync of each machine's listening ports.

use std::collections::{BTreeMap, HashMap};

use actix::{Actor, ActorFutureExt, AtomicResponse, Context, Handler, Message, WrapFuture};
use chrono::Utc;
use fleetgate_entity::ports;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, NotSet, QueryFilter, Set};

use crate::protocol::MachineId;
use crate::protocol::agent::PortReport;

/// Replace a machine's ports with the reported set.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<PortSync, DbErr>")]
pub struct SyncPorts {
    /// The machine.
    pub machine_id: MachineId,
    /// Its listening ports as reported (duplicates allowed; the last wins).
    pub ports: Vec<PortReport>,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSync {
    /// The set equals the last one synced: nothing was written.
    Unchanged,
    /// Rows were written.
    Written {
        /// Rows inserted or updated.
        upserted: usize,
        /// Rows deleted.
        deleted: usize,
    },
}

/// The reported set keyed by (port, proto), so duplicates collapse.
type PortSet = BTreeMap<(u16, String), PortReport>;

fn to_set(ports: Vec<PortReport>) -> PortSet {
    ports
        .into_iter()
        .map(|p| ((p.port, p.proto.clone()), p))
        .collect()
}

/// A 64-bit fingerprint of a port set: what the repository remembers per machine, so ten
/// thousand machines cost 16 bytes each rather than a copy of every port list.
fn fingerprint(set: &PortSet) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    set.hash(&mut hasher);
    hasher.finish()
}

/// The actor owning writes to `ports`.
pub struct PortRepo {
    db: DatabaseConnection,
    last_synced: HashMap<MachineId, u64>,
}

impl PortRepo {
    /// A repository over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            last_synced: HashMap::new(),
        }
    }
}

impl Actor for PortRepo {
    type Context = Context<Self>;
}

/// Upserts `set` and deletes the machine's rows not in it, in one transaction.
async fn write_set(
    db: DatabaseConnection,
    machine_id: MachineId,
    set: PortSet,
) -> Result<PortSync, DbErr> {
    let txn = super::begin_write(&db).await?;
    let existing = ports::Entity::find()
        .filter(ports::Column::MachineId.eq(machine_id))
        .all(&txn)
        .await?;
    let stale: Vec<i64> = existing
        .iter()
        .filter(|row| {
            u16::try_from(row.port)
                .map(|port| !set.contains_key(&(port, row.proto.clone())))
                .unwrap_or(true)
        })
        .map(|row| row.id)
        .collect();
    if !stale.is_empty() {
        ports::Entity::delete_many()
            .filter(ports::Column::Id.is_in(stale.clone()))
            .exec(&txn)
            .await?;
    }
    let now = Utc::now();
    let rows: Vec<ports::ActiveModel> = set
        .values()
        .map(|p| ports::ActiveModel {
            id: NotSet,
            machine_id: Set(machine_id),
            port: Set(i32::from(p.port)),
            proto: Set(p.proto.clone()),
            service: Set(p.service.clone()),
            state: Set(p.state.clone()),
            updated_at: Set(now),
        })
        .collect();
    let upserted = rows.len();
    if !rows.is_empty() {
        ports::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    ports::Column::MachineId,
                    ports::Column::Port,
                    ports::Column::Proto,
                ])
                .update_columns([
                    ports::Column::Service,
                    ports::Column::State,
                    ports::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(PortSync::Written {
        upserted,
        deleted: stale.len(),
    })
}

impl Handler<SyncPorts> for PortRepo {
    type Result = AtomicResponse<Self, Result<PortSync, DbErr>>;

    fn handle(&mut self, request: SyncPorts, _: &mut Context<Self>) -> Self::Result {
        let set = to_set(request.ports);
        let print = fingerprint(&set);
        if self.last_synced.get(&request.machine_id) == Some(&print) {
            return AtomicResponse::new(Box::pin(
                async { Ok(PortSync::Unchanged) }.into_actor(self),
            ));
        }
        let machine_id = request.machine_id;
        let write = write_set(self.db.clone(), machine_id, set);
        AtomicResponse::new(Box::pin(write.into_actor(self).map(
            move |result, repo: &mut PortRepo, _| {
                match &result {
                    Ok(_) => {
                        repo.last_synced.insert(machine_id, print);
                    }
                    Err(err) => tracing::error!(%machine_id, error = %err, "port sync failed"),
                }
                result
            },
        )))
    }
}
