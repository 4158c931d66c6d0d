//! Configuration: `config/default.toml` < `--config FILE` < `FLEETGATE__SECTION__KEY`.

mod cluster;
mod metrics;
mod recording;
mod tls;

pub use metrics::MetricsSettings;
pub use recording::RecordingSettings;
pub use tls::TlsSource;

pub use cluster::{ClusterSettings, NatsAuth};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

pub use fleetgate_actors::repo::Enrollment;

/// The built-in defaults, the same text as `config/default.toml`.
const DEFAULTS: &str = include_str!("../config/default.toml");

/// Prefix of environment overrides (`FLEETGATE__SERVER__BIND`).
const ENV_PREFIX: &str = "FLEETGATE";

/// A configuration that could not be loaded or has a bad value.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A source could not be read or a value could not be converted.
    #[error("configuration error: {0}")]
    Load(#[from] config::ConfigError),
    /// A value parsed but is not acceptable.
    #[error("configuration error: key `{key}`: {reason}")]
    Invalid {
        /// Dotted key, e.g. `server.bind`.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// All of fleetgate's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Listener and WebSocket keep-alive.
    pub server: ServerSettings,
    /// Where files live.
    pub storage: StorageSettings,
    /// Database connection.
    pub database: DatabaseSettings,
    /// Logging.
    pub log: LogSettings,
    /// JWT issuing and checking.
    pub auth: AuthSettings,
    /// Agent enrolment and timings.
    pub agents: AgentSettings,
    /// Frame sizes, rate limits and buffers.
    pub limits: LimitSettings,
    /// Per-region instances over NATS (off by default).
    pub cluster: ClusterSettings,
    /// `[metrics]`
    pub metrics: MetricsSettings,
    /// `[recording]`
    pub recording: RecordingSettings,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Listen address.
    pub bind: SocketAddr,
    /// Public URL of this server.
    pub public_url: String,
    /// Graceful-shutdown wait, seconds.
    pub shutdown_timeout_secs: u64,
    /// WebSocket ping interval, seconds.
    pub ping_interval_secs: u64,
    /// WebSocket silence limit, seconds.
    pub client_timeout_secs: u64,
    /// `""`/`"off"` (plain HTTP unless files are given), `"files"` or `"self-signed"`.
    pub tls: String,
    /// PEM certificate chain (leaf first); with `tls_key_file`, TLS on.
    pub tls_cert_file: String,
    /// PEM private key of the certificate.
    pub tls_key_file: String,
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// Data directory.
    pub data_dir: PathBuf,
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// SeaORM URL; empty means the SQLite file in the data directory.
    pub url: String,
    /// PostgreSQL schema (search_path); empty for the default.
    pub schema: String,
    /// Pool size.
    pub max_connections: u32,
    /// SQLite busy timeout, milliseconds.
    pub sqlite_busy_timeout_ms: u64,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// tracing filter directives.
    pub level: String,
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// JWT issuer.
    pub jwt_issuer: String,
    /// JWT audience.
    pub jwt_audience: String,
    /// JWT lifetime, seconds.
    pub jwt_ttl_secs: u64,
    /// Clock leeway, seconds.
    pub jwt_leeway_secs: u64,
    /// How often users are read again to close the sockets of changed users, milliseconds.
    pub user_check_ms: u64,
}

/// `[agents]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// Enrolment policy.
    pub enrollment: Enrollment,
    /// Expected heartbeat interval, seconds.
    pub heartbeat_secs: u64,
    /// Offline after this silence, seconds.
    pub offline_after_secs: u64,
    /// Register deadline, seconds.
    pub register_timeout_secs: u64,
    /// How many agents this instance is sized for (`fleetgate doctor` checks the open-file
    /// limit against it: each connected agent holds one file descriptor).
    pub expected: u64,
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Max agent frame, bytes.
    pub agent_frame_bytes: usize,
    /// Max web frame, bytes.
    pub web_frame_bytes: usize,
    /// Max agent HTTP body, bytes.
    pub agent_http_body_bytes: usize,
    /// Violations per minute before close 1008.
    pub violations_per_minute: u32,
    /// Terminal input rate, messages per second.
    pub terminal_msgs_per_sec: u32,
    /// Terminal input burst.
    pub terminal_burst: u32,
    /// Undelivered output bound per session, bytes.
    pub terminal_buffer_bytes: usize,
    /// Output already delivered kept per session for replay after a reattach, bytes (0: none).
    pub terminal_replay_bytes: usize,
    /// Output an agent with `flow_control` may send ahead of the reader, per session, bytes.
    pub terminal_flow_window_bytes: u64,
    /// Terminal idle timeout, seconds.
    pub terminal_idle_secs: u64,
    /// Reattach grace period, seconds.
    pub reattach_grace_secs: u64,
    /// Default command timeout, seconds.
    pub command_timeout_secs: u64,
    /// Failed logins per user name and per address per minute before 429.
    pub login_failures_per_minute: u32,
    /// Largest accepted agent frame before the agent has registered, bytes.
    pub agent_register_frame_bytes: usize,
    /// Security events (refused frames, bad registers) logged and audited per peer address
    /// per minute; the rest are counted and reported with the next one.
    pub security_events_per_minute: u32,
}

