//! Rows of `pairings`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pairings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub household_id: i64,
    pub helper_id: i64,
    pub role: String,
    pub valid_from: Date,
    /// The first day the pairing no longer holds; `None` while active.
    pub valid_to: Option<Date>,
    pub filed_on: Date,
    pub reason: Option<String>,
    pub short_notice: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Pairings that still hold after `day`: open, or ending on a later day. One ended
/// where it began (an exit filed before it started) never held, and matches for no day:
/// it takes no helper's place, puts no household in a scope and is no current pairing.
pub fn holding_after(day: Date) -> sea_orm::Condition {
    use sea_orm::sea_query::{Expr, ExprTrait};
    sea_orm::Condition::any()
        .add(Column::ValidTo.is_null())
        .add(
            sea_orm::Condition::all()
                .add(Column::ValidTo.gt(day))
                .add(Expr::col(Column::ValidTo).gt(Expr::col(Column::ValidFrom))),
        )
}

/// Pairings that hold on at least one day: open, or ending after they begin. One ended
/// where it began (an exit filed before it started, a change of helper withdrawn before
/// its day) never held: it puts no household on its helper's device or sheet and
/// enrolls no one (QA s31c T1, T2).
pub fn ever_holds() -> sea_orm::Condition {
    use sea_orm::sea_query::{Expr, ExprTrait};
    sea_orm::Condition::any()
        .add(Column::ValidTo.is_null())
        .add(Expr::col(Column::ValidTo).gt(Expr::col(Column::ValidFrom)))
}
