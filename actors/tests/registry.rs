//! Registry message-level tests with probe actors (no sockets).

mod common;

use std::time::Duration;

use actix::Actor;
use fleetgate_actors::agent_session::{RouteError, SendToAgent, ToAgent};
use fleetgate_actors::protocol::{ConnectionId, MachineId};
use fleetgate_actors::registry::{
    HeartbeatSeen, OnlineMachines, OpenLink, Registry, SubscribeStatus, UnregisterAgent,
};

use common::registry_harness::{machine, register, registry, statuses};
use common::{entries, probe, until};

#[actix::test]
async fn register_then_unregister_sets_online_then_offline() {
    let (registry, stored) = registry(Duration::from_secs(60));
    let (agent, _) = probe::<ToAgent>();
    let conn = ConnectionId::next();
    registry
        .send(register(machine(1), conn, "h".into(), agent))
        .await
        .expect("send");
    assert_eq!(
        registry.send(OnlineMachines).await.expect("send"),
        vec![machine(1)]
    );
    registry
        .send(UnregisterAgent {
            machine_id: machine(1),
            connection_id: conn,
        })
        .await
        .expect("send");
    assert!(
        registry
            .send(OnlineMachines)
            .await
            .expect("send")
            .is_empty()
    );
    assert!(until(|| statuses(&stored) == vec![(machine(1), true), (machine(1), false)]).await);
}

#[actix::test]
async fn newer_connection_replaces_and_stale_unregister_is_ignored() {
    let (registry, stored) = registry(Duration::from_secs(60));
    let (old_agent, old_seen) = probe::<ToAgent>();
    let (new_agent, new_seen) = probe::<ToAgent>();
    let (old_conn, new_conn) = (ConnectionId::next(), ConnectionId::next());
    let (old_frames_to, old_frames) = probe::<SendToAgent>();
    let (new_frames_to, new_frames) = probe::<SendToAgent>();
    let mut old = register(machine(2), old_conn, "h".into(), old_agent);
    old.frames = old_frames_to;
    let mut new = register(machine(2), new_conn, "h".into(), new_agent);
    new.frames = new_frames_to;
    registry.send(old).await.expect("send");
    registry.send(new).await.expect("send");
    assert!(
        until(|| entries(&old_seen)
            == vec![ToAgent::Disconnect {
                code: 4409,
                reason: "replaced by a newer connection"
            }])
        .await
    );

    // The old socket closes late: the new one must stay.
    registry
        .send(UnregisterAgent {
            machine_id: machine(2),
            connection_id: old_conn,
        })
        .await
        .expect("send");
    assert_eq!(
        registry.send(OnlineMachines).await.expect("send"),
        vec![machine(2)]
    );
    let link = registry
        .send(OpenLink {
            machine_id: machine(2),
        })
        .await
        .expect("send")
        .expect("a link to the online machine");
    link.send("hello".into()).await.expect("sent");
    assert!(
        until(|| entries(&new_frames)
            .iter()
            .map(|f| f.frame.clone())
            .collect::<Vec<_>>()
            == ["hello"])
        .await
    );
    assert!(
        entries(&old_frames).is_empty(),
        "the replaced connection gets nothing"
    );
    assert!(
        entries(&new_seen).is_empty(),
        "the new connection is not told to close"
    );
    assert_eq!(
        statuses(&stored),
        vec![(machine(2), true)],
        "no offline blip on replacement"
    );
}

#[actix::test]
async fn an_unknown_machine_has_no_link() {
    let (registry, _) = registry(Duration::from_secs(60));
    let link = registry
        .send(OpenLink {
            machine_id: machine(3),
        })
        .await
        .expect("send");
    assert_eq!(link.err(), Some(RouteError::MachineOffline));
}

#[actix::test]
async fn silent_machines_go_offline_and_come_back_with_a_heartbeat() {
    let (registry, stored) = registry(Duration::from_millis(50));
    let (subscriber, events) = probe::<fleetgate_actors::registry::MachineStatusChanged>();
    registry
        .send(SubscribeStatus { subscriber })
        .await
        .expect("send");
    let (agent, _) = probe::<ToAgent>();
    let conn = ConnectionId::next();
    registry
        .send(register(machine(4), conn, "quiet".into(), agent))
        .await
        .expect("send");
    assert!(until(|| statuses(&stored) == vec![(machine(4), true), (machine(4), false)]).await);
    registry
        .send(HeartbeatSeen {
            machine_id: machine(4),
            connection_id: conn,
        })
        .await
        .expect("send");
    assert!(until(|| statuses(&stored).len() >= 3).await);
    assert_eq!(statuses(&stored)[2], (machine(4), true));
    let published: Vec<bool> = entries(&events).iter().map(|e| e.online).collect();
    assert_eq!(&published[..3], &[true, false, true]);
    assert!(entries(&events).iter().all(|e| e.hostname == "quiet"));
}

mod routing {
    use super::*;
    use fleetgate_actors::command::CommandChunk;
    use fleetgate_actors::protocol::{CommandId, SessionId};
    use fleetgate_actors::registry::{
        DropTerminal, RouteCommand, RouteCommandResponse, RouteTerminal, RouteTerminalOutput,
        TerminalInboxes,
    };
    use fleetgate_actors::terminal::{AttachOwner, OwnerRequest, TerminalEvent};

