//! `Caller`: the user behind a request's bearer JWT (or the console's session cookie, with its
//! CSRF token on state-changing requests), with the role stored in the database.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::UserId;
use fleetgate_actors::repo::access::UserRole;

use super::error::ApiError;
use crate::app::AppState;
use crate::http::session_cookie::{SESSION_COOKIE, csrf_allows};
use crate::http::token::bearer;

/// An authenticated API caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User id (JWT `sub`).
    pub user_id: UserId,
    /// Role as stored now (not as the token claimed).
    pub role: Role,
    /// Source address.
    pub source_ip: Option<String>,
    /// Whether the token came in the console's session cookie (not a bearer header).
    pub via_cookie: bool,
}

impl Caller {
    /// Whose records a history query may show: an admin any user's (or everyone's), anyone
    /// else only their own whatever they asked.
    pub fn visible_user(&self, requested: Option<UserId>) -> Option<UserId> {
        if self.role == Role::Admin {
            requested
        } else {
            Some(self.user_id)
        }
    }

    /// Fails unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("administrators only".into()))
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let presented = match bearer(request) {
            Some(token) => Ok(Some((token, false))),
            None => match request.cookie(SESSION_COOKIE) {
                Some(_) if !csrf_allows(request) => Err(ApiError::Forbidden(
                    "CSRF token missing or wrong (X-CSRF-Token)".into(),
                )),
                Some(cookie) => Ok(Some((cookie.value().to_owned(), true))),
                None => Ok(None),
            },
        };
        let source_ip = request.peer_addr().map(|addr| addr.ip().to_string());
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let (token, via_cookie) = presented?
                .ok_or_else(|| ApiError::Unauthenticated("bearer token required".into()))?;
            let user = state
                .jwt
                .authenticate(&token)
                .map_err(|err| ApiError::Unauthenticated(err.to_string()))?;
            let role = state
                .services
                .access
                .send(UserRole {
                    user_id: user.user_id,
                })
                .await?
                .map_err(ApiError::internal)?
                .ok_or_else(|| ApiError::Unauthenticated("unknown or disabled user".into()))?;
            Ok(Caller {
                user_id: user.user_id,
                role,
                source_ip,
                via_cookie,
            })
        })
    }
}
