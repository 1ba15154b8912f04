//! Rows of `visit_facts`: what attendance needs to know about one visit record, kept
//! current as records, amendments, voids and photos arrive, so reports aggregate in SQL.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "visit_facts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub record_id: String,
    /// The visit this record is (itself, or the original an amendment corrects).
    pub original_id: String,
    pub household_id: i64,
    pub helper_id: i64,
    pub kind: String,
    /// The visit's date in China time.
    pub visit_date: Date,
    pub year: i64,
    pub month: i64,
    pub photo_count: i64,
    pub photos_complete: bool,
    pub household_signed: bool,
    pub witness_ok: bool,
    pub clock_flag: bool,
    pub photo_reused: bool,
    pub voided: bool,
    /// A later amendment replaces this one.
    pub superseded: bool,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
