//! `users`: operators who log in to fleetgate.

use fleetgate_protocol::ids::UserId;
use sea_orm::entity::prelude::*;

/// An operator account.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// User id, the JWT `sub`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: UserId,
    /// Login name, unique.
    #[sea_orm(unique)]
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    /// A disabled user cannot log in.
    pub disabled: bool,
    /// When the account was created.
    pub created_at: DateTimeUtc,
}

/// Relations of `users`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
