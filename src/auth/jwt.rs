//! `JwtAuth`: HS256 JWTs with `iss`, `aud`, `exp`, `iat`, `sub` and `role`.

use base64::Engine;
use fleetgate_actors::identity::{AuthenticatedUser, Role};
use fleetgate_actors::protocol::UserId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::settings::AuthSettings;

/// The claims fleetgate issues and requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Not before, seconds since the epoch (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// User id.
    pub sub: String,
    /// Role.
    pub role: Role,
    /// Display name (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Why a token was refused; each case its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// `alg: none`.
    #[error("unsigned tokens (alg none) are refused")]
    AlgNone,
    /// Any algorithm other than HS256.
    #[error("only HS256 tokens are accepted")]
    WrongAlgorithm,
    /// `iss` is not ours.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` is not ours.
    #[error("wrong audience")]
    WrongAudience,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Not a JWT, or claims of the wrong shape.
    #[error("malformed token")]
    Malformed,
    /// The token could not be signed.
    #[error("could not sign token")]
    Signing,
}

/// Issues and verifies operator JWTs.
#[derive(Clone)]
pub struct JwtAuth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    audience: String,
    ttl_secs: i64,
    leeway_secs: u64,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuth")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl JwtAuth {
    /// A JwtAuth keyed with `secret` and configured by `[auth]`.
    pub fn new(secret: &[u8], settings: &AuthSettings) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            ttl_secs: i64::try_from(settings.jwt_ttl_secs).unwrap_or(i64::MAX / 2),
            leeway_secs: settings.jwt_leeway_secs,
        }
    }

    /// Issues a token for `user_id`; returns it with its expiry (seconds since the epoch).
    pub fn issue(
        &self,
        user_id: &str,
        role: Role,
        name: Option<&str>,
    ) -> Result<(String, i64), JwtError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now.saturating_add(self.ttl_secs),
            iat: now,
            nbf: None,
            sub: user_id.to_owned(),
            role,
            name: name.map(str::to_owned),
        };
        let token = self.sign(&claims)?;
        Ok((token, claims.exp))
    }

    /// Signs arbitrary claims with HS256 (tests use it to forge edge cases).
    pub fn sign(&self, claims: &Claims) -> Result<String, JwtError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|_| JwtError::Signing)
    }

    /// Verifies `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        check_header_algorithm(token)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway_secs;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
                ErrorKind::InvalidAudience => JwtError::WrongAudience,
                ErrorKind::ExpiredSignature => JwtError::Expired,
                ErrorKind::ImmatureSignature => JwtError::NotYetValid,
                ErrorKind::InvalidSignature => JwtError::BadSignature,
                ErrorKind::InvalidAlgorithm => JwtError::WrongAlgorithm,
                _ => JwtError::Malformed,
            })
    }

    /// Verifies `token` and returns the user it authenticates.
    pub fn authenticate(&self, token: &str) -> Result<AuthenticatedUser, JwtError> {
        let claims = self.verify(token)?;
        // Tokens name users by their UUID; anything else names nobody.
        let user_id = UserId::parse(&claims.sub).ok_or(JwtError::Malformed)?;
        Ok(AuthenticatedUser {
            user_id,
            role: claims.role,
            expires_at: claims.exp,
            name: claims.name,
        })
    }
}

