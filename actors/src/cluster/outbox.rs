//! `ClusterOutbox`: everything this instance sends to other instances about agents goes out
//! through one ordered queue, sealed with the cluster key, so that a route set up for a session
//! always reaches the agent's instance before the `spawn_shell` that needs it, and keystrokes
//! never overtake each other. It also starts listeners (a subscription per session or command
//! whose output this instance waits for), set up in the same order: a listener exists before
//! the request that makes output flow is published. A full queue drops (and logs) what does not
//! fit: NATS being slow or away never holds up the actors that send.

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::bridge::ClusterLink;
use super::refusals::report_refusal;
use super::subscription::Subscription;
use super::wire::ReplyWire;
use crate::agent_session::RouteError;
use crate::protocol::cluster::{open, seal};
use crate::protocol::nonce::NonceCache;
use crate::security_events::SecurityEvents;

/// Messages waiting to be published; past this, new ones are dropped.
const QUEUE: usize = 65_536;
/// How long a request waits for the agent's instance to answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a listener checks that someone still listens.
const ALIVE_CHECK: Duration = Duration::from_secs(1);
/// Sealed messages a listener remembers against replays.
const LISTENER_NONCES: usize = 16_384;

/// Where the opened bodies of one subscription go.
pub trait Listener: Send + 'static {
    /// Hands on one opened body; `false` if it was not understood.
    fn deliver(&mut self, body: &str) -> bool;
    /// Whether anyone still listens (the subscription ends when not).
    fn alive(&self) -> bool;
}

enum Outgoing {
    Publish {
        subject: String,
        body: String,
    },
    Request {
        subject: String,
        body: String,
        timeout: Duration,
        answer: oneshot::Sender<Result<Answer, RouteError>>,
    },
    Listen {
        subject: String,
        listener: Box<dyn Listener>,
    },
}

/// The answer to a request, and the instance that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// What it said.
    pub reply: ReplyWire,
    /// Who said it.
    pub from: String,
}

/// The sending side of this instance on the cluster. Cheap to clone.
#[derive(Clone)]
pub struct ClusterOutbox {
    link: ClusterLink,
    queue: mpsc::Sender<Outgoing>,
}

impl std::fmt::Debug for ClusterOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterOutbox")
            .field("instance", &self.link.instance)
            .finish()
    }
}

impl ClusterOutbox {
    /// Starts the queue on the current arbiter; refused messages that arrive for listeners are
    /// reported to `security`.
    pub fn start(link: ClusterLink, security: SecurityEvents) -> Self {
        let (queue, outgoing) = mpsc::channel(QUEUE);
        actix::spawn(run(link.clone(), security, outgoing));
        Self { link, queue }
    }

    /// This instance on the cluster's NATS.
    pub fn link(&self) -> &ClusterLink {
        &self.link
    }

    /// Whether the NATS connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.link.client.connection_state() == async_nats::connection::State::Connected
    }

    fn enqueue(&self, outgoing: Outgoing) -> Result<(), Outgoing> {
        self.queue.try_send(outgoing).map_err(|err| match err {
            mpsc::error::TrySendError::Full(o) | mpsc::error::TrySendError::Closed(o) => o,
        })
    }

    /// Publishes `body` on `subject`, after everything queued before it.
    pub fn publish(&self, subject: String, body: String) {
        if self.enqueue(Outgoing::Publish { subject, body }).is_err() {
            tracing::warn!("cluster message dropped: NATS is not keeping up");
        }
    }

    /// Publishes `body` on `subject` and resolves with the answer of the instance that took it:
    /// at once with `RegionUnreachable` while NATS is away, `Timeout` if nobody answers in
    /// [`REQUEST_TIMEOUT`].
    pub fn request(
        &self,
        subject: String,
        body: String,
    ) -> impl Future<Output = Result<(), RouteError>> + 'static {
        let asked = self.ask(subject, body, REQUEST_TIMEOUT);
        async move {
            match asked.await?.reply {
                ReplyWire::Sent => Ok(()),
                ReplyWire::MachineOffline => Err(RouteError::MachineOffline),
                ReplyWire::Refused | ReplyWire::Gone => Err(RouteError::RegionUnreachable),
            }
        }
    }

    /// Publishes `body` on `subject` and resolves with the first sealed answer: at once with
    /// `RegionUnreachable` while NATS is away, `Timeout` if nobody answers within `timeout`.
    pub fn ask(
        &self,
        subject: String,
        body: String,
        timeout: Duration,
    ) -> impl Future<Output = Result<Answer, RouteError>> + 'static {
        let (answer, answered) = oneshot::channel();
        let queued = self.is_connected()
            && self
                .enqueue(Outgoing::Request {
                    subject,
                    body,
                    timeout,
                    answer,
                })
                .is_ok();
        async move {
            if !queued {
                return Err(RouteError::RegionUnreachable);
            }
            answered.await.unwrap_or(Err(RouteError::RegionUnreachable))
        }
    }

    /// Hands what arrives on `subject` to `listener` (opened, and only if sealed by the
    /// cluster), from before anything queued after this call is published.
    pub fn listen(&self, subject: String, listener: Box<dyn Listener>) {
        if self
            .enqueue(Outgoing::Listen { subject, listener })
            .is_err()
        {
            tracing::warn!("cluster listener dropped: NATS is not keeping up");
        }
    }
}

