//! fleetgate: a self-hosted gateway between operators and a fleet of Linux machines.
//! The binary (`main.rs`) is a thin command-line front over this library.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod db;
pub mod http;
pub mod listener;
pub mod metrics_server;
pub mod passwords;
pub mod secrets;
pub mod services;
pub mod settings;
pub mod telemetry;
pub mod tls;
