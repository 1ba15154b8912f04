//! Scoped reads of households and their pairing history, and the offline snapshot a
//! helper's device downloads.

use bangfu_shared::api::{HouseholdDetail, HouseholdSummary, Member, Page, PairingDto, Snapshot};
use bangfu_shared::{HouseholdStatus, PairingRole};
use chrono::NaiveDate;
use sea_orm::sea_query::{BinOper, Expr, Func};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use std::collections::HashMap;

use super::{Caller, auth, jurisdictions, policy};
use crate::entities::{helper, household, pairing};
use crate::error::{ApiError, ApiResult};

/// Filters of the household list.
#[derive(Debug, Clone, Default)]
pub struct HouseholdFilter {
    pub town: Option<i64>,
    pub village: Option<i64>,
    /// Part of the head of household's name, as literal text, ASCII case ignored
    /// (see `name_contains`).
    pub q: Option<String>,
    /// Only households of this status on today (see [`super::exits::status_is`]).
    pub status: Option<HouseholdStatus>,
    /// A pass by cursor: `0` for its first page, then the `next` of the page before.
    /// Such a pass goes in id order (the order households were created), which no
    /// import changes, so it neither repeats nor skips a household whatever is added,
    /// removed or renumbered meanwhile (`page` is then ignored). By offset, a pass while
    /// a town imported repeated 30 households and skipped 30 (QA s27a F7); by the
    /// ledger's order, an import renumbering 序号 did the same (QA s28a F3).
    pub after: Option<String>,
}

/// The households after the cursor `after` (the id of the page before's last one).
fn after_id(after: &str) -> ApiResult<i64> {
    after.parse::<i64>().map_err(|_| {
        ApiError::BadRequest(format!(
            "after: not a cursor from this list: {after} (a pass by cursor starts at after=0)"
        ))
    })
}

/// Largest page a client may ask for.
pub const MAX_PER_PAGE: u64 = 500;

/// A page of the households the caller may see.
pub async fn list(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: &HouseholdFilter,
    page: u64,
    per_page: u64,
) -> ApiResult<Page<HouseholdSummary>> {
    // A size out of range is a mistake to say, not a value to guess: per_page=0 read as 1
    // gave a page of one household to a client that asked for none, and 100000 read as
    // 500 left a client that takes one page for the whole list missing the rest. One
    // rule, as the audit log's `limit` (QA s23 F4).
    if page == 0 {
        return Err(ApiError::BadRequest(
            "page: pages count from 1, got 0".into(),
        ));
    }
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::BadRequest(format!(
            "per_page: 1 to {MAX_PER_PAGE} households a page, got {per_page}"
        )));
    }
    // The query string is the client's: a page whose first row lies past what the
    // database's 64-bit OFFSET holds is refused rather than overflowing (a panic in the
    // query builder, not an empty page).
    let offset = (page - 1)
        .checked_mul(per_page)
        .filter(|o| i64::try_from(*o).is_ok())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "page is too large (at most {} with per_page={per_page})",
                max_page(per_page)
            ))
        })?;
    let mut cond = caller.scope().households();
    if let Some(t) = filter.town {
        // An office's town outside its scope is not found, as in every office list: an
        // empty page would read as "no households" for a mistyped id.
        if !caller.role.is_helper() {
            jurisdictions::town_in_scope(db, caller, t).await?;
        }
        cond = cond.add(household::Column::TownId.eq(t));
    }
    if let Some(v) = filter.village {
        // As for the town: a village outside an office's scope (or none) is not found,
        // not an empty page.
        if !caller.role.is_helper() {
            jurisdictions::village_in_scope(db, caller, v).await?;
        }
        cond = cond.add(household::Column::VillageId.eq(v));
    }
    if let Some(status) = filter.status {
        cond = cond.add(super::exits::status_is(status, super::today()));
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        if q.chars().any(char::is_control) {
            return Err(ApiError::BadRequest(
                "q: the search holds a control character".into(),
            ));
        }
        cond = cond.add(name_contains(q));
    }
    let query = household::Entity::find().filter(cond);
    let total = query.clone().count(db).await?;
    // Pages by number go in the ledger's order (town, 序号), as the office reads it; a
    // pass by cursor in id order (see `HouseholdFilter::after`).
    let query = match filter.after.as_deref() {
        Some(after) => query
            .filter(household::Column::Id.gt(after_id(after)?))
            .order_by_asc(household::Column::Id),
        None => query
            .order_by_asc(household::Column::TownId)
            .order_by_asc(household::Column::LedgerSeq)
            .order_by_asc(household::Column::Id)
            .offset(offset),
    };
    let rows = query.limit(per_page).all(db).await?;
    let next = rows
        .last()
        .filter(|_| filter.after.is_some() && rows.len() as u64 == per_page)
        .map(|h| h.id.to_string());
    let items = summaries(db, &rows).await?;
    Ok(Page {
        items,
        page,
        per_page,
        total,
        next,
    })
}

