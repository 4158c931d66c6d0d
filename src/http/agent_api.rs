//! Agent HTTP endpoints (docs/protocol.md 2.10): reports authenticated by `X-Agent-Secret`.

use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use fleetgate_actors::protocol::MachineId;
use fleetgate_actors::protocol::reports::{ReportKind, check_report};
use fleetgate_actors::repo::machine::LookupSecret;
use fleetgate_actors::repo::report::StoreReport;

use super::problem::Problem;
use crate::app::AppState;

/// Header carrying the machine secret.
const SECRET_HEADER: &str = "X-Agent-Secret";

/// Registers `/api/agent/...` with a body limit of `body_limit` bytes.
pub fn routes(config: &mut web::ServiceConfig, body_limit: usize) {
    let json = web::JsonConfig::default()
        .limit(body_limit)
        .error_handler(|err, _| {
            let problem = match &err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    "Payload Too Large",
                    "report body too large",
                ),
                _ => Problem::new(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    "Bad Request",
                    "body must be a JSON object",
                ),
            };
            actix_web::error::InternalError::from_response(err, problem.response()).into()
        });
    config.service(
        web::scope("/api/agent")
            .app_data(json)
            .route("/scan", web::post().to(scan))
            .route("/scan/progress", web::post().to(scan_progress))
            .route("/audit", web::post().to(audit))
            .route("/security-events", web::post().to(security_events)),
    );
}

async fn scan(
    request: HttpRequest,
    body: web::Json<serde_json::Value>,
    state: web::Data<AppState>,
) -> HttpResponse {
    accept(ReportKind::Scan, &request, body.into_inner(), &state).await
}

async fn scan_progress(
    request: HttpRequest,
    body: web::Json<serde_json::Value>,
    state: web::Data<AppState>,
) -> HttpResponse {
    accept(
        ReportKind::ScanProgress,
        &request,
        body.into_inner(),
        &state,
    )
    .await
}

async fn audit(
    request: HttpRequest,
    body: web::Json<serde_json::Value>,
    state: web::Data<AppState>,
) -> HttpResponse {
    accept(ReportKind::Audit, &request, body.into_inner(), &state).await
}

async fn security_events(
    request: HttpRequest,
    body: web::Json<serde_json::Value>,
    state: web::Data<AppState>,
) -> HttpResponse {
    accept(
        ReportKind::SecurityEvents,
        &request,
        body.into_inner(),
        &state,
    )
    .await
}

/// Authenticates the secret, checks the body and stores it.
async fn accept(
    kind: ReportKind,
    request: &HttpRequest,
    body: serde_json::Value,
    state: &AppState,
) -> HttpResponse {
    let Some(secret) = request
        .headers()
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        return unauthorized();
    };
    let machine_id = match state
        .services
        .machines
        .send(LookupSecret {
            secret: secret.trim().to_owned(),
        })
        .await
    {
        Ok(Ok(Some(id))) => id,
        Ok(Ok(None)) => {
            tracing::warn!(
                security = true,
                report = kind.as_str(),
                "agent report with an unknown secret"
            );
            return unauthorized();
        }
        Ok(Err(err)) => return internal(&err.to_string()),
        Err(err) => return internal(&err.to_string()),
    };
    let claimed = match check_report(kind, &body) {
        Ok(claimed) => claimed,
        Err(reason) => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "bad-request",
                "Bad Request",
                reason,
            )
            .response();
        }
    };
    if MachineId::parse(&claimed) != Some(machine_id) {
        tracing::warn!(security = true, %machine_id, report = kind.as_str(), "agent report names another machine");
        return unauthorized();
    }
    let store = StoreReport {
        machine_id,
        kind: kind.as_str(),
        body,
    };
    match state.services.reports.send(store).await {
        Ok(Ok(())) => HttpResponse::Ok().json(serde_json::json!({ "ok": true })),
        Ok(Err(err)) => internal(&err.to_string()),
        Err(err) => internal(&err.to_string()),
    }
}

fn unauthorized() -> HttpResponse {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "Unauthorized",
        "unknown agent secret",
    )
    .response()
}

fn internal(error: &str) -> HttpResponse {
    tracing::error!(error, "agent report could not be stored");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal Server Error",
        "report not stored",
    )
    .response()
}
