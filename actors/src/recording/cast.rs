//! asciicast v2 lines: a header object, then one `[seconds, code, data]` array per event
//! (`o` output, `r` resize as `COLSxROWS`, `i` input).

use serde_json::json;

/// What the header says about the session.
#[derive(Debug, Clone)]
pub struct CastHeader {
    /// Columns at the start.
    pub width: u16,
    /// Rows at the start.
    pub height: u16,
    /// Unix time of the start, seconds.
    pub timestamp: i64,
    /// The session.
    pub session_id: String,
    /// Its machine.
    pub machine_id: String,
    /// Its owner.
    pub user_id: String,
}

impl CastHeader {
    /// The header line (extra keys under `fleetgate`; players ignore them).
    pub fn line(&self) -> String {
        json!({
            "version": 2,
            "width": self.width,
            "height": self.height,
            "timestamp": self.timestamp,
            "title": format!("fleetgate session {} on {}", self.session_id, self.machine_id),
            "env": {"TERM": "xterm-256color"},
            "fleetgate": {
                "sessionId": self.session_id,
                "machineId": self.machine_id,
                "userId": self.user_id,
            },
        })
        .to_string()
    }
}

/// An output event whose data is already a JSON string's content (as the agent escaped it).
pub fn output_line(seconds: f64, escaped: &str) -> String {
    format!("[{seconds:.6}, \"o\", \"{escaped}\"]")
}

/// A resize event.
pub fn resize_line(seconds: f64, cols: u16, rows: u16) -> String {
    format!("[{seconds:.6}, \"r\", \"{cols}x{rows}\"]")
}

/// An input event.
pub fn input_line(seconds: f64, data: &str) -> String {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "\"\"".to_owned());
    format!("[{seconds:.6}, \"i\", {data}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_arrays_with_the_data_intact() {
        let out: serde_json::Value =
            serde_json::from_str(&output_line(1.5, r#"caf\u00e9 \"q\"\r\n"#)).expect("json");
        assert_eq!(out[0], 1.5);
        assert_eq!(out[1], "o");
        assert_eq!(out[2], "café \"q\"\r\n");
        let input: serde_json::Value =
            serde_json::from_str(&input_line(2.0, "ls\r")).expect("json");
        assert_eq!(input[2], "ls\r");
        let resize: serde_json::Value =
            serde_json::from_str(&resize_line(3.0, 100, 30)).expect("json");
        assert_eq!(resize[2], "100x30");
    }
}
