//! Database connection (SQLite in WAL mode with a busy timeout, or PostgreSQL) and migrations.

use std::time::Duration;

use fleetgate_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::settings::DatabaseSettings;

/// Opens a pool to `url`. SQLite connections use WAL, foreign keys and a busy timeout.
pub async fn connect(url: &str, settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    let busy_timeout = Duration::from_millis(settings.sqlite_busy_timeout_ms);
    options
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if !settings.schema.trim().is_empty() {
        options.set_schema_search_path(settings.schema.trim().to_owned());
    }
    options.map_sqlx_sqlite_opts(move |sqlite| {
        sqlite
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy_timeout)
            .foreign_keys(true)
    });
    Database::connect(options).await
}

/// Applies every pending migration.
pub async fn migrate_up(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Rolls back the last `steps` migrations (all when `None`).
pub async fn migrate_down(db: &DatabaseConnection, steps: Option<u32>) -> Result<(), DbErr> {
    Migrator::down(db, steps).await
}

/// Names of applied and pending migrations, oldest first.
pub async fn migration_status(
    db: &DatabaseConnection,
) -> Result<(Vec<String>, Vec<String>), DbErr> {
    let applied = Migrator::get_applied_migrations(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let pending = Migrator::get_pending_migrations(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    Ok((applied, pending))
}
