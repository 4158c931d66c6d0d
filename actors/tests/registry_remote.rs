//! The Registry's cluster routing at message level, against a real NATS (probe actors for the
//! agent socket, the presence lookup and the secrets): as the agent's instance it carries out
//! requests of other instances and sends the agent's output back sealed; as the operator's
//! instance it opens links to agents held elsewhere, whose frames go out sealed and named for
//! the holding instance.

mod common;

use std::time::Duration;

use actix::{Actor, Context, Handler};
use chrono::Utc;
use fleetgate_actors::agent_link::AgentLink;
use fleetgate_actors::agent_session::{RouteError, SendToAgent, ToAgent};
use fleetgate_actors::cluster::bridge::{ClusterLink, WhereIs};
use fleetgate_actors::cluster::inbound::FromCluster;
use fleetgate_actors::cluster::outbox::ClusterOutbox;
use fleetgate_actors::cluster::presence::{PresenceEntry, PresenceError};
use fleetgate_actors::cluster::view::ClusterView;
use fleetgate_actors::cluster::wire::{AgentRequest, FromAgentWire, ReplyWire, ToAgentWire};
use fleetgate_actors::protocol::agent::MachineSecret;
use fleetgate_actors::protocol::cluster::{ClusterKey, open, seal};
use fleetgate_actors::protocol::escaped::EscapedText;
use fleetgate_actors::protocol::nonce::NonceCache;
use fleetgate_actors::protocol::{ConnectionId, SessionId};
use fleetgate_actors::registry::{
    ClusterRouting, OpenLink, RegisterAgent, Registry, RegistryConfig, RouteTerminalOutput,
};
use fleetgate_actors::repo::audit::RecordAudit;
use fleetgate_actors::repo::machine::{MachineError, SetMachineStatus};
use fleetgate_actors::repo::machine_admin::MachineSecretOf;
use fleetgate_actors::security_events::SecurityEvents;
use fleetgate_actors::terminal::TerminalEvent;
use futures_util::StreamExt;

use common::nats::{cluster, nats};
use common::registry_harness::machine;
use common::{entries, probe, until};

const KEY: [u8; 32] = [7; 32];

/// Presence and secrets as a fixed answer: `machine(2)` is held by `iad-1`.
struct Directory;

impl Actor for Directory {
    type Context = Context<Self>;
}

impl Handler<WhereIs> for Directory {
    type Result = Result<Option<PresenceEntry>, PresenceError>;
    fn handle(&mut self, question: WhereIs, _: &mut Context<Self>) -> Self::Result {
        Ok((question.machine_id == machine(2)).then(|| PresenceEntry {
            instance: "iad-1".into(),
            region: "iad".into(),
            connection_id: 1,
            since: Utc::now(),
            capabilities: vec!["ordered".into()],
        }))
    }
}

impl Handler<MachineSecretOf> for Directory {
    type Result = Result<Option<MachineSecret>, MachineError>;
    fn handle(&mut self, _: MachineSecretOf, _: &mut Context<Self>) -> Self::Result {
        Ok(Some(MachineSecret::new("cd".repeat(32))))
    }
}

/// A Registry of instance `instance` in `cluster` on `client`.
fn clustered_registry(
    client: async_nats::Client,
    cluster: &str,
    instance: &str,
) -> actix::Addr<Registry> {
    let link = ClusterLink {
        client,
        key: ClusterKey::from_bytes(KEY),
        cluster: cluster.to_owned(),
        instance: instance.to_owned(),
    };
    let security = SecurityEvents::new(probe::<RecordAudit>().0, 10);
    let directory = Directory.start();
    let config = RegistryConfig {
        offline_after: Duration::from_secs(60),
        sweep_every: Duration::from_secs(1),
    };
    Registry::new(config, probe::<SetMachineStatus>().0)
        .with_cluster(ClusterRouting {
            outbox: ClusterOutbox::start(link, security),
            where_is: directory.clone().recipient(),
            secret_of: directory.recipient(),
            view: ClusterView::default(),
        })
        .start()
}

fn from_fra(request: ToAgentWire) -> FromCluster {
    FromCluster {
        machine_id: machine(1),
        from: "fra-1".into(),
        request,
    }
}

