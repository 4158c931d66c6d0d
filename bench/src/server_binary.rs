//! Finds (or builds) the `fleetgate` binary under test.

use std::path::PathBuf;

use anyhow::{Context, bail};

/// The given binary, or `fleetgate` beside this binary, built first with cargo (same profile)
/// so the server under test is never stale.
pub async fn locate(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path);
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("binary without a directory")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = tokio::process::Command::new(cargo);
    build.args(["build", "--quiet", "-p", "fleetgate", "--bin", "fleetgate"]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    } else {
        eprintln!(
            "warning: a debug build of the benchmarks tests a debug server; use --release for figures"
        );
    }
    let status = build.status().await.context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of the server failed: {status}");
    }
    Ok(dir.join("fleetgate"))
}
