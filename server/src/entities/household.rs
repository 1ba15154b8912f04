//! Rows of `households`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "households")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub county_id: i64,
    pub town_id: i64,
    pub village_id: i64,
    pub head_name: String,
    pub phone: String,
    pub address: String,
    pub size: Option<i64>,
    /// JSON array of `bangfu_shared::api::Member`.
    pub members: String,
    pub cause: String,
    pub measures: String,
    pub status: String,
    pub ledger_seq: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
