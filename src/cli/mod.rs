//! Command-line interface: `serve` plus the operator's admin subcommands.

mod admin;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use admin::{run_machine, run_migrate, run_secrets};

/// fleetgate: a gateway between operators and a fleet of Linux machines.
#[derive(Debug, Parser)]
#[command(name = "fleetgate", version, about)]
pub struct Cli {
    /// Configuration file (TOML); environment variables FLEETGATE__SECTION__KEY override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Database migrations.
    Migrate {
        /// up, down or status.
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Machines of the fleet.
    Machine {
        /// What to do.
        #[command(subcommand)]
        action: MachineAction,
    },
    /// Server secrets.
    Secrets {
        /// What to do with them.
        #[command(subcommand)]
        action: SecretsAction,
    },
}

/// `fleetgate migrate …`
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back migrations (the last one by default).
    Down {
        /// How many to roll back.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List applied and pending migrations.
    Status,
}

/// `fleetgate secrets …`
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum SecretsAction {
    /// Replace the JWT signing secret; every issued token stops working.
    RotateJwt,
}

/// `fleetgate machine …`
#[derive(Debug, Clone, Subcommand)]
pub enum MachineAction {
    /// Enrol a machine and print its new agent secret (shown once).
    Add {
        /// Name of the machine (with --count, a prefix: NAME-1, NAME-2, …).
        name: String,
        /// How many machines to enrol.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Write `machineId secret` lines to this file (mode 0600) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}
