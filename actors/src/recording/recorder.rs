//! `Recorder`: writes one session's asciicast as its events arrive (posted by the terminal,
//! never awaited), flushes every second, and compresses and signs the file when the session
//! ends. The first write error stops the recording (audited as `recording.stopped`); the
//! terminal never notices.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message, Recipient};

use super::RecordingConfig;
use super::cast::{CastHeader, input_line, output_line, resize_line};
use super::stored::{finish, paths, write_line};
use crate::protocol::MachineId;
use crate::protocol::escaped::EscapedText;
use crate::repo::audit::RecordAudit;

/// How often buffered lines reach the file.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Something that happened in the session.
#[derive(Debug, Clone)]
pub enum CastEvent {
    /// Shell output.
    Output(EscapedText),
    /// A new size.
    Resize(u16, u16),
    /// Keystrokes (only with `recording.input`).
    Input(String),
}

/// Record `event`, which happened at `at`.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct RecordEvent {
    /// When.
    pub at: Instant,
    /// What.
    pub event: CastEvent,
}

/// The session ended: compress and sign the recording, then stop.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct FinishRecording;

/// One session's recording.
pub struct Recorder {
    config: RecordingConfig,
    plain: PathBuf,
    writer: Option<BufWriter<File>>,
    started: Instant,
    header: CastHeader,
    audit: Recipient<RecordAudit>,
}

impl Recorder {
    /// A recorder for the session `header` describes, started at `started`.
    pub fn new(
        config: RecordingConfig,
        header: CastHeader,
        started: Instant,
        audit: Recipient<RecordAudit>,
    ) -> Self {
        let (plain, _, _) = paths(&config.dir, &header.session_id);
        Self {
            config,
            plain,
            writer: None,
            started,
            header,
            audit,
        }
    }

    fn open(&mut self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.config.dir)?;
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&self.plain)?
        };
        let mut writer = BufWriter::new(file);
        write_line(&mut writer, &self.header.line())?;
        self.writer = Some(writer);
        Ok(())
    }

    /// Ends the recording after a write error, saying why, once.
    fn stop_recording(&mut self, error: &std::io::Error) {
        self.writer = None;
        tracing::error!(session_id = %self.header.session_id, %error, "recording stopped; the terminal goes on");
        self.audit.do_send(RecordAudit {
            actor: self.header.user_id.clone(),
            action: "recording.stopped",
            machine_id: MachineId::parse(&self.header.machine_id),
            detail: serde_json::json!({
                "sessionId": self.header.session_id, "error": error.to_string(),
            }),
            source_ip: None,
        });
    }

    fn write(&mut self, line: &str) {
        if let Some(writer) = self.writer.as_mut()
            && let Err(error) = write_line(writer, line)
        {
            self.stop_recording(&error);
        }
    }

    fn flush(&mut self) {
        if let Some(writer) = self.writer.as_mut()
            && let Err(error) = writer.flush()
        {
            self.stop_recording(&error);
        }
    }
}

impl Actor for Recorder {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Err(error) = self.open() {
            self.stop_recording(&error);
        }
        ctx.run_interval(FLUSH_EVERY, |recorder, _| recorder.flush());
    }
}

impl Handler<RecordEvent> for Recorder {
    type Result = ();

    fn handle(&mut self, record: RecordEvent, _: &mut Context<Self>) {
        let seconds = record
            .at
            .saturating_duration_since(self.started)
            .as_secs_f64();
        let line = match &record.event {
            CastEvent::Output(text) => output_line(seconds, text.as_escaped()),
            CastEvent::Resize(cols, rows) => resize_line(seconds, *cols, *rows),
            CastEvent::Input(data) => input_line(seconds, data),
        };
        self.write(&line);
    }
}

impl Handler<FinishRecording> for Recorder {
    type Result = ();

    fn handle(&mut self, _: FinishRecording, ctx: &mut Context<Self>) {
        self.flush();
        let Some(writer) = self.writer.take() else {
            return ctx.stop();
        };
        drop(writer);
        let (plain, key) = (self.plain.clone(), self.config.key.clone());
        let audit = self.audit.clone();
        let header = self.header.clone();
        actix::spawn(async move {
            let finished = on_blocking_pool(move || finish(&plain, &key)).await;
            if let Err(error) = finished {
                tracing::error!(session_id = %header.session_id, %error, "recording not sealed");
                audit.do_send(RecordAudit {
                    actor: header.user_id,
                    action: "recording.stopped",
                    machine_id: MachineId::parse(&header.machine_id),
                    detail: serde_json::json!({
                        "sessionId": header.session_id, "error": error.to_string(),
                    }),
                    source_ip: None,
                });
            }
        });
        ctx.stop();
    }
}

/// Runs file work on the blocking pool.
async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(std::io::Error::other)?
}
