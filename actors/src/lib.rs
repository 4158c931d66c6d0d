//! fleetgate's connection layer: one actor per socket, the shared socket plumbing,
//! and the wire protocol types they speak.

/// The wire protocol, re-exported from its own crate (shared with the agent).
pub use fleetgate_protocol as protocol;

pub mod agent_link;
pub mod agent_session;
pub mod cluster;
pub mod command;
pub mod direct_routes;
pub mod frame_walk;
pub mod identity;
pub mod inbound_guard;
pub mod instruments;
pub mod message_assembly;
pub mod output_buffer;
pub mod rate_limit;
pub mod recording;
pub mod registry;
pub mod replay_log;
pub mod repo;
pub mod sealing;
pub mod security_events;
pub mod shutdown;
pub mod socket;
pub mod socket_drain;
pub mod terminal;
pub mod user_directory;
pub mod violations;
pub mod web_session;
