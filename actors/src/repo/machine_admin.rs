//! Operator actions on machines (rotate a secret, delete a machine, set its recording), and a
//! machine's secret for the instance that signs towards its agent.

use actix::{AtomicResponse, Context, Handler, Message, ResponseFuture, WrapFuture};
use fleetgate_entity::machines;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::machine::{EnrolledMachine, MachineError, MachineRepo, new_secret, secret_hash};
use crate::protocol::MachineId;
use crate::protocol::agent::MachineSecret;
use crate::sealing::SealError;

/// Give a machine a new secret; the old one stops working. `None` if there is no such machine.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Option<EnrolledMachine>, MachineError>")]
pub struct RotateSecret {
    /// The machine.
    pub machine_id: MachineId,
}

/// Delete a machine and everything that hangs off it; `false` if there was none.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<bool, MachineError>")]
pub struct DeleteMachine {
    /// The machine.
    pub machine_id: MachineId,
}

/// Record a machine's terminal sessions (`Some(true)`), not (`Some(false)`), or as
/// `recording.mode` says (`None`); `false` if there is no such machine.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<bool, MachineError>")]
pub struct SetMachineRecording {
    /// The machine.
    pub machine_id: MachineId,
    /// The override.
    pub recording: Option<bool>,
}

impl Handler<SetMachineRecording> for MachineRepo {
    type Result = AtomicResponse<Self, Result<bool, MachineError>>;

    fn handle(&mut self, request: SetMachineRecording, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        let value = request
            .recording
            .map(|on| if on { "on" } else { "off" }.to_owned());
        AtomicResponse::new(Box::pin(
            async move {
                let result = machines::Entity::update_many()
                    .col_expr(machines::Column::Recording, Expr::value(value))
                    .filter(machines::Column::Id.eq(request.machine_id))
                    .exec(&db)
                    .await?;
                Ok(result.rows_affected > 0)
            }
            .into_actor(self),
        ))
    }
}

impl Handler<RotateSecret> for MachineRepo {
    type Result = AtomicResponse<Self, Result<Option<EnrolledMachine>, MachineError>>;

    fn handle(&mut self, request: RotateSecret, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        let data_key = self.data_key.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let Some(existing) = machines::Entity::find_by_id(request.machine_id)
                    .one(&db)
                    .await?
                else {
                    return Ok(None);
                };
                let secret = new_secret()?;
                let mut model: machines::ActiveModel = existing.into();
                model.secret_hash = Set(secret_hash(&secret));
                model.secret_sealed = Set(data_key.seal(secret.as_bytes())?);
                model.update(&db).await?;
                Ok(Some(EnrolledMachine {
                    id: request.machine_id,
                    secret,
                }))
            }
            .into_actor(self),
        ))
    }
}

impl Handler<DeleteMachine> for MachineRepo {
    type Result = AtomicResponse<Self, Result<bool, MachineError>>;

    fn handle(&mut self, request: DeleteMachine, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        AtomicResponse::new(Box::pin(
            async move {
                let result = machines::Entity::delete_by_id(request.machine_id)
                    .exec(&db)
                    .await?;
                Ok(result.rows_affected > 0)
            }
            .into_actor(self),
        ))
    }
}

/// A machine's secret, unsealed, for signing envelopes to an agent connected to another
/// instance (cluster mode: the operator's instance signs). `None` if there is no such machine.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Option<MachineSecret>, MachineError>")]
pub struct MachineSecretOf {
    /// The machine.
    pub machine_id: MachineId,
}

impl Handler<MachineSecretOf> for MachineRepo {
    type Result = ResponseFuture<Result<Option<MachineSecret>, MachineError>>;

    fn handle(&mut self, request: MachineSecretOf, _: &mut Context<Self>) -> Self::Result {
        let db = self.db.clone();
        let data_key = self.data_key.clone();
        Box::pin(async move {
            let Some(machine) = machines::Entity::find_by_id(request.machine_id)
                .one(&db)
                .await?
            else {
                return Ok(None);
            };
            let secret = data_key.open(&machine.secret_sealed)?;
            let secret = String::from_utf8(secret).map_err(|_| SealError::Malformed)?;
            Ok(Some(MachineSecret::new(secret)))
        })
    }
}
