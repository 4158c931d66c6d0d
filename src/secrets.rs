//! Server secrets: from the environment, else from `<data_dir>/secrets.env` (mode 0600),
//! generated from the OS RNG when absent. Values never reach a log line.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fleetgate_actors::protocol::cluster::ClusterKey;
use fleetgate_actors::sealing::DataKey;

/// Name of the secrets file inside the data directory.
pub const SECRETS_FILE: &str = "secrets.env";
/// Variable holding the JWT signing secret.
pub const JWT_SECRET_VAR: &str = "FLEETGATE_JWT_SECRET";
/// Variable holding the session-token secret (64 hex chars).
pub const SESSION_TOKEN_SECRET_VAR: &str = "FLEETGATE_SESSION_TOKEN_SECRET";
/// Variable holding the data key that seals machine secrets (64 hex chars).
pub const DATA_KEY_VAR: &str = "FLEETGATE_DATA_KEY";
/// Key sealing the messages between the instances of a cluster (the same on every instance).
pub const CLUSTER_KEY_VAR: &str = "FLEETGATE_CLUSTER_KEY";

/// Shortest JWT secret accepted, in bytes.
const MIN_JWT_SECRET_BYTES: usize = 32;
/// Fragments that mark a JWT secret as a placeholder someone forgot to change.
const PLACEHOLDER_FRAGMENTS: [&str; 8] = [
    "secret",
    "changeme",
    "change-me",
    "change_me",
    "password",
    "placeholder",
    "example",
    "default",
];

/// Why the secrets could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// A 32-byte secret was not exactly 64 hex chars.
    #[error("{name} (from {source_name}) must be exactly 64 hex characters (32 bytes)")]
    BadHexSecret {
        /// Variable name.
        name: &'static str,
        /// Where it came from: the environment or the secrets file.
        source_name: String,
    },
    /// The secrets file could not be read or written.
    #[error("secrets file {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The OS random number generator failed.
    #[error("OS random number generator failed")]
    Rng,
}

/// Something worth a warning in the log (names only, never values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsNotice {
    /// A secret was generated and written to the secrets file.
    Generated(&'static str),
    /// A weak JWT secret was found at `source` and not used.
    WeakJwtSecretReplaced {
        /// Where it was found.
        source_name: String,
    },
    /// The secrets file had permissions wider than 0600; they were tightened.
    PermissionsTightened,
}

