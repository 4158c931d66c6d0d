//! `GET /sessions/{id}/recording`: a finished session's asciicast, for its owner and admins,
//! after its signature was checked (a changed file is reported, never served).

use actix_web::{HttpResponse, web};
use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::SessionId;
use fleetgate_actors::recording::stored::{PlaybackError, open_verified};
use fleetgate_actors::repo::audit::RecordAudit;
use fleetgate_actors::repo::queries::GetSession;

use super::caller::Caller;
use super::error::ApiError;
use crate::app::AppState;

/// A session's recording (asciicast v2), for its owner or an admin.
#[utoipa::path(get, path = "/sessions/{id}/recording", tag = "sessions",
    params(("id" = String, Path, description = "session id")),
    responses(
        (status = 200, description = "the asciicast v2 recording", content_type = "application/x-asciicast", body = String),
        (status = 403, description = "neither the session's owner nor an admin"),
        (status = 404, description = "no such session, or it was not recorded"),
        (status = 409, description = "still being recorded, or changed after it was made"),
    ))]
pub async fn show(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = SessionId::parse(&path.into_inner())
        .ok_or_else(|| ApiError::NotFound("no such session".into()))?;
    let session = state
        .services
        .queries
        .send(GetSession {
            session_id: id.clone(),
        })
        .await??
        .ok_or_else(|| ApiError::NotFound("no such session".into()))?;
    if caller.role != Role::Admin && session.user_id != caller.user_id {
        return Err(ApiError::Forbidden(
            "only the session's owner and admins may play it".into(),
        ));
    }
    let recording = state.recording.clone();
    let session_id = id.to_string();
    let opened = actix_web::rt::task::spawn_blocking(move || {
        open_verified(&recording.dir, &session_id, &recording.key)
    })
    .await
    .map_err(ApiError::internal)?;
    let cast = match opened {
        Ok(cast) => cast,
        Err(PlaybackError::Missing) => {
            return Err(ApiError::NotFound("this session was not recorded".into()));
        }
        Err(err @ (PlaybackError::InProgress | PlaybackError::Tampered)) => {
            if matches!(err, PlaybackError::Tampered) {
                tracing::warn!(security = true, session_id = %id, "tampered recording");
            }
            return Err(ApiError::Conflict(err.to_string()));
        }
        Err(err) => return Err(ApiError::internal(err)),
    };
    state.services.audit.do_send(RecordAudit {
        actor: caller.user_id.to_string(),
        action: "recording.play",
        machine_id: Some(session.machine_id),
        detail: serde_json::json!({ "sessionId": id.to_string() }),
        source_ip: caller.source_ip,
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-asciicast")
        .body(cast))
}
