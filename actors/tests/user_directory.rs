//! `UserDirectory` at the message level: a fake user repository whose rows the test edits,
//! probes for the access cache and for the sockets it revokes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, Context, Handler};
use chrono::Utc;
use common::{Log, entries, probe, until};
use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::{ConnectionId, UserId};
use fleetgate_actors::repo::access::ForgetUser;
use fleetgate_actors::repo::user::{GetUser, ListUsers, UserSummary};
use fleetgate_actors::user_directory::{
    LookupUser, RevokeSocket, StoredUser, UnwatchSocket, UserDirectory, UserDirectoryLinks,
    UsersChanged, WatchSocket,
};
use fleetgate_entity::users;
use sea_orm::DbErr;
use uuid::Uuid;

/// The users table as the test edits it.
type Rows = Arc<Mutex<Vec<UserSummary>>>;

/// Answers `ListUsers` and `GetUser` from `rows`.
struct FakeUserRepo {
    rows: Rows,
}

impl Actor for FakeUserRepo {
    type Context = Context<Self>;
}

impl Handler<ListUsers> for FakeUserRepo {
    type Result = Result<Vec<UserSummary>, DbErr>;
    fn handle(&mut self, _: ListUsers, _: &mut Context<Self>) -> Self::Result {
        Ok(self.rows.lock().expect("rows").clone())
    }
}

impl Handler<GetUser> for FakeUserRepo {
    type Result = Result<Option<users::Model>, DbErr>;
    fn handle(&mut self, request: GetUser, _: &mut Context<Self>) -> Self::Result {
        let rows = self.rows.lock().expect("rows");
        Ok(rows
            .iter()
            .find(|u| u.id == request.id)
            .map(|u| users::Model {
                id: u.id,
                username: u.username.clone(),
                password_hash: String::new(),
                role: u.role.map_or("?", Role::as_str).to_owned(),
                disabled: u.disabled,
                created_at: u.created_at,
            }))
    }
}

fn user(name: &str, role: Role) -> UserSummary {
    UserSummary {
        id: UserId(Uuid::new_v4()),
        username: name.to_owned(),
        role: Some(role),
        disabled: false,
        created_at: Utc::now(),
    }
}

struct Setup {
    rows: Rows,
    directory: actix::Addr<UserDirectory>,
    forgotten: Log<ForgetUser>,
}

fn setup(rows: Vec<UserSummary>, poll_every: Duration) -> Setup {
    let rows: Rows = Arc::new(Mutex::new(rows));
    let repo = FakeUserRepo { rows: rows.clone() }.start();
    let (forget, forgotten) = probe::<ForgetUser>();
    let directory = UserDirectory::new(
        UserDirectoryLinks {
            list: repo.clone().recipient(),
            get: repo.recipient(),
            forget,
        },
        poll_every,
    )
    .start();
    Setup {
        rows,
        directory,
        forgotten,
    }
}

fn edit(rows: &Rows, id: UserId, change: impl FnOnce(&mut UserSummary)) {
    let mut rows = rows.lock().expect("rows");
    change(rows.iter_mut().find(|u| u.id == id).expect("row"));
}

async fn watch(setup: &Setup, user: &UserSummary) -> Log<RevokeSocket> {
    let (revoke, revoked) = probe::<RevokeSocket>();
    setup.directory.do_send(WatchSocket {
        user_id: user.id,
        connection_id: ConnectionId::next(),
        admitted: StoredUser {
            role: user.role,
            disabled: false,
        },
        revoke,
    });
    revoked
}

const SLOW_POLL: Duration = Duration::from_secs(3600);

#[actix::test]
async fn lookups_answer_the_stored_role_and_state() {
    let alice = user("alice", Role::Operator);
    let setup = setup(vec![alice.clone()], SLOW_POLL);
    let found = setup
        .directory
        .send(LookupUser { user_id: alice.id })
        .await
        .expect("mailbox")
        .expect("db");
    assert_eq!(
        found.and_then(StoredUser::usable_role),
        Some(Role::Operator)
    );
    let nobody = setup
        .directory
        .send(LookupUser {
            user_id: UserId(Uuid::new_v4()),
        })
        .await
        .expect("mailbox")
        .expect("db");
    assert_eq!(nobody, None);
}

