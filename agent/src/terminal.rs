//! Shells in real PTYs: output coalesced into frames of up to 16 KiB, flushed within 5 ms;
//! many sessions at once, each with its own reader thread. Under flow control a session sends
//! output only while it has credit from the server; without credit its output is not read,
//! so the shell blocks on a full PTY, as over SSH.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use fleetgate_protocol::agent::terminal_output_frame;
use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use tokio::sync::{Notify, mpsc};

use crate::connection::Outbound;

/// Largest `terminal_output` frame, bytes of output.
const FRAME_BYTES: usize = 16 * 1024;
/// Output is flushed at most this long after it was read.
const FLUSH_AFTER: Duration = Duration::from_millis(5);

/// Output bytes a session may still send (flow control); may dip below zero by one frame.
#[derive(Debug, Default)]
pub struct Credit {
    bytes: AtomicI64,
    granted: Notify,
}

impl Credit {
    /// A session starting with `window` bytes of credit.
    pub fn new(window: u64) -> Self {
        Self {
            bytes: AtomicI64::new(i64::try_from(window).unwrap_or(i64::MAX)),
            granted: Notify::new(),
        }
    }

    /// Adds credit from the server (saturating: no grant can wrap it around).
    pub fn grant(&self, bytes: u64) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.update(|credit| credit.saturating_add(bytes));
        self.granted.notify_one();
    }

    /// Spends credit on output just sent.
    pub fn spend(&self, bytes: usize) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.update(|credit| credit.saturating_sub(bytes));
    }

    fn update(&self, change: impl Fn(i64) -> i64) {
        let mut current = self.bytes.load(Ordering::Acquire);
        while let Err(actual) = self.bytes.compare_exchange_weak(
            current,
            change(current),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            current = actual;
        }
    }

    /// Waits until there is credit left.
    pub async fn available(&self) {
        while self.bytes.load(Ordering::Acquire) <= 0 {
            self.granted.notified().await;
        }
    }

    /// Lifts the limit for good: the session is over, and its output reader must run to the
    /// end (and so end its PTY reader thread) instead of waiting for credit that never comes.
    pub fn release(&self) {
        self.bytes.store(i64::MAX / 2, Ordering::Release);
        self.granted.notify_one();
    }
}

/// One open shell.
struct Shell {
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    credit: Option<Arc<Credit>>,
}

