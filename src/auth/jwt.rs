//! `JwtAuth`: HS256 JWTs with `iss`, `aud`, `exp`, `iat`, `sub` and `role`.

use base64::Engine;
use fleetgate_actors::identity::{AuthenticatedUser, Role};
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
        Ok(AuthenticatedUser {
            user_id: claims.sub,
            role: claims.role,
            expires_at: claims.exp,
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
