//! Operators on one instance working on machines whose agents are connected to others, over a
//! real NATS: the machine listed with its region; terminals on Virginia's machine from Frankfurt
//! (round trip, resize, close, the agent leaving) and a command on Singapore's (streamed, exit
//! code stored); output isolation between instances; a viewer refused with nothing sent towards
//! the agent; and a rogue NATS publisher whose forgeries and replays reach no agent and no
//! operator.

use std::time::Duration;

use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::envelope::SignedKind;
use fleetgate_actors::protocol::nonce::NonceCache;
use fleetgate_actors::protocol::{CommandId, MachineId};
use fleetgate_actors::registry::OpenLink;
use fleetgate_entity::{audit_log, commands};
use futures_util::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::agent_client::ScriptedAgent;
use crate::api_client::call;
use crate::cluster::clustered;
use crate::fixtures::verified;
use crate::support::{TestServer, enroll, eventually, spawn_app_with, test_nats_url};
use crate::web_client::{WebClient, user};

/// Instances of one cluster sharing a database: Frankfurt, Virginia, and more on demand (agents
/// are offline after a minute without heartbeats, longer than any of these tests).
pub(crate) struct Regions {
    nats_url: String,
    pub(crate) cluster: String,
    pub(crate) frankfurt: TestServer,
    virginia: Option<TestServer>,
}

/// The cluster key of every instance.
const CLUSTER_KEY: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

impl Regions {
    /// Both instances, or `None` when there is no NATS to use.
    async fn start() -> Option<Self> {
        Some(Self::start_on(test_nats_url().await?).await)
    }

    /// Both instances on the NATS at `nats_url`.
    pub(crate) async fn start_on(nats_url: String) -> Self {
        let cluster = format!("t{}", uuid::Uuid::new_v4().simple());
        let frankfurt = spawn_app_with(|s| {
            clustered(s, &nats_url, &cluster, "fra", CLUSTER_KEY);
            s.agents.offline_after_secs = 60;
        })
        .await;
        let mut regions = Self {
            nats_url,
            cluster,
            virginia: None,
            frankfurt,
        };
        regions.virginia = Some(regions.another("iad").await);
        regions
    }

    /// Virginia.
    pub(crate) fn virginia(&self) -> &TestServer {
        self.virginia.as_ref().expect("started with Virginia")
    }

    /// One more instance of the cluster, in `region`: Frankfurt's database and secrets (JWT
    /// key, data key, cluster key), its own port.
    pub(crate) async fn another(&self, region: &str) -> TestServer {
        let (database, schema) = (
            self.frankfurt.settings.database_url(),
            self.frankfurt.settings.database.schema.clone(),
        );
        let secrets_file = fleetgate::secrets::SECRETS_FILE;
        let shared_secrets = self.frankfurt.settings.storage.data_dir.join(secrets_file);
        spawn_app_with(|s| {
            clustered(s, &self.nats_url, &self.cluster, region, CLUSTER_KEY);
            s.agents.offline_after_secs = 60;
            std::fs::copy(&shared_secrets, s.storage.data_dir.join(secrets_file))
                .expect("shared secrets");
            s.database.url = database;
            s.database.schema = schema;
        })
        .await
    }

    /// A machine whose agent is connected to Virginia, once Frankfurt can reach it:
    /// (agent, machine id, secret).
    pub(crate) async fn machine_in_virginia(&self, name: &str) -> (ScriptedAgent, String, String) {
        self.machine_in(self.virginia(), name).await
    }

    /// A machine whose agent is connected to `instance`, once Frankfurt can reach it.
    pub(crate) async fn machine_in(
        &self,
        instance: &TestServer,
        name: &str,
    ) -> (ScriptedAgent, String, String) {
        let (machine, secret) = enroll(instance, name).await;
        let mut agent = ScriptedAgent::connect(&instance.ws_url("/ws/agent")).await;
        agent.register(&secret, name).await;
        let machine_id = MachineId::parse(&machine).expect("id");
        let registry = self.frankfurt.services.registry.clone();
        let reachable = eventually(|| {
            let registry = registry.clone();
            async move {
                registry
                    .send(OpenLink { machine_id })
                    .await
                    .expect("registry")
                    .is_ok()
            }
        })
        .await;
        assert!(
            reachable,
            "Frankfurt finds the machine connected to {name}'s instance"
        );
        (agent, machine, secret)
    }

