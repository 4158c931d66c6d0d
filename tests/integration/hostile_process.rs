//! Hostile peers against a real server process: its memory while frames announcing huge
//! payloads are refused, and its audit trail after `kill -9`.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::agent_client::ScriptedAgent;
use crate::server_process::ServerProcess;
use crate::support::test_database;

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

const MIB: u64 = 1 << 20;

fn agent_request(server: &ServerProcess) -> Request {
    server
        .ws_url("/ws/agent")
        .into_client_request()
        .expect("request")
}

fn web_request(server: &ServerProcess, token: &str) -> Request {
    crate::support::bearer_upgrade(&server.ws_url("/ws/web"), token)
}

/// Upgrades, then sends a masked text frame header announcing `length` bytes followed by up
/// to `send` bytes of its payload (as fast as the server takes them).
async fn announce(request: Request, length: u64, send: usize) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&length.to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    let MaybeTlsStream::Plain(tcp) = socket.get_mut() else {
        panic!("plain TCP");
    };
    tcp.write_all(&header).await.expect("write header");
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < send {
        if tcp.write_all(&chunk).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    socket
}

/// The close code the server ends `socket` with (skipping its `hello` and error frames).
async fn close_code(socket: &mut Socket) -> Option<u16> {
    let read = async {
        while let Some(Ok(frame)) = socket.next().await {
            if let Message::Close(close) = frame {
                return close.map(|c| u16::from(c.code));
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("closed in time")
}

#[actix_web::test]
async fn frames_announcing_16_and_100_mib_are_refused_while_memory_stays_flat() {
    let data = tempfile::tempdir().expect("tempdir");
    let (url, schema) = test_database().await;
    let server = ServerProcess::start(data.path(), &url, &schema).await;
    let token = server.admin_token().await;
    // Warm up both paths (allocator arenas, lazily built state) before the baseline.
    for request in [agent_request(&server), web_request(&server, &token)] {
        let mut socket = announce(request, 2 * MIB, 0).await;
        assert_eq!(close_code(&mut socket).await, Some(1009));
    }
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let baseline = server.rss_kib();
    let mut peak = baseline;
    for length in [16 * MIB, 100 * MIB] {
        for request in [agent_request(&server), web_request(&server, &token)] {
            let mut socket = announce(request, length, 1 << 20).await;
            assert_eq!(
                close_code(&mut socket).await,
                Some(1009),
                "{length} bytes announced"
            );
            peak = peak.max(server.rss_kib());
        }
    }
    eprintln!("oversized frames: RSS {baseline} KiB before, {peak} KiB at most after");
    assert!(
        peak - baseline < 2048,
        "RSS grew from {baseline} to {peak} KiB"
    );
}

#[actix_web::test]
async fn two_hundred_sockets_announcing_a_gibibyte_each_leave_the_server_serving() {
    let data = tempfile::tempdir().expect("tempdir");
    let (url, schema) = test_database().await;
    let server = ServerProcess::start(data.path(), &url, &schema).await;
    let token = server.admin_token().await;
    let mut warm = announce(agent_request(&server), 2 * MIB, 0).await;
    assert_eq!(close_code(&mut warm).await, Some(1009));
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let baseline = server.rss_kib();

    let attackers: Vec<_> = (0..200)
        .map(|_| {
            let request = agent_request(&server);
            actix_web::rt::spawn(async move {
                let mut socket = announce(request, 1 << 30, 4 << 20).await;
                close_code(&mut socket).await
            })
        })
        .collect();
    let mut peak = baseline;
    let mut served = 0;
    while attackers.iter().any(|a| !a.is_finished()) {
        peak = peak.max(server.rss_kib());
        let (status, _) = server.api("GET", "/machines", Some(&token), None).await;
        served += u32::from(status == 200);
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    for attacker in attackers {
        assert_eq!(attacker.await.expect("task"), Some(1009));
    }
    peak = peak.max(server.rss_kib());
    eprintln!(
        "200 x 1 GiB announced: RSS {baseline} KiB before, peak {peak} KiB; {served} API calls answered meanwhile"
    );
    assert!(
        peak - baseline < 64 * 1024,
        "RSS grew from {baseline} to {peak} KiB"
    );
    assert!(served > 0, "operators were served during the attack");
    let upgrade = tokio_tungstenite::connect_async(web_request(&server, &token)).await;
    assert!(upgrade.is_ok(), "a web socket still upgrades");

    // Security events name the peer and are rate-limited per address.
    let (status, audit) = server
        .api(
            "GET",
            "/audit?action=security.bad_frame&limit=1000",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let items = audit["items"].as_array().expect("items");
    assert!(!items.is_empty(), "refusals are audited");
    assert!(
        items.len() <= 20,
        "{} security events for one address",
        items.len()
    );
    assert!(
        items.iter().all(|i| i["sourceIp"] == "127.0.0.1"),
        "{audit}"
    );
    assert!(
        items
            .iter()
            .any(|i| i["detail"]["suppressedBefore"].as_u64().is_some())
            || items.len() <= 10,
        "suppressed events are counted"
    );
}

#[actix_web::test]
async fn kill_9_right_after_a_command_was_accepted_keeps_its_audit_entry_and_its_row() {
    let data = tempfile::tempdir().expect("tempdir");
    let (url, schema) = test_database().await;
    let server = ServerProcess::start(data.path(), &url, &schema).await;
    let token = server.admin_token().await;
    let (status, enrolled) = server
        .api(
            "POST",
            "/machines",
            Some(&token),
            Some(json!({"name": "k9"})),
        )
        .await;
    assert_eq!(status, 201, "{enrolled}");
    let machine = enrolled["machine"]["id"].as_str().expect("id").to_owned();
    let secret = enrolled["secret"].as_str().expect("secret").to_owned();
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent.register(&secret, "k9").await;
    let (status, accepted) = server
        .api(
            "POST",
            &format!("/machines/{machine}/commands"),
            Some(&token),
            Some(json!({"command": "sleep 30"})),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let command_id = accepted["commandId"]
        .as_str()
        .expect("commandId")
        .to_owned();
    server.kill9();

    let server = ServerProcess::start(data.path(), &url, &schema).await;
    let token = server.admin_token().await;
    let (status, row) = server
        .api(
            "GET",
            &format!("/commands/{command_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "the command row survived: {row}");
    assert_eq!(row["command"], "sleep 30");
    let (_, audit) = server
        .api("GET", "/audit?action=command.run", Some(&token), None)
        .await;
    let items = audit["items"].as_array().expect("items");
    assert!(
        items
            .iter()
            .any(|i| i["detail"]["commandId"] == command_id.as_str()),
        "the audit entry survived: {audit}"
    );
}

#[actix_web::test]
async fn slowloris_connections_are_dropped_without_growing_memory_and_others_are_served() {
    use tokio::io::AsyncReadExt;
    let data = tempfile::tempdir().expect("tempdir");
    let (url, schema) = test_database().await;
    let server = ServerProcess::start(data.path(), &url, &schema).await;
    let token = server.admin_token().await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let baseline = server.rss_kib();
    let address = server.address;
    // Each connection sends its request line a byte at a time and never finishes its headers.
    let slow: Vec<_> = (0..200)
        .map(|_| {
            actix_web::rt::spawn(async move {
                let started = std::time::Instant::now();
                let mut tcp = tokio::net::TcpStream::connect(address)
                    .await
                    .expect("connect");
                for byte in b"GET /api/v1/machines HTTP/1.1\r\nHost: x\r\nX-Slow: "
                    .iter()
                    .cycle()
                {
                    if tcp.write_all(&[*byte]).await.is_err()
                        || started.elapsed() > Duration::from_secs(30)
                    {
                        break;
                    }
                    let mut probe = [0u8; 256];
                    match tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut probe))
                        .await
                    {
                        Ok(Ok(_)) | Ok(Err(_)) => break,
                        Err(_) => {}
                    }
                }
                started.elapsed()
            })
        })
        .collect();
    let mut peak = baseline;
    let mut served = 0;
    while slow.iter().any(|s| !s.is_finished()) {
        peak = peak.max(server.rss_kib());
        let (status, _) = server.api("GET", "/machines", Some(&token), None).await;
        served += u32::from(status == 200);
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    let mut longest = Duration::ZERO;
    for connection in slow {
        longest = longest.max(connection.await.expect("task"));
    }
    eprintln!(
        "slowloris x200: RSS {baseline} KiB before, peak {peak} KiB; dropped after at most {longest:?}; {served} API calls answered meanwhile"
    );
    assert!(
        longest < Duration::from_secs(20),
        "a slow connection was kept {longest:?}"
    );
    assert!(
        peak - baseline < 16 * 1024,
        "RSS grew from {baseline} to {peak} KiB"
    );
    assert!(served > 0, "operators were served meanwhile");
}
