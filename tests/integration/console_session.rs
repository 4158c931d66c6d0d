//! The browser console's session over HTTP: login into an HttpOnly, SameSite=Strict cookie
//! with no token in the body; cookie-authenticated state changes need the CSRF token; log-out
//! removes both cookies; `/ws/web` takes the cookie from the server's own pages only; the
//! console page carries its Content-Security-Policy; command history shows one's own commands.

use actix_web::cookie::{Cookie, SameSite};
use fleetgate_actors::identity::Role;
use serde_json::{Value, json};

use crate::agent_client::ScriptedAgent;
use crate::api_client::call;
use crate::support::{TestServer, spawn_app};
use crate::web_client::user;

const PASSWORD: &str = "console-password-1";

/// An admin with a password, logged in for the console: (session cookie, csrf cookie).
async fn console_login(server: &TestServer) -> (Cookie<'static>, Cookie<'static>) {
    let (_, admin) = user(server, Role::Admin, &[]).await;
    let body = json!({"username": "carol", "role": "admin", "password": PASSWORD});
    let (status, created) = call(server, "POST", "/users", Some(&admin), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let mut response = awc::Client::default()
        .post(server.http_url("/api/v1/auth/login"))
        .send_json(&json!({"username": "carol", "password": PASSWORD, "cookie": true}))
        .await
        .expect("login");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("json");
    assert!(body.get("token").is_none(), "no token in the body: {body}");
    assert!(body["expiresAt"].is_string());
    let cookies = set_cookies(response.headers());
    let find = |name: &str| {
        cookies
            .iter()
            .find(|c| c.name() == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} cookie"))
            .into_owned()
    };
    let (session, csrf) = (find("session"), find("csrf"));
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.same_site(), Some(SameSite::Strict));
    assert_eq!(session.path(), Some("/"));
    assert_ne!(
        csrf.http_only(),
        Some(true),
        "the console reads the CSRF token"
    );
    (session, csrf)
}

/// The cookies a response sets.
fn set_cookies(headers: &awc::http::header::HeaderMap) -> Vec<Cookie<'static>> {
    headers
        .get_all("set-cookie")
        .filter_map(|value| value.to_str().ok())
        .filter_map(|text| Cookie::parse(text.to_owned()).ok())
        .collect()
}

/// A `Cookie` request header sending `cookies`.
fn cookie_header(cookies: &[&Cookie<'static>]) -> String {
    cookies
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `method /api/v1{path}` with the cookies and maybe the CSRF header: the status.
async fn with_cookies(
    server: &TestServer,
    method: &str,
    path: &str,
    cookies: &(Cookie<'static>, Cookie<'static>),
    csrf_header: Option<&str>,
    body: Option<Value>,
) -> u16 {
    let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = awc::Client::default()
        .request(method, server.http_url(&format!("/api/v1{path}")))
        .insert_header(("Cookie", cookie_header(&[&cookies.0, &cookies.1])));
    if let Some(token) = csrf_header {
        request = request.insert_header(("X-CSRF-Token", token));
    }
    let response = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    };
    response.expect("request").status().as_u16()
}

#[actix_web::test]
async fn the_console_session_lives_in_cookies_and_state_changes_need_the_csrf_token() {
    let server = spawn_app().await;
    let cookies = console_login(&server).await;
    assert_eq!(
        with_cookies(&server, "GET", "/machines", &cookies, None, None).await,
        200
    );
    let new_machine = Some(json!({"name": "csrf-1"}));
    let no_header = with_cookies(
        &server,
        "POST",
        "/machines",
        &cookies,
        None,
        new_machine.clone(),
    )
    .await;
    assert_eq!(no_header, 403, "a cookie alone cannot change anything");
    let wrong = "0".repeat(64);
    let wrong_header = with_cookies(
        &server,
        "POST",
        "/machines",
        &cookies,
        Some(&wrong),
        new_machine.clone(),
    )
    .await;
    assert_eq!(wrong_header, 403);
    let (_, admin) = user(&server, Role::Admin, &[]).await;
    let (_, listed) = call(&server, "GET", "/machines", Some(&admin), None).await;
    assert_eq!(listed["items"], json!([]), "nothing was enrolled");
    let csrf = cookies.1.value().to_owned();
    let right = with_cookies(
        &server,
        "POST",
        "/machines",
        &cookies,
        Some(&csrf),
        new_machine,
    )
    .await;
    assert_eq!(right, 201);

    let logout = awc::Client::default()
        .post(server.http_url("/api/v1/auth/logout"))
        .insert_header(("Cookie", cookie_header(&[&cookies.0])))
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status().as_u16(), 204);
    let cleared = set_cookies(logout.headers());
    for name in ["session", "csrf"] {
        let cookie = cleared.iter().find(|c| c.name() == name).expect("cleared");
        assert_eq!(cookie.value(), "");
        assert_eq!(
            cookie.max_age(),
            Some(actix_web::cookie::time::Duration::ZERO),
            "{name} removed"
        );
    }
    server.stop().await;
}

