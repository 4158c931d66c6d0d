//! `/users` (admins): list, create, change role or state, set a password, delete. Every change
//! is audited (committed) before it is acknowledged, and the user's open sockets are told to
//! close (4403) before the answer when the change takes access away.

use actix_web::{HttpResponse, web};
use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::UserId;
use fleetgate_actors::repo::user::{
    ChangeUser, CreateUser, DeleteUser, ListUsers, UserChange, UserError, UserSummary,
};
use fleetgate_actors::user_directory::UsersChanged;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::caller::Caller;
use super::checks::audit_committed;
use super::error::ApiError;
use crate::accounts::{check_password, check_username};
use crate::app::AppState;
use crate::passwords::hash_password;

/// A user as the API shows it (never the password hash).
#[derive(Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserView {
    id: Uuid,
    username: String,
    /// Null if the stored role is not one this version knows.
    role: Option<Role>,
    /// A disabled user cannot log in or open sockets.
    disabled: bool,
    #[serde(rename = "createdAt")]
    #[schema(format = DateTime)]
    created_at: String,
}

/// Every user.
#[derive(Serialize, ToSchema)]
pub struct UserList(Vec<UserView>);

impl From<UserSummary> for UserView {
    fn from(user: UserSummary) -> Self {
        Self {
            id: user.id.0,
            username: user.username,
            role: user.role,
            disabled: user.disabled,
            created_at: user.created_at.to_rfc3339(),
        }
    }
}

/// `POST /users` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schema(min_length = 1, max_length = 64)]
    username: String,
    role: Role,
    #[schema(min_length = 8)]
    password: String,
}

/// `PATCH /users/{id}` body: what to change (at least one of the two).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    role: Option<Role>,
    disabled: Option<bool>,
}

/// `PUT /users/{id}/password` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    #[schema(min_length = 8)]
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

/// List users (admin).
#[utoipa::path(get, path = "/users", tag = "users",
    responses(
        (status = 200, description = "every user", body = UserList),
        (status = 403, description = "not an admin"),
    ))]
pub async fn list(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let users = state.services.users.send(ListUsers).await??;
    let views = users.into_iter().map(UserView::from).collect();
    Ok(HttpResponse::Ok().json(UserList(views)))
}

/// Add a user (admin).
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser,
    responses(
        (status = 201, description = "the new user", body = UserView),
        (status = 400, description = "bad user name or password"),
        (status = 403, description = "not an admin"),
        (status = 409, description = "a user with this name exists"),
    ))]
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
        .send(ChangeUser {
            id: UserId(id),
            change,
        })
        .await??;
    let mut detail = detail;
    detail["userId"] = id.to_string().into();
    detail["username"] = changed.username.clone().into();
    audit_committed(state, caller, action, None, detail).await?;
    users_changed(state).await?;
    Ok(changed)
}

/// Change a user's role and/or disable or enable them (admin); their open sockets close (4403).
#[utoipa::path(patch, path = "/users/{id}", tag = "users", request_body = UserPatch,
    params(("id" = Uuid, Path, description = "user id")),
    responses(
        (status = 200, description = "the changed user", body = UserView),
        (status = 400, description = "nothing to change"),
        (status = 403, description = "not an admin"),
        (status = 404, description = "no such user"),
        (status = 409, description = "the last enabled admin stays an enabled admin"),
    ))]
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

/// Set a user's password (admins, or the user for themselves).
#[utoipa::path(put, path = "/users/{id}/password", tag = "users", request_body = NewPassword,
    params(("id" = Uuid, Path, description = "user id")),
    responses(
        (status = 204, description = "changed"),
        (status = 400, description = "password too short"),
        (status = 403, description = "neither an admin nor this user"),
        (status = 404, description = "no such user"),
    ))]
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

/// Delete a user (admin): their grants go, their history keeps their id.
#[utoipa::path(delete, path = "/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "user id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "not an admin"),
        (status = 404, description = "no such user"),
        (status = 409, description = "the last enabled admin is kept"),
    ))]
pub async fn delete(
    caller: Caller,
    path: web::Path<Uuid>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let id = path.into_inner();
    let deleted = state
        .services
        .users
        .send(DeleteUser { id: UserId(id) })
        .await??;
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
