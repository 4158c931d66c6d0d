//! `audit_log`: the append-only trail of actions and security events.

use fleetgate_protocol::ids::MachineId;
use sea_orm::entity::prelude::*;

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// Monotonic id, also the pagination cursor.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// When it happened.
    pub at: DateTimeUtc,
    /// Who acted: a user id, `machine:<id>`, or `system`.
    pub actor: String,
    /// What happened, e.g. `terminal.open`, `security.bad_frame`.
    pub action: String,
    /// The machine concerned, if any.
    pub machine_id: Option<MachineId>,
    /// Structured detail (never secrets or keystrokes).
    pub detail: Json,
    /// Source address of the actor, if known.
    pub source_ip: Option<String>,
}

/// Relations of `audit_log`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
