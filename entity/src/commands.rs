//! `commands`: every command run through fleetgate and its result.

use fleetgate_protocol::ids::{CommandId, MachineId, UserId};
use sea_orm::entity::prelude::*;

/// One command on one machine.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "commands")]
pub struct Model {
    /// Command id (32 lowercase hex chars).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: CommandId,
    /// The user who ran it.
    pub user_id: UserId,
    /// The machine it ran on.
    pub machine_id: MachineId,
    /// The command text.
    #[sea_orm(column_type = "Text")]
    pub command: String,
    /// `running`, `completed` or `timed_out`.
    pub status: String,
    /// Exit code once completed.
    pub exit_code: Option<i32>,
    /// When it was sent to the agent.
    pub started_at: DateTimeUtc,
    /// When it completed or timed out.
    pub finished_at: Option<DateTimeUtc>,
    /// Total bytes of output received.
    pub output_bytes: i64,
    /// The first 64 KiB of output.
    #[sea_orm(column_type = "Text")]
    pub output: String,
}

/// Relations of `commands`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
