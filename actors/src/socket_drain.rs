//! Knowing when a socket has written what its actor queued. A `WebsocketContext` queues text
//! without limit and cannot say how much is still waiting; so the actor counts the text it
//! queues ([`DrainTracker`]) and the response body stream counts the text payload the HTTP
//! layer has taken from it ([`WrittenMeter`]). A delivery has drained once the second has caught
//! up with the first: that is what lets a slow reader hold its terminals back instead of
//! piling their output up inside the server.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::sync::watch;

use crate::frame_walk::{FrameEvent, FrameWalker};

/// A meter and its tracker, sharing the count of text bytes written.
pub fn drain_meter() -> (WrittenMeter, DrainTracker) {
    let (written, watched) = watch::channel(0);
    (
        WrittenMeter {
            written,
            walker: FrameWalker::default(),
        },
        DrainTracker {
            queued: 0,
            written: watched,
        },
    )
}

/// The actor's side: what it queued, and a way to wait until that was written.
#[derive(Debug)]
pub struct DrainTracker {
    queued: u64,
    written: watch::Receiver<u64>,
}

impl DrainTracker {
    /// Counts a text message of `bytes` bytes the actor is about to queue.
    pub fn queued(&mut self, bytes: usize) {
        self.queued += bytes as u64;
    }

    /// Text queued but not yet taken by the HTTP layer, bytes.
    pub fn backlog(&self) -> u64 {
        self.queued.saturating_sub(*self.written.borrow())
    }

    /// Resolves once everything queued so far has been written, or the socket is gone.
    pub fn until_written(&self) -> impl Future<Output = ()> + 'static {
        let target = self.queued;
        let mut written = self.written.clone();
        async move {
            if written.wait_for(|done| *done >= target).await.is_err() {
                tracing::debug!("socket gone before its output was written");
            }
        }
    }
}

/// The body stream's side: counts the text payload bytes in the frames it passes on.
#[derive(Debug)]
pub struct WrittenMeter {
    written: watch::Sender<u64>,
    walker: FrameWalker,
}

impl WrittenMeter {
    /// Wraps the encoded WebSocket output stream.
    pub fn count<S, E>(self, stream: S) -> MeteredStream<S>
    where
        S: Stream<Item = Result<Bytes, E>>,
    {
        MeteredStream {
            inner: stream,
            meter: self,
        }
    }
}

/// The output stream of a socket, counted by its [`WrittenMeter`].
pub struct MeteredStream<S> {
    inner: S,
    meter: WrittenMeter,
}

impl<S, E> Stream for MeteredStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            let text = text_payload(&mut self.meter.walker, chunk);
            if text > 0 {
                self.meter.written.send_modify(|written| *written += text);
            }
        }
        polled
    }
}

/// Text payload bytes (text and continuation frames: the actor's messages) in `bytes`; pings,
/// pongs and closes are sent by the socket plumbing and not counted on either side.
fn text_payload(walker: &mut FrameWalker, bytes: &[u8]) -> u64 {
    let mut text = 0;
    let walked: Result<(), std::convert::Infallible> = walker.walk(bytes, |event| {
        if let FrameEvent::Payload { header, bytes } = event
            && header.carries_text()
        {
            text += bytes;
        }
        Ok(())
    });
    let Ok(()) = walked;
    text
}

#[cfg(test)]
mod tests {
    use actix_codec::Encoder;
    use actix_http::ws::{Codec, Message};
    use actix_web::web::BytesMut;

    use super::*;

    fn encode(messages: Vec<Message>) -> BytesMut {
        let mut codec = Codec::new();
        let mut out = BytesMut::new();
        for message in messages {
            codec.encode(message, &mut out).expect("encode");
        }
        out
    }

    #[test]
    fn counts_text_payload_and_skips_control_frames() {
        let big = "x".repeat(70_000);
        let wire = encode(vec![
            Message::Text("hello".into()),
            Message::Ping(Bytes::from_static(b"ping")),
            Message::Text(big.clone().into()),
            Message::Text("x".repeat(300).into()),
        ]);
        let mut walker = FrameWalker::default();
        assert_eq!(text_payload(&mut walker, &wire), 5 + 70_000 + 300);
        // The same bytes cut at every awkward place count the same.
        let mut walker = FrameWalker::default();
        let total: u64 = wire
            .chunks(3)
            .map(|piece| text_payload(&mut walker, piece))
            .sum();
        assert_eq!(total, 5 + 70_000 + 300);
    }

    #[actix::test]
    async fn a_tracker_waits_until_the_meter_has_seen_its_text() {
        let (meter, mut tracker) = drain_meter();
        tracker.queued(5);
        assert_eq!(tracker.backlog(), 5);
        let waiting = tracker.until_written();
        let wire = encode(vec![Message::Text("hello".into())]).freeze();
        let mut stream = meter.count(futures_util::stream::iter(vec![Ok::<_, ()>(wire)]));
        assert!(
            tokio::time::timeout(
                std::time::Duration::from_millis(20),
                tracker.until_written()
            )
            .await
            .is_err(),
            "nothing written yet"
        );
        futures_util::StreamExt::next(&mut stream).await;
        waiting.await;
        assert_eq!(tracker.backlog(), 0);
        drop(stream);
        tracker.queued(1);
        tracker.until_written().await;
    }
}
