//! Text kept as a JSON string's escaped content, so that shell output can pass from an agent's
//! frame into an operator's frame without being decoded and escaped again. Its length is the
//! length of the decoded UTF-8 text, which is what output offsets and flow-control credit count.

use std::fmt;

use bytestring::ByteString;
use serde::{Serialize, Serializer};

/// A JSON string's content (between the quotes) exactly as escaped, with its decoded length.
/// It may share its bytes with the frame it was read from.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EscapedText {
    escaped: ByteString,
    decoded_len: usize,
}

/// The escaped text is not a valid JSON string body (a lone surrogate, a bad escape).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid escape in a JSON string")]
pub struct InvalidEscape;

impl EscapedText {
    /// Takes a JSON string literal (with its quotes) that a JSON parser has already accepted
    /// (such as a `serde_json::value::RawValue`), checking what such parsers let through
    /// (unpaired surrogates) and measuring its text. Raw quotes or control characters inside
    /// are not looked for: the parser refused those.
    pub fn from_literal(literal: &str) -> Result<Self, InvalidEscape> {
        let escaped = literal
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .ok_or(InvalidEscape)?;
        let decoded_len = scan_body(escaped).ok_or(InvalidEscape)?;
        Ok(Self {
            escaped: ByteString::from(escaped),
            decoded_len,
        })
    }

    /// The string body `body`, a part of `frame` already checked by [`scan_body`] (which gave
    /// `decoded_len`), sharing the frame's bytes instead of copying them.
    pub fn in_frame(frame: &ByteString, body: &str, decoded_len: usize) -> Self {
        Self {
            escaped: frame.slice_ref(body),
            decoded_len,
        }
    }

    /// Escapes `text`.
    pub fn from_text(text: &str) -> Self {
        let literal = serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\""));
        Self {
            escaped: ByteString::from(&literal[1..literal.len() - 1]),
            decoded_len: text.len(),
        }
    }

    /// `pieces` joined into one text (no copy for a single piece).
    pub fn concat(pieces: &[EscapedText]) -> Self {
        match pieces {
            [] => Self::default(),
            [one] => one.clone(),
            _ => {
                let size = pieces.iter().map(|piece| piece.escaped.len()).sum();
                let mut escaped = String::with_capacity(size);
                for piece in pieces {
                    escaped.push_str(&piece.escaped);
                }
                Self {
                    escaped: ByteString::from(escaped),
                    decoded_len: pieces.iter().map(EscapedText::len).sum(),
                }
            }
        }
    }

    /// Bytes of the decoded UTF-8 text.
    pub fn len(&self) -> usize {
        self.decoded_len
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.decoded_len == 0
    }

    /// The escaped content, ready to be put between quotes in a JSON document.
    pub fn as_escaped(&self) -> &str {
        &self.escaped
    }

    /// The decoded text.
    pub fn to_text(&self) -> String {
        let literal = format!("\"{}\"", self.escaped);
        serde_json::from_str(&literal).unwrap_or_default()
    }

    /// Appends `other` (copies both: [`EscapedText::concat`] joins many at once).
    pub fn push(&mut self, other: &EscapedText) {
        *self = Self::concat(&[self.clone(), other.clone()]);
    }

    /// The text from decoded byte `at` on (the start of the next character when `at` falls
    /// inside one). Decodes and escapes again: for the rare cut, not the stream.
    pub fn tail_from(&self, at: usize) -> Self {
        if at == 0 {
            return self.clone();
        }
        let text = self.to_text();
        let mut cut = at.min(text.len());
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        Self::from_text(&text[cut..])
    }
}

impl From<&str> for EscapedText {
    fn from(text: &str) -> Self {
        Self::from_text(text)
    }
}

impl From<String> for EscapedText {
    fn from(text: String) -> Self {
        Self::from_text(&text)
    }
}

impl PartialEq<str> for EscapedText {
    fn eq(&self, other: &str) -> bool {
        self.decoded_len == other.len() && self.to_text() == other
    }
}

impl fmt::Debug for EscapedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.escaped)
    }
}

impl Serialize for EscapedText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_text())
    }
}

/// Eight copies of a byte.
const fn splat(byte: u8) -> u64 {
    0x0101_0101_0101_0101 * byte as u64
}

/// The high bit of the first of the eight bytes (little-endian) that is a quote, a backslash
/// or a control character is set in the result (bits above it may be set too); zero if none is.
fn special_bytes(chunk: u64) -> u64 {
    let zero_in = |v: u64| v.wrapping_sub(splat(1)) & !v & splat(0x80);
    let control = chunk.wrapping_sub(splat(0x20)) & !chunk & splat(0x80);
    zero_in(chunk ^ splat(b'"')) | zero_in(chunk ^ splat(b'\\')) | control
}

