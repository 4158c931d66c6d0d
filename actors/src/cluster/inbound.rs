//! Requests for the agents connected here, from the other instances: the bridge listens on
//! `fg.<cluster>.agent.*.in`, opens each message with the cluster key (a forged, moved, stale
//! or replayed one is refused as a security event and reaches no agent), and hands what it
//! carries to the Registry, in order, if it is meant for this instance; requests are answered
//! on their reply subject.

use actix::{AsyncContext, Context, Handler, Message, Recipient};
use chrono::Utc;

use super::bridge::{ClusterLink, NatsBridge};
use super::sealed_inbox::receive_sealed;
use super::wire::{AgentRequest, ReplyWire, ToAgentWire, agent_in_wildcard, machine_of_agent_in};
use crate::agent_session::RouteError;
use crate::protocol::MachineId;
use crate::protocol::cluster::seal;
use crate::security_events::SecurityEvents;

/// Sealed requests remembered against replays (all machines of this instance together).
const AGENT_IN_NONCES: usize = 200_000;

/// A request of another instance for an agent: answered with whether the agent's socket here
/// took it.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "Result<(), RouteError>")]
pub struct FromCluster {
    /// The machine whose subject it came on.
    pub machine_id: MachineId,
    /// The instance that sent it.
    pub from: String,
    /// What it asks.
    pub request: ToAgentWire,
}

/// From now on, hand requests for agents connected here to `registry`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ListenForAgents {
    /// Usually the Registry.
    pub registry: Recipient<FromCluster>,
    /// Where refused messages are reported.
    pub security: SecurityEvents,
}

impl Handler<ListenForAgents> for NatsBridge {
    type Result = ();

    fn handle(&mut self, listen: ListenForAgents, ctx: &mut Context<Self>) {
        ctx.spawn(actix::fut::wrap_future(serve(self.link().clone(), listen)));
    }
}

async fn serve(link: ClusterLink, listen: ListenForAgents) {
    let wildcard = agent_in_wildcard(&link.cluster);
    let security = listen.security.clone();
    receive_sealed(
        &link,
        wildcard,
        &security,
        AGENT_IN_NONCES,
        |subject, opened, reply| {
            let machine = machine_of_agent_in(&link.cluster, subject);
            let request = serde_json::from_str::<AgentRequest>(&opened.body);
            let (Some(machine_id), Ok(request)) = (machine, request) else {
                tracing::warn!(subject, from = %opened.from, "unreadable request for an agent");
                return;
            };
            if !request.is_for(&link.instance) {
                return;
            }
            let request = FromCluster {
                machine_id,
                from: opened.from,
                request: request.request,
            };
            match reply {
                None => listen.registry.do_send(request),
                Some(reply_to) => {
                    // `send` queues the request now (in order); only the answer is awaited apart.
                    let answer = listen.registry.send(request);
                    let link = link.clone();
                    actix::spawn(async move {
                        let reply = match answer.await {
                            Ok(Ok(())) => ReplyWire::Sent,
                            _ => ReplyWire::MachineOffline,
                        };
                        let body = serde_json::to_string(&reply).unwrap_or_default();
                        let sealed = seal(&link.key, &link.instance, &reply_to, &body, Utc::now());
                        if let Err(err) = link.client.publish(reply_to, sealed.into()).await {
                            tracing::warn!(error = %err, "reply to another instance not published");
                        }
                    });
                }
            }
        },
    )
    .await;
}
