//! The WebSocket upgrade gate and HTTP basics, over real sockets.

use fleetgate::auth::{Claims, JwtAuth};
use fleetgate::settings::AuthSettings;
use fleetgate_actors::identity::Role;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::support::{TestServer, http_get_status, spawn_app};

/// Outcome of an upgrade attempt: the HTTP status and the selected subprotocol.
async fn try_upgrade(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Option<String>) {
    let mut request = server.ws_url(path).into_client_request().expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                .expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_socket, response)) => (
            response.status(),
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ),
        Err(WsError::Http(response)) => (response.status(), None),
        Err(other) => panic!("unexpected upgrade error: {other}"),
    }
}

fn claims(server_jwt: &JwtAuth) -> Claims {
    let (token, _) = server_jwt
        .issue("user-1", Role::Operator, None)
        .expect("issue");
    server_jwt.verify(&token).expect("verify")
}

#[actix_web::test]
async fn agent_endpoint_upgrades_without_a_token() {
    let server = spawn_app().await;
    let (status, _) = try_upgrade(&server, "/ws/agent", &[]).await;
    assert_eq!(status, StatusCode::SWITCHING_PROTOCOLS);
    server.stop().await;
}

#[actix_web::test]
async fn web_endpoint_refuses_missing_and_bad_tokens() {
    let server = spawn_app().await;
    let (status, _) = try_upgrade(&server, "/ws/web", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let mut expired = claims(&server.jwt);
    expired.exp = chrono::Utc::now().timestamp() - 3600;
    let expired = server.jwt.sign(&expired).expect("sign");

    let mut wrong_audience = claims(&server.jwt);
    wrong_audience.aud = "somebody-else".into();
    let wrong_audience = server.jwt.sign(&wrong_audience).expect("sign");

    let other_settings = AuthSettings {
        jwt_issuer: "fleetgate".into(),
        jwt_audience: "fleetgate-clients".into(),
        jwt_ttl_secs: 3600,
        jwt_leeway_secs: 0,
        user_check_ms: 500,
    };
    let foreign = JwtAuth::new(b"not-the-server-secret-not-the-xx", &other_settings)
        .issue("user-1", Role::Admin, None)
        .expect("issue")
        .0;

    for token in [expired, wrong_audience, foreign, "garbage".to_owned()] {
        let bearer = format!("Bearer {token}");
        let (status, _) = try_upgrade(&server, "/ws/web", &[("authorization", &bearer)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "token {token}");
    }
    server.stop().await;
}

#[actix_web::test]
async fn web_endpoint_accepts_each_presentation_of_a_good_token() {
    let server = spawn_app().await;
    let (_, token) = crate::web_client::user(&server, Role::Operator, &[]).await;

    let bearer = format!("Bearer {token}");
    let (status, _) = try_upgrade(&server, "/ws/web", &[("authorization", &bearer)]).await;
    assert_eq!(status, StatusCode::SWITCHING_PROTOCOLS, "bearer");

    let entry = format!("jwt.{token}");
    let offered = format!("fleetgate.v1, {entry}");
    let (status, selected) =
        try_upgrade(&server, "/ws/web", &[("sec-websocket-protocol", &offered)]).await;
    assert_eq!(status, StatusCode::SWITCHING_PROTOCOLS, "subprotocol");
    assert_eq!(
        selected.as_deref(),
        Some(entry.as_str()),
        "subprotocol echoed"
    );

    let cookie = format!("session={token}");
    let (status, _) = try_upgrade(&server, "/ws/web", &[("cookie", &cookie)]).await;
    assert_eq!(status, StatusCode::SWITCHING_PROTOCOLS, "cookie");

    let query = format!("/ws/web?token={token}");
    let (status, _) = try_upgrade(&server, &query, &[]).await;
    assert_eq!(status, StatusCode::SWITCHING_PROTOCOLS, "query");
    server.stop().await;
}

#[actix_web::test]
async fn web_socket_greets_with_hello() {
    let server = spawn_app().await;
    let (user_id, token) = crate::web_client::user(&server, Role::Viewer, &[]).await;
    let request = server.web_request(&token);
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    let first = socket.next().await.expect("a frame").expect("ok frame");
    let hello: serde_json::Value =
        serde_json::from_str(first.to_text().expect("text")).expect("json");
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["userId"], user_id);
    assert_eq!(hello["role"], "viewer");
    socket.close(None).await.expect("close");
    server.stop().await;
}

#[actix_web::test]
async fn other_websocket_paths_are_not_found() {
    let server = spawn_app().await;
    let (status, _) = try_upgrade(&server, "/ws/other", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[actix_web::test]
async fn oversized_agent_frame_is_refused_with_1009() {
    let server = spawn_app().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("/ws/agent"))
        .await
        .expect("upgrade");
    let huge = "x".repeat(2 << 20);
    socket.send(Message::text(huge)).await.expect("send");
    let mut saw_too_large = false;
    let mut close_code = None;
    while let Some(Ok(frame)) = socket.next().await {
        match frame {
            Message::Text(text) => saw_too_large |= text.contains("\"too_large\""),
            Message::Close(Some(close)) => {
                close_code = Some(u16::from(close.code));
                break;
            }
            _ => {}
        }
    }
    assert!(saw_too_large, "an error frame with code too_large");
    assert_eq!(close_code, Some(1009));
    server.stop().await;
}

#[actix_web::test]
async fn shutdown_closes_sockets_with_1001() {
    let server = spawn_app().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("/ws/agent"))
        .await
        .expect("upgrade");
    let stopping = actix_web::rt::spawn(server.stop());
    let mut close_code = None;
    while let Some(Ok(frame)) = socket.next().await {
        if let Message::Close(Some(close)) = frame {
            close_code = Some(u16::from(close.code));
            break;
        }
    }
    assert_eq!(close_code, Some(1001));
    stopping.await.expect("stopped");
}

#[actix_web::test]
async fn health_and_readiness_answer() {
    let server = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let status = http_get_status(&server.http_url(path)).await;
        assert_eq!(status, 200, "{path}");
    }
    server
        .db
        .ping()
        .await
        .expect("the server's database answers");
    server.stop().await;
}

