//! What the agent reports about its machine: identity, metrics (docs/protocol.md units) and the
//! listening ports read from /proc/net.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use sysinfo::{Disks, System};

/// Bytes in a GiB (docs/protocol.md reports sizes in GiB).
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Hostname, OS details and platform for `register`.
pub fn register_fields() -> Value {
    json!({
        "hostname": System::host_name().unwrap_or_else(|_| "unknown".into()),
        "osInfo": {
            "distro": System::distribution_id(),
            "release": System::os_version().unwrap_or_default(),
            "kernel": System::kernel_version().unwrap_or_default(),
        },
        "platform": std::env::consts::OS,
    })
}

/// The address this host uses to reach `server_host` (no packet is sent).
pub fn primary_ip(server_host: &str) -> String {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|socket| {
        socket.connect((server_host, 9))?;
        socket.local_addr()
    });
    match probe {
        Ok(addr) if !addr.ip().is_unspecified() => addr.ip().to_string(),
        _ => System::host_name().unwrap_or_else(|_| "unknown".into()),
    }
}

/// Samples CPU, memory, disks and uptime (what cannot be read is reported as 0).
pub struct Sampler {
    system: Option<System>,
    disks: Option<Disks>,
}

impl Sampler {
    /// A sampler primed for CPU usage deltas.
    pub fn new() -> Self {
        let mut system = System::new().ok();
        if let Some(system) = system.as_mut() {
            system.refresh_cpu_usage();
        }
        Self {
            system,
            disks: Disks::new_with_refreshed_list().ok(),
        }
    }

    /// The `metrics` object of a heartbeat.
    pub fn metrics(&mut self) -> Value {
        let (mut cpu, mut ram_total, mut ram_used) = (0.0, 0.0, 0.0);
        if let Some(system) = self.system.as_mut() {
            system.refresh_cpu_usage();
            system.refresh_memory();
            cpu = f64::from(system.global_cpu_usage());
            ram_total = system.total_memory() as f64 / GIB;
            ram_used = system.used_memory() as f64 / GIB;
        }
        let mut disks = Vec::new();
        let (mut disk_total, mut disk_used) = (0.0, 0.0);
        if let Some(list) = self.disks.as_mut() {
            list.refresh(true);
        }
        for disk in self.disks.iter().flat_map(|d| d.iter()) {
            let total = disk.total_space() as f64 / GIB;
            let used = total - disk.available_space() as f64 / GIB;
            if total <= 0.0 {
                continue;
            }
            disk_total += total;
            disk_used += used;
            disks.push(json!({
                "path": disk.mount_point().to_string_lossy(),
                "usage": percent(used, total), "total": total, "used": used,
            }));
        }
        json!({
            "cpuUsage": cpu,
            "ramUsage": percent(ram_used, ram_total), "ramTotal": ram_total, "ramUsed": ram_used,
            "diskUsage": percent(disk_used, disk_total), "diskTotal": disk_total, "diskUsed": disk_used,
            "disks": disks,
            "uptime": System::uptime().unwrap_or(0),
        })
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        (part / whole * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    }
}

/// Listening TCP ports and bound UDP ports from /proc/net.
pub fn listening_ports() -> Value {
    let mut ports = BTreeSet::new();
    for (file, proto, state) in [
        ("tcp", "tcp", "0A"),
        ("tcp6", "tcp", "0A"),
        ("udp", "udp", "07"),
        ("udp6", "udp", "07"),
    ] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/net/{file}")) {
            ports.extend(
                parse_proc_net(&text, state)
                    .into_iter()
                    .map(|port| (port, proto)),
            );
        }
    }
    Value::Array(
        ports
            .into_iter()
            .map(|(port, proto)| json!({ "port": port, "proto": proto, "service": null, "state": if proto == "tcp" { "LISTEN" } else { "UNCONN" } }))
            .collect(),
    )
}

/// Local ports of the rows of a /proc/net table in `state` (hex, e.g. `0A` for LISTEN).
fn parse_proc_net(text: &str, state: &str) -> Vec<u16> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            (fields.get(3)? == &state).then_some(())?;
            let port = local.rsplit_once(':')?.1;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_rows_in_the_state_give_their_ports() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n\
   1: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n";
        assert_eq!(parse_proc_net(text, "0A"), vec![22]);
    }

    #[test]
    fn metrics_have_the_protocol_fields() {
        let metrics = Sampler::new().metrics();
        for key in [
            "cpuUsage",
            "ramUsage",
            "ramTotal",
            "ramUsed",
            "diskUsage",
            "diskTotal",
            "diskUsed",
            "disks",
            "uptime",
        ] {
            assert!(metrics.get(key).is_some(), "{key}");
        }
        assert!(metrics["ramTotal"].as_f64().is_some_and(|t| t > 0.0));
    }
}