    /// A terminal stand-in: records events; attach and requests go to throwaway probes.
    struct FakeTerminal {
        events: common::Log<TerminalEvent>,
    }

    impl actix::Actor for FakeTerminal {
        type Context = actix::Context<Self>;
    }

    impl actix::Handler<TerminalEvent> for FakeTerminal {
        type Result = ();
        fn handle(&mut self, event: TerminalEvent, _: &mut actix::Context<Self>) {
            self.events.lock().expect("log").push(event);
        }
    }

    impl actix::Handler<AttachOwner> for FakeTerminal {
        type Result = Result<(), fleetgate_actors::protocol::ErrorCode>;
        fn handle(&mut self, _: AttachOwner, _: &mut actix::Context<Self>) -> Self::Result {
            Ok(())
        }
    }

    impl actix::Handler<OwnerRequest> for FakeTerminal {
        type Result = ();
        fn handle(&mut self, _: OwnerRequest, _: &mut actix::Context<Self>) {}
    }

    fn terminal(
        registry: &actix::Addr<Registry>,
        machine_id: MachineId,
    ) -> (SessionId, common::Log<TerminalEvent>) {
        let events = common::log();
        let fake = FakeTerminal {
            events: events.clone(),
        }
        .start();
        let session_id = SessionId::random();
        registry.do_send(RouteTerminal {
            session_id: session_id.clone(),
            machine_id,
            events: fake.clone().recipient(),
            inboxes: TerminalInboxes {
                attach: fake.clone().recipient(),
                requests: fake.recipient(),
                watch: None,
            },
        });
        (session_id, events)
    }

    fn output(machine_id: MachineId, session_id: &SessionId, text: &str) -> RouteTerminalOutput {
        RouteTerminalOutput {
            machine_id,
            session_id: session_id.clone(),
            output: text.into(),
        }
    }

    #[actix::test]
    async fn output_reaches_only_its_own_session_and_only_from_its_machine() {
        let (registry, _) = registry(Duration::from_secs(60));
        let (first, first_events) = terminal(&registry, machine(1));
        let (_second, second_events) = terminal(&registry, machine(1));
        let (other, other_events) = terminal(&registry, machine(2));

        assert!(
            registry
                .send(output(machine(1), &first, "one"))
                .await
                .expect("send")
        );
        assert!(
            registry
                .send(output(machine(2), &other, "two"))
                .await
                .expect("send")
        );
        // Machine 2's agent naming machine 1's session is refused.
        assert!(
            !registry
                .send(output(machine(2), &first, "injected"))
                .await
                .expect("send")
        );
        // Unknown session ids are dropped (malformed ones never get here: agent sockets parse
        // ids where they come in).
        assert!(
            !registry
                .send(output(machine(1), &SessionId::random(), "lost"))
                .await
                .expect("send")
        );

        assert!(
            until(|| entries(&first_events).len() == 1 && entries(&other_events).len() == 1).await
        );
        assert_eq!(
            entries(&first_events),
            vec![TerminalEvent::Output("one".into())]
        );
        assert_eq!(
            entries(&other_events),
            vec![TerminalEvent::Output("two".into())]
        );
        assert!(entries(&second_events).is_empty());

        registry
            .send(DropTerminal {
                session_id: first.clone(),
            })
            .await
            .expect("send");
        assert!(
            !registry
                .send(output(machine(1), &first, "late"))
                .await
                .expect("send")
        );
    }

    #[actix::test]
    async fn agent_disconnect_tells_that_machines_sessions_only() {
        let (registry, _) = registry(Duration::from_secs(60));
        let (agent, _) = probe::<ToAgent>();
        let conn = ConnectionId::next();
        registry
            .send(register(machine(1), conn, "h".into(), agent))
            .await
            .expect("send");
        let (_, mine) = terminal(&registry, machine(1));
        let (_, theirs) = terminal(&registry, machine(2));
        registry
            .send(UnregisterAgent {
                machine_id: machine(1),
                connection_id: conn,
            })
            .await
            .expect("send");
        assert!(until(|| entries(&mine) == vec![TerminalEvent::AgentGone]).await);
        assert!(entries(&theirs).is_empty());
    }

    #[actix::test]
    async fn command_output_reaches_its_run_from_its_machine_only() {
        let (registry, _) = registry(Duration::from_secs(60));
        let (chunks, received) = probe::<CommandChunk>();
        let command_id = CommandId::random();
        registry.do_send(RouteCommand {
            command_id: command_id.clone(),
            machine_id: machine(1),
            chunks,
        });
        let chunk = CommandChunk {
            output: "up 3 days".into(),
            completed: true,
            exit_code: 3,
        };
        let from = |machine_id| RouteCommandResponse {
            machine_id,
            command_id: command_id.clone(),
            chunk: chunk.clone(),
        };
        assert!(!registry.send(from(machine(2))).await.expect("send"));
        assert!(registry.send(from(machine(1))).await.expect("send"));
        assert!(until(|| entries(&received) == vec![chunk.clone()]).await);
    }
}
