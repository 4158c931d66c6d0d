//! `MetricRepo`: batched metric inserts (every second or 500 rows), retention pruning, and each
//! machine's latest sample kept in memory (a machine list never reads the metrics table per
//! machine; after a restart a machine's sample is read once, then kept fresh by heartbeats).

use std::collections::HashMap;
use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, AtomicResponse, Context, Handler, Message,
    ResponseActFuture, WrapFuture,
};
use chrono::{DateTime, Utc};
use fleetgate_entity::metrics;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, NotSet, QueryFilter, QueryOrder, Set,
};

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
    /// The sample.
    pub sample: MetricSample,
}

/// One metric sample of a machine (its latest, when answering `LatestMetrics`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricSample {
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

impl From<metrics::Model> for MetricSample {
    fn from(m: metrics::Model) -> Self {
        Self {
            at: m.at,
            cpu: m.cpu,
            ram_used: m.ram_used,
            ram_total: m.ram_total,
            disk_used: m.disk_used,
            disk_total: m.disk_total,
            uptime: m.uptime,
        }
    }
}

/// The latest sample of each of `machine_ids` that has one.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<HashMap<MachineId, MetricSample>, DbErr>")]
pub struct LatestMetrics {
    /// The machines.
    pub machine_ids: Vec<MachineId>,
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
    /// Each machine's latest sample (`None`: read, and it has none).
    latest: HashMap<MachineId, Option<MetricSample>>,
}

impl MetricRepo {
    /// A repository over `db`.
    pub fn new(db: DatabaseConnection, config: MetricRepoConfig) -> Self {
        Self {
            db,
            config,
            pending: Vec::new(),
            latest: HashMap::new(),
        }
    }

    /// Takes the waiting rows and writes them in one multi-row INSERT.
    fn flush_future(&mut self) -> impl std::future::Future<Output = Result<usize, DbErr>> + use<> {
        let rows = std::mem::take(&mut self.pending);
        let oldest = rows
            .iter()
            .filter_map(|row| row.at.try_as_ref().copied())
            .min();
        let db = self.db.clone();
        async move {
            let count = rows.len();
            if count > 0 {
                metrics::Entity::insert_many(rows).exec(&db).await?;
                let lag = oldest.map_or(Duration::ZERO, |at| {
                    (Utc::now() - at).to_std().unwrap_or(Duration::ZERO)
                });
                crate::instruments::metric_batch_written(count, lag);
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

    fn handle(&mut self, record: RecordMetric, ctx: &mut Context<Self>) {
        let RecordMetric { machine_id, sample } = record;
        let known = self.latest.entry(machine_id).or_insert(None);
        if known.is_none_or(|k| k.at <= sample.at) {
            *known = Some(sample);
        }
        self.pending.push(metrics::ActiveModel {
            id: NotSet,
            machine_id: Set(machine_id),
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

/// Reads the latest stored sample of each of `machine_ids`.
async fn read_latest(
    db: DatabaseConnection,
    machine_ids: Vec<MachineId>,
) -> Result<Vec<(MachineId, Option<MetricSample>)>, DbErr> {
    let mut found = Vec::with_capacity(machine_ids.len());
    for machine_id in machine_ids {
        let row = metrics::Entity::find()
            .filter(metrics::Column::MachineId.eq(machine_id))
            .order_by_desc(metrics::Column::At)
            .one(&db)
            .await?;
        found.push((machine_id, row.map(MetricSample::from)));
    }
    Ok(found)
}

impl Handler<LatestMetrics> for MetricRepo {
    type Result = ResponseActFuture<Self, Result<HashMap<MachineId, MetricSample>, DbErr>>;

    fn handle(&mut self, request: LatestMetrics, _: &mut Context<Self>) -> Self::Result {
        let unknown: Vec<MachineId> = request
            .machine_ids
            .iter()
            .filter(|id| !self.latest.contains_key(id))
            .copied()
            .collect();
        let read = read_latest(self.db.clone(), unknown);
        Box::pin(read.into_actor(self).map(move |read, repo, _| {
            for (machine_id, sample) in read? {
                repo.latest.entry(machine_id).or_insert(sample);
            }
            Ok(request
                .machine_ids
                .iter()
                .filter_map(|id| Some((*id, (*repo.latest.get(id)?)?)))
                .collect())
        }))
    }
}
