//! A small HTTP client for the fleetgate API, and the WebSocket connection for `exec`/`shell`.

use anyhow::{Context, bail};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::credentials::Credentials;
use super::server_trust::ServerTrust;

/// A connected `/ws/web` socket.
pub type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends a request; returns the status and the body.
async fn fetch(
    server: &str,
    trust: &ServerTrust,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(awc::http::StatusCode, actix_web::web::Bytes)> {
    let client = trust.http_client(server)?;
    let url = format!("{}/api/v1{path}", server.trim_end_matches('/'));
    let method = awc::http::Method::from_bytes(method.as_bytes())?;
    let mut req = client.request(method, &url);
    if let Some(token) = token {
        req = req.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut response = match body {
        Some(body) => req.send_json(&body).await,
        None => req.send().await,
    }
    .map_err(|err| anyhow::anyhow!("cannot reach {url}: {err}"))?;
    let bytes = response
        .body()
        .limit(64 << 20)
        .await
        .context("reading the response")?;
    Ok((response.status(), bytes))
}

/// The body of a successful request; a refused one becomes its problem's detail as an error.
async fn fetch_ok(
    server: &str,
    trust: &ServerTrust,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<actix_web::web::Bytes> {
    let (status, bytes) = fetch(server, trust, token, method, path, body).await?;
    if status.is_success() {
        return Ok(bytes);
    }
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let detail = json["detail"].as_str().unwrap_or("request failed");
    bail!("{} {}", status.as_u16(), detail)
}

/// Sends a JSON request; returns the JSON body, or the problem's detail as an error.
pub async fn request(
    server: &str,
    trust: &ServerTrust,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let bytes = fetch_ok(server, trust, token, method, path, body).await?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).context("response is not JSON")
}

/// `GET` of a text body (not JSON) with the saved credentials.
pub async fn get_text(credentials: &Credentials, path: &str) -> anyhow::Result<String> {
    let token = Some(credentials.token.as_str());
    let bytes = fetch_ok(
        &credentials.server,
        &credentials.tls,
        token,
        "GET",
        path,
        None,
    )
    .await?;
    String::from_utf8(bytes.to_vec()).context("response is not UTF-8")
}

/// `GET` with the saved credentials.
pub async fn get(credentials: &Credentials, path: &str) -> anyhow::Result<Value> {
    request(
        &credentials.server,
        &credentials.tls,
        Some(&credentials.token),
        "GET",
        path,
        None,
    )
    .await
}

/// Resolves a machine given by id, name or hostname.
pub async fn resolve_machine(credentials: &Credentials, wanted: &str) -> anyhow::Result<String> {
    let list = get(credentials, "/machines").await?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let matches: Vec<&Value> = items
        .iter()
        .filter(|m| m["id"] == wanted || m["name"] == wanted || m["hostname"] == wanted)
        .collect();
    match matches.as_slice() {
        [one] => Ok(one["id"].as_str().unwrap_or_default().to_owned()),
        [] => bail!("no machine called {wanted:?} that you may see"),
        _ => bail!("{wanted:?} names several machines; use its id"),
    }
}

/// Opens `/ws/web` with the saved token and consumes `hello`.
pub async fn connect_web(credentials: &Credentials) -> anyhow::Result<WebSocket> {
    use futures_util::StreamExt;
    let url = format!(
        "{}/ws/web",
        credentials
            .server
            .trim_end_matches('/')
            .replacen("http", "ws", 1)
    );
    let mut request = url.as_str().into_client_request()?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", credentials.token).parse()?,
    );
    let connector = credentials.tls.ws_connector(&url)?;
    let (mut socket, _) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector)
            .await
            .map_err(|err| {
                anyhow::anyhow!(
                    "cannot open {url}: {err} (has your login expired? run `fleetgate login`)"
                )
            })?;
    match socket.next().await {
        Some(Ok(message)) if message.to_text().is_ok_and(|t| t.contains("\"hello\"")) => Ok(socket),
        _ => bail!("the server did not greet the connection"),
    }
}

/// The next JSON message on the socket; `None` when it closes.
pub async fn next_json(socket: &mut WebSocket) -> anyhow::Result<Option<Value>> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    while let Some(message) = socket.next().await {
        match message? {
            Message::Text(text) => return Ok(Some(serde_json::from_str(&text)?)),
            Message::Close(_) => return Ok(None),
            _ => continue,
        }
    }
    Ok(None)
}

/// Sends one JSON message.
pub async fn send_json(socket: &mut WebSocket, value: Value) -> anyhow::Result<()> {
    use futures_util::SinkExt;
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(
            value.to_string(),
        ))
        .await?;
    Ok(())
}
