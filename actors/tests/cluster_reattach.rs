//! Re-attaching a terminal through another instance, at message level against a real NATS: the
//! `RemoteTerminal` stand-in on the instance the owner came back through, and the home side
//! (`ListenForAttach` on the bridge of the instance running the session, with a probe session
//! and a probe Registry). Requests from sockets that do not own the session go nowhere; a
//! session no instance runs is unknown; a home that dies ends the session for its owner.

mod common;

use std::time::Duration;

use actix::{Actor, Addr, Context, Handler, Message, Recipient};
use chrono::Utc;
use fleetgate_actors::cluster::bridge::{ClusterLink, NatsBridge};
use fleetgate_actors::cluster::outbox::ClusterOutbox;
use fleetgate_actors::cluster::owner_wire::{AttachWire, terminal_attach_subject};
use fleetgate_actors::cluster::presence::PresenceBook;
use fleetgate_actors::cluster::remote_terminal::{HOME_LOST, RemoteTerminal};
use fleetgate_actors::cluster::terminal_home::ListenForAttach;
use fleetgate_actors::cluster::view::ClusterView;
use fleetgate_actors::cluster::wire::ReplyWire;
use fleetgate_actors::protocol::cluster::{ClusterKey, open, seal};
use fleetgate_actors::protocol::nonce::NonceCache;
use fleetgate_actors::protocol::web::ServerEvent;
use fleetgate_actors::protocol::{ConnectionId, ErrorCode, SessionId, UserId};
use fleetgate_actors::registry::{FindTerminal, TerminalInboxes};
use fleetgate_actors::repo::audit::RecordAudit;
use fleetgate_actors::security_events::SecurityEvents;
use fleetgate_actors::terminal::{AttachOwner, Owner, OwnerRequest};
use fleetgate_actors::web_session::Deliver;
use futures_util::StreamExt;

use common::nats::{cluster, nats};
use common::{Log, entries, log, probe, until};

const KEY: [u8; 32] = [9; 32];
const TTL: Duration = Duration::from_secs(1);

/// One instance of `cluster`: its link, bridge (renewing its lease) and outbox.
struct Instance {
    bridge: Addr<NatsBridge>,
    view: ClusterView,
    outbox: ClusterOutbox,
}

async fn instance(client: &async_nats::Client, cluster: &str, name: &str) -> Instance {
    let link = ClusterLink {
        client: client.clone(),
        key: ClusterKey::from_bytes(KEY),
        cluster: cluster.to_owned(),
        instance: name.to_owned(),
    };
    let jetstream = async_nats::jetstream::new(client.clone());
    let book = PresenceBook::open(&jetstream, cluster, name, "region", TTL)
        .await
        .expect("buckets");
    let bridge = NatsBridge::new(link.clone(), book, TTL);
    let view = bridge.view();
    let security = SecurityEvents::new(probe::<RecordAudit>().0, 10);
    Instance {
        bridge: bridge.start(),
        view,
        outbox: ClusterOutbox::start(link, security),
    }
}

/// Stands in for a terminal session: logs the attaches and requests it takes; `Say` makes it
/// deliver an event to its owner.
struct FakeSession {
    owner_user: UserId,
    owner: Option<Owner>,
    attaches: Log<(UserId, Option<u64>)>,
    requests: Log<OwnerRequest>,
}

impl Actor for FakeSession {
    type Context = Context<Self>;
}

impl Handler<AttachOwner> for FakeSession {
    type Result = Result<(), ErrorCode>;
    fn handle(&mut self, attach: AttachOwner, _: &mut Context<Self>) -> Self::Result {
        self.attaches
            .lock()
            .expect("log")
            .push((attach.user_id, attach.seen_offset));
        if attach.user_id != self.owner_user {
            return Err(ErrorCode::Forbidden);
        }
        self.owner = Some(attach.owner);
        Ok(())
    }
}

