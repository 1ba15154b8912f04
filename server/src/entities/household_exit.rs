//! Rows of `household_exits`: each exit an office filed, cancelled or not.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "household_exits")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub household_id: i64,
    /// The first day the household is no longer paired.
    pub effective_from: Date,
    pub reason: String,
    /// The household's status code before the exit, given back if it is cancelled.
    pub prior_status: String,
    pub filed_by: Option<i64>,
    pub filed_at: DateTimeUtc,
    pub cancelled_by: Option<i64>,
    /// Set once the exit is cancelled (before its day); the row stays as the record.
    pub cancelled_at: Option<DateTimeUtc>,
    pub cancel_reason: Option<String>,
    /// Set once the household was brought back (返贫) after this exit took effect.
    pub rejoined_by: Option<i64>,
    pub rejoined_at: Option<DateTimeUtc>,
    pub rejoin_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
