//! fleetgate's connection layer: one actor per socket, the shared socket plumbing,
//! and the wire protocol types they speak.

pub mod agent_session;
pub mod command;
pub mod identity;
pub mod output_buffer;
pub mod protocol;
pub mod rate_limit;
pub mod registry;
pub mod repo;
pub mod sealing;
pub mod shutdown;
pub mod socket;
pub mod terminal;
pub mod violations;
pub mod web_requests;
pub mod web_session;
