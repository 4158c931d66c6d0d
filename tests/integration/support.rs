//! Test harness: a real server on port 0 with its own data directory and database.
//! With `FLEETGATE_TEST_DATABASE_URL` set, each test gets its own PostgreSQL schema.

use std::net::SocketAddr;

use fleetgate::app::{Application, RunningServer};
use fleetgate::auth::JwtAuth;
use fleetgate::services::Services;
use fleetgate::settings::Settings;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tempfile::TempDir;

/// Environment variable selecting PostgreSQL for database tests.
pub const TEST_DATABASE_URL_VAR: &str = "FLEETGATE_TEST_DATABASE_URL";

/// A running test server; stopped and cleaned up on drop of the data directory.
pub struct TestServer {
    /// Bound address.
    pub address: SocketAddr,
    /// The server's JWT signer.
    pub jwt: JwtAuth,
    /// The server's database.
    pub db: DatabaseConnection,
    /// The server's actors.
    pub services: Services,
    /// The settings it was built with.
    pub settings: fleetgate::settings::Settings,
    /// Data directory (kept alive as long as the server).
    pub _data_dir: TempDir,
    running: RunningServer,
}

impl TestServer {
    /// `ws://…` URL of `path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.address, path)
    }

    /// A `/ws/web` upgrade request carrying `Authorization: Bearer <token>`.
    pub fn web_request(
        &self,
        token: &str,
    ) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        bearer_upgrade(&self.ws_url("/ws/web"), token)
    }

    /// `http://…` URL of `path`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// Stops the server gracefully and starts a new one on the same data and database.
    pub async fn restart(self) -> TestServer {
        let TestServer {
            settings,
            _data_dir,
            running,
            ..
        } = self;
        running.stop().await;
        let app = Application::build(settings.clone())
            .await
            .expect("server rebuilds");
        TestServer {
            address: app.address(),
            jwt: app.jwt().clone(),
            db: app.db().clone(),
            services: app.services().clone(),
            settings,
            _data_dir,
            running: app.start(),
        }
    }

    /// Stops the server gracefully.
    pub async fn stop(self) {
        self.running.stop().await;
    }
}

/// Database URL and schema for one test: a fresh PostgreSQL schema when configured,
/// else empty (the SQLite file in the data directory).
pub async fn test_database() -> (String, String) {
    let Ok(url) = std::env::var(TEST_DATABASE_URL_VAR) else {
        return (String::new(), String::new());
    };
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("rng");
    let schema = format!("fg_test_{}", hex::encode(bytes));
    let admin = Database::connect(url.as_str())
        .await
        .expect("connect to PostgreSQL");
    admin
        .execute_unprepared(&format!("CREATE SCHEMA \"{schema}\""))
        .await
        .expect("create schema");
    admin.close().await.expect("close");
    (url, schema)
}

/// A connection to this test's own database, plus the directory holding it (SQLite).
pub async fn test_connection() -> (sea_orm::DatabaseConnection, TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(&dir).await;
    let database = fleetgate::db::connect(&settings.database_url(), &settings.database)
        .await
        .expect("connect");
    (database, dir)
}

/// Settings for a test server: port 0, a temporary data directory, quiet logs.
pub async fn test_settings(data_dir: &TempDir) -> Settings {
    let mut settings = Settings::defaults().expect("default settings");
    settings.server.bind = "127.0.0.1:0".parse().expect("addr");
    settings.storage.data_dir = data_dir.path().to_path_buf();
    settings.log.level = "warn".into();
    let (url, schema) = test_database().await;
    settings.database.url = url;
    settings.database.schema = schema;
    settings
}

/// Enrols a machine through the server's repository; returns (id, secret).
pub async fn enroll(server: &TestServer, name: &str) -> (String, String) {
    let enrolled = server
        .services
        .machines
        .send(fleetgate_actors::repo::machine::EnrollMachine {
            name: name.to_owned(),
        })
        .await
        .expect("repo reachable")
        .expect("enrolled");
    (enrolled.id.to_string(), enrolled.secret)
}

/// Polls `check` until it holds or `WAIT` passes; returns whether it held.
pub async fn eventually<F, Fut>(check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(crate::agent_client::WAIT, check).await
}

/// Polls `check` until it holds or `wait` passes; returns whether it held.
pub async fn eventually_within<F, Fut>(wait: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// Starts a server with `adjust` applied to its settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestServer {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&data_dir).await;
    adjust(&mut settings);
    let app = Application::build(settings.clone())
        .await
        .expect("server builds");
    let address = app.address();
    let jwt = app.jwt().clone();
    let db = app.db().clone();
    let services = app.services().clone();
    let running = app.start();
    TestServer {
        address,
        jwt,
        db,
        services,
        settings,
        _data_dir: data_dir,
        running,
    }
}

/// Starts a server with the default test settings.
pub async fn spawn_app() -> TestServer {
    spawn_app_with(|_| {}).await
}

/// A minimal HTTP/1.1 GET over a raw TCP socket; returns the status code.
pub async fn http_get_status(url: &str) -> u16 {
    http_request("GET", url, &[], "").await
}

/// A JSON POST; returns the status code.
pub async fn http_post(url: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    http_request("POST", url, headers, body).await
}

async fn http_request(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status line")
}

/// Runs an admin subcommand of the `fleetgate` binary against `server`'s data directory and
/// database (as an operator on the server's host would).
pub fn admin_cli(server: &TestServer, args: &[&str]) -> std::process::Output {
    let settings = &server.settings;
    std::process::Command::new(env!("CARGO_BIN_EXE_fleetgate"))
        .args(args)
        .env("FLEETGATE__STORAGE__DATA_DIR", &settings.storage.data_dir)
        .env("FLEETGATE__DATABASE__URL", settings.database_url())
        .env("FLEETGATE__DATABASE__SCHEMA", &settings.database.schema)
        .env("FLEETGATE__LOG__LEVEL", "warn")
        .env_remove("FLEETGATE_JWT_SECRET")
        .output()
        .expect("run fleetgate")
}

/// An upgrade request to `url` carrying `Authorization: Bearer <token>`.
pub fn bearer_upgrade(
    url: &str,
    token: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}

/// Environment variable naming the NATS server (with JetStream) for cluster tests; CI sets it.
pub const TEST_NATS_URL_VAR: &str = "FLEETGATE_TEST_NATS_URL";

/// The NATS URL for cluster tests: `FLEETGATE_TEST_NATS_URL` (required to work when set), else
/// 127.0.0.1:4222 when something listens there; `None` (the test says it was skipped) otherwise.
pub async fn test_nats_url() -> Option<String> {
    if let Ok(url) = std::env::var(TEST_NATS_URL_VAR) {
        return Some(url);
    }
    let local = "127.0.0.1:4222";
    match tokio::net::TcpStream::connect(local).await {
        Ok(_) => Some(format!("nats://{local}")),
        Err(err) => {
            eprintln!(
                "skipped: no NATS at {local} ({err}); set {TEST_NATS_URL_VAR} to require one"
            );
            None
        }
    }
}
