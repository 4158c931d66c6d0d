//! `Machine`: a machine as the rest of the server sees it — what its agent reported and its
//! status, never its secret (the row's secret hash and sealed secret stay in the repositories).

use chrono::{DateTime, Utc};
use fleetgate_entity::machines;

use crate::protocol::MachineId;

/// A machine, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Its id.
    pub id: MachineId,
    /// Operator-chosen label.
    pub name: String,
    /// Hostname from the last `register`.
    pub hostname: String,
    /// Address from the last `register`.
    pub ip: String,
    /// `osInfo.distro`.
    pub os_distro: Option<String>,
    /// `osInfo.release`.
    pub os_release: Option<String>,
    /// `osInfo.kernel`.
    pub os_kernel: Option<String>,
    /// `platform`.
    pub platform: Option<String>,
    /// Whether it was online when last stored.
    pub online: bool,
    /// The last heartbeat or register seen.
    pub last_seen: Option<DateTime<Utc>>,
}

impl Machine {
    /// `online` or `offline`.
    pub fn status(&self) -> &'static str {
        if self.online { "online" } else { "offline" }
    }
}

impl From<machines::Model> for Machine {
    fn from(row: machines::Model) -> Self {
        Self {
            id: MachineId(row.id),
            name: row.name,
            hostname: row.hostname,
            ip: row.ip,
            os_distro: row.os_distro,
            os_release: row.os_release,
            os_kernel: row.os_kernel,
            platform: row.platform,
            online: row.status == "online",
            last_seen: row.last_seen,
        }
    }
}
