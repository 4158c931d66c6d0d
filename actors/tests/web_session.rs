//! WebSession message-level tests: one operator socket wired to probe actors standing in for
//! the Registry, the access repository, the audit trail and the user directory.

mod common;

use std::time::Duration;

use actix::{Actor, Addr, Context, Handler};
use actix_codec::Encoder;
use actix_http::ws::{Codec, Message};
use actix_web::error::PayloadError;
use actix_web_actors::ws::WebsocketContext;
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use common::server_frames::{Reply, ServerFrames};
use common::{Log, entries, log, probe, probe_link, until};
use fleetgate_actors::agent_link::AgentLink;
use fleetgate_actors::agent_session::{RouteError, SendToAgent};
use fleetgate_actors::command::CommandLinks;
use fleetgate_actors::identity::{AuthenticatedUser, Role};
use fleetgate_actors::protocol::MachineId;
use fleetgate_actors::protocol::session_token::SessionTokens;
use fleetgate_actors::registry::{
    DropCommand, DropTerminal, FindTerminal, OpenLink, RouteCommand, RouteTerminal,
    SubscribeStatus, TerminalInboxes,
};
use fleetgate_actors::repo::access::{AccessError, CheckAccess, VisibleMachines};
use fleetgate_actors::repo::audit::RecordAudit;
use fleetgate_actors::repo::command::{CommandFinished, CommandProgress, CommandStarted};
use fleetgate_actors::repo::machine_record::Machine;
use fleetgate_actors::repo::session::{SessionClosed, SessionOpened};
use fleetgate_actors::security_events::SecurityEvents;
use fleetgate_actors::shutdown::{ShutdownTrigger, shutdown_channel};
use fleetgate_actors::socket::SocketConfig;
use fleetgate_actors::socket_drain::drain_meter;
use fleetgate_actors::terminal::{TerminalConfig, TerminalLinks};
use fleetgate_actors::user_directory::{RevokeSocket, UnwatchSocket, WatchSocket};
use fleetgate_actors::web_session::{
    WebAccess, WebLinks, WebRouting, WebSession, WebSessionConfig,
};
use sea_orm::DbErr;

const USER: &str = "0b9c3c1e-4c5a-4a8e-9d5e-1f2a3b4c5d6e";
const MACHINE: &str = "6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f";
const SECRET: &str = "a97eef2fbf0dbe58d4d7411321e6641d463bdeb5ed1ec1dcc3fffc29b1085de4";

/// Stands in for the Registry (links it hands out) and the access repository (its answer).
struct FakeServer {
    link: Option<AgentLink>,
    access: Result<(), AccessError>,
    asked_links: Log<MachineId>,
    routed_terminals: Log<String>,
    routed_commands: Log<String>,
}

impl Actor for FakeServer {
    type Context = Context<Self>;
}

impl Handler<OpenLink> for FakeServer {
    type Result = Result<AgentLink, RouteError>;
    fn handle(&mut self, msg: OpenLink, _: &mut Context<Self>) -> Self::Result {
        self.asked_links.lock().expect("log").push(msg.machine_id);
        self.link.clone().ok_or(RouteError::MachineOffline)
    }
}

impl Handler<RouteTerminal> for FakeServer {
    type Result = ();
    fn handle(&mut self, msg: RouteTerminal, _: &mut Context<Self>) {
        self.routed_terminals
            .lock()
            .expect("log")
            .push(msg.session_id.to_string());
    }
}

impl Handler<RouteCommand> for FakeServer {
    type Result = ();
    fn handle(&mut self, msg: RouteCommand, _: &mut Context<Self>) {
        self.routed_commands
            .lock()
            .expect("log")
            .push(msg.command_id.to_string());
    }
}

impl Handler<FindTerminal> for FakeServer {
    type Result = Option<TerminalInboxes>;
    fn handle(&mut self, _: FindTerminal, _: &mut Context<Self>) -> Self::Result {
        None
    }
}

impl Handler<SubscribeStatus> for FakeServer {
    type Result = ();
    fn handle(&mut self, _: SubscribeStatus, _: &mut Context<Self>) {}
}

impl Handler<CheckAccess> for FakeServer {
    type Result = Result<Machine, AccessError>;
    fn handle(&mut self, msg: CheckAccess, _: &mut Context<Self>) -> Self::Result {
        self.access.clone()?;
        Ok(Machine {
            id: msg.machine_id,
            name: "box".into(),
            details: fleetgate_actors::repo::machine::MachineDetails {
                hostname: "box".into(),
                ip: "10.0.0.1".into(),
                ..Default::default()
            },
            online: true,
            last_seen: None,
        })
    }
}

impl Handler<VisibleMachines> for FakeServer {
    type Result = Result<Vec<Machine>, AccessError>;
    fn handle(&mut self, _: VisibleMachines, _: &mut Context<Self>) -> Self::Result {
        Ok(Vec::new())
    }
}

