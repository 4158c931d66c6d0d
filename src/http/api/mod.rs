//! The operator HTTP API under `/api/v1`: one file per route group. Every error is
//! `application/problem+json`; bodies are size-limited and reject unknown fields.

pub mod access;
pub mod audit;
pub mod auth;
pub mod caller;
pub mod checks;
pub mod command_history;
pub mod commands;
pub mod error;
pub mod machine_admin;
pub mod machine_recording;
pub mod machine_views;
pub mod machines;
pub mod openapi;
pub mod recordings;
pub mod sessions;
pub mod throttle;
pub mod users;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::Method;
use actix_web::web;

use error::ApiError;

/// Largest accepted API request body, bytes.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Declares the route table once: it both registers the routes and lists them for the
/// OpenAPI test, so the document cannot silently miss a route.
macro_rules! api_routes {
    ($($method:ident $path:literal => $handler:path),* $(,)?) => {
        /// Every API route as (method, path below `/api/v1`).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn register_routes(scope: actix_web::Scope) -> actix_web::Scope {
            scope$(.route($path, web::method(Method::$method).to($handler)))*
        }
    };
}

api_routes! {
    POST "/auth/login" => auth::login,
    POST "/auth/refresh" => auth::refresh,
    POST "/auth/logout" => auth::logout,
    GET "/machines" => machines::list,
    POST "/machines" => machine_admin::create,
    GET "/machines/{id}" => machines::show,
    DELETE "/machines/{id}" => machine_admin::delete,
    GET "/machines/{id}/metrics" => machines::metrics,
    GET "/machines/{id}/ports" => machines::ports,
    POST "/machines/{id}/rotate-secret" => machine_admin::rotate_secret,
    PUT "/machines/{id}/recording" => machine_recording::put,
    PUT "/machines/{id}/access/{userId}" => access::put,
    DELETE "/machines/{id}/access/{userId}" => access::delete,
    POST "/machines/{id}/commands" => commands::run_one,
    POST "/commands" => commands::run_many,
    GET "/commands" => command_history::list,
    GET "/commands/{id}" => commands::show,
    GET "/sessions" => sessions::list,
    DELETE "/sessions/{id}" => sessions::kill,
    GET "/sessions/{id}/recording" => recordings::show,
    GET "/audit" => audit::list,
    GET "/users" => users::list,
    POST "/users" => users::create,
    PATCH "/users/{id}" => users::patch,
    DELETE "/users/{id}" => users::delete,
    PUT "/users/{id}/password" => users::set_password,
    GET "/openapi.json" => openapi::document,
}

/// Registers `/api/v1` with its extractor configuration.
pub fn routes(config: &mut web::ServiceConfig) {
    let json = web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _| {
            match err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => ApiError::TooLarge,
                other => ApiError::BadRequest(format!("invalid JSON body: {other}")),
            }
            .into()
        });
    let path = web::PathConfig::default()
        .error_handler(|_: PathError, _| ApiError::NotFound("no such resource".into()).into());
    let query = web::QueryConfig::default().error_handler(|err: QueryPayloadError, _| {
        ApiError::BadRequest(format!("invalid query: {err}")).into()
    });
    config.service(register_routes(
        web::scope("/api/v1")
            .app_data(json)
            .app_data(path)
            .app_data(query),
    ));
}
