//! Repository actors: each owns the database access of one aggregate, so writes to its
//! tables are serialized in one place and can be batched.

pub mod access;
pub mod audit;
pub mod command;
pub mod machine;
pub mod machine_admin;
pub mod machine_record;
pub mod metric;
pub mod port;
pub mod queries;
mod register_batch;
pub mod report;
pub mod session;
mod status_batch;
pub mod user;

pub use access::AccessRepo;
pub use audit::AuditRepo;
pub use command::CommandRepo;
pub use machine::{Enrollment, MachineRepo};
pub use metric::MetricRepo;
pub use port::PortRepo;
pub use queries::QueryRepo;
pub use report::ReportRepo;
pub use session::SessionRepo;
pub use user::UserRepo;

use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbErr, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};

/// Starts a transaction that will write. On SQLite it takes the write lock at `BEGIN`
/// (`BEGIN IMMEDIATE`), so under load it waits its turn within the busy timeout instead of
/// failing with "database is locked" when a read upgrades to a write after another writer
/// committed (SQLITE_BUSY_SNAPSHOT). Other databases ignore the mode.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}