/// Stands in for the command repository: every write succeeds.
struct FakeCommands;

impl Actor for FakeCommands {
    type Context = Context<Self>;
}

macro_rules! ok_writes {
    ($($message:ty),*) => {$(
        impl Handler<$message> for FakeCommands {
            type Result = Result<(), DbErr>;
            fn handle(&mut self, _: $message, _: &mut Context<Self>) -> Self::Result {
                Ok(())
            }
        }
    )*};
}

ok_writes!(CommandStarted, CommandFinished, CommandProgress);

struct Harness {
    session: Addr<WebSession>,
    input: futures_channel::mpsc::UnboundedSender<Result<Bytes, PayloadError>>,
    frames: ServerFrames,
    agent_frames: Log<SendToAgent>,
    asked_links: Log<MachineId>,
    routed_terminals: Log<String>,
    routed_commands: Log<String>,
    audits: Log<RecordAudit>,
    watched: Log<WatchSocket>,
    unwatched: Log<UnwatchSocket>,
    _shutdown: ShutdownTrigger,
}

/// A session for an operator whose machine is online (`online`) and allowed (`access`).
fn start(online: bool, access: Result<(), AccessError>) -> Harness {
    let machine_id = MachineId::parse(MACHINE).expect("uuid");
    let (link, _, agent_frames) = probe_link(machine_id, SECRET, Default::default());
    let (asked_links, routed_terminals, routed_commands) = (log(), log(), log());
    let server = FakeServer {
        link: online.then_some(link),
        access,
        asked_links: asked_links.clone(),
        routed_terminals: routed_terminals.clone(),
        routed_commands: routed_commands.clone(),
    }
    .start();
    let commands = FakeCommands.start();
    let (audit, audits) = probe::<RecordAudit>();
    let (watch_user, watched) = probe::<WatchSocket>();
    let (unwatch_user, unwatched) = probe::<UnwatchSocket>();
    let links = WebLinks {
        routing: WebRouting {
            open_link: server.clone().recipient(),
            route_terminal: server.clone().recipient(),
            route_command: server.clone().recipient(),
            find_terminal: server.clone().recipient(),
            subscribe_status: server.clone().recipient(),
        },
        access: WebAccess {
            check: server.clone().recipient(),
            visible: server.recipient(),
        },
        audit: audit.clone(),
        terminal: TerminalLinks {
            drop_route: probe::<DropTerminal>().0,
            opened: probe::<SessionOpened>().0,
            closed: probe::<SessionClosed>().0,
            audit: audit.clone(),
        },
        command: CommandLinks {
            drop_route: probe::<DropCommand>().0,
            started: commands.clone().recipient(),
            finished: commands.clone().recipient(),
            progress: commands.recipient(),
            audit: audit.clone(),
        },
        security: SecurityEvents::new(audit, 100),
        watch_user,
        unwatch_user,
        cluster: Default::default(),
    };
    let config = WebSessionConfig {
        socket: SocketConfig {
            ping_interval: Duration::from_secs(20),
            client_timeout: Duration::from_secs(60),
            max_frame_bytes: 64 * 1024,
            unauthenticated_frame_bytes: 64 * 1024,
            violations_per_minute: 20,
        },
        terminal: TerminalConfig {
            msgs_per_sec: 100,
            burst: 100,
            buffer_bytes: 64 * 1024,
            idle_timeout: Duration::from_secs(3600),
            grace: Duration::from_secs(1),
            replay_bytes: 64 * 1024,
            flow_window: 64 * 1024,
            recording: None,
        },
        command_timeout: Duration::from_secs(60),
    };
    let user = AuthenticatedUser {
        user_id: fleetgate_actors::protocol::UserId::parse(USER).expect("uuid"),
        role: Role::Operator,
        expires_at: Utc::now().timestamp() + 3600,
    };
    let (trigger, signal) = shutdown_channel();
    let (meter, drain) = drain_meter();
    let mut session = WebSession::new(
        user,
        Some("192.0.2.7".into()),
        config,
        links,
        SessionTokens::new([4; 32]),
        signal,
        drain,
    );
    let (input, incoming) = futures_channel::mpsc::unbounded();
    let guarded = fleetgate_actors::socket::SocketActor::inbound(&mut session).guard(incoming);
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    let stream = WebsocketContext::with_factory(guarded, move |ctx| {
        address_tx
            .send(actix::AsyncContext::address(ctx))
            .expect("address");
        session
    });
    let frames = ServerFrames::drive(meter.count(stream));
    Harness {
        session: address_rx.recv().expect("the session started"),
        input,
        frames,
        agent_frames,
        asked_links,
        routed_terminals,
        routed_commands,
        audits,
        watched,
        unwatched,
        _shutdown: trigger,
    }
}

