//! Security events (refused frames, malformed or failed registers) reported with the peer's
//! address and rate-limited per address: a hostile peer can neither flood the log and the
//! audit trail nor hide among them. Past `per_minute` events in a minute, an address's
//! further events are only counted, and the count is reported with its next logged event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::Recipient;

use crate::protocol::MachineId;
use crate::repo::audit::RecordAudit;

/// The counting window.
const WINDOW: Duration = Duration::from_secs(60);
/// Addresses kept before finished windows are swept.
const SWEEP_ABOVE: usize = 10_000;

/// One security event.
#[derive(Debug, Clone)]
pub struct SecurityEvent {
    /// Who: `agent`, `machine:<id>` or a user id.
    pub actor: String,
    /// What, e.g. `security.bad_frame`.
    pub action: &'static str,
    /// The machine concerned, if known.
    pub machine_id: Option<MachineId>,
    /// The peer's address, if known.
    pub peer: Option<String>,
    /// Structured detail (never secrets).
    pub detail: serde_json::Value,
}

/// One address's current window.
#[derive(Debug)]
struct Window {
    started: Instant,
    reported: u32,
    suppressed: u64,
}

/// Reports security events to the log and the audit trail, rate-limited per peer address.
/// Cheap to clone; every socket shares one.
#[derive(Clone)]
pub struct SecurityEvents {
    audit: Recipient<RecordAudit>,
    per_minute: u32,
    windows: Arc<Mutex<HashMap<String, Window>>>,
}

impl SecurityEvents {
    /// Reports at most `per_minute` events per address per minute to `audit` and the log.
    pub fn new(audit: Recipient<RecordAudit>, per_minute: u32) -> Self {
        Self {
            audit,
            per_minute,
            windows: Arc::default(),
        }
    }

    /// Reports `event` unless its address is over the limit; `true` if it was reported.
    pub fn report(&self, event: SecurityEvent) -> bool {
        let Some(suppressed) = self.admit(event.peer.as_deref().unwrap_or("-"), Instant::now())
        else {
            return false;
        };
        tracing::warn!(
            security = true,
            action = event.action,
            actor = %event.actor,
            peer = event.peer.as_deref().unwrap_or("-"),
            suppressed,
            detail = %event.detail,
            "security event"
        );
        let mut detail = event.detail;
        if suppressed > 0
            && let Some(object) = detail.as_object_mut()
        {
            object.insert("suppressedBefore".into(), suppressed.into());
        }
        self.audit.do_send(RecordAudit {
            actor: event.actor,
            action: event.action,
            machine_id: event.machine_id,
            detail,
            source_ip: event.peer,
        });
        true
    }

    /// Counts one event of `peer` at `now`: `Some(events suppressed since the last one
    /// reported)` if it may be reported, `None` if it is over the limit.
    fn admit(&self, peer: &str, now: Instant) -> Option<u64> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
        }
        let window = windows.entry(peer.to_owned()).or_insert(Window {
            started: now,
            reported: 0,
            suppressed: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            window.started = now;
            window.reported = 0;
        }
        if window.reported >= self.per_minute {
            window.suppressed += 1;
            return None;
        }
        window.reported += 1;
        Some(std::mem::take(&mut window.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::{Actor, Context, Handler};

    struct Sink;
    impl Actor for Sink {
        type Context = Context<Self>;
    }
    impl Handler<RecordAudit> for Sink {
        type Result = Result<(), sea_orm::DbErr>;
        fn handle(&mut self, _: RecordAudit, _: &mut Context<Self>) -> Self::Result {
            Ok(())
        }
    }

    #[actix::test]
    async fn each_address_gets_its_own_budget_and_suppressed_events_are_counted() {
        let events = SecurityEvents::new(Sink.start().recipient(), 2);
        let start = Instant::now();
        assert_eq!(events.admit("10.0.0.1", start), Some(0));
        assert_eq!(events.admit("10.0.0.1", start), Some(0));
        assert_eq!(events.admit("10.0.0.1", start), None);
        assert_eq!(events.admit("10.0.0.1", start), None);
        assert_eq!(events.admit("10.0.0.2", start), Some(0));
        assert_eq!(events.admit("10.0.0.1", start + WINDOW), Some(2));
    }
}