/// The escape character of [`name_contains`]'s LIKE pattern.
const LIKE_ESCAPE: char = '\\';

/// `q` as the literal text of a LIKE pattern: its `%`, `_` and escape character each
/// escaped, so a search for `%` finds names holding a `%` instead of every name.
fn like_literal(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    for c in q.chars() {
        if matches!(c, '%' | '_') || c == LIKE_ESCAPE {
            out.push(LIKE_ESCAPE);
        }
        out.push(c);
    }
    out
}

/// Head of household's name holds `q`, as literal text, ignoring case the same way on
/// both backends: `lower()` on both sides (SQLite's LIKE ignores ASCII case on its own,
/// PostgreSQL's does not), with an explicit ESCAPE (PostgreSQL escapes with `\` by
/// default, SQLite with nothing). Only ASCII case is sure to be ignored alike: SQLite's
/// `lower()` leaves other letters as they are.
fn name_contains(q: &str) -> Expr {
    // In scope here only: its `max` and `min` would shadow `Ord`'s on integers.
    use sea_orm::sea_query::ExprTrait;
    let pattern = Expr::Binary(
        Box::new(Func::lower(Expr::val(format!("%{}%", like_literal(q)))).into()),
        BinOper::Escape,
        Box::new(Expr::Constant(LIKE_ESCAPE.into())),
    );
    Expr::expr(Func::lower(Expr::col((
        household::Entity,
        household::Column::HeadName,
    ))))
    .binary(BinOper::Like, pattern)
}

/// The last page whose offset fits the database's signed 64-bit OFFSET.
fn max_page(per_page: u64) -> u64 {
    i64::MAX as u64 / per_page.max(1) + 1
}

/// One household with members and full pairing history; out of scope is not found.
/// A helper reads the households of their device list
/// ([`super::caller::Scope::device_households`]): one whose pairing with them ended
/// within the last quarter stays on the second helper's sheet to be signed, and the
/// device still lists it.
pub async fn detail(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: i64,
) -> ApiResult<HouseholdDetail> {
    let row = one_of(db, caller.scope().device_households(), id).await?;
    let mut details = details(db, vec![row]).await?;
    details
        .pop()
        .map(|d| as_seen_by(caller, d))
        .ok_or(ApiError::NotFound("household"))
}

