//! Admin subcommands that work on the local data directory and database.

use anyhow::Context;

use super::{MigrateAction, SecretsAction};
use crate::db;
use crate::secrets::{JWT_SECRET_VAR, SecretStore};
use crate::settings::Settings;

/// `fleetgate migrate up|down|status`.
pub async fn run_migrate(settings: &Settings, action: MigrateAction) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.storage.data_dir).context("creating the data directory")?;
    let database = db::connect(&settings.database_url(), &settings.database)
        .await
        .context("connecting to the database")?;
    match action {
        MigrateAction::Up => {
            db::migrate_up(&database).await?;
            println!("migrations applied");
        }
        MigrateAction::Down { steps } => {
            db::migrate_down(&database, Some(steps)).await?;
            println!("rolled back {steps} migration(s)");
        }
        MigrateAction::Status => {
            let (applied, pending) = db::migration_status(&database).await?;
            for name in applied {
                println!("applied  {name}");
            }
            for name in pending {
                println!("pending  {name}");
            }
        }
    }
    Ok(())
}

/// `fleetgate secrets rotate-jwt`.
pub fn run_secrets(settings: &Settings, action: SecretsAction) -> anyhow::Result<()> {
    match action {
        SecretsAction::RotateJwt => {
            let store = SecretStore::new(&settings.storage.data_dir);
            store.rotate_jwt().context("rotating the JWT secret")?;
            println!(
                "JWT secret rotated in {}; restart the server. Every issued token is now invalid.",
                store.path().display()
            );
            if std::env::var_os(JWT_SECRET_VAR).is_some() {
                println!(
                    "note: {JWT_SECRET_VAR} is set in this environment and overrides the file"
                );
            }
        }
    }
    Ok(())
}
