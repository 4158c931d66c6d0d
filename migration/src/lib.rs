//! Schema migrations of fleetgate. A released migration is never edited: add a new one.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_tables;
mod m20261202_000001_machine_recording;

/// All migrations, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_tables::Migration),
            Box::new(m20261202_000001_machine_recording::Migration),
        ]
    }
}
