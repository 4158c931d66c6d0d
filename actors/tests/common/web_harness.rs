//! A WebSession wired to probe actors standing in for the Registry, the access repository,
//! the audit trail and the user directory, shared by the web socket tests.

use std::time::Duration;

use super::server_frames::{Reply, ServerFrames};
use super::{Log, entries, log, probe, probe_link};
use actix::{Actor, Addr, Context, Handler, Recipient};
use actix_codec::Encoder;
use actix_http::ws::{Codec, Message};
use actix_web::error::PayloadError;
use actix_web_actors::ws::WebsocketContext;
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use fleetgate_actors::agent_link::AgentLink;
use fleetgate_actors::agent_session::{RouteError, SendToAgent};
use fleetgate_actors::command::CommandLinks;
use fleetgate_actors::identity::{AuthenticatedUser, Role};
use fleetgate_actors::protocol::session_token::SessionTokens;
use fleetgate_actors::protocol::{MachineId, UserId};
use fleetgate_actors::registry::{
    DropCommand, DropTerminal, FindTerminal, FindWatchable, OpenLink, RouteCommand, RouteTerminal,
    SubscribeStatus, TerminalInboxes, Watchable,
};
use fleetgate_actors::repo::access::{AccessError, Action, CheckAccess, VisibleMachines};
use fleetgate_actors::repo::audit::RecordAudit;
use fleetgate_actors::repo::command::{CommandFinished, CommandProgress, CommandStarted};
use fleetgate_actors::repo::machine_record::Machine;
use fleetgate_actors::repo::session::{SessionClosed, SessionOpened};
use fleetgate_actors::security_events::SecurityEvents;
use fleetgate_actors::shutdown::{ShutdownTrigger, shutdown_channel};
use fleetgate_actors::socket::SocketConfig;
use fleetgate_actors::socket_drain::drain_meter;
use fleetgate_actors::terminal::{TerminalConfig, TerminalEvent, TerminalLinks};
use fleetgate_actors::user_directory::{UnwatchSocket, WatchSocket};
use fleetgate_actors::web_session::{
    WebAccess, WebLinks, WebRouting, WebSession, WebSessionConfig,
};
use sea_orm::DbErr;

pub const USER: &str = "0b9c3c1e-4c5a-4a8e-9d5e-1f2a3b4c5d6e";
pub const MACHINE: &str = "6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f";
pub const SECRET: &str = "a97eef2fbf0dbe58d4d7411321e6641d463bdeb5ed1ec1dcc3fffc29b1085de4";

/// A terminal routed through the fake Registry: its session, machine, inboxes and the way
/// agent events reach it.
pub type RoutedTerminal = (String, MachineId, TerminalInboxes, Recipient<TerminalEvent>);

/// Stands in for the Registry (links it hands out, terminals routed through it) and the
/// access repository (its answers: `observe` for watching, `access` for everything else).
#[derive(Clone)]
pub struct FakeServer {
    pub link: Option<AgentLink>,
    pub access: Result<(), AccessError>,
    pub observe: Result<(), AccessError>,
    pub asked_links: Log<MachineId>,
    pub routed_terminals: Log<String>,
    pub routed_commands: Log<String>,
    pub routes: Log<RoutedTerminal>,
    pub agent_frames: Log<SendToAgent>,
}

