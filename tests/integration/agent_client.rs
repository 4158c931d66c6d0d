//! A scripted agent speaking protocol v1 over a real socket, frames exactly as docs/protocol.md.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long to wait for any expected frame.
pub const WAIT: Duration = Duration::from_secs(10);

/// A connected scripted agent.
pub struct ScriptedAgent {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// The register frame of docs/protocol.md, newline-terminated like a v1 agent's.
pub fn register_frame(secret: &str, hostname: &str) -> String {
    format!(
        "{{\"type\":\"register\",\"hostname\":\"{hostname}\",\"ip\":\"10.0.0.5\",\
         \"osInfo\":{{\"distro\":\"debian\",\"release\":\"12\",\"kernel\":\"6.1.0-18-amd64\"}},\
         \"secretKey\":\"{secret}\",\"platform\":\"linux\"}}\n"
    )
}

/// The heartbeat frame of docs/protocol.md with the given ports.
pub fn heartbeat_frame(machine_id: &str, cpu: f64, ports: &[(u16, &str, &str)]) -> String {
    let ports: Vec<String> = ports
        .iter()
        .map(|(port, proto, service)| {
            format!("{{\"port\":{port},\"proto\":\"{proto}\",\"service\":\"{service}\",\"state\":\"LISTEN\"}}")
        })
        .collect();
    format!(
        "{{\"type\":\"heartbeat\",\"machineId\":\"{machine_id}\",\
         \"metrics\":{{\"cpuUsage\":{cpu},\"ramUsage\":41.2,\"ramTotal\":15.5,\"ramUsed\":6.4,\
         \"diskUsage\":63.0,\"diskTotal\":480.0,\"diskUsed\":302.4,\
         \"disks\":[{{\"path\":\"/\",\"usage\":63.0,\"total\":480.0,\"used\":302.4}}],\"uptime\":86400}},\
         \"ports\":[{}]}}\n",
        ports.join(",")
    )
}

/// `text` as one message in `pieces` frames (a text frame, then continuations), as widely used
/// client libraries send large messages.
pub fn fragments(text: &str, pieces: usize) -> Vec<Message> {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let bytes = text.as_bytes();
    let chunks: Vec<&[u8]> = bytes.chunks(bytes.len().div_ceil(pieces)).collect();
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let opcode = if i == 0 { Data::Text } else { Data::Continue };
            Message::Frame(Frame::message(
                chunk.to_vec(),
                OpCode::Data(opcode),
                i == last,
            ))
        })
        .collect()
}

impl ScriptedAgent {
    /// Opens `/ws/agent` at `url`.
    pub async fn connect(url: &str) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("agent upgrade");
        Self { socket }
    }

    /// Sends one text frame.
    pub async fn send(&mut self, text: &str) {
        self.socket.send(Message::text(text)).await.expect("send");
    }

    /// Sends `text` as one message in `pieces` frames (see [`fragments`]); a ping goes out
    /// after the fragment numbered `ping_after`, if given.
    pub async fn send_fragmented(&mut self, text: &str, pieces: usize, ping_after: Option<usize>) {
        for (i, frame) in fragments(text, pieces).into_iter().enumerate() {
            self.socket.send(frame).await.expect("send");
            if ping_after == Some(i) {
                self.socket
                    .send(Message::Ping(b"between".to_vec().into()))
                    .await
                    .expect("ping");
            }
        }
    }

    /// The next message of `kind` (e.g. `spawn_shell`), skipping others.
    pub async fn next_of(&mut self, kind: &str) -> serde_json::Value {
        loop {
            let message = self.next_json().await.expect("socket open");
            if message["type"] == kind {
                return message;
            }
        }
    }

    /// Whether any text frame arrives within `wait`.
    pub async fn receives_within(&mut self, wait: Duration) -> bool {
        matches!(
            tokio::time::timeout(wait, self.socket.next()).await,
            Ok(Some(Ok(Message::Text(_))))
        )
    }

    /// Registers and returns the machine id from `registered`.
    pub async fn register(&mut self, secret: &str, hostname: &str) -> String {
        self.send(&register_frame(secret, hostname)).await;
        let reply = self.next_json().await.expect("a reply to register");
        assert_eq!(reply["type"], "registered", "{reply}");
        reply["machineId"].as_str().expect("machineId").to_owned()
    }

    /// The next text frame as JSON; `None` when the socket closes first.
    pub async fn next_json(&mut self) -> Option<serde_json::Value> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("frame in time")?;
            match frame.ok()? {
                Message::Text(text) => return Some(serde_json::from_str(&text).expect("json")),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Reads until the server closes; returns its close code.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("close in time")?;
            match frame {
                Ok(Message::Close(close)) => return close.map(|c| u16::from(c.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Drops the TCP connection without a close frame, as v1 agents do.
    pub fn drop_connection(self) {
        drop(self.socket);
    }
}
