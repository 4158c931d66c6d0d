//! Repository actors against a real database (SQLite, or PostgreSQL when configured).

use std::time::Duration;

use actix::Actor;
use chrono::Utc;
use fleetgate::db;
use fleetgate_actors::protocol::MachineId;
use fleetgate_actors::protocol::agent::PortReport;
use fleetgate_actors::repo::machine::{
    AuthenticateMachine, LookupSecret, MachineDetails, MachineError, SetMachineStatus,
    enroll_machine, secret_hash,
};
use fleetgate_actors::repo::metric::{FlushMetrics, MetricRepoConfig, PruneMetrics, RecordMetric};
use fleetgate_actors::repo::port::{PortSync, SyncPorts};
use fleetgate_actors::repo::{Enrollment, MachineRepo, MetricRepo, PortRepo};
use fleetgate_actors::sealing::DataKey;
use fleetgate_entity::{machines, metrics, ports};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};

use crate::support::{eventually, test_connection};

/// The data key of these tests.
pub const KEY: [u8; 32] = [9; 32];

/// A migrated database of this test's own.
pub async fn database() -> (DatabaseConnection, tempfile::TempDir) {
    let (database, dir) = test_connection().await;
    db::migrate_up(&database).await.expect("migrate");
    (database, dir)
}

fn details(hostname: &str) -> MachineDetails {
    MachineDetails {
        hostname: hostname.to_owned(),
        ip: "10.0.0.9".to_owned(),
        os_distro: Some("debian".to_owned()),
        ..MachineDetails::default()
    }
}

fn port(port: u16, proto: &str, service: &str) -> PortReport {
    PortReport {
        port,
        proto: proto.to_owned(),
        service: Some(service.to_owned()),
        state: Some("LISTEN".to_owned()),
    }
}

fn sample(machine_id: MachineId, at: chrono::DateTime<Utc>) -> RecordMetric {
    RecordMetric {
        machine_id,
        sample: fleetgate_actors::repo::metric::MetricSample {
            at,
            cpu: 1.0,
            ram_used: 2.0,
            ram_total: 4.0,
            disk_used: 10.0,
            disk_total: 100.0,
            uptime: 60,
        },
    }
}

#[actix_web::test]
async fn secret_lookup_finds_only_the_right_machine() {
    let (database, _dir) = database().await;
    let key = DataKey::from_bytes(KEY);
    let enrolled = enroll_machine(&database, &key, "m1").await.expect("enroll");
    let repo = MachineRepo::new(database.clone(), key.clone()).start();
    let found = repo
        .send(LookupSecret {
            secret: enrolled.secret.clone(),
        })
        .await
        .expect("send")
        .expect("ok");
    assert_eq!(found, Some(enrolled.id));
    let missing = repo
        .send(LookupSecret {
            secret: "00".repeat(32),
        })
        .await
        .expect("send")
        .expect("ok");
    assert_eq!(missing, None);

    let row = machines::Entity::find()
        .one(&database)
        .await
        .expect("q")
        .expect("row");
    assert_eq!(row.secret_hash, secret_hash(&enrolled.secret));
    assert_eq!(
        key.open(&row.secret_sealed).expect("opens"),
        enrolled.secret.as_bytes()
    );
}

#[actix_web::test]
async fn token_mode_refuses_unknown_secrets_and_open_mode_enrols_them() {
    let (database, _dir) = database().await;
    let repo = MachineRepo::new(database.clone(), DataKey::from_bytes(KEY)).start();
    let secret = "ef".repeat(32);
    let refused = repo
        .send(AuthenticateMachine {
            secret: secret.clone(),
            enrollment: Enrollment::Token,
            details: details("x"),
        })
        .await
        .expect("send");
    assert!(matches!(refused, Err(MachineError::UnknownSecret)));
    assert_eq!(
        machines::Entity::find()
            .count(&database)
            .await
            .expect("count"),
        0
    );

    let created = repo
        .send(AuthenticateMachine {
            secret: secret.clone(),
            enrollment: Enrollment::Open,
            details: details("x"),
        })
        .await
        .expect("send")
        .expect("enrolled");
    let again = repo
        .send(AuthenticateMachine {
            secret,
            enrollment: Enrollment::Open,
            details: details("x"),
        })
        .await
        .expect("send")
        .expect("known");
    assert_eq!(created, again);
    assert_eq!(
        machines::Entity::find()
            .count(&database)
            .await
            .expect("count"),
        1
    );
}

