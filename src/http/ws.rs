//! The WebSocket upgrade gate: `/ws/agent` upgrades for anyone (agents authenticate with
//! `register`, and until then may only send small messages); `/ws/web` upgrades only with a
//! valid JWT of a user who exists and is enabled now, with the role stored for them.

use actix_http::ws::Codec;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_actors::ws::{self, WebsocketContext, WsResponseBuilder};
use fleetgate_actors::agent_session::AgentSession;
use fleetgate_actors::security_events::SecurityEvent;
use fleetgate_actors::socket::SocketActor;
use fleetgate_actors::socket_drain::drain_meter;
use fleetgate_actors::user_directory::{LookupUser, StoredUser};
use fleetgate_actors::web_session::WebSession;

use super::problem::Problem;
use super::session_cookie::{SESSION_COOKIE, same_origin};
use super::token::presented_token;
use crate::app::AppState;

/// Upgrades an agent connection.
pub async fn agent_socket(
    request: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let peer = request.peer_addr().map(|addr| addr.ip().to_string());
    let mut session = AgentSession::new(
        state.agent_session.clone(),
        state.services.agent_links(),
        state.shutdown.clone(),
    )
    .with_peer(peer);
    let input = session.inbound().guard(stream);
    WsResponseBuilder::new(session, &request, input)
        .frame_size(state.agent_session.socket.max_frame_bytes)
        .start()
}

/// Upgrades an operator connection after verifying its JWT.
pub async fn web_socket(
    request: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let source_ip = request.peer_addr().map(|addr| addr.ip().to_string());
    let Some(presented) = presented_token(&request) else {
        return Ok(unauthorized("no token presented"));
    };
    let refused = |reason: String| {
        state.services.security.report(SecurityEvent {
            actor: "web".to_owned(),
            action: "security.upgrade_refused",
            machine_id: None,
            peer: source_ip.clone(),
            detail: serde_json::json!({ "reason": reason }),
        });
    };
    // A browser sends the console's cookie with any page's upgrade: only this server's own
    // pages may use it (cross-site WebSocket hijacking).
    let via_cookie = request
        .cookie(SESSION_COOKIE)
        .is_some_and(|cookie| cookie.value() == presented.token);
    if via_cookie && !same_origin(&request) {
        refused("cross-site upgrade with the session cookie".to_owned());
        return Ok(forbidden("cross-site upgrade refused"));
    }
    let mut user = match state.jwt.authenticate(&presented.token) {
        Ok(user) => user,
        Err(err) => {
            refused(err.to_string());
            return Ok(unauthorized(&err.to_string()));
        }
    };
    let stored = state
        .services
        .directory
        .send(LookupUser {
            user_id: user.user_id,
        })
        .await
        .map_err(actix_web::error::ErrorInternalServerError)?
        .map_err(actix_web::error::ErrorInternalServerError)?;
    match stored.map(StoredUser::usable_role) {
        Some(Some(role)) => user.role = role,
        Some(None) => {
            refused("user disabled".to_owned());
            return Ok(forbidden("user disabled"));
        }
        None => {
            refused("unknown user".to_owned());
            return Ok(unauthorized("unknown user"));
        }
    }
    let (meter, drain) = drain_meter();
    let mut session = WebSession::new(
        user,
        source_ip,
        state.web_session.clone(),
        state.services.web_links(),
        state.session_tokens.clone(),
        state.shutdown.clone(),
        drain,
    );
    let protocols: Vec<&str> = presented.subprotocol.as_deref().into_iter().collect();
    let mut response = ws::handshake_with_protocols(&request, &protocols)?;
    let codec = Codec::new().max_size(state.web_session.socket.max_frame_bytes);
    let input = session.inbound().guard(stream);
    let output = WebsocketContext::with_codec(session, input, codec);
    Ok(response.streaming(meter.count(output)))
}

fn forbidden(detail: &str) -> HttpResponse {
    Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail).response()
}

fn unauthorized(detail: &str) -> HttpResponse {
    let mut response = Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "Unauthorized",
        detail,
    )
    .response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}
