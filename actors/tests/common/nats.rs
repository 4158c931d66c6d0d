//! The test NATS server (with JetStream) and a cluster of the test's own on it.

use std::time::Duration;

/// A client of the test NATS server, or `None` (with a note) when there is none to use:
/// `FLEETGATE_TEST_NATS_URL` (required when set; CI sets it), else 127.0.0.1:4222 if something
/// listens there.
pub async fn nats() -> Option<async_nats::Client> {
    let (url, required) = match std::env::var("FLEETGATE_TEST_NATS_URL") {
        Ok(url) => (url, true),
        Err(_) => ("nats://127.0.0.1:4222".to_owned(), false),
    };
    let connect = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(url.as_str());
    match connect.await {
        Ok(client) => Some(client),
        Err(err) if !required => {
            eprintln!(
                "skipped: no NATS at {url} ({err}); set FLEETGATE_TEST_NATS_URL to require one"
            );
            None
        }
        Err(err) => panic!("FLEETGATE_TEST_NATS_URL={url}: {err}"),
    }
}

/// A cluster name of its own per test, so runs never see each other's entries.
pub fn cluster() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}