    /// A raw NATS client, as a rogue publisher or listener would have.
    async fn rogue(&self) -> async_nats::Client {
        async_nats::connect(self.nats_url.as_str())
            .await
            .expect("NATS")
    }

    pub(crate) async fn stop(self) {
        let jetstream = async_nats::jetstream::new(self.rogue().await);
        for bucket in ["presence", "instances"] {
            let _ = jetstream
                .delete_key_value(format!("fg_{}_{bucket}", self.cluster))
                .await;
        }
        if let Some(virginia) = self.virginia {
            virginia.stop().await;
        }
        self.frankfurt.stop().await;
    }
}

#[actix_web::test]
async fn an_operator_on_one_instance_works_on_machines_connected_to_two_others() {
    let Some(regions) = Regions::start().await else {
        return;
    };
    let (mut agent, machine, secret) = regions.machine_in_virginia("remote-1").await;
    let singapore = regions.another("sgp").await;
    let (mut sgp_agent, sgp_machine, sgp_secret) = regions.machine_in(&singapore, "remote-2").await;
    let grants = [
        (machine.as_str(), "terminal"),
        (sgp_machine.as_str(), "command"),
    ];
    let (_, token) = user(&regions.frankfurt, Role::Operator, &grants).await;
    let mut web = WebClient::connect(&regions.frankfurt, &token).await;
    let mut nonces = NonceCache::new(256);

    web.send(json!({"type":"spawn_terminal","machineId":machine,"cols":120,"rows":40}))
        .await;
    let spawn = agent.next_of("spawn_shell").await;
    let session = spawn["data"]["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_owned();
    let resize = agent.next_of("terminal_resize").await;
    assert_eq!(
        verified(&resize, &secret, &mut nonces),
        (
            SignedKind::TerminalResize,
            r#"{"cols":120,"rows":40}"#.into()
        ),
        "signed by Frankfurt with the machine's secret"
    );
    let opened = web.next_of("terminal_opened").await;
    assert_eq!(opened["sessionId"], session.as_str());

    web.send(json!({"type":"terminal_input","sessionId":session,"data":"uname -a\r"}))
        .await;
    let stdin = agent.next_of("terminal_stdin").await;
    assert_eq!(
        verified(&stdin, &secret, &mut nonces),
        (
            SignedKind::TerminalInput,
            "{\"data\":\"uname -a\\r\"}".into()
        )
    );
    let output = json!({"type":"terminal_output","sessionId":session,"output":"Linux \u{1b}[1mvm\u{1b}[0m \"q\"\r\n"});
    agent.send(&format!("{output}\n")).await;
    let shown = web.next_of("terminal_output").await;
    assert_eq!(
        shown["data"], "Linux \u{1b}[1mvm\u{1b}[0m \"q\"\r\n",
        "byte-exact across instances"
    );
    let again = agent.next_of("terminal_resize").await;
    assert_eq!(
        verified(&again, &secret, &mut nonces).1,
        r#"{"cols":120,"rows":40}"#
    );

    web.send(json!({"type":"terminal_resize","sessionId":session,"cols":90,"rows":30}))
        .await;
    let resize = agent.next_of("terminal_resize").await;
    assert_eq!(
        verified(&resize, &secret, &mut nonces).1,
        r#"{"cols":90,"rows":30}"#
    );
    web.send(json!({"type":"close_terminal","sessionId":session}))
        .await;
    assert_eq!(web.next_of("terminal_closed").await["reason"], "closed");

    // A command on a third instance's machine.
    web.send(json!({"type":"execute_command","machineId":sgp_machine,"command":"exit 4"}))
        .await;
    let execute = sgp_agent.next_of("execute_command").await;
    let (kind, payload) = verified(&execute, &sgp_secret, &mut NonceCache::new(16));
    assert_eq!(kind, SignedKind::ExecuteCommand);
    let payload: serde_json::Value = serde_json::from_str(&payload).expect("payload");
    let command_id = payload["commandId"].as_str().expect("commandId").to_owned();
    for (output, completed, code) in [("one ", false, 0), ("two", false, 0), ("", true, 4)] {
        let chunk = json!({"type":"command_response","machineId":sgp_machine,"commandId":command_id,
            "output":output,"exitCode":code,"completed":completed});
        sgp_agent.send(&format!("{chunk}\n")).await;
    }
    let mut streamed = String::new();
    let last = loop {
        let message = web.next_of("command_output").await;
        streamed.push_str(message["output"].as_str().unwrap_or(""));
        if message["completed"] == true {
            break message;
        }
    };
    assert_eq!(
        (streamed.as_str(), last["exitCode"].as_i64()),
        ("one two", Some(4))
    );
    let db = regions.frankfurt.db.clone();
    let stored = eventually(|| {
        let (db, id) = (db.clone(), CommandId::parse(&command_id).expect("id"));
        async move {
            commands::Entity::find_by_id(id)
                .one(&db)
                .await
                .expect("query")
                .is_some_and(|row| row.exit_code == Some(4) && row.output == "one two")
        }
    })
    .await;
    assert!(stored, "the result is stored with its exit code and output");

    singapore.stop().await;

    // The agent leaves Virginia: a terminal open from Frankfurt ends with the reason.
    web.send(json!({"type":"spawn_terminal","machineId":machine,"cols":80,"rows":24}))
        .await;
    agent.next_of("spawn_shell").await;
    web.next_of("terminal_opened").await;
    agent.drop_connection();
    assert_eq!(
        web.next_of("terminal_closed").await["reason"],
        "agent_disconnected"
    );
    regions.stop().await;
}

#[actix_web::test]
async fn output_stays_with_its_owner_across_instances_and_a_viewer_sends_nothing() {
    let Some(regions) = Regions::start().await else {
        return;
    };
    let (mut agent, machine, _) = regions.machine_in_virginia("shared-1").await;

    // Frankfurt lists the machine online, in Virginia's region, and says so to subscribers.
    let (_, admin) = user(&regions.frankfurt, Role::Admin, &[]).await;
    let listed = eventually(|| async {
        let (status, page) = call(&regions.frankfurt, "GET", "/machines", Some(&admin), None).await;
        status == 200
            && page["items"].as_array().expect("items").iter().any(|m| {
                m["id"] == machine.as_str() && m["status"] == "online" && m["region"] == "iad"
            })
    })
    .await;
    assert!(listed, "GET /machines on Frankfurt shows the region");
    let mut watcher = WebClient::connect(&regions.frankfurt, &admin).await;
    watcher.send(json!({"type":"subscribe_machines"})).await;
    let snapshot = watcher.next_of("machine_status").await;
    assert_eq!(
        (snapshot["status"].as_str(), snapshot["region"].as_str()),
        (Some("online"), Some("iad"))
    );

    let rogue = regions.rogue().await;
    let mut towards_agents = rogue
        .subscribe(format!("fg.{}.agent.>", regions.cluster))
        .await
        .expect("subscribe");
    rogue.flush().await.expect("flush");

    let (_, viewer) = user(&regions.frankfurt, Role::Operator, &[(&machine, "view")]).await;
    let mut viewer = WebClient::connect(&regions.frankfurt, &viewer).await;
    viewer
        .send(json!({"type":"spawn_terminal","machineId":machine,"cols":80,"rows":24}))
        .await;
    assert_eq!(viewer.next_of("error").await["code"], "forbidden");
    viewer
        .send(json!({"type":"execute_command","machineId":machine,"command":"id"}))
        .await;
    assert_eq!(viewer.next_of("error").await["code"], "forbidden");
    let published = tokio::time::timeout(Duration::from_millis(700), towards_agents.next()).await;
    assert!(
        published.is_err(),
        "nothing was published towards the agent"
    );
    assert!(!agent.receives_within(Duration::from_millis(200)).await);

    let grants = [(machine.as_str(), "terminal")];
    let (_, x_token) = user(&regions.frankfurt, Role::Operator, &grants).await;
    let (_, y_token) = user(regions.virginia(), Role::Operator, &grants).await;
    let mut x = WebClient::connect(&regions.frankfurt, &x_token).await;
    let mut y = WebClient::connect(regions.virginia(), &y_token).await;
    let (x_session, _) = x.spawn(&machine).await;
    let (y_session, _) = y.spawn(&machine).await;
    for (session, text) in [(&y_session, "only for y"), (&x_session, "only for x")] {
        let output = json!({"type":"terminal_output","sessionId":session,"output":text});
        agent.send(&format!("{output}\n")).await;
    }
    assert_eq!(x.next_of("terminal_output").await["data"], "only for x");
    assert_eq!(y.next_of("terminal_output").await["data"], "only for y");
    let output = json!({"type":"terminal_output","sessionId":x_session,"output":"x again"});
    agent.send(&format!("{output}\n")).await;
    assert_eq!(x.next_of("terminal_output").await["data"], "x again");
    let output = json!({"type":"terminal_output","sessionId":y_session,"output":"y again"});
    agent.send(&format!("{output}\n")).await;
    assert_eq!(
        y.next_of("terminal_output").await["data"],
        "y again",
        "nothing of x's reached y in between"
    );
    regions.stop().await;
}

#[actix_web::test]
async fn forged_and_replayed_cluster_messages_reach_no_agent_and_are_security_events() {
    let Some(regions) = Regions::start().await else {
        return;
    };
    let (mut agent, machine, _) = regions.machine_in_virginia("target-1").await;
    let rogue = regions.rogue().await;
    let mut captured = rogue
        .subscribe(format!("fg.{}.>", regions.cluster))
        .await
        .expect("subscribe");
    rogue.flush().await.expect("flush");

    // Legitimate traffic: a terminal (spawn, output, resize, input) and a command.
    let (_, token) = user(&regions.frankfurt, Role::Admin, &[]).await;
    let mut web = WebClient::connect(&regions.frankfurt, &token).await;
    let (session, _) = web.spawn(&machine).await;
    let output = json!({"type":"terminal_output","sessionId":session,"output":"$ "});
    agent.send(&format!("{output}\n")).await;
    assert_eq!(web.next_of("terminal_output").await["data"], "$ ");
    web.send(json!({"type":"terminal_input","sessionId":session,"data":"rm -rf /tmp/x\r"}))
        .await;
    web.send(json!({"type":"terminal_resize","sessionId":session,"cols":70,"rows":20}))
        .await;
    web.send(json!({"type":"execute_command","machineId":machine,"command":"reboot"}))
        .await;
    agent.next_of("execute_command").await;
    let mut legit = Vec::new();
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(500), captured.next()).await
    {
        legit.push(message);
    }
    assert!(legit.len() >= 5, "captured {} messages", legit.len());
    while agent.receives_within(Duration::from_millis(300)).await {}

    // Replayed as they were, and forged: the same bodies sealed with another key, and bare.
    let wrong_key =
        fleetgate_actors::protocol::cluster::ClusterKey::from_hex(&"ab".repeat(32)).expect("key");
    let subject = format!("fg.{}.agent.{machine}.in", regions.cluster);
    let spawn = json!({"type":"spawn_shell","data":{"sessionId":"f".repeat(32)}}).to_string();
    let forged_body = json!({"kind":"frame","frame":spawn}).to_string();
    let forged = fleetgate_actors::protocol::cluster::seal(
        &wrong_key,
        "rogue",
        &subject,
        &forged_body,
        chrono::Utc::now(),
    );
    for message in &legit {
        rogue
            .publish(message.subject.clone(), message.payload.clone())
            .await
            .expect("replay");
    }
    for payload in [forged, forged_body] {
        rogue
            .publish(subject.clone(), payload.into())
            .await
            .expect("forge");
    }
    rogue.flush().await.expect("flush");
    assert!(
        !agent.receives_within(Duration::from_secs(1)).await,
        "nothing reached the agent"
    );
    let shown_again =
        tokio::time::timeout(Duration::from_millis(300), web.next_of("terminal_output"));
    assert!(
        shown_again.await.is_err(),
        "replayed output reached no operator"
    );

    let budget = regions
        .virginia()
        .settings
        .limits
        .security_events_per_minute as usize;
    let expected = (legit.len() + 2).min(budget);
    let db = regions.virginia().db.clone();
    let refused = eventually(|| {
        let db = db.clone();
        async move {
            audit_log::Entity::find()
                .filter(audit_log::Column::Action.eq("security.cluster_message_refused"))
                .all(&db)
                .await
                .expect("audit")
                .len()
                >= expected
        }
    })
    .await;
    assert!(
        refused,
        "each refusal is a security event (up to the per-minute budget)"
    );
    regions.stop().await;
}
