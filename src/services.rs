//! Starting the long-lived actors (repositories and the registry) and wiring them together.

use std::time::Duration;

use actix::{Actor, Addr};
use fleetgate_actors::agent_session::AgentLinks;
use fleetgate_actors::cluster::inbound::ListenForAgents;
use fleetgate_actors::cluster::outbox::ClusterOutbox;
use fleetgate_actors::cluster::status::ListenForStatus;
use fleetgate_actors::cluster::sweep::StartSweep;
use fleetgate_actors::cluster::terminal_home::ListenForAttach;
use fleetgate_actors::cluster::view::ClusterView;
use fleetgate_actors::command::CommandLinks;
use fleetgate_actors::registry::{
    ClusterRouting, PresenceLinks, Registry, RegistryConfig, ShutdownTerminals,
};
use fleetgate_actors::repo::audit::AuditBarrier;
use fleetgate_actors::repo::metric::{FlushMetrics, MetricRepoConfig};
use fleetgate_actors::repo::session::SessionBarrier;
use fleetgate_actors::repo::{
    AccessRepo, AuditRepo, CommandRepo, MachineRepo, MetricRepo, PortRepo, QueryRepo, ReportRepo,
    SessionRepo, UserRepo,
};
use fleetgate_actors::sealing::DataKey;
use fleetgate_actors::security_events::SecurityEvents;
use fleetgate_actors::terminal::TerminalLinks;
use fleetgate_actors::user_directory::{UserDirectory, UserDirectoryLinks};
use fleetgate_actors::web_session::{WebAccess, WebLinks, WebRouting};
use sea_orm::DatabaseConnection;

use crate::cluster::Joined;
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
    /// Authorisation.
    pub access: Addr<AccessRepo>,
    /// Audit trail.
    pub audit: Addr<AuditRepo>,
    /// Terminal session history.
    pub sessions: Addr<SessionRepo>,
    /// Commands and their results.
    pub commands: Addr<CommandRepo>,
    /// Operator accounts.
    pub users: Addr<UserRepo>,
    /// Read-only API queries.
    pub queries: Addr<QueryRepo>,
    /// Routing and online status.
    pub registry: Addr<Registry>,
    /// Stored users; closes the sockets of changed users.
    pub directory: Addr<UserDirectory>,
    /// Security events, rate-limited per peer address.
    pub security: SecurityEvents,
    /// Where each machine's agent is, cluster-wide (empty standalone).
    pub cluster: ClusterView,
}

impl Services {
    /// Starts every actor on the current arbiter.
    pub fn start(
        db: &DatabaseConnection,
        data_key: DataKey,
        settings: &Settings,
        cluster: Option<Joined>,
    ) -> Self {
        let machines = MachineRepo::new(db.clone(), data_key).start();
        let metrics = MetricRepo::new(db.clone(), MetricRepoConfig::default()).start();
        let ports = PortRepo::new(db.clone()).start();
        let reports = ReportRepo::new(db.clone()).start();
        let access = AccessRepo::new(db.clone()).start();
        let audit = AuditRepo::new(db.clone()).start();
        let sessions = SessionRepo::new(db.clone()).start();
        let commands = CommandRepo::new(db.clone()).start();
        let users = UserRepo::new(db.clone()).start();
        let queries = QueryRepo::new(db.clone()).start();
        let registry = Registry::new(
            RegistryConfig {
                offline_after: Duration::from_secs(settings.agents.offline_after_secs),
                sweep_every: Duration::from_secs(settings.agents.heartbeat_secs),
            },
            machines.clone().recipient(),
        );
        let security = SecurityEvents::new(
            audit.clone().recipient(),
            settings.limits.security_events_per_minute,
        );
        let outbox = cluster
            .as_ref()
            .map(|joined| ClusterOutbox::start(joined.link.clone(), security.clone()));
        let registry = match (&cluster, &outbox) {
            (Some(Joined { bridge, view, .. }), Some(outbox)) => registry
                .with_presence(PresenceLinks {
                    connected: bridge.clone().recipient(),
                    disconnected: bridge.clone().recipient(),
                    status: bridge.clone().recipient(),
                })
                .with_cluster(ClusterRouting {
                    outbox: outbox.clone(),
                    where_is: bridge.clone().recipient(),
                    secret_of: machines.clone().recipient(),
                    view: view.clone(),
                }),
            _ => registry,
        }
        .start();
        let view = cluster
            .as_ref()
            .map_or_else(ClusterView::default, |joined| joined.view.clone());
        if let (Some(Joined { bridge, .. }), Some(outbox)) = (&cluster, outbox) {
            bridge.do_send(ListenForStatus {
                listener: registry.clone().recipient(),
                security: security.clone(),
            });
            bridge.do_send(ListenForAgents {
                registry: registry.clone().recipient(),
                security: security.clone(),
            });
            bridge.do_send(ListenForAttach {
                terminals: registry.clone().recipient(),
                outbox,
                security: security.clone(),
            });
            bridge.do_send(StartSweep {
                stored_online: queries.clone().recipient(),
                lost: registry.clone().recipient(),
                every: crate::cluster::sweep_every(settings),
            });
        }
        let directory = UserDirectory::new(
            UserDirectoryLinks {
                list: users.clone().recipient(),
                get: users.clone().recipient(),
                forget: access.clone().recipient(),
            },
            Duration::from_millis(settings.auth.user_check_ms),
        )
        .start();
        Self {
            machines,
            metrics,
            ports,
            reports,
            access,
            audit,
            sessions,
            commands,
            users,
            queries,
            registry,
            directory,
            security,
            cluster: view,
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
            terminal_output: self.registry.clone().recipient(),
            terminal_exit: self.registry.clone().recipient(),
            command_response: self.registry.clone().recipient(),
            audit: self.audit.clone().recipient(),
            security: self.security.clone(),
        }
    }

