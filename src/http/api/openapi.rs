//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of this API, derived from the
//! handlers' `#[utoipa::path]` annotations and the request and response body types, so it
//! stays true by construction. Every error answer is a [`Problem`](crate::http::problem::Problem).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, ContentBuilder, PathItem, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{
    access, audit, auth, command_history, commands, machine_admin, machine_recording, machines,
    recordings, sessions, users,
};

/// The API as an OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "fleetgate API",
        description = "Operator API of fleetgate. Errors are RFC 9457 problem details.",
        license(name = "Apache-2.0")
    ),
    servers((url = "/api/v1")),
    paths(
        auth::login,
        auth::refresh,
        auth::logout,
        machines::list,
        machine_admin::create,
        machines::show,
        machine_admin::delete,
        machines::metrics,
        machines::ports,
        machine_admin::rotate_secret,
        machine_recording::put,
        access::put,
        access::delete,
        commands::run_one,
        commands::run_many,
        commands::show,
        command_history::list,
        sessions::list,
        sessions::kill,
        recordings::show,
        audit::list,
        users::list,
        users::create,
        users::patch,
        users::delete,
        users::set_password,
        document,
    ),
    components(schemas(crate::http::problem::Problem)),
    modifiers(&BearerAndProblems),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// Adds the bearer scheme, and the problem body to every error answer (and a `default` one).
struct BearerAndProblems;

impl Modify for BearerAndProblems {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        for item in doc.paths.paths.values_mut() {
            for operation in operations(item) {
                let responses = &mut operation.responses.responses;
                responses.entry("default".into()).or_insert_with(|| {
                    RefOr::T(
                        ResponseBuilder::new()
                            .description("any other error")
                            .build(),
                    )
                });
                for (status, response) in responses.iter_mut() {
                    let is_error = status == "default" || !status.starts_with('2');
                    if let RefOr::T(response) = response
                        && is_error
                        && response.content.is_empty()
                    {
                        response
                            .content
                            .insert("application/problem+json".into(), problem_content());
                    }
                }
            }
        }
    }
}

/// Every operation of a path item.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

fn problem_content() -> RefOr<Content> {
    RefOr::T(
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

/// The document as served, built once.
pub fn document_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    })
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "the OpenAPI 3.1 document", body = serde_json::Value)))]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().expect("paths");
        let mut documented = Vec::new();
        for (path, item) in paths {
            for method in item.as_object().expect("path item").keys() {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
        let mut routes: Vec<(String, String)> = super::super::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        documented.sort();
        routes.sort();
        assert_eq!(documented, routes);
    }

    #[test]
    fn every_error_answer_is_a_problem_and_every_operation_has_a_default() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).expect("valid JSON");
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                let responses = operation["responses"].as_object().expect("responses");
                assert!(responses.contains_key("default"), "{method} {path}");
                for (status, response) in responses {
                    assert!(
                        response["description"].is_string(),
                        "{method} {path} {status}"
                    );
                    if !status.starts_with('2') {
                        assert_eq!(
                            response["content"]["application/problem+json"]["schema"]["$ref"],
                            "#/components/schemas/Problem",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }
}
