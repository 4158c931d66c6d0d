//! HTTP routes, one file per route group.

pub mod agent_api;
pub mod api;
pub mod console;
pub mod health;
pub mod problem;
pub mod request_log;
pub mod session_cookie;
pub mod token;
pub mod ws;

use actix_web::web;

/// Registers every route of the server; agent report bodies are limited to `agent_body_limit`.
pub fn routes(config: &mut web::ServiceConfig, agent_body_limit: usize) {
    agent_api::routes(config, agent_body_limit);
    api::routes(config);
    console::routes(config);
    config
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/ws/agent", web::get().to(ws::agent_socket))
        .route("/ws/web", web::get().to(ws::web_socket))
        .default_service(web::to(problem::not_found));
}
