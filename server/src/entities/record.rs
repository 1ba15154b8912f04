//! Rows of `records`: signed records exactly as received, with their server state.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "records")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq_id: i64,
    /// The device's UUIDv7 for the record.
    #[sea_orm(unique)]
    pub id: String,
    /// Where the record stands in the pull feed; bumped whenever its state changes.
    pub change_seq: i64,
    pub device_id: i64,
    pub device_seq: i64,
    pub prev_sha256: String,
    pub record_sha256: String,
    pub author_helper_id: i64,
    pub account_id: i64,
    pub household_id: i64,
    pub record_type: String,
    pub target_id: Option<String>,
    pub visit_kind: Option<String>,
    pub visit_at: Option<DateTimeUtc>,
    pub created_at_device: DateTimeUtc,
    pub received_at: DateTimeUtc,
    /// `accepted` or `awaiting_photos`.
    pub status: String,
    /// Comma-separated anomaly flags.
    pub flags: String,
    /// The `SignedRecord` JSON as received.
    pub body: String,
    pub review: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
