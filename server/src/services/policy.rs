//! Versioned per-county policies (a town may override). A version applies from its date;
//! attendance for a past date is judged by the version in force then.

use bangfu_shared::Policy;
use bangfu_shared::policy::{EvidenceSince, ExitCutsSince, VisitsSince};
use chrono::NaiveDate;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};

use super::{Caller, audit};
use crate::entities::policy;
use crate::error::{ApiError, ApiResult};

/// A policy as an office sends it (a request body's `policy`, a `--file`): parsed, and
/// refused when it holds a key the policy does not have, naming where (`prefix` is
/// where the policy sits in what was sent). Why: every field has a default, so a
/// misspelt one (`min_days_hold`) would otherwise be dropped and the default stored,
/// silently changing who answers for a window.
pub fn parse(value: serde_json::Value, prefix: &str) -> ApiResult<Policy> {
    let parsed: Policy = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        // The policy itself is the path `.`: named by the prefix alone (`policy`).
        let path = e.path().to_string();
        let at = match path.as_str() {
            "." => prefix.trim_end_matches('.').to_string(),
            _ => format!("{prefix}{path}"),
        };
        let at = if at.is_empty() { "the top level" } else { &at };
        ApiError::BadRequest(format!("invalid policy at `{at}`: {}", e.inner()))
    })?;
    let known = serde_json::to_value(&parsed)
        .map_err(|e| ApiError::Internal(format!("policy to JSON: {e}")))?;
    if let Some((at, key, expected)) = unknown_key(&value, &known, prefix.trim_end_matches('.')) {
        let at = if at.is_empty() {
            String::new()
        } else {
            format!(" in `{at}`")
        };
        return Err(ApiError::BadRequest(format!(
            "invalid policy: unknown field `{key}`{at}, expected one of {expected}"
        )));
    }
    Ok(parsed)
}

/// The first key of `input` that `known` (the same policy as parsed and written back,
/// every field present) does not have: where, the key, and the keys expected there.
fn unknown_key(
    input: &serde_json::Value,
    known: &serde_json::Value,
    at: &str,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    let join = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match (input, known) {
        (Value::Object(given), Value::Object(fields)) => {
            given.iter().find_map(|(k, v)| match fields.get(k) {
                Some(field) => unknown_key(v, field, &join(k)),
                None => {
                    let expected: Vec<String> = fields.keys().map(|f| format!("`{f}`")).collect();
                    Some((at.to_string(), k.clone(), expected.join(", ")))
                }
            })
        }
        (Value::Array(given), Value::Array(items)) => given
            .iter()
            .zip(items)
            .enumerate()
            .find_map(|(i, (v, item))| unknown_key(v, item, &format!("{at}[{i}]"))),
        _ => None,
    }
}

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

/// A version an office has just set, with what it should know the version does beyond
/// its own text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicySet {
    #[serde(flatten)]
    pub version: PolicyVersion,
    /// 说明 in Chinese, for the office: the version rejudges visits and windows already
    /// past, replaces a version of the same day, or does not reach towns with their own
    /// policy. Empty when none applies.
    pub notices: Vec<String>,
}

/// Stores a new version (never edits an old one), as an office sets it: refused from a
/// day in a quarter that has ended (see [`check_open_quarter`]); dated back within the
/// current quarter it is stored with a notice of what it rejudges (see [`notices`]).
pub async fn set(
    db: &DatabaseConnection,
    caller: &Caller,
    county_id: i64,
    town_id: Option<i64>,
    valid_from: NaiveDate,
    policy: &Policy,
) -> ApiResult<PolicySet> {
    check_open_quarter(db, county_id, valid_from).await?;
    let before = versions(db, county_id).await?;
    let version = store(db, caller, county_id, town_id, valid_from, policy).await?;
    let notices = notices(db, &before, &version, super::today()).await?;
    Ok(PolicySet { version, notices })
}

