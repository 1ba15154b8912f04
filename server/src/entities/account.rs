//! Rows of `accounts`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub username: String,
    pub password_hash: Option<String>,
    pub role: String,
    pub scope_id: Option<i64>,
    pub helper_id: Option<i64>,
    pub enrollment_code_hash: Option<String>,
    pub enrollment_expires_at: Option<DateTimeUtc>,
    /// The place (village, town or county) whose sheet printed the code in force;
    /// [`ONE_SLIP`]: a slip printed for this helper alone, on no sheet; none: not known
    /// (printed before codes remembered their sheet).
    pub enrollment_place_id: Option<i64>,
    pub disabled: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// `enrollment_place_id` of a code printed for one helper alone (`?helper=ID`): on
/// no sheet, so no sheet's reprint takes it back. Place ids start at 1.
pub const ONE_SLIP: i64 = 0;
