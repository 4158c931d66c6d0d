//! `MachineRepo`: machine identity (secret lookup, enrolment) and status persistence.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::{Actor, AtomicResponse, Context, Handler, Message, WrapFuture};
use chrono::{DateTime, Utc};
use fleetgate_entity::machines;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::register_batch::{PendingRegister, authenticate_batch};
use crate::protocol::MachineId;
use crate::sealing::{DataKey, SealError};

/// Status value of a connected machine.
pub const STATUS_ONLINE: &str = "online";
/// Status value of a disconnected machine.
pub const STATUS_OFFLINE: &str = "offline";
/// At most one last-seen write per machine per this period.
pub const LAST_SEEN_COALESCE: Duration = Duration::from_secs(10);

/// Who may enrol a machine (`agents.enrollment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Enrollment {
    /// Only secrets created by an operator register.
    Token,
    /// An unknown secret creates a new machine (first use wins).
    Open,
}

/// Why a machine could not be authenticated.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// No machine has this secret (and enrolment is not open).
    #[error("unknown machine secret")]
    UnknownSecret,
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] DbErr),
    /// The secret could not be sealed.
    #[error("sealing: {0}")]
    Sealing(#[from] SealError),
}

/// What an agent reported about its machine in `register`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineDetails {
    /// Hostname.
    pub hostname: String,
    /// Address string.
    pub ip: String,
    /// `osInfo.distro`.
    pub os_distro: Option<String>,
    /// `osInfo.release`.
    pub os_release: Option<String>,
    /// `osInfo.kernel`.
    pub os_kernel: Option<String>,
    /// `platform`.
    pub platform: Option<String>,
}

/// A newly enrolled machine and its secret (shown to the operator once).
#[derive(Clone, PartialEq, Eq)]
pub struct EnrolledMachine {
    /// The machine's id.
    pub id: MachineId,
    /// Its 64-hex secret.
    pub secret: String,
}

impl std::fmt::Debug for EnrolledMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolledMachine")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Authenticate a registering agent by its secret; updates the reported details.
#[derive(Message)]
#[rtype(result = "Result<MachineId, MachineError>")]
pub struct AuthenticateMachine {
    /// The secret from `register`.
    pub secret: String,
    /// Enrolment policy in force.
    pub enrollment: Enrollment,
    /// Details from `register`.
    pub details: MachineDetails,
}

/// Look up the machine owning a secret without changing anything (agent HTTP endpoints).
#[derive(Message)]
#[rtype(result = "Result<Option<MachineId>, MachineError>")]
pub struct LookupSecret {
    /// The secret presented.
    pub secret: String,
}

/// Enrol a machine for an operator; answers with its id and new secret.
#[derive(Message, Debug)]
#[rtype(result = "Result<EnrolledMachine, MachineError>")]
pub struct EnrollMachine {
    /// Operator-chosen name.
    pub name: String,
}

/// Persist a status transition (within milliseconds, together with others: `status_batch.rs`).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct SetMachineStatus {
    /// The machine.
    pub machine_id: MachineId,
    /// Whether it is now online.
    pub online: bool,
    /// When the transition happened.
    pub at: DateTime<Utc>,
}

/// Record that a machine was heard from (written at most once per 10 s per machine).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct TouchLastSeen {
    /// The machine.
    pub machine_id: MachineId,
    /// When it was heard from.
    pub at: DateTime<Utc>,
}

/// Lowercase hex SHA-256 of a secret, the lookup key in `machines.secret_hash`.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new random machine secret: 32 bytes from the OS RNG as 64 lowercase hex chars.
pub fn new_secret() -> Result<String, SealError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| SealError::Rng)?;
    Ok(hex::encode(bytes))
}

/// Finds the machine whose secret is `secret`.
pub async fn find_by_secret(
    db: &DatabaseConnection,
    secret: &str,
) -> Result<Option<machines::Model>, DbErr> {
    let hash = secret_hash(secret);
    let found = machines::Entity::find()
        .filter(machines::Column::SecretHash.eq(hash.clone()))
        .one(db)
        .await?;
    Ok(found.filter(|m| constant_time_eq(m.secret_hash.as_bytes(), hash.as_bytes())))
}

