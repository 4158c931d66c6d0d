//! `fleetgate shell MACHINE`: an interactive terminal over `/ws/web`, in raw mode, forwarding
//! window-size changes, restoring the terminal on every exit path.

use std::io::{Read, Write};

use anyhow::bail;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::signal::unix::{SignalKind, signal};
use tokio_tungstenite::tungstenite::Message;

use super::api::{connect_web, resolve_machine};
use super::credentials;

/// Puts the terminal in raw mode and restores it when dropped (also on errors and panics).
struct RawMode;

impl RawMode {
    fn enable() -> anyhow::Result<Self> {
        crossterm::terminal::enable_raw_mode()?;
        Ok(Self)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Err(err) = crossterm::terminal::disable_raw_mode() {
            eprintln!("fleetgate: could not restore the terminal: {err}");
        }
    }
}

fn size() -> (u16, u16) {
    crossterm::terminal::size().unwrap_or((80, 24))
}

/// Reads stdin on a thread (it blocks) and hands the bytes to the async side.
fn stdin_reader() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stdin.read(&mut buffer) {
            if n == 0 || tx.blocking_send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs the shell until the session closes; Ctrl-C goes to the remote shell.
pub async fn shell(machine: &str) -> anyhow::Result<()> {
    let credentials = credentials::load()?;
    let machine_id = resolve_machine(&credentials, machine).await?;
    let mut socket = connect_web(&credentials).await?;
    let (cols, rows) = size();
    let spawn =
        json!({ "type": "spawn_terminal", "machineId": machine_id, "cols": cols, "rows": rows });
    socket.send(Message::text(spawn.to_string())).await?;
    let session_id = loop {
        let Some(Ok(Message::Text(text))) = socket.next().await else {
            bail!("connection closed before the terminal opened");
        };
        let message: Value = serde_json::from_str(&text)?;
        match message["type"].as_str() {
            Some("terminal_opened") => {
                break message["sessionId"].as_str().unwrap_or_default().to_owned();
            }
            Some("error") => bail!("{}", message["message"].as_str().unwrap_or("refused")),
            _ => {}
        }
    };
    let raw = RawMode::enable()?;
    let outcome = pump(&mut socket, &session_id).await;
    drop(raw);
    match outcome {
        Ok(reason) => {
            eprintln!("\r\nfleetgate: session closed ({reason})");
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// Moves keystrokes, resizes and output until the session ends; returns the close reason.
async fn pump(socket: &mut super::api::WebSocket, session_id: &str) -> anyhow::Result<String> {
    let mut input = stdin_reader();
    let mut resized = signal(SignalKind::window_change())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut stdout = std::io::stdout();
    loop {
        tokio::select! {
            bytes = input.recv() => {
                let Some(bytes) = bytes else {
                    let close = json!({ "type": "close_terminal", "sessionId": session_id });
                    socket.send(Message::text(close.to_string())).await?;
                    continue;
                };
                let data = String::from_utf8_lossy(&bytes).into_owned();
                let message = json!({ "type": "terminal_input", "sessionId": session_id, "data": data });
                socket.send(Message::text(message.to_string())).await?;
            }
            _ = resized.recv() => {
                let (cols, rows) = size();
                let message = json!({ "type": "terminal_resize", "sessionId": session_id, "cols": cols, "rows": rows });
                socket.send(Message::text(message.to_string())).await?;
            }
            _ = terminate.recv() => {
                let close = json!({ "type": "close_terminal", "sessionId": session_id });
                socket.send(Message::text(close.to_string())).await?;
                return Ok("terminated".into());
            }
            frame = socket.next() => {
                let Some(frame) = frame else { return Ok("connection closed".into()) };
                let Message::Text(text) = frame? else { continue };
                let message: Value = serde_json::from_str(&text)?;
                match message["type"].as_str() {
                    Some("terminal_output") => {
                        stdout.write_all(message["data"].as_str().unwrap_or("").as_bytes())?;
                        stdout.flush()?;
                    }
                    Some("output_dropped") => eprint!("\r\n[fleetgate: {} bytes of output dropped]\r\n", message["bytes"]),
                    Some("terminal_closed") => return Ok(message["reason"].as_str().unwrap_or("closed").to_owned()),
                    Some("error") => eprint!("\r\n[fleetgate: {}]\r\n", message["message"].as_str().unwrap_or("error")),
                    _ => {}
                }
            }
        }
    }
}
