//! Reading what a socket actor sends: its output stream driven in the background, decoded as a
//! client decodes it.

use std::time::Duration;

use actix_codec::Decoder;
use actix_http::ws::{Codec, Frame};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

/// What came back from the actor.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// A text frame, parsed as JSON.
    Json(serde_json::Value),
    /// A close frame and its code.
    Close(Option<u16>),
}

/// The frames an actor's output stream carries.
pub struct ServerFrames {
    output: futures_channel::mpsc::UnboundedReceiver<Bytes>,
    buffer: BytesMut,
    decoder: Codec,
}

impl ServerFrames {
    /// Drives `stream` (the actor runs inside it) in the background and decodes what it writes.
    pub fn drive(stream: impl Stream<Item = Result<Bytes, actix_web::Error>> + 'static) -> Self {
        let (tx, output) = futures_channel::mpsc::unbounded();
        actix::spawn(async move {
            let mut stream = Box::pin(stream);
            while let Some(Ok(chunk)) = stream.next().await {
                if tx.unbounded_send(chunk).is_err() {
                    break;
                }
            }
        });
        Self {
            output,
            buffer: BytesMut::new(),
            decoder: Codec::new().client_mode(),
        }
    }

    /// The next text or close frame (pings skipped), within 5 s.
    pub async fn next(&mut self) -> Reply {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buffer).expect("decode") {
                match frame {
                    Frame::Text(text) => {
                        return Reply::Json(serde_json::from_slice(&text).expect("json"));
                    }
                    Frame::Close(reason) => return Reply::Close(reason.map(|r| u16::from(r.code))),
                    _ => continue,
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.output.next())
                .await
                .expect("a reply in time")
                .expect("output open");
            self.buffer.extend_from_slice(&chunk);
        }
    }
}
