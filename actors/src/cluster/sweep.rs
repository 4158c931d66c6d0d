//! The cluster's sweep: a machine the shared database shows online whose presence entry is gone
//! (its instance died, so nobody withdrew it and nobody refreshes it) is marked offline. Every
//! instance sweeps, every quarter of the offline window (entries live half of it); the machines
//! connected to the sweeping instance itself are left to its Registry.

use std::collections::HashSet;
use std::time::Duration;

use actix::{AsyncContext, Context, Handler, Message, Recipient};

use super::bridge::NatsBridge;
use crate::protocol::MachineId;
use crate::repo::queries::StoredOnline;

/// A machine shown online that no instance holds any more.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct PresenceLost {
    /// The machine.
    pub machine_id: MachineId,
    /// Its hostname, for the status event.
    pub hostname: String,
}

/// Start sweeping every `every`: read what is stored online from `stored_online`, tell `lost`
/// (the Registry) about machines without presence.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartSweep {
    /// The query repository.
    pub stored_online: Recipient<StoredOnline>,
    /// The Registry.
    pub lost: Recipient<PresenceLost>,
    /// How often.
    pub every: Duration,
}

impl Handler<StartSweep> for NatsBridge {
    type Result = ();

    fn handle(&mut self, sweep: StartSweep, ctx: &mut Context<Self>) {
        ctx.run_interval(sweep.every, move |bridge, ctx| {
            let presence = bridge.presence().clone();
            let held: HashSet<MachineId> = bridge.held_machines().collect();
            let (stored_online, lost) = (sweep.stored_online.clone(), sweep.lost.clone());
            ctx.spawn(actix::fut::wrap_future(async move {
                let stored = match stored_online.send(StoredOnline).await {
                    Ok(Ok(stored)) => stored,
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "cluster sweep: machines online not readable");
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cluster sweep: query repository gone");
                        return;
                    }
                };
                for (machine_id, hostname) in stored {
                    if held.contains(&machine_id) {
                        continue;
                    }
                    match presence.lookup(machine_id).await {
                        Ok(None) => lost.do_send(PresenceLost {
                            machine_id,
                            hostname,
                        }),
                        Ok(Some(_)) => {}
                        Err(err) => {
                            tracing::warn!(error = %err, "cluster sweep stopped: presence not readable");
                            return;
                        }
                    }
                }
            }));
        });
    }
}
