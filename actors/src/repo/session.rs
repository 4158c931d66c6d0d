//! `SessionRepo`: the history of terminal sessions.

use actix::{Actor, AtomicResponse, Context, Handler, Message, WrapFuture};
use chrono::{DateTime, Utc};
use fleetgate_entity::terminal_sessions;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

use crate::protocol::{MachineId, SessionId, UserId};

/// A session was opened.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct SessionOpened {
    /// The session.
    pub session_id: SessionId,
    /// Its owner (JWT `sub`, a UUID).
    pub user_id: UserId,
    /// Its machine.
    pub machine_id: MachineId,
    /// When.
    pub at: DateTime<Utc>,
}

/// A session ended.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct SessionClosed {
    /// The session.
    pub session_id: SessionId,
    /// When.
    pub at: DateTime<Utc>,
    /// Input bytes sent to the shell.
    pub bytes_in: u64,
    /// Output bytes received.
    pub bytes_out: u64,
    /// Why.
    pub reason: &'static str,
}

/// The actor owning writes to `terminal_sessions`.
pub struct SessionRepo {
    db: DatabaseConnection,
}

impl SessionRepo {
    /// A repository over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl Actor for SessionRepo {
    type Context = Context<Self>;
}

impl Handler<SessionOpened> for SessionRepo {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, opened: SessionOpened, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let row = terminal_sessions::ActiveModel {
                    id: Set(opened.session_id.clone()),
                    user_id: Set(opened.user_id),
                    machine_id: Set(opened.machine_id),
                    started_at: Set(opened.at),
                    ended_at: Set(None),
                    bytes_in: Set(0),
                    bytes_out: Set(0),
                    close_reason: Set(None),
                };
                if let Err(err) = row.insert(&db).await {
                    tracing::error!(session_id = %opened.session_id, error = %err, "session record failed");
                }
            }
            .into_actor(self),
        ))
    }
}

impl Handler<SessionClosed> for SessionRepo {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, closed: SessionClosed, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let result = terminal_sessions::Entity::update_many()
                    .col_expr(terminal_sessions::Column::EndedAt, Expr::value(closed.at))
                    .col_expr(terminal_sessions::Column::BytesIn, Expr::value(closed.bytes_in as i64))
                    .col_expr(terminal_sessions::Column::BytesOut, Expr::value(closed.bytes_out as i64))
                    .col_expr(terminal_sessions::Column::CloseReason, Expr::value(closed.reason))
                    .filter(terminal_sessions::Column::Id.eq(closed.session_id.to_string()))
                    .exec(&db)
                    .await;
                if let Err(err) = result {
                    tracing::error!(session_id = %closed.session_id, error = %err, "session close record failed");
                }
            }
            .into_actor(self),
        ))
    }
}

/// Completes once every session record sent before it is written (used at shutdown).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SessionBarrier;

impl Handler<SessionBarrier> for SessionRepo {
    type Result = ();

    fn handle(&mut self, _: SessionBarrier, _: &mut Context<Self>) {}
}

/// At start-up: sessions and commands left open by a previous run are closed as interrupted.
pub async fn close_interrupted(db: &DatabaseConnection) -> Result<(u64, u64), sea_orm::DbErr> {
    use fleetgate_entity::commands;
    let now = Utc::now();
    let sessions = terminal_sessions::Entity::update_many()
        .col_expr(terminal_sessions::Column::EndedAt, Expr::value(now))
        .col_expr(
            terminal_sessions::Column::CloseReason,
            Expr::value("server_restart"),
        )
        .filter(terminal_sessions::Column::EndedAt.is_null())
        .exec(db)
        .await?;
    let commands = commands::Entity::update_many()
        .col_expr(commands::Column::Status, Expr::value("interrupted"))
        .col_expr(commands::Column::FinishedAt, Expr::value(now))
        .filter(commands::Column::Status.eq("running"))
        .exec(db)
        .await?;
    Ok((sessions.rows_affected, commands.rows_affected))
}