/// Refuses `alg: none` and every algorithm but HS256 before any other check.
fn check_header_algorithm(token: &str) -> Result<(), JwtError> {
    #[derive(Deserialize)]
    struct RawHeader {
        alg: Option<String>,
    }
    let header_b64 = token.split('.').next().ok_or(JwtError::Malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header_b64.trim_end_matches('='))
        .map_err(|_| JwtError::Malformed)?;
    let header: RawHeader = serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)?;
    match header.alg.as_deref() {
        Some("HS256") => Ok(()),
        Some(alg) if alg.eq_ignore_ascii_case("none") => Err(JwtError::AlgNone),
        Some(_) => Err(JwtError::WrongAlgorithm),
        None => Err(JwtError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        AuthSettings {
            jwt_issuer: "fleetgate".into(),
            jwt_audience: "fleetgate-clients".into(),
            jwt_ttl_secs: 3600,
            jwt_leeway_secs: 5,
            user_check_ms: 500,
        }
    }

    fn auth() -> JwtAuth {
        JwtAuth::new(b"0123456789abcdef0123456789abcdef", &settings())
    }

    fn claims() -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: "fleetgate".into(),
            aud: "fleetgate-clients".into(),
            exp: now + 600,
            iat: now,
            nbf: None,
            sub: "user-1".into(),
            role: Role::Operator,
            name: None,
        }
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token with a chosen header and the signature of a valid token.
    fn with_header(header: &str) -> String {
        let good = auth().sign(&claims()).expect("sign");
        let mut parts = good.split('.');
        let (_, body, sig) = (parts.next(), parts.next(), parts.next());
        format!(
            "{}.{}.{}",
            b64(header.as_bytes()),
            body.unwrap_or(""),
            sig.unwrap_or("")
        )
    }

    #[test]
    fn issued_token_round_trips() {
        let auth = auth();
        let (token, exp) = auth
            .issue("user-7", Role::Admin, Some("Ada"))
            .expect("issue");
        let claims = auth.verify(&token).expect("verify");
        assert_eq!(claims.sub, "user-7");
        assert_eq!(claims.role, Role::Admin);
        assert_eq!(claims.exp, exp);
        assert_eq!(claims.iss, "fleetgate");
        assert_eq!(claims.aud, "fleetgate-clients");
        assert!(claims.iat <= chrono::Utc::now().timestamp());
    }

    #[test]
    fn alg_none_is_refused() {
        let header = r#"{"alg":"none","typ":"JWT"}"#;
        let body = b64(serde_json::to_string(&claims()).expect("json").as_bytes());
        let token = format!("{}.{}.", b64(header.as_bytes()), body);
        assert_eq!(auth().verify(&token), Err(JwtError::AlgNone));
    }

    #[test]
    fn a_subject_that_is_not_a_user_id_authenticates_nobody() {
        let auth = auth();
        let (named, _) = auth.issue("user-1", Role::Admin, None).expect("issue");
        assert_eq!(auth.authenticate(&named), Err(JwtError::Malformed));
        let id = uuid::Uuid::new_v4().to_string();
        let (token, _) = auth.issue(&id, Role::Viewer, None).expect("issue");
        let user = auth.authenticate(&token).expect("a user id");
        assert_eq!((user.user_id.to_string(), user.role), (id, Role::Viewer));
    }

    #[test]
    fn other_algorithms_are_refused() {
        let token = with_header(r#"{"alg":"RS256","typ":"JWT"}"#);
        assert_eq!(auth().verify(&token), Err(JwtError::WrongAlgorithm));
        let token = with_header(r#"{"alg":"HS512","typ":"JWT"}"#);
        assert_eq!(auth().verify(&token), Err(JwtError::WrongAlgorithm));
    }

    #[test]
    fn wrong_issuer_and_audience_are_refused() {
        let mut wrong_iss = claims();
        wrong_iss.iss = "someone-else".into();
        let token = auth().sign(&wrong_iss).expect("sign");
        assert_eq!(auth().verify(&token), Err(JwtError::WrongIssuer));

        let mut wrong_aud = claims();
        wrong_aud.aud = "other-clients".into();
        let token = auth().sign(&wrong_aud).expect("sign");
        assert_eq!(auth().verify(&token), Err(JwtError::WrongAudience));
    }

    #[test]
    fn expired_and_not_yet_valid_are_refused() {
        let now = chrono::Utc::now().timestamp();
        let mut expired = claims();
        expired.exp = now - 60;
        let token = auth().sign(&expired).expect("sign");
        assert_eq!(auth().verify(&token), Err(JwtError::Expired));

        let mut early = claims();
        early.nbf = Some(now + 600);
        let token = auth().sign(&early).expect("sign");
        assert_eq!(auth().verify(&token), Err(JwtError::NotYetValid));
    }

    #[test]
    fn expiry_within_leeway_is_accepted() {
        let mut just_expired = claims();
        just_expired.exp = chrono::Utc::now().timestamp() - 2;
        let token = auth().sign(&just_expired).expect("sign");
        assert!(auth().verify(&token).is_ok());
    }

    #[test]
    fn tampered_and_foreign_signatures_are_refused() {
        let token = auth().sign(&claims()).expect("sign");
        let mut admin = claims();
        admin.role = Role::Admin;
        let forged_body = b64(serde_json::to_string(&admin).expect("json").as_bytes());
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], forged_body, parts[2]);
        assert_eq!(auth().verify(&tampered), Err(JwtError::BadSignature));

        let other = JwtAuth::new(b"another-secret-another-secret-xx", &settings());
        let foreign = other.sign(&claims()).expect("sign");
        assert_eq!(auth().verify(&foreign), Err(JwtError::BadSignature));
    }

    #[test]
    fn garbage_is_malformed() {
        for garbage in ["", "abc", "a.b.c", "....", "bm90IGpzb24.e30.sig"] {
            assert_eq!(
                auth().verify(garbage),
                Err(JwtError::Malformed),
                "{garbage:?}"
            );
        }
    }
}
