//! Household exits as rows of their own: each exit an office files (the day, the reason,
//! who and when), and for each pairing it ended, what that pairing said before.
//!
//! Why: an exit filed for a day still to come may be a mistake (the wrong household, a
//! day that was not agreed). Without these rows it could not be withdrawn: filing it
//! overwrote the pairings' ends and reasons, and nothing said what they had been. With
//! them the office can cancel it before its day, the pairings get back exactly what
//! they said, and the filing and the cancelling both stay on record.

use sea_orm_migration::prelude::*;

use crate::columns::{big, foreign, id, index, stamp, text};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum HouseholdExits {
    Table,
    Id,
    HouseholdId,
    EffectiveFrom,
    Reason,
    PriorStatus,
    FiledBy,
    FiledAt,
    CancelledBy,
    CancelledAt,
    CancelReason,
}

#[derive(DeriveIden)]
enum HouseholdExitPairings {
    Table,
    ExitId,
    PairingId,
    PriorValidTo,
    PriorReason,
    SetValidTo,
}

#[derive(DeriveIden)]
enum Households {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Pairings {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    all_or_nothing!();

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(HouseholdExits::Table)
                .col(id(HouseholdExits::Id))
                .col(big(HouseholdExits::HouseholdId))
                .col(
                    ColumnDef::new(HouseholdExits::EffectiveFrom)
                        .date()
                        .not_null(),
                )
                .col(text(HouseholdExits::Reason))
                .col(text(HouseholdExits::PriorStatus))
                .col(ColumnDef::new(HouseholdExits::FiledBy).big_integer().null())
                .col(stamp(HouseholdExits::FiledAt))
                .col(
                    ColumnDef::new(HouseholdExits::CancelledBy)
                        .big_integer()
                        .null(),
                )
                .col(
                    ColumnDef::new(HouseholdExits::CancelledAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(ColumnDef::new(HouseholdExits::CancelReason).string().null())
                .foreign_key(&mut foreign(
                    (HouseholdExits::Table, HouseholdExits::HouseholdId),
                    (Households::Table, Households::Id),
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_household_exits_household",
            HouseholdExits::Table,
            vec![
                HouseholdExits::HouseholdId.into_iden(),
                HouseholdExits::Id.into_iden(),
            ],
            false,
        ))
        .await?;
        m.create_table(
            Table::create()
                .table(HouseholdExitPairings::Table)
                .col(big(HouseholdExitPairings::ExitId))
                .col(big(HouseholdExitPairings::PairingId))
                .col(
                    ColumnDef::new(HouseholdExitPairings::PriorValidTo)
                        .date()
                        .null(),
                )
                .col(
                    ColumnDef::new(HouseholdExitPairings::PriorReason)
                        .string()
                        .null(),
                )
                .col(
                    ColumnDef::new(HouseholdExitPairings::SetValidTo)
                        .date()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(HouseholdExitPairings::ExitId)
                        .col(HouseholdExitPairings::PairingId),
                )
                .foreign_key(&mut foreign(
                    (HouseholdExitPairings::Table, HouseholdExitPairings::ExitId),
                    (HouseholdExits::Table, HouseholdExits::Id),
                ))
                .foreign_key(&mut foreign(
                    (
                        HouseholdExitPairings::Table,
                        HouseholdExitPairings::PairingId,
                    ),
                    (Pairings::Table, Pairings::Id),
                ))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            HouseholdExitPairings::Table.into_iden(),
            HouseholdExits::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