#[actix::test]
async fn a_user_created_after_the_snapshot_is_found() {
    let setup = setup(Vec::new(), SLOW_POLL);
    let bob = user("bob", Role::Viewer);
    setup.rows.lock().expect("rows").push(bob.clone());
    let found = setup
        .directory
        .send(LookupUser { user_id: bob.id })
        .await
        .expect("mailbox")
        .expect("db");
    assert_eq!(found.and_then(StoredUser::usable_role), Some(Role::Viewer));
}

#[actix::test]
async fn disabling_revokes_every_socket_of_that_user_only() {
    let alice = user("alice", Role::Operator);
    let carol = user("carol", Role::Operator);
    let setup = setup(vec![alice.clone(), carol.clone()], SLOW_POLL);
    let first = watch(&setup, &alice).await;
    let second = watch(&setup, &alice).await;
    let other = watch(&setup, &carol).await;
    edit(&setup.rows, alice.id, |u| u.disabled = true);
    setup.directory.send(UsersChanged).await.expect("mailbox");
    assert!(until(|| entries(&first).len() == 1 && entries(&second).len() == 1).await);
    assert_eq!(entries(&first)[0].reason, "user disabled");
    assert!(entries(&other).is_empty());
    assert!(
        entries(&setup.forgotten)
            .iter()
            .any(|f| f.user_id == alice.id),
        "the access cache forgets the user"
    );
}

#[actix::test]
async fn deletion_and_role_changes_are_seen_by_the_poll() {
    let alice = user("alice", Role::Operator);
    let dave = user("dave", Role::Admin);
    let setup = setup(vec![alice.clone(), dave.clone()], Duration::from_millis(50));
    let alice_socket = watch(&setup, &alice).await;
    let dave_socket = watch(&setup, &dave).await;
    setup
        .rows
        .lock()
        .expect("rows")
        .retain(|u| u.id != alice.id);
    edit(&setup.rows, dave.id, |u| u.role = Some(Role::Viewer));
    assert!(until(|| entries(&alice_socket).len() == 1 && entries(&dave_socket).len() == 1).await);
    assert_eq!(entries(&alice_socket)[0].reason, "user deleted");
    assert_eq!(entries(&dave_socket)[0].reason, "role changed");
}

#[actix::test]
async fn a_password_change_or_a_closed_socket_revokes_nothing() {
    let alice = user("alice", Role::Operator);
    let setup = setup(vec![alice.clone()], SLOW_POLL);
    let open = watch(&setup, &alice).await;
    let (revoke, closed) = probe::<RevokeSocket>();
    let gone = ConnectionId::next();
    setup.directory.do_send(WatchSocket {
        user_id: alice.id,
        connection_id: gone,
        admitted: StoredUser {
            role: Some(Role::Operator),
            disabled: false,
        },
        revoke,
    });
    setup.directory.do_send(UnwatchSocket {
        user_id: alice.id,
        connection_id: gone,
    });
    edit(&setup.rows, alice.id, |u| u.username = "alice2".into());
    setup.directory.send(UsersChanged).await.expect("mailbox");
    assert!(entries(&open).is_empty());
    edit(&setup.rows, alice.id, |u| u.disabled = true);
    setup.directory.send(UsersChanged).await.expect("mailbox");
    assert!(until(|| entries(&open).len() == 1).await);
    assert!(
        entries(&closed).is_empty(),
        "an unwatched socket is not told"
    );
}

#[actix::test]
async fn a_socket_admitted_with_a_stale_state_is_revoked_when_watched() {
    let alice = user("alice", Role::Operator);
    let setup = setup(vec![alice.clone()], SLOW_POLL);
    edit(&setup.rows, alice.id, |u| u.disabled = true);
    setup.directory.send(UsersChanged).await.expect("mailbox");
    // The upgrade was checked just before the change: the socket is revoked as it registers.
    let revoked = watch(&setup, &alice).await;
    assert!(until(|| entries(&revoked).len() == 1).await);
}
