//! `agent_reports`: scan results, security events and audit lines posted by agents over HTTP.

use fleetgate_protocol::ids::MachineId;
use sea_orm::entity::prelude::*;

/// One report body posted to an `/api/agent/...` endpoint.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_reports")]
pub struct Model {
    /// Surrogate key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The reporting machine (authenticated by its secret).
    pub machine_id: MachineId,
    /// `scan`, `scan_progress`, `audit` or `security_events`.
    pub kind: String,
    /// The report as posted.
    pub body: Json,
    /// When it was received.
    pub received_at: DateTimeUtc,
}

/// Relations of `agent_reports`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