#[actix::test]
async fn requests_from_another_instance_reach_the_agent_here_and_its_output_goes_back_sealed() {
    let Some(client) = nats().await else {
        return;
    };
    let cluster = cluster();
    let registry = clustered_registry(client.clone(), &cluster, "iad-1");
    let (control, controls) = probe::<ToAgent>();
    let (frames, sent) = probe::<SendToAgent>();
    registry
        .send(RegisterAgent {
            machine_id: machine(1),
            connection_id: ConnectionId::next(),
            hostname: "h".into(),
            recipient: control,
            frames,
            secret: MachineSecret::new("ab".repeat(32)),
            capabilities: Default::default(),
            arbiter: actix::Arbiter::current(),
        })
        .await
        .expect("send");
    let session = SessionId::random();
    let subject = format!("fg.{cluster}.session.{session}.out");
    let mut out = client.subscribe(subject.clone()).await.expect("subscribe");
    client.flush().await.expect("flush");

    let routed = registry
        .send(from_fra(ToAgentWire::RouteTerminal {
            session_id: session.to_string(),
        }))
        .await
        .expect("send");
    assert_eq!(routed, Ok(()));
    let spawned = registry
        .send(from_fra(ToAgentWire::Frame {
            frame: "spawn".into(),
        }))
        .await
        .expect("send");
    assert_eq!(spawned, Ok(()));
    assert!(until(|| entries(&sent).iter().any(|f| f.frame == "spawn")).await);
    let offline = registry
        .send(FromCluster {
            machine_id: machine(3),
            ..from_fra(ToAgentWire::Frame { frame: "x".into() })
        })
        .await
        .expect("send");
    assert_eq!(
        offline,
        Err(RouteError::MachineOffline),
        "no agent of machine 3 here"
    );

    // The agent's output, by the socket's direct route and by the Registry's checked path.
    assert!(until(|| !entries(&controls).is_empty()).await);
    let Some(ToAgent::RouteTerminal { events, .. }) = entries(&controls).into_iter().next() else {
        panic!("the agent socket was given the session's route");
    };
    events.do_send(TerminalEvent::Output(EscapedText::from_text("one")));
    let via_registry = registry
        .send(RouteTerminalOutput {
            machine_id: machine(1),
            session_id: session.clone(),
            output: EscapedText::from_text("two"),
        })
        .await
        .expect("send");
    assert!(via_registry);
    let key = ClusterKey::from_bytes(KEY);
    let mut nonces = NonceCache::new(16);
    for expected in ["one", "two"] {
        let message = tokio::time::timeout(Duration::from_secs(5), out.next())
            .await
            .expect("in time")
            .expect("a message");
        let opened = open(&key, &subject, &message.payload, Utc::now(), &mut nonces)
            .expect("sealed with the cluster key");
        assert_eq!(opened.from, "iad-1");
        assert_eq!(
            FromAgentWire::terminal_event(&opened.body),
            Some(TerminalEvent::Output(EscapedText::from_text(expected)))
        );
    }

    registry
        .send(from_fra(ToAgentWire::DropTerminal {
            session_id: session.to_string(),
        }))
        .await
        .expect("send")
        .expect("dropped");
    assert!(
        until(|| entries(&controls)
            .iter()
            .any(|c| matches!(c, ToAgent::DropTerminal { session_id } if *session_id == session)))
        .await,
        "the agent socket forgets the route"
    );
}

#[actix::test]
async fn a_link_to_an_agent_held_elsewhere_sends_sealed_requests_named_for_the_holder() {
    let Some(client) = nats().await else {
        return;
    };
    let cluster = cluster();
    let registry = clustered_registry(client.clone(), &cluster, "fra-1");
    let subject = format!("fg.{cluster}.agent.{}.in", machine(2));
    let mut towards_agent = client.subscribe(subject.clone()).await.expect("subscribe");
    client.flush().await.expect("flush");

    let nowhere = registry
        .send(OpenLink {
            machine_id: machine(9),
        })
        .await
        .expect("send");
    assert_eq!(nowhere.err(), Some(RouteError::MachineOffline));
    let link = registry
        .send(OpenLink {
            machine_id: machine(2),
        })
        .await
        .expect("send")
        .expect("a link to the machine held by iad-1");
    let AgentLink::Remote(remote) = &link else {
        panic!("a remote link");
    };
    assert_eq!(
        (remote.instance.as_str(), remote.region.as_str()),
        ("iad-1", "iad")
    );
    assert!(link.capabilities().ordered, "capabilities from presence");
    assert_eq!(
        link.secret().expose(),
        "cd".repeat(32),
        "the secret to sign with"
    );

    link.post("typed".into());
    let sent = link.send("spawn".into());
    let key = ClusterKey::from_bytes(KEY);
    let mut nonces = NonceCache::new(16);
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(Duration::from_secs(5), towards_agent.next())
            .await
            .expect("in time")
            .expect("a message");
        let opened = open(&key, &subject, &message.payload, Utc::now(), &mut nonces)
            .expect("sealed with the cluster key");
        let request: AgentRequest = serde_json::from_str(&opened.body).expect("a request");
        assert_eq!(request.to.as_deref(), Some("iad-1"));
        bodies.push(request.request);
        if let Some(reply) = message.reply {
            let body = serde_json::to_string(&ReplyWire::Sent).expect("json");
            let sealed = seal(&key, "iad-1", reply.as_str(), &body, Utc::now());
            client.publish(reply, sealed.into()).await.expect("reply");
        }
    }
    assert_eq!(
        bodies,
        vec![
            ToAgentWire::Frame {
                frame: "typed".into()
            },
            ToAgentWire::Frame {
                frame: "spawn".into()
            },
        ],
        "in the order they were sent"
    );
    assert_eq!(sent.await, Ok(()), "the holder's answer");
}
