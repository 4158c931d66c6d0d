//! The last output handed to a terminal's owner, kept by offset so that a client whose socket
//! dropped (and so may have lost what was in flight) can ask for everything after the last byte
//! it saw when it reattaches.

use std::collections::VecDeque;

use crate::protocol::escaped::EscapedText;

/// What a reattaching client gets from the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Replay {
    /// Bytes between the client's offset and the oldest byte still kept (lost for good).
    pub gap: u64,
    /// Offset of the first byte of `data`.
    pub offset: u64,
    /// The output after the client's offset that is still kept.
    pub data: EscapedText,
}

/// Delivered output, at most `limit` bytes, oldest dropped first.
#[derive(Debug)]
pub struct ReplayLog {
    limit: usize,
    chunks: VecDeque<(u64, EscapedText)>,
    bytes: usize,
    end: u64,
}

impl ReplayLog {
    /// A log keeping at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            chunks: VecDeque::new(),
            bytes: 0,
            end: 0,
        }
    }

    /// Records output handed to the owner, starting at `offset` (at or after the last end).
    pub fn record(&mut self, offset: u64, data: &EscapedText) {
        if data.is_empty() || self.limit == 0 {
            self.end = self.end.max(offset + data.len() as u64);
            return;
        }
        if offset != self.end {
            // Output between the two was dropped before delivery: it cannot be replayed.
            self.chunks.clear();
            self.bytes = 0;
        }
        self.chunks.push_back((offset, data.clone()));
        self.bytes += data.len();
        self.end = offset + data.len() as u64;
        while self.bytes > self.limit && self.chunks.len() > 1 {
            if let Some((_, old)) = self.chunks.pop_front() {
                self.bytes -= old.len();
            }
        }
    }

    /// Offset of the oldest byte kept.
    fn start(&self) -> u64 {
        self.chunks.front().map_or(self.end, |(offset, _)| *offset)
    }

    /// Offset just past the last byte recorded.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The output after `seen` (the offset just past the last byte a client received).
    pub fn since(&self, seen: u64) -> Replay {
        let seen = seen.min(self.end);
        let start = self.start();
        let from = seen.max(start);
        let mut data = EscapedText::default();
        for (offset, chunk) in &self.chunks {
            let chunk_end = offset + chunk.len() as u64;
            if chunk_end <= from {
                continue;
            }
            // An offset inside a character (never one the server sent) starts at the next one.
            let skip = usize::try_from(from.saturating_sub(*offset)).unwrap_or(usize::MAX);
            data.push(&chunk.tail_from(skip));
        }
        Replay {
            gap: start.saturating_sub(seen),
            offset: self.end - data.len() as u64,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_everything_after_the_clients_offset() {
        let mut log = ReplayLog::new(100);
        log.record(0, &"hello ".into());
        log.record(6, &"world".into());
        assert_eq!(
            log.since(6),
            Replay {
                gap: 0,
                offset: 6,
                data: "world".into()
            }
        );
        assert_eq!(log.since(3).data.to_text(), "lo world");
        assert!(log.since(11).data.is_empty());
        assert_eq!(
            log.since(99).offset,
            11,
            "a future offset means nothing to replay"
        );
    }

    #[test]
    fn what_fell_out_of_the_log_is_reported_as_a_gap() {
        let mut log = ReplayLog::new(8);
        log.record(0, &"aaaa".into());
        log.record(4, &"bbbb".into());
        log.record(8, &"cccc".into());
        let replay = log.since(2);
        assert_eq!(replay.gap, 2);
        assert_eq!(replay.offset, 4);
        assert_eq!(replay.data.to_text(), "bbbbcccc");
    }

    #[test]
    fn output_dropped_before_delivery_breaks_the_log() {
        let mut log = ReplayLog::new(100);
        log.record(0, &"aaaa".into());
        log.record(10, &"bbbb".into());
        let replay = log.since(4);
        assert_eq!(replay.gap, 6, "bytes 4..10 never reached anyone");
        assert_eq!(replay.data.to_text(), "bbbb");
    }

    #[test]
    fn an_offset_inside_a_character_starts_at_the_next_one() {
        let mut log = ReplayLog::new(100);
        log.record(0, &"é!".into());
        assert_eq!(log.since(1).data.to_text(), "!");
    }
}
