//! `/healthz` (process alive) and `/readyz` (database reachable).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::problem::Problem;
use crate::app::AppState;

/// 200 while the process serves requests.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// 200 when the database answers, 503 otherwise.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.db.ping().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not-ready",
                "Service Unavailable",
                "database unreachable",
            )
            .response()
        }
    }
}
