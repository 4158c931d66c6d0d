//! Starting the long-lived actors (repositories and the registry) and wiring them together.

use std::time::Duration;

use actix::{Actor, Addr};
use fleetgate_actors::agent_session::AgentLinks;
use fleetgate_actors::registry::{Registry, RegistryConfig};
use fleetgate_actors::repo::metric::{FlushMetrics, MetricRepoConfig};
use fleetgate_actors::repo::{MachineRepo, MetricRepo, PortRepo, ReportRepo};
use fleetgate_actors::sealing::DataKey;
use sea_orm::DatabaseConnection;

use crate::settings::Settings;

/// Addresses of the server's long-lived actors.
#[derive(Clone)]
pub struct Services {
    /// Machine identity and status.
    pub machines: Addr<MachineRepo>,
    /// Metric batches.
    pub metrics: Addr<MetricRepo>,
    /// Port sync.
    pub ports: Addr<PortRepo>,
    /// Agent HTTP reports.
    pub reports: Addr<ReportRepo>,
    /// Routing and online status.
    pub registry: Addr<Registry>,
}

impl Services {
    /// Starts every actor on the current arbiter.
    pub fn start(db: &DatabaseConnection, data_key: DataKey, settings: &Settings) -> Self {
        let machines = MachineRepo::new(db.clone(), data_key).start();
        let metrics = MetricRepo::new(db.clone(), MetricRepoConfig::default()).start();
        let ports = PortRepo::new(db.clone()).start();
        let reports = ReportRepo::new(db.clone()).start();
        let registry = Registry::new(
            RegistryConfig {
                offline_after: Duration::from_secs(settings.agents.offline_after_secs),
                sweep_every: Duration::from_secs(settings.agents.heartbeat_secs),
            },
            machines.clone().recipient(),
        )
        .start();
        Self {
            machines,
            metrics,
            ports,
            reports,
            registry,
        }
    }

    /// The recipients an agent session needs.
    pub fn agent_links(&self) -> AgentLinks {
        AgentLinks {
            authenticate: self.machines.clone().recipient(),
            touch_last_seen: self.machines.clone().recipient(),
            register: self.registry.clone().recipient(),
            unregister: self.registry.clone().recipient(),
            heartbeat_seen: self.registry.clone().recipient(),
            record_metric: self.metrics.clone().recipient(),
            sync_ports: self.ports.clone().recipient(),
        }
    }

    /// Writes everything buffered (metric batches) before shutdown.
    pub async fn flush(&self) {
        match self.metrics.send(FlushMetrics).await {
            Ok(Ok(rows)) => tracing::info!(rows, "metrics flushed"),
            Ok(Err(err)) => tracing::error!(error = %err, "final metric flush failed"),
            Err(err) => tracing::error!(error = %err, "metric repository unreachable at shutdown"),
        }
    }
}
