//! Versioned per-county policies (a town may override). A version applies from its date;
//! attendance for a past date is judged by the version in force then.

use bangfu_shared::Policy;
use chrono::NaiveDate;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};

use super::{Caller, audit};
use crate::entities::policy;
use crate::error::{ApiError, ApiResult};

/// One stored version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyVersion {
    pub id: i64,
    pub county_id: i64,
    /// Set for a town's override.
    pub town_id: Option<i64>,
    pub valid_from: NaiveDate,
    pub policy: Policy,
}

/// Stores a new version (never edits an old one), as an office sets it: refused from a
/// day in a quarter that has ended (see [`check_open_quarter`]).
pub async fn set(
    db: &DatabaseConnection,
    caller: &Caller,
    county_id: i64,
    town_id: Option<i64>,
    valid_from: NaiveDate,
    policy: &Policy,
) -> ApiResult<PolicyVersion> {
    check_open_quarter(db, county_id, valid_from).await?;
    store(db, caller, county_id, town_id, valid_from, policy).await
}

/// Stores a version from any day, an ended quarter included: for building a county's
/// history (the demo's past years, tests of how past quarters are judged), never for
/// an office's change, which goes through [`set`].
pub async fn backfill(
    db: &DatabaseConnection,
    caller: &Caller,
    county_id: i64,
    town_id: Option<i64>,
    valid_from: NaiveDate,
    policy: &Policy,
) -> ApiResult<PolicyVersion> {
    store(db, caller, county_id, town_id, valid_from, policy).await
}

/// Refuses a version from a day before the current quarter when the county already has
/// a policy: a quarter that has ended may already be reported, and a version dated into
/// it would rejudge it under the sheets submitted for it (windows, evidence and
/// sanctions all change), the rule household exits follow
/// ([`super::first_open_day`]). A county's first version may be dated back: no quarter
/// was judged before it, as a report needs a policy in force.
async fn check_open_quarter(
    db: &impl ConnectionTrait,
    county_id: i64,
    valid_from: NaiveDate,
) -> ApiResult<()> {
    let earliest = super::first_open_day();
    if valid_from >= earliest {
        return Ok(());
    }
    let has_policy = policy::Entity::find()
        .filter(policy::Column::CountyId.eq(county_id))
        .one(db)
        .await?
        .is_some();
    if !has_policy {
        return Ok(());
    }
    Err(ApiError::BadRequest(format!(
        "valid_from: {valid_from} is in a quarter that has ended (the current quarter \
         began {earliest}): a past quarter may already be reported, so a new policy \
         version takes effect in the current quarter or later"
    )))
}

/// Stores a new version (never edits an old one).
///
/// The version, its audit entry and the county's ledger mark are one write transaction:
/// a failure (a busy server included) leaves nothing stored, so the client's retry does
/// not add a second version, and the counter's row lock makes the ledger mark commit in
/// number order, so no device's pull cursor can pass it before the new version is
/// visible. The number is drawn last, after the insert has taken its key lock on the
/// county row (see [`super::sync::bump_ledger`] for why the order matters).
async fn store(
    db: &DatabaseConnection,
    caller: &Caller,
    county_id: i64,
    town_id: Option<i64>,
    valid_from: NaiveDate,
    policy: &Policy,
) -> ApiResult<PolicyVersion> {
    policy
        .validate()
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let body = serde_json::to_string(policy).map_err(|e| ApiError::Internal(e.to_string()))?;
    let (_gate, txn) = crate::db::begin_write(db).await?;
    let row = policy::ActiveModel {
        county_id: Set(county_id),
        town_id: Set(town_id),
        valid_from: Set(valid_from),
        source: Set(policy.source.clone()),
        body: Set(body),
        created_at: Set(super::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        caller,
        audit::Entry::new("policy.set", "policy", Some(row.id), serde_json::json!({ "county_id": county_id, "town_id": town_id, "valid_from": valid_from, "source": policy.source })),
    )
    .await?;
    let version = to_version(row)?;
    super::sync::bump_ledger(&txn, county_id).await?;
    txn.commit().await?;
    Ok(version)
}

/// The policy in force for a town (its override, else its county's) on `day`.
pub async fn effective(
    db: &impl ConnectionTrait,
    county_id: i64,
    town_id: Option<i64>,
    day: NaiveDate,
) -> ApiResult<Policy> {
    let mut places = Condition::any().add(policy::Column::TownId.is_null());
    if let Some(t) = town_id {
        places = places.add(policy::Column::TownId.eq(t));
    }
    let candidates = policy::Entity::find()
        .filter(policy::Column::CountyId.eq(county_id))
        .filter(policy::Column::ValidFrom.lte(day))
        .filter(places)
        .order_by_desc(policy::Column::ValidFrom)
        .order_by_desc(policy::Column::Id)
        .all(db)
        .await?;
    let chosen = candidates
        .iter()
        .find(|p| town_id.is_some() && p.town_id == town_id)
        .or_else(|| candidates.iter().find(|p| p.town_id.is_none()))
        .ok_or_else(|| {
            ApiError::Invalid(format!(
                "county {county_id} has no policy in force on {day}"
            ))
        })?;
    Ok(to_version(chosen.clone())?.policy)
}

/// Every version of a county's policies, oldest first.
pub async fn versions(db: &impl ConnectionTrait, county_id: i64) -> ApiResult<Vec<PolicyVersion>> {
    policy::Entity::find()
        .filter(policy::Column::CountyId.eq(county_id))
        .order_by_asc(policy::Column::ValidFrom)
        .order_by_asc(policy::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_version)
        .collect()
}

fn to_version(row: policy::Model) -> ApiResult<PolicyVersion> {
    let policy = serde_json::from_str(&row.body)
        .map_err(|e| ApiError::Internal(format!("policy {}: {e}", row.id)))?;
    Ok(PolicyVersion {
        id: row.id,
        county_id: row.county_id,
        town_id: row.town_id,
        valid_from: row.valid_from,
        policy,
    })
}
