//! TLS on the server with a test CA: fleetgate-agent and operator sockets over `wss://`; a
//! client trusting another CA refused; a pinned fingerprint accepted and a wrong pin refused;
//! the certificate replaced on disk reaches new connections while an open terminal keeps
//! working; the CLI's `login`/`machines`/`exec` against `https://` with `--ca-file`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fleetgate_actors::identity::Role;
use fleetgate_agent::connection::{AgentConfig, run_once};
use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::cli::cli;
use crate::support::{TestServer, enroll, eventually, spawn_app_with};
use crate::web_client::user;

/// A test CA able to issue server certificates for localhost.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    file: PathBuf,
}

impl TestCa {
    fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
        let file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&file, issuer.pem()).expect("CA file");
        Self { issuer, file }
    }

    /// Writes a localhost certificate and its key to `cert`/`key`; returns its fingerprint.
    fn issue(&self, cert: &Path, key: &Path) -> String {
        let params =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).expect("params");
        let leaf_key = KeyPair::generate().expect("key");
        let leaf = params.signed_by(&leaf_key, &self.issuer).expect("leaf");
        // Key first, then the certificate: the server reloads a matching pair.
        std::fs::write(key, leaf_key.serialize_pem()).expect("key file");
        std::fs::write(cert, leaf.pem()).expect("cert file");
        fleetgate_client_tls::fingerprint(leaf.der())
    }
}

fn wss(server: &TestServer, path: &str) -> String {
    format!("wss://localhost:{}{path}", server.address.port())
}

/// Trust in the CA certificates of `file`.
fn trust_ca(file: &Path) -> fleetgate_client_tls::Trust<'_> {
    fleetgate_client_tls::Trust {
        ca_file: Some(file),
        pin_sha256: None,
    }
}

/// Trust in exactly the certificate with fingerprint `pin`.
fn pinned(pin: &str) -> fleetgate_client_tls::Trust<'_> {
    fleetgate_client_tls::Trust {
        ca_file: None,
        pin_sha256: Some(pin),
    }
}

/// Opens `/ws/web` over TLS with `trust`; the socket after `hello`, or the error.
async fn operator_socket(
    server: &TestServer,
    token: &str,
    trust: fleetgate_client_tls::Trust<'_>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
> {
    let mut request = wss(server, "/ws/web")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let config = fleetgate_client_tls::client_config(trust).map_err(|e| format!("{e:#}"))?;
    let connector = tokio_tungstenite::Connector::Rustls(config);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
            .await
            .map_err(|e| e.to_string())?;
    let hello = socket.next().await.expect("hello").expect("frame");
    assert!(hello.to_text().expect("text").contains("\"hello\""));
    Ok(socket)
}

async fn next_of(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    kind: &str,
) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = frame {
            let value: Value = serde_json::from_str(&text).expect("json");
            if value["type"] == kind {
                return value;
            }
        }
    }
}

/// Runs fleetgate's agent (real shells) against `server` over TLS with the given trust.
fn start_agent(server: &TestServer, secret: String, ca_file: Option<PathBuf>, pin: Option<String>) {
    let config = AgentConfig {
        server: wss(server, "/ws/agent"),
        secret,
        heartbeat: Duration::from_millis(300),
        command_timeout: Duration::from_secs(30),
        ca_file,
        pin_sha256: pin,
    };
    crate::real_agent::run_agent_thread(config);
}

/// What a TLS agent connection attempt with this trust ends in (it cannot register).
async fn agent_refusal(
    server: &TestServer,
    ca_file: Option<PathBuf>,
    pin: Option<String>,
) -> String {
    let config = AgentConfig {
        server: wss(server, "/ws/agent"),
        secret: "0".repeat(64),
        heartbeat: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        ca_file,
        pin_sha256: pin,
    };
    let ended = actix_web::rt::task::spawn_blocking(move || {
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(run_once(&config))
    })
    .await
    .expect("join");
    format!("{:#}", ended.expect_err("refused"))
}

async fn online(server: &TestServer, machine: &str) -> bool {
    use sea_orm::EntityTrait;
    let id = fleetgate_actors::protocol::MachineId::parse(machine).expect("id");
    eventually(|| async {
        fleetgate_entity::machines::Entity::find_by_id(id)
            .one(&server.db)
            .await
            .expect("query")
            .is_some_and(|row| row.status == "online")
    })
    .await
}

