//! Joining the cluster at start-up (cluster mode only): connect to NATS, open the presence
//! bucket and start this instance's `NatsBridge` (its wiring to the Registry is in
//! `services.rs`).

use std::time::Duration;

use actix::{Actor, Addr};
use fleetgate_actors::cluster::bridge::{ClusterLink, NatsBridge};
use fleetgate_actors::cluster::presence::PresenceBook;
use fleetgate_actors::cluster::view::ClusterView;
use fleetgate_actors::protocol::cluster::ClusterKey;
use fleetgate_actors::protocol::ids::random_hex_id;

use crate::settings::{NatsAuth, Settings};

/// NATS could not be reached or JetStream refused the presence bucket.
#[derive(Debug, thiserror::Error)]
#[error("cluster: {0}")]
pub struct ClusterError(String);

/// This instance's name in the cluster: its region and a random suffix, new at every start
/// (a restarted instance is a new instance; its old entries expire).
fn instance_name(region: &str) -> String {
    format!("{region}-{}", &random_hex_id()[..8])
}

/// How long an instance's lease lives unless renewed: half the offline window, so that
/// with a sweep every quarter of it ([`sweep_every`]) the machines of a dead instance are
/// offline everywhere within `agents.offline_after_secs`.
pub fn presence_ttl(settings: &Settings) -> Duration {
    // Whole seconds: JetStream compares a bucket's configuration exactly when another instance
    // opens it, and keeps fractions of its duplicate window differently.
    Duration::from_secs((settings.agents.offline_after_secs / 2).max(1))
}

/// How often every instance sweeps for machines no instance holds any more.
pub fn sweep_every(settings: &Settings) -> Duration {
    (Duration::from_secs(settings.agents.offline_after_secs) / 4).max(Duration::from_millis(250))
}

/// This instance in the cluster: its bridge (presence, status, requests for the agents here)
/// and its link to NATS (for the outbox towards agents elsewhere).
pub struct Joined {
    /// The bridge actor.
    pub bridge: Addr<NatsBridge>,
    /// The NATS client, cluster key and names.
    pub link: ClusterLink,
    /// Where each machine's agent is, kept by the bridge.
    pub view: ClusterView,
}

/// A client of the cluster's NATS with this instance's credentials and TLS, or `None` when
/// the instance runs standalone.
pub async fn connect_nats(settings: &Settings) -> Result<Option<async_nats::Client>, ClusterError> {
    let cluster = &settings.cluster;
    if !cluster.enabled() {
        return Ok(None);
    }
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("fleetgate {}", cluster.region))
        .connection_timeout(Duration::from_secs(5))
        .require_tls(cluster.requires_tls());
    if !cluster.nats_credentials_file.is_empty() {
        options = options
            .credentials_file(&cluster.nats_credentials_file)
            .await
            .map_err(|err| {
                ClusterError(format!(
                    "cannot read cluster.nats_credentials_file {}: {err}",
                    cluster.nats_credentials_file
                ))
            })?;
    }
    if !cluster.nats_tls_ca_file.is_empty() {
        options = options.add_root_certificates(cluster.nats_tls_ca_file.clone().into());
    }
    let (url, auth) = cluster.nats_url_and_auth();
    options = match auth {
        Some(NatsAuth::UserPassword(user, password)) => options.user_and_password(user, password),
        Some(NatsAuth::Token(token)) => options.token(token),
        None => options,
    };
    let client = options.connect(url.as_str()).await.map_err(|err| {
        let url = cluster.nats_url_for_display();
        ClusterError(format!("cannot reach NATS at {url}: {err}"))
    })?;
    Ok(Some(client))
}

/// This instance in the cluster, or `None` when it runs standalone.
pub async fn join(settings: &Settings, key: &ClusterKey) -> Result<Option<Joined>, ClusterError> {
    let Some(client) = connect_nats(settings).await? else {
        return Ok(None);
    };
    let cluster = &settings.cluster;
    let jetstream = async_nats::jetstream::new(client.clone());
    let instance = instance_name(&cluster.region);
    let ttl = presence_ttl(settings);
    let presence = PresenceBook::open(&jetstream, &cluster.name, &instance, &cluster.region, ttl)
        .await
        .map_err(|err| ClusterError(err.to_string()))?;
    tracing::info!(cluster = %cluster.name, %instance, region = %cluster.region, "joined the cluster");
    let link = ClusterLink {
        client,
        key: key.clone(),
        cluster: cluster.name.clone(),
        instance,
    };
    let bridge = NatsBridge::new(link.clone(), presence, ttl);
    let view = bridge.view();
    Ok(Some(Joined {
        bridge: bridge.start(),
        link,
        view,
    }))
}
