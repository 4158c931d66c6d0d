//! `NatsBridge`: this instance's one connection to the cluster's NATS. It keeps the presence of
//! the machines connected here (written when their agents register, withdrawn when their
//! sockets close), renews this instance's lease every third of the TTL (so its machines count as
//! held by nobody once it dies), and keeps the in-memory [`ClusterView`] of every machine and
//! instance. NATS being away never holds up local traffic: presence writes run in order on a
//! task of their own behind a bounded queue, failures are logged, and each renewal also writes
//! again the entries of held machines that the view does not show (lost writes heal).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, Context, Handler, Message, ResponseFuture};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};

use super::presence::{HeldAgent, PresenceBook, PresenceEntry, PresenceError, Withdrawal};
use super::view::ClusterView;
use crate::protocol::agent::Capabilities;
use crate::protocol::cluster::ClusterKey;
use crate::protocol::{ConnectionId, MachineId};

/// An agent registered on this instance.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct MachineConnected {
    /// The machine.
    pub machine_id: MachineId,
    /// Its socket here.
    pub connection_id: ConnectionId,
    /// When it registered.
    pub since: DateTime<Utc>,
    /// What its agent announced (other instances sign and send accordingly).
    pub capabilities: Capabilities,
}

/// An agent's socket on this instance closed; answered with whether the machine moved to
/// another socket meanwhile (then it is not offline), once the withdrawal is done.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "bool")]
pub struct MachineDisconnected {
    /// The machine.
    pub machine_id: MachineId,
    /// The socket that closed.
    pub connection_id: ConnectionId,
}

/// Where a machine's agent is connected, cluster-wide.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<Option<PresenceEntry>, PresenceError>")]
pub struct WhereIs {
    /// The machine.
    pub machine_id: MachineId,
}

/// Presence writes, carried out one after the other in the order they were asked for (an
/// announcement and a withdrawal of the same machine never overtake each other). A withdrawal
/// tells whether the machine had moved.
#[derive(Debug)]
enum PresenceWrite {
    RenewLease,
    Announce(MachineId, HeldAgent),
    Withdraw(MachineId, ConnectionId, Option<oneshot::Sender<bool>>),
}

/// Presence writes waiting for NATS; past this, new ones are dropped (and the next refresh
/// writes every held machine again).
const WRITE_QUEUE: usize = 65_536;

/// This instance on the cluster's NATS: the client, the cluster key, the cluster's name and
/// this instance's.
#[derive(Clone)]
pub struct ClusterLink {
    /// The NATS client (it reconnects by itself).
    pub client: async_nats::Client,
    /// The key sealing every message between instances.
    pub key: ClusterKey,
    /// The cluster's name (first token of its subjects).
    pub cluster: String,
    /// This instance's name.
    pub instance: String,
}

/// The bridge of one instance.
pub struct NatsBridge {
    link: ClusterLink,
    presence: PresenceBook,
    view: ClusterView,
    refresh_every: Duration,
    /// The machines whose agents are connected here, with their socket and since when.
    held: HashMap<MachineId, HeldAgent>,
    /// Machines stored online that no entry names, since when (see `sweep.rs`).
    pub(super) sweep_suspects: HashMap<MachineId, Instant>,
    /// How long a lease lives.
    pub(super) ttl: Duration,
    writes: Option<mpsc::Sender<PresenceWrite>>,
}

impl NatsBridge {
    /// A bridge on `link` keeping presence in `presence`, whose leases live `presence_ttl`.
    pub fn new(link: ClusterLink, presence: PresenceBook, presence_ttl: Duration) -> Self {
        Self {
            link,
            presence,
            view: ClusterView::new(presence_ttl),
            refresh_every: (presence_ttl / 3).max(Duration::from_millis(100)),
            held: HashMap::new(),
            sweep_suspects: HashMap::new(),
            ttl: presence_ttl,
            writes: None,
        }
    }

    /// This instance on the cluster's NATS.
    pub(super) fn link(&self) -> &ClusterLink {
        &self.link
    }

    /// The presence bucket.
    pub(super) fn presence(&self) -> &PresenceBook {
        &self.presence
    }

    /// The cluster as this instance sees it (kept up to date once the bridge has started).
    pub fn view(&self) -> ClusterView {
        self.view.clone()
    }

    /// The machines whose agents are connected here.
    pub(super) fn held_machines(&self) -> impl Iterator<Item = MachineId> + '_ {
        self.held.keys().copied()
    }

    fn write(&self, write: PresenceWrite) {
        let queued = self.writes.as_ref().map(|writes| writes.try_send(write));
        match queued {
            Some(Ok(())) => {}
            Some(Err(err)) => {
                tracing::warn!(write = ?err.into_inner(), "presence write dropped: NATS is not keeping up")
            }
            None => tracing::warn!("presence write dropped: the bridge has not started"),
        }
    }

    /// Renews this instance's lease, and announces again each machine held here for a while
    /// that the view does not show as held here (a write that was lost), unless earlier writes
    /// are still waiting for NATS.
    fn refresh(&self) {
        crate::instruments::nats_connected(
            self.link.client.connection_state() == async_nats::connection::State::Connected,
        );
        let idle = self
            .writes
            .as_ref()
            .is_some_and(|writes| writes.capacity() == writes.max_capacity());
        if !idle {
            return;
        }
        self.write(PresenceWrite::RenewLease);
        let shown = self.view.held_by(&self.link.instance);
        let settled =
            Utc::now() - chrono::Duration::from_std(self.refresh_every).unwrap_or_default();
        for (machine, held) in &self.held {
            if held.since < settled && !shown.contains(&(*machine, held.connection_id.0)) {
                self.write(PresenceWrite::Announce(*machine, *held));
            }
        }
    }
}

