//! The first schema: every table of docs/architecture.md plus `agent_reports`.

use sea_orm_migration::prelude::*;

/// Creates the initial tables and indexes.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Machines {
    Table,
    Id,
    Name,
    Hostname,
    Ip,
    OsDistro,
    OsRelease,
    OsKernel,
    Platform,
    SecretHash,
    SecretSealed,
    Status,
    LastSeen,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Ports {
    Table,
    Id,
    MachineId,
    Port,
    Proto,
    Service,
    State,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Metrics {
    Table,
    Id,
    MachineId,
    At,
    Cpu,
    RamUsed,
    RamTotal,
    DiskUsed,
    DiskTotal,
    Uptime,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    PasswordHash,
    Role,
    Disabled,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MachineAccess {
    Table,
    UserId,
    MachineId,
    Level,
}

#[derive(DeriveIden)]
enum TerminalSessions {
    Table,
    Id,
    UserId,
    MachineId,
    StartedAt,
    EndedAt,
    BytesIn,
    BytesOut,
    CloseReason,
}

#[derive(DeriveIden)]
enum Commands {
    Table,
    Id,
    UserId,
    MachineId,
    Command,
    Status,
    ExitCode,
    StartedAt,
    FinishedAt,
    OutputBytes,
    Output,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Actor,
    Action,
    MachineId,
    Detail,
    SourceIp,
}

#[derive(DeriveIden)]
enum AgentReports {
    Table,
    Id,
    MachineId,
    Kind,
    Body,
    ReceivedAt,
}

/// A `bigint` auto-increment primary key column.
fn id_column<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

/// A UTC timestamp column.
fn timestamp<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).timestamp_with_time_zone().to_owned()
}

