//! Payloads of signed envelopes, serialized compactly with keys in docs/protocol.md's order.

use serde::Serialize;

#[derive(Serialize)]
struct Input<'a> {
    data: &'a str,
}

#[derive(Serialize)]
struct Resize {
    cols: u16,
    rows: u16,
}

#[derive(Serialize)]
struct Execute<'a> {
    #[serde(rename = "commandId")]
    command_id: &'a str,
    command: &'a str,
}

#[derive(Serialize)]
struct Credit {
    bytes: u64,
}

fn compact<T: Serialize>(value: &T) -> String {
    // Structs of strings and integers always serialize.
    serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"))
}

/// `{"data":"<keystrokes>"}` for `terminal_stdin`.
pub fn input_payload(data: &str) -> String {
    compact(&Input { data })
}

/// `{"cols":120,"rows":40}` for `terminal_resize`.
pub fn resize_payload(cols: u16, rows: u16) -> String {
    compact(&Resize { cols, rows })
}

/// `{"commandId":"<id>","command":"uptime"}` for `execute_command`.
pub fn execute_payload(command_id: &str, command: &str) -> String {
    compact(&Execute {
        command_id,
        command,
    })
}

/// `{"bytes":65536}` for `terminal_credit`.
pub fn credit_payload(bytes: u64) -> String {
    compact(&Credit { bytes })
}

/// `{}` for `terminal_close`.
pub const CLOSE_PAYLOAD: &str = "{}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_match_the_protocol_text() {
        assert_eq!(input_payload("ls -la\r"), "{\"data\":\"ls -la\\r\"}");
        assert_eq!(resize_payload(120, 40), r#"{"cols":120,"rows":40}"#);
        assert_eq!(credit_payload(65536), r#"{"bytes":65536}"#);
        assert_eq!(
            execute_payload("c0ffee00c0ffee00c0ffee00c0ffee00", "uptime"),
            r#"{"commandId":"c0ffee00c0ffee00c0ffee00c0ffee00","command":"uptime"}"#
        );
    }
}