/// What a new version does that its office may not expect, judged against the versions
/// stored `before` it. Why: attendance and evidence are judged by the version in force
/// on each window's first day and each visit's day, so a version dated back silently
/// rejudges what the office may already have reported (s21c N2); two versions of one
/// day stack and the last set wins; and a town's override stays in force over every
/// later county version (s21c N5).
async fn notices(
    db: &impl ConnectionTrait,
    before: &[PolicyVersion],
    new: &PolicyVersion,
    today: NaiveDate,
) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    if !before.is_empty() {
        out.extend(rejudges(new.valid_from, today));
    }
    if before
        .iter()
        .any(|v| v.town_id == new.town_id && v.valid_from == new.valid_from)
    {
        out.push(format!(
            "{}已有同级政策版本：本版本取代之（同一天的版本以最后设定的为准）",
            new.valid_from
        ));
    }
    match new.town_id {
        None => {
            let mut first: std::collections::BTreeMap<i64, NaiveDate> = Default::default();
            for v in before {
                if let Some(t) = v.town_id {
                    let day = first.entry(t).or_insert(v.valid_from);
                    *day = (*day).min(v.valid_from);
                }
            }
            let mut towns = Vec::new();
            for (town, from) in first {
                let name = super::jurisdictions::get(db, town).await?.name;
                towns.push(format!("{name}（{}起）", from.max(new.valid_from)));
            }
            if !towns.is_empty() {
                out.push(format!(
                    "以下乡镇有本乡镇的政策，在其生效后不适用本版本（问责标准除外：问责名单按县（市）政策）：{}",
                    towns.join("、")
                ));
            }
        }
        Some(town) if !before.iter().any(|v| v.town_id == Some(town)) => {
            out.push(format!(
                "本乡镇自{}起按本乡镇的政策判定，县（市）此后设定的政策版本不再适用于本乡镇",
                new.valid_from
            ));
        }
        Some(_) => {}
    }
    out.extend(town_sanctions_unused(before, new));
    Ok(out)
}

/// For a town's version whose `sanctions` differ from those of the county's version in
/// force on its day: they are not used. Sanctions are the county's (a unit's
/// person-times add up across towns, and one ladder judges every helper of the county),
/// so the reports apply the county's, and the office hears so rather than seeing its
/// thresholds ignored (QA s23b F6).
fn town_sanctions_unused(before: &[PolicyVersion], new: &PolicyVersion) -> Option<String> {
    new.town_id?;
    let county = before
        .iter()
        .filter(|v| v.town_id.is_none() && v.valid_from <= new.valid_from)
        .max_by_key(|v| (v.valid_from, v.id))?;
    (county.policy.sanctions != new.policy.sanctions).then(|| {
        "本版本的问责标准（sanctions）不适用：问责名单按县（市）政策的问责标准判定".to_string()
    })
}

/// The notice for a version dated before `today`: visits since its day are judged by
/// its evidence, and windows from its day on by its visits, those already ended (before
/// the current month) included.
fn rejudges(valid_from: NaiveDate, today: NaiveDate) -> Option<String> {
    if valid_from >= today {
        return None;
    }
    let month = bangfu_shared::policy::window_of(today, 1).0;
    let ended = if valid_from < month {
        format!(
            "，其中{valid_from}至{}已结束的考勤周期可能改判，已报送的考勤表可能需重新报送",
            month.pred_opt().unwrap_or(month)
        )
    } else {
        String::new()
    };
    Some(format!(
        "生效日期{valid_from}早于今天（{today}）：此后已有的帮扶记录和考勤周期按本版本重新判定{ended}"
    ))
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
                "no policy is in force on {day}: the county's policies apply from a later \
                 day (a date before them cannot be judged; see GET /api/v1/policies)"
            ))
        })?;
    Ok(to_version(chosen.clone())?.policy)
}

/// A town's policy over time (its overrides, else the county's), as a device judges by
/// it: each part a step wherever it changes, oldest first.
#[derive(Debug, Default)]
pub struct History {
    /// The home-visit evidence: each visit is judged by the one in force on its date,
    /// as [`effective`] chooses.
    pub evidence: Vec<EvidenceSince>,
    /// The `exit_cuts`: each window by the one in force on its first day.
    pub exit_cuts: Vec<ExitCutsSince>,
    /// The visits asked: each window by the version in force on its first day (or last,
    /// on a change of cadence: [`bangfu_shared::policy::asked_in`]).
    pub visits: Vec<VisitsSince>,
}

