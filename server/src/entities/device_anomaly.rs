//! Rows of `device_anomalies`: chain breaks, reused sequence numbers, clocks ahead,
//! refused records of the account's own devices.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "device_anomalies")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub device_id: i64,
    pub helper_id: i64,
    pub kind: String,
    pub device_seq: i64,
    pub detail: String,
    pub detected_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
