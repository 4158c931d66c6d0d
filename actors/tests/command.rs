//! CommandRun message-level tests with probe actors.

mod common;

use std::time::Duration;

use actix::{Actor, Context, Handler};
use chrono::Utc;
use fleetgate_actors::agent_session::SendToAgent;
use fleetgate_actors::command::{CommandChunk, CommandLinks, CommandRun, CommandSpec};
use fleetgate_actors::protocol::envelope::{SignedKind, verify_envelope};
use fleetgate_actors::protocol::nonce::NonceCache;
use fleetgate_actors::protocol::web::ServerEvent;
use fleetgate_actors::protocol::{CommandId, MachineId};
use fleetgate_actors::registry::DropCommand;
use fleetgate_actors::repo::audit::RecordAudit;
use fleetgate_actors::repo::command::{CommandFinished, CommandProgress, CommandStarted};
use fleetgate_actors::web_session::Deliver;

use common::{Log, entries, log, probe, until};

const SECRET: &str = "a97eef2fbf0dbe58d4d7411321e6641d463bdeb5ed1ec1dcc3fffc29b1085de4";

/// Stands in for `CommandRepo`, acknowledging every write.
struct FakeCommandRepo {
    started: Log<CommandStarted>,
    finished: Log<CommandFinished>,
}

impl Actor for FakeCommandRepo {
    type Context = Context<Self>;
}

impl Handler<CommandStarted> for FakeCommandRepo {
    type Result = Result<(), sea_orm::DbErr>;
    fn handle(&mut self, message: CommandStarted, _: &mut Context<Self>) -> Self::Result {
        self.started.lock().expect("log").push(message);
        Ok(())
    }
}

impl Handler<CommandProgress> for FakeCommandRepo {
    type Result = Result<(), sea_orm::DbErr>;
    fn handle(&mut self, _: CommandProgress, _: &mut Context<Self>) -> Self::Result {
        Ok(())
    }
}

impl Handler<CommandFinished> for FakeCommandRepo {
    type Result = Result<(), sea_orm::DbErr>;
    fn handle(&mut self, message: CommandFinished, _: &mut Context<Self>) -> Self::Result {
        self.finished.lock().expect("log").push(message);
        Ok(())
    }
}

struct Harness {
    run: actix::Addr<CommandRun>,
    agent: Log<SendToAgent>,
    requester: Log<Deliver>,
    finished: Log<CommandFinished>,
    dropped: Log<DropCommand>,
}

fn start(timeout: Duration) -> Harness {
    let machine_id = MachineId::parse("6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f").expect("uuid");
    let (link, _, agent) = common::probe_link(machine_id, SECRET, Default::default());
    let (drop_route, dropped) = probe::<DropCommand>();
    let (audit, _) = probe::<RecordAudit>();
    let (deliver, requester) = probe::<Deliver>();
    let (started, finished) = (log(), log());
    let repo = FakeCommandRepo {
        started,
        finished: finished.clone(),
    }
    .start();
    let spec = CommandSpec {
        command_id: CommandId::random(),
        agent: link,
        user_id: fleetgate_actors::protocol::UserId::parse("0b9c3c1e-4c5a-4a8e-9d5e-1f2a3b4c5d6e")
            .expect("uuid"),
        command: "uptime".into(),
        timeout,
        requester: Some(deliver),
        request_id: None,
        on_started: None,
    };
    let links = CommandLinks {
        drop_route,
        started: repo.clone().recipient(),
        finished: repo.clone().recipient(),
        progress: repo.recipient(),
        audit,
    };
    Harness {
        run: CommandRun::new(spec, links).start(),
        agent,
        requester,
        finished,
        dropped,
    }
}

fn events(log: &Log<Deliver>) -> Vec<ServerEvent> {
    entries(log).into_iter().flat_map(|d| d.events).collect()
}

#[actix::test]
async fn the_command_is_signed_streamed_and_stored_with_its_exit_code() {
    let h = start(Duration::from_secs(60));
    assert!(until(|| entries(&h.agent).len() == 1).await);
    let frame = entries(&h.agent).remove(0).frame;
    let envelope =
        verify_envelope(&frame, SECRET, Utc::now(), &mut NonceCache::new(8)).expect("signed");
    assert_eq!(envelope.kind, SignedKind::ExecuteCommand);
    assert!(envelope.payload.ends_with(r#","command":"uptime"}"#));
    h.run.do_send(CommandChunk {
        output: "up ".into(),
        completed: false,
        exit_code: 0,
    });
    h.run.do_send(CommandChunk {
        output: "3 days".into(),
        completed: true,
        exit_code: 3,
    });
    assert!(until(|| entries(&h.finished).len() == 1 && entries(&h.dropped).len() == 1).await);
    let stored = entries(&h.finished).remove(0);
    assert_eq!(
        (
            stored.status,
            stored.exit_code,
            stored.output.as_str(),
            stored.output_bytes
        ),
        ("completed", Some(3), "up 3 days", 9)
    );
    let statuses: Vec<&str> = events(&h.requester)
        .iter()
        .filter_map(|e| match e {
            ServerEvent::CommandOutput { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, vec!["running", "completed"]);
}

#[actix::test]
async fn a_command_past_its_timeout_is_marked_timed_out() {
    let h = start(Duration::from_millis(100));
    assert!(until(|| entries(&h.finished).len() == 1).await);
    assert_eq!(entries(&h.finished)[0].status, "timed_out");
    assert!(events(&h.requester).iter().any(|e| matches!(
        e,
        ServerEvent::CommandOutput {
            status: "timed_out",
            completed: true,
            ..
        }
    )));
    // Late output after the timeout changes nothing.
    h.run.do_send(CommandChunk {
        output: "late".into(),
        completed: true,
        exit_code: 0,
    });
    assert_eq!(entries(&h.finished).len(), 1);
}
