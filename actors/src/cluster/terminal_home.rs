//! The home of a terminal (the instance running its session) when its owner re-attaches through
//! another instance. Every instance listens on `fg.<cluster>.terminal.attach`; the one running
//! the session re-binds it to a [`RemoteOwner`], a stand-in that publishes the owner's events to
//! the other instance, and takes the owner's requests from it; the others stay silent.

use std::time::Duration;

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message, Recipient, WeakAddr};

use super::bridge::{ClusterLink, NatsBridge};
use super::outbox::{ClusterOutbox, Listener};
use super::owner_wire::{
    AttachWire, DeliveryWire, OwnerWire, is_owner_key, owner_in_subject, owner_out_subject,
    terminal_attach_subject,
};
use super::sealed_inbox::receive_sealed;
use super::view::ClusterView;
use super::wire::ReplyWire;
use crate::protocol::{ConnectionId, SessionId, UserId};
use crate::registry::FindTerminal;
use crate::security_events::SecurityEvents;
use crate::terminal::{AttachOwner, Owner, OwnerRequest};
use crate::web_session::{Deliver, closed_session};

/// Attach requests remembered against replays.
const ATTACH_NONCES: usize = 16_384;
/// How often a stand-in owner checks that the owner's instance is alive.
const OWNER_INSTANCE_CHECK: Duration = Duration::from_secs(1);

/// From now on, answer other instances' re-attach requests for the sessions running here.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ListenForAttach {
    /// Where the sessions running here are found (the Registry).
    pub terminals: Recipient<FindTerminal>,
    /// This instance's way out to the cluster.
    pub outbox: ClusterOutbox,
    /// Where refused messages are reported.
    pub security: SecurityEvents,
}

impl Handler<ListenForAttach> for NatsBridge {
    type Result = ();

    fn handle(&mut self, listen: ListenForAttach, ctx: &mut Context<Self>) {
        let (link, view) = (self.link().clone(), self.view());
        ctx.spawn(actix::fut::wrap_future(serve(link, view, listen)));
    }
}

async fn serve(link: ClusterLink, view: ClusterView, listen: ListenForAttach) {
    let subject = terminal_attach_subject(&link.cluster);
    receive_sealed(
        &link,
        subject,
        &listen.security,
        ATTACH_NONCES,
        |_, opened, reply| {
            let attach = serde_json::from_str::<AttachWire>(&opened.body).ok();
            let read = attach.and_then(|attach| {
                let session_id = SessionId::parse(&attach.session_id)?;
                let user_id = UserId::parse(&attach.user_id)?;
                is_owner_key(&attach.owner_key).then_some((session_id, user_id, attach))
            });
            let (Some((session_id, user_id, attach)), Some(reply_to)) = (read, reply) else {
                tracing::warn!(from = %opened.from, "unreadable re-attach request");
                return;
            };
            let find = listen.terminals.send(FindTerminal {
                session_id,
                in_cluster: false,
            });
            let request = HomeAttach {
                outbox: listen.outbox.clone(),
                view: view.clone(),
                owner_instance: opened.from,
                user_id,
                owner_key: attach.owner_key,
                seen_offset: attach.seen_offset,
                reply_to,
            };
            actix::spawn(async move {
                // Not running here: the instance running it answers (or nobody does).
                if let Ok(Some(inboxes)) = find.await {
                    request.attach(inboxes).await;
                }
            });
        },
    )
    .await;
}

/// A re-attach request for a session running here.
struct HomeAttach {
    outbox: ClusterOutbox,
    view: ClusterView,
    owner_instance: String,
    user_id: UserId,
    owner_key: String,
    seen_offset: Option<u64>,
    reply_to: String,
}

impl HomeAttach {
    /// Re-binds the session to a stand-in for the remote owner, listening to the owner's
    /// requests from before the answer (so the first keystroke after it is never lost).
    async fn attach(self, inboxes: crate::registry::TerminalInboxes) {
        let cluster = self.outbox.link().cluster.clone();
        let stand_in = RemoteOwner {
            outbox: self.outbox.clone(),
            subject: owner_out_subject(&cluster, &self.owner_key),
            view: self.view,
            owner_instance: self.owner_instance,
        }
        .start();
        let connection_id = ConnectionId::next();
        self.outbox.listen(
            owner_in_subject(&cluster, &self.owner_key),
            Box::new(OwnerInbox {
                owner: connection_id,
                requests: inboxes.requests,
                stand_in: stand_in.downgrade(),
            }),
        );
        let attached = inboxes
            .attach
            .send(AttachOwner {
                user_id: self.user_id,
                owner: Owner {
                    connection_id,
                    deliver: stand_in.recipient(),
                },
                seen_offset: self.seen_offset,
            })
            .await;
        let reply = match attached {
            Ok(Ok(())) => ReplyWire::Sent,
            Ok(Err(_)) => ReplyWire::Refused,
            Err(_) => ReplyWire::Gone,
        };
        let body = serde_json::to_string(&reply).unwrap_or_default();
        self.outbox.publish(self.reply_to, body);
    }
}

/// Stands in, on the session's home, for an owner whose socket is on another instance: what
/// the session delivers is published there. It stops after `terminal_closed`, and when the
/// owner's instance is no longer alive (the session then waits for a re-attach as for any
/// owner that went away).
pub struct RemoteOwner {
    outbox: ClusterOutbox,
    subject: String,
    view: ClusterView,
    owner_instance: String,
}

impl Actor for RemoteOwner {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(OWNER_INSTANCE_CHECK, |owner, ctx| {
            if !owner.view.is_alive(&owner.owner_instance) {
                tracing::info!(instance = %owner.owner_instance, "the owner's instance is gone");
                ctx.stop();
            }
        });
    }
}

impl Handler<Deliver> for RemoteOwner {
    type Result = ();

    fn handle(&mut self, delivery: Deliver, ctx: &mut Context<Self>) {
        let frames: Vec<String> = delivery.into_frames().collect();
        let closed = frames.iter().any(|frame| closed_session(frame).is_some());
        let body = serde_json::to_string(&DeliveryWire { frames }).unwrap_or_default();
        self.outbox.publish(self.subject.clone(), body);
        if closed {
            ctx.stop();
        }
    }
}

/// Hands the remote owner's requests to the session, as from its stand-in, while the stand-in
/// is its owner.
struct OwnerInbox {
    owner: ConnectionId,
    requests: Recipient<OwnerRequest>,
    stand_in: WeakAddr<RemoteOwner>,
}

impl Listener for OwnerInbox {
    fn deliver(&mut self, body: &str) -> bool {
        serde_json::from_str::<OwnerWire>(body)
            .map(|wire| self.requests.do_send(wire.into_request(self.owner)))
            .is_ok()
    }

    fn alive(&self) -> bool {
        self.stand_in
            .upgrade()
            .is_some_and(|stand_in| stand_in.connected())
    }
}
