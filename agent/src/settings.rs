//! The agent's settings: flags and environment first, then an optional TOML file for the rest.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;

/// The keys of the TOML file (`--config`), named like the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// `--server`: one URL, or a list (home first, then where to fail over to).
    pub server: Option<Servers>,
    /// `--key-file`
    pub key_file: Option<PathBuf>,
    /// `--key`
    pub key: Option<String>,
    /// `--heartbeat-secs`
    pub heartbeat_secs: Option<u64>,
    /// `--command-timeout-secs`
    pub command_timeout_secs: Option<u64>,
    /// `--ca-file`
    pub ca_file: Option<PathBuf>,
    /// `--pin-sha256`
    pub pin_sha256: Option<String>,
}

/// `server` in the file: one URL or several.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Servers {
    /// `server = "wss://…"`
    One(String),
    /// `server = ["wss://home…", "wss://elsewhere…"]`
    Many(Vec<String>),
}

impl Servers {
    /// The URLs in order.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Servers::One(url) => vec![url],
            Servers::Many(urls) => urls,
        }
    }
}

/// Reads a TOML settings file.
pub fn read_file(path: &Path) -> anyhow::Result<FileSettings> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Whether the value of `id` was given on the command line or in the environment.
pub fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settings_file_parses_and_rejects_unknown_keys() {
        let settings: FileSettings = toml::from_str("server = \"wss://gw:7070/ws/agent\"\nkey_file = \"/etc/fleetgate/agent.key\"\nheartbeat_secs = 10\n").expect("parses");
        assert_eq!(
            settings.server.map(Servers::into_vec),
            Some(vec!["wss://gw:7070/ws/agent".to_owned()])
        );
        let listed: FileSettings =
            toml::from_str("server = [\"wss://fra/ws/agent\", \"wss://iad/ws/agent\"]\n")
                .expect("a list parses");
        assert_eq!(
            listed.server.map(Servers::into_vec),
            Some(vec![
                "wss://fra/ws/agent".to_owned(),
                "wss://iad/ws/agent".to_owned()
            ])
        );
        assert_eq!(settings.heartbeat_secs, Some(10));
        assert!(toml::from_str::<FileSettings>("sever = \"x\"\n").is_err());
    }
}
