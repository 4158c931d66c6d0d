//! Which server certificates the CLI trusts for `https://` and `wss://`: the system's roots,
//! a CA file (`--ca-file`), or one pinned certificate (`--pin-sha256`). Chosen at `login` and
//! kept with the credentials, so `exec` and `shell` connect the same way.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The CLI's trust for one server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerTrust {
    /// Only CAs from this PEM file.
    #[serde(rename = "caFile", default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Only the certificate with this SHA-256 fingerprint.
    #[serde(rename = "pinSha256", default, skip_serializing_if = "Option::is_none")]
    pub pin_sha256: Option<String>,
}

impl ServerTrust {
    /// Whether nothing but the system's roots is trusted (not worth saving).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    fn config(&self) -> anyhow::Result<std::sync::Arc<rustls::ClientConfig>> {
        fleetgate_client_tls::client_config(fleetgate_client_tls::Trust {
            ca_file: self.ca_file.as_deref(),
            pin_sha256: self.pin_sha256.as_deref(),
        })
    }

    /// An HTTP client for `server` (TLS for `https://`).
    pub fn http_client(&self, server: &str) -> anyhow::Result<awc::Client> {
        if !server.starts_with("https://") {
            return Ok(awc::Client::default());
        }
        let connector = awc::Connector::new().rustls_0_23(self.config()?);
        Ok(awc::Client::builder().connector(connector).finish())
    }

    /// The WebSocket connector for `url` (TLS for `wss://`; `None` for `ws://`).
    pub fn ws_connector(&self, url: &str) -> anyhow::Result<Option<tokio_tungstenite::Connector>> {
        if !url.starts_with("wss://") {
            return Ok(None);
        }
        Ok(Some(tokio_tungstenite::Connector::Rustls(self.config()?)))
    }
}