impl Handler<OwnerRequest> for FakeSession {
    type Result = ();
    fn handle(&mut self, request: OwnerRequest, _: &mut Context<Self>) {
        self.requests.lock().expect("log").push(request);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Say(ServerEvent);

impl Handler<Say> for FakeSession {
    type Result = ();
    fn handle(&mut self, Say(event): Say, _: &mut Context<Self>) {
        if let Some(owner) = &self.owner {
            owner.deliver.do_send(Deliver {
                events: vec![event],
                request_id: None,
                error: None,
                relayed: Vec::new(),
            });
        }
    }
}

/// Stands in for the home's Registry: knows one session; logs what it was asked.
struct FakeRegistry {
    session_id: SessionId,
    inboxes: TerminalInboxes,
    asked: Log<bool>,
}

impl Actor for FakeRegistry {
    type Context = Context<Self>;
}

impl Handler<FindTerminal> for FakeRegistry {
    type Result = Option<TerminalInboxes>;
    fn handle(&mut self, find: FindTerminal, _: &mut Context<Self>) -> Self::Result {
        self.asked.lock().expect("log").push(find.in_cluster);
        (find.session_id == self.session_id).then(|| self.inboxes.clone())
    }
}

/// The frames an owner probe received, in order.
fn frames(delivered: &Log<Deliver>) -> Vec<String> {
    entries(delivered)
        .into_iter()
        .flat_map(Deliver::into_frames)
        .collect()
}

fn owner(connection: u64) -> (Owner, Log<Deliver>) {
    let (deliver, delivered): (Recipient<Deliver>, _) = probe::<Deliver>();
    let owner = Owner {
        connection_id: ConnectionId(connection),
        deliver,
    };
    (owner, delivered)
}

#[actix::test]
async fn a_remote_terminal_relays_between_its_owner_and_the_session_s_home() {
    let Some(client) = nats().await else {
        return;
    };
    let cluster = cluster();
    let home = instance(&client, &cluster, "fra-1").await;
    let here = instance(&client, &cluster, "sgp-1").await;
    let session_id = SessionId::random();
    let user = UserId(uuid::Uuid::new_v4());
    let (attaches, requests) = (log(), log());
    let session = FakeSession {
        owner_user: user,
        owner: None,
        attaches: attaches.clone(),
        requests: requests.clone(),
    }
    .start();
    let asked = log();
    let registry = FakeRegistry {
        session_id: session_id.clone(),
        inboxes: TerminalInboxes {
            attach: session.clone().recipient(),
            requests: session.clone().recipient(),
            watch: None,
        },
        asked: asked.clone(),
    }
    .start();
    home.bridge.do_send(ListenForAttach {
        terminals: registry.recipient(),
        outbox: home.outbox.clone(),
        security: SecurityEvents::new(probe::<RecordAudit>().0, 10),
    });
    assert!(
        until(|| here.view.is_alive("fra-1") && home.view.is_alive("sgp-1")).await,
        "both leases seen"
    );
    // The home's subscription is up once it answers; retry the first attach until then.
    let (browser, delivered) = owner(7);
    let mut attached = Err(ErrorCode::UnknownSession);
    for _ in 0..5 {
        let stand_in =
            RemoteTerminal::new(here.outbox.clone(), here.view.clone(), session_id.clone()).start();
        attached = stand_in
            .send(AttachOwner {
                user_id: user,
                owner: browser.clone(),
                seen_offset: Some(5),
            })
            .await
            .expect("stand-in");
        if attached.is_ok() {
            stand_in.do_send(OwnerRequest::Input {
                from: ConnectionId(8),
                data: "not the owner\r".into(),
                request_id: None,
            });
            stand_in.do_send(OwnerRequest::Input {
                from: ConnectionId(7),
                data: "ls\r".into(),
                request_id: Some("r1".into()),
            });
            stand_in.do_send(OwnerRequest::Resize {
                from: ConnectionId(7),
                cols: 100,
                rows: 30,
            });
            break;
        }
    }
    assert_eq!(attached, Ok(()));
    assert_eq!(entries(&attaches), vec![(user, Some(5))]);
    assert!(
        entries(&asked).iter().all(|in_cluster| !in_cluster),
        "the home looks among its own sessions only"
    );
    assert!(until(|| entries(&requests).len() >= 2).await);
    let taken = entries(&requests);
    let OwnerRequest::Input {
        from,
        data,
        request_id,
    } = &taken[0]
    else {
        panic!("input first: {taken:?}");
    };
    assert_eq!(
        (data.as_str(), request_id.as_deref()),
        ("ls\r", Some("r1")),
        "the owner's keystrokes, and never the other socket's"
    );
    assert_ne!(*from, ConnectionId(7), "as from the home's stand-in owner");
    assert_eq!(
        taken[1],
        OwnerRequest::Resize {
            from: *from,
            cols: 100,
            rows: 30
        }
    );

    session.do_send(Say(ServerEvent::TerminalClosed {
        session_id: session_id.to_string(),
        reason: "closed",
    }));
    assert!(until(|| !frames(&delivered).is_empty()).await);
    let closed: serde_json::Value = serde_json::from_str(&frames(&delivered)[0]).expect("frame");
    assert_eq!(
        (closed["type"].as_str(), closed["reason"].as_str()),
        (Some("terminal_closed"), Some("closed"))
    );

    // Another user's attach is refused by the home; a session nobody runs is unknown.
    let (stranger, _) = owner(9);
    let refused = RemoteTerminal::new(here.outbox.clone(), here.view.clone(), session_id.clone())
        .start()
        .send(AttachOwner {
            user_id: UserId(uuid::Uuid::new_v4()),
            owner: stranger.clone(),
            seen_offset: None,
        })
        .await
        .expect("stand-in");
    assert_eq!(refused, Err(ErrorCode::Forbidden));
    let unknown = RemoteTerminal::new(here.outbox.clone(), here.view.clone(), SessionId::random())
        .start()
        .send(AttachOwner {
            user_id: user,
            owner: stranger,
            seen_offset: None,
        })
        .await
        .expect("stand-in");
    assert_eq!(unknown, Err(ErrorCode::UnknownSession));
    drop_buckets(&client, &cluster).await;
}

#[actix::test]
async fn a_session_s_home_going_away_ends_it_for_the_owner_that_came_back_elsewhere() {
    let Some(client) = nats().await else {
        return;
    };
    let cluster = cluster();
    let here = instance(&client, &cluster, "sgp-1").await;
    // The home is a bare client renewing a lease by hand, answering one attach.
    let jetstream = async_nats::jetstream::new(client.clone());
    let home_lease = PresenceBook::open(&jetstream, &cluster, "fra-9", "fra", TTL)
        .await
        .expect("buckets");
    let renewing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let keep = renewing.clone();
    actix::spawn(async move {
        while keep.load(std::sync::atomic::Ordering::Relaxed) {
            home_lease.renew_lease().await.expect("lease");
            actix::clock::sleep(TTL / 4).await;
        }
    });
    let mut requests = client
        .subscribe(terminal_attach_subject(&cluster))
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");
    assert!(until(|| here.view.is_alive("fra-9")).await);

    let (browser, delivered) = owner(7);
    let session_id = SessionId::random();
    let stand_in =
        RemoteTerminal::new(here.outbox.clone(), here.view.clone(), session_id.clone()).start();
    let attach = stand_in.send(AttachOwner {
        user_id: UserId(uuid::Uuid::new_v4()),
        owner: browser,
        seen_offset: None,
    });
    let request = requests.next().await.expect("attach request");
    let key = ClusterKey::from_bytes(KEY);
    let subject = request.subject.to_string();
    let opened = open(
        &key,
        &subject,
        &request.payload,
        Utc::now(),
        &mut NonceCache::new(4),
    )
    .expect("sealed by the cluster");
    let asked: AttachWire = serde_json::from_str(&opened.body).expect("attach");
    assert_eq!(asked.session_id, session_id.to_string());
    let reply_to = request.reply.expect("a request").to_string();
    let body = serde_json::to_string(&ReplyWire::Sent).expect("reply");
    let sealed = seal(&key, "fra-9", &reply_to, &body, Utc::now());
    client
        .publish(reply_to, sealed.into())
        .await
        .expect("reply");
    assert_eq!(attach.await.expect("stand-in"), Ok(()));
    assert!(
        frames(&delivered).is_empty(),
        "nothing said while the home lives"
    );

    // The home stops renewing its lease.
    renewing.store(false, std::sync::atomic::Ordering::Relaxed);
    let ended = until(|| !frames(&delivered).is_empty()).await;
    assert!(ended, "the owner is told once the home's lease expired");
    let closed: serde_json::Value = serde_json::from_str(&frames(&delivered)[0]).expect("frame");
    assert_eq!(
        (
            closed["type"].as_str(),
            closed["sessionId"].as_str(),
            closed["reason"].as_str()
        ),
        (
            Some("terminal_closed"),
            Some(session_id.as_str()),
            Some(HOME_LOST)
        )
    );
    assert!(until(|| !stand_in.connected()).await, "the stand-in stops");
    drop_buckets(&client, &cluster).await;
}

async fn drop_buckets(client: &async_nats::Client, cluster: &str) {
    let jetstream = async_nats::jetstream::new(client.clone());
    for bucket in ["presence", "instances"] {
        let _ = jetstream
            .delete_key_value(format!("fg_{cluster}_{bucket}"))
            .await;
    }
}
