//! `ReportRepo`: stores the reports agents post over HTTP (scans, audit lines, security events).

use actix::{Actor, AtomicResponse, Context, Handler, Message, WrapFuture};
use chrono::Utc;
use fleetgate_entity::agent_reports;
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, NotSet, Set};

use crate::protocol::MachineId;

/// Store one report body for a machine.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), DbErr>")]
pub struct StoreReport {
    /// The authenticated reporting machine.
    pub machine_id: MachineId,
    /// `scan`, `scan_progress`, `audit` or `security_events`.
    pub kind: &'static str,
    /// The body as posted.
    pub body: serde_json::Value,
}

/// The actor owning writes to `agent_reports`.
pub struct ReportRepo {
    db: DatabaseConnection,
}

impl ReportRepo {
    /// A repository over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl Actor for ReportRepo {
    type Context = Context<Self>;
}

impl Handler<StoreReport> for ReportRepo {
    type Result = AtomicResponse<Self, Result<(), DbErr>>;

    fn handle(&mut self, report: StoreReport, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        AtomicResponse::new(Box::pin(
            async move {
                agent_reports::ActiveModel {
                    id: NotSet,
                    machine_id: Set(report.machine_id),
                    kind: Set(report.kind.to_owned()),
                    body: Set(report.body),
                    received_at: Set(Utc::now()),
                }
                .insert(&db)
                .await
                .map(|_| ())
            }
            .into_actor(self),
        ))
    }
}
