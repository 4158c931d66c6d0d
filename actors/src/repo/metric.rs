//! `MetricRepo`: batched metric inserts (every second or 500 rows) and retention pruning.

use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, AtomicResponse, Context, Handler, Message, WrapFuture,
};
use chrono::{DateTime, Utc};
use fleetgate_entity::metrics;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, NotSet, QueryFilter, Set};

use crate::protocol::MachineId;

/// Tuning of the metric repository.
#[derive(Debug, Clone)]
pub struct MetricRepoConfig {
    /// Flush at least this often.
    pub flush_every: Duration,
    /// Flush as soon as this many rows are waiting.
    pub batch_rows: usize,
    /// Rows older than this are pruned.
    pub retention: Duration,
    /// How often pruning runs.
    pub prune_every: Duration,
}

impl Default for MetricRepoConfig {
    fn default() -> Self {
        Self {
            flush_every: Duration::from_secs(1),
            batch_rows: 500,
            retention: Duration::from_secs(7 * 24 * 3600),
            prune_every: Duration::from_secs(3600),
        }
    }
}

/// One metric sample to store.
#[derive(Message, Debug, Clone, PartialEq)]
#[rtype(result = "()")]
pub struct RecordMetric {
    /// The machine sampled.
    pub machine_id: MachineId,
    /// When the heartbeat arrived.
    pub at: DateTime<Utc>,
    /// CPU percent.
    pub cpu: f64,
    /// RAM used, GiB.
    pub ram_used: f64,
    /// RAM total, GiB.
    pub ram_total: f64,
    /// Disk used, GiB.
    pub disk_used: f64,
    /// Disk total, GiB.
    pub disk_total: f64,
    /// Uptime, seconds.
    pub uptime: i64,
}

/// Write every waiting row now; answers with how many were written.
#[derive(Message, Debug)]
#[rtype(result = "Result<usize, DbErr>")]
pub struct FlushMetrics;

/// Delete rows older than `before`; answers with how many were deleted.
#[derive(Message, Debug)]
#[rtype(result = "Result<u64, DbErr>")]
pub struct PruneMetrics {
    /// Cut-off time.
    pub before: DateTime<Utc>,
}

/// The actor owning writes to `metrics`.
pub struct MetricRepo {
    db: DatabaseConnection,
    config: MetricRepoConfig,
    pending: Vec<metrics::ActiveModel>,
}

impl MetricRepo {
    /// A repository over `db`.
    pub fn new(db: DatabaseConnection, config: MetricRepoConfig) -> Self {
        Self {
            db,
            config,
            pending: Vec::new(),
        }
    }

    /// Takes the waiting rows and writes them in one multi-row INSERT.
    fn flush_future(&mut self) -> impl std::future::Future<Output = Result<usize, DbErr>> + use<> {
        let rows = std::mem::take(&mut self.pending);
        let db = self.db.clone();
        async move {
            let count = rows.len();
            if count > 0 {
                metrics::Entity::insert_many(rows).exec(&db).await?;
            }
            Ok(count)
        }
    }

    /// Flushes, blocking this actor's mailbox until the write is done.
    fn flush_now(&mut self, ctx: &mut Context<Self>) {
        let flush = self.flush_future().into_actor(self).map(|result, _, _| {
            if let Err(err) = result {
                tracing::error!(error = %err, "metric batch insert failed; batch dropped");
            }
        });
        ctx.wait(flush);
    }
}

/// Deletes metric rows older than `before`.
async fn prune_before(db: DatabaseConnection, before: DateTime<Utc>) -> Result<u64, DbErr> {
    let result = metrics::Entity::delete_many()
        .filter(metrics::Column::At.lt(before))
        .exec(&db)
        .await?;
    Ok(result.rows_affected)
}

impl Actor for MetricRepo {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.config.flush_every, |repo, ctx| {
            if !repo.pending.is_empty() {
                repo.flush_now(ctx);
            }
        });
        ctx.run_interval(self.config.prune_every, |repo, ctx| {
            let retention = chrono::Duration::from_std(repo.config.retention)
                .unwrap_or(chrono::Duration::days(7));
            let prune = prune_before(repo.db.clone(), Utc::now() - retention)
                .into_actor(repo)
                .map(|result, _, _| match result {
                    Ok(deleted) => tracing::info!(deleted, "pruned old metrics"),
                    Err(err) => tracing::error!(error = %err, "metric pruning failed"),
                });
            ctx.wait(prune);
        });
    }
}

impl Handler<RecordMetric> for MetricRepo {
    type Result = ();

    fn handle(&mut self, sample: RecordMetric, ctx: &mut Context<Self>) {
        self.pending.push(metrics::ActiveModel {
            id: NotSet,
            machine_id: Set(sample.machine_id.0),
            at: Set(sample.at),
            cpu: Set(sample.cpu),
            ram_used: Set(sample.ram_used),
            ram_total: Set(sample.ram_total),
            disk_used: Set(sample.disk_used),
            disk_total: Set(sample.disk_total),
            uptime: Set(sample.uptime),
        });
        if self.pending.len() >= self.config.batch_rows {
            self.flush_now(ctx);
        }
    }
}

impl Handler<FlushMetrics> for MetricRepo {
    type Result = AtomicResponse<Self, Result<usize, DbErr>>;

    fn handle(&mut self, _: FlushMetrics, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(Box::pin(self.flush_future().into_actor(self)))
    }
}

impl Handler<PruneMetrics> for MetricRepo {
    type Result = AtomicResponse<Self, Result<u64, DbErr>>;

    fn handle(&mut self, request: PruneMetrics, _: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(Box::pin(
            prune_before(self.db.clone(), request.before).into_actor(self),
        ))
    }
}
