//! Wire types of PROTOCOL.md: plain Rust, no actix, no I/O.

pub mod agent;
pub mod error;
pub mod ids;
pub mod reports;
pub mod server;

pub use error::{ErrorCode, ErrorFrame};
pub use ids::{ConnectionId, MachineId};
