//! NATS going away and coming back, on a NATS server of the test's own (so stopping it touches
//! nothing else): terminals to agents on the same instance keep working throughout; a request
//! for a machine on another instance fails at once with `region_unreachable`; once NATS is back,
//! the open remote terminal and new ones work again without restarting anything.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleetgate_actors::identity::Role;
use serde_json::json;

use crate::cluster_routing::Regions;
use crate::fixtures::online_agent;
use crate::web_client::{WebClient, user};

/// A `nats-server -js` of this test's own, on `port` with its store in `store`.
pub(crate) struct PrivateNats {
    child: Child,
}

impl PrivateNats {
    /// Starts it; `None` (with a note) when there is no `nats-server` binary.
    pub(crate) async fn start(port: u16, store: &std::path::Path) -> Option<Self> {
        Self::start_with(port, store, &[]).await
    }

    /// Starts it with more `nats-server` flags (e.g. `--user`, `--pass`).
    pub(crate) async fn start_with(
        port: u16,
        store: &std::path::Path,
        flags: &[&str],
    ) -> Option<Self> {
        let spawned = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(err) => {
                eprintln!("skipped: cannot start nats-server ({err})");
                return None;
            }
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(Self { child });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("nats-server did not listen on {port}");
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `data` to `session` and waits for the agent to get it (skipping other frames).
async fn typed(
    web: &mut WebClient,
    agent: &mut crate::agent_client::ScriptedAgent,
    session: &str,
    data: &str,
) {
    web.send(json!({"type":"terminal_input","sessionId":session,"data":data}))
        .await;
    loop {
        let stdin = agent.next_of("terminal_stdin").await;
        if stdin["data"]["sessionId"] == session {
            return;
        }
    }
}

/// The agent sends `text` for `session`; the operator sees it.
async fn shown(
    web: &mut WebClient,
    agent: &mut crate::agent_client::ScriptedAgent,
    session: &str,
    text: &str,
) {
    let output = json!({"type":"terminal_output","sessionId":session,"output":text});
    agent.send(&format!("{output}\n")).await;
    loop {
        let message = web.next_of("terminal_output").await;
        if message["sessionId"] == session && message["data"] == text {
            return;
        }
    }
}

/// A free port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

#[actix_web::test]
async fn an_instance_joins_only_with_its_nats_credentials() {
    let port = free_port();
    let store = tempfile::tempdir().expect("store");
    let flags = ["--user", "fra-instance", "--pass", "s3cret-pass"];
    let Some(_nats) = PrivateNats::start_with(port, store.path(), &flags).await else {
        return;
    };
    let data = tempfile::tempdir().expect("data");
    let mut settings = crate::support::test_settings(&data).await;
    settings.cluster.name = "creds".into();
    settings.cluster.nats_url = format!("nats://fra-instance:wrong@127.0.0.1:{port}");
    let refused = fleetgate::app::Application::build(settings.clone()).await;
    let err = refused
        .err()
        .expect("wrong credentials refused at start-up");
    assert!(err.to_string().contains("cannot reach NATS"), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "the password is not repeated: {err}"
    );
    settings.cluster.nats_url = format!("nats://fra-instance:s3cret-pass@127.0.0.1:{port}");
    let joined = fleetgate::app::Application::build(settings).await;
    assert!(
        joined.is_ok(),
        "the right credentials join: {:?}",
        joined.err().map(|e| e.to_string())
    );
}

#[actix_web::test]
async fn local_terminals_work_through_a_nats_outage_and_remote_ones_recover() {
    let port = free_port();
    let store = tempfile::tempdir().expect("store");
    let Some(nats) = PrivateNats::start(port, store.path()).await else {
        return;
    };
    let regions = Regions::start_on(format!("nats://127.0.0.1:{port}")).await;
    let (mut local, local_machine, _) = online_agent(&regions.frankfurt, "here-1").await;
    let (mut remote, remote_machine, _) = regions.machine_in_virginia("there-1").await;
    let (_, token) = user(&regions.frankfurt, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&regions.frankfurt, &token).await;
    let (local_session, _) = web.spawn(&local_machine).await;
    let (remote_session, _) = web.spawn(&remote_machine).await;
    shown(&mut web, &mut remote, &remote_session, "remote ok").await;

    nats.stop();
    // Local work goes on as if nothing happened.
    typed(&mut web, &mut local, &local_session, "date\r").await;
    shown(&mut web, &mut local, &local_session, "local still ok").await;
    // A remote request fails fast and says why (once the client has seen the connection drop).
    let refused = loop {
        let asked = Instant::now();
        web.send(json!({"type":"spawn_terminal","machineId":remote_machine,"cols":80,"rows":24}))
            .await;
        let error = web.next_of("error").await;
        if error["code"] == "region_unreachable" {
            break asked.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(refused < Duration::from_secs(1), "refused in {refused:?}");

    let _nats = PrivateNats::start(port, store.path())
        .await
        .expect("restarted");
    // The open remote terminal works again, and new ones open.
    let recovered = Instant::now();
    loop {
        let output = json!({"type":"terminal_output","sessionId":remote_session,"output":"back"});
        remote.send(&format!("{output}\n")).await;
        let seen = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                let message = web.next_of("terminal_output").await;
                if message["sessionId"] == remote_session.as_str() {
                    return message;
                }
            }
        })
        .await;
        if seen.is_ok() {
            break;
        }
        assert!(
            recovered.elapsed() < Duration::from_secs(20),
            "remote output never came back"
        );
    }
    typed(&mut web, &mut remote, &remote_session, "uptime\r").await;
    let opened = loop {
        let answer = web.try_spawn(&remote_machine).await;
        if answer["type"] == "terminal_opened" {
            break answer;
        }
        assert!(
            recovered.elapsed() < Duration::from_secs(20),
            "no remote terminal: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "remote work back {:?} after NATS restarted",
        recovered.elapsed()
    );
    assert!(opened["sessionId"].is_string());
    regions.stop().await;
}