/// Enrols a machine with `secret` (generated by the caller) and `details`, offline.
pub async fn insert_machine(
    db: &DatabaseConnection,
    data_key: &DataKey,
    name: &str,
    secret: &str,
    details: &MachineDetails,
) -> Result<MachineId, MachineError> {
    let id = MachineId(Uuid::new_v4());
    machines::ActiveModel {
        id: Set(id),
        name: Set(name.to_owned()),
        hostname: Set(details.hostname.clone()),
        ip: Set(details.ip.clone()),
        os_distro: Set(details.os_distro.clone()),
        os_release: Set(details.os_release.clone()),
        os_kernel: Set(details.os_kernel.clone()),
        platform: Set(details.platform.clone()),
        secret_hash: Set(secret_hash(secret)),
        secret_sealed: Set(data_key.seal(secret.as_bytes())?),
        status: Set(STATUS_OFFLINE.to_owned()),
        last_seen: Set(None),
        created_at: Set(Utc::now()),
        recording: Set(None),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// Creates a machine for an operator: a fresh secret, shown once.
pub async fn enroll_machine(
    db: &DatabaseConnection,
    data_key: &DataKey,
    name: &str,
) -> Result<EnrolledMachine, MachineError> {
    let secret = new_secret()?;
    let details = MachineDetails {
        hostname: name.to_owned(),
        ..MachineDetails::default()
    };
    let id = insert_machine(db, data_key, name, &secret, &details).await?;
    Ok(EnrolledMachine { id, secret })
}

/// Sets every machine offline (at start-up: nobody is connected yet).
pub async fn mark_all_offline(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let result = machines::Entity::update_many()
        .col_expr(machines::Column::Status, Expr::value(STATUS_OFFLINE))
        .filter(machines::Column::Status.ne(STATUS_OFFLINE))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Writes `last_seen`; a failure is logged, never fatal.
async fn write_last_seen(db: &DatabaseConnection, machine_id: MachineId, at: DateTime<Utc>) {
    let result = machines::Entity::update_many()
        .col_expr(machines::Column::LastSeen, Expr::value(at))
        .filter(machines::Column::Id.eq(machine_id))
        .exec(db)
        .await;
    if let Err(err) = result {
        tracing::error!(%machine_id, error = %err, "machine last-seen write failed");
    }
}

/// How long a register waits for others to be checked with it.
const REGISTER_BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(2);
/// Most registers checked in one batch.
const REGISTER_BATCH_MAX: usize = 256;
/// How long a status transition waits for others to be written with it.
const STATUS_BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(2);
/// Most status transitions written in one batch.
const STATUS_BATCH_MAX: usize = 512;

/// The actor serializing writes to `machines`.
pub struct MachineRepo {
    pub(super) db: DatabaseConnection,
    pub(super) data_key: DataKey,
    last_seen_written: HashMap<MachineId, Instant>,
    pending_registers: Vec<PendingRegister>,
    pending_statuses: Vec<SetMachineStatus>,
}

impl MachineRepo {
    /// A repository over `db`, sealing secrets with `data_key`.
    pub fn new(db: DatabaseConnection, data_key: DataKey) -> Self {
        Self {
            db,
            data_key,
            last_seen_written: HashMap::new(),
            pending_registers: Vec::new(),
            pending_statuses: Vec::new(),
        }
    }
}

impl Actor for MachineRepo {
    type Context = Context<Self>;
}

impl MachineRepo {
    /// Checks every waiting register in one batch, holding this repository's other writes
    /// until it is done.
    fn flush_registers(&mut self, ctx: &mut Context<Self>) {
        let batch = std::mem::take(&mut self.pending_registers);
        if batch.is_empty() {
            return;
        }
        let (db, data_key) = (self.db.clone(), self.data_key.clone());
        let check = async move { authenticate_batch(&db, &data_key, batch).await };
        actix::AsyncContext::wait(ctx, check.into_actor(self));
    }

    /// Writes every waiting status transition, holding this repository's other writes until
    /// it is done.
    fn flush_statuses(&mut self, ctx: &mut Context<Self>) {
        let batch = std::mem::take(&mut self.pending_statuses);
        if batch.is_empty() {
            return;
        }
        let db = self.db.clone();
        let write = async move { super::status_batch::write_statuses(&db, batch).await };
        actix::AsyncContext::wait(ctx, write.into_actor(self));
    }
}

impl Handler<AuthenticateMachine> for MachineRepo {
    type Result = actix::ResponseFuture<Result<MachineId, MachineError>>;

    /// Queues the register for the next batch (see `register_batch.rs`).
    fn handle(&mut self, request: AuthenticateMachine, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.pending_registers
            .push(PendingRegister { request, reply });
        if self.pending_registers.len() >= REGISTER_BATCH_MAX {
            self.flush_registers(ctx);
        } else if self.pending_registers.len() == 1 {
            actix::AsyncContext::run_later(ctx, REGISTER_BATCH_WINDOW, |repo, ctx| {
                repo.flush_registers(ctx)
            });
        }
        Box::pin(async move {
            answer.await.unwrap_or_else(|_| {
                Err(MachineError::Database(DbErr::Custom(
                    "the register was not answered".into(),
                )))
            })
        })
    }
}

impl Handler<EnrollMachine> for MachineRepo {
    type Result = AtomicResponse<Self, Result<EnrolledMachine, MachineError>>;

    fn handle(&mut self, request: EnrollMachine, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        let data_key = self.data_key.clone();
        AtomicResponse::new(Box::pin(
            async move { enroll_machine(&db, &data_key, &request.name).await }.into_actor(self),
        ))
    }
}

impl Handler<LookupSecret> for MachineRepo {
    type Result = actix::ResponseFuture<Result<Option<MachineId>, MachineError>>;

    fn handle(&mut self, request: LookupSecret, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move { Ok(find_by_secret(&db, &request.secret).await?.map(|m| m.id)) })
    }
}

impl Handler<SetMachineStatus> for MachineRepo {
    type Result = ();

    /// Queues the transition for the next batch (see `status_batch.rs`).
    fn handle(&mut self, change: SetMachineStatus, ctx: &mut Context<Self>) {
        self.last_seen_written
            .insert(change.machine_id, Instant::now());
        self.pending_statuses.push(change);
        if self.pending_statuses.len() >= STATUS_BATCH_MAX {
            self.flush_statuses(ctx);
        } else if self.pending_statuses.len() == 1 {
            actix::AsyncContext::run_later(ctx, STATUS_BATCH_WINDOW, |repo, ctx| {
                repo.flush_statuses(ctx)
            });
        }
    }
}

impl Handler<TouchLastSeen> for MachineRepo {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, touch: TouchLastSeen, _: &mut Context<Self>) -> Self::Result {
        let now = Instant::now();
        let due = self
            .last_seen_written
            .get(&touch.machine_id)
            .is_none_or(|last| now.duration_since(*last) >= LAST_SEEN_COALESCE);
        if !due {
            return AtomicResponse::new(Box::pin(async {}.into_actor(self)));
        }
        self.last_seen_written.insert(touch.machine_id, now);
        let db = self.db.clone();
        AtomicResponse::new(Box::pin(
            async move {
                write_last_seen(&db, touch.machine_id, touch.at).await;
            }
            .into_actor(self),
        ))
    }
}
