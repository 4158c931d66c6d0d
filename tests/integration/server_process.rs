//! The `fleetgate` binary as a real server process (for what only a process shows: its
//! memory, and what survives `kill -9`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::http_get_status;

/// The first admin every process starts with.
pub const ADMIN: (&str, &str) = ("admin", "admin-password-1");

/// A running `fleetgate serve`; killed on drop.
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub address: SocketAddr,
}

/// A free port on 127.0.0.1 (bound and released; the server binds it next).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl ServerProcess {
    /// Starts the server on `data_dir` (and on the database `url`/`schema` when not empty)
    /// and waits until `/readyz` answers 200.
    pub async fn start(data_dir: &Path, url: &str, schema: &str) -> Self {
        Self::start_with(data_dir, url, schema, &[]).await
    }

    /// As [`ServerProcess::start`], with more environment (`FLEETGATE__…` settings).
    pub async fn start_with(
        data_dir: &Path,
        url: &str,
        schema: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let child = Command::new(env!("CARGO_BIN_EXE_fleetgate"))
            .arg("serve")
            .envs(env.iter().copied())
            .env("FLEETGATE__SERVER__BIND", address.to_string())
            .env("FLEETGATE__STORAGE__DATA_DIR", data_dir)
            .env("FLEETGATE__DATABASE__URL", url)
            .env("FLEETGATE__DATABASE__SCHEMA", schema)
            .env("FLEETGATE__LOG__LEVEL", "warn")
            .env("FLEETGATE_ADMIN_USER", ADMIN.0)
            .env("FLEETGATE_ADMIN_PASSWORD", ADMIN.1)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fleetgate serve");
        let server = Self { child, address };
        for _ in 0..300 {
            let listening = tokio::net::TcpStream::connect(address).await.is_ok();
            if listening && http_get_status(&server.url("/readyz")).await == 200 {
                return server;
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not become ready");
    }

    /// `http://…/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// `ws://…/path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.address, path)
    }

    /// Resident memory now, KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("process status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Calls `method /api/v1{path}` with an optional token and JSON body.
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        let mut request = client.request(
            awc::http::Method::from_bytes(method.as_bytes()).expect("method"),
            self.url(&format!("/api/v1{path}")),
        );
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let mut response = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        }
        .expect("request sent");
        let bytes = response.body().await.expect("body");
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (response.status().as_u16(), json)
    }

    /// Logs in as the first admin; returns the token.
    pub async fn admin_token(&self) -> String {
        let (status, body) = self
            .api(
                "POST",
                "/auth/login",
                None,
                Some(json!({"username": ADMIN.0, "password": ADMIN.1})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _killed = self.child.kill();
            let _reaped = self.child.wait();
        }
    }
}
