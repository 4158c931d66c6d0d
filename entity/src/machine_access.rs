//! `machine_access`: per-machine grants of non-admin users.

use fleetgate_protocol::ids::{MachineId, UserId};
use sea_orm::entity::prelude::*;

/// One grant: `user_id` may do `level` (`view`, `terminal`, `command`) on `machine_id`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "machine_access")]
pub struct Model {
    /// The user granted.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: UserId,
    /// The machine the grant is for.
    #[sea_orm(primary_key, auto_increment = false)]
    pub machine_id: MachineId,
    /// `view`, `terminal` or `command`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub level: String,
}

/// Relations of `machine_access`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
