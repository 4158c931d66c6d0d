//! `Machine`: a machine as the rest of the server sees it — what its agent reported and its
//! status, never its secret (the row's secret hash and sealed secret stay in the repositories).

use chrono::{DateTime, Utc};
use fleetgate_entity::machines;

use super::machine::MachineDetails;
use crate::protocol::MachineId;

/// A machine, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Its id.
    pub id: MachineId,
    /// Operator-chosen label.
    pub name: String,
    /// What its agent reported in the last `register`.
    pub details: MachineDetails,
    /// Whether it was online when last stored.
    pub online: bool,
    /// The last heartbeat or register seen.
    pub last_seen: Option<DateTime<Utc>>,
    /// Whether its terminal sessions are recorded, when set for this machine (`None`: as
    /// `recording.mode` says).
    pub recording: Option<bool>,
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
            id: row.id,
            name: row.name,
            details: MachineDetails {
                hostname: row.hostname,
                ip: row.ip,
                os_distro: row.os_distro,
                os_release: row.os_release,
                os_kernel: row.os_kernel,
                platform: row.platform,
            },
            online: row.status == "online",
            last_seen: row.last_seen,
            recording: match row.recording.as_deref() {
                Some("on") => Some(true),
                Some("off") => Some(false),
                _ => None,
            },
        }
    }
}
