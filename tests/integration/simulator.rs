//! The fleet simulator against an in-process server: 500 agents register and heartbeat.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fleetgate_agent::simulate::{FleetConfig, FleetStats, run_fleet};
use fleetgate_entity::metrics;
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::support::{enroll, spawn_app};

/// Polls `check` for up to a minute (500 agents on a 2-core debug build take a while).
async fn within_a_minute(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..600 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[actix_web::test]
async fn five_hundred_simulated_agents_register_and_heartbeat() {
    const AGENTS: usize = 500;
    let server = spawn_app().await;
    let mut keys = Vec::with_capacity(AGENTS);
    for index in 0..AGENTS {
        keys.push(enroll(&server, &format!("sim-{index}")).await.1);
    }
    let stats = Arc::new(FleetStats::default());
    let config = FleetConfig {
        heartbeat: Duration::from_secs(1),
        ..FleetConfig::new(server.ws_url("/ws/agent"))
    };
    let fleet_stats = stats.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run_fleet(config, keys, fleet_stats));
    });
    assert!(
        within_a_minute(async || stats.registered.load(Ordering::Relaxed) == AGENTS as u64).await,
        "all registered: {}",
        stats.summary()
    );
    assert_eq!(stats.failed.load(Ordering::Relaxed), 0);
    let db = server.db.clone();
    assert!(
        within_a_minute(
            async || metrics::Entity::find().count(&db).await.expect("count") >= AGENTS as u64
        )
        .await,
        "heartbeats stored: {}",
        stats.summary()
    );
    server.stop().await;
}

#[actix_web::test]
async fn simulated_agents_fail_over_to_the_next_server_when_home_is_down() {
    const AGENTS: usize = 20;
    let server = spawn_app().await;
    let mut keys = Vec::with_capacity(AGENTS);
    for index in 0..AGENTS {
        keys.push(enroll(&server, &format!("failover-{index}")).await.1);
    }
    // Home: a port nothing listens on.
    let home = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let stats = Arc::new(FleetStats::default());
    let config = FleetConfig {
        reconnect: true,
        servers: vec![format!("ws://{home}/ws/agent"), server.ws_url("/ws/agent")],
        ..FleetConfig::new("")
    };
    let fleet_stats = stats.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run_fleet(config, keys, fleet_stats));
    });
    assert!(
        within_a_minute(async || stats.registered.load(Ordering::Relaxed) == AGENTS as u64).await,
        "all registered on the second server: {}",
        stats.summary()
    );
    assert!(
        stats.failed.load(Ordering::Relaxed) >= AGENTS as u64,
        "each tried home first: {}",
        stats.summary()
    );
}
