//! Per-region instances over NATS: where each machine's agent is connected, cluster-wide
//! ([`presence`]), kept by this instance's [`bridge::NatsBridge`]; status transitions shared
//! ([`status`]); frames for agents connected elsewhere sent through the [`outbox::ClusterOutbox`]
//! and taken in by the agent's instance ([`inbound`]), whose [`relay::OutputRelay`] sends the
//! output back. A terminal re-attached through another instance keeps running where it was
//! opened ([`terminal_home`]); the instance its owner came back through relays to it
//! ([`remote_terminal`]). Every message between instances is sealed with the cluster key
//! (`fleetgate_protocol::cluster`); subjects and bodies are in [`wire`].

pub mod bridge;
pub mod inbound;
pub mod outbox;
pub mod owner_wire;
pub mod presence;
pub mod refusals;
pub mod relay;
pub mod remote_terminal;
mod sealed_inbox;
pub mod status;
pub mod subscription;
pub mod sweep;
pub mod terminal_home;
pub mod view;
pub mod wire;
