//! `/users` (admins): list, create, change role or state, set a password, delete. Every change
//! is audited (committed) before it is acknowledged, and the user's open sockets are told to
//! close (4403) before the answer when the change takes access away.

use actix_web::{HttpResponse, web};
use fleetgate_actors::identity::Role;
use fleetgate_actors::repo::user::{
    ChangeUser, CreateUser, DeleteUser, ListUsers, UserChange, UserError, UserSummary,
};
use fleetgate_actors::user_directory::UsersChanged;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::caller::Caller;
use super::checks::audit_committed;
use super::error::ApiError;
use crate::accounts::{check_password, check_username};
use crate::app::AppState;
use crate::passwords::hash_password;

/// A user as the API shows it (never the password hash).
#[derive(Serialize)]
pub struct UserView {
    id: String,
    username: String,
    role: Option<&'static str>,
    disabled: bool,
    #[serde(rename = "createdAt")]
    created_at: String,
}

impl From<UserSummary> for UserView {
    fn from(user: UserSummary) -> Self {
        Self {
            id: user.id.to_string(),
            username: user.username,
            role: user.role.map(Role::as_str),
            disabled: user.disabled,
            created_at: user.created_at.to_rfc3339(),
        }
    }
}

/// `POST /users` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    role: Role,
    password: String,
}

/// `PATCH /users/{id}` body: what to change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    role: Option<Role>,
    disabled: Option<bool>,
}

/// `PUT /users/{id}/password` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    password: String,
}

impl From<UserError> for ApiError {
    fn from(err: UserError) -> Self {
        match err {
            UserError::NotFound => ApiError::NotFound("no such user".into()),
            UserError::LastAdmin => ApiError::Conflict(err.to_string()),
            UserError::Database(err) => ApiError::internal(err),
        }
    }
}

/// Tells the user directory, and waits until the changed user's sockets were told to close.
async fn users_changed(state: &AppState) -> Result<(), ApiError> {
    state.services.directory.send(UsersChanged).await?;
    Ok(())
}

async fn hashed(password: String) -> Result<String, ApiError> {
    check_password(&password).map_err(ApiError::BadRequest)?;
    hash_password(password).await.map_err(ApiError::internal)
}

/// `GET /users`
pub async fn list(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let users = state.services.users.send(ListUsers).await??;
    let views: Vec<UserView> = users.into_iter().map(UserView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `POST /users` → 201 with the user.
pub async fn create(
    caller: Caller,
    body: web::Json<NewUser>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let NewUser {
        username,
        role,
        password,
    } = body.into_inner();
    check_username(&username).map_err(ApiError::BadRequest)?;
    let password_hash = hashed(password).await?;
    let created = state
        .services
        .users
        .send(CreateUser {
            username: username.clone(),
            role,
            password_hash,
        })
        .await?
        .map_err(|_| ApiError::Conflict("a user with this name exists".into()))?;
    audit_committed(
        &state,
        &caller,
        "user.add",
        None,
        serde_json::json!({ "userId": created.id.to_string(), "username": username, "role": role.as_str() }),
    )
    .await?;
    users_changed(&state).await?;
    Ok(HttpResponse::Created().json(UserView::from(UserSummary::from(created))))
}

/// Applies one change, audits it (committed before the answer), then lets the directory
/// close the user's sockets.
async fn change(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    change: UserChange,
) -> Result<UserSummary, ApiError> {
    let (action, detail) = match &change {
        UserChange::Role(role) => ("user.role", serde_json::json!({ "role": role.as_str() })),
        UserChange::Disabled(true) => ("user.disable", serde_json::json!({})),
        UserChange::Disabled(false) => ("user.enable", serde_json::json!({})),
        UserChange::PasswordHash(_) => ("user.password", serde_json::json!({})),
    };
    let changed = state
        .services
        .users
        .send(ChangeUser { id, change })
        .await??;
    let mut detail = detail;
    detail["userId"] = id.to_string().into();
    detail["username"] = changed.username.clone().into();
    audit_committed(state, caller, action, None, detail).await?;
    users_changed(state).await?;
    Ok(changed)
}

/// `PATCH /users/{id}` with `role` and/or `disabled`.
pub async fn patch(
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<UserPatch>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let id = path.into_inner();
    let UserPatch { role, disabled } = body.into_inner();
    if role.is_none() && disabled.is_none() {
        return Err(ApiError::BadRequest(
            "nothing to change: give role and/or disabled".into(),
        ));
    }
    let mut changed = None;
    if let Some(disabled) = disabled {
        changed = Some(change(&state, &caller, id, UserChange::Disabled(disabled)).await?);
    }
    if let Some(role) = role {
        changed = Some(change(&state, &caller, id, UserChange::Role(role)).await?);
    }
    let changed = changed.ok_or_else(|| ApiError::internal("no change applied"))?;
    Ok(HttpResponse::Ok().json(UserView::from(changed)))
}

/// `PUT /users/{id}/password` (admins, or the user for themselves) → 204.
pub async fn set_password(
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<NewPassword>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    if caller.user_id.0 != id {
        caller.require_admin()?;
    }
    let hash = hashed(body.into_inner().password).await?;
    change(&state, &caller, id, UserChange::PasswordHash(hash)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /users/{id}` → 204; their grants go, their history keeps their id.
pub async fn delete(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let id = path.into_inner();
    let deleted = state.services.users.send(DeleteUser { id }).await??;
    audit_committed(
        &state,
        &caller,
        "user.delete",
        None,
        serde_json::json!({ "userId": id.to_string(), "username": deleted.username }),
    )
    .await?;
    users_changed(&state).await?;
    Ok(HttpResponse::NoContent().finish())
}
