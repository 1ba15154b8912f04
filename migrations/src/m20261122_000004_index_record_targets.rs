//! An index on `records.target_id`: every pushed visit asks whether a void targets it,
//! and without the index that question scanned the whole table (pushes slowed as the
//! table grew).

use sea_orm_migration::prelude::*;

use crate::columns::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Records {
    Table,
    TargetId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    all_or_nothing!();

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index(
            "ix_records_target",
            Records::Table,
            vec![Records::TargetId.into_iden()],
            false,
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_records_target")
                .table(Records::Table)
                .to_owned(),
        )
        .await
    }
}
