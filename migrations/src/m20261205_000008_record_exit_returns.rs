//! A household brought back (返贫) is recorded on the exit it ends: who brought it back,
//! when and why.
//!
//! Why: the county re-checks a sample of exits (seed 000), and an exit followed by a
//! return is the one it most needs to see. Without these columns a return was in the
//! audit log only, which no office reads, and the exit history showed the household as
//! still out of pairing.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum HouseholdExits {
    Table,
    RejoinedBy,
    RejoinedAt,
    RejoinReason,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    all_or_nothing!();

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column a statement: SQLite's ALTER TABLE adds one at a time.
        for col in [
            ColumnDef::new(HouseholdExits::RejoinedBy)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(HouseholdExits::RejoinedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(HouseholdExits::RejoinReason)
                .string()
                .null()
                .to_owned(),
        ] {
            m.alter_table(
                Table::alter()
                    .table(HouseholdExits::Table)
                    .add_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            HouseholdExits::RejoinReason,
            HouseholdExits::RejoinedAt,
            HouseholdExits::RejoinedBy,
        ] {
            m.alter_table(
                Table::alter()
                    .table(HouseholdExits::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
