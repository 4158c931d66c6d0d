//! `UserRepo`: operator accounts. Password hashes are computed by callers on a blocking pool.

use actix::{Actor, AtomicResponse, Context, Handler, Message, ResponseFuture, WrapFuture};
use chrono::Utc;
use fleetgate_entity::users;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, Set,
};
use uuid::Uuid;

use crate::identity::Role;

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
    pub id: Uuid,
}

/// How many users exist.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<u64, DbErr>")]
pub struct CountUsers;

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
        id: Set(Uuid::new_v4()),
        username: Set(request.username),
        password_hash: Set(request.password_hash),
        role: Set(request.role.as_str().to_owned()),
        disabled: Set(false),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
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
