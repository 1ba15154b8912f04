//! Every integer column 64-bit: the six that were created 32-bit (a sheet's version, a
//! household's size and ledger number, a visit's year, month and photo count) become
//! `bigint` on PostgreSQL, so each integer column reads into an `i64` on both backends.
//!
//! Why: the server's SQLite writer (`db::write_txn`) decodes rows itself, by declared
//! column type, and SQLite declares every integer column `integer` whatever its width.
//! One width for all is what lets it decode exactly. SQLite needs no change: its integer
//! columns already hold 64 bits.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AttendanceSheets {
    Table,
    Version,
}

#[derive(DeriveIden)]
enum Households {
    Table,
    Size,
    LedgerSeq,
}

#[derive(DeriveIden)]
enum VisitFacts {
    Table,
    Year,
    Month,
    PhotoCount,
}

/// The columns, each with whether it may be null.
fn columns() -> Vec<(DynIden, DynIden, bool)> {
    vec![
        (
            AttendanceSheets::Table.into_iden(),
            AttendanceSheets::Version.into_iden(),
            false,
        ),
        (
            Households::Table.into_iden(),
            Households::Size.into_iden(),
            true,
        ),
        (
            Households::Table.into_iden(),
            Households::LedgerSeq.into_iden(),
            false,
        ),
        (
            VisitFacts::Table.into_iden(),
            VisitFacts::Year.into_iden(),
            false,
        ),
        (
            VisitFacts::Table.into_iden(),
            VisitFacts::Month.into_iden(),
            false,
        ),
        (
            VisitFacts::Table.into_iden(),
            VisitFacts::PhotoCount.into_iden(),
            false,
        ),
    ]
}

/// Alters every column of [`columns`] to `big` (64-bit) or back; PostgreSQL only.
async fn retype(m: &SchemaManager<'_>, big: bool) -> Result<(), DbErr> {
    if m.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    for (table, col, nullable) in columns() {
        let mut def = ColumnDef::new(col);
        if big {
            def.big_integer();
        } else {
            def.integer();
        }
        if nullable {
            def.null();
        } else {
            def.not_null();
        }
        m.alter_table(Table::alter().table(table).modify_column(def).to_owned())
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    all_or_nothing!();

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        retype(m, true).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        retype(m, false).await
    }
}
