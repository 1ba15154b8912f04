//! Attendance: one fact row per visit record (what the reports aggregate), the second
//! helpers' signed quarterly sheets (versioned, frozen once submitted), and the town
//! office's review notes on records.

use sea_orm_migration::prelude::*;

use crate::columns::{big, id, index, stamp, text};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum VisitFacts {
    Table,
    RecordId,
    OriginalId,
    HouseholdId,
    HelperId,
    Kind,
    VisitDate,
    Year,
    Month,
    PhotoCount,
    PhotosComplete,
    HouseholdSigned,
    WitnessOk,
    ClockFlag,
    PhotoReused,
    Voided,
    Superseded,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum AttendanceSheets {
    Table,
    Id,
    SecondHelperId,
    Quarter,
    Version,
    Body,
    Signature,
    DeviceId,
    SubmittedAt,
}

#[derive(DeriveIden)]
enum RecordReviews {
    Table,
    Id,
    RecordId,
    State,
    Reason,
    AccountId,
    At,
}

fn flag(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .boolean()
        .not_null()
        .default(false)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    all_or_nothing!();

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(VisitFacts::Table)
                .col(
                    ColumnDef::new(VisitFacts::RecordId)
                        .string()
                        .not_null()
                        .primary_key(),
                )
                .col(text(VisitFacts::OriginalId))
                .col(big(VisitFacts::HouseholdId))
                .col(big(VisitFacts::HelperId))
                .col(text(VisitFacts::Kind))
                .col(ColumnDef::new(VisitFacts::VisitDate).date().not_null())
                .col(ColumnDef::new(VisitFacts::Year).integer().not_null())
                .col(ColumnDef::new(VisitFacts::Month).integer().not_null())
                .col(ColumnDef::new(VisitFacts::PhotoCount).integer().not_null())
                .col(flag(VisitFacts::PhotosComplete))
                .col(flag(VisitFacts::HouseholdSigned))
                .col(flag(VisitFacts::WitnessOk))
                .col(flag(VisitFacts::ClockFlag))
                .col(flag(VisitFacts::PhotoReused))
                .col(flag(VisitFacts::Voided))
                .col(flag(VisitFacts::Superseded))
                .col(stamp(VisitFacts::ReceivedAt))
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            (
                "ix_facts_household_date",
                vec![
                    VisitFacts::HouseholdId.into_iden(),
                    VisitFacts::VisitDate.into_iden(),
                ],
            ),
            (
                "ix_facts_helper_date",
                vec![
                    VisitFacts::HelperId.into_iden(),
                    VisitFacts::VisitDate.into_iden(),
                ],
            ),
            (
                "ix_facts_original",
                vec![VisitFacts::OriginalId.into_iden()],
            ),
        ] {
            m.create_index(index(name, VisitFacts::Table, cols, false))
                .await?;
        }

        m.create_table(
            Table::create()
                .table(AttendanceSheets::Table)
                .col(id(AttendanceSheets::Id))
                .col(big(AttendanceSheets::SecondHelperId))
                .col(text(AttendanceSheets::Quarter))
                .col(
                    ColumnDef::new(AttendanceSheets::Version)
                        .integer()
                        .not_null(),
                )
                .col(ColumnDef::new(AttendanceSheets::Body).text().not_null())
                .col(text(AttendanceSheets::Signature))
                .col(big(AttendanceSheets::DeviceId))
                .col(stamp(AttendanceSheets::SubmittedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ux_sheets_helper_quarter_version",
            AttendanceSheets::Table,
            vec![
                AttendanceSheets::SecondHelperId.into_iden(),
                AttendanceSheets::Quarter.into_iden(),
                AttendanceSheets::Version.into_iden(),
            ],
            true,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(RecordReviews::Table)
                .col(id(RecordReviews::Id))
                .col(text(RecordReviews::RecordId))
                .col(text(RecordReviews::State))
                .col(ColumnDef::new(RecordReviews::Reason).string().null())
                .col(
                    ColumnDef::new(RecordReviews::AccountId)
                        .big_integer()
                        .null(),
                )
                .col(stamp(RecordReviews::At))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_reviews_record",
            RecordReviews::Table,
            vec![RecordReviews::RecordId.into_iden()],
            false,
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RecordReviews::Table.into_iden(),
            AttendanceSheets::Table.into_iden(),
            VisitFacts::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
