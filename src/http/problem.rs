//! RFC 9457 problem details (`application/problem+json`), the body of every HTTP error.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

/// Base of the stable `type` URIs.
const TYPE_BASE: &str = "https://fleetgate.dev/problems/";

/// A problem detail body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the problem kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary.
    pub title: &'static str,
    /// HTTP status code.
    pub status: u16,
    /// Explanation of this occurrence.
    pub detail: String,
}

impl Problem {
    /// A problem of kind `slug` with `status`.
    pub fn new(
        status: StatusCode,
        slug: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind: format!("{TYPE_BASE}{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    /// The HTTP response carrying this problem.
    pub fn response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        HttpResponse::build(status)
            .content_type("application/problem+json")
            .json(self)
    }
}

/// 404 for every path without a route (including WebSocket paths other than the two).
pub async fn not_found() -> HttpResponse {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not Found",
        "no such resource",
    )
    .response()
}
