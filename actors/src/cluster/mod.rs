//! Per-region instances over NATS (being built): where each machine's agent is connected,
//! cluster-wide ([`presence`]). Messages between instances are sealed with the cluster key
//! (`fleetgate_protocol::cluster`).

pub mod presence;
