//! An index for counting an account's unfinished uploads: `uploads` by (account, status,
//! creation). Every new upload counts the ones its account holds open (at most
//! `max_unfinished_uploads`, QA s23c F9); without it that count would read every upload
//! the server ever took, one row per photo.

use sea_orm_migration::prelude::*;

use crate::columns::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The index's name (kept in one place for `down`).
const NAME: &str = "ix_uploads_account_open";

#[derive(DeriveIden)]
enum Uploads {
    Table,
    AccountId,
    Status,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    all_or_nothing!();

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let cols = [Uploads::AccountId, Uploads::Status, Uploads::CreatedAt];
        m.create_index(index(
            NAME,
            Uploads::Table,
            cols.into_iter().map(IntoIden::into_iden).collect(),
            false,
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(NAME).table(Uploads::Table).to_owned())
            .await
    }
}
