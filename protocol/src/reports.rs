//! Bodies agents POST to `/api/agent/...` (docs/protocol.md 2.10), checked for shape.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The kinds of report, by endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// `/api/agent/scan`
    Scan,
    /// `/api/agent/scan/progress`
    ScanProgress,
    /// `/api/agent/audit`
    Audit,
    /// `/api/agent/security-events`
    SecurityEvents,
}

impl ReportKind {
    /// Name stored in `agent_reports.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Scan => "scan",
            ReportKind::ScanProgress => "scan_progress",
            ReportKind::Audit => "audit",
            ReportKind::SecurityEvents => "security_events",
        }
    }
}

#[derive(Deserialize)]
struct Package {
    #[serde(rename = "name")]
    _name: String,
    #[serde(rename = "version")]
    _version: String,
}

#[derive(Deserialize)]
struct Scan {
    #[serde(rename = "packages")]
    _packages: Vec<Package>,
    #[serde(rename = "summary")]
    _summary: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct ScanProgress {
    #[serde(rename = "phase")]
    _phase: String,
    progress: f64,
}

#[derive(Deserialize)]
struct AuditEvent {
    #[serde(rename = "action")]
    _action: String,
}

#[derive(Deserialize)]
struct Audit {
    #[serde(rename = "events")]
    _events: Vec<AuditEvent>,
}

#[derive(Deserialize)]
struct SecurityEvent {
    #[serde(rename = "type")]
    _kind: String,
    #[serde(rename = "severity")]
    _severity: String,
    #[serde(rename = "message")]
    _message: String,
}

#[derive(Deserialize)]
struct SecurityEvents {
    #[serde(rename = "events")]
    _events: Vec<SecurityEvent>,
}

#[derive(Deserialize)]
struct Claimed {
    #[serde(rename = "machineId")]
    machine_id: String,
}

fn shape<T: DeserializeOwned>(body: &serde_json::Value) -> Result<T, String> {
    T::deserialize(body).map_err(|err| err.to_string())
}

/// Checks a report body's shape; returns the `machineId` it claims.
pub fn check_report(kind: ReportKind, body: &serde_json::Value) -> Result<String, String> {
    let claimed: Claimed = shape(body)?;
    match kind {
        ReportKind::Scan => shape::<Scan>(body).map(drop)?,
        ReportKind::ScanProgress => {
            let progress: ScanProgress = shape(body)?;
            if !(0.0..=100.0).contains(&progress.progress) {
                return Err("progress must be between 0 and 100".into());
            }
        }
        ReportKind::Audit => shape::<Audit>(body).map(drop)?,
        ReportKind::SecurityEvents => shape::<SecurityEvents>(body).map(drop)?,
    }
    Ok(claimed.machine_id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn well_formed_reports_pass_and_name_their_machine() {
        let scan = json!({"machineId":"m","packages":[{"name":"bash","version":"5.2"}],
                          "summary":{"total":1,"updates":0,"securityUpdates":0}});
        assert_eq!(check_report(ReportKind::Scan, &scan), Ok("m".into()));
        let progress = json!({"machineId":"m","phase":"packages","progress":40,"etaSeconds":3,"startedAt":"x"});
        assert!(check_report(ReportKind::ScanProgress, &progress).is_ok());
        let audit = json!({"machineId":"m","events":[{"action":"login"}]});
        assert!(check_report(ReportKind::Audit, &audit).is_ok());
        let events =
            json!({"machineId":"m","events":[{"type":"t","severity":"high","message":"x"}]});
        assert!(check_report(ReportKind::SecurityEvents, &events).is_ok());
    }

    #[test]
    fn malformed_reports_are_refused() {
        assert!(check_report(ReportKind::Scan, &json!({"packages":[]})).is_err());
        assert!(
            check_report(
                ReportKind::Scan,
                &json!({"machineId":"m","packages":"x","summary":{}})
            )
            .is_err()
        );
        let progress = json!({"machineId":"m","phase":"p","progress":140});
        assert!(check_report(ReportKind::ScanProgress, &progress).is_err());
        assert!(check_report(ReportKind::Audit, &json!({"machineId":"m","events":[{}]})).is_err());
    }
}