impl Settings {
    /// Loads defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_from(file, Environment::with_prefix(ENV_PREFIX).separator("__"))
    }

    /// Loads defaults, then `file`, then the given environment source (tests pass their own).
    pub fn load_from(file: Option<&Path>, env: Environment) -> Result<Self, SettingsError> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
        }
        let settings: Settings = builder
            .add_source(env.try_parsing(true))
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// The built-in defaults alone, ignoring files and the environment.
    pub fn defaults() -> Result<Self, SettingsError> {
        Self::load_from(
            None,
            Environment::default().source(Some(Default::default())),
        )
    }

    /// The database URL to use: the configured one, or the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        if self.database.url.trim().is_empty() {
            let path = self.storage.data_dir.join("fleetgate.db");
            format!("sqlite://{}?mode=rwc", path.display())
        } else {
            self.database.url.trim().to_owned()
        }
    }

    /// Checks values that parse but make no sense.
    fn validate(&self) -> Result<(), SettingsError> {
        let positive: [(&'static str, u64); 13] = [
            ("auth.user_check_ms", self.auth.user_check_ms),
            (
                "limits.security_events_per_minute",
                u64::from(self.limits.security_events_per_minute),
            ),
            ("limits.terminal_idle_secs", self.limits.terminal_idle_secs),
            (
                "limits.reattach_grace_secs",
                self.limits.reattach_grace_secs,
            ),
            (
                "limits.command_timeout_secs",
                self.limits.command_timeout_secs,
            ),
            (
                "server.shutdown_timeout_secs",
                self.server.shutdown_timeout_secs,
            ),
            ("server.ping_interval_secs", self.server.ping_interval_secs),
            (
                "server.client_timeout_secs",
                self.server.client_timeout_secs,
            ),
            ("auth.jwt_ttl_secs", self.auth.jwt_ttl_secs),
            ("agents.heartbeat_secs", self.agents.heartbeat_secs),
            ("agents.offline_after_secs", self.agents.offline_after_secs),
            (
                "agents.register_timeout_secs",
                self.agents.register_timeout_secs,
            ),
            (
                "database.max_connections",
                u64::from(self.database.max_connections),
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be greater than zero"));
            }
        }
        let sizes: [(&'static str, usize); 6] = [
            (
                "limits.agent_register_frame_bytes",
                self.limits.agent_register_frame_bytes,
            ),
            ("limits.agent_frame_bytes", self.limits.agent_frame_bytes),
            ("limits.web_frame_bytes", self.limits.web_frame_bytes),
            (
                "limits.agent_http_body_bytes",
                self.limits.agent_http_body_bytes,
            ),
            (
                "limits.terminal_buffer_bytes",
                self.limits.terminal_buffer_bytes,
            ),
            (
                "limits.terminal_flow_window_bytes",
                usize::try_from(self.limits.terminal_flow_window_bytes).unwrap_or(usize::MAX),
            ),
        ];
        for (key, value) in sizes {
            if value < 1024 {
                return Err(invalid(key, "must be at least 1024 bytes"));
            }
        }
        if self.limits.terminal_flow_window_bytes > self.limits.terminal_buffer_bytes as u64 {
            return Err(invalid(
                "limits.terminal_flow_window_bytes",
                "must not exceed limits.terminal_buffer_bytes",
            ));
        }
        if self.limits.terminal_msgs_per_sec == 0 || self.limits.terminal_burst == 0 {
            return Err(invalid(
                "limits.terminal_msgs_per_sec",
                "rate and burst must be positive",
            ));
        }
        if self.server.client_timeout_secs <= self.server.ping_interval_secs {
            return Err(invalid(
                "server.client_timeout_secs",
                "must be longer than server.ping_interval_secs",
            ));
        }
        if self.agents.offline_after_secs < self.agents.heartbeat_secs {
            return Err(invalid(
                "agents.offline_after_secs",
                "must be at least agents.heartbeat_secs",
            ));
        }
        if !(self.server.public_url.starts_with("http://")
            || self.server.public_url.starts_with("https://"))
        {
            return Err(invalid(
                "server.public_url",
                "must start with http:// or https://",
            ));
        }
        if self.auth.jwt_issuer.is_empty() || self.auth.jwt_audience.is_empty() {
            return Err(invalid(
                "auth.jwt_issuer",
                "issuer and audience must not be empty",
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|err| invalid("log.level", &err.to_string()))?;
        self.validate_cluster()?;
        self.validate_metrics()?;
        self.validate_recording()?;
        self.validate_tls()
    }
}

pub(crate) fn invalid(key: &'static str, reason: &str) -> SettingsError {
    SettingsError::Invalid {
        key,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Environment::with_prefix(ENV_PREFIX)
            .separator("__")
            .source(Some(map))
    }

    fn file_with(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("tempfile");
        std::io::Write::write_all(&mut file, text.as_bytes()).expect("write");
        file
    }

    #[test]
    fn defaults_match_the_documented_contract() {
        let settings = Settings::defaults().expect("defaults");
        assert_eq!(settings.server.bind.to_string(), "127.0.0.1:7070");
        assert_eq!(settings.storage.data_dir, PathBuf::from("./data"));
        assert_eq!(
            settings.database_url(),
            "sqlite://./data/fleetgate.db?mode=rwc"
        );
        assert_eq!(settings.auth.jwt_issuer, "fleetgate");
        assert_eq!(settings.auth.jwt_audience, "fleetgate-clients");
        assert_eq!(settings.auth.jwt_ttl_secs, 3600);
        assert_eq!(settings.agents.enrollment, Enrollment::Token);
        assert_eq!(settings.agents.offline_after_secs, 15);
        assert_eq!(settings.limits.agent_frame_bytes, 1 << 20);
        assert_eq!(settings.limits.web_frame_bytes, 64 << 10);
    }

    #[test]
    fn file_overrides_defaults_and_environment_overrides_file() {
        let file = file_with(
            "[server]\nbind = \"0.0.0.0:8080\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n",
        );
        let from_file = Settings::load_from(Some(file.path()), env(&[])).expect("file");
        assert_eq!(from_file.server.bind.to_string(), "0.0.0.0:8080");
        assert_eq!(from_file.log.format, LogFormat::Json);

        let both = Settings::load_from(
            Some(file.path()),
            env(&[
                ("FLEETGATE__SERVER__BIND", "127.0.0.1:9090"),
                ("FLEETGATE__AGENTS__ENROLLMENT", "open"),
            ]),
        )
        .expect("env");
        assert_eq!(both.server.bind.to_string(), "127.0.0.1:9090");
        assert_eq!(both.agents.enrollment, Enrollment::Open);
        assert_eq!(
            both.log.level, "debug",
            "keys the environment leaves alone come from the file"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("FLEETGATE__SERVER__BIND", "not-an-address", "server.bind"),
            ("FLEETGATE__LOG__FORMAT", "xml", "log.format"),
            (
                "FLEETGATE__AGENTS__HEARTBEAT_SECS",
                "-5",
                "agents.heartbeat_secs",
            ),
            (
                "FLEETGATE__AGENTS__OFFLINE_AFTER_SECS",
                "0",
                "agents.offline_after_secs",
            ),
            (
                "FLEETGATE__AGENTS__ENROLLMENT",
                "maybe",
                "agents.enrollment",
            ),
            ("FLEETGATE__LOG__LEVEL", "info,=[", "log.level"),
        ];
        for (var, value, key) in cases {
            let err = Settings::load_from(None, env(&[(var, value)])).expect_err(var);
            assert!(err.to_string().contains(key), "{var}={value}: {err}");
        }
    }

    #[test]
    fn cluster_mode_needs_postgresql_and_subject_safe_names() {
        let standalone = Settings::load_from(None, env(&[])).expect("defaults");
        assert!(!standalone.cluster.enabled());
        let nats = ("FLEETGATE__CLUSTER__NATS_URL", "nats://127.0.0.1:4222");
        let err = Settings::load_from(None, env(&[nats])).expect_err("SQLite in a cluster");
        assert!(
            err.to_string().contains("database.url") && err.to_string().contains("SQLite"),
            "{err}"
        );
        let postgres = (
            "FLEETGATE__DATABASE__URL",
            "postgres://postgres@127.0.0.1/test",
        );
        let cluster = Settings::load_from(None, env(&[nats, postgres])).expect("cluster");
        assert!(cluster.cluster.enabled());
        let err = Settings::load_from(
            None,
            env(&[nats, postgres, ("FLEETGATE__CLUSTER__REGION", "eu.west")]),
        )
        .expect_err("a dot would split the subject");
        assert!(err.to_string().contains("cluster.region"), "{err}");
        let err = Settings::load_from(
            None,
            env(&[("FLEETGATE__CLUSTER__NATS_URL", "http://x"), postgres]),
        )
        .expect_err("not a NATS URL");
        assert!(err.to_string().contains("cluster.nats_url"), "{err}");

        let remote = ("FLEETGATE__CLUSTER__NATS_URL", "nats://10.0.0.5:4222");
        let err = Settings::load_from(None, env(&[remote, postgres])).expect_err("plain remote");
        assert!(
            err.to_string().contains("cluster.nats_tls_ca_file"),
            "{err}"
        );
        let ca = (
            "FLEETGATE__CLUSTER__NATS_TLS_CA_FILE",
            "/etc/fleetgate/nats-ca.pem",
        );
        let err = Settings::load_from(None, env(&[remote, postgres, ca])).expect_err("no creds");
        assert!(
            err.to_string().contains("cluster.nats_credentials_file"),
            "{err}"
        );
        let in_url = ("FLEETGATE__CLUSTER__NATS_URL", "tls://fra:pw@10.0.0.5:4222");
        assert!(
            Settings::load_from(None, env(&[in_url, postgres])).is_ok(),
            "user:password@"
        );
        let creds = (
            "FLEETGATE__CLUSTER__NATS_CREDENTIALS_FILE",
            "/etc/fleetgate/fra.creds",
        );
        let secured = Settings::load_from(None, env(&[remote, postgres, ca, creds]));
        assert!(secured.expect("TLS and credentials").cluster.requires_tls());
    }

    #[test]
    fn unknown_keys_in_a_file_are_refused() {
        let file = file_with("[server]\nbindd = \"0.0.0.0:8080\"\n");
        let err = Settings::load_from(Some(file.path()), env(&[])).expect_err("typo");
        assert!(err.to_string().contains("bindd"), "{err}");
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let missing = Path::new("/nonexistent/fleetgate.toml");
        assert!(Settings::load_from(Some(missing), env(&[])).is_err());
    }
}
