//! NATS streams that may be dropped anywhere. `async_nats::Subscriber` (also inside a key-value
//! watch) unsubscribes on drop by spawning a Tokio task, which panics when no runtime is left (an
//! actix system shutting down drops its tasks after its runtime); such a drop is skipped here:
//! the connection is closing anyway.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;

/// A NATS stream dropped only where a runtime can take its unsubscribe.
pub struct Guarded<S>(Option<S>);

/// A subscription to one subject (or wildcard).
pub type Subscription = Guarded<async_nats::Subscriber>;

impl<S> Guarded<S> {
    /// Guards `stream`.
    pub fn new(stream: S) -> Self {
        Self(Some(stream))
    }
}

impl Guarded<async_nats::Subscriber> {
    /// Subscribes `client` to `subject`.
    pub async fn open(
        client: &async_nats::Client,
        subject: String,
    ) -> Result<Self, async_nats::SubscribeError> {
        Ok(Self::new(client.subscribe(subject).await?))
    }

    /// Ends the subscription now.
    pub async fn close(mut self) {
        if let Some(subscriber) = self.0.as_mut() {
            let _already_gone = subscriber.unsubscribe().await;
        }
    }
}

impl<S: Stream + Unpin> Stream for Guarded<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.0.as_mut() {
            Some(stream) => Pin::new(stream).poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

impl<S> Drop for Guarded<S> {
    fn drop(&mut self) {
        let stream = self.0.take();
        if tokio::runtime::Handle::try_current().is_err() {
            std::mem::forget(stream);
        }
    }
}
