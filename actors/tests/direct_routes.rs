//! DirectRoutes: an agent socket's own terminal table.

mod common;

use fleetgate_actors::direct_routes::DirectRoutes;
use fleetgate_actors::protocol::SessionId;
use fleetgate_actors::terminal::TerminalEvent;

use actix::AsyncContext;

use common::{entries, probe, until};

#[actix::test]
async fn a_routed_session_gets_its_output_and_unknown_sessions_are_handed_back() {
    let (terminal, seen) = probe::<TerminalEvent>();
    let session = SessionId::random();
    let mut routes = DirectRoutes::default();
    routes.add(session.clone(), terminal);

    assert_eq!(
        routes.deliver(&session, TerminalEvent::Output("ls\r\n".into())),
        Ok(())
    );
    assert!(until(|| entries(&seen).len() == 1).await);
    assert_eq!(entries(&seen), vec![TerminalEvent::Output("ls\r\n".into())]);

    let other = SessionId::random();
    let handed_back = routes.deliver(&other, TerminalEvent::Output("x".into()));
    assert_eq!(handed_back, Err(TerminalEvent::Output("x".into())));
    assert_eq!(
        routes.deliver(&SessionId::random(), TerminalEvent::Exited(0)),
        Err(TerminalEvent::Exited(0))
    );
}

#[actix::test]
async fn an_exit_or_a_drop_ends_the_route() {
    let (terminal, seen) = probe::<TerminalEvent>();
    let (exited, dropped) = (SessionId::random(), SessionId::random());
    let mut routes = DirectRoutes::default();
    routes.add(exited.clone(), terminal.clone());
    routes.add(dropped.clone(), terminal);

    assert_eq!(routes.deliver(&exited, TerminalEvent::Exited(3)), Ok(()));
    assert!(until(|| entries(&seen).len() == 1).await);
    assert!(
        routes
            .deliver(&exited, TerminalEvent::Output("late".into()))
            .is_err()
    );

    routes.remove(&dropped);
    assert!(
        routes
            .deliver(&dropped, TerminalEvent::Output("late".into()))
            .is_err()
    );
    assert_eq!(entries(&seen), vec![TerminalEvent::Exited(3)]);
}

#[actix::test]
async fn a_stopped_terminal_is_forgotten_and_its_output_handed_back() {
    // A mailbox whose actor never runs: its terminal is gone.
    let never_run = actix::Context::<common::Probe<TerminalEvent>>::new();
    let events = never_run.address().recipient();
    drop(never_run);
    let session = SessionId::random();
    let mut routes = DirectRoutes::default();
    routes.add(session.clone(), events.clone());
    assert!(until(|| !events.connected()).await);
    let handed_back = routes.deliver(&session, TerminalEvent::Output("x".into()));
    assert_eq!(handed_back, Err(TerminalEvent::Output("x".into())));
}