#[actix_web::test]
async fn agents_and_operators_over_tls_and_a_replaced_certificate_reaches_new_connections_only() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    let ca = TestCa::new(dir.path(), "first");
    let other = TestCa::new(dir.path(), "other");
    let first_pin = ca.issue(&cert, &key);
    let server = spawn_app_with(|s| {
        s.server.tls_cert_file = cert.display().to_string();
        s.server.tls_key_file = key.display().to_string();
    })
    .await;

    // Wrong CA and wrong pin: refused before anything is sent.
    let wrong_ca = agent_refusal(&server, Some(other.file.clone()), None).await;
    assert!(
        wrong_ca.to_lowercase().contains("certificate"),
        "{wrong_ca}"
    );
    let wrong_pin = agent_refusal(&server, None, Some("ab".repeat(32))).await;
    assert!(wrong_pin.contains("pinned"), "{wrong_pin}");

    // The agent trusts the CA; the machine comes online over wss://.
    let (machine, secret) = enroll(&server, "tls-box").await;
    start_agent(&server, secret, Some(ca.file.clone()), None);
    assert!(online(&server, &machine).await, "registered over TLS");
    let (_, token) = user(&server, Role::Operator, &[(&machine, "terminal")]).await;
    assert!(
        operator_socket(&server, &token, trust_ca(&other.file))
            .await
            .is_err()
    );
    operator_socket(&server, &token, pinned(&first_pin))
        .await
        .expect("the pinned certificate is accepted");
    let mut socket = operator_socket(&server, &token, trust_ca(&ca.file))
        .await
        .expect("the CA's certificate is accepted");
    let spawn = json!({"type":"spawn_terminal","machineId":machine,"cols":80,"rows":24});
    socket
        .send(Message::text(spawn.to_string()))
        .await
        .expect("send");
    let session = next_of(&mut socket, "terminal_opened").await["sessionId"]
        .as_str()
        .expect("session")
        .to_owned();

    // Rotation: the other CA's certificate on disk; new connections see it.
    let second_pin = other.issue(&cert, &key);
    let rotated = eventually(|| async {
        operator_socket(&server, &token, pinned(&second_pin))
            .await
            .is_ok()
    })
    .await;
    assert!(rotated, "new connections get the new certificate");
    assert!(
        operator_socket(&server, &token, pinned(&first_pin))
            .await
            .is_err(),
        "and no longer the old one"
    );
    // The terminal opened before the rotation still works.
    let input = json!({"type":"terminal_input","sessionId":session,"data":"echo tls-$((6*7))\r"});
    socket
        .send(Message::text(input.to_string()))
        .await
        .expect("send");
    let mut seen = String::new();
    while !seen.contains("tls-42") {
        let output = next_of(&mut socket, "terminal_output").await;
        seen.push_str(output["data"].as_str().unwrap_or_default());
    }
    server.stop().await;
}

#[actix_web::test]
async fn the_cli_logs_in_and_runs_commands_over_https_with_a_ca_file() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    let ca = TestCa::new(dir.path(), "cli");
    ca.issue(&cert, &key);
    let server = spawn_app_with(|s| {
        s.server.tls_cert_file = cert.display().to_string();
        s.server.tls_key_file = key.display().to_string();
    })
    .await;
    fleetgate::cli::users::add_user(&server.db, "erin", Role::Admin, "long-password".into())
        .await
        .expect("user");
    let (machine, secret) = enroll(&server, "tls-cli").await;
    start_agent(&server, secret, Some(ca.file.clone()), None);
    assert!(online(&server, &machine).await);
    let config = tempfile::tempdir().expect("config");
    let url = format!("https://localhost:{}", server.address.port());
    let ca_file = ca.file.display().to_string();

    let without_ca = cli(
        config.path(),
        &["login", "--server", &url, "--user", "erin"],
        "long-password\n",
    )
    .await;
    assert!(
        !without_ca.status.success(),
        "the system roots do not know the test CA"
    );
    let login = cli(
        config.path(),
        &[
            "login",
            "--server",
            &url,
            "--user",
            "erin",
            "--ca-file",
            &ca_file,
        ],
        "long-password\n",
    )
    .await;
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let machines = cli(config.path(), &["machines", "--json"], "").await;
    assert!(
        machines.status.success(),
        "{}",
        String::from_utf8_lossy(&machines.stderr)
    );
    assert!(String::from_utf8_lossy(&machines.stdout).contains("tls-cli"));
    let exec = cli(
        config.path(),
        &["exec", "tls-cli", "--", "echo over-tls; exit 5"],
        "",
    )
    .await;
    assert_eq!(
        exec.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&exec.stderr)
    );
    assert!(String::from_utf8_lossy(&exec.stdout).contains("over-tls"));
    server.stop().await;
}
