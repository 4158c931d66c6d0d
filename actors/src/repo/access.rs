//! `AccessRepo`: may this user do this on this machine? Roles and `machine_access` grants from
//! the database, cached for at most 30 s (forgotten at once when they change); never data the
//! client sent. Reads run concurrently (a status change checks every subscribed socket at
//! once); only grant writes are serialized.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, AtomicResponse, Context, Handler, Message, ResponseActFuture, WrapFuture,
};
use fleetgate_entity::{machine_access, machines, users};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use super::machine_record::Machine;
use crate::identity::Role;
use crate::protocol::{MachineId, UserId};

/// How long a user's role and grants are trusted before being read again.
pub const ACCESS_CACHE_TTL: Duration = Duration::from_secs(30);

/// What a user wants to do on a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See it and its status.
    View,
    /// Open a terminal.
    Terminal,
    /// Run a command.
    Command,
    /// Watch other users' live terminal sessions read-only.
    Observe,
}

impl Action {
    /// The `machine_access.level` granting it.
    pub fn level(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Terminal => "terminal",
            Action::Command => "command",
            Action::Observe => "observe",
        }
    }
}

/// Why access was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The machine does not exist.
    #[error("unknown machine")]
    UnknownMachine,
    /// Not allowed (unknown or disabled user, role or grant missing).
    #[error("forbidden")]
    Forbidden,
    /// The database failed.
    #[error("database: {0}")]
    Database(String),
}

impl From<DbErr> for AccessError {
    fn from(err: DbErr) -> Self {
        AccessError::Database(err.to_string())
    }
}

/// May `user_id` do `action` on `machine_id`? Answers with the machine.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Machine, AccessError>")]
pub struct CheckAccess {
    /// The JWT `sub`.
    pub user_id: UserId,
    /// The machine.
    pub machine_id: MachineId,
    /// What the user wants.
    pub action: Action,
}

/// The machines `user_id` may view that match `filter`, by id.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Vec<Machine>, AccessError>")]
pub struct VisibleMachines {
    /// The JWT `sub`.
    pub user_id: UserId,
    /// Which of them (all by default).
    pub filter: MachineFilter,
}

/// A page of a machine list, and filters on it.
#[derive(Debug, Clone, Default)]
pub struct MachineFilter {
    /// Only machines whose id sorts after this one (the previous page's last).
    pub after: Option<MachineId>,
    /// At most this many.
    pub limit: Option<u64>,
    /// Only machines with this stored status (`online` or `offline`).
    pub status: Option<String>,
    /// Only machines whose name, hostname or address contains this, ignoring case.
    pub text: Option<String>,
}

impl MachineFilter {
    /// The query for the machines matching this filter among `only` (all when `None`).
    fn query(&self, only: Option<Vec<MachineId>>) -> sea_orm::Select<machines::Entity> {
        use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
        use sea_orm::{Condition, QueryOrder, QuerySelect};
        let mut query = machines::Entity::find().order_by_asc(machines::Column::Id);
        if let Some(ids) = only {
            query = query.filter(machines::Column::Id.is_in(ids));
        }
        if let Some(after) = self.after {
            query = query.filter(machines::Column::Id.gt(after));
        }
        if let Some(status) = &self.status {
            query = query.filter(machines::Column::Status.eq(status.as_str()));
        }
        if let Some(text) = self.text.as_deref().filter(|t| !t.is_empty()) {
            let escaped = text
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let pattern = || LikeExpr::new(format!("%{escaped}%")).escape('\\');
            let column = |c: machines::Column| Expr::expr(Func::lower(Expr::col(c)));
            query = query.filter(
                Condition::any()
                    .add(column(machines::Column::Name).like(pattern()))
                    .add(column(machines::Column::Hostname).like(pattern()))
                    .add(column(machines::Column::Ip).like(pattern())),
            );
        }
        if let Some(limit) = self.limit {
            query = query.limit(limit);
        }
        query
    }
}

/// A user's role and grants as read at `read_at`.
#[derive(Debug, Clone)]
struct UserAccess {
    read_at: Instant,
    role: Role,
    grants: HashMap<MachineId, HashSet<String>>,
}

impl UserAccess {
    fn allows(&self, machine: MachineId, action: Action) -> bool {
        let granted = |level: &str| self.grants.get(&machine).is_some_and(|g| g.contains(level));
        match (self.role, action) {
            (Role::Admin, _) => true,
            (_, Action::View) => !self.grants.get(&machine).is_none_or(HashSet::is_empty),
            (Role::Viewer, Action::Terminal | Action::Command) => false,
            // Watching is read-only: viewers (auditors) may hold `observe` too.
            (_, action) => granted(action.level()),
        }
    }
}

async fn load_user(db: &DatabaseConnection, user_id: &UserId) -> Result<Option<UserAccess>, DbErr> {
    let id = *user_id;
    let Some(user) = users::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let Some(role) = Role::parse(&user.role) else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    let mut grants: HashMap<MachineId, HashSet<String>> = HashMap::new();
    for grant in machine_access::Entity::find()
        .filter(machine_access::Column::UserId.eq(id))
        .all(db)
        .await?
    {
        grants
            .entry(grant.machine_id)
            .or_default()
            .insert(grant.level);
    }
    Ok(Some(UserAccess {
        read_at: Instant::now(),
        role,
        grants,
    }))
}

/// The actor answering authorisation questions.
pub struct AccessRepo {
    db: DatabaseConnection,
    cache: HashMap<UserId, UserAccess>,
    /// Bumped whenever a user's access may have changed: a read that started before the bump
    /// does not put what it read in the cache.
    generation: u64,
}

