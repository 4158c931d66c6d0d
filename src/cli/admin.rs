//! Admin subcommands that work on the local data directory and database.

use anyhow::Context;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use fleetgate_actors::repo::audit::{RecordAudit, write_audit};
use fleetgate_actors::repo::machine::enroll_machine;
use sea_orm::DatabaseConnection;

use super::{MachineAction, MigrateAction, SecretsAction};
use crate::db;
use crate::secrets::{JWT_SECRET_VAR, SecretStore};
use crate::settings::Settings;

/// `fleetgate user …`.
pub async fn run_user(settings: &Settings, action: super::UserAction) -> anyhow::Result<()> {
    use super::UserAction;
    use super::users::{self, CliUserChange};
    let database = open_database(settings).await?;
    db::migrate_up(&database).await?;
    match action {
        UserAction::Add { name, role } => users::run_user_add(&database, &name, &role).await,
        UserAction::List => users::run_user_list(&database).await,
        UserAction::Disable { name } => {
            users::run_user_change(&database, &name, CliUserChange::Disable).await
        }
        UserAction::Enable { name } => {
            users::run_user_change(&database, &name, CliUserChange::Enable).await
        }
        UserAction::Passwd { name } => {
            users::run_user_change(&database, &name, CliUserChange::Password).await
        }
        UserAction::Role { name, role } => {
            users::run_user_change(&database, &name, CliUserChange::Role(role)).await
        }
        UserAction::Delete { name } => users::run_user_delete(&database, &name).await,
    }
}

/// Opens the configured database (creating the data directory for SQLite).
async fn open_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    std::fs::create_dir_all(&settings.storage.data_dir).context("creating the data directory")?;
    db::connect(&settings.database_url(), &settings.database)
        .await
        .context("connecting to the database")
}

/// `fleetgate machine add NAME [--count N] [--out FILE]`.
pub async fn run_machine(settings: &Settings, action: MachineAction) -> anyhow::Result<()> {
    let MachineAction::Add { name, count, out } = action;
    let store = SecretStore::new(&settings.storage.data_dir);
    let (secrets, _) = store.load(|var| std::env::var(var).ok())?;
    let database = open_database(settings).await?;
    db::migrate_up(&database).await?;
    let mut lines = String::new();
    for index in 1..=count {
        let machine_name = if count == 1 {
            name.clone()
        } else {
            format!("{name}-{index}")
        };
        let enrolled = enroll_machine(&database, &secrets.data_key, &machine_name).await?;
        let entry = RecordAudit {
            actor: "cli".to_owned(),
            action: "machine.add",
            machine_id: Some(enrolled.id),
            detail: serde_json::json!({ "name": machine_name }),
            source_ip: None,
        };
        write_audit(&database, entry).await?;
        lines.push_str(&format!("{} {}\n", enrolled.id, enrolled.secret));
    }
    match out {
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            file.write_all(lines.as_bytes())?;
            println!(
                "enrolled {count} machine(s); ids and secrets written to {}",
                path.display()
            );
        }
        None => {
            println!("machineId secret (shown once; give the secret to the agent as its key):");
            print!("{lines}");
            println!(
                "connect with: fleetgate-agent --server {}/ws/agent --key <secret>",
                settings.server.public_url.replacen("http", "ws", 1)
            );
        }
    }
    Ok(())
}

/// `fleetgate migrate up|down|status`.
pub async fn run_migrate(settings: &Settings, action: MigrateAction) -> anyhow::Result<()> {
    let database = open_database(settings).await?;
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

/// `fleetgate secrets rotate-jwt` (audited before it is reported done).
pub async fn run_secrets(settings: &Settings, action: SecretsAction) -> anyhow::Result<()> {
    match action {
        SecretsAction::RotateJwt => {
            let database = open_database(settings).await?;
            db::migrate_up(&database).await?;
            let store = SecretStore::new(&settings.storage.data_dir);
            store.rotate_jwt().context("rotating the JWT secret")?;
            let entry = RecordAudit {
                actor: "cli".to_owned(),
                action: "secrets.rotate_jwt",
                machine_id: None,
                detail: serde_json::json!({}),
                source_ip: None,
            };
            write_audit(&database, entry).await?;
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
