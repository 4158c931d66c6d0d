//! SeaORM entities of fleetgate: one module per table, named after the table.

pub mod agent_reports;
pub mod audit_log;
pub mod commands;
pub mod machine_access;
pub mod machines;
pub mod metrics;
pub mod ports;
pub mod terminal_sessions;
pub mod users;
