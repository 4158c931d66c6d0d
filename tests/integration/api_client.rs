//! Calling the HTTP API from tests.

use serde_json::Value;

use crate::support::TestServer;

/// Calls `method path` (below `/api/v1`) with an optional bearer token and raw body;
/// returns the status, the JSON body (or Null) and the `Retry-After` header.
pub async fn call_raw(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (u16, Value, Option<String>) {
    let client = awc::Client::default();
    let url = server.http_url(&format!("/api/v1{path}"));
    let mut request = client.request(
        awc::http::Method::from_bytes(method.as_bytes()).expect("method"),
        url,
    );
    if let Some(token) = token {
        request = request.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut response = match body {
        Some(body) => {
            request
                .insert_header(("Content-Type", "application/json"))
                .send_body(body)
                .await
        }
        None => request.send().await,
    }
    .expect("request sent");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response.body().limit(16 << 20).await.expect("body");
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("json body")
    };
    let status = response.status().as_u16();
    if status >= 400 {
        assert_eq!(
            content_type, "application/problem+json",
            "{method} {path}: {json}"
        );
        assert!(
            json["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("https://")),
            "{json}"
        );
    }
    (status, json, retry_after)
}

/// Calls with a JSON body value.
pub async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, json, _) =
        call_raw(server, method, path, token, body.map(|b| b.to_string())).await;
    (status, json)
}
