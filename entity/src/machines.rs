//! `machines`: one row per enrolled machine, identified by the hash of its secret.

use fleetgate_protocol::ids::MachineId;
use sea_orm::entity::prelude::*;

/// A machine of the fleet and what its agent last reported about itself.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "machines")]
pub struct Model {
    /// Machine id, sent to the agent as `machineId`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: MachineId,
    /// Operator-chosen label (defaults to the first reported hostname).
    pub name: String,
    /// Hostname from the last `register`.
    pub hostname: String,
    /// Address string from the last `register` (any string, see docs/protocol.md 2.1).
    pub ip: String,
    /// `osInfo.distro` from the last `register`.
    pub os_distro: Option<String>,
    /// `osInfo.release` from the last `register`.
    pub os_release: Option<String>,
    /// `osInfo.kernel` from the last `register`.
    pub os_kernel: Option<String>,
    /// `platform` from the last `register`.
    pub platform: Option<String>,
    /// Lowercase hex SHA-256 of the machine secret, used for lookup.
    #[sea_orm(unique)]
    pub secret_hash: String,
    /// The machine secret sealed with the data key (hex of nonce and ciphertext).
    pub secret_sealed: String,
    /// `online` or `offline`.
    pub status: String,
    /// Last time a heartbeat or register was seen (coalesced writes).
    pub last_seen: Option<DateTimeUtc>,
    /// When the machine was enrolled.
    pub created_at: DateTimeUtc,
    /// Per-machine override of `recording.mode`: `on`, `off`, or null (the server's setting).
    pub recording: Option<String>,
}

/// Relations of `machines` (children point at it; none are navigated from here).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
