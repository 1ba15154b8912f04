//! Attendance reconciliation: which visits count, which calendar windows each pairing
//! met, and the second helper's sheet, town and county reports built on that.
//!
//! Counting happens in the database: one `GROUP BY pairing, kind, year, month` query over
//! `visit_facts` joined to the pairings in force on each visit's date, with
//! `COUNT(DISTINCT visit_date)` so a helper's second visit to a household on the same day
//! counts once. Rust then assembles calendar windows from those monthly counts. A window
//! is judged by the policy in force on its first day, and only if the pairing covered
//! all of it; 2-month windows that straddle quarters belong to the quarter they end in.

use bangfu_shared::api::{HelperRef, Place};
use bangfu_shared::policy::window_of;
use bangfu_shared::report::{
    AreaRate, HelperEscalation, HouseholdRef, Miss, Quarter, RecordLine, UnitEscalation,
    WindowResult, helper_action, unit_action,
};
use bangfu_shared::{PairingRole, Policy, VisitKind};
use chrono::{Datelike, Months, NaiveDate};
use sea_orm::sea_query::{Alias, Condition as SqCondition, Expr, ExprTrait, Func, Query};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use std::collections::{BTreeMap, HashMap, HashSet};

use super::{auth, jurisdictions, policy};
use crate::entities::{helper, household, pairing, visit_fact};
use crate::error::{ApiError, ApiResult};

/// The evidence a policy asks of a home visit: what the SQL count condition needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Evidence {
    pub both_signatures: bool,
    pub min_photos: i32,
}

impl Evidence {
    fn of(p: &Policy) -> Evidence {
        Evidence {
            both_signatures: p.evidence.both_signatures,
            min_photos: p.evidence.min_photos as i32,
        }
    }
}

/// One judged window of one pairing.
#[derive(Debug, Clone)]
pub struct JudgedWindow {
    pub pairing_id: i64,
    pub household_id: i64,
    pub helper_id: i64,
    pub result: WindowResult,
}

/// Everything a report needs about a set of households over a period.
pub struct Reconciled {
    pub households: Vec<household::Model>,
    pub pairings: Vec<pairing::Model>,
    pub helpers: HashMap<i64, helper::Model>,
    pub places: HashMap<i64, Place>,
    pub windows: Vec<JudgedWindow>,
    /// (household, kind) pairs with at least one counted visit, per month (y, m).
    pub counted: HashSet<(i64, String, i32, u32)>,
    pub policy_source: String,
}

/// The first token of 工作单位及职务 (`市住建局 主任科员` → `市住建局`): the unit sanctions go to.
pub fn unit_of(unit_position: &str) -> String {
    unit_position
        .split_whitespace()
        .next()
        .unwrap_or(unit_position)
        .to_string()
}

fn month_start(y: i32, m: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or_default()
}

/// Month ends (y, m) from the month of `from` to the month of `to`.
fn months(from: NaiveDate, to: NaiveDate) -> Vec<(i32, u32)> {
    let mut out = Vec::new();
    let mut d = month_start(from.year(), from.month());
    while d <= to {
        out.push((d.year(), d.month()));
        d = d
            .checked_add_months(Months::new(1))
            .unwrap_or(NaiveDate::MAX);
    }
    out
}

/// Policies by (county, town, day), looked up once each.
struct PolicyCache<'a, C: ConnectionTrait> {
    db: &'a C,
    cache: HashMap<(i64, i64, NaiveDate), Policy>,
}

impl<C: ConnectionTrait> PolicyCache<'_, C> {
    async fn get(&mut self, county: i64, town: i64, day: NaiveDate) -> ApiResult<Policy> {
        if let Some(p) = self.cache.get(&(county, town, day)) {
            return Ok(p.clone());
        }
        let p = policy::effective(self.db, county, Some(town), day).await?;
        self.cache.insert((county, town, day), p.clone());
        Ok(p)
    }
}

