//! Following WebSocket frames (RFC 6455 §5.2) through a byte stream that arrives in chunks, from
//! their headers alone: the input guard checks sizes with it, the drain meter counts text.

/// The parts of a frame header that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Last frame of its message.
    pub fin: bool,
    /// 0 continuation, 1 text, 2 binary, 8 and above control.
    pub opcode: u8,
    /// Payload length the header announces.
    pub length: u64,
}

impl FrameHeader {
    /// A text frame or a continuation (the payload of text messages).
    pub fn carries_text(&self) -> bool {
        matches!(self.opcode, 0 | 1)
    }
}

/// What the walker found in a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEvent {
    /// A header is complete; it started at `start` in this chunk (0 if in an earlier one).
    Header {
        /// The header.
        header: FrameHeader,
        /// Where it started in this chunk.
        start: usize,
    },
    /// `bytes` of the current frame's payload went by.
    Payload {
        /// The frame they belong to.
        header: FrameHeader,
        /// How many.
        bytes: u64,
    },
}

/// Where the stream stands between chunks: a partial header, or payload still to come.
#[derive(Debug, Default)]
pub struct FrameWalker {
    header: Vec<u8>,
    current: Option<FrameHeader>,
    remaining: u64,
}

impl FrameWalker {
    /// Walks `bytes`, telling `on` every header and payload run; stops at `on`'s first error.
    pub fn walk<E>(
        &mut self,
        bytes: &[u8],
        mut on: impl FnMut(FrameEvent) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut at = 0;
        let mut header_start = 0;
        while at < bytes.len() {
            if self.remaining > 0 {
                let left = bytes.len() - at;
                let take = left.min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                self.remaining -= take as u64;
                at += take;
                if let Some(header) = self.current {
                    on(FrameEvent::Payload {
                        header,
                        bytes: take as u64,
                    })?;
                }
                continue;
            }
            if self.header.is_empty() {
                header_start = at;
            }
            self.header.push(bytes[at]);
            at += 1;
            if let Some(header) = parse_header(&self.header) {
                self.header.clear();
                self.current = Some(header);
                self.remaining = header.length;
                on(FrameEvent::Header {
                    header,
                    start: header_start,
                })?;
            }
        }
        Ok(())
    }
}

/// The header once `header` holds all of it (masked or not).
fn parse_header(header: &[u8]) -> Option<FrameHeader> {
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
    Some(FrameHeader {
        fin: first & 0x80 != 0,
        opcode: first & 0x0f,
        length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_payload_are_found_across_any_cut() {
        // Unmasked text "hello" (5), masked binary of 300 bytes, close with no payload.
        let mut wire = vec![0x81, 5];
        wire.extend_from_slice(b"hello");
        wire.extend_from_slice(&[0x02, 0x80 | 126, 1, 44, 0, 0, 0, 0]);
        wire.extend(std::iter::repeat_n(b'x', 300));
        wire.extend_from_slice(&[0x88, 0]);
        for cut in 1..12 {
            let mut walker = FrameWalker::default();
            let mut headers = Vec::new();
            let mut payload = 0;
            for piece in wire.chunks(cut) {
                let walked: Result<(), ()> = walker.walk(piece, |event| {
                    match event {
                        FrameEvent::Header { header, .. } => headers.push(header),
                        FrameEvent::Payload { bytes, .. } => payload += bytes,
                    }
                    Ok(())
                });
                assert_eq!(walked, Ok(()));
            }
            let seen: Vec<(bool, u8, u64)> = headers
                .iter()
                .map(|h| (h.fin, h.opcode, h.length))
                .collect();
            assert_eq!(
                seen,
                vec![(true, 1, 5), (false, 2, 300), (true, 8, 0)],
                "cut {cut}"
            );
            assert_eq!(payload, 305);
        }
    }
}