/// The [`History`] of a town's policy (the county's where `town_id` is none).
pub async fn history(
    db: &impl ConnectionTrait,
    county_id: i64,
    town_id: Option<i64>,
) -> ApiResult<History> {
    let all = versions(db, county_id).await?;
    let in_force = in_force_steps(&all, town_id);
    let evidence = steps(&in_force, |p| p.evidence.clone())
        .into_iter()
        .map(|(from, evidence)| EvidenceSince { from, evidence })
        .collect();
    let exit_cuts = steps(&in_force, |p| p.exit_cuts)
        .into_iter()
        .map(|(from, exit_cuts)| ExitCutsSince { from, exit_cuts })
        .collect();
    let visits = steps(&in_force, |p| p.visits.clone())
        .into_iter()
        .map(|(from, visits)| VisitsSince { from, visits })
        .collect();
    Ok(History {
        evidence,
        exit_cuts,
        visits,
    })
}

/// Each day a version of the town's (or the county's) begins, oldest first, with the
/// policy in force from that day: the town's newest override, else the county's.
fn in_force_steps(all: &[PolicyVersion], town_id: Option<i64>) -> Vec<(NaiveDate, &Policy)> {
    let relevant: Vec<&PolicyVersion> = all
        .iter()
        .filter(|v| v.town_id.is_none() || v.town_id == town_id)
        .collect();
    relevant
        .iter()
        .filter_map(|v| {
            let day = v.valid_from;
            let in_force = || relevant.iter().filter(move |v| v.valid_from <= day);
            // Oldest first by (valid_from, id): the last in force is the newest.
            let chosen = in_force()
                .rfind(|v| town_id.is_some() && v.town_id == town_id)
                .or_else(|| in_force().rfind(|v| v.town_id.is_none()))?;
            Some((day, &chosen.policy))
        })
        .collect()
}

/// What `pick` takes of each step, a step only where it changes (the last version of a
/// day wins).
fn steps<T: PartialEq>(
    in_force: &[(NaiveDate, &Policy)],
    pick: impl Fn(&Policy) -> T,
) -> Vec<(NaiveDate, T)> {
    let mut out: Vec<(NaiveDate, T)> = Vec::new();
    for (day, policy) in in_force {
        if out.last().is_some_and(|(from, _)| from == day) {
            out.pop();
        }
        let value = pick(policy);
        if out.last().map(|(_, v)| v) != Some(&value) {
            out.push((*day, value));
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    #[test]
    fn a_version_dated_back_says_what_it_rejudges() {
        assert_eq!(rejudges(day(12, 5), day(12, 5)), None, "from today");
        assert_eq!(rejudges(day(12, 20), day(12, 5)), None, "from a later day");
        let this_month = rejudges(day(12, 2), day(12, 5)).unwrap();
        assert!(this_month.contains("2026-12-02早于今天"), "{this_month}");
        assert!(!this_month.contains("已结束"), "{this_month}");
        let back = rejudges(day(10, 1), day(12, 5)).unwrap();
        assert!(
            back.contains("2026-10-01至2026-11-30已结束的考勤周期") && back.contains("重新报送"),
            "{back}"
        );
    }

    #[test]
    fn a_policy_with_a_misspelt_key_is_refused_naming_it() {
        let mut v =
            serde_json::to_value(bangfu_shared::PolicyPreset::Laizhou2018.policy()).unwrap();
        v["exit_cuts"] = serde_json::json!({ "min_days_hold": 30 });
        let e = parse(v.clone(), "policy.").unwrap_err().to_string();
        assert!(
            e.contains("`min_days_hold`") && e.contains("`policy.exit_cuts`"),
            "{e}"
        );
        assert!(e.contains("`min_days_held`"), "{e}");
        v["exit_cuts"] = serde_json::json!({ "min_days_held": 30 });
        v["visits"][1]["windows"] = serde_json::json!(2);
        let e = parse(v.clone(), "").unwrap_err().to_string();
        assert!(e.contains("`windows`") && e.contains("`visits[1]`"), "{e}");
        v["visits"][1].as_object_mut().unwrap().remove("windows");
        v["sanction"] = serde_json::json!({});
        assert!(
            parse(v.clone(), "")
                .unwrap_err()
                .to_string()
                .contains("`sanction`")
        );
        v.as_object_mut().unwrap().remove("sanction");
        v.as_object_mut().unwrap().remove("sanctions");
        let p = parse(v, "").unwrap();
        assert_eq!(
            p.exit_cuts.min_days_held, 30,
            "left-out fields take their defaults"
        );
        let e = parse(serde_json::json!({"source": 1}), "policy.")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`policy.source`"), "{e}");
        let e = parse(serde_json::json!("x"), "policy.")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at `policy`:"), "the policy itself: {e}");
    }
}
