//! Authentication of operators: JWTs.

pub mod jwt;

pub use jwt::{Claims, JwtAuth, JwtError};
