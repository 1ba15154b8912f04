//! An enrollment code remembers the place whose sheet printed it, a town or a county as
//! well as a village: `accounts.enrollment_village_id` becomes `enrollment_place_id`.
//!
//! Why: a town-wide sheet stored no place, the mark of a code of no known sheet, so
//! reprinting one town's sheet took back the code a helper serving two towns held from
//! the other town's sheet (QA s29a I1). Codes already stored keep what they had: a
//! village's id, or none (no known sheet).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    all_or_nothing!();

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        rename(m, "enrollment_village_id", "enrollment_place_id").await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        rename(m, "enrollment_place_id", "enrollment_village_id").await
    }
}

/// Plain SQL, the same on both backends (sea-query's `RENAME COLUMN` took the same way).
/// On a new SQLite database this runs on a connection whose copy of the schema may
/// predate the column (added by the migration before, on another of the pool's
/// connections): SQLite checks a rename against that copy and reloads it only when a
/// statement it runs finds the schema changed, as the read first does.
async fn rename(m: &SchemaManager<'_>, from: &str, to: &str) -> Result<(), DbErr> {
    let db = m.get_connection();
    db.execute_unprepared("SELECT count(*) FROM accounts")
        .await?;
    db.execute_unprepared(&format!(
        "ALTER TABLE accounts RENAME COLUMN {from} TO {to}"
    ))
    .await
    .map(|_| ())
}
