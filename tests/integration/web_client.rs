//! A scripted operator client on `/ws/web`, and users with roles and grants.

use chrono::Utc;
use fleetgate_actors::identity::Role;
use fleetgate_actors::protocol::{MachineId, UserId};
use fleetgate_entity::{machine_access, users};
use futures_util::{SinkExt, StreamExt};
use sea_orm::{ActiveModelTrait, Set};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::agent_client::WAIT;
use crate::support::TestServer;

/// Creates a user with `role` and grants; returns its id and a token for it.
pub async fn user(server: &TestServer, role: Role, grants: &[(&str, &str)]) -> (String, String) {
    let id = UserId(uuid::Uuid::new_v4());
    users::ActiveModel {
        id: Set(id),
        username: Set(format!("user-{id}")),
        password_hash: Set("!".into()),
        role: Set(role.as_str().into()),
        disabled: Set(false),
        created_at: Set(Utc::now()),
    }
    .insert(&server.db)
    .await
    .expect("user");
    for (machine, level) in grants {
        machine_access::ActiveModel {
            user_id: Set(id),
            machine_id: Set(MachineId::parse(machine).expect("uuid")),
            level: Set((*level).into()),
        }
        .insert(&server.db)
        .await
        .expect("grant");
    }
    let (token, _) = server
        .jwt
        .issue(&id.to_string(), role, None)
        .expect("token");
    (id.to_string(), token)
}

/// A connected operator socket.
pub struct WebClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WebClient {
    /// Connects with a bearer token and consumes `hello`.
    pub async fn connect(server: &TestServer, token: &str) -> Self {
        let (client, hello) = Self::connect_with_hello(server, token).await;
        assert_eq!(hello["type"], "hello");
        client
    }

    /// Sends one JSON message.
    pub async fn send(&mut self, message: serde_json::Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("send");
    }

    /// Sends one JSON message in `pieces` fragments.
    pub async fn send_fragmented(&mut self, message: serde_json::Value, pieces: usize) {
        for frame in crate::agent_client::fragments(&message.to_string(), pieces) {
            self.socket.send(frame).await.expect("send");
        }
    }

    /// The next JSON message; `None` once the socket closes.
    pub async fn next(&mut self) -> Option<serde_json::Value> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("message in time")?;
            match frame.ok()? {
                Message::Text(text) => return Some(serde_json::from_str(&text).expect("json")),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next message of `kind`, skipping others (e.g. token refreshes).
    pub async fn next_of(&mut self, kind: &str) -> serde_json::Value {
        loop {
            let message = self.next().await.expect("socket open");
            if message["type"] == kind {
                return message;
            }
        }
    }

    /// Opens a terminal and returns (sessionId, sessionToken).
    pub async fn spawn(&mut self, machine_id: &str) -> (String, String) {
        self.send(
            serde_json::json!({"type":"spawn_terminal","machineId":machine_id,"cols":80,"rows":24}),
        )
        .await;
        let opened = self.next_of("terminal_opened").await;
        (
            opened["sessionId"].as_str().expect("sessionId").to_owned(),
            opened["sessionToken"].as_str().expect("token").to_owned(),
        )
    }

    /// Asks for a terminal on `machine_id`: the `terminal_opened` or the `error` answer.
    pub async fn try_spawn(&mut self, machine_id: &str) -> serde_json::Value {
        self.send(
            serde_json::json!({"type":"spawn_terminal","machineId":machine_id,"cols":80,"rows":24}),
        )
        .await;
        loop {
            let message = self.next().await.expect("socket open");
            if message["type"] == "terminal_opened" || message["type"] == "error" {
                return message;
            }
        }
    }

    /// The close code the server ends the socket with, skipping other messages.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("close in time")?;
            if let Message::Close(frame) = frame.ok()? {
                return frame.map(|f| u16::from(f.code));
            }
        }
    }

    /// The `hello` a fresh connection gets, and the client.
    pub async fn connect_with_hello(server: &TestServer, token: &str) -> (Self, serde_json::Value) {
        Self::connect_request(server.web_request(token)).await
    }

    /// Connects to the `/ws/web` at `ws_url` (a server process) and consumes `hello`.
    pub async fn connect_url(ws_url: &str, token: &str) -> Self {
        let request = crate::support::bearer_upgrade(ws_url, token);
        let (client, hello) = Self::connect_request(request).await;
        assert_eq!(hello["type"], "hello");
        client
    }

    async fn connect_request(
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> (Self, serde_json::Value) {
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("upgrade");
        let mut client = Self { socket };
        let hello = client.next().await.expect("hello");
        (client, hello)
    }

    /// Drops the connection.
    pub fn drop_connection(self) {
        drop(self.socket);
    }

    /// Kills the TCP connection with a reset: no close frame, no FIN, unread data discarded.
    pub fn reset_connection(self) {
        if let MaybeTlsStream::Plain(tcp) = self.socket.get_ref() {
            socket2::SockRef::from(tcp)
                .set_linger(Some(std::time::Duration::ZERO))
                .expect("linger");
        }
        drop(self.socket);
    }
}

/// The HTTP status of a `/ws/web` upgrade with `token` (101 when it succeeds).
pub async fn upgrade_status(server: &TestServer, token: &str) -> u16 {
    match tokio_tungstenite::connect_async(server.web_request(token)).await {
        Ok((_socket, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected upgrade error: {other}"),
    }
}
