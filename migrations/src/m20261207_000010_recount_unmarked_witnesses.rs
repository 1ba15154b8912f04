//! Home visits whose household side is a witness named without a drawn mark no longer
//! meet 双签字 (`visit_facts.household_signed`): the name is one the helper typed, no
//! signature of anyone (QA s26a F4). The server now derives the fact so for every new
//! record; this brings the facts of records already stored into line, so a quarter's
//! report does not judge old and new records by two rules.
//!
//! The stored record body is the server's own serde serialisation of the record, so a
//! witness signature always opens `"household_signature":{"method":"witness"`, and only
//! a witness's mark would add an `"image_sha256":` key to a visit (photos use `sha256`;
//! a quote inside a text field is escaped, so free text cannot fake either pattern).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum VisitFacts {
    Table,
    RecordId,
    Kind,
    HouseholdSigned,
}

#[derive(DeriveIden)]
enum Records {
    Table,
    Id,
    Body,
}

/// The records whose household side is a witness without a mark.
fn unmarked_witnesses() -> SelectStatement {
    Query::select()
        .column(Records::Id)
        .from(Records::Table)
        .and_where(Expr::col(Records::Body).like(r#"%"household_signature":{"method":"witness"%"#))
        .and_where(Expr::col(Records::Body).not_like(r#"%"image_sha256":%"#))
        .to_owned()
}

/// Sets `household_signed` to `signed` on the home visits of [`unmarked_witnesses`].
async fn set_signed(m: &SchemaManager<'_>, signed: bool) -> Result<(), DbErr> {
    let update = Query::update()
        .table(VisitFacts::Table)
        .value(VisitFacts::HouseholdSigned, signed)
        .and_where(Expr::col(VisitFacts::Kind).eq("home"))
        .and_where(Expr::col(VisitFacts::RecordId).in_subquery(unmarked_witnesses()))
        .to_owned();
    m.exec_stmt(update).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    all_or_nothing!();

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        set_signed(m, false).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        set_signed(m, true).await
    }
}
