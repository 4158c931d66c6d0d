//! Terminals end to end: web client → fleetgate → scripted agent and back.

use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::SessionId;
use fleetgate_actors::protocol::envelope::SignedKind;
use fleetgate_actors::protocol::nonce::NonceCache;
use fleetgate_entity::terminal_sessions;
use sea_orm::EntityTrait;
use serde_json::json;

use crate::fixtures::{audit_actions, online_agent, verified};
use crate::support::{eventually, eventually_within, spawn_app, spawn_app_with};
use crate::web_client::{WebClient, user};

#[actix_web::test]
async fn terminal_round_trip_is_signed_and_reaches_the_owner() {
    let server = spawn_app().await;
    let (mut agent, machine, secret) = online_agent(&server, "web-1").await;
    let (_, token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;
    let mut nonces = NonceCache::new(256);

    web.send(
        json!({"type":"spawn_terminal","machineId":machine,"cols":120,"rows":40,"requestId":"r1"}),
    )
    .await;
    let spawn = agent.next_of("spawn_shell").await;
    let session = spawn["data"]["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_owned();
    assert_eq!(session.len(), 32);
    let resize = agent.next_of("terminal_resize").await;
    assert_eq!(
        verified(&resize, &secret, &mut nonces),
        (
            SignedKind::TerminalResize,
            r#"{"cols":120,"rows":40}"#.into()
        )
    );
    let opened = web.next_of("terminal_opened").await;
    assert_eq!(opened["sessionId"], session.as_str());
    assert_eq!(opened["requestId"], "r1");

    web.send(json!({"type":"terminal_input","sessionId":session,"data":"ls -la\r"}))
        .await;
    let stdin = agent.next_of("terminal_stdin").await;
    assert_eq!(stdin["data"]["sessionId"], session.as_str());
    assert_eq!(
        verified(&stdin, &secret, &mut nonces),
        (SignedKind::TerminalInput, "{\"data\":\"ls -la\\r\"}".into())
    );

    agent
        .send(&format!(
            "{}\n",
            json!({"type":"terminal_output","sessionId":session,"output":"total 0\r\n"})
        ))
        .await;
    let output = web.next_of("terminal_output").await;
    assert_eq!(output["data"], "total 0\r\n");
    // A v1 agent may have dropped the first resize: the first output brings the size again.
    let again = agent.next_of("terminal_resize").await;
    assert_eq!(
        verified(&again, &secret, &mut nonces).1,
        r#"{"cols":120,"rows":40}"#
    );

    web.send(json!({"type":"terminal_resize","sessionId":session,"cols":100,"rows":30}))
        .await;
    let resize = agent.next_of("terminal_resize").await;
    assert_eq!(
        verified(&resize, &secret, &mut nonces).1,
        r#"{"cols":100,"rows":30}"#
    );

    web.send(json!({"type":"close_terminal","sessionId":session}))
        .await;
    assert_eq!(web.next_of("terminal_closed").await["reason"], "closed");
    let db = server.db.clone();
    let recorded = eventually(|| {
        let (db, session) = (db.clone(), session.clone());
        async move {
            terminal_sessions::Entity::find_by_id(SessionId::parse(&session).expect("session id"))
                .one(&db)
                .await
                .expect("q")
                .is_some_and(|row| {
                    row.close_reason.as_deref() == Some("closed")
                        && row.bytes_in == 7
                        && row.bytes_out == 9
                })
        }
    })
    .await;
    assert!(recorded, "session recorded with byte counts and reason");
    // The audit trail is written by its own actor: wait for both entries.
    let audited = eventually(|| async {
        let actions = audit_actions(&server).await;
        actions.contains(&"terminal.open".to_owned())
            && actions.contains(&"terminal.close".to_owned())
    })
    .await;
    assert!(audited, "{:?}", audit_actions(&server).await);
    server.stop().await;
}

#[actix_web::test]
async fn each_user_sees_only_their_own_output() {
    let server = spawn_app().await;
    let (mut agent_a, machine_a, _) = online_agent(&server, "a").await;
    let (mut agent_b, machine_b, _) = online_agent(&server, "b").await;
    let (_, alice_token) = user(&server, Role::Operator, &[(&machine_a, "terminal")]).await;
    let (_, bob_token) = user(
        &server,
        Role::Operator,
        &[(&machine_a, "terminal"), (&machine_b, "terminal")],
    )
    .await;
    let mut alice = WebClient::connect(&server, &alice_token).await;
    let mut bob = WebClient::connect(&server, &bob_token).await;

    let (alice_a, _) = alice.spawn(&machine_a).await;
    let (bob_a, _) = bob.spawn(&machine_a).await;
    let (bob_b, _) = bob.spawn(&machine_b).await;
    for session in [&alice_a, &bob_a] {
        agent_a.send(&json!({"type":"terminal_output","sessionId":session,"output":format!("for {session}")}).to_string()).await;
    }
    agent_b
        .send(
            &json!({"type":"terminal_output","sessionId":bob_b,"output":format!("for {bob_b}")})
                .to_string(),
        )
        .await;
    // Agent B naming a session on machine A must not reach anyone.
    agent_b
        .send(
            &json!({"type":"terminal_output","sessionId":alice_a,"output":"injected"}).to_string(),
        )
        .await;

    let alice_out = alice.next_of("terminal_output").await;
    assert_eq!(
        (alice_out["sessionId"].as_str(), alice_out["data"].as_str()),
        (
            Some(alice_a.as_str()),
            Some(format!("for {alice_a}").as_str())
        )
    );
    let mut bob_seen = Vec::new();
    for _ in 0..2 {
        let out = bob.next_of("terminal_output").await;
        assert_eq!(
            out["data"],
            format!("for {}", out["sessionId"].as_str().expect("id"))
        );
        bob_seen.push(out["sessionId"].as_str().expect("id").to_owned());
    }
    bob_seen.sort();
    let mut expected = vec![bob_a.clone(), bob_b.clone()];
    expected.sort();
    assert_eq!(bob_seen, expected);

    // Bob cannot type into Alice's session, even knowing its id.
    bob.send(
        json!({"type":"terminal_input","sessionId":alice_a,"data":"whoami\r","requestId":"x"}),
    )
    .await;
    let refused = bob.next_of("error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["requestId"].as_str()),
        (Some("unknown_session"), Some("x"))
    );
    // And nothing else arrived for Alice: the next thing she sees is her own close.
    alice
        .send(json!({"type":"close_terminal","sessionId":alice_a}))
        .await;
    let next = alice.next().await.expect("message");
    assert_eq!(
        next["type"], "terminal_closed",
        "no injected or foreign output reached alice: {next}"
    );
    server.stop().await;
}

#[actix_web::test]
async fn a_dropped_owner_can_reattach_within_the_grace_period() {
    let server = spawn_app_with(|s| s.limits.reattach_grace_secs = 10).await;
    let (mut agent, machine, _) = online_agent(&server, "re").await;
    let (_, token) = user(&server, Role::Admin, &[]).await;
    let (_, other_token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;
    let (session, session_token) = web.spawn(&machine).await;
    web.drop_connection();
    // Output the server routes before it notices the drop goes to the dying socket (there is no
    // client acknowledgement in the protocol); send it once the drop has been seen.
    assert!(
        eventually(|| async {
            audit_actions(&server)
                .await
                .contains(&"ws.disconnect".to_owned())
        })
        .await
    );
    agent
        .send(
            &json!({"type":"terminal_output","sessionId":session,"output":"kept for you"})
                .to_string(),
        )
        .await;

    let mut stranger = WebClient::connect(&server, &other_token).await;
    stranger
        .send(json!({"type":"attach_terminal","sessionToken":session_token}))
        .await;
    assert_eq!(stranger.next_of("error").await["code"], "forbidden");
    let mut tampered = WebClient::connect(&server, &token).await;
    tampered
        .send(json!({"type":"attach_terminal","sessionToken":format!("{session_token}0")}))
        .await;
    assert_eq!(tampered.next_of("error").await["code"], "unauthenticated");

    let mut again = WebClient::connect(&server, &token).await;
    again
        .send(json!({"type":"attach_terminal","sessionToken":session_token}))
        .await;
    assert_eq!(
        again.next_of("terminal_opened").await["sessionId"],
        session.as_str()
    );
    assert_eq!(
        again.next_of("terminal_output").await["data"],
        "kept for you"
    );

    // Dropped again and not reattached: the session ends after the grace period.
    again.drop_connection();
    let db = server.db.clone();
    assert!(
        eventually_within(std::time::Duration::from_secs(30), || {
            let (db, session) = (db.clone(), session.clone());
            async move {
                terminal_sessions::Entity::find_by_id(
                    SessionId::parse(&session).expect("session id"),
                )
                .one(&db)
                .await
                .expect("q")
                .is_some_and(|row| row.close_reason.as_deref() == Some("owner_gone"))
            }
        })
        .await
    );
    let refusals_audited = eventually(|| async {
        let actions = audit_actions(&server).await;
        actions
            .iter()
            .filter(|a| *a == "terminal.attach_refused")
            .count()
            >= 2
    })
    .await;
    assert!(refusals_audited, "{:?}", audit_actions(&server).await);
    server.stop().await;
}

#[actix_web::test]
async fn agent_disconnect_closes_its_terminals() {
    let server = spawn_app().await;
    let (agent, machine, _) = online_agent(&server, "gone").await;
    let (_, token) = user(&server, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&server, &token).await;
    web.spawn(&machine).await;
    agent.drop_connection();
    assert_eq!(
        web.next_of("terminal_closed").await["reason"],
        "agent_disconnected"
    );
    server.stop().await;
}