#[actix_web::test]
async fn a_socket_whose_token_expires_is_told_and_closed_with_4401() {
    let server = spawn_app().await;
    let (user_id, _) = crate::web_client::user(&server, Role::Operator, &[]).await;
    let mut claims = claims(&server.jwt);
    claims.sub = user_id;
    claims.exp = chrono::Utc::now().timestamp() + 1;
    let token = server.jwt.sign(&claims).expect("sign");
    let request = server.web_request(&token);
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    let mut told = false;
    let mut close_code = None;
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await
    {
        match frame {
            Message::Text(text) => told |= text.contains("\"unauthenticated\""),
            Message::Close(close) => {
                close_code = close.map(|c| u16::from(c.code));
                break;
            }
            _ => {}
        }
    }
    assert!(told, "the client is told before the close");
    assert_eq!(close_code, Some(4401));
    server.stop().await;
}

/// Reads until the server closes; returns (saw a `too_large` error, close code).
async fn refusal(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> (bool, Option<u16>) {
    let mut saw_too_large = false;
    let read = async {
        while let Some(Ok(frame)) = socket.next().await {
            match frame {
                Message::Text(text) => saw_too_large |= text.contains("\"too_large\""),
                Message::Close(close) => return close.map(|c| u16::from(c.code)),
                _ => {}
            }
        }
        None
    };
    let code = tokio::time::timeout(std::time::Duration::from_secs(5), read)
        .await
        .expect("refused without waiting for the payload");
    (saw_too_large, code)
}

#[actix_web::test]
async fn a_frame_announcing_100_mib_is_refused_from_its_header() {
    use tokio::io::AsyncWriteExt;
    let server = spawn_app().await;
    let (_, token) = crate::web_client::user(&server, Role::Admin, &[]).await;
    for request in [
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            server.ws_url("/ws/agent"),
        )
        .expect("request"),
        server.web_request(&token),
    ] {
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("upgrade");
        // A masked text frame header announcing 100 MiB, then a few bytes of its payload: the
        // server must answer without waiting for the rest.
        let mut header = vec![0x81, 0x80 | 127];
        header.extend_from_slice(&(100u64 << 20).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        header.extend_from_slice(b"xxxxxxxx");
        let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = socket.get_mut() else {
            panic!("plain TCP");
        };
        tcp.write_all(&header).await.expect("write");
        assert_eq!(refusal(&mut socket).await, (true, Some(1009)));
    }
    server.stop().await;
}
