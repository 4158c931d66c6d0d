//! The fleetgate server under test: its own process (release build), its own data directory,
//! SQLite by default or a fresh PostgreSQL schema.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::proc_stats::{self, ProcSample};

/// Name and password of the admin the server creates at its first start.
pub const ADMIN_USER: &str = "bench";
/// Password of [`ADMIN_USER`] (a throw-away server in a temp dir).
pub const ADMIN_PASSWORD: &str = "bench-password-not-secret";

/// How to start the server under test.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The `fleetgate` binary.
    pub binary: PathBuf,
    /// A PostgreSQL URL; `None` for SQLite in the data directory.
    pub postgres: Option<String>,
    /// Extra `FLEETGATE__…` settings.
    pub env: Vec<(String, String)>,
}

/// A running (or stopped) server process and the data it keeps between restarts.
pub struct ServerUnderTest {
    options: ServerOptions,
    data_dir: tempfile::TempDir,
    addr: SocketAddr,
    schema: Option<String>,
    /// Whether stopping drops the schema (not for a second instance sharing it).
    owns_schema: bool,
    child: Option<Child>,
}

/// The file of the server's secrets in its data directory (`fleetgate::secrets::SECRETS_FILE`).
const SECRETS_FILE: &str = "secrets.env";

impl ServerUnderTest {
    /// A server on a free port with a fresh data directory (and schema); not started yet.
    pub async fn prepare(options: ServerOptions) -> anyhow::Result<Self> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let schema = match &options.postgres {
            Some(url) => Some(crate::db_probe::create_schema(url).await?),
            None => None,
        };
        Ok(Self {
            options,
            data_dir: tempfile::Builder::new()
                .prefix("fleetgate-bench-")
                .tempdir()?,
            addr,
            schema,
            owns_schema: true,
            child: None,
        })
    }

    /// Another instance of the same cluster as `first` (which has started once, so its secrets
    /// exist): the same database schema and the same secrets, its own port and data directory.
    pub async fn prepare_peer(options: ServerOptions, first: &Self) -> anyhow::Result<Self> {
        let mut peer = Self {
            addr: TcpListener::bind("127.0.0.1:0")?.local_addr()?,
            data_dir: tempfile::Builder::new()
                .prefix("fleetgate-bench-")
                .tempdir()?,
            schema: first.schema.clone(),
            owns_schema: false,
            options,
            child: None,
        };
        peer.options.postgres = first.options.postgres.clone();
        std::fs::copy(
            first.data_dir.path().join(SECRETS_FILE),
            peer.data_dir.path().join(SECRETS_FILE),
        )
        .context("sharing the first instance's secrets")?;
        Ok(peer)
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://host:port/ws/agent`.
    pub fn agent_url(&self) -> String {
        format!("ws://{}/ws/agent", self.addr)
    }

    /// The database the server writes, for the benchmark's own read-only queries.
    pub fn database_url(&self) -> String {
        match &self.options.postgres {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=ro",
                self.data_dir.path().join("fleetgate.db").display()
            ),
        }
    }

    /// The PostgreSQL schema in use, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.options.binary);
        command
            .args(args)
            .env("FLEETGATE__SERVER__BIND", self.addr.to_string())
            .env("FLEETGATE__STORAGE__DATA_DIR", self.data_dir.path())
            .env("FLEETGATE__LOG__LEVEL", "warn")
            .env("FLEETGATE_ADMIN_USER", ADMIN_USER)
            .env("FLEETGATE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .kill_on_drop(true);
        if let (Some(url), Some(schema)) = (&self.options.postgres, &self.schema) {
            command
                .env("FLEETGATE__DATABASE__URL", url)
                .env("FLEETGATE__DATABASE__SCHEMA", schema);
        }
        for (key, value) in &self.options.env {
            command.env(key, value);
        }
        command
    }

    /// `fleetgate machine add sim --count N --out keys.txt`; returns the keys file's text.
    pub async fn enroll(&self, count: usize) -> anyhow::Result<String> {
        let keys = self.data_dir.path().join("keys.txt");
        let status = self
            .command(&[
                "machine",
                "add",
                "sim",
                "--count",
                &count.to_string(),
                "--out",
            ])
            .arg(&keys)
            .stdout(Stdio::null())
            .status()
            .await
            .context("running fleetgate machine add")?;
        if !status.success() {
            bail!("fleetgate machine add failed: {status}");
        }
        Ok(std::fs::read_to_string(&keys)?)
    }

    /// Starts the server and waits until `/readyz` answers 200.
    pub async fn start(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = self
            .command(&["serve"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.options.binary.display()))?;
        self.child = Some(child);
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok((200, _)) = crate::http::request(self.addr, "GET", "/readyz", None).await {
                return Ok(started.elapsed());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "server exited at start ({status}); log: {}",
                    self.log_path().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("server not ready after 60 s")
    }

    /// The server's stderr log.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("server.log")
    }

    /// The process id of the running server.
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child
            .as_ref()
            .and_then(Child::id)
            .context("server not running")
    }

    /// Memory and CPU of the running server.
    pub fn sample(&self) -> anyhow::Result<ProcSample> {
        proc_stats::sample(self.pid()?)
    }

    /// SIGKILL: no shutdown, no flushing (a crash).
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// SIGTERM and wait for the exit.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                // SAFETY: sending a signal to our own child process.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
            if tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .is_err()
            {
                child.kill().await?;
            }
        }
        let kept = crate::report::bench_dir().join("last-server.log");
        let copied = std::fs::create_dir_all(kept.parent().unwrap_or(Path::new(".")))
            .and_then(|()| std::fs::copy(self.log_path(), &kept));
        if let Err(err) = copied {
            eprintln!("warning: server log not kept in {}: {err}", kept.display());
        }
        if let (Some(url), Some(schema), true) =
            (&self.options.postgres, &self.schema, self.owns_schema)
        {
            crate::db_probe::drop_schema(url, schema).await?;
            self.schema = None;
        }
        Ok(())
    }

    /// Logs in as the bench admin.
    pub async fn admin_token(&self) -> anyhow::Result<String> {
        crate::http::login(self.addr, ADMIN_USER, ADMIN_PASSWORD).await
    }
}
