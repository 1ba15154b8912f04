//! The village whose sheet printed an account's enrollment code (none for a town-wide or
//! command-line sheet).
//!
//! Why: a lost village sheet is reprinted with `reissue=true`. Without knowing where
//! each code was printed, the reprint reissued every helper of the village, and so
//! cancelled the codes of helpers whose households span villages and whose codes were on
//! another village's sheet (QA s28c G1).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    EnrollmentVillageId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    all_or_nothing!();

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Accounts::Table)
                .add_column(
                    ColumnDef::new(Accounts::EnrollmentVillageId)
                        .big_integer()
                        .null()
                        .to_owned(),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // A read first: on SQLite this may run on a pool connection whose copy of the
        // schema predates the column's rename back by the next migration's `down`
        // (on another connection); a statement that finds the schema changed reloads it.
        m.get_connection()
            .execute_unprepared("SELECT count(*) FROM accounts")
            .await?;
        m.alter_table(
            Table::alter()
                .table(Accounts::Table)
                .drop_column(Accounts::EnrollmentVillageId)
                .to_owned(),
        )
        .await
    }
}
