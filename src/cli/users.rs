//! `fleetgate user add|list|disable|enable|delete|passwd|role`, working on the database
//! directly (a running server notices a change within `auth.user_check_ms` and closes the
//! changed user's sockets), and the first admin from `FLEETGATE_ADMIN_PASSWORD`.

use std::io::BufRead;

use anyhow::{Context, bail};
use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::UserId;
use fleetgate_actors::repo::audit::{RecordAudit, write_audit};
use fleetgate_actors::repo::user::{
    CreateUser, UserChange, change_user, create_user, delete_user, list_users,
};
use fleetgate_entity::users;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};

use crate::accounts::{check_password, check_username};
use crate::passwords::hash_password;

/// Environment variable creating the first admin at start-up.
pub const ADMIN_PASSWORD_VAR: &str = "FLEETGATE_ADMIN_PASSWORD";
/// Environment variable naming that admin (default `admin`).
pub const ADMIN_USER_VAR: &str = "FLEETGATE_ADMIN_USER";

/// Parses a role name.
pub fn parse_role(text: &str) -> anyhow::Result<Role> {
    match Role::parse(text) {
        Some(role) => Ok(role),
        None => bail!("unknown role {text:?}; use admin, operator or viewer"),
    }
}

/// Creates a user after checking the name and password.
pub async fn add_user(
    db: &DatabaseConnection,
    username: &str,
    role: Role,
    password: String,
) -> anyhow::Result<users::Model> {
    check_username(username).map_err(anyhow::Error::msg)?;
    check_password(&password).map_err(anyhow::Error::msg)?;
    let password_hash = hash_password(password).await?;
    create_user(
        db,
        CreateUser {
            username: username.to_owned(),
            role,
            password_hash,
        },
    )
    .await
    .with_context(|| format!("creating user {username:?} (does it exist already?)"))
}

/// A new password: prompted twice on a terminal, else one line of stdin.
fn read_new_password() -> anyhow::Result<String> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let first = rpassword::prompt_password("password: ")?;
        if rpassword::prompt_password("again: ")? != first {
            bail!("the passwords differ");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// Records what the CLI did in the audit trail.
async fn audit_cli(
    db: &DatabaseConnection,
    action: &'static str,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    let entry = RecordAudit {
        actor: "cli".to_owned(),
        action,
        machine_id: None,
        detail,
        source_ip: None,
    };
    write_audit(db, entry).await?;
    Ok(())
}

/// `fleetgate user add NAME --role ROLE`: the password is read from stdin (or prompted).
pub async fn run_user_add(
    db: &DatabaseConnection,
    username: &str,
    role: &str,
) -> anyhow::Result<()> {
    let role = parse_role(role)?;
    let user = add_user(db, username, role, read_new_password()?).await?;
    let detail = serde_json::json!({ "userId": user.id.to_string(), "username": user.username, "role": role.as_str() });
    audit_cli(db, "user.add", detail).await?;
    println!("created {} {} ({})", role.as_str(), user.username, user.id);
    Ok(())
}

/// `fleetgate user list`: one line per user.
pub async fn run_user_list(db: &DatabaseConnection) -> anyhow::Result<()> {
    println!("{:<24} {:<9} {:<9} ID", "NAME", "ROLE", "STATE");
    for user in list_users(db).await? {
        let role = user.role.map_or("?", Role::as_str);
        let state = if user.disabled { "disabled" } else { "enabled" };
        println!("{:<24} {:<9} {:<9} {}", user.username, role, state, user.id);
    }
    Ok(())
}

/// What `fleetgate user disable|enable|passwd|role` asks for.
#[derive(Debug, Clone)]
pub enum CliUserChange {
    /// Disable the user.
    Disable,
    /// Enable the user.
    Enable,
    /// A new password, read like `add` reads it.
    Password,
    /// A new role.
    Role(String),
}

/// The id of the user called `username`.
async fn user_id(db: &DatabaseConnection, username: &str) -> anyhow::Result<UserId> {
    users::Entity::find()
        .filter(users::Column::Username.eq(username))
        .one(db)
        .await?
        .map(|user| user.id)
        .with_context(|| format!("no user called {username:?}"))
}

/// `fleetgate user disable|enable|passwd|role NAME`.
pub async fn run_user_change(
    db: &DatabaseConnection,
    username: &str,
    change: CliUserChange,
) -> anyhow::Result<()> {
    let id = user_id(db, username).await?;
    let (change, action, detail) = match change {
        CliUserChange::Disable => (
            UserChange::Disabled(true),
            "user.disable",
            serde_json::json!({}),
        ),
        CliUserChange::Enable => (
            UserChange::Disabled(false),
            "user.enable",
            serde_json::json!({}),
        ),
        CliUserChange::Password => {
            let password = read_new_password()?;
            check_password(&password).map_err(anyhow::Error::msg)?;
            (
                UserChange::PasswordHash(hash_password(password).await?),
                "user.password",
                serde_json::json!({}),
            )
        }
        CliUserChange::Role(role) => {
            let role = parse_role(&role)?;
            (
                UserChange::Role(role),
                "user.role",
                serde_json::json!({ "role": role.as_str() }),
            )
        }
    };
    change_user(db, id, change).await?;
    let mut detail = detail;
    detail["userId"] = id.to_string().into();
    detail["username"] = username.into();
    audit_cli(db, action, detail).await?;
    println!("{action}: {username}");
    Ok(())
}

/// `fleetgate user delete NAME`: their grants go with them; history keeps their id.
pub async fn run_user_delete(db: &DatabaseConnection, username: &str) -> anyhow::Result<()> {
    let id = user_id(db, username).await?;
    delete_user(db, id).await?;
    let detail = serde_json::json!({ "userId": id.to_string(), "username": username });
    audit_cli(db, "user.delete", detail).await?;
    println!("deleted {username}");
    Ok(())
}

/// At start-up: creates the first admin from the environment, or says how to.
pub async fn ensure_first_admin(db: &DatabaseConnection) -> anyhow::Result<()> {
    if users::Entity::find().count(db).await? > 0 {
        return Ok(());
    }
    match std::env::var(ADMIN_PASSWORD_VAR) {
        Ok(password) => {
            let name = std::env::var(ADMIN_USER_VAR).unwrap_or_else(|_| "admin".to_owned());
            add_user(db, &name, Role::Admin, password).await?;
            tracing::info!(user = %name, "first admin created from {ADMIN_PASSWORD_VAR}");
        }
        Err(_) => tracing::warn!(
            "no users yet: create the first admin with `fleetgate user add NAME --role admin` \
             (password on stdin) or start with {ADMIN_PASSWORD_VAR} set"
        ),
    }
    Ok(())
}
