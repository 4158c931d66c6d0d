//! fleetgate's wire protocol (docs/protocol.md): message types, signed envelopes, the nonce cache
//! and ids. Plain Rust, no actix, no I/O: shared by the server and the agent.

pub mod agent;
pub mod cluster;
pub mod envelope;
pub mod error;
pub mod escaped;
pub mod ids;
pub mod key;
pub mod nonce;
pub mod payloads;
pub mod reports;
pub mod server;
pub mod session_token;
pub mod web;

pub use error::{ErrorCode, ErrorFrame};
pub use ids::{CommandId, ConnectionId, MachineId, SessionId, UserId};