/// A foreign key from `table.machine_id` to `machines.id`, deleted with the machine.
fn machine_fk<T: IntoIden + 'static>(table: T, column: T) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(Machines::Table, Machines::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Machines::Table)
                    .col(ColumnDef::new(Machines::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Machines::Name).string().not_null())
                    .col(ColumnDef::new(Machines::Hostname).string().not_null())
                    .col(ColumnDef::new(Machines::Ip).string().not_null())
                    .col(ColumnDef::new(Machines::OsDistro).string())
                    .col(ColumnDef::new(Machines::OsRelease).string())
                    .col(ColumnDef::new(Machines::OsKernel).string())
                    .col(ColumnDef::new(Machines::Platform).string())
                    .col(
                        ColumnDef::new(Machines::SecretHash)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Machines::SecretSealed).string().not_null())
                    .col(ColumnDef::new(Machines::Status).string().not_null())
                    .col(timestamp(Machines::LastSeen))
                    .col(timestamp(Machines::CreatedAt).not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Ports::Table)
                    .col(id_column(Ports::Id))
                    .col(ColumnDef::new(Ports::MachineId).uuid().not_null())
                    .col(ColumnDef::new(Ports::Port).integer().not_null())
                    .col(ColumnDef::new(Ports::Proto).string().not_null())
                    .col(ColumnDef::new(Ports::Service).string())
                    .col(ColumnDef::new(Ports::State).string())
                    .col(timestamp(Ports::UpdatedAt).not_null())
                    .foreign_key(&mut machine_fk(Ports::Table, Ports::MachineId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_ports_machine_port_proto")
                    .table(Ports::Table)
                    .col(Ports::MachineId)
                    .col(Ports::Port)
                    .col(Ports::Proto)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Metrics::Table)
                    .col(id_column(Metrics::Id))
                    .col(ColumnDef::new(Metrics::MachineId).uuid().not_null())
                    .col(timestamp(Metrics::At).not_null())
                    .col(ColumnDef::new(Metrics::Cpu).double().not_null())
                    .col(ColumnDef::new(Metrics::RamUsed).double().not_null())
                    .col(ColumnDef::new(Metrics::RamTotal).double().not_null())
                    .col(ColumnDef::new(Metrics::DiskUsed).double().not_null())
                    .col(ColumnDef::new(Metrics::DiskTotal).double().not_null())
                    .col(ColumnDef::new(Metrics::Uptime).big_integer().not_null())
                    .foreign_key(&mut machine_fk(Metrics::Table, Metrics::MachineId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_metrics_machine_at")
                    .table(Metrics::Table)
                    .col(Metrics::MachineId)
                    .col(Metrics::At)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::Id).uuid().not_null().primary_key())
                    .col(
                        ColumnDef::new(Users::Username)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Users::PasswordHash).string().not_null())
                    .col(ColumnDef::new(Users::Role).string().not_null())
                    .col(
                        ColumnDef::new(Users::Disabled)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(timestamp(Users::CreatedAt).not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MachineAccess::Table)
                    .col(ColumnDef::new(MachineAccess::UserId).uuid().not_null())
                    .col(ColumnDef::new(MachineAccess::MachineId).uuid().not_null())
                    .col(ColumnDef::new(MachineAccess::Level).string().not_null())
                    .primary_key(
                        Index::create()
                            .col(MachineAccess::UserId)
                            .col(MachineAccess::MachineId)
                            .col(MachineAccess::Level),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(MachineAccess::Table, MachineAccess::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(&mut machine_fk(
                        MachineAccess::Table,
                        MachineAccess::MachineId,
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TerminalSessions::Table)
                    .col(
                        ColumnDef::new(TerminalSessions::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(TerminalSessions::UserId).uuid().not_null())
                    .col(
                        ColumnDef::new(TerminalSessions::MachineId)
                            .uuid()
                            .not_null(),
                    )
                    .col(timestamp(TerminalSessions::StartedAt).not_null())
                    .col(timestamp(TerminalSessions::EndedAt))
                    .col(
                        ColumnDef::new(TerminalSessions::BytesIn)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(TerminalSessions::BytesOut)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(TerminalSessions::CloseReason).string())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Commands::Table)
                    .col(
                        ColumnDef::new(Commands::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Commands::UserId).uuid().not_null())
                    .col(ColumnDef::new(Commands::MachineId).uuid().not_null())
                    .col(ColumnDef::new(Commands::Command).text().not_null())
                    .col(ColumnDef::new(Commands::Status).string().not_null())
                    .col(ColumnDef::new(Commands::ExitCode).integer())
                    .col(timestamp(Commands::StartedAt).not_null())
                    .col(timestamp(Commands::FinishedAt))
                    .col(
                        ColumnDef::new(Commands::OutputBytes)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(Commands::Output).text().not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(id_column(AuditLog::Id))
                    .col(timestamp(AuditLog::At).not_null())
                    .col(ColumnDef::new(AuditLog::Actor).string().not_null())
                    .col(ColumnDef::new(AuditLog::Action).string().not_null())
                    .col(ColumnDef::new(AuditLog::MachineId).uuid())
                    .col(ColumnDef::new(AuditLog::Detail).json().not_null())
                    .col(ColumnDef::new(AuditLog::SourceIp).string())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_log_at")
                    .table(AuditLog::Table)
                    .col(AuditLog::At)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AgentReports::Table)
                    .col(id_column(AgentReports::Id))
                    .col(ColumnDef::new(AgentReports::MachineId).uuid().not_null())
                    .col(ColumnDef::new(AgentReports::Kind).string().not_null())
                    .col(ColumnDef::new(AgentReports::Body).json().not_null())
                    .col(timestamp(AgentReports::ReceivedAt).not_null())
                    .foreign_key(&mut machine_fk(
                        AgentReports::Table,
                        AgentReports::MachineId,
                    ))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children first, so foreign keys never block a drop.
        for table in [
            AgentReports::Table.into_iden(),
            AuditLog::Table.into_iden(),
            Commands::Table.into_iden(),
            TerminalSessions::Table.into_iden(),
            MachineAccess::Table.into_iden(),
            Users::Table.into_iden(),
            Metrics::Table.into_iden(),
            Ports::Table.into_iden(),
            Machines::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
