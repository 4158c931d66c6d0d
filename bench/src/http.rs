//! Just enough HTTP/1.1 to check readiness and log in, without an HTTP client dependency.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one request with `Connection: close`; returns the status code and body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json_body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    request_as(addr, None, method, path, json_body).await
}

/// The same, with `Authorization: Bearer token` when a token is given.
pub async fn request_as(
    addr: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    json_body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let body = json_body.unwrap_or("");
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("HTTP response without a header end")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("HTTP response without a status")?;
    Ok((status, body.to_owned()))
}

/// `POST /api/v1/auth/login`: a JWT for the user.
pub async fn login(addr: SocketAddr, username: &str, password: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "username": username, "password": password }).to_string();
    let (status, body) = request(addr, "POST", "/api/v1/auth/login", Some(&body)).await?;
    if status != 200 {
        bail!("login answered {status}: {body}");
    }
    let reply: serde_json::Value = serde_json::from_str(&body).context("login reply")?;
    reply["token"]
        .as_str()
        .map(str::to_owned)
        .context("login reply without a token")
}
