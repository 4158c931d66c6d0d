//! AgentSession protocol handling driven through an in-memory WebSocket stream, with probe
//! actors in place of the registry and repositories (no sockets, no database).

mod common;

use std::time::Duration;

use actix::Actor;
use actix_codec::Encoder;
use actix_http::ws::{Codec, Item, Message};
use actix_web::error::PayloadError;
use actix_web_actors::ws::WebsocketContext;
use bytes::{Bytes, BytesMut};
use fleetgate_actors::agent_session::{AgentLinks, AgentSession, AgentSessionConfig};
use fleetgate_actors::protocol::MachineId;
use fleetgate_actors::registry::{
    HeartbeatSeen, RouteCommandResponse, RouteTerminalOutput, UnregisterAgent,
};
use fleetgate_actors::repo::Enrollment;
use fleetgate_actors::repo::audit::RecordAudit;
use fleetgate_actors::repo::machine::TouchLastSeen;
use fleetgate_actors::repo::metric::RecordMetric;
use fleetgate_actors::repo::port::SyncPorts;
use fleetgate_actors::shutdown::{ShutdownTrigger, shutdown_channel};
use fleetgate_actors::socket::{SocketActor, SocketConfig};

use common::server_frames::{Reply, ServerFrames};
use common::{
    AuthRequest, FakeMachineRepo, FakeRegistry, Log, Registration, entries, log, probe, until,
};

const SECRET: &str = "a97eef2fbf0dbe58d4d7411321e6641d463bdeb5ed1ec1dcc3fffc29b1085de4";
const MACHINE: &str = "6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f";
const FRAME_LIMIT: usize = 16 * 1024;
/// Largest message before register in these tests.
const REGISTER_LIMIT: usize = 4 * 1024;

/// One session plus the logs of everything its links were asked.
struct Harness {
    input: futures_channel::mpsc::UnboundedSender<Result<Bytes, PayloadError>>,
    frames: ServerFrames,
    encoder: std::cell::RefCell<Codec>,
    asked: Log<AuthRequest>,
    registered: Log<Registration>,
    unregistered: Log<UnregisterAgent>,
    heartbeats: Log<HeartbeatSeen>,
    metrics: Log<RecordMetric>,
    ports: Log<SyncPorts>,
    touches: Log<TouchLastSeen>,
    outputs: Log<RouteTerminalOutput>,
    responses: Log<RouteCommandResponse>,
    audits: Log<RecordAudit>,
    _shutdown: ShutdownTrigger,
}

impl Harness {
    fn start(register_timeout: Duration, violations_per_minute: u32) -> Self {
        let asked = log();
        let machines = FakeMachineRepo {
            secret: SECRET.into(),
            machine_id: MachineId::parse(MACHINE).expect("uuid"),
            asked: asked.clone(),
        }
        .start();
        let registered = log();
        let registry = FakeRegistry {
            seen: registered.clone(),
        }
        .start();
        let (unregister, unregistered) = probe::<UnregisterAgent>();
        let (heartbeat_seen, heartbeats) = probe::<HeartbeatSeen>();
        let (record_metric, metrics) = probe::<RecordMetric>();
        let (sync_ports, ports) = probe::<SyncPorts>();
        let (touch_last_seen, touches) = probe::<TouchLastSeen>();
        let (terminal_output, outputs) = probe::<RouteTerminalOutput>();
        let (terminal_exit, _) = probe::<fleetgate_actors::registry::RouteTerminalExit>();
        let (command_response, responses) = probe::<RouteCommandResponse>();
        let (audit, audits) = probe::<RecordAudit>();
        let links = AgentLinks {
            authenticate: machines.recipient(),
            touch_last_seen,
            register: registry.recipient(),
            unregister,
            heartbeat_seen,
            record_metric,
            sync_ports,
            terminal_output,
            terminal_exit,
            command_response,
            audit: audit.clone(),
            security: fleetgate_actors::security_events::SecurityEvents::new(audit, 1000),
        };
        let config = AgentSessionConfig {
            socket: SocketConfig {
                ping_interval: Duration::from_secs(20),
                client_timeout: Duration::from_secs(60),
                max_frame_bytes: FRAME_LIMIT,
                unauthenticated_frame_bytes: REGISTER_LIMIT,
                violations_per_minute,
            },
            register_timeout,
            enrollment: Enrollment::Token,
        };
        let (trigger, signal) = shutdown_channel();
        let (input, incoming) = futures_channel::mpsc::unbounded();
        let mut session = AgentSession::new(config, links, signal);
        let guarded = session.inbound().guard(incoming);
        let output =
            WebsocketContext::with_codec(session, guarded, Codec::new().max_size(FRAME_LIMIT));
        Self {
            input,
            frames: ServerFrames::drive(output),
            encoder: std::cell::RefCell::new(Codec::new().client_mode()),
            asked,
            registered,
            unregistered,
            heartbeats,
            metrics,
            ports,
            touches,
            outputs,
            responses,
            audits,
            _shutdown: trigger,
        }
    }

