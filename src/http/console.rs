//! The browser console: static files embedded in the binary (`console/static/`), served at `/`
//! (the page) and `/assets/…` (scripts, styles, vendored libraries), compressed when the
//! browser accepts it, revalidated by ETag, under a strict Content-Security-Policy (no inline
//! script; styles may be set by the terminal and chart libraries).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Compress;
use actix_web::{HttpRequest, HttpResponse, web};
use rust_embed::RustEmbed;

use super::problem::Problem;

/// The console's files.
#[derive(RustEmbed)]
#[folder = "console/static/"]
struct ConsoleFiles;

/// The policy every console response carries.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'self'";

/// Registers `/` and `/assets/{path}`.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/")
                .wrap(Compress::default())
                .route(web::get().to(page)),
        )
        .service(
            web::scope("/assets")
                .wrap(Compress::default())
                .route("/{path:.*}", web::get().to(asset)),
        );
}

async fn page(request: HttpRequest) -> HttpResponse {
    serve(&request, "index.html")
}

async fn asset(request: HttpRequest, path: web::Path<String>) -> HttpResponse {
    serve(&request, &path)
}

/// The file at `path`, or 304 when the browser's copy is current, or 404.
fn serve(request: &HttpRequest, path: &str) -> HttpResponse {
    let Some(file) = ConsoleFiles::get(path) else {
        return Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not Found",
            "no such console file",
        )
        .response();
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let current = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if current {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    if current {
        return response.finish();
    }
    let mime = file.metadata.mimetype();
    let content_type = HeaderValue::from_str(mime)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    response
        .insert_header((header::CONTENT_TYPE, content_type))
        .body(file.data.into_owned())
}

#[cfg(test)]
mod tests {
    use actix_web::{App, test};

    use super::*;

    #[actix_web::test]
    async fn the_page_is_served_with_its_policy_and_revalidated_by_etag() {
        let app = test::init_service(App::new().configure(routes)).await;
        let page = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        assert_eq!(page.status(), StatusCode::OK);
        let headers = page.headers().clone();
        assert_eq!(
            headers.get(header::CONTENT_TYPE).expect("header"),
            "text/html"
        );
        assert!(
            headers
                .get(header::CONTENT_SECURITY_POLICY)
                .expect("header")
                .to_str()
                .expect("ascii")
                .contains("script-src 'self';")
        );
        let etag = headers.get(header::ETAG).expect("header").clone();
        let again = test::TestRequest::get()
            .uri("/")
            .insert_header((header::IF_NONE_MATCH, etag))
            .to_request();
        let again = test::call_service(&app, again).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }

    #[actix_web::test]
    async fn scripts_are_javascript_compressed_on_request_and_unknown_files_are_404() {
        let app = test::init_service(App::new().configure(routes)).await;
        let script = test::TestRequest::get()
            .uri("/assets/js/app.js")
            .insert_header((header::ACCEPT_ENCODING, "br"))
            .to_request();
        let script = test::call_service(&app, script).await;
        assert_eq!(script.status(), StatusCode::OK);
        assert_eq!(
            script.headers().get(header::CONTENT_TYPE).expect("header"),
            "text/javascript"
        );
        assert_eq!(
            script
                .headers()
                .get(header::CONTENT_ENCODING)
                .expect("header"),
            "br"
        );
        let missing = test::TestRequest::get()
            .uri("/assets/../Cargo.toml")
            .to_request();
        let missing = test::call_service(&app, missing).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
