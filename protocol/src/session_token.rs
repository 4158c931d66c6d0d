//! `sessionToken`s for reattaching a terminal: HMAC-SHA256 with the session-token secret over
//! sessionId, userId, machineId and expiry.

use hmac::{Hmac, KeyInit, Mac};

use crate::ids::UserId;
use sha2::Sha256;

/// The claims of a session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaims {
    /// The terminal session.
    pub session_id: String,
    /// The user who owns it.
    pub user_id: UserId,
    /// The machine it runs on.
    pub machine_id: String,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionTokenError {
    /// Not a token, or the signature does not match.
    #[error("invalid session token")]
    Invalid,
    /// Past its expiry.
    #[error("session token expired")]
    Expired,
}

/// Issues and checks session tokens.
#[derive(Clone)]
pub struct SessionTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionTokens(<redacted>)")
    }
}

impl SessionTokens {
    /// Keyed with the session-token secret.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(body.as_bytes());
        mac
    }

    /// `sessionId.userId.machineId.expiry.hmac`
    pub fn issue(&self, claims: &SessionClaims) -> String {
        let body = format!(
            "{}.{}.{}.{}",
            claims.session_id, claims.user_id, claims.machine_id, claims.expires_at
        );
        let tag = hex::encode(self.mac(&body).finalize().into_bytes());
        format!("{body}.{tag}")
    }

    /// Checks the signature, then the expiry against `now` (seconds since the epoch).
    pub fn verify(&self, token: &str, now: i64) -> Result<SessionClaims, SessionTokenError> {
        let (body, tag) = token.rsplit_once('.').ok_or(SessionTokenError::Invalid)?;
        // Only the form it was issued in (lowercase hex): a token has exactly one spelling.
        if tag.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(SessionTokenError::Invalid);
        }
        let tag = hex::decode(tag).map_err(|_| SessionTokenError::Invalid)?;
        self.mac(body)
            .verify_slice(&tag)
            .map_err(|_| SessionTokenError::Invalid)?;
        let mut parts = body.split('.');
        let (Some(session_id), Some(user_id), Some(machine_id), Some(expiry), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(SessionTokenError::Invalid);
        };
        let expires_at: i64 = expiry.parse().map_err(|_| SessionTokenError::Invalid)?;
        let user_id = UserId::parse(user_id).ok_or(SessionTokenError::Invalid)?;
        if expires_at < now {
            return Err(SessionTokenError::Expired);
        }
        Ok(SessionClaims {
            session_id: session_id.to_owned(),
            user_id,
            machine_id: machine_id.to_owned(),
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> SessionClaims {
        SessionClaims {
            session_id: "3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c31".into(),
            user_id: UserId::parse("0b9c3c1e-4c5a-4a8e-9d5e-1f2a3b4c5d6e").expect("uuid"),
            machine_id: "6f1c2b8e-3d4a-4b5c-9e7f-0a1b2c3d4e5f".into(),
            expires_at: 1_000,
        }
    }

    #[test]
    fn round_trip_tamper_and_expiry() {
        let tokens = SessionTokens::new([5; 32]);
        let token = tokens.issue(&claims());
        assert_eq!(tokens.verify(&token, 999), Ok(claims()));
        assert_eq!(
            tokens.verify(&token, 1_001),
            Err(SessionTokenError::Expired)
        );
        let forged = token.replacen("0b9c", "0b9d", 1);
        assert_eq!(tokens.verify(&forged, 999), Err(SessionTokenError::Invalid));
        let extended = token.replacen(".1000.", ".9999.", 1);
        assert_eq!(
            tokens.verify(&extended, 999),
            Err(SessionTokenError::Invalid)
        );
        assert_eq!(
            SessionTokens::new([6; 32]).verify(&token, 999),
            Err(SessionTokenError::Invalid)
        );
        assert_eq!(tokens.verify("garbage", 0), Err(SessionTokenError::Invalid));
    }

    #[test]
    fn a_token_has_one_spelling() {
        let tokens = SessionTokens::new([5; 32]);
        let token = tokens.issue(&claims());
        let (body, tag) = token.rsplit_once('.').expect("tag");
        let respelled = format!("{body}.{}", tag.to_ascii_uppercase());
        assert_ne!(respelled, token, "the tag has letters");
        assert_eq!(
            tokens.verify(&respelled, 999),
            Err(SessionTokenError::Invalid),
            "the same MAC in upper case is not the issued token"
        );
    }
}
