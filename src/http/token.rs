//! Finding the JWT of a `/ws/web` upgrade in the four presentations of docs/protocol.md section 1.

use actix_web::HttpRequest;
use actix_web::http::header;

/// Prefix of the subprotocol entry carrying a JWT.
const SUBPROTOCOL_PREFIX: &str = "jwt.";

/// A token found on a request, and the subprotocol to echo when it came in one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedToken {
    /// The raw JWT.
    pub token: String,
    /// The `Sec-WebSocket-Protocol` entry to select in the response, if any.
    pub subprotocol: Option<String>,
}

/// The first token presented, in order: bearer header, `jwt.` subprotocol, `session` cookie,
/// `token` query parameter.
pub fn presented_token(request: &HttpRequest) -> Option<PresentedToken> {
    bearer(request)
        .map(|token| PresentedToken {
            token,
            subprotocol: None,
        })
        .or_else(|| subprotocol(request))
        .or_else(|| {
            request.cookie("session").map(|c| PresentedToken {
                token: c.value().to_owned(),
                subprotocol: None,
            })
        })
        .or_else(|| {
            query_token(request).map(|token| PresentedToken {
                token,
                subprotocol: None,
            })
        })
}

/// The token of an `Authorization: Bearer` header, if any.
pub fn bearer(request: &HttpRequest) -> Option<String> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

fn subprotocol(request: &HttpRequest) -> Option<PresentedToken> {
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .find_map(|entry| {
            let token = entry.strip_prefix(SUBPROTOCOL_PREFIX)?;
            (!token.is_empty()).then(|| PresentedToken {
                token: token.to_owned(),
                subprotocol: Some(entry.to_owned()),
            })
        })
}

fn query_token(request: &HttpRequest) -> Option<String> {
    request.query_string().split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "token" && !value.is_empty()).then(|| value.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn bearer_header_wins_over_other_presentations() {
        let request = TestRequest::default()
            .uri("/ws/web?token=q")
            .insert_header((header::AUTHORIZATION, "Bearer h"))
            .insert_header((header::SEC_WEBSOCKET_PROTOCOL, "jwt.p"))
            .to_http_request();
        assert_eq!(presented_token(&request).map(|p| p.token), Some("h".into()));
    }

    #[test]
    fn subprotocol_entry_is_found_among_others() {
        let request = TestRequest::default()
            .insert_header((
                header::SEC_WEBSOCKET_PROTOCOL,
                "fleetgate.v1, jwt.abc.def.ghi",
            ))
            .to_http_request();
        assert_eq!(
            presented_token(&request),
            Some(PresentedToken {
                token: "abc.def.ghi".into(),
                subprotocol: Some("jwt.abc.def.ghi".into())
            })
        );
    }

    #[test]
    fn cookie_then_query_are_used_last() {
        let with_cookie = TestRequest::default()
            .uri("/ws/web?token=q")
            .cookie(actix_web::cookie::Cookie::new("session", "c"))
            .to_http_request();
        assert_eq!(
            presented_token(&with_cookie).map(|p| p.token),
            Some("c".into())
        );
        let query_only = TestRequest::default()
            .uri("/ws/web?a=1&token=q")
            .to_http_request();
        assert_eq!(
            presented_token(&query_only).map(|p| p.token),
            Some("q".into())
        );
        let nothing = TestRequest::default().uri("/ws/web").to_http_request();
        assert_eq!(presented_token(&nothing), None);
    }
}
