//! Terminal session recordings: every session (policy `recording.mode`) is written as an
//! asciicast v2 file by its own [`Recorder`] actor, off the terminal's path (the session only
//! posts events to it), then compressed and signed when the session ends, so that a file
//! changed afterwards is reported as tampered on playback ([`stored`]). A write error (a full
//! disk) stops the recording with an audit event, never the terminal.

pub mod cast;
mod recorder;
pub mod stored;

use std::path::PathBuf;

use hmac::{KeyInit, Mac};
use sha2::Sha256;

pub use recorder::{CastEvent, FinishRecording, RecordEvent, Recorder};

/// Where recordings go and what they hold.
#[derive(Clone, Debug)]
pub struct RecordingConfig {
    /// `<data_dir>/recordings`.
    pub dir: PathBuf,
    /// Whether keystrokes are recorded too (`recording.input`; sensitive).
    pub input: bool,
    /// The key signing finished recordings.
    pub key: RecordingKey,
    /// Whether a session is recorded when its machine does not say (`recording.mode = "all"`).
    pub by_default: bool,
}

/// The key that signs finished recordings (derived from the data key).
#[derive(Clone)]
pub struct RecordingKey([u8; 32]);

impl std::fmt::Debug for RecordingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordingKey(<redacted>)")
    }
}

impl RecordingKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    fn mac(&self) -> Hmac {
        <Hmac as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    /// The hex signature of `bytes`.
    pub fn sign(&self, bytes: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(bytes);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `signature` (hex) is that of `bytes`.
    pub fn verify(&self, bytes: &[u8], signature: &str) -> bool {
        let Ok(expected) = hex::decode(signature.trim()) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(bytes);
        mac.verify_slice(&expected).is_ok()
    }
}

type Hmac = hmac::Hmac<Sha256>;
