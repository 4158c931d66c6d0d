//! `fleetgate user add NAME --role ROLE`, and the first admin from `FLEETGATE_ADMIN_PASSWORD`.

use std::io::BufRead;

use anyhow::{Context, bail};
use fleetgate_actors::identity::Role;
use fleetgate_actors::repo::audit::{RecordAudit, write_audit};
use fleetgate_actors::repo::user::{CreateUser, create_user};
use fleetgate_entity::users;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};

use crate::passwords::hash_password;

/// Environment variable creating the first admin at start-up.
pub const ADMIN_PASSWORD_VAR: &str = "FLEETGATE_ADMIN_PASSWORD";
/// Environment variable naming that admin (default `admin`).
pub const ADMIN_USER_VAR: &str = "FLEETGATE_ADMIN_USER";
/// Shortest accepted password.
const MIN_PASSWORD_LEN: usize = 8;

/// Parses a role name.
pub fn parse_role(text: &str) -> anyhow::Result<Role> {
    match text {
        "admin" => Ok(Role::Admin),
        "operator" => Ok(Role::Operator),
        "viewer" => Ok(Role::Viewer),
        other => bail!("unknown role {other:?}; use admin, operator or viewer"),
    }
}

/// Creates a user after checking the name and password.
pub async fn add_user(
    db: &DatabaseConnection,
    username: &str,
    role: Role,
    password: String,
) -> anyhow::Result<users::Model> {
    if username.is_empty() || username.len() > 64 || username.chars().any(char::is_whitespace) {
        bail!("user names are 1 to 64 characters without spaces");
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        bail!("passwords need at least {MIN_PASSWORD_LEN} characters");
    }
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

/// `fleetgate user add NAME --role ROLE`: the password is read from stdin (or prompted).
pub async fn run_user_add(
    db: &DatabaseConnection,
    username: &str,
    role: &str,
) -> anyhow::Result<()> {
    let role = parse_role(role)?;
    let password = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let first = rpassword::prompt_password("password: ")?;
        if rpassword::prompt_password("again: ")? != first {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    let user = add_user(db, username, role, password).await?;
    let entry = RecordAudit {
        actor: "cli".to_owned(),
        action: "user.add",
        machine_id: None,
        detail: serde_json::json!({ "username": user.username, "role": role.as_str() }),
        source_ip: None,
    };
    write_audit(db, entry).await?;
    println!("created {} {} ({})", role.as_str(), user.username, user.id);
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
