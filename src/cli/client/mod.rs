//! The operator's client commands, talking to a fleetgate server over HTTP and `/ws/web`.

pub mod api;
pub mod commands;
pub mod credentials;
pub mod play;
pub mod saved_sessions;
pub mod server_trust;
pub mod shell;
pub mod watch;