impl Harness {
    fn send(&self, json: serde_json::Value) {
        let mut encoded = BytesMut::new();
        Codec::new()
            .client_mode()
            .encode(Message::Text(json.to_string().into()), &mut encoded)
            .expect("encode");
        self.input
            .unbounded_send(Ok(encoded.freeze()))
            .expect("session alive");
    }

    async fn reply(&mut self) -> Reply {
        self.frames.next().await
    }

    async fn next_of(&mut self, kind: &str) -> serde_json::Value {
        loop {
            match self.reply().await {
                Reply::Json(json) if json["type"] == kind => return json,
                Reply::Json(_) => continue,
                Reply::Close(code) => panic!("closed with {code:?} before {kind}"),
            }
        }
    }

    fn audited(&self, action: &str) -> bool {
        entries(&self.audits).iter().any(|a| a.action == action)
    }
}

#[actix::test]
async fn hello_comes_first_and_the_socket_is_watched_for_user_changes() {
    let mut h = start(true, Ok(()));
    let hello = h.next_of("hello").await;
    assert_eq!(
        (hello["userId"].as_str(), hello["role"].as_str()),
        (Some(USER), Some("operator"))
    );
    assert!(until(|| entries(&h.watched).len() == 1).await);
    assert_eq!(entries(&h.watched)[0].user_id.to_string(), USER);
}

#[actix::test]
async fn spawn_terminal_is_checked_audited_then_opened_through_the_link() {
    let mut h = start(true, Ok(()));
    h.send(serde_json::json!({"type":"spawn_terminal","machineId":MACHINE,"cols":100,"rows":30,"requestId":"r1"}));
    let opened = h.next_of("terminal_opened").await;
    assert_eq!(opened["requestId"], "r1");
    let session = opened["sessionId"].as_str().expect("sessionId").to_owned();
    assert!(
        h.audited("terminal.open"),
        "audited before the shell was spawned"
    );
    let spawned = entries(&h.agent_frames);
    assert!(spawned[0].frame.contains("spawn_shell") && spawned[0].frame.contains(&session));
    assert_eq!(entries(&h.routed_terminals), vec![session]);
}

#[actix::test]
async fn a_refused_check_reaches_no_agent_and_is_audited() {
    let mut h = start(true, Err(AccessError::Forbidden));
    h.send(serde_json::json!({"type":"execute_command","machineId":MACHINE,"command":"id"}));
    assert_eq!(h.next_of("error").await["code"], "forbidden");
    assert!(until(|| h.audited("access.denied")).await);
    assert!(entries(&h.asked_links).is_empty(), "no link was asked for");
    assert!(entries(&h.agent_frames).is_empty());
}

#[actix::test]
async fn an_offline_machine_is_reported_and_nothing_is_audited_as_run() {
    let mut h = start(false, Ok(()));
    h.send(serde_json::json!({"type":"execute_command","machineId":MACHINE,"command":"id"}));
    assert_eq!(h.next_of("error").await["code"], "machine_offline");
    assert!(!h.audited("command.run"));
    assert!(entries(&h.routed_commands).is_empty());
}

#[actix::test]
async fn a_command_is_audited_routed_and_sent_signed() {
    let mut h = start(true, Ok(()));
    h.send(serde_json::json!({"type":"execute_command","machineId":MACHINE,"command":"uptime"}));
    let started = h.next_of("command_started").await;
    let command_id = started["commandId"].as_str().expect("commandId").to_owned();
    assert!(h.audited("command.run"));
    assert!(until(|| entries(&h.routed_commands) == vec![command_id.clone()]).await);
    assert!(
        until(|| entries(&h.agent_frames)
            .iter()
            .any(|f| f.frame.contains("execute_command")))
        .await
    );
}

#[actix::test]
async fn a_revoked_socket_is_told_closed_with_4403_and_unwatched() {
    let mut h = start(true, Ok(()));
    h.next_of("hello").await;
    h.session.do_send(RevokeSocket {
        reason: "user disabled",
    });
    assert_eq!(h.next_of("error").await["code"], "forbidden");
    assert_eq!(h.reply().await, Reply::Close(Some(4403)));
    assert!(until(|| entries(&h.unwatched).len() == 1).await);
    assert!(until(|| h.audited("ws.revoked")).await);
}

#[actix::test]
async fn a_bad_frame_is_refused_and_reported_with_the_peer_address() {
    let mut h = start(true, Ok(()));
    h.send(serde_json::json!({"type":"no_such_request"}));
    assert_eq!(h.next_of("error").await["code"], "unknown_type");
    assert!(
        until(|| entries(&h.audits).iter().any(
            |a| a.action == "security.bad_frame" && a.source_ip.as_deref() == Some("192.0.2.7")
        ))
        .await
    );
}