/// A household as `caller` may read it. An office reads it whole. A helper whose
/// pairings with it have all ended (it stays on their list for a quarter, see
/// [`super::caller::Scope::device_households`]) reads the pairings begun before they
/// left, not those of the helpers after them, nor their names and phones as the
/// household's current helpers (QA s25b F1). The device goes by its own pairings only.
pub fn as_seen_by(caller: &Caller, mut d: HouseholdDetail) -> HouseholdDetail {
    let Some(me) = caller.helper_id.filter(|_| caller.role.is_helper()) else {
        return d;
    };
    let mine = d.pairings.iter().filter(|p| p.helper.id == me);
    // None while a pairing of theirs is open; else the day they left.
    let Some(left) = mine
        .map(|p| p.valid_to)
        .collect::<Option<Vec<NaiveDate>>>()
        .and_then(|ends| ends.into_iter().max())
    else {
        return d;
    };
    // Their own, and those begun before they left or ended by then (a household paired
    // and taken out on one day holds pairings that begin on the day they end).
    d.pairings.retain(|p| {
        p.helper.id == me || p.valid_from < left || p.valid_to.is_some_and(|t| t <= left)
    });
    let shown: std::collections::HashSet<i64> = d.pairings.iter().map(|p| p.helper.id).collect();
    for current in [&mut d.summary.first_helper, &mut d.summary.second_helper] {
        if current.as_ref().is_some_and(|h| !shown.contains(&h.id)) {
            *current = None;
        }
    }
    d
}

/// The days helper `me` was paired with a household, by its pairing history (any
/// role), as half-open `[from, to)` ranges: what a helper may read of its visits.
pub fn paired_days(d: &HouseholdDetail, me: i64) -> Vec<(NaiveDate, Option<NaiveDate>)> {
    d.pairings
        .iter()
        .filter(|p| p.helper.id == me)
        .map(|p| (p.valid_from, p.valid_to))
        .collect()
}

/// [`detail`] for reading the household's visits of `from..=to` (a quarter's
/// drill-down): a helper only for days they were paired with it, so a helper whose
/// pairing ended does not read the visits of the helpers after them, nor one paired
/// later those of the helpers before.
pub async fn detail_for_days(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> ApiResult<HouseholdDetail> {
    let found = detail(db, caller, id).await?;
    if let (true, Some(helper)) = (caller.role.is_helper(), caller.helper_id) {
        let paired = found.pairings.iter().any(|p| {
            p.helper.id == helper && p.valid_from <= to && p.valid_to.is_none_or(|end| end > from)
        });
        if !paired {
            return Err(ApiError::NotFound("household"));
        }
    }
    Ok(found)
}

/// The household `id` if the caller's scope holds it; out of scope is not found.
pub(super) async fn in_scope(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: i64,
) -> ApiResult<household::Model> {
    one_of(db, caller.scope().households(), id).await
}

/// The household `id` if `scope` holds it; else not found.
async fn one_of(
    db: &impl ConnectionTrait,
    scope: Condition,
    id: i64,
) -> ApiResult<household::Model> {
    household::Entity::find()
        .filter(
            Condition::all()
                .add(household::Column::Id.eq(id))
                .add(scope),
        )
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("household"))
}

/// Everything a device needs offline: the caller's households with history, and policy.
/// A helper's list also holds the households whose pairing with the helper ended within
/// the last quarter ([`super::caller::Scope::device_households`]): their pairing
/// history carries the real end, which the device goes by.
pub async fn snapshot(db: &impl ConnectionTrait, caller: &Caller) -> ApiResult<Snapshot> {
    let rows = household::Entity::find()
        .filter(caller.scope().device_households())
        .order_by_asc(household::Column::LedgerSeq)
        .order_by_asc(household::Column::Id)
        .all(db)
        .await?;
    let county = caller
        .county_id
        .or_else(|| rows.first().map(|h| h.county_id));
    // The town's policy is the one of a household the helper is paired with now, not of
    // one that has left pairing.
    let current = household::Entity::find()
        .filter(caller.scope().households())
        .order_by_asc(household::Column::LedgerSeq)
        .order_by_asc(household::Column::Id)
        .one(db)
        .await?;
    let town = current.as_ref().or(rows.first()).map(|h| h.town_id);
    let (policy, history) = match county {
        Some(c) => (
            policy::effective(db, c, town, super::today()).await?,
            policy::history(db, c, town).await?,
        ),
        None => {
            return Err(ApiError::Invalid(
                "this account belongs to no county, so no policy applies".into(),
            ));
        }
    };
    Ok(Snapshot {
        me: auth::me(db, caller).await?,
        households: details(db, rows)
            .await?
            .into_iter()
            .map(|d| as_seen_by(caller, d))
            .collect(),
        policy,
        evidence_history: history.evidence,
        exit_cuts_history: history.exit_cuts,
        visits_history: history.visits,
        server_time: super::now(),
    })
}