/// The server's secrets, loaded once at start-up.
#[derive(Clone)]
pub struct Secrets {
    /// HS256 key for JWTs.
    pub jwt_secret: Vec<u8>,
    /// Key for `sessionToken`s of terminal reattach.
    pub session_token_secret: [u8; 32],
    /// Key sealing machine secrets at rest.
    pub data_key: DataKey,
    /// Key sealing messages between the instances of a cluster.
    pub cluster_key: ClusterKey,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

/// Reads and writes `<data_dir>/secrets.env`.
#[derive(Debug, Clone)]
pub struct SecretStore {
    path: PathBuf,
}

impl SecretStore {
    /// The store of `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(SECRETS_FILE),
        }
    }

    /// Path of the secrets file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the secrets, preferring `env`, generating and persisting what is missing or weak.
    pub fn load(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Secrets, Vec<SecretsNotice>), SecretsError> {
        let mut notices = Vec::new();
        let mut file = self.read_file(&mut notices)?;
        let mut dirty = false;

        let jwt_secret = match pick(&env, &file, JWT_SECRET_VAR) {
            Some((value, _)) if !is_weak_jwt_secret(&value) => value,
            found => {
                if let Some((_, source_name)) = found {
                    notices.push(SecretsNotice::WeakJwtSecretReplaced { source_name });
                }
                // Keep a strong file value when only the environment's was weak.
                match file.get(JWT_SECRET_VAR).filter(|v| !is_weak_jwt_secret(v)) {
                    Some(value) => value.clone(),
                    None => {
                        let value = random_hex()?;
                        file.insert(JWT_SECRET_VAR.to_owned(), value.clone());
                        notices.push(SecretsNotice::Generated(JWT_SECRET_VAR));
                        dirty = true;
                        value
                    }
                }
            }
        };

        let mut hex_secret = |name: &'static str| -> Result<[u8; 32], SecretsError> {
            if let Some((value, source_name)) = pick(&env, &file, name) {
                return decode_hex32(&value)
                    .ok_or(SecretsError::BadHexSecret { name, source_name });
            }
            let value = random_hex()?;
            let bytes = decode_hex32(&value).ok_or(SecretsError::Rng)?;
            file.insert(name.to_owned(), value);
            notices.push(SecretsNotice::Generated(name));
            dirty = true;
            Ok(bytes)
        };
        let session_token_secret = hex_secret(SESSION_TOKEN_SECRET_VAR)?;
        let data_key = DataKey::from_bytes(hex_secret(DATA_KEY_VAR)?);
        let cluster_key = ClusterKey::from_bytes(hex_secret(CLUSTER_KEY_VAR)?);

        if dirty {
            self.write_file(&file)?;
        }
        Ok((
            Secrets {
                jwt_secret: jwt_secret.into_bytes(),
                session_token_secret,
                data_key,
                cluster_key,
            },
            notices,
        ))
    }

    /// Replaces the JWT secret in the secrets file (every issued token becomes invalid).
    pub fn rotate_jwt(&self) -> Result<(), SecretsError> {
        let mut file = self.read_file(&mut Vec::new())?;
        file.insert(JWT_SECRET_VAR.to_owned(), random_hex()?);
        self.write_file(&file)
    }

    fn read_file(
        &self,
        notices: &mut Vec<SecretsNotice>,
    ) -> Result<BTreeMap<String, String>, SecretsError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(error) => return Err(self.io_error(error)),
        };
        let mode = fs::metadata(&self.path)
            .map_err(|e| self.io_error(e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(&self.path, fs::Permissions::from_mode(0o600))
                .map_err(|e| self.io_error(e))?;
            notices.push(SecretsNotice::PermissionsTightened);
        }
        Ok(parse_env_file(&text))
    }

    /// Writes atomically: a 0600 temporary file renamed over the old one.
    fn write_file(&self, values: &BTreeMap<String, String>) -> Result<(), SecretsError> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(|e| self.io_error(e))?;
        }
        let mut text = String::from("# fleetgate secrets: keep this file private (mode 0600).\n");
        for (key, value) in values {
            text.push_str(&format!("{key}={value}\n"));
        }
        let tmp = self.path.with_extension("env.tmp");
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| self.io_error(e))?;
        out.write_all(text.as_bytes())
            .and_then(|_| out.sync_all())
            .map_err(|e| self.io_error(e))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
            .map_err(|e| self.io_error(e))?;
        fs::rename(&tmp, &self.path).map_err(|e| self.io_error(e))
    }

    fn io_error(&self, error: std::io::Error) -> SecretsError {
        SecretsError::Io {
            path: self.path.clone(),
            error,
        }
    }
}