#[actix_web::test]
async fn register_updates_details_but_never_the_secret() {
    let (database, _dir) = database().await;
    let key = DataKey::from_bytes(KEY);
    let enrolled = enroll_machine(&database, &key, "m1").await.expect("enroll");
    let before = machines::Entity::find()
        .one(&database)
        .await
        .expect("q")
        .expect("row");
    let repo = MachineRepo::new(database.clone(), key).start();
    for enrollment in [Enrollment::Token, Enrollment::Open] {
        let id = repo
            .send(AuthenticateMachine {
                secret: enrolled.secret.clone(),
                enrollment,
                details: details("renamed"),
            })
            .await
            .expect("send")
            .expect("known");
        assert_eq!(id, enrolled.id);
    }
    let after = machines::Entity::find()
        .one(&database)
        .await
        .expect("q")
        .expect("row");
    assert_eq!(after.hostname, "renamed");
    assert_eq!(after.os_distro.as_deref(), Some("debian"));
    assert_eq!(after.secret_hash, before.secret_hash);
    assert_eq!(after.secret_sealed, before.secret_sealed);
}

#[actix_web::test]
async fn port_sync_upserts_prunes_and_skips_unchanged_sets() {
    let (database, _dir) = database().await;
    let enrolled = enroll_machine(&database, &DataKey::from_bytes(KEY), "m1")
        .await
        .expect("enroll");
    let repo = PortRepo::new(database.clone()).start();
    let sync = |ports: Vec<PortReport>| SyncPorts {
        machine_id: enrolled.id,
        ports,
    };

    let first = repo
        .send(sync(vec![port(22, "tcp", "sshd"), port(53, "udp", "dns")]))
        .await
        .expect("send")
        .expect("ok");
    assert_eq!(
        first,
        PortSync::Written {
            upserted: 2,
            deleted: 0
        }
    );

    let unchanged = repo
        .send(sync(vec![port(53, "udp", "dns"), port(22, "tcp", "sshd")]))
        .await
        .expect("send")
        .expect("ok");
    assert_eq!(
        unchanged,
        PortSync::Unchanged,
        "same set in another order writes nothing"
    );

    let changed = repo
        .send(sync(vec![
            port(22, "tcp", "openssh"),
            port(80, "tcp", "nginx"),
        ]))
        .await
        .expect("send")
        .expect("ok");
    assert_eq!(
        changed,
        PortSync::Written {
            upserted: 2,
            deleted: 1
        }
    );

    let rows = ports::Entity::find()
        .filter(ports::Column::MachineId.eq(enrolled.id.0))
        .all(&database)
        .await
        .expect("rows");
    let mut seen: Vec<(i32, String, Option<String>)> = rows
        .into_iter()
        .map(|r| (r.port, r.proto, r.service))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (22, "tcp".into(), Some("openssh".into())),
            (80, "tcp".into(), Some("nginx".into()))
        ]
    );
}

#[actix_web::test]
async fn metrics_are_batched_and_pruned() {
    let (database, _dir) = database().await;
    let enrolled = enroll_machine(&database, &DataKey::from_bytes(KEY), "m1")
        .await
        .expect("enroll");
    let config = MetricRepoConfig {
        flush_every: Duration::from_secs(3600),
        batch_rows: 5,
        ..MetricRepoConfig::default()
    };
    let repo = MetricRepo::new(database.clone(), config).start();
    let now = Utc::now();
    for _ in 0..4 {
        repo.do_send(sample(enrolled.id, now));
    }
    // Below the batch size and long before the flush interval: nothing written yet.
    let flushed = repo.send(FlushMetrics).await.expect("send").expect("ok");
    assert_eq!(flushed, 4, "an explicit flush writes the waiting rows");
    assert_eq!(repo.send(FlushMetrics).await.expect("send").expect("ok"), 0);

    for _ in 0..5 {
        repo.do_send(sample(enrolled.id, now - chrono::Duration::days(8)));
    }
    // The fifth row fills the batch, which is written without an explicit flush.
    assert_eq!(repo.send(FlushMetrics).await.expect("send").expect("ok"), 0);
    assert_eq!(
        metrics::Entity::find()
            .count(&database)
            .await
            .expect("count"),
        9
    );

    let pruned = repo
        .send(PruneMetrics {
            before: now - chrono::Duration::days(7),
        })
        .await
        .expect("send")
        .expect("ok");
    assert_eq!(pruned, 5);
    assert_eq!(
        metrics::Entity::find()
            .count(&database)
            .await
            .expect("count"),
        4
    );
}

#[actix_web::test]
async fn the_latest_sample_comes_from_memory_and_after_a_restart_from_the_table() {
    use fleetgate_actors::repo::metric::LatestMetrics;
    let (database, _dir) = database().await;
    let key = DataKey::from_bytes(KEY);
    let beating = enroll_machine(&database, &key, "beating")
        .await
        .expect("enroll")
        .id;
    let silent = enroll_machine(&database, &key, "silent")
        .await
        .expect("enroll")
        .id;
    let repo = MetricRepo::new(database.clone(), MetricRepoConfig::default()).start();
    let now = Utc::now();
    repo.do_send(sample(beating, now - chrono::Duration::seconds(5)));
    repo.do_send(sample(beating, now));
    repo.do_send(sample(beating, now - chrono::Duration::seconds(10)));
    let latest = |repo: actix::Addr<MetricRepo>| async move {
        repo.send(LatestMetrics {
            machine_ids: vec![beating, silent],
        })
        .await
        .expect("send")
        .expect("ok")
    };
    let before = latest(repo.clone()).await;
    assert_eq!(
        before.get(&beating).map(|s| s.at),
        Some(now),
        "the newest, before any flush"
    );
    assert!(!before.contains_key(&silent));

    repo.send(FlushMetrics).await.expect("send").expect("ok");
    let restarted = MetricRepo::new(database.clone(), MetricRepoConfig::default()).start();
    let after = latest(restarted).await;
    let at = after.get(&beating).map(|s| s.at.timestamp_millis());
    assert_eq!(
        at,
        Some(now.timestamp_millis()),
        "read back from the table once"
    );
    assert!(!after.contains_key(&silent));
}

