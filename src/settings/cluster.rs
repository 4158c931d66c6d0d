//! `[cluster]`: per-region instances over NATS, and what makes their settings valid.

use serde::Deserialize;

use super::{Settings, SettingsError, invalid};

/// `[cluster]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// NATS URL; empty runs standalone.
    pub nats_url: String,
    /// Cluster name, the first token of its NATS subjects.
    pub name: String,
    /// This instance's region.
    pub region: String,
    /// This instance's NATS credentials (a `.creds` file: user JWT and NKey seed); empty for
    /// none, allowed only for a NATS on loopback.
    pub nats_credentials_file: String,
    /// CA certificate (PEM) the NATS server's certificate must chain to; setting it (or a
    /// `tls://` URL) requires TLS. Needed unless NATS is on loopback.
    pub nats_tls_ca_file: String,
}

impl ClusterSettings {
    /// Whether this instance is part of a cluster.
    pub fn enabled(&self) -> bool {
        !self.nats_url.trim().is_empty()
    }

    /// Whether the connection to NATS must be TLS.
    pub fn requires_tls(&self) -> bool {
        self.nats_url.starts_with("tls://") || !self.nats_tls_ca_file.is_empty()
    }

    /// Whether the NATS URL's host is this machine.
    fn nats_on_loopback(&self) -> bool {
        let rest = self
            .nats_url
            .split_once("://")
            .map_or(self.nats_url.as_str(), |(_, rest)| rest);
        let host_port = rest.rsplit('@').next().unwrap_or(rest);
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host_port.split(':').next().unwrap_or(""),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// Whether `text` can be one token of a NATS subject (and of a KV key).
fn is_subject_token(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Settings {
    /// Cluster names must fit NATS subjects; a cluster needs one database shared by every
    /// instance, which SQLite (a file of one instance) cannot be; NATS off this machine needs
    /// TLS and credentials of this instance.
    pub(super) fn validate_cluster(&self) -> Result<(), SettingsError> {
        let cluster = &self.cluster;
        for (key, value) in [
            ("cluster.name", &cluster.name),
            ("cluster.region", &cluster.region),
        ] {
            if !is_subject_token(value) {
                return Err(invalid(key, "must be 1 to 64 letters, digits, '-' or '_'"));
            }
        }
        if !cluster.enabled() {
            return Ok(());
        }
        if !cluster.nats_url.starts_with("nats://") && !cluster.nats_url.starts_with("tls://") {
            return Err(invalid(
                "cluster.nats_url",
                "must start with nats:// or tls://",
            ));
        }
        if !cluster.nats_on_loopback() {
            if !cluster.requires_tls() {
                return Err(invalid(
                    "cluster.nats_tls_ca_file",
                    "NATS off this machine needs TLS: a tls:// URL or a CA file",
                ));
            }
            if cluster.nats_credentials_file.is_empty() {
                return Err(invalid(
                    "cluster.nats_credentials_file",
                    "NATS off this machine needs credentials of this instance (.creds file)",
                ));
            }
        }
        if !self.database_url().starts_with("postgres") {
            return Err(invalid(
                "database.url",
                "cluster mode (cluster.nats_url set) needs a PostgreSQL database shared by every \
                 instance; SQLite is a file of one instance",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(url: &str, ca: &str, creds: &str) -> ClusterSettings {
        ClusterSettings {
            nats_url: url.into(),
            name: "c".into(),
            region: "r".into(),
            nats_credentials_file: creds.into(),
            nats_tls_ca_file: ca.into(),
        }
    }

    #[test]
    fn loopback_is_recognised_in_every_spelling() {
        for url in [
            "nats://127.0.0.1:4222",
            "nats://localhost:4222",
            "nats://user:pw@127.0.0.1:4222",
            "nats://[::1]:4222",
            "tls://127.0.0.2",
        ] {
            assert!(cluster(url, "", "").nats_on_loopback(), "{url}");
        }
        for url in [
            "nats://10.0.0.5:4222",
            "nats://nats.example:4222",
            "nats://[2001:db8::1]:4222",
        ] {
            assert!(!cluster(url, "", "").nats_on_loopback(), "{url}");
        }
        assert!(cluster("tls://10.0.0.5", "", "").requires_tls());
        assert!(cluster("nats://10.0.0.5", "/ca.pem", "").requires_tls());
        assert!(!cluster("nats://10.0.0.5", "", "").requires_tls());
    }
}