async fn details(
    db: &impl ConnectionTrait,
    rows: Vec<household::Model>,
) -> ApiResult<Vec<HouseholdDetail>> {
    let ids: Vec<i64> = rows.iter().map(|h| h.id).collect();
    let mut history: HashMap<i64, Vec<pairing::Model>> = HashMap::new();
    for chunk in ids.chunks(1000) {
        let found = pairing::Entity::find()
            .filter(pairing::Column::HouseholdId.is_in(chunk.to_vec()))
            .order_by_desc(pairing::Column::ValidFrom)
            .order_by_desc(pairing::Column::Id)
            .all(db)
            .await?;
        for p in found {
            history.entry(p.household_id).or_default().push(p);
        }
    }
    let all: Vec<&pairing::Model> = history.values().flatten().collect();
    let helpers = helpers_by_id(db, all.iter().map(|p| p.helper_id)).await?;
    let exit_days = super::exits::exit_days_of(db, &ids).await?;
    let successors = super::exits::Successors::of(
        all.iter()
            .map(|p| (p.household_id, p.role.as_str(), p.valid_from, p.created_at)),
    );
    let handovers = super::exits::Handovers::of(all.iter().map(|p| {
        (
            p.household_id,
            p.role.as_str(),
            p.helper_id,
            p.valid_from,
            p.valid_to,
        )
    }));
    let ends = (&exit_days, &successors, &handovers);
    let summaries = summaries_with(db, &rows, &history, &helpers).await?;
    Ok(rows
        .iter()
        .zip(summaries)
        .map(|(h, summary)| HouseholdDetail {
            summary,
            members: serde_json::from_str::<Vec<Member>>(&h.members).unwrap_or_default(),
            pairings: history
                .get(&h.id)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| pairing_dto(p, &helpers, ends))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect())
}

async fn summaries(
    db: &impl ConnectionTrait,
    rows: &[household::Model],
) -> ApiResult<Vec<HouseholdSummary>> {
    let ids: Vec<i64> = rows.iter().map(|h| h.id).collect();
    let open = pairing::Entity::find()
        .filter(pairing::Column::HouseholdId.is_in(ids))
        .filter(
            Condition::any()
                .add(pairing::Column::ValidTo.is_null())
                .add(pairing::Column::ValidTo.gt(super::today())),
        )
        .all(db)
        .await?;
    let helpers = helpers_by_id(db, open.iter().map(|p| p.helper_id)).await?;
    let mut by_household: HashMap<i64, Vec<pairing::Model>> = HashMap::new();
    for p in open {
        by_household.entry(p.household_id).or_default().push(p);
    }
    summaries_with(db, rows, &by_household, &helpers).await
}

async fn summaries_with(
    db: &impl ConnectionTrait,
    rows: &[household::Model],
    pairings: &HashMap<i64, Vec<pairing::Model>>,
    helpers: &HashMap<i64, helper::Model>,
) -> ApiResult<Vec<HouseholdSummary>> {
    let places =
        jurisdictions::places(db, rows.iter().flat_map(|h| [h.town_id, h.village_id])).await?;
    let today = super::today();
    let exited: Vec<i64> = rows
        .iter()
        .filter(|h| h.status == HouseholdStatus::Exited.code())
        .map(|h| h.id)
        .collect();
    let exits = super::exits::standing(db, &exited).await?;
    let current = |h: i64, role: PairingRole| {
        pairings
            .get(&h)
            .and_then(|ps| current_pairing(ps, role, today))
            .and_then(|p| helpers.get(&p.helper_id))
            .map(auth::helper_ref)
    };
    rows.iter()
        .map(|h| {
            let place = |id: i64| {
                places
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| ApiError::Internal(format!("missing place {id}")))
            };
            Ok(HouseholdSummary {
                id: h.id,
                head_name: h.head_name.clone(),
                town: place(h.town_id)?,
                village: place(h.village_id)?,
                address: h.address.clone(),
                phone: h.phone.clone(),
                size: h.size.and_then(|s| i32::try_from(s).ok()),
                status: match exits.get(&h.id) {
                    Some(e) => e.status_on(today),
                    None => h.status.parse().unwrap_or(HouseholdStatus::Identified),
                },
                exit_on: exits.get(&h.id).map(|e| e.on),
                cause: h.cause.clone(),
                measures: h.measures.clone(),
                first_helper: current(h.id, PairingRole::First),
                second_helper: current(h.id, PairingRole::Second),
            })
        })
        .collect()
}

