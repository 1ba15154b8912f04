//! Rows of `pairings`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pairings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub household_id: i64,
    pub helper_id: i64,
    pub role: String,
    pub valid_from: Date,
    /// The first day the pairing no longer holds; `None` while active.
    pub valid_to: Option<Date>,
    pub filed_on: Date,
    pub reason: Option<String>,
    pub short_notice: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