/// Reconciles the households matching `households` over windows ending in `[from, to]`.
pub async fn reconcile(
    db: &impl ConnectionTrait,
    households: Condition,
    from: NaiveDate,
    to: NaiveDate,
) -> ApiResult<Reconciled> {
    let homes = household::Entity::find()
        .filter(households.clone())
        .order_by_asc(household::Column::TownId)
        .order_by_asc(household::Column::LedgerSeq)
        .order_by_asc(household::Column::Id)
        .all(db)
        .await?;
    let ids: Vec<i64> = homes.iter().map(|h| h.id).collect();
    let earliest = from.checked_sub_months(Months::new(11)).unwrap_or(from);
    let mut pairings = Vec::new();
    for chunk in ids.chunks(1000) {
        pairings.extend(
            pairing::Entity::find()
                .filter(pairing::Column::HouseholdId.is_in(chunk.to_vec()))
                .filter(pairing::Column::ValidFrom.lte(to))
                .filter(
                    Condition::any()
                        .add(pairing::Column::ValidTo.is_null())
                        .add(pairing::Column::ValidTo.gt(earliest)),
                )
                .order_by_asc(pairing::Column::Id)
                .all(db)
                .await?,
        );
    }
    let helper_ids: Vec<i64> = pairings
        .iter()
        .map(|p| p.helper_id)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut helpers = HashMap::new();
    for chunk in helper_ids.chunks(1000) {
        for h in helper::Entity::find()
            .filter(helper::Column::Id.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            helpers.insert(h.id, h);
        }
    }
    let places =
        jurisdictions::places(db, homes.iter().flat_map(|h| [h.town_id, h.village_id])).await?;
    let by_id: HashMap<i64, &household::Model> = homes.iter().map(|h| (h.id, h)).collect();

    // Windows (and the policy judging each) per town.
    let mut cache = PolicyCache {
        db,
        cache: HashMap::new(),
    };
    let towns: Vec<(i64, i64)> = homes
        .iter()
        .map(|h| (h.county_id, h.town_id))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut town_windows: HashMap<
        i64,
        Vec<(
            NaiveDate,
            NaiveDate,
            bangfu_shared::policy::VisitRequirement,
            Evidence,
        )>,
    > = HashMap::new();
    let mut variants: HashSet<Evidence> = HashSet::new();
    let mut agg_from = from;
    let mut policy_source = String::new();
    for (county, town) in towns {
        let mut list = Vec::new();
        for (y, m) in months(from, to) {
            let month_end = window_of(month_start(y, m), 1).1;
            for n in [1u32, 2, 3, 4, 6, 12] {
                let (start, end) = window_of(month_start(y, m), n);
                if end != month_end {
                    continue;
                }
                let p = cache.get(county, town, start).await?;
                if policy_source.is_empty() {
                    policy_source = p.source.clone();
                }
                for req in p.visits.iter().filter(|r| r.window_months == n) {
                    let ev = Evidence::of(&p);
                    variants.insert(ev);
                    agg_from = Ord::min(agg_from, start);
                    list.push((start, end, req.clone(), ev));
                }
            }
        }
        town_windows.insert(town, list);
    }

    let mut counts: HashMap<(Evidence, i64, String, i32, u32), u32> = HashMap::new();
    let mut counted = HashSet::new();
    for ev in &variants {
        for (pairing_id, household_id, kind, y, m, days) in
            monthly_counts(db, &ids, agg_from, to, *ev).await?
        {
            counted.insert((household_id, kind.clone(), y, m));
            counts.insert((*ev, pairing_id, kind, y, m), days);
        }
    }

    let mut windows = Vec::new();
    for p in &pairings {
        let Some(h) = by_id.get(&p.household_id) else {
            continue;
        };
        let Ok(role) = p.role.parse::<PairingRole>() else {
            continue;
        };
        for (start, end, req, ev) in town_windows.get(&h.town_id).into_iter().flatten() {
            if req.role != role {
                continue;
            }
            let required = p.valid_from <= *start && p.valid_to.is_none_or(|t| t > *end);
            let overlaps = p.valid_from <= *end && p.valid_to.is_none_or(|t| t > *start);
            if !overlaps {
                continue;
            }
            let count: u32 = months(*start, *end)
                .iter()
                .map(|(y, m)| {
                    counts
                        .get(&(*ev, p.id, req.kind.code().to_string(), *y, *m))
                        .copied()
                        .unwrap_or(0)
                })
                .sum();
            windows.push(JudgedWindow {
                pairing_id: p.id,
                household_id: p.household_id,
                helper_id: p.helper_id,
                result: WindowResult {
                    role,
                    kind: req.kind,
                    start: *start,
                    end: *end,
                    count,
                    min_count: req.min_count,
                    required,
                    met: count >= req.min_count,
                },
            });
        }
    }
    Ok(Reconciled {
        households: homes,
        pairings,
        helpers,
        places,
        windows,
        counted,
        policy_source,
    })
}

