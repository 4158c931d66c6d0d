//! The benchmark's own read-only look at the server's database: metric rows as they are
//! committed and machines shown online.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};

/// Creates a fresh PostgreSQL schema for one run; returns its name.
pub async fn create_schema(url: &str) -> anyhow::Result<String> {
    let db = Database::connect(url)
        .await
        .with_context(|| "connecting to PostgreSQL".to_owned())?;
    let schema = format!("fg_bench_{}", std::process::id());
    db.execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await?;
    db.execute_unprepared(&format!("CREATE SCHEMA \"{schema}\""))
        .await?;
    Ok(schema)
}

/// Drops a schema made by [`create_schema`].
pub async fn drop_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    let db = Database::connect(url).await?;
    db.execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await?;
    Ok(())
}

/// A read connection to the server's database.
pub struct DbProbe {
    db: DatabaseConnection,
}

impl DbProbe {
    /// Connects to `url` (and `schema` on PostgreSQL).
    pub async fn connect(url: &str, schema: Option<&str>) -> anyhow::Result<Self> {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        if let Some(schema) = schema {
            options.set_schema_search_path(schema.to_owned());
        }
        Ok(Self {
            db: Database::connect(options)
                .await
                .context("opening the server's database")?,
        })
    }

    async fn count(&self, sql: &str) -> anyhow::Result<u64> {
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one_raw(Statement::from_string(backend, sql.to_owned()))
            .await?
            .context("COUNT returned no row")?;
        Ok(row.try_get::<i64>("", "n")? as u64)
    }

    /// Machines the server shows as online.
    pub async fn machines_online(&self) -> anyhow::Result<u64> {
        self.count("SELECT COUNT(*) AS n FROM machines WHERE status = 'online'")
            .await
    }

    /// Metric rows committed after row `after_id`: `(id, uptime)` in id order.
    pub async fn metrics_after(&self, after_id: i64) -> anyhow::Result<Vec<(i64, i64)>> {
        let backend = self.db.get_database_backend();
        let sql = format!("SELECT id, uptime FROM metrics WHERE id > {after_id} ORDER BY id");
        let rows = self
            .db
            .query_all_raw(Statement::from_string(backend, sql))
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get::<i64>("", "id")?,
                    row.try_get::<i64>("", "uptime")?,
                ))
            })
            .collect()
    }
}

/// Follows metric rows as they are committed.
pub struct LagProbe {
    probe: DbProbe,
    epoch: SystemTime,
    last_id: i64,
    /// Rows seen so far.
    pub rows: u64,
}

impl LagProbe {
    /// Follows `probe`'s metric rows, whose `uptime` holds ms since `epoch` (stamped heartbeats).
    pub fn new(probe: DbProbe, epoch: SystemTime) -> Self {
        Self {
            probe,
            epoch,
            last_id: 0,
            rows: 0,
        }
    }

    /// Reads new rows; returns the write lag of those sent at or after `from_ms` (ms since epoch).
    pub async fn poll(&mut self, from_ms: i64, lags: &mut Vec<Duration>) -> anyhow::Result<()> {
        let rows = self.probe.metrics_after(self.last_id).await?;
        let now_ms = SystemTime::now().duration_since(self.epoch)?.as_millis() as i64;
        for (id, sent_ms) in rows {
            self.last_id = id;
            self.rows += 1;
            if sent_ms >= from_ms {
                lags.push(Duration::from_millis(now_ms.saturating_sub(sent_ms) as u64));
            }
        }
        Ok(())
    }
}
