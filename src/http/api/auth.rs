//! `POST /auth/login` and `POST /auth/refresh`.

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{TimeZone, Utc};
use fleetgate_actors::identity::Role;
use fleetgate_actors::repo::audit::RecordAudit;
use fleetgate_actors::repo::user::FindUser;
use serde::{Deserialize, Serialize};

use super::caller::Caller;
use super::error::ApiError;
use crate::app::AppState;
use crate::passwords::verify_password;

/// Login request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
}

/// A token and its expiry.
#[derive(Serialize)]
pub struct TokenResponse {
    token: String,
    #[serde(rename = "expiresAt")]
    expires_at: String,
}

fn token_response(
    state: &AppState,
    user_id: &str,
    role: Role,
    name: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let (token, exp) = state
        .jwt
        .issue(user_id, role, name)
        .map_err(ApiError::internal)?;
    let expires_at = Utc
        .timestamp_opt(exp, 0)
        .single()
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(TokenResponse { token, expires_at }))
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

/// Checks a user name and password; answers with a JWT.
pub async fn login(
    request: HttpRequest,
    body: web::Json<LoginRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { username, password } = body.into_inner();
    let ip = request.peer_addr().map(|a| a.ip().to_string());
    let keys = [
        format!("user:{username}"),
        format!("ip:{}", ip.as_deref().unwrap_or("-")),
    ];
    let now = Instant::now();
    let throttled = {
        let mut throttle = state.login_throttle.lock().map_err(ApiError::internal)?;
        keys.iter()
            .filter_map(|key| throttle.retry_after(key, now))
            .max()
    };
    if let Some(wait) = throttled {
        audit(
            &state,
            format!("login:{username}"),
            "login.throttled",
            serde_json::json!({}),
            ip,
        );
        return Err(ApiError::TooManyRequests(wait));
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
    let role = usable.as_ref().and_then(|u| match u.role.as_str() {
        "admin" => Some(Role::Admin),
        "operator" => Some(Role::Operator),
        "viewer" => Some(Role::Viewer),
        _ => None,
    });
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
            token_response(&state, &user.id.to_string(), role, Some(&user.username))
        }
        _ => {
            let mut throttle = state.login_throttle.lock().map_err(ApiError::internal)?;
            for key in &keys {
                throttle.record_failure(key, now);
            }
            drop(throttle);
            tracing::warn!(security = true, "failed login");
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

/// A fresh token for a caller whose token is still valid.
pub async fn refresh(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    token_response(&state, &caller.user_id, caller.role, None)
}
