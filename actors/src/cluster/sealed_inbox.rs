//! A subscription whose messages must be sealed by the cluster: each is opened with the cluster
//! key before anything reads it; a forged, stale or replayed one is reported as a security event
//! and goes no further.

use chrono::Utc;
use futures_util::StreamExt;

use super::bridge::ClusterLink;
use super::refusals::report_refusal;
use super::subscription::Subscription;
use crate::protocol::cluster::{OpenedMessage, open};
use crate::protocol::nonce::NonceCache;
use crate::security_events::SecurityEvents;

/// Hands every sealed message arriving on `subject` to `handle` (opened, with its reply
/// subject), remembering `remembered` nonces against replays, until the subscription ends.
pub(super) async fn receive_sealed(
    link: &ClusterLink,
    subject: String,
    security: &SecurityEvents,
    remembered: usize,
    mut handle: impl FnMut(&str, OpenedMessage, Option<String>),
) {
    let mut messages = match Subscription::open(&link.client, subject.clone()).await {
        Ok(messages) => messages,
        Err(err) => {
            tracing::error!(%subject, error = %err, "cannot listen to the cluster");
            return;
        }
    };
    let mut nonces = NonceCache::new(remembered);
    while let Some(message) = messages.next().await {
        let subject = message.subject.as_str();
        match open(
            &link.key,
            subject,
            &message.payload,
            Utc::now(),
            &mut nonces,
        ) {
            Ok(opened) => handle(subject, opened, message.reply.map(|r| r.to_string())),
            Err(refusal) => report_refusal(security, subject, refusal),
        }
    }
}
