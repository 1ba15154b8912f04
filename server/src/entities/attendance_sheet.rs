//! Rows of `attendance_sheets`: a second helper's signed, submitted quarterly sheet.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attendance_sheets")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub second_helper_id: i64,
    /// `2026Q1`.
    pub quarter: String,
    pub version: i64,
    /// The sheet as submitted (JSON), with the second helper's remarks.
    pub body: String,
    /// Ed25519 over the body, hex.
    pub signature: String,
    pub device_id: i64,
    pub submitted_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
