//! A NATS subscription that may be dropped anywhere. `async_nats::Subscriber` unsubscribes on
//! drop by spawning a Tokio task, which panics when no runtime is left (an actix system
//! shutting down drops its tasks after its runtime); such a drop is skipped here: the
//! connection is closing anyway.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;

/// A subscription to one subject (or wildcard).
pub struct Subscription(Option<async_nats::Subscriber>);

impl Subscription {
    /// Subscribes `client` to `subject`.
    pub async fn open(
        client: &async_nats::Client,
        subject: String,
    ) -> Result<Self, async_nats::SubscribeError> {
        Ok(Self(Some(client.subscribe(subject).await?)))
    }

    /// Ends the subscription now.
    pub async fn close(mut self) {
        if let Some(subscriber) = self.0.as_mut() {
            let _already_gone = subscriber.unsubscribe().await;
        }
    }
}

impl Stream for Subscription {
    type Item = async_nats::Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.0.as_mut() {
            Some(subscriber) => Pin::new(subscriber).poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let subscriber = self.0.take();
        if tokio::runtime::Handle::try_current().is_err() {
            std::mem::forget(subscriber);
        }
    }
}
