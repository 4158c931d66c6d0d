//! An operator whose connection drops comes back through another instance of the cluster and
//! gets the same shell: re-attached with the session token, output kept meanwhile replayed,
//! keystrokes and resizes still signed by the session's home and reaching the agent, output
//! reaching the new socket only, close ending it; a session that no instance runs is unknown.

use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::envelope::SignedKind;
use fleetgate_actors::protocol::nonce::NonceCache;
use fleetgate_entity::audit_log;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::agent_client::ScriptedAgent;
use crate::cluster_routing::Regions;
use crate::fixtures::verified;
use crate::support::{eventually, test_nats_url};
use crate::web_client::{WebClient, user};

/// Sends a line of shell output from `agent` for `session`.
async fn shell_says(agent: &mut ScriptedAgent, session: &str, output: &str) {
    let frame = json!({"type":"terminal_output","sessionId":session,"output":output});
    agent.send(&format!("{frame}\n")).await;
}

#[actix_web::test]
async fn a_dropped_operator_gets_the_same_shell_back_through_another_instance() {
    let Some(nats_url) = test_nats_url().await else {
        return;
    };
    let regions = Regions::start_on(nats_url).await;
    let singapore = regions.another("sgp").await;
    let (mut agent, machine, secret) = regions.machine_in_virginia("reattach-1").await;
    let (_, token) = user(
        &regions.frankfurt,
        Role::Operator,
        &[(&machine, "terminal")],
    )
    .await;
    let mut nonces = NonceCache::new(256);

    // Opened on Frankfurt (the session's home), the agent on Virginia.
    let mut web = WebClient::connect(&regions.frankfurt, &token).await;
    let (session, session_token) = web.spawn(&machine).await;
    shell_says(&mut agent, &session, "first\r\n").await;
    let first = web.next_of("terminal_output").await;
    assert_eq!(first["data"], "first\r\n");
    let seen = first["offset"].as_u64().expect("offset") + "first\r\n".len() as u64;
    web.drop_connection();

    // Output while nobody is attached waits on the home.
    shell_says(&mut agent, &session, "while away\r\n").await;

    let mut back = WebClient::connect(&singapore, &token).await;
    back.send(json!({"type":"attach_terminal","sessionToken":session_token,"offset":0}))
        .await;
    let opened = back.next_of("terminal_opened").await;
    assert_eq!(opened["sessionId"], session.as_str());
    assert_ne!(
        opened["sessionToken"], "",
        "a fresh token for the next re-attach"
    );
    let mut replayed = String::new();
    while !replayed.contains("while away") {
        let output = back.next_of("terminal_output").await;
        replayed.push_str(output["data"].as_str().expect("data"));
    }
    assert_eq!(
        replayed, "first\r\nwhile away\r\n",
        "everything after offset 0, then what waited, byte-exact and in order (seen was {seen})"
    );

    back.send(json!({"type":"terminal_input","sessionId":session,"data":"id\r"}))
        .await;
    let stdin = agent.next_of("terminal_stdin").await;
    assert_eq!(
        verified(&stdin, &secret, &mut nonces),
        (SignedKind::TerminalInput, "{\"data\":\"id\\r\"}".into()),
        "signed with the machine's secret, as before the drop"
    );
    back.send(json!({"type":"terminal_resize","sessionId":session,"cols":132,"rows":43}))
        .await;
    let resize = loop {
        let resize = agent.next_of("terminal_resize").await;
        let (_, payload) = verified(&resize, &secret, &mut nonces);
        if payload != r#"{"cols":80,"rows":24}"# {
            break payload;
        }
    };
    assert_eq!(resize, r#"{"cols":132,"rows":43}"#);
    shell_says(&mut agent, &session, "uid=0(root)\r\n").await;
    assert_eq!(
        back.next_of("terminal_output").await["data"],
        "uid=0(root)\r\n"
    );

    back.send(json!({"type":"close_terminal","sessionId":session}))
        .await;
    assert_eq!(back.next_of("terminal_closed").await["reason"], "closed");

    let db = regions.frankfurt.db.clone();
    let audited = eventually(|| {
        let (db, session) = (db.clone(), session.clone());
        async move {
            audit_log::Entity::find()
                .filter(audit_log::Column::Action.eq("terminal.attach"))
                .all(&db)
                .await
                .expect("audit")
                .iter()
                .any(|row| row.detail["sessionId"] == session.as_str())
        }
    })
    .await;
    assert!(audited, "the re-attach is audited");

    // The session is gone everywhere: its token finds nothing, through any instance.
    let mut late = WebClient::connect(regions.virginia(), &token).await;
    late.send(json!({"type":"attach_terminal","sessionToken":session_token}))
        .await;
    let refused = late.next_of("error").await;
    assert_eq!(refused["code"], "unknown_session");

    singapore.stop().await;
    regions.stop().await;
}

#[actix_web::test]
async fn a_session_whose_agent_is_on_its_home_is_reattached_from_elsewhere_for_its_owner_only() {
    let Some(nats_url) = test_nats_url().await else {
        return;
    };
    let regions = Regions::start_on(nats_url).await;
    let (mut agent, machine, _secret) = regions.machine_in(&regions.frankfurt, "reattach-2").await;
    let grants = [(machine.as_str(), "terminal")];
    let (_, owner) = user(&regions.frankfurt, Role::Operator, &grants).await;
    let (_, other) = user(&regions.frankfurt, Role::Operator, &grants).await;

    let mut web = WebClient::connect(&regions.frankfurt, &owner).await;
    let (session, session_token) = web.spawn(&machine).await;
    web.drop_connection();

    // Another operator holding the token is refused on the instance they came through.
    let mut thief = WebClient::connect(regions.virginia(), &other).await;
    thief
        .send(json!({"type":"attach_terminal","sessionToken":session_token}))
        .await;
    assert_eq!(thief.next_of("error").await["code"], "forbidden");

    let mut back = WebClient::connect(regions.virginia(), &owner).await;
    back.send(json!({"type":"attach_terminal","sessionToken":session_token}))
        .await;
    assert_eq!(
        back.next_of("terminal_opened").await["sessionId"],
        session.as_str()
    );
    back.send(json!({"type":"terminal_input","sessionId":session,"data":"pwd\r"}))
        .await;
    agent.next_of("terminal_stdin").await;
    shell_says(&mut agent, &session, "/root\r\n").await;
    assert_eq!(back.next_of("terminal_output").await["data"], "/root\r\n");
    // The thief's socket, still open, never sees the output, and its input goes nowhere.
    thief
        .send(json!({"type":"terminal_input","sessionId":session,"data":"rm -rf /\r"}))
        .await;
    assert_eq!(thief.next_of("error").await["code"], "unknown_session");

    // The owner drops again and comes back through the home itself.
    back.drop_connection();
    let mut home = WebClient::connect(&regions.frankfurt, &owner).await;
    home.send(json!({"type":"attach_terminal","sessionToken":session_token}))
        .await;
    home.next_of("terminal_opened").await;
    shell_says(&mut agent, &session, "home again\r\n").await;
    assert_eq!(
        home.next_of("terminal_output").await["data"],
        "home again\r\n"
    );
    agent.drop_connection();
    assert_eq!(
        home.next_of("terminal_closed").await["reason"],
        "agent_disconnected"
    );
    regions.stop().await;
}
