//! Rows of `record_reviews`: the town office's notes on records ("has issues"), and the
//! helper's answer (an amendment returns the record to review).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "record_reviews")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub record_id: String,
    /// `has_issues`, `resubmitted`, or `withdrawn` (the office took its mark back).
    pub state: String,
    pub reason: Option<String>,
    pub account_id: Option<i64>,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
