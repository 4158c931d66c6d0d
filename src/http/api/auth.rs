//! `POST /auth/login`, `POST /auth/refresh` and `POST /auth/logout`.

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{TimeZone, Utc};
use fleetgate_actors::identity::Role;
use fleetgate_actors::repo::audit::RecordAudit;
use fleetgate_actors::repo::user::FindUser;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::Caller;
use super::error::ApiError;
use crate::app::AppState;
use crate::http::session_cookie::{SESSION_COOKIE, cleared_cookies, session_cookies};
use crate::passwords::verify_password;

/// How long an attempt from an address with too many recent failures waits before its
/// password is checked.
const THROTTLED_ADDRESS_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

/// Login request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
    /// Keep the session in an `HttpOnly` cookie instead of returning the token (the browser
    /// console); state-changing requests then repeat the `csrf` cookie in `X-CSRF-Token`.
    #[serde(default)]
    cookie: bool,
}

/// A token and its expiry.
#[derive(Serialize, ToSchema)]
pub struct Token {
    /// The JWT, for `Authorization: Bearer` (or the `session` cookie, or `/ws/web`); absent
    /// when it was set as a cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(rename = "expiresAt")]
    #[schema(format = DateTime)]
    expires_at: String,
}

/// Who a token is issued to, and where it goes.
struct Issue<'a> {
    user_id: &'a str,
    role: Role,
    name: Option<&'a str>,
    /// Into the console's cookies rather than the body.
    cookie: bool,
}

fn token_response(
    state: &AppState,
    request: &HttpRequest,
    issue: Issue<'_>,
) -> Result<HttpResponse, ApiError> {
    let (token, exp) = state
        .jwt
        .issue(issue.user_id, issue.role, issue.name)
        .map_err(ApiError::internal)?;
    let expires_at = Utc
        .timestamp_opt(exp, 0)
        .single()
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    if !issue.cookie {
        let token = Some(token);
        return Ok(HttpResponse::Ok().json(Token { token, expires_at }));
    }
    let lifetime = exp - Utc::now().timestamp();
    let mut response = HttpResponse::Ok();
    for cookie in session_cookies(request, token, lifetime) {
        response.cookie(cookie);
    }
    let token = None;
    Ok(response.json(Token { token, expires_at }))
}

fn audit(
    state: &AppState,
    actor: String,
    action: &'static str,
    detail: serde_json::Value,
    source_ip: Option<String>,
) {
    state.services.audit.do_send(RecordAudit {
        actor,
        action,
        machine_id: None,
        detail,
        source_ip,
    });
}

/// Log in with user name and password.
///
/// A user name with too many recent failures is refused for a while (429 with `Retry-After`);
/// an address with too many is only slowed down.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest, security(()),
    responses(
        (status = 200, description = "logged in", body = Token),
        (status = 401, description = "wrong user name or password"),
        (status = 429, description = "too many failed attempts for this user name"),
    ))]
pub async fn login(
    request: HttpRequest,
    body: web::Json<LoginRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest {
        username,
        password,
        cookie,
    } = body.into_inner();
    let ip = request.peer_addr().map(|a| a.ip().to_string());
    let keys = [
        format!("user:{username}"),
        format!("ip:{}", ip.as_deref().unwrap_or("-")),
    ];
    let now = Instant::now();
    let (user_wait, address_throttled) = {
        let mut throttle = state.login_throttle.lock().map_err(ApiError::internal)?;
        (
            throttle.retry_after(&keys[0], now),
            throttle.retry_after(&keys[1], now).is_some(),
        )
    };
    // A user name with too many recent failures is refused outright; an address with too many
    // is only slowed down, so that one attacker cannot lock out everyone behind the same
    // address (a correct password for a user name that is not throttled still gets in).
    if let Some(wait) = user_wait {
        audit(
            &state,
            format!("login:{username}"),
            "login.throttled",
            serde_json::json!({}),
            ip,
        );
        fleetgate_actors::instruments::login("throttled");
        fleetgate_actors::instruments::rate_limited("login");
        return Err(ApiError::TooManyRequests(wait));
    }
    if address_throttled {
        actix_web::rt::time::sleep(THROTTLED_ADDRESS_DELAY).await;
    }
    let user = state
        .services
        .users
        .send(FindUser {
            username: username.clone(),
        })
        .await??;
    let usable = user.filter(|u| !u.disabled);
    let matched = verify_password(password, usable.as_ref().map(|u| u.password_hash.clone())).await;
    let role = usable.as_ref().and_then(|u| Role::parse(&u.role));
    match (usable, role) {
        (Some(user), Some(role)) if matched => {
            state
                .login_throttle
                .lock()
                .map_err(ApiError::internal)?
                .clear(&keys[0]);
            audit(
                &state,
                user.id.to_string(),
                "login.success",
                serde_json::json!({ "username": username }),
                ip,
            );
            fleetgate_actors::instruments::login("ok");
            let issue = Issue {
                user_id: &user.id.to_string(),
                role,
                name: Some(&user.username),
                cookie,
            };
            token_response(&state, &request, issue)
        }
        _ => {
            let mut throttle = state.login_throttle.lock().map_err(ApiError::internal)?;
            for key in &keys {
                throttle.record_failure(key, now);
            }
            drop(throttle);
            tracing::warn!(security = true, "failed login");
            fleetgate_actors::instruments::login("failed");
            audit(
                &state,
                format!("login:{username}"),
                "login.failure",
                serde_json::json!({}),
                ip,
            );
            Err(ApiError::Unauthenticated(
                "wrong user name or password".into(),
            ))
        }
    }
}

/// Exchange a valid token for a fresh one.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth",
    responses(
        (status = 200, description = "a fresh token", body = Token),
        (status = 401, description = "missing, invalid or expired token"),
    ))]
pub async fn refresh(
    request: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let issue = Issue {
        user_id: &caller.user_id.to_string(),
        role: caller.role,
        name: None,
        cookie: caller.via_cookie,
    };
    token_response(&state, &request, issue)
}

/// End the console's cookie session: both cookies are removed (a bearer token simply expires).
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(()),
    responses(
        (status = 204, description = "the session cookies are removed"),
    ))]
pub async fn logout(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let user = request
        .cookie(SESSION_COOKIE)
        .and_then(|cookie| state.jwt.authenticate(cookie.value()).ok());
    if let Some(user) = user {
        let ip = request.peer_addr().map(|a| a.ip().to_string());
        audit(
            &state,
            user.user_id.to_string(),
            "logout",
            serde_json::json!({}),
            ip,
        );
    }
    let mut response = HttpResponse::NoContent();
    for cookie in cleared_cookies() {
        response.cookie(cookie);
    }
    response.finish()
}