#[actix_web::test]
async fn operator_sockets_take_the_cookie_only_from_the_servers_own_pages() {
    let server = spawn_app().await;
    let (session, _) = console_login(&server).await;
    let upgrade = |origin: &str| {
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                server.ws_url("/ws/web"),
            )
            .expect("request");
        let headers = request.headers_mut();
        headers.insert(
            "Cookie",
            format!("session={}", session.value())
                .parse()
                .expect("header"),
        );
        headers.insert("Origin", origin.parse().expect("header"));
        request
    };
    let own = format!("http://{}", server.address);
    let (mut socket, _) = tokio_tungstenite::connect_async(upgrade(&own))
        .await
        .expect("same-origin upgrade");
    use futures_util::StreamExt;
    let hello = socket.next().await.expect("hello").expect("frame");
    assert!(hello.to_text().expect("text").contains("\"hello\""));
    let refused = tokio_tungstenite::connect_async(upgrade("https://evil.example")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403)
        }
        other => panic!("a cross-site upgrade must be refused: {other:?}"),
    }
    server.stop().await;
}

#[actix_web::test]
async fn the_console_page_has_its_policy_and_command_history_shows_ones_own() {
    let server = spawn_app().await;
    let page = awc::Client::default()
        .get(server.http_url("/"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status().as_u16(), 200);
    let policy = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("CSP")
        .to_owned();
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(!policy.contains("script-src 'self' 'unsafe-inline'"));

    let (machine, secret) = crate::support::enroll(&server, "history-1").await;
    let mut agent = ScriptedAgent::connect(&server.ws_url("/ws/agent")).await;
    agent.register(&secret, "history-1").await;
    let (me, mine) = user(&server, Role::Operator, &[(&machine, "command")]).await;
    let (_, other) = user(&server, Role::Operator, &[(&machine, "command")]).await;
    for (token, command) in [(&mine, "uptime"), (&other, "id")] {
        let (status, body) = call(
            &server,
            "POST",
            &format!("/machines/{machine}/commands"),
            Some(token),
            Some(json!({"command": command})),
        )
        .await;
        assert_eq!(status, 202, "{body}");
    }
    let history = |token: String| {
        let server = &server;
        let path = format!("/commands?machine={machine}&limit=5");
        async move { call(server, "GET", &path, Some(&token), None).await }
    };
    let (status, listed) = history(mine.clone()).await;
    assert_eq!(status, 200);
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "only one's own: {listed}");
    assert_eq!(
        (items[0]["userId"].as_str(), items[0]["command"].as_str()),
        (Some(me.as_str()), Some("uptime"))
    );
    assert!(
        items[0].get("output").is_none(),
        "history carries no output"
    );
    let (_, admin) = user(&server, Role::Admin, &[]).await;
    let (_, everyone) = history(admin).await;
    assert_eq!(everyone["items"].as_array().map(Vec::len), Some(2));
    server.stop().await;
}
