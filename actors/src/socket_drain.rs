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

/// A meter and its tracker, sharing the count of text bytes written.
pub fn drain_meter() -> (WrittenMeter, DrainTracker) {
    let (written, watched) = watch::channel(0);
    (
        WrittenMeter {
            written,
            scanner: FrameScanner::default(),
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
            // An error means the body stream was dropped: the socket is gone, nothing to wait for.
            let _ = written.wait_for(|done| *done >= target).await;
        }
    }
}

/// The body stream's side: counts the text payload bytes in the frames it passes on.
#[derive(Debug)]
pub struct WrittenMeter {
    written: watch::Sender<u64>,
    scanner: FrameScanner,
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
            let text = self.meter.scanner.text_payload(chunk);
            if text > 0 {
                self.meter.written.send_modify(|written| *written += text);
            }
        }
        polled
    }
}

/// Walks server-to-client frame headers (RFC 6455 §5.2) across chunks, counting the payload
/// bytes of text and continuation frames (the actor's messages; pings, pongs and closes are
/// sent by the socket plumbing and not counted on either side).
#[derive(Debug, Default)]
struct FrameScanner {
    header: Vec<u8>,
    remaining: u64,
    counting: bool,
}

impl FrameScanner {
    fn text_payload(&mut self, mut bytes: &[u8]) -> u64 {
        let mut counted = 0;
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let take = bytes
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                if self.counting {
                    counted += take as u64;
                }
                self.remaining -= take as u64;
                bytes = &bytes[take..];
                continue;
            }
            self.header.push(bytes[0]);
            bytes = &bytes[1..];
            if let Some((opcode, length)) = parse_header(&self.header) {
                self.header.clear();
                self.remaining = length;
                self.counting = matches!(opcode, 0 | 1);
            }
        }
        counted
    }
}

/// `(opcode, payload length)` once `header` holds a whole frame header.
fn parse_header(header: &[u8]) -> Option<(u8, u64)> {
    let [first, second, rest @ ..] = header else {
        return None;
    };
    let extended = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    if rest.len() < extended + mask {
        return None;
    }
    let length = match extended {
        0 => u64::from(second & 0x7f),
        _ => rest[..extended]
            .iter()
            .fold(0u64, |n, byte| (n << 8) | u64::from(*byte)),
    };
    Some((first & 0x0f, length))
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
        let mut scanner = FrameScanner::default();
        assert_eq!(scanner.text_payload(&wire), 5 + 70_000 + 300);
        // The same bytes cut at every awkward place count the same.
        let mut scanner = FrameScanner::default();
        let total: u64 = wire
            .chunks(3)
            .map(|piece| scanner.text_payload(piece))
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