/// The pairing of `role` in effect on `day`, or failing that the one that starts later.
pub fn current_pairing(
    pairings: &[pairing::Model],
    role: PairingRole,
    day: NaiveDate,
) -> Option<&pairing::Model> {
    let of_role = || pairings.iter().filter(move |p| p.role == role.code());
    of_role()
        .find(|p| p.valid_from <= day && p.valid_to.is_none_or(|t| t > day))
        .or_else(|| of_role().find(|p| p.valid_to.is_none()))
}

async fn helpers_by_id(
    db: &impl ConnectionTrait,
    ids: impl Iterator<Item = i64>,
) -> ApiResult<HashMap<i64, helper::Model>> {
    let ids: Vec<i64> = ids
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = HashMap::new();
    for chunk in ids.chunks(1000) {
        for h in helper::Entity::find()
            .filter(helper::Column::Id.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            out.insert(h.id, h);
        }
    }
    Ok(out)
}

fn pairing_dto(
    p: &pairing::Model,
    helpers: &HashMap<i64, helper::Model>,
    (exit_days, successors, handovers): (
        &super::exits::ExitDays,
        &super::exits::Successors,
        &super::exits::Handovers,
    ),
) -> Option<PairingDto> {
    Some(PairingDto {
        id: p.id,
        household_id: p.household_id,
        helper: auth::helper_ref(helpers.get(&p.helper_id)?),
        role: p.role.parse().ok()?,
        valid_from: p.valid_from,
        valid_to: p.valid_to,
        filed_on: p.filed_on,
        reason: p.reason.clone(),
        short_notice: p.short_notice,
        ended_by_exit: p
            .valid_to
            .is_some_and(|end| exit_days.contains_key(&(p.household_id, end))),
        end_known_on: super::exits::end_known_on(
            (p.household_id, &p.role, p.valid_to),
            exit_days,
            successors,
        ),
        start_known_on: handovers.start_known_on(
            (p.household_id, &p.role, p.helper_id),
            (p.valid_from, p.filed_on),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{DbBackend, QueryTrait};

    #[test]
    fn like_wildcards_in_a_search_are_literal() {
        for (q, pattern) in [
            ("田晓东", "田晓东"),
            ("%", "\\%"),
            ("_", "\\_"),
            ("a\\b", "a\\\\b"),
            ("50%_x", "50\\%\\_x"),
        ] {
            assert_eq!(like_literal(q), pattern, "{q}");
        }
    }

    #[test]
    fn the_search_lowers_both_sides_and_names_its_escape_on_both_backends() {
        for (backend, expected) in [
            (
                DbBackend::Sqlite,
                r#"WHERE LOWER("households"."head_name") LIKE LOWER('%Ab\%%') ESCAPE '\'"#,
            ),
            (
                DbBackend::Postgres,
                r#"WHERE LOWER("households"."head_name") LIKE LOWER(E'%Ab\\%%') ESCAPE E'\\'"#,
            ),
        ] {
            let sql = household::Entity::find()
                .filter(name_contains("Ab%"))
                .build(backend)
                .to_string();
            assert!(sql.ends_with(expected), "{backend:?}: {sql}");
        }
    }
}
