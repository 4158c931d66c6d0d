//! Test harness: a real server on port 0 with its own data directory and database.
//! With `FLEETGATE_TEST_DATABASE_URL` set, each test gets its own PostgreSQL schema.

use std::net::SocketAddr;

use fleetgate::app::{Application, RunningServer};
use fleetgate::auth::JwtAuth;
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
    /// Data directory (kept alive as long as the server).
    pub _data_dir: TempDir,
    running: RunningServer,
}

impl TestServer {
    /// `ws://…` URL of `path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.address, path)
    }

    /// `http://…` URL of `path`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
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

/// Starts a server with `adjust` applied to its settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestServer {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&data_dir).await;
    adjust(&mut settings);
    let app = Application::build(settings).await.expect("server builds");
    let address = app.address();
    let jwt = app.jwt().clone();
    let db = app.db().clone();
    let running = app.start();
    TestServer {
        address,
        jwt,
        db,
        _data_dir: data_dir,
        running,
    }
}

/// Starts a server with the default test settings.
pub async fn spawn_app() -> TestServer {
    spawn_app_with(|_| {}).await
}
