//! Rows of `household_exit_pairings`: what a pairing said before an exit ended it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "household_exit_pairings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub exit_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub pairing_id: i64,
    /// The pairing's end before the exit (`None`: it was open).
    pub prior_valid_to: Option<Date>,
    pub prior_reason: Option<String>,
    /// The end the exit gave it: a cancel restores the prior state only while the
    /// pairing still ends there (nothing else has changed it since).
    pub set_valid_to: Date,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
