//! Reassembles fragmented WebSocket text messages (RFC 6455 §5.4; docs/protocol.md section 1):
//! a first frame and continuation frames make one message, and the size limit applies to the
//! whole message, checked as each fragment arrives so an oversized message is never buffered.

use actix_http::ws::Item;

/// Why a message was refused while it was being assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssemblyError {
    /// The fragments so far add up to more than the limit.
    #[error("message exceeds the size limit")]
    TooLarge,
    /// A binary message (whole or fragmented).
    #[error("binary messages are refused; send JSON in text messages")]
    Binary,
    /// A continuation frame arrived with no message in progress.
    #[error("continuation frame without a message start")]
    ContinuationWithoutStart,
    /// A new message started before the previous one was complete.
    #[error("a new message started before the previous one ended")]
    StartBeforeEnd,
    /// The reassembled message is not UTF-8.
    #[error("message is not valid UTF-8")]
    InvalidUtf8,
}

/// The text message being assembled on one socket.
#[derive(Debug)]
pub struct MessageAssembler {
    limit: usize,
    partial: Option<Vec<u8>>,
}

impl MessageAssembler {
    /// An assembler accepting whole messages of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            partial: None,
        }
    }

    /// Whether a fragmented message is in progress.
    pub fn in_progress(&self) -> bool {
        self.partial.is_some()
    }

    /// Takes one fragment; returns the whole message once its last fragment arrived.
    /// After an error the assembler holds nothing (the caller closes the socket).
    pub fn push(&mut self, item: Item) -> Result<Option<String>, AssemblyError> {
        let outcome = self.accept(item);
        if outcome.is_err() {
            self.partial = None;
        }
        outcome
    }

    fn accept(&mut self, item: Item) -> Result<Option<String>, AssemblyError> {
        match item {
            Item::FirstBinary(_) => Err(AssemblyError::Binary),
            Item::FirstText(bytes) => {
                if self.partial.is_some() {
                    return Err(AssemblyError::StartBeforeEnd);
                }
                self.check_size(0, bytes.len())?;
                self.partial = Some(bytes.to_vec());
                Ok(None)
            }
            Item::Continue(bytes) => {
                self.append(&bytes)?;
                Ok(None)
            }
            Item::Last(bytes) => {
                self.append(&bytes)?;
                let whole = self.partial.take().unwrap_or_default();
                String::from_utf8(whole)
                    .map(Some)
                    .map_err(|_| AssemblyError::InvalidUtf8)
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), AssemblyError> {
        let held = match &self.partial {
            Some(partial) => partial.len(),
            None => return Err(AssemblyError::ContinuationWithoutStart),
        };
        self.check_size(held, bytes.len())?;
        if let Some(partial) = &mut self.partial {
            partial.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn check_size(&self, held: usize, adding: usize) -> Result<(), AssemblyError> {
        if held.saturating_add(adding) > self.limit {
            Err(AssemblyError::TooLarge)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn text(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn fragments_make_one_message() {
        let mut assembler = MessageAssembler::new(100);
        assert_eq!(assembler.push(Item::FirstText(text("{\"a\":"))), Ok(None));
        assert!(assembler.in_progress());
        assert_eq!(assembler.push(Item::Continue(text("\"xy"))), Ok(None));
        assert_eq!(
            assembler.push(Item::Last(text("z\"}"))),
            Ok(Some("{\"a\":\"xyz\"}".to_owned()))
        );
        assert!(!assembler.in_progress());
    }

    #[test]
    fn a_utf8_sequence_split_across_fragments_is_rejoined() {
        let bytes = "é".as_bytes();
        let mut assembler = MessageAssembler::new(100);
        assembler
            .push(Item::FirstText(Bytes::copy_from_slice(&bytes[..1])))
            .expect("first");
        let whole = assembler.push(Item::Last(Bytes::copy_from_slice(&bytes[1..])));
        assert_eq!(whole, Ok(Some("é".to_owned())));
    }

    #[test]
    fn the_limit_applies_to_the_running_total() {
        let mut assembler = MessageAssembler::new(10);
        assembler.push(Item::FirstText(text("123456"))).expect("6");
        assert_eq!(
            assembler.push(Item::Continue(text("12345"))),
            Err(AssemblyError::TooLarge)
        );
        assert!(!assembler.in_progress(), "nothing is kept after a refusal");
        let mut exact = MessageAssembler::new(10);
        exact.push(Item::FirstText(text("123456"))).expect("6");
        assert_eq!(
            exact.push(Item::Last(text("1234"))),
            Ok(Some("1234561234".to_owned()))
        );
    }

    #[test]
    fn out_of_order_fragments_and_binary_are_refused() {
        let mut assembler = MessageAssembler::new(100);
        assert_eq!(
            assembler.push(Item::Continue(text("x"))),
            Err(AssemblyError::ContinuationWithoutStart)
        );
        assert_eq!(
            assembler.push(Item::Last(text("x"))),
            Err(AssemblyError::ContinuationWithoutStart)
        );
        assembler.push(Item::FirstText(text("a"))).expect("start");
        assert_eq!(
            assembler.push(Item::FirstText(text("b"))),
            Err(AssemblyError::StartBeforeEnd)
        );
        assert_eq!(
            assembler.push(Item::FirstBinary(text("b"))),
            Err(AssemblyError::Binary)
        );
    }

    #[test]
    fn invalid_utf8_is_refused_once_whole() {
        let mut assembler = MessageAssembler::new(100);
        assembler
            .push(Item::FirstText(Bytes::from_static(b"\xff")))
            .expect("bytes are checked when whole");
        assert_eq!(
            assembler.push(Item::Last(Bytes::new())),
            Err(AssemblyError::InvalidUtf8)
        );
    }
}
