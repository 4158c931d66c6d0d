//! `UserRepo`: operator accounts. Password hashes are computed by callers on a blocking pool.
//! Changes that could lock everyone out (disabling, demoting or deleting the last enabled
//! admin) are refused.

use actix::{Actor, AtomicResponse, Context, Handler, Message, ResponseFuture, WrapFuture};
use chrono::Utc;
use fleetgate_entity::users;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use crate::identity::Role;
use crate::protocol::UserId;

/// Create a user; fails if the name is taken.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<users::Model, DbErr>")]
pub struct CreateUser {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// Find a user by login name.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Option<users::Model>, DbErr>")]
pub struct FindUser {
    /// Login name.
    pub username: String,
}

/// Find a user by id.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Option<users::Model>, DbErr>")]
pub struct GetUser {
    /// User id.
    pub id: UserId,
}

/// How many users exist.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<u64, DbErr>")]
pub struct CountUsers;

/// A user as listed and reported (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// User id.
    pub id: UserId,
    /// Login name.
    pub username: String,
    /// Stored role (`None` if the row holds an unknown spelling).
    pub role: Option<Role>,
    /// Whether the user may not log in or connect.
    pub disabled: bool,
    /// When the user was created.
    pub created_at: chrono::DateTime<Utc>,
}

impl From<users::Model> for UserSummary {
    fn from(row: users::Model) -> Self {
        Self {
            id: row.id,
            username: row.username,
            role: Role::parse(&row.role),
            disabled: row.disabled,
            created_at: row.created_at,
        }
    }
}

/// Every user, by name.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Vec<UserSummary>, DbErr>")]
pub struct ListUsers;

/// One change to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// A new role.
    Role(Role),
    /// Disable (`true`) or enable (`false`).
    Disabled(bool),
    /// A new argon2id PHC string.
    PasswordHash(String),
}

/// Apply `change` to user `id`; answers with the user as changed.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<UserSummary, UserError>")]
pub struct ChangeUser {
    /// User id.
    pub id: UserId,
    /// What changes.
    pub change: UserChange,
}

/// Delete user `id` (their grants go with them; history keeps their id); answers with the
/// user as it was.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<UserSummary, UserError>")]
pub struct DeleteUser {
    /// User id.
    pub id: UserId,
}

/// Why a user change was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// No such user.
    #[error("no such user")]
    NotFound,
    /// The change would leave no enabled admin.
    #[error("the last enabled admin cannot be disabled, demoted or deleted")]
    LastAdmin,
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] DbErr),
}

/// The actor owning writes to `users`.
pub struct UserRepo {
    db: DatabaseConnection,
}

impl UserRepo {
    /// A repository over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl Actor for UserRepo {
    type Context = Context<Self>;
}

/// Inserts a user (shared by the actor and the `user add` command).
pub async fn create_user(
    db: &DatabaseConnection,
    request: CreateUser,
) -> Result<users::Model, DbErr> {
    users::ActiveModel {
        id: Set(UserId(Uuid::new_v4())),
        username: Set(request.username),
        password_hash: Set(request.password_hash),
        role: Set(request.role.as_str().to_owned()),
        disabled: Set(false),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}

/// Every user, ordered by name (shared by the actor and the `user list` command).
pub async fn list_users(db: &DatabaseConnection) -> Result<Vec<UserSummary>, DbErr> {
    let rows = users::Entity::find()
        .order_by_asc(users::Column::Username)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(UserSummary::from).collect())
}

/// Whether `user` is an enabled admin.
fn is_enabled_admin(user: &users::Model) -> bool {
    !user.disabled && Role::parse(&user.role) == Some(Role::Admin)
}

/// Refuses to take away the last enabled admin.
async fn keep_an_admin<C: ConnectionTrait>(db: &C, user: &users::Model) -> Result<(), UserError> {
    if !is_enabled_admin(user) {
        return Ok(());
    }
    let admins = users::Entity::find()
        .filter(users::Column::Role.eq(Role::Admin.as_str()))
        .filter(users::Column::Disabled.eq(false))
        .count(db)
        .await?;
    if admins <= 1 {
        return Err(UserError::LastAdmin);
    }
    Ok(())
}

/// Applies `change` to user `id` in one write transaction (shared with the CLI).
pub async fn change_user(
    db: &DatabaseConnection,
    id: UserId,
    change: UserChange,
) -> Result<UserSummary, UserError> {
    let txn = super::begin_write(db).await?;
    let user = users::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(UserError::NotFound)?;
    let demotes = match &change {
        UserChange::Role(role) => *role != Role::Admin,
        UserChange::Disabled(disabled) => *disabled,
        UserChange::PasswordHash(_) => false,
    };
    if demotes {
        keep_an_admin(&txn, &user).await?;
    }
    let mut row: users::ActiveModel = user.into();
    match change {
        UserChange::Role(role) => row.role = Set(role.as_str().to_owned()),
        UserChange::Disabled(disabled) => row.disabled = Set(disabled),
        UserChange::PasswordHash(hash) => row.password_hash = Set(hash),
    }
    let changed = row.update(&txn).await?;
    txn.commit().await?;
    Ok(changed.into())
}

/// Deletes user `id` in one write transaction (shared with the CLI).
pub async fn delete_user(db: &DatabaseConnection, id: UserId) -> Result<UserSummary, UserError> {
    let txn = super::begin_write(db).await?;
    let user = users::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(UserError::NotFound)?;
    keep_an_admin(&txn, &user).await?;
    users::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    Ok(user.into())
}

impl Handler<ListUsers> for UserRepo {
    type Result = ResponseFuture<Result<Vec<UserSummary>, DbErr>>;

    fn handle(&mut self, _: ListUsers, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move { list_users(&db).await })
    }
}

impl Handler<ChangeUser> for UserRepo {
    type Result = AtomicResponse<Self, Result<UserSummary, UserError>>;

    fn handle(&mut self, request: ChangeUser, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        AtomicResponse::new(Box::pin(
            async move { change_user(&db, request.id, request.change).await }.into_actor(self),
        ))
    }
}

impl Handler<DeleteUser> for UserRepo {
    type Result = AtomicResponse<Self, Result<UserSummary, UserError>>;

    fn handle(&mut self, request: DeleteUser, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        AtomicResponse::new(Box::pin(
            async move { delete_user(&db, request.id).await }.into_actor(self),
        ))
    }
}

impl Handler<CreateUser> for UserRepo {
    type Result = AtomicResponse<Self, Result<users::Model, DbErr>>;

    fn handle(&mut self, request: CreateUser, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        AtomicResponse::new(Box::pin(
            async move { create_user(&db, request).await }.into_actor(self),
        ))
    }
}

impl Handler<FindUser> for UserRepo {
    type Result = ResponseFuture<Result<Option<users::Model>, DbErr>>;

    fn handle(&mut self, request: FindUser, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move {
            users::Entity::find()
                .filter(users::Column::Username.eq(request.username))
                .one(&db)
                .await
        })
    }
}

impl Handler<GetUser> for UserRepo {
    type Result = ResponseFuture<Result<Option<users::Model>, DbErr>>;

    fn handle(&mut self, request: GetUser, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move { users::Entity::find_by_id(request.id).one(&db).await })
    }
}

impl Handler<CountUsers> for UserRepo {
    type Result = ResponseFuture<Result<u64, DbErr>>;

    fn handle(&mut self, _: CountUsers, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move { users::Entity::find().count(&db).await })
    }
}
