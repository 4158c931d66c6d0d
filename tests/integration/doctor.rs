//! `fleetgate doctor` and `fleetgate backup` against the data directory of a real server
//! process: a healthy installation passes; a secrets file others can read, a migration not
//! applied, or an unreachable database is named and fails; a backup of the live database is a
//! complete private SQLite file.

use std::path::Path;
use std::process::Output;

use sea_orm::{ConnectionTrait, Database};

use crate::server_process::ServerProcess;

/// Runs `fleetgate ARGS` on `data_dir` with `env`.
async fn fleetgate(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_fleetgate"));
    command
        .args(args)
        .env("FLEETGATE__STORAGE__DATA_DIR", data_dir)
        .env("FLEETGATE__AGENTS__EXPECTED", "100")
        .env("FLEETGATE__LOG__LEVEL", "error")
        .envs(env.iter().copied());
    actix_web::rt::task::spawn_blocking(move || command.output().expect("run fleetgate"))
        .await
        .expect("join")
}

/// The line doctor printed for `check`.
fn line_of<'a>(output: &'a str, check: &str) -> &'a str {
    output
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(check))
        .unwrap_or_else(|| panic!("no {check} line in:\n{output}"))
}

#[actix_web::test]
async fn doctor_passes_a_healthy_install_and_names_what_is_broken() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().expect("dir");
    let server = ServerProcess::start(data.path(), "", "").await;

    let healthy = fleetgate(data.path(), &["doctor"], &[]).await;
    let printed = String::from_utf8_lossy(&healthy.stdout).to_string();
    assert!(
        healthy.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    for check in [
        "configuration",
        "database",
        "migrations",
        "secrets",
        "tls",
        "open",
    ] {
        assert!(line_of(&printed, check).starts_with("ok"), "{printed}");
    }

    let secrets = data.path().join("secrets.env");
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let readable = fleetgate(data.path(), &["doctor"], &[]).await;
    let printed = String::from_utf8_lossy(&readable.stdout).to_string();
    assert!(!readable.status.success());
    assert!(
        line_of(&printed, "secrets").starts_with("FAIL"),
        "{printed}"
    );
    assert!(printed.contains("chmod 600"), "{printed}");
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    let url = format!(
        "sqlite://{}?mode=rw",
        data.path().join("fleetgate.db").display()
    );
    let database = Database::connect(&url).await.expect("database");
    database
        .execute_unprepared(
            "DELETE FROM seaql_migrations WHERE version = \
             (SELECT version FROM seaql_migrations ORDER BY version DESC LIMIT 1)",
        )
        .await
        .expect("forget the last migration");
    let pending = fleetgate(data.path(), &["doctor"], &[]).await;
    let printed = String::from_utf8_lossy(&pending.stdout).to_string();
    assert!(!pending.status.success());
    assert!(
        line_of(&printed, "migrations").contains("1 pending"),
        "{printed}"
    );

    let unreachable = fleetgate(
        data.path(),
        &["doctor"],
        &[(
            "FLEETGATE__DATABASE__URL",
            "postgres://postgres@127.0.0.1:1/test",
        )],
    )
    .await;
    let printed = String::from_utf8_lossy(&unreachable.stdout).to_string();
    assert!(!unreachable.status.success());
    assert!(
        line_of(&printed, "database").starts_with("FAIL"),
        "{printed}"
    );
    drop(server);
}

#[actix_web::test]
async fn backup_copies_the_live_database_into_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().expect("dir");
    let server = ServerProcess::start(data.path(), "", "").await;
    let admin = server.admin_token().await;
    let (status, _) = server
        .api(
            "POST",
            "/machines",
            Some(&admin),
            Some(serde_json::json!({"name": "backed-up"})),
        )
        .await;
    assert_eq!(status, 201);
    let copy = data.path().join("copy.db");
    let copy_arg = copy.display().to_string();
    let backup = fleetgate(data.path(), &["backup", &copy_arg], &[]).await;
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert_eq!(
        std::fs::metadata(&copy).expect("copy").permissions().mode() & 0o777,
        0o600
    );
    let again = fleetgate(data.path(), &["backup", &copy_arg], &[]).await;
    assert!(
        !again.status.success(),
        "an existing file is never overwritten"
    );

    let url = format!("sqlite://{}?mode=ro", copy.display());
    let restored = Database::connect(&url).await.expect("the copy opens");
    let row = restored
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Sqlite,
            "SELECT COUNT(*) AS n FROM machines WHERE name = 'backed-up'",
        ))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(row.try_get::<i64>("", "n").expect("n"), 1);
    drop(server);
}
