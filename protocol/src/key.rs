//! Agent keys (docs/protocol.md 2.9): a key that is not 64 hex chars stands for its SHA-256.

use sha2::{Digest, Sha256};

/// The machine secret an agent configured with `key` presents: the key itself when it is
/// 64 hex chars (after trimming, lowercased), else the lowercase hex SHA-256 of the trimmed key.
pub fn machine_secret_from_key(key: &str) -> String {
    let trimmed = key.trim();
    if trimmed.len() == 64 && trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
        trimmed.to_ascii_lowercase()
    } else {
        hex::encode(Sha256::digest(trimmed.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_are_used_as_is_and_others_are_hashed() {
        let hex_key = "A97EEF2FBF0DBE58D4D7411321E6641D463BDEB5ED1EC1DCC3FFFC29B1085DE4";
        assert_eq!(
            machine_secret_from_key(&format!("  {hex_key}\n")),
            hex_key.to_ascii_lowercase()
        );
        // sha256("hunter2")
        assert_eq!(
            machine_secret_from_key(" hunter2\n"),
            "f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7"
        );
    }
}
