//! Shells in real PTYs: output coalesced into frames of up to 16 KiB, flushed within 5 ms;
//! many sessions at once, each with its own reader thread.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use serde_json::json;
use tokio::sync::mpsc;

use crate::connection::Outbound;

/// Largest `terminal_output` frame, bytes of output.
const FRAME_BYTES: usize = 16 * 1024;
/// Output is flushed at most this long after it was read.
const FLUSH_AFTER: Duration = Duration::from_millis(5);

/// One open shell.
struct Shell {
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

/// The open shells by sessionId.
#[derive(Default)]
pub struct Terminals {
    shells: HashMap<String, Shell>,
}

/// The user's login shell.
fn login_shell() -> String {
    std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into())
}

impl Terminals {
    /// Starts a shell for `session_id`; its output and exit go to `out`.
    pub fn spawn(&mut self, session_id: &str, out: mpsc::Sender<Outbound>) -> anyhow::Result<()> {
        if self.shells.contains_key(session_id) {
            return Ok(());
        }
        let pair = native_pty_system().openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })?;
        let mut command = CommandBuilder::new(login_shell());
        command.arg("-l");
        command.env("TERM", "xterm-256color");
        let child = pair.slave.spawn_command(command)?;
        drop(pair.slave);
        let reader = pair.master.try_clone_reader()?;
        let writer = pair.master.take_writer()?;
        let (bytes_tx, bytes_rx) = mpsc::channel::<Vec<u8>>(64);
        std::thread::spawn(move || read_pty(reader, bytes_tx));
        tokio::spawn(forward_output(session_id.to_owned(), bytes_rx, out));
        self.shells.insert(
            session_id.to_owned(),
            Shell {
                master: pair.master,
                writer,
                child,
            },
        );
        Ok(())
    }

    /// Types `data` into the session's shell.
    pub fn input(&mut self, session_id: &str, data: &str) {
        if let Some(shell) = self.shells.get_mut(session_id)
            && let Err(err) = shell
                .writer
                .write_all(data.as_bytes())
                .and_then(|_| shell.writer.flush())
        {
            tracing::warn!(session_id, error = %err, "writing to the shell failed");
        }
    }

    /// Resizes the session's PTY.
    pub fn resize(&mut self, session_id: &str, cols: u16, rows: u16) {
        if let Some(shell) = self.shells.get(session_id)
            && let Err(err) = shell.master.resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
        {
            tracing::warn!(session_id, error = %err, "resizing the PTY failed");
        }
    }

    /// Ends the session's shell.
    pub fn close(&mut self, session_id: &str) {
        if let Some(mut shell) = self.shells.remove(session_id)
            && let Err(err) = shell.child.kill()
        {
            tracing::debug!(session_id, error = %err, "shell already gone");
        }
    }

    /// Forgets a shell whose output ended (it exited).
    pub fn exited(&mut self, session_id: &str) -> Option<i32> {
        let mut shell = self.shells.remove(session_id)?;
        let status = shell.child.wait().ok()?;
        Some(i32::try_from(status.exit_code()).unwrap_or(-1))
    }
}

/// Blocking PTY reads on a thread of its own.
fn read_pty(mut reader: Box<dyn Read + Send>, bytes: mpsc::Sender<Vec<u8>>) {
    let mut buffer = [0u8; 4096];
    while let Ok(n) = reader.read(&mut buffer) {
        if n == 0 || bytes.blocking_send(buffer[..n].to_vec()).is_err() {
            break;
        }
    }
}

/// Longest prefix of `bytes` that does not end inside a UTF-8 sequence.
fn complete_utf8(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(err) if err.error_len().is_none() => err.valid_up_to(),
        Err(_) => bytes.len(),
    }
}

/// Coalesces PTY output into `terminal_output` frames, then reports that the shell ended.
async fn forward_output(
    session_id: String,
    mut bytes: mpsc::Receiver<Vec<u8>>,
    out: mpsc::Sender<Outbound>,
) {
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let Some(first) = bytes.recv().await else {
            break;
        };
        pending.extend_from_slice(&first);
        let deadline = tokio::time::sleep(FLUSH_AFTER);
        tokio::pin!(deadline);
        while pending.len() < FRAME_BYTES {
            tokio::select! {
                more = bytes.recv() => match more {
                    Some(more) => pending.extend_from_slice(&more),
                    None => break,
                },
                _ = &mut deadline => break,
            }
        }
        let cut = complete_utf8(&pending[..pending.len().min(FRAME_BYTES)]);
        let text = String::from_utf8_lossy(&pending[..cut]).into_owned();
        pending.drain(..cut);
        let frame = json!({ "type": "terminal_output", "sessionId": session_id, "output": text })
            .to_string();
        if out.send(Outbound::Frame(frame)).await.is_err() {
            return;
        }
    }
    if out.send(Outbound::ShellEnded(session_id)).await.is_err() {
        tracing::debug!("connection gone before the shell end was reported");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_sequences_are_not_split() {
        let text = "héllo".as_bytes();
        assert_eq!(complete_utf8(&text[..2]), 1);
        assert_eq!(complete_utf8(text), text.len());
    }
}