/// `(pairing, household, kind, year, month, distinct days)` of counted visits: the one
/// aggregation every report rests on, run in the database.
async fn monthly_counts(
    db: &impl ConnectionTrait,
    household_ids: &[i64],
    from: NaiveDate,
    to: NaiveDate,
    ev: Evidence,
) -> ApiResult<Vec<(i64, i64, String, i32, u32, u32)>> {
    let f = |c: visit_fact::Column| Expr::col((visit_fact::Entity, c));
    let p = |c: pairing::Column| Expr::col((pairing::Entity, c));
    let home_ok = Condition::all()
        .add(if ev.both_signatures {
            f(visit_fact::Column::HouseholdSigned).eq(true)
        } else {
            Expr::val(1).eq(1)
        })
        .add(f(visit_fact::Column::WitnessOk).eq(true))
        .add(f(visit_fact::Column::PhotoCount).gte(ev.min_photos));
    let counts = Condition::all()
        .add(f(visit_fact::Column::Voided).eq(false))
        .add(f(visit_fact::Column::Superseded).eq(false))
        .add(f(visit_fact::Column::ClockFlag).eq(false))
        .add(f(visit_fact::Column::PhotoReused).eq(false))
        .add(f(visit_fact::Column::PhotosComplete).eq(true))
        .add(
            Condition::any()
                .add(f(visit_fact::Column::Kind).eq(VisitKind::Phone.code()))
                .add(home_ok),
        );
    let mut out = Vec::new();
    for chunk in household_ids.chunks(5000) {
        let q = Query::select()
            .expr_as(p(pairing::Column::Id), Alias::new("pairing_id"))
            .expr_as(p(pairing::Column::HouseholdId), Alias::new("household_id"))
            .expr_as(f(visit_fact::Column::Kind), Alias::new("kind"))
            .expr_as(f(visit_fact::Column::Year), Alias::new("y"))
            .expr_as(f(visit_fact::Column::Month), Alias::new("m"))
            .expr_as(
                Func::count_distinct(f(visit_fact::Column::VisitDate)),
                Alias::new("days"),
            )
            .from(pairing::Entity)
            .inner_join(
                visit_fact::Entity,
                SqCondition::all()
                    .add(
                        f(visit_fact::Column::HouseholdId)
                            .equals((pairing::Entity, pairing::Column::HouseholdId)),
                    )
                    .add(
                        f(visit_fact::Column::HelperId)
                            .equals((pairing::Entity, pairing::Column::HelperId)),
                    )
                    .add(f(visit_fact::Column::VisitDate).gte(p(pairing::Column::ValidFrom)))
                    .add(
                        SqCondition::any()
                            .add(p(pairing::Column::ValidTo).is_null())
                            .add(f(visit_fact::Column::VisitDate).lt(p(pairing::Column::ValidTo))),
                    ),
            )
            .and_where(p(pairing::Column::HouseholdId).is_in(chunk.to_vec()))
            .and_where(f(visit_fact::Column::VisitDate).gte(from))
            .and_where(f(visit_fact::Column::VisitDate).lte(to))
            .cond_where(counts.clone())
            .group_by_col((pairing::Entity, pairing::Column::Id))
            .group_by_col((pairing::Entity, pairing::Column::HouseholdId))
            .group_by_col((visit_fact::Entity, visit_fact::Column::Kind))
            .group_by_col((visit_fact::Entity, visit_fact::Column::Year))
            .group_by_col((visit_fact::Entity, visit_fact::Column::Month))
            .to_owned();
        let stmt = db.get_database_backend().build(&q);
        for row in db.query_all_raw(stmt).await? {
            out.push((
                row.try_get::<i64>("", "pairing_id")?,
                row.try_get::<i64>("", "household_id")?,
                row.try_get::<String>("", "kind")?,
                row.try_get::<i32>("", "y")?,
                u32::try_from(row.try_get::<i32>("", "m")?).unwrap_or(0),
                u32::try_from(row.try_get::<i64>("", "days")?).unwrap_or(0),
            ));
        }
    }
    Ok(out)
}

impl Reconciled {
    /// The helper as a DTO.
    pub fn helper(&self, id: i64) -> Option<HelperRef> {
        self.helpers.get(&id).map(auth::helper_ref)
    }

    fn place_name(&self, id: i64) -> String {
        self.places
            .get(&id)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    }

