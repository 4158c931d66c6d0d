//! What stands between a socket's bytes and the WebSocket parser. actix-http's parser reads a
//! frame's whole payload before it compares the frame's length with its limit, so a peer could
//! make the server buffer any amount before being refused. The guard reads each frame header
//! (RFC 6455 §5.2) as the bytes arrive and, once a frame — or the running total of a fragmented
//! message — would exceed the limit, passes on only the frames before it and ends the stream;
//! the socket actor then closes with 1009. It also ends the stream at the first I/O error
//! instead of passing the error on, so that every complete frame already read from a connection
//! that broke is still handled.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;

use crate::frame_walk::{FrameEvent, FrameWalker};

/// Longest control frame payload (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// Whether a guard refused a frame for its size; shared by the guard and its socket actor.
#[derive(Debug, Clone, Default)]
pub struct OversizeFlag(Arc<AtomicBool>);

impl OversizeFlag {
    /// Whether the guard stopped a frame that was too large.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The largest message a guard lets through, shared by the guard and its socket actor, which
/// may change it (an agent socket starts small and is raised once the agent registered).
#[derive(Debug, Clone)]
pub struct FrameLimit(Arc<AtomicU64>);

impl FrameLimit {
    /// A limit of `bytes` per message.
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(AtomicU64::new(bytes as u64)))
    }

    /// The limit now, bytes.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Sets the limit to `bytes` for every frame header read from now on.
    pub fn set(&self, bytes: usize) {
        self.0.store(bytes as u64, Ordering::Release);
    }
}

/// Guards `stream` with `limit` per message; `flag` is set when it refuses one.
pub fn guard_input<S>(stream: S, limit: FrameLimit, flag: OversizeFlag) -> GuardedInput<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    GuardedInput {
        inner: stream,
        headers: HeaderScanner::new(limit),
        flag,
        ended: false,
    }
}

/// An incoming byte stream that never carries an oversized frame nor an I/O error.
pub struct GuardedInput<S> {
    inner: S,
    headers: HeaderScanner,
    flag: OversizeFlag,
    ended: bool,
}

impl<S> Stream for GuardedInput<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match self.headers.scan(&chunk) {
                Ok(()) => Poll::Ready(Some(Ok(chunk))),
                Err(Oversized { at, announced }) => {
                    // The socket actor reports it (rate-limited, with the peer address).
                    tracing::debug!(
                        announced,
                        "websocket frame larger than the limit refused from its header"
                    );
                    self.flag.set();
                    self.ended = true;
                    if at > 0 {
                        Poll::Ready(Some(Ok(chunk.slice(..at))))
                    } else {
                        Poll::Ready(None)
                    }
                }
            },
            Poll::Ready(Some(Err(err))) => {
                // v1 agents drop the connection without a close frame: routine, not an attack.
                tracing::info!(error = %err, "websocket connection lost");
                self.ended = true;
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

/// A frame that would take its message past the limit: where its header starts in the chunk,
/// and the size it announced (with the fragments before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Oversized {
    at: usize,
    announced: u64,
}

/// Follows client-to-server frames across chunks, adding up fragmented messages.
#[derive(Debug)]
struct HeaderScanner {
    limit: FrameLimit,
    walker: FrameWalker,
    message_total: u64,
}

impl HeaderScanner {
    fn new(limit: FrameLimit) -> Self {
        Self {
            limit,
            walker: FrameWalker::default(),
            message_total: 0,
        }
    }

