//! Building and running the server: `Application::build(settings)` binds (port 0 allowed)
//! and returns the bound address, so tests start the real thing.

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use fleetgate_actors::agent_session::AgentSessionConfig;
use fleetgate_actors::protocol::session_token::SessionTokens;
use fleetgate_actors::recording::{RecordingConfig, RecordingKey};
use fleetgate_actors::repo::machine::mark_all_offline;
use fleetgate_actors::repo::session::close_interrupted;
use fleetgate_actors::shutdown::{ShutdownSignal, ShutdownTrigger, shutdown_channel};
use fleetgate_actors::socket::SocketConfig;
use fleetgate_actors::terminal::TerminalConfig;
use fleetgate_actors::web_session::WebSessionConfig;
use sea_orm::DatabaseConnection;
use tracing_actix_web::TracingLogger;

use crate::auth::JwtAuth;
use crate::db;
use crate::http;
use crate::http::api::throttle::LoginThrottle;
use crate::http::request_log::RequestSpan;
use crate::secrets::{SecretStore, Secrets, SecretsError, SecretsNotice};
use crate::services::Services;
use crate::settings::Settings;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The data directory could not be created.
    #[error("data directory {path}: {error}")]
    DataDir {
        /// The directory.
        path: String,
        /// The underlying error.
        error: std::io::Error,
    },
    /// Secrets could not be loaded.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// NATS or its presence bucket could not be reached (cluster mode).
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// The TLS certificate cannot be loaded or made.
    #[error("TLS: {0:#}")]
    Tls(anyhow::Error),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        error: std::io::Error,
    },
}

/// Everything request handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Database pool.
    pub db: DatabaseConnection,
    /// JWT issuing and verification.
    pub jwt: JwtAuth,
    /// Agent socket settings.
    pub agent_session: AgentSessionConfig,
    /// Long-lived actors.
    pub services: Services,
    /// Largest agent HTTP report body, bytes.
    pub agent_http_body_bytes: usize,
    /// Web socket settings.
    pub web_session: WebSessionConfig,
    /// Issues and checks terminal reattach tokens.
    pub session_tokens: SessionTokens,
    /// Public URL (for agent connect commands).
    pub public_url: String,
    /// Failed-login throttle shared by all workers.
    pub login_throttle: std::sync::Arc<std::sync::Mutex<LoginThrottle>>,
    /// Shutdown signal, cloned into every new socket.
    pub shutdown: ShutdownSignal,
    /// Where recordings are, the key that signs them, and whether sessions are recorded by
    /// default (a machine may say otherwise).
    pub recording: RecordingConfig,
}

/// A bound, not yet running server.
pub struct Application {
    address: SocketAddr,
    server: Server,
    shutdown: ShutdownTrigger,
    db: DatabaseConnection,
    jwt: JwtAuth,
    services: Services,
    shutdown_timeout: Duration,
}

impl Application {
    /// Prepares the data directory, secrets and database, then binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let data_dir = &settings.storage.data_dir;
        std::fs::create_dir_all(data_dir).map_err(|error| StartupError::DataDir {
            path: data_dir.display().to_string(),
            error,
        })?;
        let secrets = load_secrets(&settings)?;
        if let Some(bind) = settings.metrics_bind() {
            crate::metrics_server::start(bind)
                .map_err(|error| StartupError::Bind { addr: bind, error })?;
        }
        let tls = match settings.tls_source() {
            Some(source) => {
                let host = public_host(&settings.server.public_url);
                let tls =
                    crate::tls::ServerTls::load(source, &[host]).map_err(StartupError::Tls)?;
                tracing::info!(fingerprint = %tls.fingerprint(), "TLS on; certificate SHA-256 fingerprint (agents: --pin-sha256)");
                Some(std::sync::Arc::new(tls))
            }
            None => None,
        };