    fn send(&self, message: Message) {
        let mut encoded = BytesMut::new();
        self.encoder
            .borrow_mut()
            .encode(message, &mut encoded)
            .expect("encode");
        self.input
            .unbounded_send(Ok(encoded.freeze()))
            .expect("session alive");
    }

    /// Sends `text` as one message split into `pieces` frames (first + continuations).
    fn fragmented(&self, text: &str, pieces: usize) {
        let bytes = text.as_bytes();
        let step = bytes.len().div_ceil(pieces);
        let chunks: Vec<Bytes> = bytes.chunks(step).map(Bytes::copy_from_slice).collect();
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let item = match i {
                0 => Item::FirstText(chunk),
                i if i == last => Item::Last(chunk),
                _ => Item::Continue(chunk),
            };
            self.send(Message::Continuation(item));
        }
    }

    /// Feeds raw bytes (for frames the encoder refuses to produce).
    fn raw(&self, bytes: BytesMut) {
        self.input
            .unbounded_send(Ok(bytes.freeze()))
            .expect("session alive");
    }

    /// Ends the connection with an I/O error, as a TCP reset does.
    fn reset(&self) {
        let error = PayloadError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        self.input
            .unbounded_send(Err(error))
            .expect("session alive");
    }

    fn text(&self, text: &str) {
        self.send(Message::Text(text.to_owned().into()));
    }

    async fn reply(&mut self) -> Reply {
        self.frames.next().await
    }

    async fn error_code(&mut self) -> String {
        match self.reply().await {
            Reply::Json(json) if json["type"] == "error" => {
                json["code"].as_str().expect("code").to_owned()
            }
            other => panic!("expected an error frame, got {other:?}"),
        }
    }

    async fn register(&mut self) {
        self.text(&format!(
            "{{\"type\":\"register\",\"hostname\":\"web-1\",\"ip\":\"10.0.0.5\",\"secretKey\":\"{SECRET}\",\"platform\":\"linux\"}}\n"
        ));
        match self.reply().await {
            Reply::Json(json) => {
                assert_eq!(
                    json,
                    serde_json::json!({"type":"registered","machineId":MACHINE})
                );
            }
            other => panic!("expected registered, got {other:?}"),
        }
    }
}

fn heartbeat(machine_id: &str) -> String {
    format!(
        "{{\"type\":\"heartbeat\",\"machineId\":\"{machine_id}\",\"metrics\":{{\"cpuUsage\":12.5,\"ramUsed\":6.4,\"uptime\":86400}},\"ports\":[{{\"port\":22,\"proto\":\"tcp\"}}]}}\n"
    )
}

fn harness() -> Harness {
    Harness::start(Duration::from_secs(10), 20)
}

#[actix::test]
async fn nothing_is_processed_before_register() {
    let mut session = harness();
    session.text(&heartbeat(MACHINE));
    assert_eq!(session.error_code().await, "not_registered");
    assert!(entries(&session.metrics).is_empty());
    assert!(entries(&session.heartbeats).is_empty());
    assert!(entries(&session.asked).is_empty());
}

