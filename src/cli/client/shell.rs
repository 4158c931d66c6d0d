//! `fleetgate shell MACHINE`: an interactive terminal over `/ws/web`, in raw mode, forwarding
//! window-size changes, restoring the terminal on every exit path. When the connection drops
//! it reattaches from the last output offset it wrote, so nothing is lost or shown twice;
//! `fleetgate shell --attach SESSION_ID` does the same from a new process.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_tungstenite::tungstenite::Message;

use super::api::{WebSocket, connect_web, resolve_machine};
use super::credentials::{self, Credentials};
use super::saved_sessions::{self, SavedSession};

/// Waits between reattach attempts (within the server's 60 s grace period).
const REATTACH_DELAYS: [u64; 5] = [1, 2, 4, 8, 16];

/// Puts the terminal in raw mode and restores it when dropped (also on errors and panics).
struct RawMode;

impl RawMode {
    /// Raw mode when stdin is a terminal; nothing to do for piped input.
    fn enable_if_terminal() -> anyhow::Result<Option<Self>> {
        if !std::io::stdin().is_terminal() {
            return Ok(None);
        }
        crossterm::terminal::enable_raw_mode()?;
        Ok(Some(Self))
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

/// Keystrokes, window-size changes and SIGTERM of this process, kept across reattaches.
struct LocalInput {
    keys: tokio::sync::mpsc::Receiver<Vec<u8>>,
    keys_done: bool,
    resized: Signal,
    terminate: Signal,
}

impl LocalInput {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            keys: stdin_reader(),
            keys_done: false,
            resized: signal(SignalKind::window_change())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }
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

/// How the session ended on this connection.
enum Ended {
    /// The session is over (`terminal_closed`, or this process was told to stop).
    Closed(String),
    /// The connection dropped; the session may still be reattached.
    Lost,
}

/// Opens a new shell on `machine`, or reattaches to the saved session `attach`; runs it until
/// the session closes. Ctrl-C goes to the remote shell.
pub async fn shell(machine: Option<&str>, attach: Option<&str>) -> anyhow::Result<()> {
    let credentials = credentials::load()?;
    let (mut socket, mut session) = match (machine, attach) {
        (_, Some(session_id)) => {
            let mut saved = saved_sessions::load(session_id)?;
            let socket = reattach(&credentials, &mut saved).await?;
            (socket, saved)
        }
        (Some(machine), None) => open(&credentials, machine).await?,
        (None, None) => bail!("name a machine, or give --attach SESSION_ID"),
    };
    let raw = RawMode::enable_if_terminal()?;
    let mut local = LocalInput::new()?;
    let outcome = loop {
        match pump(&mut socket, &mut session, &mut local).await {
            Ok(Ended::Closed(reason)) => {
                saved_sessions::forget(&session.session_id);
                break Ok(reason);
            }
            Ok(Ended::Lost) => {
                saved_sessions::save(&session)?;
                eprint!("\r\n[fleetgate: connection lost; reattaching]\r\n");
                match reattach_with_retries(&credentials, &mut session).await {
                    Ok(again) => socket = again,
                    Err(err) => break Err(err),
                }
            }
            Err(err) => break Err(err),
        }
    };
    drop(raw);
    match outcome {
        Ok(reason) => {
            eprintln!("\r\nfleetgate: session closed ({reason})");
            Ok(())
        }
        Err(err) => Err(err.context(format!(
            "the session may still be reattached with `fleetgate shell --attach {}`",
            session.session_id
        ))),
    }
}

/// Opens a terminal on `machine`.
async fn open(
    credentials: &Credentials,
    machine: &str,
) -> anyhow::Result<(WebSocket, SavedSession)> {
    let machine_id = resolve_machine(credentials, machine).await?;
    let mut socket = connect_web(credentials).await?;
    let (cols, rows) = size();
    let spawn =
        json!({ "type": "spawn_terminal", "machineId": machine_id, "cols": cols, "rows": rows });
    socket.send(Message::text(spawn.to_string())).await?;
    let opened = until_opened(&mut socket).await?;
    let session = SavedSession {
        session_id: opened["sessionId"].as_str().unwrap_or_default().to_owned(),
        session_token: opened["sessionToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        offset: 0,
    };
    saved_sessions::save(&session)?;
    Ok((socket, session))
}

/// Re-binds a saved session to a new connection, asking for the output after its offset.
async fn reattach(
    credentials: &Credentials,
    session: &mut SavedSession,
) -> anyhow::Result<WebSocket> {
    let mut socket = connect_web(credentials).await?;
    let attach = json!({ "type": "attach_terminal", "sessionToken": session.session_token, "offset": session.offset });
    socket.send(Message::text(attach.to_string())).await?;
    let opened = until_opened(&mut socket).await?;
    if let Some(token) = opened["sessionToken"].as_str() {
        session.session_token = token.to_owned();
    }
    Ok(socket)
}

/// Tries to reattach a few times, waiting longer each time.
async fn reattach_with_retries(
    credentials: &Credentials,
    session: &mut SavedSession,
) -> anyhow::Result<WebSocket> {
    let mut last_error = None;
    for delay in REATTACH_DELAYS {
        tokio::time::sleep(Duration::from_secs(delay)).await;
        match reattach(credentials, session).await {
            Ok(socket) => {
                eprint!("\r\n[fleetgate: reattached]\r\n");
                return Ok(socket);
            }
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("could not reattach")))
}

/// Reads until `terminal_opened`; an `error` first is the refusal.
async fn until_opened(socket: &mut WebSocket) -> anyhow::Result<Value> {
    loop {
        let Some(Ok(Message::Text(text))) = socket.next().await else {
            bail!("connection closed before the terminal opened");
        };
        let message: Value = serde_json::from_str(&text)?;
        match message["type"].as_str() {
            Some("terminal_opened") => return Ok(message),
            Some("error") => bail!("{}", message["message"].as_str().unwrap_or("refused")),
            _ => {}
        }
    }
}

/// The part of a `terminal_output` not written yet, given the offset written so far; moves
/// the offset. Output without an offset (an older server) is all new.
pub fn unseen_output<'a>(message: &'a Value, written: &mut u64) -> &'a str {
    let data = message["data"].as_str().unwrap_or("");
    let Some(offset) = message["offset"].as_u64() else {
        *written += data.len() as u64;
        return data;
    };
    let end = offset + data.len() as u64;
    if end <= *written {
        return "";
    }
    let mut skip = usize::try_from(written.saturating_sub(offset)).unwrap_or(usize::MAX);
    while skip < data.len() && !data.is_char_boundary(skip) {
        skip += 1;
    }
    *written = end;
    &data[skip.min(data.len())..]
}

/// Moves keystrokes, resizes and output until the session ends or the connection drops.
async fn pump(
    socket: &mut WebSocket,
    session: &mut SavedSession,
    local: &mut LocalInput,
) -> anyhow::Result<Ended> {
    let session_id = session.session_id.clone();
    let close = json!({ "type": "close_terminal", "sessionId": session_id }).to_string();
    let mut stdout = std::io::stdout();
    loop {
        let outgoing = tokio::select! {
            bytes = local.keys.recv(), if !local.keys_done => match bytes {
                Some(bytes) => {
                    let data = String::from_utf8_lossy(&bytes).into_owned();
                    json!({ "type": "terminal_input", "sessionId": session_id, "data": data }).to_string()
                }
                None => {
                    local.keys_done = true;
                    close.clone()
                }
            },
            _ = local.resized.recv() => {
                let (cols, rows) = size();
                json!({ "type": "terminal_resize", "sessionId": session_id, "cols": cols, "rows": rows }).to_string()
            }
            _ = local.terminate.recv() => {
                if let Err(err) = socket.send(Message::text(close.clone())).await {
                    eprintln!("fleetgate: could not close the session: {err}");
                }
                return Ok(Ended::Closed("terminated".into()));
            }
            frame = socket.next() => {
                let Some(Ok(frame)) = frame else { return Ok(Ended::Lost) };
                let Message::Text(text) = frame else { continue };
                let message: Value = serde_json::from_str(&text).context("server sent invalid JSON")?;
                match message["type"].as_str() {
                    Some("terminal_output") => {
                        stdout.write_all(unseen_output(&message, &mut session.offset).as_bytes())?;
                        stdout.flush()?;
                    }
                    Some("terminal_opened") => {
                        if let Some(token) = message["sessionToken"].as_str() {
                            session.session_token = token.to_owned();
                            saved_sessions::save(session)?;
                        }
                    }
                    Some("output_dropped") => eprint!("\r\n[fleetgate: {} bytes of output dropped]\r\n", message["bytes"]),
                    Some("terminal_closed") => return Ok(Ended::Closed(message["reason"].as_str().unwrap_or("closed").to_owned())),
                    Some("error") => eprint!("\r\n[fleetgate: {}]\r\n", message["message"].as_str().unwrap_or("error")),
                    _ => {}
                }
                continue;
            }
        };
        if socket.send(Message::text(outgoing)).await.is_err() {
            return Ok(Ended::Lost);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_already_written_is_not_written_again() {
        let mut written = 0;
        let first = json!({"data": "hello ", "offset": 0});
        assert_eq!(unseen_output(&first, &mut written), "hello ");
        assert_eq!(written, 6);
        let replayed = json!({"data": "lo world", "offset": 3});
        assert_eq!(unseen_output(&replayed, &mut written), "world");
        assert_eq!(written, 11);
        assert_eq!(unseen_output(&first, &mut written), "", "a duplicate");
        let legacy = json!({"data": "abc"});
        assert_eq!(unseen_output(&legacy, &mut written), "abc");
        assert_eq!(written, 14);
    }
}