/// Checks that `body` can stand between two quotes as a JSON string (no raw quote or control
/// character, valid escapes, surrogates in pairs) and measures its decoded UTF-8 length, in one
/// pass, eight bytes at a time where nothing needs a look. `None` when it cannot.
pub fn scan_body(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut len = 0;
    let mut at = 0;
    while at < bytes.len() {
        // Sixteen plain bytes at a time while there are no special ones.
        while let Some(pair) = bytes.get(at..at + 16) {
            let (low, high) = pair.split_at(8);
            let low = special_bytes(u64::from_le_bytes(low.try_into().ok()?));
            let high = special_bytes(u64::from_le_bytes(high.try_into().ok()?));
            if low | high == 0 {
                at += 16;
                len += 16;
                continue;
            }
            // Plain bytes up to the first special one.
            let plain = if low != 0 {
                low.trailing_zeros() / 8
            } else {
                8 + high.trailing_zeros() / 8
            } as usize;
            at += plain;
            len += plain;
            break;
        }
        let Some(&byte) = bytes.get(at) else {
            break;
        };
        match byte {
            b'\\' => {
                let (bytes_out, consumed) = escape_at(bytes, at).ok()?;
                len += bytes_out;
                at += consumed;
            }
            b'"' | 0..=0x1f => return None,
            _ => {
                len += 1;
                at += 1;
            }
        }
    }
    Some(len)
}

/// The escape starting at `bytes[at]` (a backslash): (decoded bytes, escaped bytes used).
fn escape_at(bytes: &[u8], at: usize) -> Result<(usize, usize), InvalidEscape> {
    match bytes.get(at + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok((1, 2)),
        Some(b'u') => {
            let unit = hex4(bytes, at + 2)?;
            match unit {
                0xD800..=0xDBFF => {
                    let low = (bytes.get(at + 6) == Some(&b'\\')
                        && bytes.get(at + 7) == Some(&b'u'))
                    .then(|| hex4(bytes, at + 8))
                    .transpose()?;
                    match low {
                        Some(0xDC00..=0xDFFF) => Ok((4, 12)),
                        _ => Err(InvalidEscape),
                    }
                }
                0xDC00..=0xDFFF => Err(InvalidEscape),
                0..=0x7F => Ok((1, 6)),
                0x80..=0x7FF => Ok((2, 6)),
                _ => Ok((3, 6)),
            }
        }
        _ => Err(InvalidEscape),
    }
}

fn hex4(bytes: &[u8], at: usize) -> Result<u32, InvalidEscape> {
    let digits = bytes.get(at..at + 4).ok_or(InvalidEscape)?;
    let text = std::str::from_utf8(digits).map_err(|_| InvalidEscape)?;
    u32::from_str_radix(text, 16).map_err(|_| InvalidEscape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(text: &str) -> String {
        serde_json::to_string(text).expect("json")
    }

    #[test]
    fn the_decoded_length_matches_the_text() {
        for text in [
            "",
            "plain",
            "line\r\n\ttab \"quoted\" back\\slash",
            "\u{1b}[31mred\u{1b}[0m",
            "é ü 漢字 🎉",
            "\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}",
        ] {
            let escaped = EscapedText::from_literal(&literal(text)).expect("valid");
            assert_eq!(escaped.len(), text.len(), "{text:?}");
            assert_eq!(escaped.to_text(), text);
        }
        let by_hand = EscapedText::from_literal(r#""\u00e9\ud83c\udf89\/""#).expect("valid");
        assert_eq!(by_hand.len(), "é🎉/".len());
    }

    #[test]
    fn unpaired_surrogates_and_bad_escapes_are_refused() {
        for bad in [
            r#""\ud800""#,
            r#""\udc00x""#,
            r#""\ud800\u0041""#,
            r#""\x""#,
            r#""\u12""#,
        ] {
            assert_eq!(EscapedText::from_literal(bad), Err(InvalidEscape), "{bad}");
        }
    }

    #[test]
    fn pieces_join_and_cut_by_decoded_bytes() {
        let mut text = EscapedText::from("héllo\n");
        text.push(&EscapedText::from("wörld"));
        assert_eq!(text.len(), "héllo\nwörld".len());
        assert!(text == *"héllo\nwörld");
        assert_eq!(text.tail_from(7).to_text(), "wörld");
        assert_eq!(
            text.tail_from(2).to_text(),
            "llo\nwörld",
            "inside é: from the next char"
        );
    }

    #[test]
    fn raw_quotes_control_characters_and_a_trailing_backslash_are_refused() {
        for bad in ["\"a\"b\"", "\"tab\there\"", r#""ends with \""#] {
            assert_eq!(EscapedText::from_literal(bad), Err(InvalidEscape), "{bad}");
        }
    }

    #[test]
    fn the_scan_agrees_with_a_json_parser_on_long_and_awkward_text() {
        let mut text = String::new();
        for i in 0..500 {
            text.push_str(&format!("line {i}\tcol\u{1b}[1mé🎉\r\n"));
            text.push_str(&"x".repeat(i % 17));
        }
        let literal = serde_json::to_string(&text).expect("json");
        let body = &literal[1..literal.len() - 1];
        assert_eq!(scan_body(body), Some(text.len()));
        // (A quote right after a backslash would be an escaped quote: skip those places.)
        let cuts =
            (1..40).filter(|cut| body.is_char_boundary(*cut) && body.as_bytes()[cut - 1] != b'\\');
        for cut in cuts {
            let quote_inside = format!("{}\"{}", &body[..cut], &body[cut..]);
            assert_eq!(scan_body(&quote_inside), None, "raw quote at {cut}");
        }
    }

    #[test]
    fn a_text_in_a_frame_shares_its_bytes() {
        let frame = ByteString::from(r#"{"output":"abc\n"}"#);
        let body = &frame[11..16];
        let text = EscapedText::in_frame(&frame, body, scan_body(body).expect("valid"));
        assert_eq!(text.to_text(), "abc\n");
        assert_eq!(text.as_escaped().as_ptr(), body.as_ptr());
    }
}
