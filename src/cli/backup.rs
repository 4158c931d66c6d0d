//! `fleetgate backup FILE`: a consistent copy of the live SQLite database, made while the
//! server runs (SQLite's `VACUUM INTO`, one read transaction). For PostgreSQL it says what to
//! use instead.

use std::path::Path;

use anyhow::{Context, bail};
use sea_orm::{ConnectionTrait, DatabaseBackend};

use crate::db;
use crate::settings::Settings;

/// Copies the database to `file`, which must not exist yet.
pub async fn run_backup(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    if file.exists() {
        bail!("{} exists already; choose a new file", file.display());
    }
    let database = db::connect(&settings.database_url(), &settings.database)
        .await
        .context("connecting to the database")?;
    if database.get_database_backend() != DatabaseBackend::Sqlite {
        bail!(
            "the database is PostgreSQL: back it up with `pg_dump --format=custom` \
             (schema {:?}), and keep secrets.env with it",
            settings.database.schema
        );
    }
    let target = file
        .to_str()
        .context("the backup file name must be UTF-8")?
        .replace('\'', "''");
    database
        .execute_unprepared(&format!("VACUUM INTO '{target}'"))
        .await
        .with_context(|| format!("copying the database to {}", file.display()))?;
    restrict(file)?;
    eprintln!(
        "database copied to {}; keep {} with it (it seals the machines' secrets)",
        file.display(),
        settings.storage.data_dir.join("secrets.env").display()
    );
    Ok(())
}

/// The copy holds password hashes and sealed secrets: owner only.
fn restrict(file: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", file.display()))
}
