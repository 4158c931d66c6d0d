//! Undelivered terminal output, bounded: past the limit the oldest output is dropped and counted.
//! Every byte of a session's output has an offset (its position in the session's whole output
//! stream), so a client can tell what it has seen and what was dropped.

use std::collections::VecDeque;

use crate::protocol::escaped::EscapedText;

/// Output handed out by [`OutputBuffer::take`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TakenOutput {
    /// Bytes dropped (for a slow reader) just before `offset`, since the last take.
    pub dropped: u64,
    /// Offset of the first byte of `data` in the session's output.
    pub offset: u64,
    /// The output.
    pub data: EscapedText,
}

/// Output waiting for a slow or absent reader.
#[derive(Debug)]
pub struct OutputBuffer {
    limit: usize,
    chunks: VecDeque<EscapedText>,
    bytes: usize,
    dropped: u64,
    /// Offset of the first byte waiting (or of the next byte to arrive when empty).
    start: u64,
}

impl OutputBuffer {
    /// A buffer holding at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            chunks: VecDeque::new(),
            bytes: 0,
            dropped: 0,
            start: 0,
        }
    }

    /// A buffer holding at most `limit` bytes, for a reader joining a stream whose next byte
    /// has offset `offset` (a watcher joining a live session).
    pub fn starting_at(limit: usize, offset: u64) -> Self {
        Self {
            start: offset,
            ..Self::new(limit)
        }
    }

    /// A copy of the output waiting, with its offset, leaving it in place (the drop count is
    /// not part of it).
    pub fn peek(&self) -> TakenOutput {
        let pieces: Vec<EscapedText> = self.chunks.iter().cloned().collect();
        TakenOutput {
            dropped: 0,
            offset: self.start,
            data: EscapedText::concat(&pieces),
        }
    }

    /// Appends output, dropping the oldest beyond the limit.
    pub fn push(&mut self, mut chunk: EscapedText) {
        if chunk.len() > self.limit {
            // Everything waiting and the chunk's head are older than what is kept.
            let tail = chunk.tail_from(chunk.len() - self.limit);
            let cut = chunk.len() - tail.len();
            let waiting = self.bytes;
            self.chunks.clear();
            self.bytes = 0;
            self.discard(waiting + cut);
            chunk = tail;
        }
        self.bytes += chunk.len();
        self.chunks.push_back(chunk);
        while self.bytes > self.limit {
            match self.chunks.pop_front() {
                Some(old) => {
                    self.bytes -= old.len();
                    self.discard(old.len());
                }
                None => break,
            }
        }
    }

    fn discard(&mut self, bytes: usize) {
        self.dropped += bytes as u64;
        self.start += bytes as u64;
    }

    /// Takes up to about `max_bytes` of output (whole chunks, at least one) with its offset
    /// and the count of bytes dropped since the last take.
    pub fn take(&mut self, max_bytes: usize) -> TakenOutput {
        let offset = self.start;
        let mut pieces = Vec::new();
        let mut size = 0;
        while let Some(front) = self.chunks.front() {
            if !pieces.is_empty() && size + front.len() > max_bytes {
                break;
            }
            if let Some(chunk) = self.chunks.pop_front() {
                self.bytes -= chunk.len();
                size += chunk.len();
                pieces.push(chunk);
            }
        }
        let data = EscapedText::concat(&pieces);
        self.start += data.len() as u64;
        TakenOutput {
            dropped: std::mem::take(&mut self.dropped),
            offset,
            data,
        }
    }

    /// Whether nothing waits (neither output nor a drop notice).
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.dropped == 0
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// Offset just past the last byte received (the session's output so far, in bytes).
    pub fn end_offset(&self) -> u64 {
        self.start + self.bytes as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(dropped: u64, offset: u64, data: &str) -> TakenOutput {
        TakenOutput {
            dropped,
            offset,
            data: data.into(),
        }
    }

    #[test]
    fn an_oversized_chunk_is_cut_between_characters() {
        let mut buffer = OutputBuffer::new(4);
        buffer.push("aéé".into());
        let taken = buffer.take(100);
        assert_eq!(taken.data.to_text(), "éé");
        assert_eq!((taken.dropped, taken.offset), (1, 1));
    }

    #[test]
    fn a_late_reader_counts_offsets_from_where_it_joined_and_peeking_takes_nothing() {
        let mut buffer = OutputBuffer::starting_at(10, 100);
        buffer.push("abc".into());
        assert_eq!(buffer.peek(), taken(0, 100, "abc"));
        assert_eq!(buffer.len(), 3, "peek leaves the output waiting");
        assert_eq!(buffer.take(100), taken(0, 100, "abc"));
        assert_eq!(buffer.end_offset(), 103);
    }

    #[test]
    fn keeps_the_newest_output_within_the_limit() {
        let mut buffer = OutputBuffer::new(10);
        buffer.push("aaaa".into());
        buffer.push("bbbb".into());
        buffer.push("cccc".into());
        assert!(buffer.len() <= 10);
        assert_eq!(buffer.take(100), taken(4, 4, "bbbbcccc"));
        assert!(buffer.is_empty());
        assert_eq!(buffer.end_offset(), 12);
    }

    #[test]
    fn an_oversized_chunk_keeps_its_tail() {
        let mut buffer = OutputBuffer::new(4);
        buffer.push("ab".into());
        buffer.push("123456".into());
        assert_eq!(buffer.take(100), taken(4, 4, "3456"));
        assert_eq!(buffer.end_offset(), 8);
    }

    #[test]
    fn take_respects_the_batch_size_and_counts_offsets() {
        let mut buffer = OutputBuffer::new(100);
        for chunk in ["ab", "cd", "ef"] {
            buffer.push(chunk.into());
        }
        assert_eq!(buffer.take(4), taken(0, 0, "abcd"));
        assert_eq!(buffer.take(4), taken(0, 4, "ef"));
        assert_eq!(buffer.take(4), taken(0, 6, ""));
    }
}