    /// The actors a web session needs.
    pub fn web_links(&self) -> WebLinks {
        WebLinks {
            routing: WebRouting {
                open_link: self.registry.clone().recipient(),
                route_terminal: self.registry.clone().recipient(),
                route_command: self.registry.clone().recipient(),
                find_terminal: self.registry.clone().recipient(),
                find_watchable: self.registry.clone().recipient(),
                subscribe_status: self.registry.clone().recipient(),
            },
            access: WebAccess {
                check: self.access.clone().recipient(),
                visible: self.access.clone().recipient(),
            },
            audit: self.audit.clone().recipient(),
            terminal: TerminalLinks {
                drop_route: self.registry.clone().recipient(),
                opened: self.sessions.clone().recipient(),
                closed: self.sessions.clone().recipient(),
                audit: self.audit.clone().recipient(),
            },
            command: CommandLinks {
                drop_route: self.registry.clone().recipient(),
                started: self.commands.clone().recipient(),
                finished: self.commands.clone().recipient(),
                progress: self.commands.clone().recipient(),
                audit: self.audit.clone().recipient(),
            },
            security: self.security.clone(),
            watch_user: self.directory.clone().recipient(),
            unwatch_user: self.directory.clone().recipient(),
            cluster: self.cluster.clone(),
        }
    }

    /// Ends every open terminal session as `server_shutdown` (before the sockets close).
    pub async fn close_terminals(&self) {
        match self.registry.send(ShutdownTerminals).await {
            Ok(open) if open > 0 => {
                tracing::info!(sessions = open, "terminal sessions closed for shutdown");
                // Let the sessions tell their owners and record their end before sockets close.
                actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Ok(_) => {}
            Err(err) => tracing::error!(error = %err, "registry unreachable at shutdown"),
        }
    }

    /// Writes everything buffered (metric batches, queued audit entries) before shutdown.
    pub async fn flush(&self) {
        if let Err(err) = self.sessions.send(SessionBarrier).await {
            tracing::error!(error = %err, "session repository unreachable at shutdown");
        }
        if let Err(err) = self.audit.send(AuditBarrier).await {
            tracing::error!(error = %err, "audit repository unreachable at shutdown");
        }
        match self.metrics.send(FlushMetrics).await {
            Ok(Ok(rows)) => tracing::info!(rows, "metrics flushed"),
            Ok(Err(err)) => tracing::error!(error = %err, "final metric flush failed"),
            Err(err) => tracing::error!(error = %err, "metric repository unreachable at shutdown"),
        }
    }
}
