//! A message on the cluster's NATS that does not open with the cluster key (forged, moved to
//! another subject, stale or replayed) is refused, and each refusal is a security event.

use crate::protocol::cluster::ClusterRefusal;
use crate::security_events::{SecurityEvent, SecurityEvents};

/// The peer address security events of refused cluster messages are counted under.
const NATS_PEER: &str = "nats";

/// Reports a refused cluster message on `subject` (to the log and the audit trail).
pub fn report_refusal(security: &SecurityEvents, subject: &str, refusal: ClusterRefusal) {
    security.report(SecurityEvent {
        actor: "cluster".into(),
        action: "security.cluster_message_refused",
        machine_id: None,
        peer: Some(NATS_PEER.into()),
        detail: serde_json::json!({ "subject": subject, "reason": refusal.to_string() }),
    });
}
