//! `[metrics]`: where `/metrics` (Prometheus text) is served, if anywhere.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{Settings, SettingsError, invalid};

/// `[metrics]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address of the `/metrics` listener; empty: off.
    pub bind: String,
}

impl Settings {
    /// The `/metrics` listener's address, when it is on.
    pub fn metrics_bind(&self) -> Option<SocketAddr> {
        self.metrics.bind.trim().parse().ok()
    }

    /// `metrics.bind` is empty or an address.
    pub(super) fn validate_metrics(&self) -> Result<(), SettingsError> {
        let bind = self.metrics.bind.trim();
        if !bind.is_empty() && bind.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "metrics.bind",
                "must be empty (off) or an address such as 127.0.0.1:9187",
            ));
        }
        Ok(())
    }
}
