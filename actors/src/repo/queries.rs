//! `QueryRepo`: the read-only questions of the HTTP API, answered concurrently.

use actix::{Actor, Context, Handler, Message, ResponseFuture};
use chrono::{DateTime, Utc};
use fleetgate_entity::{audit_log, commands, metrics, ports, terminal_sessions};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::metric::MetricSample;
use crate::protocol::{CommandId, MachineId, SessionId, UserId};

/// Most rows one query returns.
pub const MAX_ROWS: u64 = 1000;

/// Metric rows of a machine in [since, until), oldest first.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Vec<MetricSample>, DbErr>")]
pub struct MetricRange {
    /// The machine.
    pub machine_id: MachineId,
    /// From.
    pub since: DateTime<Utc>,
    /// Until.
    pub until: DateTime<Utc>,
}

/// A machine's listening ports.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Vec<ports::Model>, DbErr>")]
pub struct ListPorts {
    /// The machine.
    pub machine_id: MachineId,
}

/// Terminal sessions, newest first.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<Vec<terminal_sessions::Model>, DbErr>")]
pub struct ListSessions {
    /// Only this user's.
    pub user_id: Option<UserId>,
    /// Only on this machine.
    pub machine_id: Option<MachineId>,
    /// Only open (`true`) or ended (`false`) ones.
    pub active: Option<bool>,
    /// At most this many.
    pub limit: u64,
}

/// Audit entries, newest first, older than `before_id` when given.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<Vec<audit_log::Model>, DbErr>")]
pub struct QueryAudit {
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this machine.
    pub machine_id: Option<MachineId>,
    /// Only this action.
    pub action: Option<String>,
    /// From.
    pub since: Option<DateTime<Utc>>,
    /// Until.
    pub until: Option<DateTime<Utc>>,
    /// Cursor: only ids below this.
    pub before_id: Option<i64>,
    /// At most this many.
    pub limit: u64,
}

/// Commands, newest first.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Vec<commands::Model>, DbErr>")]
pub struct ListCommands {
    /// Only this user's.
    pub user_id: Option<UserId>,
    /// Only on this machine.
    pub machine_id: Option<MachineId>,
    /// At most this many.
    pub limit: u64,
}

/// One terminal session by id.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Option<terminal_sessions::Model>, DbErr>")]
pub struct GetSession {
    /// The session id.
    pub session_id: SessionId,
}

/// One command by id.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Option<commands::Model>, DbErr>")]
pub struct GetCommand {
    /// The command id.
    pub command_id: CommandId,
}

/// The actor answering read-only queries.
pub struct QueryRepo {
    db: DatabaseConnection,
}

impl QueryRepo {
    /// A repository over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl Actor for QueryRepo {
    type Context = Context<Self>;
}

impl Handler<MetricRange> for QueryRepo {
    type Result = ResponseFuture<Result<Vec<MetricSample>, DbErr>>;

    fn handle(&mut self, q: MetricRange, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move {
            let rows = metrics::Entity::find()
                .filter(metrics::Column::MachineId.eq(q.machine_id))
                .filter(metrics::Column::At.gte(q.since))
                .filter(metrics::Column::At.lt(q.until))
                .order_by_asc(metrics::Column::At)
                .all(&db)
                .await?;
            Ok(rows.into_iter().map(MetricSample::from).collect())
        })
    }
}

impl Handler<ListPorts> for QueryRepo {
    type Result = ResponseFuture<Result<Vec<ports::Model>, DbErr>>;

    fn handle(&mut self, q: ListPorts, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move {
            ports::Entity::find()
                .filter(ports::Column::MachineId.eq(q.machine_id))
                .order_by_asc(ports::Column::Port)
                .all(&db)
                .await
        })
    }
}

impl Handler<ListSessions> for QueryRepo {
    type Result = ResponseFuture<Result<Vec<terminal_sessions::Model>, DbErr>>;

    fn handle(&mut self, q: ListSessions, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move {
            let mut query = terminal_sessions::Entity::find();
            if let Some(user) = q.user_id {
                query = query.filter(terminal_sessions::Column::UserId.eq(user));
            }
            if let Some(machine) = q.machine_id {
                query = query.filter(terminal_sessions::Column::MachineId.eq(machine));
            }
            match q.active {
                Some(true) => query = query.filter(terminal_sessions::Column::EndedAt.is_null()),
                Some(false) => {
                    query = query.filter(terminal_sessions::Column::EndedAt.is_not_null())
                }
                None => {}
            }
            query
                .order_by_desc(terminal_sessions::Column::StartedAt)
                .limit(q.limit.min(MAX_ROWS))
                .all(&db)
                .await
        })
    }
}

impl Handler<QueryAudit> for QueryRepo {
    type Result = ResponseFuture<Result<Vec<audit_log::Model>, DbErr>>;

    fn handle(&mut self, q: QueryAudit, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move {
            let mut query = audit_log::Entity::find();
            if let Some(actor) = q.actor {
                query = query.filter(audit_log::Column::Actor.eq(actor));
            }
            if let Some(machine) = q.machine_id {
                query = query.filter(audit_log::Column::MachineId.eq(machine));
            }
            if let Some(action) = q.action {
                query = query.filter(audit_log::Column::Action.eq(action));
            }
            if let Some(since) = q.since {
                query = query.filter(audit_log::Column::At.gte(since));
            }
            if let Some(until) = q.until {
                query = query.filter(audit_log::Column::At.lt(until));
            }
            if let Some(before) = q.before_id {
                query = query.filter(audit_log::Column::Id.lt(before));
            }
            query
                .order_by_desc(audit_log::Column::Id)
                .limit(q.limit.min(MAX_ROWS))
                .all(&db)
                .await
        })
    }
}

impl Handler<ListCommands> for QueryRepo {
    type Result = ResponseFuture<Result<Vec<commands::Model>, DbErr>>;

    fn handle(&mut self, q: ListCommands, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move {
            let mut query = commands::Entity::find();
            if let Some(user) = q.user_id {
                query = query.filter(commands::Column::UserId.eq(user));
            }
            if let Some(machine) = q.machine_id {
                query = query.filter(commands::Column::MachineId.eq(machine));
            }
            query
                .order_by_desc(commands::Column::StartedAt)
                .limit(q.limit.min(MAX_ROWS))
                .all(&db)
                .await
        })
    }
}

impl Handler<GetSession> for QueryRepo {
    type Result = ResponseFuture<Result<Option<terminal_sessions::Model>, DbErr>>;

    fn handle(&mut self, q: GetSession, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move {
            terminal_sessions::Entity::find_by_id(q.session_id)
                .one(&db)
                .await
        })
    }
}

impl Handler<GetCommand> for QueryRepo {
    type Result = ResponseFuture<Result<Option<commands::Model>, DbErr>>;

    fn handle(&mut self, q: GetCommand, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move { commands::Entity::find_by_id(q.command_id).one(&db).await })
    }
}

/// The machines the database shows online, with their hostnames (the cluster's sweep).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<Vec<(MachineId, String)>, DbErr>")]
pub struct StoredOnline;

impl Handler<StoredOnline> for QueryRepo {
    type Result = ResponseFuture<Result<Vec<(MachineId, String)>, DbErr>>;

    fn handle(&mut self, _: StoredOnline, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        Box::pin(async move {
            let rows = fleetgate_entity::machines::Entity::find()
                .filter(
                    fleetgate_entity::machines::Column::Status.eq(super::machine::STATUS_ONLINE),
                )
                .all(&db)
                .await?;
            Ok(rows.into_iter().map(|row| (row.id, row.hostname)).collect())
        })
    }
}
