//! Status transitions across the cluster: the Registry of the instance an agent is connected to
//! hands each transition to its bridge, which publishes it sealed on
//! `fg.<cluster>.machine.<machineId>.status`; every other instance's bridge opens what arrives
//! there (a message without the cluster key, moved, stale or replayed is refused and logged as
//! a security event) and hands it to its own Registry, which tells its status subscribers.

use actix::{AsyncContext, Context, Handler, Message, Recipient};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::bridge::NatsBridge;
use super::refusals::report_refusal;
use super::subscription::Subscription;
use crate::protocol::MachineId;
use crate::protocol::cluster::{open, seal};
use crate::protocol::nonce::NonceCache;
use crate::registry::MachineStatusChanged;
use crate::security_events::SecurityEvents;

/// Sealed status messages remembered against replays.
const STATUS_NONCES: usize = 100_000;

/// A transition of a machine connected to another instance.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct RemoteStatus(pub MachineStatusChanged);

/// From now on, hand transitions published by other instances to `listener`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ListenForStatus {
    /// Usually the Registry.
    pub listener: Recipient<RemoteStatus>,
    /// Where refused messages are reported.
    pub security: SecurityEvents,
}

/// A transition as published.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusWire {
    machine_id: String,
    hostname: String,
    online: bool,
    at: DateTime<Utc>,
}

/// The subject of `machine`'s transitions in `cluster`.
pub fn status_subject(cluster: &str, machine: MachineId) -> String {
    format!("fg.{cluster}.machine.{machine}.status")
}

impl Handler<MachineStatusChanged> for NatsBridge {
    type Result = ();

    /// Publishes a transition of a machine connected here.
    fn handle(&mut self, change: MachineStatusChanged, ctx: &mut Context<Self>) {
        let link = self.link().clone();
        let machine_id = change.machine_id;
        let wire = StatusWire {
            machine_id: machine_id.to_string(),
            hostname: change.hostname,
            online: change.online,
            at: change.at,
        };
        ctx.spawn(actix::fut::wrap_future(async move {
            let body = match serde_json::to_string(&wire) {
                Ok(body) => body,
                Err(err) => {
                    tracing::error!(machine = %machine_id, error = %err, "status not serialized");
                    return;
                }
            };
            let subject = status_subject(&link.cluster, machine_id);
            let sealed = seal(&link.key, &link.instance, &subject, &body, Utc::now());
            if let Err(err) = link.client.publish(subject, sealed.into()).await {
                tracing::warn!(machine = %machine_id, error = %err, "status not published");
            }
        }));
    }
}

impl Handler<ListenForStatus> for NatsBridge {
    type Result = ();

    fn handle(&mut self, listen: ListenForStatus, ctx: &mut Context<Self>) {
        let link = self.link().clone();
        ctx.spawn(actix::fut::wrap_future(async move {
            let wildcard = format!("fg.{}.machine.*.status", link.cluster);
            let mut messages = match Subscription::open(&link.client, wildcard).await {
                Ok(messages) => messages,
                Err(err) => {
                    tracing::error!(error = %err, "cannot subscribe to cluster status");
                    return;
                }
            };
            let mut nonces = NonceCache::new(STATUS_NONCES);
            while let Some(message) = messages.next().await {
                let subject = message.subject.as_str();
                let opened = open(
                    &link.key,
                    subject,
                    &message.payload,
                    Utc::now(),
                    &mut nonces,
                );
                let opened = match opened {
                    Ok(opened) => opened,
                    Err(refusal) => {
                        report_refusal(&listen.security, subject, refusal);
                        continue;
                    }
                };
                if opened.from == link.instance {
                    continue;
                }
                let wire = serde_json::from_str::<StatusWire>(&opened.body).ok();
                let Some((wire, machine_id)) =
                    wire.and_then(|w| MachineId::parse(&w.machine_id).map(|id| (w, id)))
                else {
                    tracing::warn!(from = %opened.from, "unreadable cluster status message");
                    continue;
                };
                if status_subject(&link.cluster, machine_id) != subject {
                    tracing::warn!(
                        security = true,
                        subject,
                        "status for another machine refused"
                    );
                    continue;
                }
                listen.listener.do_send(RemoteStatus(MachineStatusChanged {
                    machine_id,
                    hostname: wire.hostname,
                    online: wire.online,
                    at: wire.at,
                }));
            }
        }));
    }
}
