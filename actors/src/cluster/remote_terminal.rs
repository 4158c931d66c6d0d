//! A terminal running on another instance, re-attached through this one: its owner's socket is
//! here, the session and its shell stay on the instance that opened it (its home). This actor
//! stands in for the session towards the socket: it asks the cluster for the session, passes the
//! owner's requests to the home and the home's frames to the socket.

use std::time::Duration;

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message,
    ResponseActFuture, WeakAddr, WrapFuture,
};

use super::outbox::{Answer, ClusterOutbox, Listener};
use super::owner_wire::{
    AttachWire, DeliveryWire, OwnerWire, new_owner_key, owner_in_subject, owner_out_subject,
    terminal_attach_subject,
};
use super::view::ClusterView;
use super::wire::ReplyWire;
use crate::agent_session::RouteError;
use crate::protocol::web::ServerEvent;
use crate::protocol::{ErrorCode, SessionId};
use crate::terminal::{AttachOwner, Owner, OwnerRequest};
use crate::web_session::{Deliver, closed_session};

/// How long a re-attach waits for the session's home; past it, the session is unknown.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the home's lease is checked.
const HOME_CHECK: Duration = Duration::from_secs(1);
/// The `terminal_closed` reason when the session's home instance is gone.
pub const HOME_LOST: &str = "instance_lost";

/// Frames from the session's home for the owner's socket.
#[derive(Message, Debug)]
#[rtype(result = "()")]
struct Relayed(DeliveryWire);

/// A session running on another instance, seen from the instance its owner re-attached through.
pub struct RemoteTerminal {
    outbox: ClusterOutbox,
    view: ClusterView,
    session_id: SessionId,
    owner_key: String,
    owner: Option<Owner>,
    home: Option<String>,
}

impl RemoteTerminal {
    /// A stand-in for `session_id`, which this instance does not run.
    pub fn new(outbox: ClusterOutbox, view: ClusterView, session_id: SessionId) -> Self {
        Self {
            outbox,
            view,
            session_id,
            owner_key: new_owner_key(),
            owner: None,
            home: None,
        }
    }

    fn subject(&self, of: fn(&str, &str) -> String) -> String {
        of(&self.outbox.link().cluster, &self.owner_key)
    }

    fn tell_owner(&self, delivery: Deliver) {
        if let Some(owner) = &self.owner {
            owner.deliver.do_send(delivery);
        }
    }

    /// The home is gone: the session is, for this owner.
    fn home_lost(&mut self, ctx: &mut Context<Self>) {
        tracing::warn!(session_id = %self.session_id, home = ?self.home, "the instance running a re-attached terminal is gone");
        self.tell_owner(Deliver {
            events: vec![ServerEvent::TerminalClosed {
                session_id: self.session_id.to_string(),
                reason: HOME_LOST,
            }],
            request_id: None,
            error: None,
            relayed: Vec::new(),
        });
        ctx.stop();
    }
}

impl Actor for RemoteTerminal {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(HOME_CHECK, |terminal, ctx| {
            if let Some(home) = &terminal.home
                && !terminal.view.is_alive(home)
            {
                terminal.home_lost(ctx);
            }
        });
    }
}

impl Handler<AttachOwner> for RemoteTerminal {
    type Result = ResponseActFuture<Self, Result<(), ErrorCode>>;

    /// Listens for the home's frames, then asks every instance for the session; the one
    /// running it answers.
    fn handle(&mut self, attach: AttachOwner, ctx: &mut Context<Self>) -> Self::Result {
        self.owner = Some(attach.owner);
        self.outbox.listen(
            self.subject(owner_out_subject),
            Box::new(HomeFrames {
                to: ctx.address().downgrade(),
            }),
        );
        let request = AttachWire {
            session_id: self.session_id.to_string(),
            user_id: attach.user_id.to_string(),
            owner_key: self.owner_key.clone(),
            seen_offset: attach.seen_offset,
        };
        let body = serde_json::to_string(&request).unwrap_or_default();
        let subject = terminal_attach_subject(&self.outbox.link().cluster);
        let asked = self.outbox.ask(subject, body, ATTACH_TIMEOUT);
        Box::pin(asked.into_actor(self).map(|answer, terminal, ctx| {
            let refused = match answer {
                Ok(Answer {
                    reply: ReplyWire::Sent,
                    from,
                }) => {
                    terminal.home = Some(from);
                    return Ok(());
                }
                Ok(Answer {
                    reply: ReplyWire::Refused,
                    ..
                }) => ErrorCode::Forbidden,
                Err(RouteError::RegionUnreachable) => ErrorCode::RegionUnreachable,
                Ok(_) | Err(_) => ErrorCode::UnknownSession,
            };
            ctx.stop();
            Err(refused)
        }))
    }
}

impl Handler<OwnerRequest> for RemoteTerminal {
    type Result = ();

    fn handle(&mut self, request: OwnerRequest, ctx: &mut Context<Self>) {
        let from_owner = match (&request, &self.owner) {
            (OwnerRequest::Kill, _) => true,
            (
                OwnerRequest::Input { from, .. }
                | OwnerRequest::Resize { from, .. }
                | OwnerRequest::Close { from }
                | OwnerRequest::OwnerGone { from }
                | OwnerRequest::RemoveWatcher { from, .. }
                | OwnerRequest::SetWatcherInput { from, .. },
                Some(owner),
            ) => *from == owner.connection_id,
            (_, None) => false,
        };
        if !from_owner {
            tracing::warn!(security = true, session_id = %self.session_id, "request from a socket that does not own the session ignored");
            return;
        }
        let gone = matches!(request, OwnerRequest::OwnerGone { .. });
        let body = serde_json::to_string(&OwnerWire::from_request(request)).unwrap_or_default();
        self.outbox.publish(self.subject(owner_in_subject), body);
        if gone {
            self.owner = None;
            ctx.stop();
        }
    }
}

impl Handler<Relayed> for RemoteTerminal {
    type Result = ();

    fn handle(&mut self, Relayed(wire): Relayed, ctx: &mut Context<Self>) {
        let closed = wire
            .frames
            .iter()
            .any(|frame| closed_session(frame).is_some());
        self.tell_owner(Deliver {
            events: Vec::new(),
            request_id: None,
            error: None,
            relayed: wire.frames,
        });
        if closed {
            ctx.stop();
        }
    }
}

/// Hands the home's frames to the stand-in while it lives.
struct HomeFrames {
    to: WeakAddr<RemoteTerminal>,
}

impl Listener for HomeFrames {
    fn deliver(&mut self, body: &str) -> bool {
        let Ok(wire) = serde_json::from_str::<DeliveryWire>(body) else {
            return false;
        };
        if let Some(to) = self.to.upgrade() {
            to.do_send(Relayed(wire));
        }
        true
    }

    fn alive(&self) -> bool {
        self.to.upgrade().is_some_and(|to| to.connected())
    }
}
