//! Where `fleetgate login` keeps the server URL and token: a 0600 file in the user's config dir.

use super::server_trust::ServerTrust;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Overrides the directory holding `credentials.json`.
pub const CONFIG_DIR_VAR: &str = "FLEETGATE_CONFIG_DIR";

/// A saved login.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    /// Server base URL, e.g. `http://127.0.0.1:7070`.
    pub server: String,
    /// The JWT.
    pub token: String,
    /// When it expires (ISO 8601).
    #[serde(rename = "expiresAt")]
    pub expires_at: String,
    /// Which certificates the server may present (`https://`).
    #[serde(default, skip_serializing_if = "ServerTrust::is_default")]
    pub tls: ServerTrust,
}

/// `$FLEETGATE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/fleetgate`, else `~/.config/fleetgate`.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_VAR) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(dir).join("fleetgate"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set; set FLEETGATE_CONFIG_DIR")?;
    Ok(PathBuf::from(home).join(".config").join("fleetgate"))
}

fn path() -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join("credentials.json"))
}

/// Saves credentials with mode 0600.
pub fn save(credentials: &Credentials) -> anyhow::Result<PathBuf> {
    let path = path()?;
    write_private(&path, &serde_json::to_string_pretty(credentials)?)?;
    Ok(path)
}

/// Writes `contents` to `path` with mode 0600, creating its directory.
pub fn write_private(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

/// Loads saved credentials.
pub fn load() -> anyhow::Result<Credentials> {
    let path = path()?;
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "not logged in ({} missing); run `fleetgate login --server URL`",
            path.display()
        )
    })?;
    Ok(serde_json::from_str(&text)?)
}
