//! `metrics`: one row per accepted heartbeat.

use fleetgate_protocol::ids::MachineId;
use sea_orm::entity::prelude::*;

/// A metric sample of one machine (units as in docs/protocol.md 2.3: percent, GiB, seconds).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metrics")]
pub struct Model {
    /// Surrogate key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The machine sampled.
    pub machine_id: MachineId,
    /// When the server received the heartbeat.
    pub at: DateTimeUtc,
    /// CPU usage in percent.
    pub cpu: f64,
    /// RAM in use, GiB.
    pub ram_used: f64,
    /// RAM installed, GiB.
    pub ram_total: f64,
    /// Disk in use, GiB.
    pub disk_used: f64,
    /// Disk capacity, GiB.
    pub disk_total: f64,
    /// Uptime in seconds.
    pub uptime: i64,
}

/// Relations of `metrics`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
