//! `terminal_sessions`: the history of terminal sessions.

use fleetgate_protocol::ids::{MachineId, SessionId, UserId};
use sea_orm::entity::prelude::*;

/// One terminal session, open or ended.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "terminal_sessions")]
pub struct Model {
    /// Session id (32 lowercase hex chars).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: SessionId,
    /// The user who opened the session.
    pub user_id: UserId,
    /// The machine the shell runs on.
    pub machine_id: MachineId,
    /// When the session was opened.
    pub started_at: DateTimeUtc,
    /// When the session ended, if it has.
    pub ended_at: Option<DateTimeUtc>,
    /// Bytes of input sent to the shell.
    pub bytes_in: i64,
    /// Bytes of output received from the shell.
    pub bytes_out: i64,
    /// Why it ended (`closed`, `agent_disconnected`, ...).
    pub close_reason: Option<String>,
}

/// Relations of `terminal_sessions`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