#[actix::test]
async fn register_asks_the_repository_and_announces_the_connection() {
    let mut session = harness();
    session.register().await;
    assert_eq!(
        entries(&session.asked),
        vec![AuthRequest {
            secret: SECRET.into(),
            hostname: "web-1".into()
        }]
    );
    assert!(until(|| entries(&session.registered).len() == 1).await);
    let registration = entries(&session.registered).remove(0);
    assert_eq!(registration.machine_id.to_string(), MACHINE);

    // When the socket ends, the same connection is withdrawn.
    session.send(Message::Close(None));
    assert!(until(|| entries(&session.unregistered).len() == 1).await);
    let unregistered = entries(&session.unregistered).remove(0);
    assert_eq!(unregistered.connection_id, registration.connection_id);
}

#[actix::test]
async fn unknown_secret_is_refused_with_4401() {
    let mut session = harness();
    session.text(&format!(
        "{{\"type\":\"register\",\"hostname\":\"h\",\"ip\":\"i\",\"secretKey\":\"{}\"}}",
        "0".repeat(64)
    ));
    assert_eq!(session.error_code().await, "unauthenticated");
    assert_eq!(session.reply().await, Reply::Close(Some(4401)));
    assert!(entries(&session.registered).is_empty());
}

#[actix::test]
async fn a_malformed_register_is_refused_with_4401_at_once() {
    let mut session = harness();
    session.text(r#"{"type":"register","hostname":"h","ip":"i","secretKey":"abc"}"#);
    assert_eq!(session.error_code().await, "invalid_field");
    assert_eq!(session.reply().await, Reply::Close(Some(4401)));
    assert!(entries(&session.asked).is_empty(), "no secret was checked");
    assert!(
        until(|| entries(&session.audits)
            .iter()
            .any(|a| a.action == "security.register_refused"))
        .await
    );
}

#[actix::test]
async fn before_register_only_small_messages_are_accepted() {
    let mut session = harness();
    session.text(&"x".repeat(REGISTER_LIMIT + 1));
    assert_eq!(session.error_code().await, "too_large");
    assert_eq!(session.reply().await, Reply::Close(Some(1009)));

    let mut registered = harness();
    registered.register().await;
    registered.text(&"x".repeat(REGISTER_LIMIT * 2));
    assert_eq!(
        registered.error_code().await,
        "bad_json",
        "the full limit applies after register"
    );
}

#[actix::test]
async fn register_timeout_closes_with_4401() {
    let mut session = Harness::start(Duration::from_millis(50), 20);
    assert_eq!(session.reply().await, Reply::Close(Some(4401)));
    assert!(entries(&session.asked).is_empty());
}

#[actix::test]
async fn heartbeat_is_stored_and_reported_alive() {
    let mut session = harness();
    session.register().await;
    session.text(&heartbeat(MACHINE));
    assert!(
        until(|| entries(&session.metrics).len() == 1 && entries(&session.ports).len() == 1).await
    );
    let metric = entries(&session.metrics).remove(0);
    assert_eq!(metric.sample.cpu, 12.5);
    assert_eq!(metric.sample.uptime, 86400);
    assert_eq!(entries(&session.ports)[0].ports[0].port, 22);
    assert!(
        until(|| entries(&session.heartbeats).len() == 1 && entries(&session.touches).len() == 1)
            .await
    );
}

#[actix::test]
async fn heartbeat_with_a_foreign_machine_id_is_refused() {
    let mut session = harness();
    session.register().await;
    session.text(&heartbeat("00000000-0000-0000-0000-000000000000"));
    assert_eq!(session.error_code().await, "invalid_field");
    assert!(entries(&session.metrics).is_empty());
    assert!(entries(&session.ports).is_empty());
    assert!(entries(&session.heartbeats).is_empty());
    assert!(
        until(|| entries(&session.audits)
            .iter()
            .any(|a| a.action == "security.bad_frame"))
        .await
    );
}

#[actix::test]
async fn agent_output_is_routed_with_this_connections_machine() {
    let mut session = harness();
    session.register().await;
    session.text(r#"{"type":"terminal_output","sessionId":"3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c31","output":"hi"}"#);
    session.text(&format!(
        r#"{{"type":"command_response","machineId":"{MACHINE}","commandId":"c0ffee00c0ffee00c0ffee00c0ffee00","output":"up","exitCode":0,"completed":false}}"#
    ));
    assert!(
        until(|| entries(&session.outputs).len() == 1 && entries(&session.responses).len() == 1)
            .await
    );
    let output = entries(&session.outputs).remove(0);
    assert_eq!(
        output.machine_id.to_string(),
        MACHINE,
        "routed as this connection's machine"
    );
    assert_eq!(output.output.to_text(), "hi");

    // A command response claiming another machine is refused and not routed.
    session.text(r#"{"type":"command_response","machineId":"00000000-0000-0000-0000-000000000000","commandId":"c0ffee00c0ffee00c0ffee00c0ffee00","output":"x","exitCode":0,"completed":true}"#);
    assert_eq!(session.error_code().await, "invalid_field");
    assert_eq!(entries(&session.responses).len(), 1);

    // Ids that cannot be ours name nothing: dropped where they came in, like unknown ones.
    session.text(r#"{"type":"terminal_output","sessionId":"not-ours","output":"x"}"#);
    session.text(&format!(
        r#"{{"type":"command_response","machineId":"{MACHINE}","commandId":"abc","output":"x","exitCode":0,"completed":true}}"#
    ));
    session.text(r#"{"type":"terminal_output","sessionId":"3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c31","output":"after"}"#);
    assert!(until(|| entries(&session.outputs).len() == 2).await);
    assert_eq!(entries(&session.outputs)[1].output.to_text(), "after");
    assert_eq!(entries(&session.responses).len(), 1);
}

#[actix::test]
async fn bad_frames_get_error_replies_and_change_nothing() {
    let mut session = harness();
    session.register().await;
    session.text("{not json");
    assert_eq!(session.error_code().await, "bad_json");
    session.text(r#"{"machineId":"x"}"#);
    assert_eq!(session.error_code().await, "missing_type");
    session.text(r#"{"type":"update_agent","data":{}}"#);
    assert_eq!(session.error_code().await, "unknown_type");
    session.send(Message::Binary(Bytes::from_static(b"\x00\x01")));
    assert_eq!(session.error_code().await, "binary_frame");
    assert!(entries(&session.metrics).is_empty());
}

#[actix::test]
async fn oversized_frame_is_refused_with_1009() {
    let mut session = harness();
    session.text(&"x".repeat(FRAME_LIMIT + 1));
    assert_eq!(session.error_code().await, "too_large");
    assert_eq!(session.reply().await, Reply::Close(Some(1009)));
}

#[actix::test]
async fn repeated_violations_close_with_1008() {
    let mut session = Harness::start(Duration::from_secs(10), 3);
    for _ in 0..4 {
        session.text("nope");
    }
    for _ in 0..4 {
        assert_eq!(session.error_code().await, "bad_json");
    }
    assert_eq!(session.reply().await, Reply::Close(Some(1008)));
}

fn command_response(output: &str, completed: bool) -> String {
    format!(
        r#"{{"type":"command_response","machineId":"{MACHINE}","commandId":"c0ffee00c0ffee00c0ffee00c0ffee00","output":"{output}","exitCode":{},"completed":{completed}}}"#,
        if completed { 3 } else { 0 }
    ) + "\n"
}

#[actix::test]
async fn fragmented_messages_are_reassembled_and_handled_once() {
    let mut session = harness();
    session.register().await;
    let big_output = "o".repeat(6000);
    session.fragmented(&command_response(&big_output, false), 2);
    let shell_output = "t".repeat(12_000);
    session.fragmented(
        &format!(
            r#"{{"type":"terminal_output","sessionId":"3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c31","output":"{shell_output}"}}"#
        ),
        3,
    );
    assert!(
        until(|| entries(&session.responses).len() == 1 && entries(&session.outputs).len() == 1)
            .await
    );
    assert_eq!(entries(&session.responses)[0].chunk.output, big_output);
    assert_eq!(entries(&session.outputs)[0].output.to_text(), shell_output);
    actix::clock::sleep(Duration::from_millis(50)).await;
    assert_eq!(entries(&session.responses).len(), 1, "handled exactly once");
    assert_eq!(entries(&session.outputs).len(), 1, "handled exactly once");
    assert!(
        !entries(&session.audits)
            .iter()
            .any(|a| a.action == "security.bad_frame"),
        "fragments are not violations"
    );
}

#[actix::test]
async fn a_heartbeat_in_40_fragments_with_a_ping_between_them_is_stored_once() {
    let mut session = harness();
    session.register().await;
    let ports: Vec<String> = (1..=150)
        .map(|p| format!(r#"{{"port":{p},"proto":"tcp","service":"svc-{p}","state":"LISTEN"}}"#))
        .collect();
    let heartbeat = format!(
        r#"{{"type":"heartbeat","machineId":"{MACHINE}","metrics":{{"cpuUsage":1.5}},"ports":[{}]}}"#,
        ports.join(",")
    );
    let bytes = heartbeat.as_bytes();
    let step = bytes.len().div_ceil(40);
    let chunks: Vec<Bytes> = bytes.chunks(step).map(Bytes::copy_from_slice).collect();
    assert_eq!(chunks.len(), 40);
    for (i, chunk) in chunks.into_iter().enumerate() {
        let item = match i {
            0 => Item::FirstText(chunk),
            39 => Item::Last(chunk),
            _ => Item::Continue(chunk),
        };
        session.send(Message::Continuation(item));
        if i == 20 {
            session.send(Message::Ping(Bytes::from_static(b"mid")));
        }
    }
    assert!(until(|| entries(&session.ports).len() == 1).await);
    assert_eq!(entries(&session.ports)[0].ports.len(), 150);
    assert_eq!(entries(&session.metrics).len(), 1);
    assert_eq!(entries(&session.metrics)[0].sample.cpu, 1.5);
}

#[actix::test]
async fn fragments_adding_up_past_the_limit_close_with_1009_and_store_nothing() {
    let mut session = harness();
    session.register().await;
    let piece = FRAME_LIMIT / 2;
    let output = "x".repeat(FRAME_LIMIT + 100);
    session.fragmented(&command_response(&output, true), 3);
    assert!(
        FRAME_LIMIT + 100 > piece * 2,
        "every fragment alone is within the limit"
    );
    assert_eq!(session.error_code().await, "too_large");
    assert_eq!(session.reply().await, Reply::Close(Some(1009)));
    actix::clock::sleep(Duration::from_millis(50)).await;
    assert!(entries(&session.responses).is_empty());
}

#[actix::test]
async fn a_continuation_without_a_start_is_a_protocol_error() {
    let mut session = harness();
    session.register().await;
    // The client codec refuses to encode this, so write the frame by hand: FIN + opcode 0,
    // masked, 1 byte of payload.
    let mut frame = BytesMut::from(&[0x80u8, 0x81, 0, 0, 0, 0, b'x'][..]);
    session.raw(frame.split());
    assert_eq!(session.error_code().await, "bad_json");
    assert_eq!(session.reply().await, Reply::Close(Some(1002)));
}

#[actix::test]
async fn binary_fragments_are_refused_with_1003() {
    let mut session = harness();
    session.register().await;
    session.send(Message::Continuation(Item::FirstBinary(
        Bytes::from_static(b"\x00"),
    )));
    assert_eq!(session.error_code().await, "binary_frame");
    assert_eq!(session.reply().await, Reply::Close(Some(1003)));
}

#[actix::test]
async fn frames_read_before_a_connection_reset_are_all_handled() {
    let mut session = harness();
    session.register().await;
    // Both frames and the reset arrive together, as when an agent writes and then vanishes.
    let mut encoded = BytesMut::new();
    let mut encoder = Codec::new().client_mode();
    for text in [
        command_response("last words", false),
        command_response("", true),
    ] {
        encoder
            .encode(Message::Text(text.into()), &mut encoded)
            .expect("encode");
    }
    session.raw(encoded);
    session.reset();
    assert!(until(|| entries(&session.responses).len() == 2).await);
    let responses = entries(&session.responses);
    assert_eq!(responses[0].chunk.output, "last words");
    assert!(responses[1].chunk.completed);
    assert_eq!(responses[1].chunk.exit_code, 3);
    assert!(
        until(|| entries(&session.unregistered).len() == 1).await,
        "and then the session ends"
    );
}
