//! `CommandRepo`: every command and its result, written when it starts and when it ends.

use actix::{Actor, AtomicResponse, Context, Handler, Message, WrapFuture};
use chrono::{DateTime, Utc};
use fleetgate_entity::commands;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};

use crate::protocol::{CommandId, MachineId, UserId};

/// Most output kept per command, bytes.
pub const MAX_STORED_OUTPUT: usize = 64 * 1024;

/// A command was sent to an agent.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), DbErr>")]
pub struct CommandStarted {
    /// The command.
    pub command_id: CommandId,
    /// Who ran it.
    pub user_id: UserId,
    /// Where.
    pub machine_id: MachineId,
    /// The text.
    pub command: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A command completed or timed out.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), DbErr>")]
pub struct CommandFinished {
    /// The command.
    pub command_id: CommandId,
    /// `completed` or `timed_out`.
    pub status: &'static str,
    /// Exit code when completed.
    pub exit_code: Option<i32>,
    /// When.
    pub at: DateTime<Utc>,
    /// Total output bytes.
    pub output_bytes: u64,
    /// The first 64 KiB of output.
    pub output: String,
}

/// The actor owning writes to `commands`.
pub struct CommandRepo {
    db: DatabaseConnection,
}

impl CommandRepo {
    /// A repository over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl Actor for CommandRepo {
    type Context = Context<Self>;
}

impl Handler<CommandStarted> for CommandRepo {
    type Result = AtomicResponse<Self, Result<(), DbErr>>;

    fn handle(&mut self, started: CommandStarted, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        AtomicResponse::new(Box::pin(
            async move {
                commands::ActiveModel {
                    id: Set(started.command_id),
                    user_id: Set(started.user_id),
                    machine_id: Set(started.machine_id),
                    command: Set(started.command),
                    status: Set("running".to_owned()),
                    exit_code: Set(None),
                    started_at: Set(started.at),
                    finished_at: Set(None),
                    output_bytes: Set(0),
                    output: Set(String::new()),
                }
                .insert(&db)
                .await
                .map(|_| ())
            }
            .into_actor(self),
        ))
    }
}

impl Handler<CommandFinished> for CommandRepo {
    type Result = AtomicResponse<Self, Result<(), DbErr>>;

    fn handle(&mut self, finished: CommandFinished, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        AtomicResponse::new(Box::pin(
            async move {
                commands::Entity::update_many()
                    .col_expr(commands::Column::Status, Expr::value(finished.status))
                    .col_expr(commands::Column::ExitCode, Expr::value(finished.exit_code))
                    .col_expr(commands::Column::FinishedAt, Expr::value(finished.at))
                    .col_expr(
                        commands::Column::OutputBytes,
                        Expr::value(finished.output_bytes as i64),
                    )
                    .col_expr(commands::Column::Output, Expr::value(finished.output))
                    .filter(commands::Column::Id.eq(finished.command_id.to_string()))
                    .exec(&db)
                    .await
                    .map(|_| ())
            }
            .into_actor(self),
        ))
    }
}

/// Output received so far by a running command (written at most about once a second).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), DbErr>")]
pub struct CommandProgress {
    /// The command.
    pub command_id: CommandId,
    /// Total output bytes so far.
    pub output_bytes: u64,
    /// The first 64 KiB of output so far.
    pub output: String,
}

impl Handler<CommandProgress> for CommandRepo {
    type Result = AtomicResponse<Self, Result<(), DbErr>>;

    fn handle(&mut self, progress: CommandProgress, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        AtomicResponse::new(Box::pin(
            async move {
                commands::Entity::update_many()
                    .col_expr(
                        commands::Column::OutputBytes,
                        Expr::value(progress.output_bytes as i64),
                    )
                    .col_expr(commands::Column::Output, Expr::value(progress.output))
                    .filter(commands::Column::Id.eq(progress.command_id.to_string()))
                    .filter(commands::Column::Status.eq("running"))
                    .exec(&db)
                    .await
                    .map(|_| ())
            }
            .into_actor(self),
        ))
    }
}
