//! fleetgate's agent as a library: the binary (`main.rs`) parses arguments and reconnects;
//! tests drive [`connection::run_once`] against an in-process server.

pub mod backoff;
pub mod commands;
pub mod connection;
pub mod failover;
pub mod settings;
pub mod simulate;
pub mod system;
pub mod terminal;