        // Bind first: a port in use fails start-up before anything else is started.
        let bind = settings.server.bind;
        let listener = crate::listener::bind(bind)
            .map_err(|error| StartupError::Bind { addr: bind, error })?;
        let address = listener
            .local_addr()
            .map_err(|error| StartupError::Bind { addr: bind, error })?;
        let db = db::connect(&settings.database_url(), &settings.database).await?;
        db::migrate_up(&db).await?;
        let (sessions, commands) = close_interrupted(&db).await?;
        if sessions + commands > 0 {
            tracing::warn!(
                sessions,
                commands,
                "sessions and commands left open by the last run marked interrupted"
            );
        }
        // In a cluster the database is shared: other instances' machines are online; the
        // cluster's sweep marks offline whatever no instance holds any more.
        let reset = if settings.cluster.enabled() {
            0
        } else {
            mark_all_offline(&db).await?
        };
        if reset > 0 {
            tracing::info!(
                machines = reset,
                "machines marked offline until they register again"
            );
        }
        if let Err(err) = crate::cli::users::ensure_first_admin(&db).await {
            tracing::error!(error = %format!("{err:#}"), "first admin not created");
        }
        let cluster = crate::cluster::join(&settings, &secrets.cluster_key).await?;
        let services = Services::start(&db, secrets.data_key.clone(), &settings, cluster);

        let jwt = JwtAuth::new(&secrets.jwt_secret, &settings.auth);
        let (trigger, signal) = shutdown_channel();
        let recording = recording_config(&settings, &secrets);
        let state = AppState {
            db: db.clone(),
            jwt: jwt.clone(),
            agent_session: AgentSessionConfig {
                socket: socket_config(
                    &settings,
                    settings.limits.agent_frame_bytes,
                    settings.limits.agent_register_frame_bytes,
                ),
                register_timeout: Duration::from_secs(settings.agents.register_timeout_secs),
                enrollment: settings.agents.enrollment,
            },
            services: services.clone(),
            agent_http_body_bytes: settings.limits.agent_http_body_bytes,
            web_session: web_session_config(&settings, Some(recording.clone())),
            session_tokens: SessionTokens::new(secrets.session_token_secret),
            public_url: settings.server.public_url.clone(),
            login_throttle: std::sync::Arc::new(std::sync::Mutex::new(LoginThrottle::new(
                settings.limits.login_failures_per_minute as usize,
            ))),
            shutdown: signal,
            recording: recording.clone(),
        };
        prune_recordings(recording.dir, settings.recording.retention_days);

        let shutdown_timeout = Duration::from_secs(settings.server.shutdown_timeout_secs);
        let agent_body_limit = state.agent_http_body_bytes;
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::<RequestSpan>::new())
                .app_data(web::Data::new(state.clone()))
                .configure(|config| http::routes(config, agent_body_limit))
        });
        let server = match &tls {
            Some(tls) => {
                tls.clone().watch();
                server.listen_rustls_0_23(listener, tls.config.clone())
            }
            None => server.listen(listener),
        }
        .map_err(|error| StartupError::Bind { addr: bind, error })?
        .tcp_nodelay(true)
        .disable_signals()
        .shutdown_timeout(shutdown_timeout.as_secs())
        .run();

        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(%address, scheme, "fleetgate listening");
        Ok(Self {
            address,
            server,
            shutdown: trigger,
            db,
            jwt,
            services,
            shutdown_timeout,
        })
    }

    /// The address the listener is bound to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The JWT issuer/verifier this server uses (tests sign tokens with it).
    pub fn jwt(&self) -> &JwtAuth {
        &self.jwt
    }

    /// The database pool.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The long-lived actors.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let running = self.start();
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        running.stop().await;
        Ok(())
    }

    /// Starts serving in the background and returns a handle to stop it.
    pub fn start(self) -> RunningServer {
        let handle = self.server.handle();
        actix_web::rt::spawn(self.server);
        RunningServer {
            handle,
            shutdown: self.shutdown,
            db: self.db,
            services: self.services,
            shutdown_timeout: self.shutdown_timeout,
        }
    }
}

/// A server serving in the background.
pub struct RunningServer {
    handle: ServerHandle,
    shutdown: ShutdownTrigger,
    db: DatabaseConnection,
    services: Services,
    shutdown_timeout: Duration,
}

impl RunningServer {
    /// Closes every WebSocket with 1001, drains requests, then closes the database pool.
    pub async fn stop(self) {
        self.services.close_terminals().await;
        self.shutdown.trigger();
        // Give socket actors a moment to flush their close frames.
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        let stopped = tokio::time::timeout(self.shutdown_timeout, self.handle.stop(true)).await;
        if stopped.is_err() {
            tracing::warn!("graceful shutdown timed out");
        }
        self.services.flush().await;
        if let Err(err) = self.db.close_by_ref().await {
            tracing::warn!(error = %err, "closing the database pool failed");
        }
        tracing::info!("fleetgate stopped");
    }
}

