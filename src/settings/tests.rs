//! Settings: defaults, sources and their order, and the checks of values.

use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Environment {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Environment::with_prefix(ENV_PREFIX)
        .separator("__")
        .source(Some(map))
}

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("tempfile");
    std::io::Write::write_all(&mut file, text.as_bytes()).expect("write");
    file
}

#[test]
fn defaults_match_the_documented_contract() {
    let settings = Settings::defaults().expect("defaults");
    assert_eq!(settings.server.bind.to_string(), "127.0.0.1:7070");
    assert_eq!(settings.storage.data_dir, PathBuf::from("./data"));
    assert_eq!(
        settings.database_url(),
        "sqlite://./data/fleetgate.db?mode=rwc"
    );
    assert_eq!(settings.auth.jwt_issuer, "fleetgate");
    assert_eq!(settings.auth.jwt_audience, "fleetgate-clients");
    assert_eq!(settings.auth.jwt_ttl_secs, 3600);
    assert_eq!(settings.agents.enrollment, Enrollment::Token);
    assert_eq!(settings.agents.offline_after_secs, 15);
    assert_eq!(settings.limits.agent_frame_bytes, 1 << 20);
    assert_eq!(settings.limits.web_frame_bytes, 64 << 10);
}

#[test]
fn file_overrides_defaults_and_environment_overrides_file() {
    let file = file_with(
        "[server]\nbind = \"0.0.0.0:8080\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n",
    );
    let from_file = Settings::load_from(Some(file.path()), env(&[])).expect("file");
    assert_eq!(from_file.server.bind.to_string(), "0.0.0.0:8080");
    assert_eq!(from_file.log.format, LogFormat::Json);

    let both = Settings::load_from(
        Some(file.path()),
        env(&[
            ("FLEETGATE__SERVER__BIND", "127.0.0.1:9090"),
            ("FLEETGATE__AGENTS__ENROLLMENT", "open"),
        ]),
    )
    .expect("env");
    assert_eq!(both.server.bind.to_string(), "127.0.0.1:9090");
    assert_eq!(both.agents.enrollment, Enrollment::Open);
    assert_eq!(
        both.log.level, "debug",
        "keys the environment leaves alone come from the file"
    );
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        ("FLEETGATE__SERVER__BIND", "not-an-address", "server.bind"),
        ("FLEETGATE__LOG__FORMAT", "xml", "log.format"),
        (
            "FLEETGATE__AGENTS__HEARTBEAT_SECS",
            "-5",
            "agents.heartbeat_secs",
        ),
        (
            "FLEETGATE__AGENTS__OFFLINE_AFTER_SECS",
            "0",
            "agents.offline_after_secs",
        ),
        (
            "FLEETGATE__AGENTS__ENROLLMENT",
            "maybe",
            "agents.enrollment",
        ),
        ("FLEETGATE__LOG__LEVEL", "info,=[", "log.level"),
    ];
    for (var, value, key) in cases {
        let err = Settings::load_from(None, env(&[(var, value)])).expect_err(var);
        assert!(err.to_string().contains(key), "{var}={value}: {err}");
    }
}

#[test]
fn cluster_mode_needs_postgresql_and_subject_safe_names() {
    let standalone = Settings::load_from(None, env(&[])).expect("defaults");
    assert!(!standalone.cluster.enabled());
    let nats = ("FLEETGATE__CLUSTER__NATS_URL", "nats://127.0.0.1:4222");
    let err = Settings::load_from(None, env(&[nats])).expect_err("SQLite in a cluster");
    assert!(
        err.to_string().contains("database.url") && err.to_string().contains("SQLite"),
        "{err}"
    );
    let postgres = (
        "FLEETGATE__DATABASE__URL",
        "postgres://postgres@127.0.0.1/test",
    );
    let cluster = Settings::load_from(None, env(&[nats, postgres])).expect("cluster");
    assert!(cluster.cluster.enabled());
    let err = Settings::load_from(
        None,
        env(&[nats, postgres, ("FLEETGATE__CLUSTER__REGION", "eu.west")]),
    )
    .expect_err("a dot would split the subject");
    assert!(err.to_string().contains("cluster.region"), "{err}");
    let err = Settings::load_from(
        None,
        env(&[("FLEETGATE__CLUSTER__NATS_URL", "http://x"), postgres]),
    )
    .expect_err("not a NATS URL");
    assert!(err.to_string().contains("cluster.nats_url"), "{err}");

    let remote = ("FLEETGATE__CLUSTER__NATS_URL", "nats://10.0.0.5:4222");
    let err = Settings::load_from(None, env(&[remote, postgres])).expect_err("plain remote");
    assert!(
        err.to_string().contains("cluster.nats_tls_ca_file"),
        "{err}"
    );
    let ca = (
        "FLEETGATE__CLUSTER__NATS_TLS_CA_FILE",
        "/etc/fleetgate/nats-ca.pem",
    );
    let err = Settings::load_from(None, env(&[remote, postgres, ca])).expect_err("no creds");
    assert!(
        err.to_string().contains("cluster.nats_credentials_file"),
        "{err}"
    );
    let in_url = ("FLEETGATE__CLUSTER__NATS_URL", "tls://fra:pw@10.0.0.5:4222");
    assert!(
        Settings::load_from(None, env(&[in_url, postgres])).is_ok(),
        "user:password@"
    );
    let creds = (
        "FLEETGATE__CLUSTER__NATS_CREDENTIALS_FILE",
        "/etc/fleetgate/fra.creds",
    );
    let secured = Settings::load_from(None, env(&[remote, postgres, ca, creds]));
    assert!(secured.expect("TLS and credentials").cluster.requires_tls());
}

#[test]
fn unknown_keys_in_a_file_are_refused() {
    let file = file_with("[server]\nbindd = \"0.0.0.0:8080\"\n");
    let err = Settings::load_from(Some(file.path()), env(&[])).expect_err("typo");
    assert!(err.to_string().contains("bindd"), "{err}");
}

#[test]
fn a_missing_config_file_is_an_error() {
    let missing = Path::new("/nonexistent/fleetgate.toml");
    assert!(Settings::load_from(Some(missing), env(&[])).is_err());
}
