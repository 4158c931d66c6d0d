//! The session's recording: its events are posted to the session's own `Recorder`, never
//! awaited, so recording never slows the terminal down.

use std::time::Instant;

use actix::Actor;
use chrono::Utc;

use super::TerminalSession;
use crate::recording::cast::CastHeader;
use crate::recording::{CastEvent, FinishRecording, RecordEvent, Recorder};

impl TerminalSession {
    /// Starts the recorder when the policy records this session: the machine's own setting,
    /// or else the server's.
    pub(super) fn start_recording(&mut self) {
        let Some(config) = self.config.recording.clone() else {
            return;
        };
        if !self.spec.recording.unwrap_or(config.by_default) {
            return;
        }
        let header = CastHeader {
            width: self.size.0,
            height: self.size.1,
            timestamp: Utc::now().timestamp(),
            session_id: self.spec.session_id.to_string(),
            machine_id: self.spec.agent.machine_id().to_string(),
            user_id: self.spec.user_id.to_string(),
        };
        let recorder = Recorder::new(config, header, Instant::now(), self.links.audit.clone());
        self.recorder = Some(recorder.start());
    }

    /// Records `event` now.
    pub(super) fn record(&self, event: CastEvent) {
        if let Some(recorder) = &self.recorder {
            recorder.do_send(RecordEvent {
                at: Instant::now(),
                event,
            });
        }
    }

    /// Records keystrokes, only when the policy records input.
    pub(super) fn record_input(&self, data: &str) {
        if self.config.recording.as_ref().is_some_and(|c| c.input) {
            self.record(CastEvent::Input(data.to_owned()));
        }
    }

    /// Ends the recording (compressed and signed by the recorder); whether there was one.
    pub(super) fn finish_recording(&mut self) -> bool {
        match self.recorder.take() {
            Some(recorder) => {
                recorder.do_send(FinishRecording);
                true
            }
            None => false,
        }
    }
}
