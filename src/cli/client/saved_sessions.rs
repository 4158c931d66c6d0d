//! Terminal sessions the CLI can reattach to after its connection dropped: the reattach token
//! and the output offset it had written, one 0600 file per session under
//! `<config dir>/sessions/`.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::credentials::{config_dir, write_private};

/// What reattaching needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSession {
    /// The session.
    #[serde(rename = "sessionId")]
    pub session_id: String,
    /// The latest `sessionToken` from `terminal_opened`.
    #[serde(rename = "sessionToken")]
    pub session_token: String,
    /// The offset just past the last output byte written to the terminal.
    pub offset: u64,
}

fn path(session_id: &str) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        !session_id.is_empty() && session_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "a session id is 32 hex characters"
    );
    Ok(config_dir()?
        .join("sessions")
        .join(format!("{session_id}.json")))
}

/// Remembers a session (mode 0600).
pub fn save(session: &SavedSession) -> anyhow::Result<()> {
    write_private(
        &path(&session.session_id)?,
        &serde_json::to_string(session)?,
    )
}

/// A remembered session.
pub fn load(session_id: &str) -> anyhow::Result<SavedSession> {
    let path = path(session_id)?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no saved session {session_id} ({} missing)", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// Forgets a session that ended.
pub fn forget(session_id: &str) {
    if let Ok(path) = path(session_id)
        && let Err(err) = std::fs::remove_file(&path)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("fleetgate: could not remove {}: {err}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_cannot_leave_the_sessions_directory() {
        assert!(path("../../etc/passwd").is_err());
        assert!(path("").is_err());
    }
}
