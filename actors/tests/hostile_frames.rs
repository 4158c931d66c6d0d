//! The hostile-input suite of the socket layer: random WebSocket byte streams (frames with
//! random opcodes, fin bits, masks and announced lengths up to 2^63, fragmented messages,
//! garbage), cut into random chunks, through the input guard and then the WebSocket codec.
//! The guard must never panic, must pass on a prefix of the bytes it got, and the codec behind
//! it must never see a frame or a fragmented message over the limit. `FLEETGATE_HOSTILE_CASES`
//! raises the number of cases (default 1,500); the count is printed.

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame, ProtocolError};
use actix_web::error::PayloadError;
use bytes::{Bytes, BytesMut};
use fleetgate_actors::inbound_guard::{FrameLimit, OversizeFlag, guard_input};
use futures_util::{FutureExt, StreamExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const LIMIT: usize = 4096;

fn cases() -> u32 {
    std::env::var("FLEETGATE_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

/// One client frame: header (masked) plus up to `sent` bytes of the payload it announces.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    let length = prop_oneof![
        4 => 0u64..200,
        2 => 0u64..(2 * LIMIT as u64),
        1 => Just(LIMIT as u64 + 1),
        1 => any::<u64>().prop_map(|l| l >> 1),
    ];
    (
        any::<bool>(),
        prop::sample::select(vec![0u8, 1, 2, 8, 9, 10, 3, 15]),
        length,
        0usize..300,
    )
        .prop_map(|(fin, opcode, length, extra)| {
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
            let payload = usize::try_from(length)
                .unwrap_or(usize::MAX)
                .min(2 * LIMIT + extra);
            out.resize(out.len() + payload, b'a');
            out
        })
}

/// A byte stream: frames and some garbage, and where to cut it into chunks.
fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    let piece = prop_oneof![
        8 => frame(),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ];
    (
        prop::collection::vec(piece, 1..12),
        prop::collection::vec(1usize..5000, 0..20),
    )
        .prop_map(|(pieces, cuts)| (pieces.concat(), cuts))
}

#[test]
fn the_codec_behind_the_guard_never_sees_an_oversized_message() {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let tried = std::sync::atomic::AtomicUsize::new(0);
    let outcome = runner.run(&stream(), |(bytes, cuts)| {
        tried.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut chunks = Vec::new();
        let mut rest = Bytes::from(bytes.clone());
        for cut in cuts {
            if rest.is_empty() {
                break;
            }
            chunks.push(Ok::<_, PayloadError>(rest.split_to(cut.min(rest.len()))));
        }
        if !rest.is_empty() {
            chunks.push(Ok(rest));
        }
        let flag = OversizeFlag::default();
        let mut guarded = guard_input(
            futures_util::stream::iter(chunks),
            FrameLimit::new(LIMIT),
            flag,
        );
        let mut passed = Vec::new();
        while let Some(Some(chunk)) = guarded.next().now_or_never() {
            passed.extend_from_slice(&chunk.expect("the guard passes no errors"));
        }
        prop_assert!(bytes.starts_with(&passed), "the guard passes a prefix");
        // The codec with no limit of its own sees nothing over the guard's.
        let mut codec = Codec::new().max_size(usize::MAX >> 1);
        let mut buffer = BytesMut::from(&passed[..]);
        let mut message = 0usize;
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(frame)) => {
                    let (length, continues) = match &frame {
                        Frame::Text(b) | Frame::Binary(b) => (b.len(), false),
                        Frame::Continuation(item) => {
                            use actix_http::ws::Item;
                            match item {
                                Item::FirstText(b) | Item::FirstBinary(b) => {
                                    message = 0;
                                    (b.len(), true)
                                }
                                Item::Continue(b) => (b.len(), true),
                                Item::Last(b) => (b.len(), false),
                            }
                        }
                        _ => (0, false),
                    };
                    message += length;
                    prop_assert!(message <= LIMIT, "{message} bytes reached the codec");
                    if !continues {
                        message = 0;
                    }
                }
                Ok(None) => break,
                Err(ProtocolError::Overflow) => prop_assert!(false, "overflow reached the codec"),
                Err(_) => break,
            }
        }
        Ok(())
    });
    if let Err(err) = outcome {
        panic!("{err}");
    }
    eprintln!(
        "hostile-input websocket byte streams: {} inputs, none panicked, none oversized past the guard",
        tried.into_inner()
    );
}
