//! Migrations run up, down and up again (SQLite, and PostgreSQL when configured).

use fleetgate::db;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::support::test_connection;

/// Tables the first migration must create.
const TABLES: [&str; 9] = [
    "machines",
    "ports",
    "metrics",
    "users",
    "machine_access",
    "terminal_sessions",
    "commands",
    "audit_log",
    "agent_reports",
];

async fn connect() -> (DatabaseConnection, tempfile::TempDir) {
    test_connection().await
}

async fn table_exists(database: &DatabaseConnection, table: &str) -> bool {
    let backend = database.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Sqlite => {
            format!(
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
            )
        }
        _ => format!(
            "SELECT COUNT(*) AS n FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
    };
    let row = database
        .query_one_raw(Statement::from_string(backend, sql))
        .await
        .expect("query")
        .expect("a row");
    row.try_get::<i64>("", "n").expect("count") > 0
}

#[actix_web::test]
async fn migrations_go_up_down_and_up_again() {
    let (database, _dir) = connect().await;
    db::migrate_up(&database).await.expect("up");
    for table in TABLES {
        assert!(table_exists(&database, table).await, "{table} after up");
    }
    let every =
        <fleetgate_migration::Migrator as fleetgate_migration::MigratorTrait>::migrations().len();
    assert_eq!(every, 2);
    let (applied, pending) = db::migration_status(&database).await.expect("status");
    assert_eq!(applied.len(), every);
    assert!(pending.is_empty());

    db::migrate_down(&database, None).await.expect("down");
    for table in TABLES {
        assert!(!table_exists(&database, table).await, "{table} after down");
    }
    let (applied, pending) = db::migration_status(&database).await.expect("status");
    assert!(applied.is_empty());
    assert_eq!(pending.len(), every);

    db::migrate_up(&database).await.expect("up again");
    for table in TABLES {
        assert!(
            table_exists(&database, table).await,
            "{table} after up again"
        );
    }
}

#[actix_web::test]
async fn sqlite_runs_in_wal_mode() {
    if std::env::var(crate::support::TEST_DATABASE_URL_VAR).is_ok() {
        return; // journal mode is a SQLite property
    }
    let (database, _dir) = connect().await;
    let row = database
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Sqlite,
            "PRAGMA journal_mode".to_owned(),
        ))
        .await
        .expect("pragma")
        .expect("row");
    let mode: String = row.try_get("", "journal_mode").expect("mode");
    assert_eq!(mode, "wal");
}
