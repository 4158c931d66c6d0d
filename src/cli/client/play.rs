//! `fleetgate play SESSION_ID [--speed N]`: replays a session's recording in this terminal at
//! its real pace (or N times faster); long pauses are shortened to two seconds.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use super::api;
use super::credentials;

/// The longest pause replayed, seconds (before the speed-up).
const LONGEST_PAUSE: f64 = 2.0;

/// Replays `session`'s recording.
pub async fn play(session: &str, speed: f64) -> anyhow::Result<()> {
    anyhow::ensure!(speed > 0.0, "--speed must be positive");
    let credentials = credentials::load()?;
    let cast = api::get_text(&credentials, &format!("/sessions/{session}/recording")).await?;
    let mut lines = cast.lines();
    let header: Value = serde_json::from_str(lines.next().context("the recording is empty")?)
        .context("the recording has no asciicast header")?;
    eprintln!(
        "session {session}: {}x{}, recorded {} (press Ctrl-C to stop)",
        header["width"], header["height"], header["timestamp"]
    );
    let mut clock = 0.0;
    for line in lines {
        let (at, code, data): (f64, String, String) =
            serde_json::from_str(line).context("a malformed event line")?;
        if code != "o" {
            continue;
        }
        let pause = (at - clock).clamp(0.0, LONGEST_PAUSE) / speed;
        clock = at;
        tokio::time::sleep(Duration::from_secs_f64(pause)).await;
        let mut out = std::io::stdout().lock();
        out.write_all(data.as_bytes())?;
        out.flush()?;
    }
    eprintln!("\r\n[end of the recording]");
    Ok(())
}
