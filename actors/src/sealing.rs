//! Sealing of machine secrets at rest: XChaCha20-Poly1305 under the data key.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

/// Associated data binding a sealed value to its purpose.
const AAD: &[u8] = b"fleetgate/machine-secret/v1";
/// XChaCha20 nonce length.
const NONCE_LEN: usize = 24;

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Not hex, or too short to hold a nonce and a tag.
    #[error("sealed value is malformed")]
    Malformed,
    /// The tag did not verify: wrong key or tampered value.
    #[error("sealed value does not open with this data key")]
    Forged,
    /// The OS random number generator failed.
    #[error("random number generator failed")]
    Rng,
}

/// The 32-byte key that seals machine secrets; never derived from the JWT secret.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Seals `plaintext`; returns lowercase hex of nonce followed by ciphertext and tag.
    pub fn seal(&self, plaintext: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Rng)?;
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&self.0));
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: AAD,
                },
            )
            .map_err(|_| SealError::Rng)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(hex::encode(out))
    }

    /// A key for `purpose`, derived from this one (HMAC-SHA256 of the purpose's name).
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{KeyInit, Mac};
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Opens a value made by [`DataKey::seal`].
    pub fn open(&self, sealed_hex: &str) -> Result<Vec<u8>, SealError> {
        let raw = hex::decode(sealed_hex).map_err(|_| SealError::Malformed)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new(Key::from_slice(&self.0));
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: AAD,
                },
            )
            .map_err(|_| SealError::Forged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_value_opens_with_the_same_key_only() {
        let key = DataKey::from_bytes([7; 32]);
        let sealed = key.seal(b"a97eef2f").expect("seal");
        assert!(!sealed.contains(&hex::encode(b"a97eef2f")));
        assert_eq!(key.open(&sealed).expect("open"), b"a97eef2f");
        let other = DataKey::from_bytes([8; 32]);
        assert_eq!(other.open(&sealed), Err(SealError::Forged));
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let key = DataKey::from_bytes([1; 32]);
        assert_ne!(key.seal(b"x").expect("seal"), key.seal(b"x").expect("seal"));
    }

    #[test]
    fn tampered_or_malformed_values_are_refused() {
        let key = DataKey::from_bytes([3; 32]);
        let mut sealed = key.seal(b"secret").expect("seal").into_bytes();
        let last = sealed.len() - 1;
        sealed[last] = if sealed[last] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(sealed).expect("ascii");
        assert_eq!(key.open(&tampered), Err(SealError::Forged));
        assert_eq!(key.open("zz"), Err(SealError::Malformed));
        assert_eq!(key.open("00"), Err(SealError::Malformed));
    }
}
