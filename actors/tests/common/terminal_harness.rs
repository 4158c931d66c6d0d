//! A TerminalSession wired to probe actors, shared by the terminal tests.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Context, Handler, ResponseFuture};
use fleetgate_actors::agent_session::{SendToAgent, ToAgent};
use fleetgate_actors::protocol::agent::Capabilities;
use fleetgate_actors::protocol::session_token::SessionTokens;
use fleetgate_actors::protocol::web::ServerEvent;
use fleetgate_actors::protocol::{ConnectionId, ErrorCode, MachineId, SessionId, UserId};
use fleetgate_actors::registry::DropTerminal;
use fleetgate_actors::repo::audit::RecordAudit;
use fleetgate_actors::repo::session::{SessionClosed, SessionOpened};
use fleetgate_actors::terminal::{
    Owner, TerminalConfig, TerminalLinks, TerminalSession, TerminalSpec,
};
use fleetgate_actors::web_session::Deliver;

use super::{Log, entries, log, probe, probe_link};

pub const SECRET: &str = "a97eef2fbf0dbe58d4d7411321e6641d463bdeb5ed1ec1dcc3fffc29b1085de4";
pub const USER: &str = "0b9c3c1e-4c5a-4a8e-9d5e-1f2a3b4c5d6e";

/// The owner's id.
pub fn user() -> UserId {
    UserId::parse(USER).expect("uuid")
}

/// An owner socket that answers deliveries only when the test hands out permits.
pub struct GatedOwner {
    pub seen: Log<Deliver>,
    pub gate: Arc<tokio::sync::Semaphore>,
}

impl Actor for GatedOwner {
    type Context = Context<Self>;
}

impl Handler<Deliver> for GatedOwner {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, delivery: Deliver, _: &mut Context<Self>) -> Self::Result {
        self.seen.lock().expect("log").push(delivery);
        let gate = self.gate.clone();
        Box::pin(async move {
            if let Ok(permit) = gate.acquire().await {
                permit.forget();
            }
        })
    }
}

pub struct Harness {
    pub terminal: Addr<TerminalSession>,
    pub machine_id: MachineId,
    pub session_id: SessionId,
    pub owner_connection: ConnectionId,
    pub owner: Log<Deliver>,
    pub agent: Log<SendToAgent>,
    pub control: Log<ToAgent>,
    pub closed: Log<SessionClosed>,
    pub dropped: Log<DropTerminal>,
    pub audits: Log<RecordAudit>,
}

pub fn config() -> TerminalConfig {
    TerminalConfig {
        msgs_per_sec: 1,
        burst: 3,
        buffer_bytes: 1024,
        idle_timeout: Duration::from_secs(3600),
        grace: Duration::from_millis(100),
        replay_bytes: 64 * 1024,
        flow_window: 4096,
        recording: None,
    }
}

pub fn start_with(
    capabilities: Capabilities,
    owner: Owner,
    owner_log: Log<Deliver>,
    config: TerminalConfig,
) -> Harness {
    start_on_machine(capabilities, owner, owner_log, config, None)
}

/// [`start_with`] on a machine with its own recording setting (`None`: the server's).
pub fn start_on_machine(
    capabilities: Capabilities,
    owner: Owner,
    owner_log: Log<Deliver>,
    config: TerminalConfig,
    machine_recording: Option<bool>,
) -> Harness {
    let (drop_route, dropped) = probe::<DropTerminal>();
    let (opened, _) = probe::<SessionOpened>();
    let (closed_rx, closed) = probe::<SessionClosed>();
    let (audit, audits) = probe::<RecordAudit>();
    let machine_id = MachineId::parse("6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f").expect("uuid");
    let session_id = SessionId::random();
    let owner_connection = owner.connection_id;
    let (link, control, agent) = probe_link(machine_id, SECRET, capabilities);
    let spec = TerminalSpec {
        session_id: session_id.clone(),
        agent: link,
        user_id: user(),
        cols: 80,
        rows: 24,
        owner,
        request_id: Some("req-1".into()),
        recording: machine_recording,
    };
    let links = TerminalLinks {
        drop_route,
        opened,
        closed: closed_rx,
        audit,
    };
    let tokens = SessionTokens::new([4; 32]);
    let terminal = spec
        .agent
        .clone()
        .start_terminal(session_id.clone(), move || {
            TerminalSession::new(spec, config, links, tokens)
        });
    Harness {
        terminal,
        machine_id,
        session_id,
        owner_connection,
        owner: owner_log,
        agent,
        control,
        closed,
        dropped,
        audits,
    }
}

pub fn start(capabilities: Capabilities) -> Harness {
    start_configured(capabilities, config())
}

/// A terminal with a probe owner and its own `config`.
pub fn start_configured(capabilities: Capabilities, config: TerminalConfig) -> Harness {
    let (deliver, owner_log) = probe::<Deliver>();
    let owner = Owner {
        connection_id: ConnectionId::next(),
        deliver,
    };
    start_with(capabilities, owner, owner_log, config)
}

/// Attaches a new probe socket of the session's user, asking for output after `seen_offset`.
pub async fn attach_new_owner(
    h: &Harness,
    seen_offset: Option<u64>,
) -> (Result<(), ErrorCode>, Log<Deliver>) {
    let (deliver, log) = probe::<Deliver>();
    let attached = h
        .terminal
        .send(fleetgate_actors::terminal::AttachOwner {
            user_id: user(),
            owner: Owner {
                connection_id: ConnectionId::next(),
                deliver,
            },
            seen_offset,
        })
        .await
        .expect("terminal alive");
    (attached, log)
}

pub fn events(log: &Log<Deliver>) -> Vec<ServerEvent> {
    entries(log).into_iter().flat_map(|d| d.events).collect()
}

pub fn errors(log: &Log<Deliver>) -> Vec<ErrorCode> {
    entries(log)
        .into_iter()
        .filter_map(|d| d.error.map(|e| e.code))
        .collect()
}

pub fn frames(log: &Log<SendToAgent>) -> Vec<String> {
    entries(log).into_iter().map(|m| m.frame).collect()
}

/// A terminal whose owner answers deliveries only when the test adds permits to the gate.
pub fn start_gated() -> (Harness, Arc<tokio::sync::Semaphore>) {
    start_gated_with(Capabilities::default())
}

/// [`start_gated`] for an agent with `capabilities`.
pub fn start_gated_with(capabilities: Capabilities) -> (Harness, Arc<tokio::sync::Semaphore>) {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let owner_log = log();
    let owner_addr = GatedOwner {
        seen: owner_log.clone(),
        gate: gate.clone(),
    }
    .start();
    let owner = Owner {
        connection_id: ConnectionId::next(),
        deliver: owner_addr.recipient(),
    };
    let harness = start_with(capabilities, owner, owner_log, config());
    (harness, gate)
}