impl Drop for Shell {
    fn drop(&mut self) {
        if let Some(credit) = &self.credit {
            credit.release();
        }
    }
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
    /// Starts a shell for `session_id`; its output and exit go to `out`. With a `flow_window`
    /// (flow control) it sends that much output, then only as much as the server grants.
    pub fn spawn(
        &mut self,
        session_id: &str,
        flow_window: Option<u64>,
        out: mpsc::Sender<Outbound>,
    ) -> anyhow::Result<()> {
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
        let credit = flow_window.map(|window| Arc::new(Credit::new(window)));
        tokio::spawn(forward_output(
            session_id.to_owned(),
            bytes_rx,
            credit.clone(),
            out,
        ));
        self.shells.insert(
            session_id.to_owned(),
            Shell {
                master: pair.master,
                writer,
                child,
                credit,
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

    /// Adds output credit to a session under flow control.
    pub fn grant(&mut self, session_id: &str, bytes: u64) {
        if let Some(credit) = self.shells.get(session_id).and_then(|s| s.credit.as_ref()) {
            credit.grant(bytes);
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
/// Without credit it stops taking output from the reader thread, which then stops reading.
/// Output left over after a full frame goes out next without waiting for more: the shell may
/// have nothing more to say (a prompt at the end of a long output is exactly that case).
async fn forward_output(
    session_id: String,
    mut bytes: mpsc::Receiver<Vec<u8>>,
    credit: Option<Arc<Credit>>,
    out: mpsc::Sender<Outbound>,
) {
    let mut pending = PendingOutput::default();
    loop {
        if let Some(credit) = &credit {
            credit.available().await;
        }
        if !pending.has_sendable() && !pending.closed {
            pending.take(bytes.recv().await);
        }
        pending.gather(&mut bytes).await;
        let Some(text) = pending.next_frame() else {
            if pending.closed {
                break;
            }
            continue;
        };
        if let Some(credit) = &credit {
            credit.spend(text.len());
        }
        let frame = terminal_output_frame(&session_id, &text);
        if out.send(Outbound::Frame(frame)).await.is_err() {
            return;
        }
    }
    if out.send(Outbound::ShellEnded(session_id)).await.is_err() {
        tracing::debug!("connection gone before the shell end was reported");
    }
}

/// PTY output read but not yet sent, and whether the reader has finished.
#[derive(Default)]
struct PendingOutput {
    bytes: Vec<u8>,
    closed: bool,
}

impl PendingOutput {
    /// Adds what the reader sent, or notes that it has finished.
    fn take(&mut self, read: Option<Vec<u8>>) {
        match read {
            Some(read) => self.bytes.extend_from_slice(&read),
            None => self.closed = true,
        }
    }

    /// Whether a frame could go now: complete UTF-8 waits, or the reader is done.
    fn has_sendable(&self) -> bool {
        !self.bytes.is_empty() && (self.closed || complete_utf8(self.frame_window()) > 0)
    }

    /// Reads more for up to [`FLUSH_AFTER`] while there is less than a frame.
    async fn gather(&mut self, bytes: &mut mpsc::Receiver<Vec<u8>>) {
        let deadline = tokio::time::sleep(FLUSH_AFTER);
        tokio::pin!(deadline);
        while !self.closed && self.bytes.len() < FRAME_BYTES {
            tokio::select! {
                more = bytes.recv() => self.take(more),
                _ = &mut deadline => break,
            }
        }
    }

    /// The next frame's text: up to [`FRAME_BYTES`], never ending inside a UTF-8 sequence
    /// unless the reader is done (then the rest goes, made valid).
    fn next_frame(&mut self) -> Option<String> {
        let mut cut = complete_utf8(self.frame_window());
        if cut == 0 && self.closed {
            cut = self.frame_window().len();
        }
        if cut == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&self.bytes[..cut]).into_owned();
        self.bytes.drain(..cut);
        Some(text)
    }

    fn frame_window(&self) -> &[u8] {
        &self.bytes[..self.bytes.len().min(FRAME_BYTES)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn credit_holds_output_back_until_granted() {
        let credit = Arc::new(Credit::new(10));
        credit.available().await;
        credit.spend(16);
        let waiting = {
            let credit = credit.clone();
            tokio::spawn(async move { credit.available().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "no credit, no output");
        credit.grant(5);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "still at -1");
        credit.grant(1000);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("released")
            .expect("task");
    }

    #[tokio::test]
    async fn a_closed_session_stops_waiting_for_credit() {
        let credit = Arc::new(Credit::new(0));
        let waiting = {
            let credit = credit.clone();
            tokio::spawn(async move { credit.available().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        credit.release();
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("released")
            .expect("task");
        credit.grant(u64::MAX);
        credit.grant(u64::MAX);
        tokio::time::timeout(Duration::from_secs(1), credit.available())
            .await
            .expect("huge grants saturate instead of wrapping around");
    }

    #[tokio::test]
    async fn output_left_over_after_a_full_frame_goes_without_waiting_for_more() {
        let (bytes_tx, bytes_rx) = mpsc::channel(64);
        let (out_tx, mut out_rx) = mpsc::channel(64);
        tokio::spawn(forward_output(
            "s1".into(),
            bytes_rx,
            Some(Arc::new(Credit::new(1 << 20))),
            out_tx,
        ));
        // Uneven reads that overshoot a frame, the last one ending with a marker; the reader
        // stays open, as a shell at its prompt does.
        let mut sent = 0;
        for size in [3000, 5000, 7000, 4000] {
            let mut read = vec![b'Z'; size];
            if size == 4000 {
                read.extend_from_slice(b"DONE");
            }
            bytes_tx.send(read).await.expect("send");
            sent += size;
        }
        let mut received = String::new();
        while !received.ends_with("DONE") {
            let Outbound::Frame(frame) =
                tokio::time::timeout(Duration::from_secs(2), out_rx.recv())
                    .await
                    .expect("the rest arrives without more output")
                    .expect("open")
            else {
                panic!("the shell has not ended");
            };
            let frame: serde_json::Value = serde_json::from_str(&frame).expect("json");
            received.push_str(frame["output"].as_str().expect("output"));
        }
        assert_eq!(received.len(), sent + 4);
        drop(bytes_tx);
    }

    #[tokio::test]
    async fn an_incomplete_sequence_at_the_end_is_sent_once_the_shell_ends() {
        let (bytes_tx, bytes_rx) = mpsc::channel(64);
        let (out_tx, mut out_rx) = mpsc::channel(64);
        tokio::spawn(forward_output("s1".into(), bytes_rx, None, out_tx));
        bytes_tx.send(b"ok \xc3".to_vec()).await.expect("send");
        drop(bytes_tx);
        let mut frames = Vec::new();
        while let Some(out) = out_rx.recv().await {
            frames.push(out);
        }
        let data: String = frames
            .iter()
            .filter_map(|out| match out {
                Outbound::Frame(frame) => Some(
                    serde_json::from_str::<serde_json::Value>(frame).expect("json")["output"]
                        .as_str()
                        .expect("output")
                        .to_owned(),
                ),
                Outbound::ShellEnded(_) => None,
            })
            .collect();
        assert_eq!(data, "ok \u{fffd}");
        assert!(matches!(frames.last(), Some(Outbound::ShellEnded(id)) if id == "s1"));
    }

    #[test]
    fn utf8_sequences_are_not_split() {
        let text = "héllo".as_bytes();
        assert_eq!(complete_utf8(&text[..2]), 1);
        assert_eq!(complete_utf8(text), text.len());
    }
}
