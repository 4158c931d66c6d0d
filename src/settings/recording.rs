//! `[recording]`: which terminal sessions are recorded, what goes in, for how long.

use serde::Deserialize;

use super::{Settings, SettingsError, invalid};

/// `[recording]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingSettings {
    /// `all` (every terminal session) or `none`.
    pub mode: String,
    /// Whether keystrokes are recorded too (sensitive: passwords typed at prompts).
    pub input: bool,
    /// Finished recordings older than this are removed, days.
    pub retention_days: u64,
}

impl Settings {
    /// Whether terminal sessions are recorded.
    pub fn records_sessions(&self) -> bool {
        self.recording.mode.trim() == "all"
    }

    /// `recording.mode` is `all` or `none`; retention is at least a day.
    pub(super) fn validate_recording(&self) -> Result<(), SettingsError> {
        if !["all", "none"].contains(&self.recording.mode.trim()) {
            return Err(invalid("recording.mode", "must be \"all\" or \"none\""));
        }
        if self.recording.retention_days == 0 {
            return Err(invalid("recording.retention_days", "must be at least 1"));
        }
        Ok(())
    }
}