    fn scan(&mut self, bytes: &[u8]) -> Result<(), Oversized> {
        let (limit, message_total) = (self.limit.get(), &mut self.message_total);
        self.walker.walk(bytes, |event| {
            let FrameEvent::Header { header, start } = event else {
                return Ok(());
            };
            let announced = match header.opcode {
                0 => message_total.saturating_add(header.length),
                1 | 2 => header.length,
                _ if header.length > MAX_CONTROL_PAYLOAD => {
                    return Err(Oversized {
                        at: start,
                        announced: header.length,
                    });
                }
                _ => return Ok(()),
            };
            if announced > limit {
                return Err(Oversized {
                    at: start,
                    announced,
                });
            }
            *message_total = if header.fin { 0 } else { announced };
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame header (the mask key is zero; the payload is not included).
    fn header(fin: bool, opcode: u8, length: u64) -> Vec<u8> {
        let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match length {
            0..=125 => out.push(0x80 | length as u8),
            126..=65535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(length as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&length.to_be_bytes());
            }
        }
        out.extend_from_slice(&[0, 0, 0, 0]);
        out
    }

    fn frame(fin: bool, opcode: u8, payload: usize) -> Vec<u8> {
        let mut out = header(fin, opcode, payload as u64);
        out.resize(out.len() + payload, b'x');
        out
    }

    #[test]
    fn frames_within_the_limit_pass_in_any_cut() {
        let mut wire = frame(true, 1, 100);
        wire.extend(frame(false, 1, 60));
        wire.extend(frame(true, 9, 4));
        wire.extend(frame(true, 0, 40));
        wire.extend(frame(true, 1, 100));
        for cut in 1..20 {
            let mut scanner = HeaderScanner::new(FrameLimit::new(100));
            for piece in wire.chunks(cut) {
                assert_eq!(scanner.scan(piece), Ok(()), "cut {cut}");
            }
        }
    }

    #[test]
    fn a_large_announced_frame_is_refused_from_its_header() {
        let mut wire = frame(true, 1, 10);
        let before = wire.len();
        wire.extend(header(true, 1, 100 << 20));
        let mut scanner = HeaderScanner::new(FrameLimit::new(1 << 20));
        assert_eq!(
            scanner.scan(&wire),
            Err(Oversized {
                at: before,
                announced: 100 << 20
            })
        );
    }

    #[test]
    fn the_running_total_of_fragments_counts() {
        let mut wire = frame(false, 1, 60);
        wire.extend(frame(false, 0, 30));
        let before = wire.len();
        wire.extend(header(true, 0, 11));
        let mut scanner = HeaderScanner::new(FrameLimit::new(100));
        assert_eq!(
            scanner.scan(&wire),
            Err(Oversized {
                at: before,
                announced: 101
            })
        );
    }

    #[test]
    fn oversized_control_frames_are_refused() {
        let mut scanner = HeaderScanner::new(FrameLimit::new(1 << 20));
        assert!(scanner.scan(&header(true, 9, 126)).is_err());
    }

    #[actix::test]
    async fn the_guard_passes_earlier_frames_then_ends_and_flags() {
        let mut wire = frame(true, 1, 10);
        let first = wire.len();
        wire.extend(header(true, 1, 1 << 30));
        let flag = OversizeFlag::default();
        let input = futures_util::stream::iter(vec![Ok(Bytes::from(wire))]);
        let mut guarded = guard_input(input, FrameLimit::new(1 << 20), flag.clone());
        let passed = futures_util::StreamExt::next(&mut guarded).await;
        assert_eq!(
            passed.map(|chunk| chunk.map(|b| b.len()).ok()),
            Some(Some(first))
        );
        assert!(futures_util::StreamExt::next(&mut guarded).await.is_none());
        assert!(flag.is_set());
    }

    #[test]
    fn a_raised_limit_applies_to_the_next_header() {
        let limit = FrameLimit::new(100);
        let mut scanner = HeaderScanner::new(limit.clone());
        assert!(scanner.scan(&frame(true, 1, 100)).is_ok());
        assert!(scanner.scan(&header(true, 1, 1000)).is_err());
        let mut scanner = HeaderScanner::new(limit.clone());
        limit.set(1000);
        assert!(scanner.scan(&frame(true, 1, 1000)).is_ok());
    }

    #[actix::test]
    async fn an_io_error_ends_the_stream_quietly() {
        let input = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(PayloadError::Incomplete(None)),
            Ok(Bytes::from_static(b"never")),
        ]);
        let flag = OversizeFlag::default();
        let mut guarded = guard_input(input, FrameLimit::new(100), flag.clone());
        assert!(futures_util::StreamExt::next(&mut guarded).await.is_some());
        assert!(futures_util::StreamExt::next(&mut guarded).await.is_none());
        assert!(!flag.is_set());
    }
}
