//! Withdrawing a change of helper a ledger import filed for a day still to come.
//!
//! Why: an import names the new helper from its effective day, and a mistaken one (the
//! wrong row, the wrong day) could not be undone: importing the old helper again from
//! that day is a change on the new pairing's first day, which an import refuses, and
//! from a later day it would leave the new helper paired in between (QA s29b J15). A
//! withdrawal leaves the household as it was before the import: the pairing the change
//! ended holds on, and the filed one stays on record as never holding (ended where it
//! began, as an exit leaves a pairing it cuts before its start), with the reason in the
//! audit log.

use bangfu_shared::PairingRole;
use bangfu_shared::api::{HouseholdDetail, PairingChangeCancel};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QueryTrait,
};

use super::households::in_scope;
use super::{Caller, audit, exits};
use crate::entities::{pairing, record};
use crate::error::{ApiError, ApiResult};

/// Withdraws the household's changes of helper still to come (of `cancel.role`, or of
/// both roles); see the module documentation. Only an office whose scope holds the
/// household may. A change that took effect before today is not withdrawn (its days
/// may count in attendance): the ledger files the helper again. One that took effect
/// today is, while its new helper has recorded nothing for the household.
pub async fn cancel(
    db: &DatabaseConnection,
    caller: &Caller,
    id: i64,
    cancel: &PairingChangeCancel,
) -> ApiResult<HouseholdDetail> {
    caller.require_office("withdraw a change of helper")?;
    let reason = exits::checked_reason(&cancel.reason, "keeps its helper")?;
    in_scope(db, caller, id).await?;
    let (_gate, txn) = crate::db::begin_write(db).await?;
    let row = exits::locked(&txn, id).await?;
    let filed = pending(&txn, id, cancel.role).await?;
    if filed.is_empty() {
        return Err(nothing_to_cancel(&txn, id, cancel.role).await?);
    }
    let mut withdrawn = Vec::new();
    for (new, old) in filed {
        check_unused(&txn, &new).await?;
        withdraw(&txn, &new, old.as_ref()).await?;
        if let Some(old) = &old {
            exits::check_limits(&txn, &row, new.valid_from, &[old.id]).await?;
        }
        withdrawn.push(serde_json::json!({
            "pairing_id": new.id,
            "role": new.role,
            "valid_from": new.valid_from,
            "restored_pairing_id": old.map(|o| o.id),
        }));
    }
    super::sync::bump_ledger(&txn, row.county_id).await?;
    let detail = serde_json::json!({ "withdrawn": withdrawn, "reason": reason });
    let entry = audit::Entry::new("pairing.change_cancel", "household", Some(id), detail);
    audit::record(&txn, caller, entry).await?;
    exits::answer_under_lock(db, txn, caller, id).await
}

/// The household's latest open pairing of each role (or of `role`) not yet under way,
/// with the pairing it ended: one whose first day is later than today (a change, or a
/// first pairing filed ahead), or today for a change. A first pairing that began today
/// is not one: withdrawn, the household would be left with no helper, and a withdrawal
/// sent twice would take the helper it had restored.
async fn pending(
    db: &impl ConnectionTrait,
    id: i64,
    role: Option<PairingRole>,
) -> ApiResult<Vec<(pairing::Model, Option<pairing::Model>)>> {
    let today = super::today();
    let rows = newest_first(id, role)
        .filter(pairing::Column::ValidTo.is_null())
        .filter(pairing::Column::ValidFrom.gte(today))
        .all(db)
        .await?;
    let mut latest: Vec<(pairing::Model, Option<pairing::Model>)> = Vec::new();
    for p in rows {
        if latest.iter().any(|(l, _)| l.role == p.role) {
            continue;
        }
        let old = ended_by(db, &p).await?;
        if p.valid_from > today || old.is_some() {
            latest.push((p, old));
        }
    }
    Ok(latest)
}

/// The household's pairings (of `role`, or of both), the latest filed first.
fn newest_first(id: i64, role: Option<PairingRole>) -> sea_orm::Select<pairing::Entity> {
    pairing::Entity::find()
        .filter(pairing::Column::HouseholdId.eq(id))
        .apply_if(role, |q, role| {
            q.filter(pairing::Column::Role.eq(role.code()))
        })
        .order_by_desc(pairing::Column::ValidFrom)
        .order_by_desc(pairing::Column::Id)
}