impl FakeServer {
    /// A fake for one machine, online or not, with the given access answers.
    pub fn new(
        online: bool,
        access: Result<(), AccessError>,
        observe: Result<(), AccessError>,
    ) -> Self {
        let machine_id = MachineId::parse(MACHINE).expect("uuid");
        let (link, _, agent_frames) = probe_link(machine_id, SECRET, Default::default());
        Self {
            link: online.then_some(link),
            access,
            observe,
            asked_links: log(),
            routed_terminals: log(),
            routed_commands: log(),
            routes: log(),
            agent_frames,
        }
    }
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
        self.routes.lock().expect("log").push((
            msg.session_id.to_string(),
            msg.machine_id,
            msg.inboxes,
            msg.events,
        ));
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

impl Handler<FindWatchable> for FakeServer {
    type Result = Option<Watchable>;
    fn handle(&mut self, msg: FindWatchable, _: &mut Context<Self>) -> Self::Result {
        let wanted = msg.session_id.to_string();
        entries(&self.routes)
            .into_iter()
            .find(|(session, ..)| *session == wanted)
            .and_then(|(_, machine_id, inboxes, _)| {
                Some(Watchable {
                    machine_id,
                    inboxes: inboxes.watch?,
                })
            })
    }
}

impl Handler<SubscribeStatus> for FakeServer {
    type Result = ();
    fn handle(&mut self, _: SubscribeStatus, _: &mut Context<Self>) {}
}

impl Handler<CheckAccess> for FakeServer {
    type Result = Result<Machine, AccessError>;
    fn handle(&mut self, msg: CheckAccess, _: &mut Context<Self>) -> Self::Result {
        match msg.action {
            Action::Observe => self.observe.clone()?,
            _ => self.access.clone()?,
        }
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
            recording: None,
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
pub struct FakeCommands;

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

/// One operator socket wired to a fake server and probes.
pub struct Harness {
    pub session: Addr<WebSession>,
    pub input: futures_channel::mpsc::UnboundedSender<Result<Bytes, PayloadError>>,
    pub frames: ServerFrames,
    pub agent_frames: Log<SendToAgent>,
    pub asked_links: Log<MachineId>,
    pub routed_terminals: Log<String>,
    pub routed_commands: Log<String>,
    pub routes: Log<RoutedTerminal>,
    pub audits: Log<RecordAudit>,
    pub watched: Log<WatchSocket>,
    pub unwatched: Log<UnwatchSocket>,
    _shutdown: ShutdownTrigger,
}

/// A session for an operator whose machine is online (`online`) and allowed (`access`).
pub fn start(online: bool, access: Result<(), AccessError>) -> Harness {
    let server = FakeServer::new(online, access, Ok(()));
    let address = server.clone().start();
    start_on(&server, &address, UserId::parse(USER).expect("uuid"))
}

/// A session of `user_id` on the fake `server` (started as `address`): several sockets may
/// share one server, and so each other's terminals.
pub fn start_on(server: &FakeServer, address: &Addr<FakeServer>, user_id: UserId) -> Harness {
    let (agent_frames, asked_links, routed_terminals, routed_commands, routes) = (
        server.agent_frames.clone(),
        server.asked_links.clone(),
        server.routed_terminals.clone(),
        server.routed_commands.clone(),
        server.routes.clone(),
    );
    let server = address.clone();
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
            find_watchable: server.clone().recipient(),
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
        user_id,
        role: Role::Operator,
        expires_at: Utc::now().timestamp() + 3600,
        name: None,
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
        routes,
        audits,
        watched,
        unwatched,
        _shutdown: trigger,
    }
}

impl Harness {
    /// Sends one client frame.
    pub fn send(&self, json: serde_json::Value) {
        let mut encoded = BytesMut::new();
        Codec::new()
            .client_mode()
            .encode(Message::Text(json.to_string().into()), &mut encoded)
            .expect("encode");
        self.input
            .unbounded_send(Ok(encoded.freeze()))
            .expect("session alive");
    }

    /// The next frame the socket sent.
    pub async fn reply(&mut self) -> Reply {
        self.frames.next().await
    }

    /// The next frame of type `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> serde_json::Value {
        loop {
            match self.reply().await {
                Reply::Json(json) if json["type"] == kind => return json,
                Reply::Json(_) => continue,
                Reply::Close(code) => panic!("closed with {code:?} before {kind}"),
            }
        }
    }

    /// Whether an audit entry of `action` was recorded.
    pub fn audited(&self, action: &str) -> bool {
        entries(&self.audits).iter().any(|a| a.action == action)
    }
}
