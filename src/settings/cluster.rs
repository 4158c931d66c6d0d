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
    /// none (or `user:password@` / `token@` in `nats_url`); some are needed unless NATS is on
    /// loopback.
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

    /// The NATS URL without credentials, and the credentials it carried: `user:password@`
    /// (user and password) or `token@` (a token). async-nats does not read them from the URL.
    pub fn nats_url_and_auth(&self) -> (String, Option<NatsAuth>) {
        let Some((scheme, rest)) = self.nats_url.split_once("://") else {
            return (self.nats_url.clone(), None);
        };
        let Some((userinfo, host)) = rest.rsplit_once('@') else {
            return (self.nats_url.clone(), None);
        };
        let auth = match userinfo.split_once(':') {
            Some((user, password)) => NatsAuth::UserPassword(user.into(), password.into()),
            None => NatsAuth::Token(userinfo.into()),
        };
        (format!("{scheme}://{host}"), Some(auth))
    }

    /// The NATS URL for logs and errors: a password or token in it is replaced by `***`.
    pub fn nats_url_for_display(&self) -> String {
        match self.nats_url.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo
                        .split(':')
                        .next()
                        .filter(|_| userinfo.contains(':'));
                    format!(
                        "{scheme}://{}***@{host}",
                        user.map_or(String::new(), |u| format!("{u}:"))
                    )
                }
                None => self.nats_url.clone(),
            },
            None => self.nats_url.clone(),
        }
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

/// Credentials given in `cluster.nats_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsAuth {
    /// `user:password@`
    UserPassword(String, String),
    /// `token@`
    Token(String),
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
            if cluster.nats_credentials_file.is_empty() && cluster.nats_url_and_auth().1.is_none() {
                return Err(invalid(
                    "cluster.nats_credentials_file",
                    "NATS off this machine needs credentials of this instance (a .creds file, \
                     or user:password@ or token@ in cluster.nats_url)",
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

    #[test]
    fn secrets_in_the_nats_url_are_not_displayed() {
        let shown = |url: &str| cluster(url, "", "").nats_url_for_display();
        assert_eq!(
            shown("nats://fra:s3cret@10.0.0.5:4222"),
            "nats://fra:***@10.0.0.5:4222"
        );
        assert_eq!(
            shown("nats://tok3n@10.0.0.5:4222"),
            "nats://***@10.0.0.5:4222"
        );
        assert_eq!(shown("tls://10.0.0.5:4222"), "tls://10.0.0.5:4222");
        let split = |url: &str| cluster(url, "", "").nats_url_and_auth();
        assert_eq!(
            split("nats://fra:s3cret@10.0.0.5:4222"),
            (
                "nats://10.0.0.5:4222".to_owned(),
                Some(NatsAuth::UserPassword("fra".into(), "s3cret".into()))
            )
        );
        assert_eq!(
            split("nats://tok3n@10.0.0.5"),
            (
                "nats://10.0.0.5".to_owned(),
                Some(NatsAuth::Token("tok3n".into()))
            )
        );
        assert_eq!(
            split("nats://10.0.0.5"),
            ("nats://10.0.0.5".to_owned(), None)
        );
    }
}
