//! Shared steps of the terminal and command tests.

use chrono::Utc;
use fleetgate_actors::protocol::envelope::{SignedKind, verify_envelope};
use fleetgate_actors::protocol::nonce::NonceCache;
use fleetgate_entity::audit_log;
use sea_orm::EntityTrait;

use crate::agent_client::ScriptedAgent;
use crate::support::{TestServer, enroll};

/// An enrolled, registered agent: (agent, machine id, secret).
pub async fn online_agent(server: &TestServer, name: &str) -> (ScriptedAgent, String, String) {
    let (id, secret) = enroll(server, name).await;
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent.register(&secret, name).await;
    (agent, id, secret)
}

/// Verifies a signed frame the agent received; returns (kind, payload).
pub fn verified(
    frame: &serde_json::Value,
    secret: &str,
    nonces: &mut NonceCache,
) -> (SignedKind, String) {
    let envelope =
        verify_envelope(&frame.to_string(), secret, Utc::now(), nonces).expect("valid envelope");
    (envelope.kind, envelope.payload)
}

pub async fn audit_actions(server: &TestServer) -> Vec<String> {
    audit_log::Entity::find()
        .all(&server.db)
        .await
        .expect("audit")
        .into_iter()
        .map(|row| row.action)
        .collect()
}

/// Fails unless every one of `expected` is among the audited actions.
pub async fn assert_audited(server: &TestServer, expected: &[&str]) {
    let actions = audit_actions(server).await;
    for action in expected {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} not audited: {actions:?}"
        );
    }
}
