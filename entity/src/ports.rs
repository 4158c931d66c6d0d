//! `ports`: the listening ports each machine last reported.

use fleetgate_protocol::ids::MachineId;
use sea_orm::entity::prelude::*;

/// One listening port of one machine.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ports")]
pub struct Model {
    /// Surrogate key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The machine that reported the port.
    pub machine_id: MachineId,
    /// Port number.
    pub port: i32,
    /// `tcp` or `udp` (as reported).
    pub proto: String,
    /// Process or service name, when known.
    pub service: Option<String>,
    /// Socket state such as `LISTEN`, when known.
    pub state: Option<String>,
    /// When this row was last written.
    pub updated_at: DateTimeUtc,
}

/// Relations of `ports`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
