//! A covering index for the attendance count: `visit_facts` by (household, helper, visit
//! date), then every column the count reads. Reports join each pairing to its facts on
//! household and helper within the pairing's dates; with this index that join is one
//! index range per pairing, delivered in (pairing, day) order, so the distinct days are
//! grouped without a sort and without reading a table row (on the benchmark county of
//! 10,000 households the count went from 0.38 s to 0.16 s on SQLite).

use sea_orm_migration::prelude::*;

use crate::columns::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The index's name (kept in one place for `down`).
const NAME: &str = "ix_facts_pairing_day";

#[derive(DeriveIden)]
enum VisitFacts {
    Table,
    HouseholdId,
    HelperId,
    VisitDate,
    Kind,
    Year,
    Month,
    Voided,
    Superseded,
    ClockFlag,
    PhotoReused,
    PhotosComplete,
    HouseholdSigned,
    WitnessOk,
    PhotoCount,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    all_or_nothing!();

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let cols = [
            VisitFacts::HouseholdId,
            VisitFacts::HelperId,
            VisitFacts::VisitDate,
            VisitFacts::Kind,
            VisitFacts::Year,
            VisitFacts::Month,
            VisitFacts::Voided,
            VisitFacts::Superseded,
            VisitFacts::ClockFlag,
            VisitFacts::PhotoReused,
            VisitFacts::PhotosComplete,
            VisitFacts::HouseholdSigned,
            VisitFacts::WitnessOk,
            VisitFacts::PhotoCount,
        ];
        m.create_index(index(
            NAME,
            VisitFacts::Table,
            cols.into_iter().map(IntoIden::into_iden).collect(),
            false,
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(NAME).table(VisitFacts::Table).to_owned())
            .await
    }
}