/// The pairing `new` took over from: the household's of the same role ending on its
/// first day (none for a first pairing).
async fn ended_by(
    db: &impl ConnectionTrait,
    new: &pairing::Model,
) -> ApiResult<Option<pairing::Model>> {
    Ok(pairing::Entity::find()
        .filter(pairing::Column::HouseholdId.eq(new.household_id))
        .filter(pairing::Column::Role.eq(new.role.as_str()))
        .filter(pairing::Column::ValidTo.eq(new.valid_from))
        .filter(pairing::Column::ValidFrom.lt(new.valid_from))
        .order_by_desc(pairing::Column::ValidFrom)
        .one(db)
        .await?)
}

/// Refuses withdrawing a pairing that began today once its helper has sent a record of
/// the household since it was filed: that visit was made as the household's helper.
async fn check_unused(db: &impl ConnectionTrait, new: &pairing::Model) -> ApiResult<()> {
    if new.valid_from > super::today() {
        return Ok(());
    }
    let sent = record::Entity::find()
        .filter(record::Column::HouseholdId.eq(new.household_id))
        .filter(record::Column::AuthorHelperId.eq(new.helper_id))
        .filter(record::Column::ReceivedAt.gte(new.created_at))
        .count(db)
        .await?;
    if sent > 0 {
        return Err(ApiError::Conflict(format!(
            "the change from {} has taken effect and its helper has recorded {sent} \
             visit(s) or call(s) for the household since: file the helper again through \
             the ledger, from {} or later",
            new.valid_from,
            new.valid_from.succ_opt().unwrap_or(new.valid_from)
        )));
    }
    Ok(())
}

/// Ends `new` where it began and gives `old`, the pairing it ended, back its open end.
async fn withdraw(
    db: &impl ConnectionTrait,
    new: &pairing::Model,
    old: Option<&pairing::Model>,
) -> ApiResult<()> {
    let ended = pairing::Entity::update_many()
        .col_expr(pairing::Column::ValidTo, Expr::value(Some(new.valid_from)))
        .filter(pairing::Column::Id.eq(new.id))
        .filter(pairing::Column::ValidTo.is_null())
        .exec(db)
        .await?;
    if ended.rows_affected != 1 {
        return Err(ApiError::Conflict(format!(
            "pairing {} changed while it was withdrawn: nothing was changed",
            new.id
        )));
    }
    if let Some(old) = old {
        pairing::Entity::update_many()
            .col_expr(
                pairing::Column::ValidTo,
                Expr::value(None::<chrono::NaiveDate>),
            )
            .filter(pairing::Column::Id.eq(old.id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// The refusal when nothing is filed to withdraw, saying why: the latest change has
/// taken effect, or an exit filed since ends the new pairing (cancel that first).
async fn nothing_to_cancel(
    db: &impl ConnectionTrait,
    id: i64,
    role: Option<PairingRole>,
) -> ApiResult<ApiError> {
    let latest = newest_first(id, role).one(db).await?;
    let today = super::today();
    let tomorrow = today.succ_opt().unwrap_or(today);
    Ok(ApiError::Conflict(match latest {
        Some(p) if p.valid_from > today && p.valid_to.is_some_and(|to| to > p.valid_from) => {
            format!(
                "the change from {} is ended by an exit filed since: cancel the exit first",
                p.valid_from
            )
        }
        Some(p) if p.valid_from > today && p.valid_to == Some(p.valid_from) => format!(
            "the pairing filed from {} never holds already (withdrawn, or cut by an exit \
             filed before its day, which exit/cancel withdraws): nothing is pending",
            p.valid_from
        ),
        Some(p) if p.valid_from == today && p.valid_to.is_none() => format!(
            "the household's first pairing began today ({today}): it is not a change and is \
             not withdrawn; take the household out with an exit, or import its helper from \
             {tomorrow} or later"
        ),
        Some(p) if p.valid_from < today => format!(
            "no change of helper is filed for today or later: the latest took effect on {} \
             (its days may count in attendance); file the helper again through the ledger, \
             from {tomorrow} or later",
            p.valid_from
        ),
        _ => "no change of helper is filed for today or later".into(),
    }))
}
