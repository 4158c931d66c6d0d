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
mod tests;