/// Sends what is queued, in order.
async fn run(link: ClusterLink, security: SecurityEvents, mut outgoing: mpsc::Receiver<Outgoing>) {
    while let Some(next) = outgoing.recv().await {
        match next {
            Outgoing::Publish { subject, body } => {
                let sealed = seal(&link.key, &link.instance, &subject, &body, Utc::now());
                if let Err(err) = link.client.publish(subject, sealed.into()).await {
                    tracing::warn!(error = %err, "cluster message not published");
                }
            }
            Outgoing::Request {
                subject,
                body,
                timeout,
                answer,
            } => request(&link, subject, body, timeout, answer).await,
            Outgoing::Listen { subject, listener } => {
                match Subscription::open(&link.client, subject.clone()).await {
                    Ok(subscription) => {
                        actix::spawn(listen(
                            link.clone(),
                            security.clone(),
                            subscription,
                            listener,
                        ));
                    }
                    Err(err) => tracing::warn!(%subject, error = %err, "cannot listen"),
                }
            }
        }
    }
}

/// Publishes a request with a reply subject of its own and waits for the answer on a task of
/// its own (the queue goes on meanwhile).
async fn request(
    link: &ClusterLink,
    subject: String,
    body: String,
    timeout: Duration,
    answer: oneshot::Sender<Result<Answer, RouteError>>,
) {
    let inbox = link.client.new_inbox();
    let mut replies = match Subscription::open(&link.client, inbox.clone()).await {
        Ok(replies) => replies,
        Err(_) => {
            let _unheard = answer.send(Err(RouteError::RegionUnreachable));
            return;
        }
    };
    let sealed = seal(&link.key, &link.instance, &subject, &body, Utc::now());
    let published = link
        .client
        .publish_with_reply(subject, inbox.clone(), sealed.into())
        .await;
    if published.is_err() {
        let _unheard = answer.send(Err(RouteError::RegionUnreachable));
        return;
    }
    let key = link.key.clone();
    actix::spawn(async move {
        let outcome = match tokio::time::timeout(timeout, replies.next()).await {
            Err(_elapsed) => Err(RouteError::Timeout),
            Ok(None) => Err(RouteError::RegionUnreachable),
            Ok(Some(reply)) => {
                let mut nonces = NonceCache::new(1);
                let opened = open(&key, &inbox, &reply.payload, Utc::now(), &mut nonces);
                let read = opened.ok().and_then(|opened| {
                    let reply = serde_json::from_str::<ReplyWire>(&opened.body).ok()?;
                    Some(Answer {
                        reply,
                        from: opened.from,
                    })
                });
                read.ok_or_else(|| {
                    tracing::warn!(security = true, "unreadable or unsealed cluster reply");
                    RouteError::RegionUnreachable
                })
            }
        };
        replies.close().await;
        let _unheard = answer.send(outcome);
    });
}

/// Opens what arrives on one subscription and hands it on while someone listens.
async fn listen(
    link: ClusterLink,
    security: SecurityEvents,
    mut subscription: Subscription,
    mut listener: Box<dyn Listener>,
) {
    let mut nonces = NonceCache::new(LISTENER_NONCES);
    let mut check = tokio::time::interval(ALIVE_CHECK);
    loop {
        tokio::select! {
            message = subscription.next() => {
                let Some(message) = message else { break };
                let subject = message.subject.as_str();
                match open(&link.key, subject, &message.payload, Utc::now(), &mut nonces) {
                    Ok(opened) => {
                        if !listener.deliver(&opened.body) {
                            tracing::warn!(subject, from = %opened.from, "unreadable cluster message");
                        }
                    }
                    Err(refusal) => report_refusal(&security, subject, refusal),
                }
            }
            _ = check.tick() => {}
        }
        if !listener.alive() {
            break;
        }
    }
    subscription.close().await;
}
