//! `AuditRepo`: the append-only audit trail. An entry is acknowledged only once committed.

use actix::{Actor, AtomicResponse, Context, Handler, Message, WrapFuture};
use chrono::Utc;
use fleetgate_entity::audit_log;
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, NotSet, Set};

use crate::protocol::MachineId;

/// One audit entry (never secrets or keystrokes in `detail`).
#[derive(Message, Debug, Clone, PartialEq)]
#[rtype(result = "Result<(), DbErr>")]
pub struct RecordAudit {
    /// Who: a user id, `machine:<id>`, or `system`.
    pub actor: String,
    /// What, e.g. `terminal.open`.
    pub action: &'static str,
    /// The machine concerned.
    pub machine_id: Option<MachineId>,
    /// Structured detail.
    pub detail: serde_json::Value,
    /// Source address.
    pub source_ip: Option<String>,
}

/// Completes once every entry sent before it is committed (used at shutdown).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct AuditBarrier;

/// The actor owning writes to `audit_log`.
pub struct AuditRepo {
    db: DatabaseConnection,
}

impl AuditRepo {
    /// A repository over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl Actor for AuditRepo {
    type Context = Context<Self>;
}

/// Writes one entry (shared by the actor and the admin commands, which run without it).
pub async fn write_audit(db: &DatabaseConnection, entry: RecordAudit) -> Result<(), DbErr> {
    let action = entry.action;
    let result = audit_log::ActiveModel {
        id: NotSet,
        at: Set(Utc::now()),
        actor: Set(entry.actor),
        action: Set(action.to_owned()),
        machine_id: Set(entry.machine_id),
        detail: Set(entry.detail),
        source_ip: Set(entry.source_ip),
    }
    .insert(db)
    .await
    .map(|_| ());
    if let Err(err) = &result {
        tracing::error!(action, error = %err, "audit entry could not be written");
    }
    result
}

impl Handler<RecordAudit> for AuditRepo {
    type Result = AtomicResponse<Self, Result<(), DbErr>>;

    fn handle(&mut self, entry: RecordAudit, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        AtomicResponse::new(Box::pin(
            async move { write_audit(&db, entry).await }.into_actor(self),
        ))
    }
}

impl Handler<AuditBarrier> for AuditRepo {
    type Result = ();

    fn handle(&mut self, _: AuditBarrier, _: &mut Context<Self>) {}
}
