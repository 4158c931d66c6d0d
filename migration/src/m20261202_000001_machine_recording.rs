//! `machines.recording`: a per-machine override of `recording.mode` (`on`, `off`; null follows
//! the server's setting).

use sea_orm_migration::prelude::*;

/// Adds `machines.recording`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Machines {
    Table,
    Recording,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Machines::Table)
                    .add_column(ColumnDef::new(Machines::Recording).string().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Machines::Table)
                    .drop_column(Machines::Recording)
                    .to_owned(),
            )
            .await
    }
}
