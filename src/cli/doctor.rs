//! `fleetgate doctor`: is this installation healthy? One line per check (configuration,
//! database and migrations, secrets file permissions, TLS certificate, clock against the
//! database, open-file limit against `agents.expected`, NATS in a cluster); exits non-zero when
//! a check fails. It changes nothing: no file is created, no migration applied.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use sea_orm_migration::MigratorTrait;

use crate::settings::{Settings, TlsSource};

/// Days before expiry from which a certificate is reported as a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;
/// Clock difference with the database from which the check fails, seconds.
const SKEW_LIMIT_SECS: i64 = 5;
/// File descriptors the process needs besides agents (database pool, operators, logs).
const BASE_FILES: u64 = 64;

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Fine.
    Ok,
    /// Works, but needs attention soon.
    Warn,
    /// Broken: the command exits non-zero.
    Fail,
}

/// One check's line.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Good or not.
    pub verdict: Verdict,
    /// What was checked.
    pub check: &'static str,
    /// What was found.
    pub detail: String,
}

fn finding(verdict: Verdict, check: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        verdict,
        check,
        detail: detail.into(),
    }
}

/// Runs every check, prints them, and fails when one failed.
pub async fn run_doctor(settings: &Settings, config_file: Option<&Path>) -> anyhow::Result<()> {
    let findings = diagnose(settings, config_file).await;
    for found in &findings {
        let mark = match found.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        };
        println!("{mark} {:<14} {}", found.check, found.detail);
    }
    let failed = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Fail)
        .count();
    if failed > 0 {
        anyhow::bail!("{failed} check(s) failed");
    }
    Ok(())
}

/// Every check's finding, in order.
pub async fn diagnose(settings: &Settings, config_file: Option<&Path>) -> Vec<Finding> {
    let source = config_file.map_or("built-in defaults and environment".to_owned(), |f| {
        f.display().to_string()
    });
    let mut findings = vec![finding(
        Verdict::Ok,
        "configuration",
        format!("valid ({source}); listening on {}", settings.server.bind),
    )];
    let database = database_findings(settings, &mut findings).await;
    findings.push(secrets_finding(&settings.storage.data_dir));
    findings.push(tls_finding(settings));
    if let Some(database) = &database {
        findings.push(clock_finding(database).await);
    }
    findings.push(open_files_finding(settings.agents.expected));
    if settings.cluster.enabled() {
        findings.push(nats_finding(settings).await);
    }
    findings
}