/// Announcements whose acknowledgement may be outstanding at once.
const UNACKED_ANNOUNCEMENTS: usize = 1024;

/// An outstanding acknowledgement.
type Ack = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Carries out presence writes in order; a failure is logged and the next one goes on.
/// Announcements are published without waiting for each acknowledgement (many stay
/// outstanding); before a withdrawal or a lease renewal every outstanding one is awaited, so a
/// withdrawal always reads the announcement before it.
async fn run_writes(presence: PresenceBook, mut writes: mpsc::Receiver<PresenceWrite>) {
    let mut acks: FuturesUnordered<Ack> = FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(acked) = acks.next(), if !acks.is_empty() => log_failure(acked),
            write = writes.recv(), if acks.len() < UNACKED_ANNOUNCEMENTS => {
                let Some(write) = write else { break };
                if let PresenceWrite::Announce(machine, held) = write {
                    match presence.announce_unacked(machine, held).await {
                        Ok(ack) => acks.push(Box::pin(async move {
                            ack.await.map(|_| ()).map_err(|err| err.to_string())
                        })),
                        Err(err) => log_failure(Err(err.to_string())),
                    }
                    continue;
                }
                while let Some(acked) = acks.next().await {
                    log_failure(acked);
                }
                let outcome = match write {
                    PresenceWrite::RenewLease => presence.renew_lease().await,
                    PresenceWrite::Withdraw(machine, connection, moved) => {
                        let withdrawal = presence.withdraw(machine, connection).await;
                        let has_moved = matches!(withdrawal, Ok(Withdrawal::Moved));
                        if let Some(moved) = moved {
                            let _unheard = moved.send(has_moved);
                        }
                        withdrawal.map(|_| ())
                    }
                    PresenceWrite::Announce(..) => Ok(()),
                };
                log_failure(outcome.map_err(|err| err.to_string()));
            }
        }
    }
}

fn log_failure(outcome: Result<(), String>) {
    if let Err(err) = outcome {
        tracing::warn!(error = %err, "presence write failed");
    }
}

impl Actor for NatsBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        self.writes = Some(writes);
        ctx.spawn(actix::fut::wrap_future(run_writes(
            self.presence.clone(),
            queue,
        )));
        self.write(PresenceWrite::RenewLease);
        ctx.run_interval(self.refresh_every, |bridge, _| bridge.refresh());
        ctx.spawn(actix::fut::wrap_future(super::view::follow(
            self.presence.clone(),
            self.view.clone(),
        )));
    }
}

impl Handler<MachineConnected> for NatsBridge {
    type Result = ();

    fn handle(&mut self, connected: MachineConnected, _: &mut Context<Self>) {
        let held = HeldAgent {
            connection_id: connected.connection_id,
            since: connected.since,
            capabilities: connected.capabilities,
        };
        self.held.insert(connected.machine_id, held);
        self.write(PresenceWrite::Announce(connected.machine_id, held));
    }
}

impl Handler<MachineDisconnected> for NatsBridge {
    type Result = ResponseFuture<bool>;

    /// Forgets the machine unless it has reconnected here on another socket meanwhile; the
    /// bucket entry goes only if it still names this socket. Answers whether it names another
    /// (`false` too when NATS could not tell: the close then counts as going offline).
    fn handle(&mut self, gone: MachineDisconnected, _: &mut Context<Self>) -> Self::Result {
        let MachineDisconnected {
            machine_id,
            connection_id,
        } = gone;
        if self
            .held
            .get(&machine_id)
            .is_some_and(|held| held.connection_id == connection_id)
        {
            self.held.remove(&machine_id);
        }
        let (moved, answer) = oneshot::channel();
        self.write(PresenceWrite::Withdraw(
            machine_id,
            connection_id,
            Some(moved),
        ));
        Box::pin(async move { answer.await.unwrap_or(false) })
    }
}

impl Handler<WhereIs> for NatsBridge {
    type Result = ResponseFuture<Result<Option<PresenceEntry>, PresenceError>>;

    /// From the view; asks the bucket only when the view has no live entry (it may lag a
    /// register by a moment), and trusts an entry only if its instance is alive.
    fn handle(&mut self, question: WhereIs, _: &mut Context<Self>) -> Self::Result {
        if let Some(entry) = self.view.holder(&question.machine_id) {
            return Box::pin(async move { Ok(Some(entry)) });
        }
        let (presence, view) = (self.presence.clone(), self.view.clone());
        Box::pin(async move {
            let entry = presence.lookup(question.machine_id).await?;
            Ok(entry.filter(|entry| view.is_alive(&entry.instance)))
        })
    }
}
