//! The browser console's session: the JWT in an `HttpOnly`, `SameSite=Strict` cookie
//! (`Secure` over TLS) that scripts cannot read, and a CSRF token in a readable cookie that the
//! console echoes in `X-CSRF-Token` on every state-changing request (double submit).

use actix_web::HttpRequest;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::Method;

/// The cookie carrying the JWT (also accepted by `/ws/web`).
pub const SESSION_COOKIE: &str = "session";
/// The cookie carrying the CSRF token.
pub const CSRF_COOKIE: &str = "csrf";
/// The header a cookie-authenticated state-changing request repeats the CSRF token in.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// The two cookies of a console session whose JWT lives `lifetime_secs`.
pub fn session_cookies(
    request: &HttpRequest,
    token: String,
    lifetime_secs: i64,
) -> [Cookie<'static>; 2] {
    let secure = request.connection_info().scheme() == "https";
    let mut csrf = [0u8; 32];
    if getrandom::fill(&mut csrf).is_err() {
        // No randomness: a cookie session without a usable CSRF token (state-changing
        // requests are then refused) rather than a guessable one.
        csrf = [0; 32];
    }
    let max_age = CookieDuration::seconds(lifetime_secs.max(0));
    let session = Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(max_age)
        .finish();
    let csrf = Cookie::build(CSRF_COOKIE, hex::encode(csrf))
        .path("/")
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(max_age)
        .finish();
    [session, csrf]
}

/// Cookies that remove both.
pub fn cleared_cookies() -> [Cookie<'static>; 2] {
    [SESSION_COOKIE, CSRF_COOKIE].map(|name| {
        let mut cookie = Cookie::build(name, "").path("/").finish();
        cookie.make_removal();
        cookie
    })
}

/// Whether a request authenticated by the session cookie may go on: safe methods always;
/// others only with the CSRF cookie's value in [`CSRF_HEADER`].
pub fn csrf_allows(request: &HttpRequest) -> bool {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return true;
    }
    let header = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok());
    match (request.cookie(CSRF_COOKIE), header) {
        (Some(cookie), Some(header)) => {
            cookie.value().len() == 64
                && cookie.value() != "0".repeat(64)
                && constant_time_eq(cookie.value(), header)
        }
        _ => false,
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// Whether an upgrade authenticated by the session cookie comes from this server's own pages:
/// its `Origin` (browsers always send one) names the host the request was sent to.
pub fn same_origin(request: &HttpRequest) -> bool {
    let Some(origin) = request
        .headers()
        .get(actix_web::http::header::ORIGIN)
        .and_then(|value| value.to_str().ok())
    else {
        return true;
    };
    let host = request.connection_info().host().to_owned();
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(&host))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn a_state_changing_request_needs_the_csrf_token_repeated() {
        let token = "ab12".repeat(16);
        let cookie = Cookie::new(CSRF_COOKIE, token.clone());
        let get = TestRequest::get().cookie(cookie.clone()).to_http_request();
        assert!(csrf_allows(&get));
        let bare = TestRequest::post().cookie(cookie.clone()).to_http_request();
        assert!(!csrf_allows(&bare));
        let wrong = TestRequest::post()
            .cookie(cookie.clone())
            .insert_header((CSRF_HEADER, "ab13".repeat(16)))
            .to_http_request();
        assert!(!csrf_allows(&wrong));
        let right = TestRequest::delete()
            .cookie(cookie)
            .insert_header((CSRF_HEADER, token))
            .to_http_request();
        assert!(csrf_allows(&right));
        let no_cookie = TestRequest::post()
            .insert_header((CSRF_HEADER, ""))
            .to_http_request();
        assert!(!csrf_allows(&no_cookie));
    }

    #[test]
    fn the_session_cookie_is_out_of_scripts_reach() {
        let request = TestRequest::default().to_http_request();
        let [session, csrf] = session_cookies(&request, "jwt".into(), 3600);
        assert_eq!(session.http_only(), Some(true));
        assert_eq!(session.same_site(), Some(SameSite::Strict));
        assert_eq!(session.secure(), Some(false), "plain HTTP here");
        assert_eq!(csrf.http_only(), None, "the console reads this one");
        assert_eq!(csrf.value().len(), 64);
    }

    #[test]
    fn upgrades_from_other_sites_are_told_apart() {
        let own = TestRequest::get()
            .insert_header(("host", "fleet.example:8080"))
            .insert_header(("origin", "http://fleet.example:8080"))
            .to_http_request();
        assert!(same_origin(&own));
        let other = TestRequest::get()
            .insert_header(("host", "fleet.example:8080"))
            .insert_header(("origin", "https://evil.example"))
            .to_http_request();
        assert!(!same_origin(&other));
    }
}