async fn database_findings(
    settings: &Settings,
    findings: &mut Vec<Finding>,
) -> Option<DatabaseConnection> {
    let url = settings.database_url();
    if let Some(path) = sqlite_file(&url)
        && !Path::new(path).is_file()
    {
        findings.push(finding(
            Verdict::Fail,
            "database",
            format!("{path} does not exist (the server creates it on its first start)"),
        ));
        return None;
    }
    let connect = crate::db::connect(&url, &settings.database);
    let database = match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(database)) => database,
        Ok(Err(err)) => {
            findings.push(finding(
                Verdict::Fail,
                "database",
                format!("unreachable: {err}"),
            ));
            return None;
        }
        Err(_) => {
            findings.push(finding(Verdict::Fail, "database", "no answer within 5 s"));
            return None;
        }
    };
    let kind = match database.get_database_backend() {
        DatabaseBackend::Sqlite => "SQLite",
        _ => "PostgreSQL",
    };
    findings.push(finding(
        Verdict::Ok,
        "database",
        format!("{kind} reachable"),
    ));
    findings.push(
        match fleetgate_migration::Migrator::get_pending_migrations(&database).await {
            Ok(pending) if pending.is_empty() => finding(Verdict::Ok, "migrations", "all applied"),
            Ok(pending) => finding(
                Verdict::Fail,
                "migrations",
                format!(
                    "{} pending ({}); `fleetgate migrate up` or a server start applies them",
                    pending.len(),
                    pending
                        .iter()
                        .map(|m| m.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Err(err) => finding(Verdict::Fail, "migrations", format!("cannot read: {err}")),
        },
    );
    Some(database)
}

/// The file of a `sqlite://PATH?…` URL.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://")?;
    Some(rest.split('?').next().unwrap_or(rest))
}

fn secrets_finding(data_dir: &Path) -> Finding {
    use std::os::unix::fs::PermissionsExt;
    let path = data_dir.join(crate::secrets::SECRETS_FILE);
    match std::fs::metadata(&path) {
        Err(_) => finding(
            Verdict::Fail,
            "secrets",
            format!(
                "{} missing (the server creates it on its first start)",
                path.display()
            ),
        ),
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => finding(
            Verdict::Fail,
            "secrets",
            format!(
                "{} is readable by others (mode {:o}); chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            ),
        ),
        Ok(_) => finding(
            Verdict::Ok,
            "secrets",
            format!("{} (mode 600)", path.display()),
        ),
    }
}

fn tls_finding(settings: &Settings) -> Finding {
    let (cert, key) = match settings.tls_source() {
        None => return finding(Verdict::Ok, "tls", "off (plain HTTP)"),
        Some(TlsSource::SelfSigned { dir }) => {
            let files = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
            if !files.0.is_file() {
                return finding(Verdict::Ok, "tls", "self-signed, made at the first start");
            }
            files
        }
        Some(TlsSource::Files { cert, key }) => (cert, key),
    };
    match crate::tls::inspect(&cert, &key) {
        Err(err) => finding(Verdict::Fail, "tls", format!("{err:#}")),
        Ok(info) => {
            let days = (info.not_after - Utc::now()).num_days();
            let detail = format!(
                "{} valid until {} ({days} days); SHA-256 {}",
                cert.display(),
                info.not_after.format("%Y-%m-%d"),
                info.fingerprint
            );
            let verdict = if days < 0 {
                Verdict::Fail
            } else if days < EXPIRY_WARNING_DAYS {
                Verdict::Warn
            } else {
                Verdict::Ok
            };
            finding(verdict, "tls", detail)
        }
    }
}

async fn clock_finding(database: &DatabaseConnection) -> Finding {
    if database.get_database_backend() == DatabaseBackend::Sqlite {
        return finding(Verdict::Ok, "clock", "SQLite uses this machine's clock");
    }
    let query = Statement::from_string(
        database.get_database_backend(),
        "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) AS ms",
    );
    let answer = database.query_one_raw(query).await;
    let their_ms = match answer.map(|row| row.map(|row| row.try_get::<i64>("", "ms"))) {
        Ok(Some(Ok(ms))) => ms,
        other => {
            return finding(
                Verdict::Fail,
                "clock",
                format!("cannot read the database's clock: {other:?}"),
            );
        }
    };
    let skew_ms = Utc::now().timestamp_millis() - their_ms;
    let verdict = if skew_ms.abs() > SKEW_LIMIT_SECS * 1000 {
        Verdict::Fail
    } else {
        Verdict::Ok
    };
    finding(
        verdict,
        "clock",
        format!("{skew_ms} ms from the database's clock"),
    )
}

/// The soft limit on open files of this process (`/proc/self/limits`).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

fn open_files_finding(expected: u64) -> Finding {
    let needed = expected + BASE_FILES;
    match open_file_limit() {
        None => finding(
            Verdict::Warn,
            "open files",
            "limit unknown (/proc unreadable)",
        ),
        Some(limit) if limit < needed => finding(
            Verdict::Fail,
            "open files",
            format!(
                "limit {limit} < {needed} needed for agents.expected = {expected} (one per agent \
                 + {BASE_FILES}); raise LimitNOFILE or lower agents.expected"
            ),
        ),
        Some(limit) => finding(
            Verdict::Ok,
            "open files",
            format!("limit {limit} ≥ {needed} for agents.expected = {expected}"),
        ),
    }
}

async fn nats_finding(settings: &Settings) -> Finding {
    let url = settings.cluster.nats_url_for_display();
    match tokio::time::timeout(
        Duration::from_secs(6),
        crate::cluster::connect_nats(settings),
    )
    .await
    {
        Ok(Ok(Some(client))) => {
            let jetstream = async_nats::jetstream::new(client);
            match jetstream.query_account().await {
                Ok(_) => finding(
                    Verdict::Ok,
                    "nats",
                    format!("{url} reachable, JetStream on"),
                ),
                Err(err) => finding(
                    Verdict::Fail,
                    "nats",
                    format!("{url}: JetStream unavailable: {err}"),
                ),
            }
        }
        Ok(Ok(None)) => finding(Verdict::Ok, "nats", "standalone"),
        Ok(Err(err)) => finding(Verdict::Fail, "nats", err.to_string()),
        Err(_) => finding(
            Verdict::Fail,
            "nats",
            format!("{url}: no answer within 6 s"),
        ),
    }
}
