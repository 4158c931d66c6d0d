//! Undelivered terminal output, bounded: past the limit the oldest output is dropped and counted.

use std::collections::VecDeque;

/// Output waiting for a slow or absent reader.
#[derive(Debug)]
pub struct OutputBuffer {
    limit: usize,
    chunks: VecDeque<String>,
    bytes: usize,
    dropped: u64,
}

impl OutputBuffer {
    /// A buffer holding at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            chunks: VecDeque::new(),
            bytes: 0,
            dropped: 0,
        }
    }

    /// Appends output, dropping the oldest beyond the limit.
    pub fn push(&mut self, mut chunk: String) {
        if chunk.len() > self.limit {
            let mut cut = chunk.len() - self.limit;
            while !chunk.is_char_boundary(cut) {
                cut += 1;
            }
            self.dropped += cut as u64;
            chunk.drain(..cut);
        }
        self.bytes += chunk.len();
        self.chunks.push_back(chunk);
        while self.bytes > self.limit {
            match self.chunks.pop_front() {
                Some(old) => {
                    self.bytes -= old.len();
                    self.dropped += old.len() as u64;
                }
                None => break,
            }
        }
    }

    /// Takes up to about `max_bytes` of output (whole chunks, at least one) and the count of
    /// bytes dropped since the last take.
    pub fn take(&mut self, max_bytes: usize) -> (u64, String) {
        let mut out = String::new();
        while let Some(front) = self.chunks.front() {
            if !out.is_empty() && out.len() + front.len() > max_bytes {
                break;
            }
            if let Some(chunk) = self.chunks.pop_front() {
                self.bytes -= chunk.len();
                out.push_str(&chunk);
            }
        }
        (std::mem::take(&mut self.dropped), out)
    }

    /// Whether nothing waits (neither output nor a drop notice).
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.dropped == 0
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_output_within_the_limit() {
        let mut buffer = OutputBuffer::new(10);
        buffer.push("aaaa".into());
        buffer.push("bbbb".into());
        buffer.push("cccc".into());
        assert!(buffer.len() <= 10);
        let (dropped, data) = buffer.take(100);
        assert_eq!(dropped, 4);
        assert_eq!(data, "bbbbcccc");
        assert!(buffer.is_empty());
    }

    #[test]
    fn an_oversized_chunk_keeps_its_tail() {
        let mut buffer = OutputBuffer::new(4);
        buffer.push("123456".into());
        assert_eq!(buffer.take(100), (2, "3456".into()));
    }

    #[test]
    fn take_respects_the_batch_size() {
        let mut buffer = OutputBuffer::new(100);
        for chunk in ["ab", "cd", "ef"] {
            buffer.push(chunk.into());
        }
        assert_eq!(buffer.take(4), (0, "abcd".into()));
        assert_eq!(buffer.take(4), (0, "ef".into()));
    }
}
