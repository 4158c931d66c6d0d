//! `fleetgate shell --watch SESSION_ID`: another user's live terminal, read-only. The output is
//! written as it comes; nothing typed is sent (the server would refuse it anyway); Ctrl-C
//! stops watching.

use std::io::Write;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::api::{WebSocket, connect_web};
use super::credentials;
use super::shell::unseen_output;

/// Watches `session_id` until it ends, the watch is ended, or Ctrl-C.
pub async fn watch(session_id: &str) -> anyhow::Result<()> {
    let credentials = credentials::load()?;
    let mut socket = connect_web(&credentials).await?;
    let request = json!({ "type": "watch_terminal", "sessionId": session_id });
    socket.send(Message::text(request.to_string())).await?;
    let watching = until_watching(&mut socket).await?;
    eprintln!(
        "fleetgate: watching session {session_id} of user {} on machine {} ({}x{}), read-only; Ctrl-C to stop",
        watching["ownerId"].as_str().unwrap_or("?"),
        watching["machineId"].as_str().unwrap_or("?"),
        watching["cols"],
        watching["rows"],
    );
    let reason = tokio::select! {
        ended = relay_output(&mut socket) => ended?,
        _ = tokio::signal::ctrl_c() => {
            let leave = json!({ "type": "unwatch_terminal", "sessionId": session_id });
            // Best effort: the server also notices the socket closing.
            let _ = socket.send(Message::text(leave.to_string())).await;
            "stopped".to_owned()
        }
    };
    eprintln!("\r\nfleetgate: no longer watching ({reason})");
    Ok(())
}

/// Reads until `terminal_watching`; an `error` first is the refusal.
async fn until_watching(socket: &mut WebSocket) -> anyhow::Result<Value> {
    loop {
        let Some(Ok(Message::Text(text))) = socket.next().await else {
            bail!("connection closed before the watch started");
        };
        let message: Value = serde_json::from_str(&text)?;
        match message["type"].as_str() {
            Some("terminal_watching") => return Ok(message),
            Some("error") => bail!("{}", message["message"].as_str().unwrap_or("refused")),
            _ => {}
        }
    }
}

/// Writes the session's output until the watch ends; answers why it ended.
async fn relay_output(socket: &mut WebSocket) -> anyhow::Result<String> {
    let mut stdout = std::io::stdout();
    let mut written = 0;
    while let Some(frame) = socket.next().await {
        let Message::Text(text) = frame? else {
            continue;
        };
        let message: Value = serde_json::from_str(&text).context("server sent invalid JSON")?;
        let reason = || message["reason"].as_str().unwrap_or("ended").to_owned();
        match message["type"].as_str() {
            Some("terminal_output") => {
                stdout.write_all(unseen_output(&message, &mut written).as_bytes())?;
                stdout.flush()?;
            }
            Some("output_dropped") => eprint!(
                "\r\n[fleetgate: {} bytes of output dropped]\r\n",
                message["bytes"]
            ),
            Some("terminal_closed") => return Ok(format!("session closed: {}", reason())),
            Some("watch_ended") => return Ok(reason()),
            _ => {}
        }
    }
    Ok("connection closed".to_owned())
}
