//! Wire types of PROTOCOL.md: plain Rust, no actix, no I/O.

pub mod error;

pub use error::{ErrorCode, ErrorFrame};
