//! Registers checked together. In a connect storm each register would otherwise be its own
//! round trip to the database worker thread (a lookup, then a write), one after the other in
//! this repository; the thread hand-offs, not SQLite, are what a register costs. Registers that
//! arrive within a few milliseconds are looked up with one query, and the details of the
//! machines whose agents reported something new are written with one statement.

use std::collections::HashMap;

use fleetgate_entity::machines;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set};
use tokio::sync::oneshot;

use super::machine::{
    AuthenticateMachine, Enrollment, MachineDetails, MachineError, constant_time_eq,
    insert_machine, secret_hash,
};
use crate::protocol::MachineId;
use crate::sealing::DataKey;

/// A register waiting for its batch, and where to send the answer.
pub(super) struct PendingRegister {
    /// The register.
    pub request: AuthenticateMachine,
    /// Its answer.
    pub reply: oneshot::Sender<Result<MachineId, MachineError>>,
}

/// Whether `row` already holds `details`.
fn holds(row: &machines::Model, details: &MachineDetails) -> bool {
    row.hostname == details.hostname
        && row.ip == details.ip
        && row.os_distro == details.os_distro
        && row.os_release == details.os_release
        && row.os_kernel == details.os_kernel
        && row.platform == details.platform
}

/// `row` with the reported `details` (every column set, for the upsert).
fn with_details(row: &machines::Model, details: MachineDetails) -> machines::ActiveModel {
    machines::ActiveModel {
        id: Set(row.id),
        name: Set(row.name.clone()),
        hostname: Set(details.hostname),
        ip: Set(details.ip),
        os_distro: Set(details.os_distro),
        os_release: Set(details.os_release),
        os_kernel: Set(details.os_kernel),
        platform: Set(details.platform),
        secret_hash: Set(row.secret_hash.clone()),
        secret_sealed: Set(row.secret_sealed.clone()),
        status: Set(row.status.clone()),
        last_seen: Set(row.last_seen),
        created_at: Set(row.created_at),
        recording: Set(row.recording.clone()),
    }
}

/// Writes the reported details of `changed` machines in one statement (only the detail columns
/// of existing rows are touched).
async fn write_details(
    db: &DatabaseConnection,
    changed: HashMap<MachineId, machines::ActiveModel>,
) -> Result<(), DbErr> {
    if changed.is_empty() {
        return Ok(());
    }
    let update = OnConflict::column(machines::Column::Id)
        .update_columns([
            machines::Column::Hostname,
            machines::Column::Ip,
            machines::Column::OsDistro,
            machines::Column::OsRelease,
            machines::Column::OsKernel,
            machines::Column::Platform,
        ])
        .to_owned();
    machines::Entity::insert_many(changed.into_values())
        .on_conflict(update)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// A database failure as every waiting register's answer.
fn failed(err: &DbErr) -> MachineError {
    MachineError::Database(DbErr::Custom(err.to_string()))
}

/// Checks a batch of registers and answers each: the machine whose secret it presented (its
/// reported details stored), a new machine under open enrolment, or `UnknownSecret`.
pub(super) async fn authenticate_batch(
    db: &DatabaseConnection,
    data_key: &DataKey,
    batch: Vec<PendingRegister>,
) {
    let hashes: Vec<String> = batch
        .iter()
        .map(|p| secret_hash(&p.request.secret))
        .collect();
    let rows = match machines::Entity::find()
        .filter(machines::Column::SecretHash.is_in(hashes.clone()))
        .all(db)
        .await
    {
        Ok(rows) => rows,
        Err(err) => {
            for pending in batch {
                answer_to(pending.reply, Err(failed(&err)));
            }
            return;
        }
    };
    let mut known: HashMap<String, machines::Model> = rows
        .into_iter()
        .map(|row| (row.secret_hash.clone(), row))
        .collect();
    let mut changed = HashMap::new();
    let mut answers = Vec::with_capacity(batch.len());
    for (pending, hash) in batch.into_iter().zip(hashes) {
        let PendingRegister { request, reply } = pending;
        let found = known
            .get(&hash)
            .filter(|row| constant_time_eq(row.secret_hash.as_bytes(), hash.as_bytes()));
        let answer = match (found, request.enrollment) {
            (Some(row), _) => {
                if !holds(row, &request.details) {
                    changed.insert(row.id, with_details(row, request.details));
                }
                Ok(row.id)
            }
            (None, Enrollment::Token) => Err(MachineError::UnknownSecret),
            (None, Enrollment::Open) => {
                let name = request.details.hostname.clone();
                let inserted =
                    insert_machine(db, data_key, &name, &request.secret, &request.details).await;
                if let Ok(id) = &inserted
                    && let Ok(Some(row)) = machines::Entity::find_by_id(*id).one(db).await
                {
                    // A second register with the same secret in this batch finds it.
                    known.insert(hash, row);
                }
                inserted
            }
        };
        answers.push((reply, answer));
    }
    let written = write_details(db, changed).await;
    for (reply, answer) in answers {
        let answer = match (&written, answer) {
            (Err(err), Ok(_)) => Err(failed(err)),
            (_, answer) => answer,
        };
        answer_to(reply, answer);
    }
}

/// Sends a register its answer (its socket may have closed meanwhile: nobody waits then).
fn answer_to(
    reply: oneshot::Sender<Result<MachineId, MachineError>>,
    answer: Result<MachineId, MachineError>,
) {
    if reply.send(answer).is_err() {
        tracing::debug!("a register's socket closed before its answer");
    }
}
