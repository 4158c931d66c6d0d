//! The Registry and the cluster's presence: where it tells the cluster which agents are
//! connected here ([`PresenceLinks`]), and what it does with what other instances report
//! (status transitions, machines no instance holds any more).

use actix::{Context, Handler, Recipient};

use super::{MachineStatusChanged, Registry};
use crate::cluster::bridge::{MachineConnected, MachineDisconnected};
use crate::cluster::status::RemoteStatus;
use crate::cluster::sweep::PresenceLost;

/// Where the Registry tells the cluster which agents are connected here (cluster mode).
#[derive(Clone)]
pub struct PresenceLinks {
    /// An agent registered here.
    pub connected: Recipient<MachineConnected>,
    /// The current socket of an agent here closed.
    pub disconnected: Recipient<MachineDisconnected>,
    /// A machine connected here went online or offline.
    pub status: Recipient<MachineStatusChanged>,
}

impl Handler<RemoteStatus> for Registry {
    type Result = ();

    /// A machine connected to another instance changed: the subscribers here hear of it (that
    /// instance stored it), unless its agent is connected here now: this instance knows better,
    /// and says so again if another one took it for offline (stored and told cluster-wide).
    fn handle(&mut self, remote: RemoteStatus, _: &mut Context<Self>) {
        let machine_id = remote.0.machine_id;
        match self.agents.get(&machine_id) {
            None => {
                if !remote.0.online {
                    self.end_terminals_of(machine_id);
                }
                self.tell_subscribers(&remote.0);
            }
            Some(entry) if !remote.0.online && entry.online => {
                tracing::warn!(%machine_id, "taken for offline elsewhere while connected here; online again");
                let hostname = entry.hostname.clone();
                self.publish(machine_id, &hostname, true);
            }
            Some(_) => {}
        }
    }
}

impl Handler<PresenceLost> for Registry {
    type Result = ();

    /// A machine shown online that no instance holds any more goes offline (stored, told to the
    /// subscribers here and to the cluster), unless its agent is connected here.
    fn handle(&mut self, lost: PresenceLost, _: &mut Context<Self>) {
        if !self.agents.contains_key(&lost.machine_id) {
            tracing::warn!(machine_id = %lost.machine_id, "no instance holds this machine any more");
            self.end_terminals_of(lost.machine_id);
            self.publish(lost.machine_id, &lost.hostname, false);
        }
    }
}
