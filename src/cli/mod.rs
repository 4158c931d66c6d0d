//! Command-line interface: `serve` plus the operator's admin subcommands.

mod admin;
pub mod backup;
pub mod client;
pub mod doctor;
pub mod users;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use admin::{run_machine, run_migrate, run_secrets, run_user};

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
    /// Operator accounts.
    User {
        /// What to do.
        #[command(subcommand)]
        action: UserAction,
    },
    /// Log in to a server and keep the token (mode 0600) for the commands below.
    Login {
        /// Server URL, e.g. http://127.0.0.1:7070.
        #[arg(long)]
        server: String,
        /// User name (prompted when missing).
        #[arg(long)]
        user: Option<String>,
        /// For https://: trust only the CA certificates in this PEM file.
        #[arg(long, conflicts_with = "pin_sha256")]
        ca_file: Option<std::path::PathBuf>,
        /// For https://: trust only the server certificate with this SHA-256 fingerprint
        /// (printed by a server with `server.tls = "self-signed"`).
        #[arg(long)]
        pin_sha256: Option<String>,
    },
    /// Replay a terminal session's recording here.
    Play {
        /// The session id.
        session: String,
        /// Play N times faster.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
    },
    /// List the machines you may see.
    Machines {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a command on a machine; exits with its exit code.
    Exec {
        /// Machine id, name or hostname.
        machine: String,
        /// Seconds before the command is given up.
        #[arg(long)]
        timeout: Option<u64>,
        /// The command (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Open an interactive shell on a machine (reattaches by itself after a network blip).
    Shell {
        /// Machine id, name or hostname.
        #[arg(required_unless_present_any = ["attach", "watch"])]
        machine: Option<String>,
        /// Reattach to a session of this machine's user whose connection dropped (its id is
        /// printed when the connection is lost), replaying the output missed meanwhile.
        #[arg(long, value_name = "SESSION_ID", conflicts_with_all = ["machine", "watch"])]
        attach: Option<String>,
        /// Watch another user's live session read-only (needs the `observe` grant on its
        /// machine, or the admin role); `fleetgate sessions MACHINE` lists them.
        #[arg(long, value_name = "SESSION_ID", conflicts_with = "machine")]
        watch: Option<String>,
    },
    /// List open terminal sessions (to watch one with `shell --watch`).
    Sessions {
        /// Only on this machine (id, name or hostname): with the `observe` grant there, every
        /// user's sessions.
        machine: Option<String>,
        /// Ended sessions too.
        #[arg(long)]
        ended: bool,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Read the audit trail (admins).
    Audit {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
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
    /// Check this installation: configuration, database and migrations, secrets file, TLS
    /// certificate, clock, open-file limit, NATS; exits non-zero when something is wrong.
    Doctor,
    /// Copy the live SQLite database to FILE (consistent, while the server runs).
    Backup {
        /// The copy (must not exist).
        file: std::path::PathBuf,
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

/// `fleetgate user …`
#[derive(Debug, Clone, Subcommand)]
pub enum UserAction {
    /// Create a user; the password is read from stdin.
    Add {
        /// Login name.
        name: String,
        /// admin, operator or viewer.
        #[arg(long, default_value = "operator")]
        role: String,
    },
    /// List users with their role and state.
    List,
    /// Disable a user: they cannot log in, and a running server closes their sockets.
    Disable {
        /// Login name.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// Login name.
        name: String,
    },
    /// Set a user's password (read from stdin, or prompted).
    Passwd {
        /// Login name.
        name: String,
    },
    /// Give a user another role (their open sockets are closed).
    Role {
        /// Login name.
        name: String,
        /// admin, operator or viewer.
        role: String,
    },
    /// Delete a user (their grants go; the audit trail and history keep their id).
    Delete {
        /// Login name.
        name: String,
    },
}
