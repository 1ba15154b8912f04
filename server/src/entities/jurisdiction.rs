//! Rows of `jurisdictions`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jurisdictions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub level: String,
    pub name: String,
    pub parent_id: Option<i64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
