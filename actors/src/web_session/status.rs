//! `subscribe_machines`: a snapshot of the machines this user may see, then every status
//! change of one of them.

use actix::{ActorFutureExt, AsyncContext, Handler, WrapFuture};
use actix_web_actors::ws::WebsocketContext;

use super::WebSession;
use crate::protocol::web::ServerEvent;
use crate::protocol::{ErrorCode, MachineId};
use crate::registry::{MachineStatusChanged, SubscribeStatus};
use crate::repo::access::{AccessError, Action, CheckAccess, MachineFilter, VisibleMachines};

type Ctx = WebsocketContext<WebSession>;

impl WebSession {
    /// `subscribe_machines`: the snapshot, then live changes.
    pub(super) fn subscribe(&mut self, request_id: Option<String>, ctx: &mut Ctx) {
        let visible = self.links.access.visible.send(VisibleMachines {
            user_id: self.user.user_id,
            filter: MachineFilter::default(),
        });
        ctx.spawn(visible.into_actor(self).map(move |outcome, session, ctx| {
            let machines = match outcome {
                Ok(Ok(machines)) => machines,
                Ok(Err(AccessError::Forbidden)) => {
                    return session.error(ctx, ErrorCode::Forbidden, "not allowed", request_id);
                }
                _ => return session.error(ctx, ErrorCode::Internal, "internal error", request_id),
            };
            for machine in machines {
                let event = ServerEvent::MachineStatus {
                    machine_id: machine.id.to_string(),
                    region: session.region_of(machine.id, machine.status() == "online"),
                    status: machine.status(),
                    last_seen: machine.last_seen.map(|t| t.to_rfc3339()),
                    hostname: machine.details.hostname,
                };
                session.send_text(ctx, event.to_json(request_id.as_deref()));
            }
            if !session.subscribed {
                session.subscribed = true;
                session
                    .links
                    .routing
                    .subscribe_status
                    .do_send(SubscribeStatus {
                        subscriber: ctx.address().recipient(),
                    });
            }
        }));
    }
}

impl WebSession {
    /// The region an online machine's agent is connected in (none offline or standalone).
    fn region_of(&self, machine: MachineId, online: bool) -> Option<String> {
        online
            .then(|| self.links.cluster.region_of(&machine))
            .flatten()
    }
}

impl Handler<MachineStatusChanged> for WebSession {
    type Result = ();

    fn handle(&mut self, change: MachineStatusChanged, ctx: &mut Ctx) {
        let check = CheckAccess {
            user_id: self.user.user_id,
            machine_id: change.machine_id,
            action: Action::View,
        };
        let allowed = self.links.access.check.send(check);
        ctx.spawn(allowed.into_actor(self).map(move |outcome, session, ctx| {
            if matches!(outcome, Ok(Ok(_))) {
                let event = ServerEvent::MachineStatus {
                    machine_id: change.machine_id.to_string(),
                    region: session.region_of(change.machine_id, change.online),
                    hostname: change.hostname,
                    status: if change.online { "online" } else { "offline" },
                    last_seen: Some(change.at.to_rfc3339()),
                };
                session.send_text(ctx, event.to_json(None));
            }
        }));
    }
}
