//! API errors, each mapped once to an RFC 9457 problem with a stable `type`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};

use crate::http::problem::Problem;

/// Everything an API handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No, bad or expired token.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// Malformed or invalid request.
    #[error("{0}")]
    BadRequest(String),
    /// Body too large.
    #[error("request body too large")]
    TooLarge,
    /// In conflict with existing state.
    #[error("{0}")]
    Conflict(String),
    /// The machine's agent is not connected.
    #[error("machine is offline")]
    MachineOffline,
    /// The machine's agent is connected to another instance that cannot be reached.
    #[error("the machine's region is unreachable")]
    RegionUnreachable,
    /// The machine's instance did not answer in time.
    #[error("the machine's instance did not answer in time")]
    Timeout,
    /// Too many attempts; retry after this many seconds.
    #[error("too many attempts; retry later")]
    TooManyRequests(u64),
    /// A server-side failure (details are logged, not returned).
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// Logs `err` and returns an opaque internal error.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        ApiError::Internal(err.to_string())
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Unauthenticated(_) => {
                (StatusCode::UNAUTHORIZED, "unauthenticated", "Unauthorized")
            }
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not Found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad Request"),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "Payload Too Large",
            ),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::MachineOffline => (StatusCode::CONFLICT, "machine-offline", "Conflict"),
            ApiError::RegionUnreachable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "region-unreachable",
                "Service Unavailable",
            ),
            ApiError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout", "Gateway Timeout"),
            ApiError::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too Many Requests",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal Server Error",
            ),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!(error = %detail, "api request failed");
        }
        let (status, slug, title) = self.parts();
        let mut response = Problem::new(status, slug, title, self.to_string()).response();
        let headers = response.headers_mut();
        match self {
            ApiError::TooManyRequests(secs) => {
                if let Ok(value) = header::HeaderValue::from_str(&secs.to_string()) {
                    headers.insert(header::RETRY_AFTER, value);
                }
            }
            ApiError::Unauthenticated(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            _ => {}
        }
        response
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        ApiError::internal(err)
    }
}

impl From<fleetgate_actors::agent_session::RouteError> for ApiError {
    fn from(err: fleetgate_actors::agent_session::RouteError) -> Self {
        use fleetgate_actors::agent_session::RouteError;
        match err {
            RouteError::MachineOffline => ApiError::MachineOffline,
            RouteError::RegionUnreachable => ApiError::RegionUnreachable,
            RouteError::Timeout => ApiError::Timeout,
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(err: actix::MailboxError) -> Self {
        ApiError::internal(err)
    }
}
