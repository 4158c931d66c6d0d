//! The server-wide shutdown signal every socket actor listens to.

use tokio::sync::watch;

/// Sending half, held by the application; [`ShutdownTrigger::trigger`] starts the shutdown.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Receiving half, cloned into every socket actor.
#[derive(Debug, Clone)]
pub struct ShutdownSignal(watch::Receiver<bool>);

/// A connected trigger and signal.
pub fn shutdown_channel() -> (ShutdownTrigger, ShutdownSignal) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), ShutdownSignal(rx))
}

impl ShutdownTrigger {
    /// Tells every listener that the server is shutting down.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// A new signal bound to this trigger.
    pub fn subscribe(&self) -> ShutdownSignal {
        ShutdownSignal(self.0.subscribe())
    }
}

impl ShutdownSignal {
    /// Completes once shutdown has been triggered; never completes if the trigger is dropped
    /// without firing.
    pub async fn triggered(mut self) {
        loop {
            if *self.0.borrow_and_update() {
                return;
            }
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Whether shutdown has been triggered already.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }
}