/// Where and how terminal sessions are recorded (`None` when they are not).
pub fn recording_config(settings: &Settings, secrets: &Secrets) -> RecordingConfig {
    RecordingConfig {
        dir: settings.storage.data_dir.join("recordings"),
        input: settings.recording.input,
        key: RecordingKey::from_bytes(secrets.data_key.derive(RECORDING_KEY_PURPOSE)),
        by_default: settings.records_sessions(),
    }
}

/// Removes recordings past their retention now and every six hours.
fn prune_recordings(dir: std::path::PathBuf, retention_days: u64) {
    const EVERY: Duration = Duration::from_secs(6 * 3600);
    let retention = Duration::from_secs(retention_days * 86_400);
    actix_web::rt::spawn(async move {
        loop {
            let cutoff = std::time::SystemTime::now() - retention;
            let dir = dir.clone();
            let removed = actix_web::rt::task::spawn_blocking(move || {
                fleetgate_actors::recording::stored::prune(&dir, cutoff)
            })
            .await
            .unwrap_or(0);
            if removed > 0 {
                tracing::info!(removed, "recordings past their retention removed");
            }
            actix_web::rt::time::sleep(EVERY).await;
        }
    });
}

/// The name the recordings' signing key is derived under.
const RECORDING_KEY_PURPOSE: &str = "fleetgate recordings v1";

fn web_session_config(settings: &Settings, recording: Option<RecordingConfig>) -> WebSessionConfig {
    let limits = &settings.limits;
    WebSessionConfig {
        socket: socket_config(settings, limits.web_frame_bytes, limits.web_frame_bytes),
        terminal: TerminalConfig {
            msgs_per_sec: limits.terminal_msgs_per_sec,
            burst: limits.terminal_burst,
            buffer_bytes: limits.terminal_buffer_bytes,
            idle_timeout: Duration::from_secs(limits.terminal_idle_secs),
            grace: Duration::from_secs(limits.reattach_grace_secs),
            replay_bytes: limits.terminal_replay_bytes,
            flow_window: limits.terminal_flow_window_bytes,
            recording,
        },
        command_timeout: Duration::from_secs(limits.command_timeout_secs),
    }
}

fn socket_config(
    settings: &Settings,
    max_frame_bytes: usize,
    unauthenticated_frame_bytes: usize,
) -> SocketConfig {
    SocketConfig {
        ping_interval: Duration::from_secs(settings.server.ping_interval_secs),
        client_timeout: Duration::from_secs(settings.server.client_timeout_secs),
        max_frame_bytes,
        unauthenticated_frame_bytes,
        violations_per_minute: settings.limits.violations_per_minute,
    }
}

/// Loads secrets from the environment or the data directory and logs what was done (names only).
fn load_secrets(settings: &Settings) -> Result<Secrets, SecretsError> {
    let store = SecretStore::new(&settings.storage.data_dir);
    let (secrets, notices) = store.load(|name| std::env::var(name).ok())?;
    for notice in notices {
        match notice {
            SecretsNotice::Generated(name) => {
                tracing::info!(secret = name, file = %store.path().display(), "generated secret")
            }
            SecretsNotice::WeakJwtSecretReplaced { source_name } => tracing::warn!(
                source = %source_name,
                file = %store.path().display(),
                "weak JWT secret ignored; a strong one is used instead"
            ),
            SecretsNotice::PermissionsTightened => tracing::warn!(
                file = %store.path().display(),
                "secrets file was readable by others; permissions set to 0600"
            ),
        }
    }
    Ok(secrets)
}

/// Completes on SIGINT or SIGTERM.
async fn wait_for_signal() {
    let mut terminate = match tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::terminate(),
    ) {
        Ok(signal) => signal,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGTERM; only SIGINT stops the server");
            if let Err(err) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %err, "cannot listen for SIGINT either");
            }
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// The host part of `public_url` (a name a self-signed certificate is made for).
fn public_host(public_url: &str) -> String {
    let rest = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host.to_owned(),
        _ => authority.to_owned(),
    }
}
