//! Per-region instances over NATS (being built): where each machine's agent is connected,
//! cluster-wide ([`presence`]), kept by this instance's [`bridge::NatsBridge`]. Messages
//! between instances are sealed with the cluster key (`fleetgate_protocol::cluster`).

pub mod bridge;
pub mod presence;
pub mod status;
pub mod sweep;