impl AccessRepo {
    /// A repository over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            cache: HashMap::new(),
            generation: 0,
        }
    }

    /// The cached access of `user_id` if fresh.
    fn cached(&self, user_id: &UserId) -> Option<UserAccess> {
        self.cache
            .get(user_id)
            .filter(|a| a.read_at.elapsed() < ACCESS_CACHE_TTL)
            .cloned()
    }
}

impl Actor for AccessRepo {
    type Context = Context<Self>;
}

/// Loads (or reuses) a user's access, caching what was read.
fn with_access<F, T>(
    repo: &mut AccessRepo,
    user_id: UserId,
    then: F,
) -> actix::ResponseActFuture<AccessRepo, Result<T, AccessError>>
where
    F: AsyncFnOnce(DatabaseConnection, UserAccess) -> Result<T, AccessError> + 'static,
    T: 'static,
{
    let db = repo.db.clone();
    let cached = repo.cached(&user_id);
    let key = user_id;
    let generation = repo.generation;
    Box::pin(
        async move {
            let access = match cached {
                Some(access) => Some(access),
                None => load_user(&db, &user_id).await?,
            };
            let Some(access) = access else {
                return Err(AccessError::Forbidden);
            };
            let result = then(db, access.clone()).await;
            Ok((access, result))
        }
        .into_actor(repo)
        .map(
            move |outcome: Result<(UserAccess, Result<T, AccessError>), AccessError>, repo, _| {
                let (access, result) = outcome?;
                if repo.generation == generation {
                    repo.cache.insert(key, access);
                }
                result
            },
        ),
    )
}

impl Handler<CheckAccess> for AccessRepo {
    type Result = ResponseActFuture<Self, Result<Machine, AccessError>>;

    fn handle(&mut self, check: CheckAccess, _: &mut Context<Self>) -> Self::Result {
        let (machine, action) = (check.machine_id, check.action);
        with_access(self, check.user_id, async move |db, access| {
            let row = machines::Entity::find_by_id(machine)
                .one(&db)
                .await?
                .ok_or(AccessError::UnknownMachine)?;
            if access.allows(machine, action) {
                Ok(Machine::from(row))
            } else {
                Err(AccessError::Forbidden)
            }
        })
    }
}

impl Handler<VisibleMachines> for AccessRepo {
    type Result = ResponseActFuture<Self, Result<Vec<Machine>, AccessError>>;

    fn handle(&mut self, request: VisibleMachines, _: &mut Context<Self>) -> Self::Result {
        with_access(self, request.user_id, async move |db, access| {
            let only = (access.role != Role::Admin).then(|| {
                let granted = access
                    .grants
                    .iter()
                    .filter(|(_, levels)| !levels.is_empty());
                granted.map(|(id, _)| *id).collect()
            });
            let rows = request.filter.query(only).all(&db).await?;
            Ok(rows.into_iter().map(Machine::from).collect())
        })
    }
}

/// The role of `user_id` as stored (cached like grants); `None` for unknown or disabled users.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Option<Role>, AccessError>")]
pub struct UserRole {
    /// The JWT `sub`.
    pub user_id: UserId,
}

impl Handler<UserRole> for AccessRepo {
    type Result = ResponseActFuture<Self, Result<Option<Role>, AccessError>>;

    fn handle(&mut self, request: UserRole, _: &mut Context<Self>) -> Self::Result {
        let inner = with_access(
            self,
            request.user_id,
            async move |_, access| Ok(access.role),
        );
        Box::pin(inner.map(|result, _, _| match result {
            Ok(role) => Ok(Some(role)),
            Err(AccessError::Forbidden) => Ok(None),
            Err(other) => Err(other),
        }))
    }
}

/// Forget what is cached about `user_id` (their role, state or grants changed).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ForgetUser {
    /// The user.
    pub user_id: UserId,
}

impl Handler<ForgetUser> for AccessRepo {
    type Result = ();

    fn handle(&mut self, request: ForgetUser, _: &mut Context<Self>) {
        self.generation += 1;
        self.cache.remove(&request.user_id);
    }
}

/// Replace the grants of `user_id` on `machine_id` (empty removes them all).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), AccessError>")]
pub struct SetGrants {
    /// The user.
    pub user_id: UserId,
    /// The machine.
    pub machine_id: MachineId,
    /// `view`, `terminal`, `command`.
    pub levels: Vec<String>,
}

impl Handler<SetGrants> for AccessRepo {
    type Result = AtomicResponse<Self, Result<(), AccessError>>;

    fn handle(&mut self, request: SetGrants, _: &mut Context<Self>) -> Self::Result {
        // The user's cached grants are stale from now on.
        self.generation += 1;
        self.cache.remove(&request.user_id);
        let db = self.db.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let txn = super::begin_write(&db).await?;
                machine_access::Entity::delete_many()
                    .filter(machine_access::Column::UserId.eq(request.user_id))
                    .filter(machine_access::Column::MachineId.eq(request.machine_id))
                    .exec(&txn)
                    .await?;
                for level in request.levels {
                    use sea_orm::ActiveModelTrait;
                    machine_access::ActiveModel {
                        user_id: sea_orm::Set(request.user_id),
                        machine_id: sea_orm::Set(request.machine_id),
                        level: sea_orm::Set(level),
                    }
                    .insert(&txn)
                    .await?;
                }
                txn.commit().await?;
                Ok(())
            }
            .into_actor(self),
        ))
    }
}
