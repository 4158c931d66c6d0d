//! Running `execute_command`: `/bin/sh -c`, output streamed in chunks of at most 8 KiB
//! (stdout and stderr merged), killed after its timeout, then the real exit code.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::connection::{Outbound, send};

/// Largest output chunk, bytes.
pub const CHUNK_BYTES: usize = 8192;

fn response(
    machine_id: &str,
    command_id: &str,
    output: &str,
    exit_code: i32,
    completed: bool,
) -> String {
    json!({
        "type": "command_response", "machineId": machine_id, "commandId": command_id,
        "output": output, "exitCode": exit_code, "completed": completed,
    })
    .to_string()
}

/// Runs `command`, sending `command_response` frames to `out`.
pub async fn run(
    machine_id: String,
    command_id: String,
    command: String,
    timeout: Duration,
    out: mpsc::Sender<Outbound>,
) {
    let spawned = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            let text = format!("fleetgate-agent: cannot start /bin/sh: {err}\n");
            send(&out, response(&machine_id, &command_id, &text, 127, true)).await;
            return;
        }
    };
    let (chunks_tx, mut chunks) = mpsc::channel::<Vec<u8>>(16);
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child.stderr.take().map(|s| Box::new(s) as _),
    ]
    .into_iter()
    .flatten()
    {
        let tx = chunks_tx.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            let mut buffer = vec![0u8; CHUNK_BYTES];
            while let Ok(n) = stream.read(&mut buffer).await {
                if n == 0 || tx.send(buffer[..n].to_vec()).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(chunks_tx);
    let streamed = async {
        while let Some(chunk) = chunks.recv().await {
            let text = String::from_utf8_lossy(&chunk);
            if !send(&out, response(&machine_id, &command_id, &text, 0, false)).await {
                break;
            }
        }
        child.wait().await
    };
    let exit_code = match tokio::time::timeout(timeout, streamed).await {
        Ok(Ok(status)) => status.code().unwrap_or(-1),
        Ok(Err(_)) => -1,
        Err(_) => {
            tracing::warn!(command_id, "command outlived its timeout; killed");
            124
        }
    };
    send(
        &out,
        response(&machine_id, &command_id, "", exit_code, true),
    )
    .await;
}
