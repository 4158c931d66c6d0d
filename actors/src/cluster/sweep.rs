//! The cluster's sweep, run by one instance (the first live one by name, so that each lost
//! machine is marked offline once): a machine whose presence entry names an instance whose lease
//! expired (it died, so nobody withdrew the entry) is marked offline and its entry removed; a
//! machine the shared database shows online that no entry has named for a whole lease TTL (a
//! register may be stored before its entry is seen) is marked offline too. Every instance
//! sweeps every quarter of the offline window; leases live half of it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use actix::{ActorFutureExt, AsyncContext, Context, Handler, Message, Recipient};

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
/// (the Registry) about machines no live instance holds.
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
            let view = bridge.view();
            if !view.leads(&bridge.link().instance) {
                bridge.sweep_suspects.clear();
                return;
            }
            let presence = bridge.presence().clone();
            let held: HashSet<MachineId> = bridge.held_machines().collect();
            let orphans = view.orphans();
            let (stored_online, lost) = (sweep.stored_online.clone(), sweep.lost.clone());
            let suspects = std::mem::take(&mut bridge.sweep_suspects);
            let ttl = bridge.ttl;
            let sweep_done = async move {
                let stored = match stored_online.send(StoredOnline).await {
                    Ok(Ok(stored)) => stored,
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "cluster sweep: machines online not readable");
                        return suspects;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cluster sweep: query repository gone");
                        return suspects;
                    }
                };
                let orphaned: HashSet<MachineId> = orphans.iter().map(|(m, _)| *m).collect();
                let mut unnamed = HashMap::new();
                let now = Instant::now();
                for (machine_id, hostname) in stored {
                    if held.contains(&machine_id) || view.holder(&machine_id).is_some() {
                        continue;
                    }
                    let unnamed_since = (!view.knows(&machine_id))
                        .then(|| suspects.get(&machine_id).copied().unwrap_or(now));
                    let gone = orphaned.contains(&machine_id)
                        || unnamed_since.is_some_and(|since| now.duration_since(since) >= ttl);
                    if gone {
                        lost.do_send(PresenceLost {
                            machine_id,
                            hostname,
                        });
                    } else if let Some(since) = unnamed_since {
                        unnamed.insert(machine_id, since);
                    }
                }
                for (machine, instance) in orphans {
                    if let Err(err) = presence.forget(machine, &instance).await {
                        tracing::warn!(error = %err, "cluster sweep: a dead instance's entry stays");
                        break;
                    }
                }
                unnamed
            };
            ctx.spawn(
                actix::fut::wrap_future::<_, NatsBridge>(sweep_done)
                    .map(|unnamed, bridge, _| bridge.sweep_suspects = unnamed),
            );
        });
    }
}
