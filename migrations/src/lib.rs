//! Schema migrations for the Bangfu server, one list for SQLite and PostgreSQL alike.
//!
//! Files are named `mYYYYMMDD_NNNNNN_verb_noun.rs`, use `DeriveIden` enums rather than
//! entity types, and a shipped migration is never edited: a change is a new migration.

pub use sea_orm_migration::prelude::*;

/// In a migration's `impl MigrationTrait`: it runs in one transaction on SQLite too
/// (PostgreSQL's default), so one cut short (a full disk) leaves none of its tables,
/// which the next start would otherwise trip over for good (QA s26b F14).
macro_rules! all_or_nothing {
    () => {
        fn use_transaction(&self) -> Option<bool> {
            Some(true)
        }
    };
}

mod columns;
mod m20261122_000001_create_ledger;
mod m20261122_000002_create_sync;
mod m20261122_000003_create_attendance;
mod m20261122_000004_index_record_targets;
mod m20261201_000005_index_counted_days;
mod m20261201_000006_widen_integers;
mod m20261204_000007_create_household_exits;
mod m20261205_000008_record_exit_returns;
mod m20261206_000009_index_open_uploads;
pub mod m20261207_000010_recount_unmarked_witnesses;
mod m20261208_000011_enrollment_code_village;
mod m20261209_000012_enrollment_code_place;

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_ledger::Migration),
            Box::new(m20261122_000002_create_sync::Migration),
            Box::new(m20261122_000003_create_attendance::Migration),
            Box::new(m20261122_000004_index_record_targets::Migration),
            Box::new(m20261201_000005_index_counted_days::Migration),
            Box::new(m20261201_000006_widen_integers::Migration),
            Box::new(m20261204_000007_create_household_exits::Migration),
            Box::new(m20261205_000008_record_exit_returns::Migration),
            Box::new(m20261206_000009_index_open_uploads::Migration),
            Box::new(m20261207_000010_recount_unmarked_witnesses::Migration),
            Box::new(m20261208_000011_enrollment_code_village::Migration),
            Box::new(m20261209_000012_enrollment_code_place::Migration),
        ]
    }
}
