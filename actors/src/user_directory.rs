//! `UserDirectory`: who may hold an operator socket right now. It keeps a snapshot of every
//! user's stored role and state (read through `UserRepo` every `poll_every`, and at once when
//! told of a change), answers the `/ws/web` upgrade check from it, and closes every socket of a
//! user who is disabled, deleted or given another role (`RevokeSocket`, 4403) as soon as the
//! change is seen — whether it came through the API, the CLI or another process sharing the
//! database.

use std::collections::HashMap;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, Recipient, ResponseActFuture,
    WrapFuture,
};
use sea_orm::DbErr;

use crate::identity::Role;
use crate::protocol::{ConnectionId, UserId};
use crate::repo::access::ForgetUser;
use crate::repo::user::{GetUser, ListUsers, UserSummary};

/// A user's stored role and state, as the directory last read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredUser {
    /// Stored role (`None`: an unknown spelling, treated as no access).
    pub role: Option<Role>,
    /// Whether the user is disabled.
    pub disabled: bool,
}

impl StoredUser {
    /// The role the user may act with now, if they may connect at all.
    pub fn usable_role(self) -> Option<Role> {
        self.role.filter(|_| !self.disabled)
    }
}

impl From<&UserSummary> for StoredUser {
    fn from(user: &UserSummary) -> Self {
        Self {
            role: user.role,
            disabled: user.disabled,
        }
    }
}

/// The stored state of `user_id` (`None`: no such user).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Option<StoredUser>, DbErr>")]
pub struct LookupUser {
    /// The user.
    pub user_id: UserId,
}

/// Watch an operator socket admitted as `admitted`: it is revoked once the user changes.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct WatchSocket {
    /// The socket's user.
    pub user_id: UserId,
    /// The socket.
    pub connection_id: ConnectionId,
    /// The user's state when the socket was admitted.
    pub admitted: StoredUser,
    /// Where to send the revocation.
    pub revoke: Recipient<RevokeSocket>,
}

/// Stop watching a socket (it closed).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct UnwatchSocket {
    /// The socket's user.
    pub user_id: UserId,
    /// The socket.
    pub connection_id: ConnectionId,
}

/// Users were changed: read them again now (answered once sockets to revoke were told).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct UsersChanged;

/// To an operator socket: your user was disabled, deleted or changed; close with 4403.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct RevokeSocket {
    /// Why, for the client and the audit trail.
    pub reason: &'static str,
}

/// The peers of the directory.
pub struct UserDirectoryLinks {
    /// `UserRepo`: every user.
    pub list: Recipient<ListUsers>,
    /// `UserRepo`: one user.
    pub get: Recipient<GetUser>,
    /// `AccessRepo`: drop a changed user's cached role and grants.
    pub forget: Recipient<ForgetUser>,
}

/// The actor; see the module documentation.
pub struct UserDirectory {
    links: UserDirectoryLinks,
    poll_every: Duration,
    users: HashMap<UserId, StoredUser>,
    sockets: HashMap<UserId, HashMap<ConnectionId, Recipient<RevokeSocket>>>,
}

impl UserDirectory {
    /// A directory reading users every `poll_every`.
    pub fn new(links: UserDirectoryLinks, poll_every: Duration) -> Self {
        Self {
            links,
            poll_every,
            users: HashMap::new(),
            sockets: HashMap::new(),
        }
    }

    /// Replaces the snapshot with `fresh`, revoking the sockets of every user who changed.
    fn apply(&mut self, fresh: HashMap<UserId, StoredUser>) {
        let old = std::mem::replace(&mut self.users, fresh);
        for (id, before) in &old {
            let now = self.users.get(id).copied();
            if now != Some(*before) {
                self.links.forget.do_send(ForgetUser { user_id: *id });
                self.revoke_if_changed(*id, Some(*before), now);
            }
        }
        for id in self.users.keys().filter(|id| !old.contains_key(id)) {
            self.links.forget.do_send(ForgetUser { user_id: *id });
        }
    }

    /// Revokes `user_id`'s sockets if `now` no longer admits them as `before` did.
    fn revoke_if_changed(
        &mut self,
        user_id: UserId,
        before: Option<StoredUser>,
        now: Option<StoredUser>,
    ) {
        let reason = match now {
            None => "user deleted",
            Some(now) if now.disabled => "user disabled",
            Some(now) if before.is_some_and(|b| b.role != now.role) => "role changed",
            Some(_) => return,
        };
        let Some(sockets) = self.sockets.remove(&user_id) else {
            return;
        };
        tracing::info!(%user_id, sockets = sockets.len(), reason, "closing a changed user's sockets");
        for revoke in sockets.into_values() {
            revoke.do_send(RevokeSocket { reason });
        }
    }

    /// Reads every user again and applies the result.
    fn refresh(&mut self) -> ResponseActFuture<Self, ()> {
        let list = self.links.list.send(ListUsers);
        Box::pin(
            list.into_actor(self)
                .map(|outcome, directory, _| match outcome {
                    Ok(Ok(users)) => {
                        directory.apply(users.iter().map(|u| (u.id, StoredUser::from(u))).collect())
                    }
                    Ok(Err(err)) => tracing::error!(error = %err, "users could not be read"),
                    Err(err) => tracing::error!(error = %err, "user repository unreachable"),
                }),
        )
    }
}

impl Actor for UserDirectory {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.wait(self.refresh());
        ctx.run_interval(self.poll_every, |directory, ctx| {
            ctx.wait(directory.refresh());
        });
    }
}

impl Handler<LookupUser> for UserDirectory {
    type Result = ResponseActFuture<Self, Result<Option<StoredUser>, DbErr>>;

    fn handle(&mut self, request: LookupUser, _: &mut Context<Self>) -> Self::Result {
        if let Some(user) = self.users.get(&request.user_id) {
            return Box::pin(actix::fut::ready(Ok(Some(*user))));
        }
        // Not in the snapshot (created since it was read, or gone): ask the database.
        let get = self.links.get.send(GetUser {
            id: request.user_id,
        });
        Box::pin(get.into_actor(self).map(move |outcome, directory, _| {
            let found = outcome
                .map_err(|err| DbErr::Custom(err.to_string()))??
                .map(|row| StoredUser::from(&UserSummary::from(row)));
            if let Some(user) = found {
                directory.users.insert(request.user_id, user);
            }
            Ok(found)
        }))
    }
}

impl Handler<WatchSocket> for UserDirectory {
    type Result = ();

    fn handle(&mut self, watch: WatchSocket, _: &mut Context<Self>) {
        let current = self.users.get(&watch.user_id).copied();
        self.sockets
            .entry(watch.user_id)
            .or_default()
            .insert(watch.connection_id, watch.revoke);
        // The user may have changed between the upgrade check and now.
        if current != Some(watch.admitted) {
            self.revoke_if_changed(watch.user_id, Some(watch.admitted), current);
        }
    }
}

impl Handler<UnwatchSocket> for UserDirectory {
    type Result = ();

    fn handle(&mut self, unwatch: UnwatchSocket, _: &mut Context<Self>) {
        if let Some(sockets) = self.sockets.get_mut(&unwatch.user_id) {
            sockets.remove(&unwatch.connection_id);
            if sockets.is_empty() {
                self.sockets.remove(&unwatch.user_id);
            }
        }
    }
}

impl Handler<UsersChanged> for UserDirectory {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: UsersChanged, _: &mut Context<Self>) -> Self::Result {
        self.refresh()
    }
}