#[actix_web::test]
async fn registers_arriving_together_are_checked_together_and_each_gets_its_own_answer() {
    let (database, _dir) = database().await;
    let key = DataKey::from_bytes(KEY);
    let mut fleet = Vec::new();
    for n in 0..20 {
        fleet.push(
            enroll_machine(&database, &key, &format!("m{n}"))
                .await
                .expect("enroll"),
        );
    }
    let repo = MachineRepo::new(database.clone(), key).start();
    let register = |secret: String, hostname: String, enrollment| AuthenticateMachine {
        secret,
        enrollment,
        details: details(&hostname),
    };
    // 20 machines registering twice each (one of them reporting a new hostname), 10 unknown
    // secrets, and one new secret twice under open enrolment: all at once.
    let mut asks = Vec::new();
    for machine in &fleet {
        for round in 0..2 {
            let hostname = format!("host-{}-{round}", machine.id);
            asks.push(repo.send(register(
                machine.secret.clone(),
                hostname,
                Enrollment::Token,
            )));
        }
    }
    for n in 0..10u8 {
        asks.push(repo.send(register(
            format!("{n:02x}").repeat(32),
            "stranger".into(),
            Enrollment::Token,
        )));
    }
    let newcomer = "ab".repeat(32);
    for _ in 0..2 {
        asks.push(repo.send(register(
            newcomer.clone(),
            "newcomer".into(),
            Enrollment::Open,
        )));
    }
    let answers: Vec<_> = futures_util::future::join_all(asks)
        .await
        .into_iter()
        .map(|sent| sent.expect("send"))
        .collect();
    for (machine, pair) in fleet.iter().zip(answers.chunks(2)) {
        for answer in pair {
            assert_eq!(
                answer.as_ref().ok(),
                Some(&machine.id),
                "each register gets its own machine"
            );
        }
    }
    for answer in &answers[40..50] {
        assert!(matches!(answer, Err(MachineError::UnknownSecret)));
    }
    let (first, second) = (&answers[50], &answers[51]);
    assert!(
        first.is_ok() && first.as_ref().ok() == second.as_ref().ok(),
        "one machine for one new secret"
    );
    assert_eq!(
        machines::Entity::find()
            .count(&database)
            .await
            .expect("count"),
        21
    );
    for machine in &fleet {
        let row = machines::Entity::find_by_id(machine.id.0)
            .one(&database)
            .await
            .expect("q")
            .expect("row");
        assert_eq!(
            row.hostname,
            format!("host-{}-1", machine.id),
            "the last reported details are stored"
        );
    }
}

#[actix_web::test]
async fn status_changes_arriving_together_are_written_together_and_the_last_one_wins() {
    let (database, _dir) = database().await;
    let key = DataKey::from_bytes(KEY);
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        ids.push(
            enroll_machine(&database, &key, name)
                .await
                .expect("enroll")
                .id,
        );
    }
    let repo = MachineRepo::new(database.clone(), key).start();
    let change = |machine_id: MachineId, online: bool| SetMachineStatus {
        machine_id,
        online,
        at: Utc::now(),
    };
    for (machine, online) in [
        (0, true),
        (1, true),
        (0, false),
        (2, true),
        (2, false),
        (2, true),
    ] {
        repo.do_send(change(ids[machine], online));
    }
    let stored = || {
        let database = database.clone();
        async move {
            let mut rows = machines::Entity::find().all(&database).await.expect("q");
            rows.sort_by_key(|row| row.name.clone());
            rows.iter()
                .map(|row| (row.status.clone(), row.last_seen.is_some()))
                .collect::<Vec<_>>()
        }
    };
    let expected = vec![
        ("offline".to_owned(), true),
        ("online".to_owned(), true),
        ("online".to_owned(), true),
    ];
    assert!(
        eventually(|| {
            let expected = expected.clone();
            async move { stored().await == expected }
        })
        .await,
        "each machine ends with its last status: {:?}",
        stored().await
    );
    // A later change is written after the batch before it.
    repo.do_send(change(ids[1], false));
    assert!(eventually(|| { async move { stored().await[1].0 == "offline" } }).await);
}