/// The value of `name` from the environment, else from the file, with where it came from.
fn pick(
    env: &impl Fn(&str) -> Option<String>,
    file: &BTreeMap<String, String>,
    name: &str,
) -> Option<(String, String)> {
    if let Some(value) = env(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
    {
        return Some((value, "the environment".to_owned()));
    }
    file.get(name)
        .filter(|v| !v.is_empty())
        .map(|v| (v.clone(), SECRETS_FILE.to_owned()))
}

/// Whether a JWT secret is too short or a well-known placeholder.
pub fn is_weak_jwt_secret(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    value.len() < MIN_JWT_SECRET_BYTES
        || PLACEHOLDER_FRAGMENTS.iter().any(|p| lower.contains(p))
        || value.chars().all(|c| value.starts_with(c))
}

/// `KEY=VALUE` lines; blank lines and `#` comments ignored.
fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn decode_hex32(value: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(value.trim()).ok()?;
    bytes.try_into().ok()
}

/// 32 bytes from the OS RNG as 64 lowercase hex chars.
pub fn random_hex() -> Result<String, SecretsError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| SecretsError::Rng)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRONG: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0";

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    fn file_values(store: &SecretStore) -> BTreeMap<String, String> {
        parse_env_file(&fs::read_to_string(store.path()).expect("read"))
    }

    #[test]
    fn missing_secrets_are_generated_and_persisted_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SecretStore::new(dir.path());
        let (secrets, notices) = store.load(no_env).expect("load");
        assert_eq!(mode(store.path()), 0o600);
        let values = file_values(&store);
        assert_eq!(
            values[JWT_SECRET_VAR].as_bytes(),
            secrets.jwt_secret.as_slice()
        );
        assert_eq!(
            values[SESSION_TOKEN_SECRET_VAR],
            hex::encode(secrets.session_token_secret)
        );
        assert_eq!(values[DATA_KEY_VAR].len(), 64);
        assert_eq!(values[CLUSTER_KEY_VAR].len(), 64);
        assert_ne!(values[CLUSTER_KEY_VAR], values[DATA_KEY_VAR]);
        assert_eq!(notices.len(), 4);
        assert_ne!(values[DATA_KEY_VAR], values[JWT_SECRET_VAR]);

        // A second load reuses the persisted values and writes nothing.
        let (again, notices) = store.load(no_env).expect("reload");
        assert!(notices.is_empty());
        assert_eq!(again.jwt_secret, secrets.jwt_secret);
        assert_eq!(again.session_token_secret, secrets.session_token_secret);
    }

    #[test]
    fn weak_jwt_secret_in_file_is_replaced_and_persisted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SecretStore::new(dir.path());
        fs::write(store.path(), "FLEETGATE_JWT_SECRET=changeme\n").expect("write");
        let (secrets, notices) = store.load(no_env).expect("load");
        assert_ne!(secrets.jwt_secret, b"changeme");
        assert!(secrets.jwt_secret.len() >= 32);
        assert!(
            notices
                .iter()
                .any(|n| matches!(n, SecretsNotice::WeakJwtSecretReplaced { .. }))
        );
        assert!(notices.contains(&SecretsNotice::PermissionsTightened));
        assert_eq!(
            file_values(&store)[JWT_SECRET_VAR].as_bytes(),
            secrets.jwt_secret.as_slice()
        );
    }

    #[test]
    fn weak_jwt_secret_in_environment_is_not_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SecretStore::new(dir.path());
        let env = |name: &str| (name == JWT_SECRET_VAR).then(|| "secret".to_owned());
        let (secrets, notices) = store.load(env).expect("load");
        assert_ne!(secrets.jwt_secret, b"secret");
        assert!(notices.iter().any(|n| matches!(
            n,
            SecretsNotice::WeakJwtSecretReplaced { source_name } if source_name == "the environment"
        )));
    }

    #[test]
    fn strong_jwt_secret_is_kept_and_environment_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SecretStore::new(dir.path());
        let env = |name: &str| (name == JWT_SECRET_VAR).then(|| STRONG.to_owned());
        let (secrets, _) = store.load(env).expect("load");
        assert_eq!(secrets.jwt_secret, STRONG.as_bytes());
        // The environment's value is not copied into the file.
        assert_ne!(
            file_values(&store).get(JWT_SECRET_VAR).map(String::as_str),
            Some(STRONG)
        );
    }

    #[test]
    fn bad_session_token_secret_stops_loading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SecretStore::new(dir.path());
        let env = |name: &str| (name == SESSION_TOKEN_SECRET_VAR).then(|| "not-hex".to_owned());
        let err = store.load(env).expect_err("must refuse");
        assert!(
            matches!(err, SecretsError::BadHexSecret { name, .. } if name == SESSION_TOKEN_SECRET_VAR)
        );
        assert!(
            !err.to_string().contains("not-hex"),
            "the value must not be echoed"
        );

        let short = |name: &str| (name == SESSION_TOKEN_SECRET_VAR).then(|| "abcd".to_owned());
        assert!(store.load(short).is_err());
    }

    #[test]
    fn rotation_replaces_only_the_jwt_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SecretStore::new(dir.path());
        let (before, _) = store.load(no_env).expect("load");
        store.rotate_jwt().expect("rotate");
        assert_eq!(mode(store.path()), 0o600);
        let (after, _) = store.load(no_env).expect("reload");
        assert_ne!(after.jwt_secret, before.jwt_secret);
        assert_eq!(after.session_token_secret, before.session_token_secret);
        assert!(!is_weak_jwt_secret(
            std::str::from_utf8(&after.jwt_secret).expect("utf8")
        ));
    }

    #[test]
    fn weakness_rules() {
        assert!(is_weak_jwt_secret("secret"));
        assert!(is_weak_jwt_secret("short"));
        assert!(is_weak_jwt_secret(&"a".repeat(64)));
        assert!(is_weak_jwt_secret("please-changeme-please-changeme-please"));
        assert!(!is_weak_jwt_secret(STRONG));
    }

    #[test]
    fn debug_output_redacts_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (secrets, _) = SecretStore::new(dir.path()).load(no_env).expect("load");
        let shown = format!("{secrets:?}");
        assert!(!shown.contains(std::str::from_utf8(&secrets.jwt_secret).expect("utf8")));
    }
}
