//! Agent → server messages of protocol v1 (docs/protocol.md section 2), parsed and validated.

use serde::Deserialize;

use super::escaped::EscapedText;

mod parse;

pub use parse::{message_type, parse_agent_frame, parse_agent_message, terminal_output_frame};

/// Longest accepted hostname or address string.
pub const MAX_NAME_LEN: usize = 255;
/// Most ports accepted in one heartbeat.
pub const MAX_PORTS: usize = 4096;
/// Most disks accepted in one heartbeat.
pub const MAX_DISKS: usize = 256;

/// A validated message from an agent.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentMessage {
    /// `register`, the first message.
    Register(Register),
    /// `heartbeat`, every 5 s.
    Heartbeat(Heartbeat),
    /// `command_response`, a chunk of command output.
    CommandResponse(CommandResponse),
    /// `terminal_output`, shell output.
    TerminalOutput(TerminalOutput),
    /// `terminal_exit` (fleetgate extension).
    TerminalExit(TerminalExit),
}

impl AgentMessage {
    /// The message's wire type.
    pub fn kind(&self) -> &'static str {
        match self {
            AgentMessage::Register(_) => "register",
            AgentMessage::Heartbeat(_) => "heartbeat",
            AgentMessage::CommandResponse(_) => "command_response",
            AgentMessage::TerminalOutput(_) => "terminal_output",
            AgentMessage::TerminalExit(_) => "terminal_exit",
        }
    }
}

/// `osInfo` of `register`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct OsInfo {
    /// Distribution, e.g. `debian`.
    #[serde(default)]
    pub distro: Option<String>,
    /// Release, e.g. `12`.
    #[serde(default)]
    pub release: Option<String>,
    /// Kernel version.
    #[serde(default)]
    pub kernel: Option<String>,
}

/// `register`.
#[derive(Clone, PartialEq, Eq)]
pub struct Register {
    /// Reported hostname.
    pub hostname: String,
    /// Reported address (any string).
    pub ip: String,
    /// OS details, may be missing.
    pub os_info: Option<OsInfo>,
    /// The machine secret (64 lowercase hex chars).
    pub secret_key: String,
    /// `linux`, `darwin` or `windows`.
    pub platform: Option<String>,
    /// fleetgate extension: agent version.
    pub agent_version: Option<String>,
    /// fleetgate extension: announced capabilities.
    pub capabilities: Vec<String>,
}

impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Register")
            .field("hostname", &self.hostname)
            .field("ip", &self.ip)
            .field("os_info", &self.os_info)
            .field("platform", &self.platform)
            .field("secret_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// `metrics` of `heartbeat` (percent, GiB, seconds). Missing numbers count as 0.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Metrics {
    /// CPU percent.
    pub cpu_usage: f64,
    /// RAM percent.
    pub ram_usage: f64,
    /// RAM total, GiB.
    pub ram_total: f64,
    /// RAM used, GiB.
    pub ram_used: f64,
    /// Disk percent.
    pub disk_usage: f64,
    /// Disk total, GiB.
    pub disk_total: f64,
    /// Disk used, GiB.
    pub disk_used: f64,
    /// Per-disk figures; may be `null`.
    pub disks: Option<Vec<DiskMetrics>>,
    /// Uptime, seconds.
    pub uptime: f64,
}

/// One entry of `metrics.disks`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DiskMetrics {
    /// Mount point.
    pub path: String,
    /// Percent used.
    pub usage: f64,
    /// Total, GiB.
    pub total: f64,
    /// Used, GiB.
    pub used: f64,
}

/// One entry of `ports`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub struct PortReport {
    /// Port number.
    pub port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
    /// Service or process name.
    #[serde(default)]
    pub service: Option<String>,
    /// Socket state, e.g. `LISTEN`.
    #[serde(default)]
    pub state: Option<String>,
}

/// `heartbeat`.
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    /// The machine the agent claims to be (trusted only if it equals the connection's).
    pub machine_id: String,
    /// Metrics sample.
    pub metrics: Metrics,
    /// Listening ports; may be `null`.
    pub ports: Option<Vec<PortReport>>,
}

/// `command_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResponse {
    /// The machine the agent claims to be.
    pub machine_id: String,
    /// The command this output belongs to.
    pub command_id: String,
    /// A chunk of output.
    pub output: String,
    /// Exit code (meaningful when `completed`).
    pub exit_code: i32,
    /// Whether this is the last chunk.
    pub completed: bool,
}

/// `terminal_output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalOutput {
    /// The session this output belongs to.
    pub session_id: String,
    /// Shell output, still escaped as the agent sent it.
    pub output: EscapedText,
}

/// `terminal_exit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalExit {
    /// The session whose shell exited.
    pub session_id: String,
    /// The shell's exit code.
    pub exit_code: i32,
}

/// Extensions an agent announced in `register` (docs/protocol.md section 7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Understands a signed `terminal_close`.
    pub terminal_close: bool,
    /// Sends `terminal_exit` when a shell exits.
    pub terminal_exit: bool,
    /// Rejects replayed nonces.
    pub nonce_check: bool,
    /// Applies server messages one at a time, in the order they were sent (so a
    /// `terminal_resize` right after `spawn_shell` reaches the new shell).
    pub ordered: bool,
    /// Holds a shell's output back until the server grants credit (`terminal_credit`).
    pub flow_control: bool,
}

impl Capabilities {
    /// Reads the announced capability names; unknown names are ignored.
    pub fn from_names(names: &[String]) -> Self {
        let has = |name: &str| names.iter().any(|n| n == name);
        Self {
            terminal_close: has("terminal_close"),
            terminal_exit: has("terminal_exit"),
            nonce_check: has("nonce_check"),
            ordered: has("ordered"),
            flow_control: has("flow_control"),
        }
    }

    /// The names of the announced capabilities (what [`Capabilities::from_names`] reads).
    pub fn names(&self) -> Vec<String> {
        [
            (self.terminal_close, "terminal_close"),
            (self.terminal_exit, "terminal_exit"),
            (self.nonce_check, "nonce_check"),
            (self.ordered, "ordered"),
            (self.flow_control, "flow_control"),
        ]
        .into_iter()
        .filter(|(has, _)| *has)
        .map(|(_, name)| name.to_owned())
        .collect()
    }
}

/// A machine secret held in memory to sign envelopes; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct MachineSecret(String);

impl MachineSecret {
    /// Wraps a verified secret.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The 64-hex secret (the HMAC key is its ASCII bytes).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for MachineSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MachineSecret(<redacted>)")
    }
}

/// Whether `secret` has the shape of a machine secret: 64 lowercase hex chars.
pub fn is_secret_shape(secret: &str) -> bool {
    secret.len() == 64
        && secret
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