    /// Windows required of a pairing and ending within `[from, to]`.
    pub fn required_in(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Iterator<Item = &JudgedWindow> {
        self.windows
            .iter()
            .filter(move |w| w.result.required && w.result.end >= from && w.result.end <= to)
    }

    /// Rates per place (`key` picks the village or town of a household).
    pub fn rates(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        key: impl Fn(&household::Model) -> i64,
    ) -> Vec<AreaRate> {
        let by_household: HashMap<i64, &household::Model> =
            self.households.iter().map(|h| (h.id, h)).collect();
        let mut out: BTreeMap<i64, AreaRate> = BTreeMap::new();
        for h in &self.households {
            let id = key(h);
            let e = out.entry(id).or_insert_with(|| AreaRate {
                place_id: id,
                name: self.place_name(id),
                ..AreaRate::default()
            });
            e.households += 1;
        }
        for w in self.required_in(from, to) {
            if let Some(h) = by_household.get(&w.household_id) {
                let e = out.entry(key(h)).or_default();
                e.required_windows += 1;
                e.met_windows += u32::from(w.result.met);
            }
        }
        let mut list: Vec<AreaRate> = out.into_values().collect();
        list.iter_mut().for_each(AreaRate::finish);
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Missed windows ending within `[from, to]`.
    pub fn misses(&self, from: NaiveDate, to: NaiveDate) -> Vec<Miss> {
        let by_household: HashMap<i64, &household::Model> =
            self.households.iter().map(|h| (h.id, h)).collect();
        let mut out: Vec<Miss> = self
            .required_in(from, to)
            .filter(|w| !w.result.met)
            .filter_map(|w| {
                let h = by_household.get(&w.household_id)?;
                let helper = self.helpers.get(&w.helper_id)?;
                Some(Miss {
                    household_id: h.id,
                    head_name: h.head_name.clone(),
                    village: self.place_name(h.village_id),
                    helper: auth::helper_ref(helper),
                    unit: unit_of(&helper.unit_position),
                    role: w.result.role,
                    kind: w.result.kind,
                    start: w.result.start,
                    end: w.result.end,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (a.end, &a.village, &a.head_name, a.kind).cmp(&(
                b.end,
                &b.village,
                &b.head_name,
                b.kind,
            ))
        });
        out
    }

    /// Seed 001 §四(四): first helpers' misses in `[year start, to]`, and units with ≥3.
    pub fn escalations(&self, to: NaiveDate) -> (Vec<HelperEscalation>, Vec<UnitEscalation>) {
        let from = NaiveDate::from_ymd_opt(to.year(), 1, 1).unwrap_or(to);
        let mut per_helper: BTreeMap<i64, u32> = BTreeMap::new();
        for w in self
            .required_in(from, to)
            .filter(|w| !w.result.met && w.result.role == PairingRole::First)
        {
            *per_helper.entry(w.helper_id).or_default() += 1;
        }
        let mut helpers = Vec::new();
        let mut units: BTreeMap<String, u32> = BTreeMap::new();
        for (id, n) in per_helper {
            let Some(h) = self.helpers.get(&id) else {
                continue;
            };
            let unit = unit_of(&h.unit_position);
            *units.entry(unit.clone()).or_default() += n;
            helpers.push(HelperEscalation {
                helper: auth::helper_ref(h),
                unit,
                misses_this_year: n,
                action: helper_action(n).to_string(),
            });
        }
        helpers.sort_by(|a, b| {
            (b.misses_this_year, &a.unit, &a.helper.name).cmp(&(
                a.misses_this_year,
                &b.unit,
                &b.helper.name,
            ))
        });
        let mut unit_list: Vec<UnitEscalation> = units
            .into_iter()
            .filter_map(|(unit, n)| {
                unit_action(n).map(|a| UnitEscalation {
                    unit,
                    person_times: n,
                    action: a.to_string(),
                })
            })
            .collect();
        unit_list.sort_by(|a, b| {
            b.person_times
                .cmp(&a.person_times)
                .then(a.unit.cmp(&b.unit))
        });
        (helpers, unit_list)
    }

    /// Households with no counted home visit in `[from, to]`.
    pub fn without_home_visit(&self, from: NaiveDate, to: NaiveDate) -> Vec<HouseholdRef> {
        let months = months(from, to);
        self.households
            .iter()
            .filter(|h| {
                !months.iter().any(|(y, m)| {
                    self.counted
                        .contains(&(h.id, VisitKind::Home.code().to_string(), *y, *m))
                })
            })
            .map(|h| HouseholdRef {
                household_id: h.id,
                head_name: h.head_name.clone(),
                village: self.place_name(h.village_id),
            })
            .collect()
    }
}

/// Why a visit does not count (in Chinese), given the pairings of its household and the
/// evidence its policy asks; `None` when it counts.
pub fn reason_not_counted(
    f: &visit_fact::Model,
    pairings: &[pairing::Model],
    ev: Evidence,
    same_day_before: bool,
) -> Option<String> {
    let paired = pairings.iter().any(|p| {
        p.helper_id == f.helper_id
            && p.household_id == f.household_id
            && p.valid_from <= f.visit_date
            && p.valid_to.is_none_or(|t| t > f.visit_date)
    });
    let home = f.kind == VisitKind::Home.code();
    let reason = if f.voided {
        "已作废"
    } else if f.superseded {
        "已被更正记录取代"
    } else if f.clock_flag {
        "设备时间异常"
    } else if f.photo_reused {
        "照片已用于其他走访"
    } else if !paired {
        "走访时未与该户结对"
    } else if home && ev.both_signatures && !f.household_signed {
        "缺少户主或见证人签字"
    } else if home && !f.witness_ok {
        "见证人未说明原因"
    } else if home && f.photo_count < ev.min_photos {
        "缺少照片"
    } else if !f.photos_complete {
        "照片未上传完成"
    } else if same_day_before {
        "同日重复走访，只计一次"
    } else {
        return None;
    };
    Some(reason.to_string())
}

/// The visit facts of some households in `[from, to]`, as report lines with reasons.
pub async fn record_lines(
    db: &impl ConnectionTrait,
    household_ids: &[i64],
    pairings: &[pairing::Model],
    from: NaiveDate,
    to: NaiveDate,
    evidence: impl Fn(i64) -> Evidence,
    late_after: Option<chrono::DateTime<chrono::Utc>>,
) -> ApiResult<Vec<RecordLine>> {
    let facts = visit_fact::Entity::find()
        .filter(visit_fact::Column::HouseholdId.is_in(household_ids.to_vec()))
        .filter(visit_fact::Column::VisitDate.between(from, to))
        .order_by_asc(visit_fact::Column::VisitDate)
        .order_by_asc(visit_fact::Column::ReceivedAt)
        .order_by_asc(visit_fact::Column::RecordId)
        .all(db)
        .await?;
    let mut seen: HashSet<(i64, i64, String, NaiveDate)> = HashSet::new();
    let mut out = Vec::new();
    for f in facts {
        let key = (f.household_id, f.helper_id, f.kind.clone(), f.visit_date);
        let mut reason =
            reason_not_counted(&f, pairings, evidence(f.household_id), seen.contains(&key));
        if reason.is_none() {
            seen.insert(key);
        }
        let kind = f
            .kind
            .parse()
            .map_err(|e| ApiError::Internal(format!("fact {}: {e}", f.record_id)))?;
        if reason.as_deref() == Some("") {
            reason = None;
        }
        out.push(RecordLine {
            household_id: f.household_id,
            record_id: f.record_id,
            date: f.visit_date,
            kind,
            helper_id: f.helper_id,
            counts: reason.is_none(),
            reason,
            photo_count: f.photo_count,
            late: late_after.is_some_and(|t| f.received_at > t),
        });
    }
    Ok(out)
}

/// The evidence of the policy in force for a household's town on a day.
pub async fn evidence_for(
    db: &impl ConnectionTrait,
    county: i64,
    town: i64,
    day: NaiveDate,
) -> ApiResult<Evidence> {
    Ok(Evidence::of(
        &policy::effective(db, county, Some(town), day).await?,
    ))
}

/// A quarter's range.
pub fn quarter_range(q: Quarter) -> (NaiveDate, NaiveDate) {
    (q.start(), q.end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_the_first_word() {
        assert_eq!(unit_of("市住建局 主任科员"), "市住建局");
        assert_eq!(unit_of("村委会主任"), "村委会主任");
    }

    #[test]
    fn months_cover_the_range() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        assert_eq!(
            months(d(1, 1), d(3, 31)),
            vec![(2026, 1), (2026, 2), (2026, 3)]
        );
        assert_eq!(months(d(2, 15), d(2, 20)), vec![(2026, 2)]);
    }
}
