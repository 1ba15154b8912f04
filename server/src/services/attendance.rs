//! Attendance reconciliation: which visits count, which calendar windows each pairing
//! met, and the second helper's sheet, town and county reports built on that.
//!
//! Counting happens in the database: one query over `visit_facts` joined to the pairings
//! in force on each visit's date, grouped by pairing, kind and day so a helper's second
//! visit to a household on the same day counts once; an outer `GROUP BY pairing, kind`
//! adds each day to its month, packed into integers (5 bits a month), so a county comes
//! back in one row per pairing and kind. Rust then assembles calendar windows from those
//! monthly counts. A window is judged by the policy in force on its first day, and only
//! if the pairing covered all of it, or held it from its first day until the household's
//! exit for the days the policy's `exit_cuts` asks (never, by default); 2-month windows
//! that straddle quarters belong to the quarter they end in. A window no pairing owes
//! is judged for no one, and listed as such. A visit's evidence (photos, signatures) is
//! judged by the policy in force on the visit's own date, in the windows it falls in as
//! on the report lines (each visit, counted or not and why).
//!
//! Sanctions (seed 001 §四(四)) count a first helper's missed windows of the kinds the
//! window's policy lists in `sanctions.counted_kinds` (home visits by default: the seed
//! sanctions 未按要求入户帮扶); the thresholds are the county's policy's on the report's
//! last day, so a helper's action reads the same in the town and the county report.
//!
//! The households to reconcile are a condition, never a list of ids: pairings, helpers
//! and the aggregation select them with a subquery on `households`, so one query serves
//! a sheet of five households and a county of ten thousand alike.

use bangfu_shared::api::{HelperRef, Place};
use bangfu_shared::policy::{ExitCuts, Sanctions};
use bangfu_shared::policy::{VisitRequirement, cadence_changed, window_of};
use bangfu_shared::report::{
    AreaRate, HelperEscalation, HouseholdRef, Miss, Quarter, RecordLine, UnitEscalation,
    UnownedWindow, WindowResult, helper_action, unit_action,
};
use bangfu_shared::{PairingRole, Policy, VisitKind};
use chrono::{Datelike, Months, NaiveDate};
use sea_orm::sea_query::{
    Alias, Condition as SqCondition, Expr, ExprTrait, Func, Query, SelectStatement,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DerivePartialModel, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::jurisdictions;
use super::policy::{self, PolicyVersion};
use crate::entities::{helper, household, household_exit, pairing, record, visit_fact};
use crate::error::{ApiError, ApiResult};

/// The evidence a policy asks of a home visit: what the SQL count condition needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Evidence {
    pub both_signatures: bool,
    pub min_photos: i32,
}

/// The evidence asked of a town's home visits by the day they were made: steps of
/// `(first day, evidence)`, oldest first, the first also covering the days before it. A
/// visit is judged by the evidence in force on its date in every window it falls in, as
/// its record on the sheet and the device judge it (QA s28a F14): by the window's first
/// day, a rule eased on 12-04 left a 12-05 visit, printed as counting, out of the
/// November–December window.
pub type EvidenceSteps = Vec<(NaiveDate, Evidence)>;

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
    /// A miss of it counts toward sanctions: a first helper's window of a kind its
    /// policy's `sanctions.counted_kinds` lists.
    pub sanctioned: bool,
}

/// What reconciliation and the reports read of a household: who and where. Not the
/// ledger's members, cause, measures, contact or timestamps: a county report reads every
/// household of the county, and moving rows out of the database costs by the column
/// (10,000 households: 45 ms in full on SQLite, 16 ms these six columns).
#[derive(Debug, Clone, PartialEq, Eq, DerivePartialModel)]
#[sea_orm(entity = "household::Entity")]
pub struct Household {
    pub id: i64,
    pub county_id: i64,
    pub town_id: i64,
    pub village_id: i64,
    pub head_name: String,
    pub ledger_seq: i64,
}

/// What reconciliation reads of a pairing: which helper, which household, in which role,
/// from when until when (the filing details stay in the ledger).
#[derive(Debug, Clone, PartialEq, Eq, DerivePartialModel)]
#[sea_orm(entity = "pairing::Entity")]
pub struct Pairing {
    pub id: i64,
    pub household_id: i64,
    pub helper_id: i64,
    pub role: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    /// When the pairing was recorded: for a successor, when its predecessor's end was
    /// filed (see [`super::exits::end_known_on`]).
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When the change that began it was filed (see
    /// [`super::exits::Handovers::start_known_on`]).
    pub filed_on: NaiveDate,
}

/// What the reports show of a helper: name, unit and position, phone.
#[derive(Debug, Clone, PartialEq, Eq, DerivePartialModel)]
#[sea_orm(entity = "helper::Entity")]
pub struct Helper {
    pub id: i64,
    pub name: String,
    pub unit_position: String,
    pub phone: String,
}

impl Helper {
    /// The helper as a DTO.
    pub fn to_ref(&self) -> HelperRef {
        HelperRef {
            id: self.id,
            name: self.name.clone(),
            unit_position: self.unit_position.clone(),
            phone: self.phone.clone(),
        }
    }
}

/// Everything a report needs about a set of households over a period.
pub struct Reconciled {
    pub households: Vec<Household>,
    pub pairings: Vec<Pairing>,
    pub helpers: HashMap<i64, Helper>,
    pub places: HashMap<i64, Place>,
    pub windows: Vec<JudgedWindow>,
    /// (household, kind) pairs with at least one counted visit, per month (y, m), for the
    /// months from the span's `detail_from`.
    pub counted: HashSet<(i64, VisitKind, i32, u32)>,
    pub policy_source: String,
    /// The `exit_cuts.min_days_held` of the policies that judged the windows from the
    /// span's `detail_from` (see [`bangfu_shared::report::window_rule_zh`]).
    pub exit_cut_days: BTreeSet<u32>,
}

/// The households to reconcile: a condition on `households`, and optionally the range
/// their ids are known to fall in. The range changes no result; it lets the database
/// narrow pairings and facts by index before joining (a county reconciled in slices).
#[derive(Debug, Clone)]
pub struct Homes {
    pub cond: Condition,
    pub ids: Option<(i64, i64)>,
}

impl From<Condition> for Homes {
    fn from(cond: Condition) -> Homes {
        Homes { cond, ids: None }
    }
}

impl Homes {
    /// `col BETWEEN lo AND hi` when the id range is known.
    fn in_range(&self, col: impl sea_orm::sea_query::IntoColumnRef) -> Condition {
        let mut c = Condition::all();
        if let Some((lo, hi)) = self.ids {
            c = c.add(Expr::col(col).between(lo, hi));
        }
        c
    }
}

/// The period a report reconciles: the windows ending in `[from, to]`. Windows ending
/// before `detail_from` are judged for first helpers only, which is all escalations read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub detail_from: NaiveDate,
}

impl Span {
    /// Every window ending in `[from, to]`, for every role.
    pub fn all(from: NaiveDate, to: NaiveDate) -> Span {
        Span {
            from,
            to,
            detail_from: from,
        }
    }

    /// The quarter in full, and the first helpers' windows since the start of its year.
    pub fn year_to(q: Quarter) -> Span {
        Span {
            from: NaiveDate::from_ymd_opt(q.year, 1, 1).unwrap_or(q.start()),
            to: q.end(),
            detail_from: q.start(),
        }
    }

    /// Whether a window ending on `end` is judged for `role`.
    fn wants(&self, role: PairingRole, end: NaiveDate) -> bool {
        role == PairingRole::First || end >= self.detail_from
    }
}

/// Position titles that end a 工作单位及职务 cell written without a space
/// (`市住建局主任科员`), longest first so `副主任科员` is not read as `主任科员`.
const POSITIONS: [&str; 44] = [
    "驻村第一书记",
    "四级调研员",
    "三级调研员",
    "二级调研员",
    "一级调研员",
    "副主任科员",
    "工作人员",
    "党组书记",
    "党组成员",
    "主任科员",
    "副调研员",
    "调研员",
    "护士长",
    "总经理",
    "办事员",
    "副科长",
    "副局长",
    "副主任",
    "副书记",
    "副院长",
    "副校长",
    "副所长",
    "副站长",
    "副队长",
    "副经理",
    "副部长",
    "科员",
    "科长",
    "局长",
    "主任",
    "书记",
    "院长",
    "校长",
    "所长",
    "站长",
    "队长",
    "经理",
    "部长",
    "干事",
    "干部",
    "职工",
    "专员",
    "委员",
    "教师",
];

/// The unit sanctions go to (a unit with the policy's `unit_at` person-times of misses),
/// from the ledger's 工作单位及职务: the first word (`市住建局 主任科员` → `市住建局`), or
/// with no space the cell less a position title it ends with (`市住建局主任科员` →
/// `市住建局`), so one unit written both ways is counted as one.
///
/// A position in brackets at the end, half- or full-width (`市教育局(副科长)`,
/// `市教育局（副科长）`, `市教育局 ( 副科长 )`), is taken off first: clerks write the
/// cell so too, and a unit whose misses were split across spellings would never reach
/// the threshold (seed 001 §四(四)). Only when the bracket holds a known position title
/// (or ends with one): `市人民医院（东院）` names a unit, and stays whole.
pub fn unit_of(unit_position: &str) -> String {
    let trimmed = unit_position.trim();
    let cell = without_bracketed_position(trimmed).unwrap_or(trimmed);
    let mut words = cell.split_whitespace();
    let first = words.next().unwrap_or(cell);
    if words.next().is_some() {
        return first.to_string();
    }
    POSITIONS
        .iter()
        .find_map(|p| {
            first
                .strip_suffix(p)
                .filter(|unit| unit.chars().count() >= 2)
        })
        .unwrap_or(first)
        .to_string()
}

/// `cell` less a bracketed position title it ends with (`市教育局(副科长)` →
/// `市教育局`), if it ends so and at least two characters are left before the bracket.
fn without_bracketed_position(cell: &str) -> Option<&str> {
    let inner = cell.strip_suffix([')', '）'])?;
    let open = inner.rfind(['(', '（'])?;
    let (unit, bracket) = inner.split_at(open);
    let position = bracket.trim_start_matches(['(', '（']).trim();
    let unit = unit.trim_end();
    let is_title = POSITIONS.iter().any(|p| position.ends_with(p));
    (is_title && unit.chars().count() >= 2).then_some(unit)
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

/// Policy versions per county, each county loaded once, chosen in memory the way
/// `policy::effective` chooses: the newest town override in force, else the newest
/// county version in force.
#[derive(Default)]
pub struct Policies {
    /// Newest first.
    by_county: HashMap<i64, Vec<PolicyVersion>>,
}

impl Policies {
    /// The policy in force for a town on a day.
    pub async fn effective(
        &mut self,
        db: &impl ConnectionTrait,
        county: i64,
        town: i64,
        day: NaiveDate,
    ) -> ApiResult<&Policy> {
        self.in_force(db, county, Some(town), day).await
    }

    /// The policy in force on a day for a town, or with `None` the county's own.
    /// A county's versions (town overrides included), newest first, loaded once.
    async fn versions(
        &mut self,
        db: &impl ConnectionTrait,
        county: i64,
    ) -> ApiResult<&[PolicyVersion]> {
        if let Entry::Vacant(e) = self.by_county.entry(county) {
            let mut versions = policy::versions(db, county).await?;
            versions.reverse();
            e.insert(versions);
        }
        Ok(self.by_county.get(&county).map_or(&[][..], Vec::as_slice))
    }

    async fn in_force(
        &mut self,
        db: &impl ConnectionTrait,
        county: i64,
        town: Option<i64>,
        day: NaiveDate,
    ) -> ApiResult<&Policy> {
        let versions = self.versions(db, county).await?;
        let in_force = || versions.iter().filter(|v| v.valid_from <= day);
        in_force()
            .find(|v| town.is_some() && v.town_id == town)
            .or_else(|| in_force().find(|v| v.town_id.is_none()))
            .map(|v| &v.policy)
            .ok_or_else(|| {
                ApiError::Invalid(format!(
                    "no policy is in force on {day}: the county's policies apply from a \
                     later day (see GET /api/v1/policies)"
                ))
            })
    }

    /// The evidence of the policy in force for a town on a day.
    pub async fn evidence(
        &mut self,
        db: &impl ConnectionTrait,
        county: i64,
        town: i64,
        day: NaiveDate,
    ) -> ApiResult<Evidence> {
        Ok(Evidence::of(self.effective(db, county, town, day).await?))
    }

    /// The evidence steps of a town's home visits ([`EvidenceSteps`]): one step per
    /// version of the county's or the town's own policy that changed the evidence.
    async fn evidence_steps(
        &mut self,
        db: &impl ConnectionTrait,
        county: i64,
        town: i64,
    ) -> ApiResult<EvidenceSteps> {
        let days: BTreeSet<NaiveDate> = self
            .versions(db, county)
            .await?
            .iter()
            .filter(|v| v.town_id.is_none_or(|t| t == town))
            .map(|v| v.valid_from)
            .collect();
        let mut steps: EvidenceSteps = Vec::new();
        for day in days {
            // A town override may begin before any county version: no policy then.
            let Ok(p) = self.effective(db, county, town, day).await else {
                continue;
            };
            let ev = Evidence::of(p);
            if steps.last().is_none_or(|(_, last)| *last != ev) {
                steps.push((day, ev));
            }
        }
        Ok(steps)
    }

    /// The sanction thresholds of a county's own policy (no town override) in force on
    /// `day`: sanctions are the county's to impose (seed 001 §四(四)), so one helper's
    /// action must not depend on which town's report lists it.
    pub async fn sanctions(
        &mut self,
        db: &impl ConnectionTrait,
        county: i64,
        day: NaiveDate,
    ) -> ApiResult<Sanctions> {
        Ok(self
            .in_force(db, county, None, day)
            .await?
            .sanctions
            .clone())
    }
}

/// One requirement's calendar window in a town, with the evidence its policy asks.
struct TownWindow {
    start: NaiveDate,
    end: NaiveDate,
    months: Vec<(i32, u32)>,
    req: VisitRequirement,
    /// Index into the evidence variants.
    ev: usize,
    /// The policy counts a first helper's miss of this window toward sanctions.
    sanctioned: bool,
    /// Whether a pairing ended (by an exit or a change of helper) inside the window owes it.
    exit_cuts: ExitCuts,
}

/// The windows of every town, the evidence variants they ask and the names of the
/// policies that judge them.
#[derive(Default)]
struct Calendar {
    towns: HashMap<i64, Vec<TownWindow>>,
    /// The evidence steps of the towns, each distinct one once.
    variants: Vec<EvidenceSteps>,
    /// The first policy met, named when no window is judged.
    policy_source: String,
    /// The `source` of each policy judging a window from the span's `detail_from`, in
    /// the order met: a quarter judged by two versions names both (QA s26a F5).
    policy_sources: Vec<String>,
    /// The `exit_cuts.min_days_held` of the policies judging the windows from the
    /// span's `detail_from`: what the report's rule states.
    exit_cut_days: BTreeSet<u32>,
}

impl Calendar {
    /// Windows ending in the span, judged by the policy in force on each one's first day;
    /// and where a version taking effect inside a window changed how often a visit of
    /// that role and kind is asked (every 2 months to every quarter, say), the window of
    /// the new cadence is judged by the version in force on its last day. By first days
    /// alone a change on 11-01 from two-monthly to quarterly home visits would leave no
    /// home window from November to December (the Oct–Dec window begins under the old
    /// version, the Nov–Dec one under the new): the duty runs on, the windows of the two
    /// cadences overlapping around the change instead (QA s26a F1).
    async fn build(
        db: &impl ConnectionTrait,
        policies: &mut Policies,
        towns: BTreeSet<(i64, i64)>,
        span: Span,
    ) -> ApiResult<Calendar> {
        let mut cal = Calendar::default();
        for (county, town) in towns {
            let mut list = Vec::new();
            let ev = cal.variant(policies.evidence_steps(db, county, town).await?);
            for (y, m) in months(span.from, span.to) {
                let month_end = window_of(month_start(y, m), 1).1;
                for n in [1u32, 2, 3, 4, 6, 12] {
                    let (start, end) = window_of(month_start(y, m), n);
                    if end != month_end {
                        continue;
                    }
                    let first = policies.effective(db, county, town, start).await?.clone();
                    if cal.policy_source.is_empty() {
                        cal.policy_source = first.source.clone();
                    }
                    for req in first.visits.iter().filter(|r| r.window_months == n) {
                        cal.add(&mut list, (&first, ev), req, (start, end), &span);
                    }
                    let last = policies.effective(db, county, town, end).await?;
                    if *last != first {
                        let last = last.clone();
                        for req in cadence_changed(&first.visits, &last.visits, n) {
                            cal.add(&mut list, (&last, ev), &req, (start, end), &span);
                        }
                    }
                }
            }
            cal.towns.insert(town, list);
        }
        Ok(cal)
    }

    /// Adds the window `[start, end]` of `req`, judged by `p` with the town's evidence
    /// steps `ev` (an index into the variants), when the span wants it.
    fn add(
        &mut self,
        list: &mut Vec<TownWindow>,
        (p, ev): (&Policy, usize),
        req: &VisitRequirement,
        (start, end): (NaiveDate, NaiveDate),
        span: &Span,
    ) {
        if !span.wants(req.role, end) {
            return;
        }
        if end >= span.detail_from {
            self.exit_cut_days.insert(p.exit_cuts.min_days_held);
            if !self.policy_sources.contains(&p.source) {
                self.policy_sources.push(p.source.clone());
            }
        }
        list.push(TownWindow {
            start,
            end,
            months: months(start, end),
            sanctioned: req.role == PairingRole::First && p.sanctions.counts(req.kind),
            req: req.clone(),
            ev,
            exit_cuts: p.exit_cuts,
        });
    }

    fn variant(&mut self, ev: EvidenceSteps) -> usize {
        if let Some(i) = self.variants.iter().position(|v| *v == ev) {
            return i;
        }
        self.variants.push(ev);
        self.variants.len() - 1
    }

    /// The first day whose facts any window needs (never after `span.from`), and the
    /// first day whose facts windows of every role need (never after `span.detail_from`).
    fn fact_range(&self, span: Span) -> (NaiveDate, NaiveDate) {
        let all = self.towns.values().flatten();
        let first = all.clone().map(|w| w.start).fold(span.from, Ord::min);
        let detail = all
            .filter(|w| w.end >= span.detail_from)
            .map(|w| w.start)
            .fold(span.detail_from, Ord::min);
        (first, Ord::max(first, detail))
    }
}

/// The condition on `households` rows.
fn households_where(homes: &Homes) -> Condition {
    Condition::all()
        .add(homes.cond.clone())
        .add(homes.in_range((household::Entity, household::Column::Id)))
}

/// `SELECT households.id FROM households WHERE …`: the households to reconcile.
fn household_ids(homes: &Homes) -> SelectStatement {
    Query::select()
        .column((household::Entity, household::Column::Id))
        .from(household::Entity)
        .cond_where(households_where(homes))
        .to_owned()
}

/// Pairings of the households that may hold during a window ending in `[from, to]`.
fn pairings_of(homes: &Homes, from: NaiveDate, to: NaiveDate) -> Condition {
    let earliest = from.checked_sub_months(Months::new(11)).unwrap_or(from);
    Condition::all()
        .add(homes.in_range((pairing::Entity, pairing::Column::HouseholdId)))
        .add(pairing::Column::HouseholdId.in_subquery(household_ids(homes)))
        .add(pairing::Column::ValidFrom.lte(to))
        .add(
            Condition::any()
                .add(pairing::Column::ValidTo.is_null())
                .add(pairing::Column::ValidTo.gt(earliest)),
        )
}

/// Reconciles the households matching `households` over windows ending in `[from, to]`.
pub async fn reconcile(
    db: &impl ConnectionTrait,
    households: Condition,
    from: NaiveDate,
    to: NaiveDate,
) -> ApiResult<Reconciled> {
    let homes = Homes::from(households);
    reconcile_span(db, &mut Policies::default(), &homes, Span::all(from, to)).await
}

/// Reconciles `homes` over `span`, with policies from (and cached in) `policies`.
pub async fn reconcile_span(
    db: &impl ConnectionTrait,
    policies: &mut Policies,
    homes: &Homes,
    span: Span,
) -> ApiResult<Reconciled> {
    let households = household::Entity::find()
        .filter(households_where(homes))
        .order_by_asc(household::Column::TownId)
        .order_by_asc(household::Column::LedgerSeq)
        .order_by_asc(household::Column::Id)
        .into_partial_model::<Household>()
        .all(db)
        .await?;
    let mut rec = Reconciled {
        households,
        pairings: Vec::new(),
        helpers: HashMap::new(),
        places: HashMap::new(),
        windows: Vec::new(),
        counted: HashSet::new(),
        policy_source: String::new(),
        exit_cut_days: BTreeSet::new(),
    };
    if rec.households.is_empty() {
        return Ok(rec);
    }
    rec.load_people(db, homes, span).await?;
    let towns = rec.households.iter().map(|h| (h.county_id, h.town_id));
    let cal = Calendar::build(db, policies, towns.collect(), span).await?;
    let counts = Counts::load(db, &cal, homes, span).await?;
    let exited = household_exit::Column::HouseholdId.in_subquery(household_ids(homes));
    let exit_days = super::exits::exit_days(db, Condition::all().add(exited)).await?;
    rec.judge(&cal, &counts, &exit_days);
    rec.counted = counts.counted(&rec.pairings, span.detail_from);
    rec.policy_source = if cal.policy_sources.is_empty() {
        cal.policy_source
    } else {
        cal.policy_sources.join("、")
    };
    rec.exit_cut_days = cal.exit_cut_days;
    Ok(rec)
}

impl Reconciled {
    /// The households' pairings over the span, their helpers and the places named.
    async fn load_people(
        &mut self,
        db: &impl ConnectionTrait,
        homes: &Homes,
        span: Span,
    ) -> ApiResult<()> {
        let paired = pairings_of(homes, span.from, span.to);
        self.pairings = pairing::Entity::find()
            .filter(paired.clone())
            .order_by_asc(pairing::Column::Id)
            .into_partial_model::<Pairing>()
            .all(db)
            .await?;
        let helper_ids = Query::select()
            .column((pairing::Entity, pairing::Column::HelperId))
            .from(pairing::Entity)
            .cond_where(paired)
            .to_owned();
        self.helpers = helper::Entity::find()
            .filter(helper::Column::Id.in_subquery(helper_ids))
            .into_partial_model::<Helper>()
            .all(db)
            .await?
            .into_iter()
            .map(|h| (h.id, h))
            .collect();
        let places = self
            .households
            .iter()
            .flat_map(|h| [h.town_id, h.village_id]);
        self.places = jurisdictions::places(db, places).await?;
        Ok(())
    }
}

/// Bits per month in a packed count: a month has at most 31 distinct days.
const MONTH_BITS: u32 = 5;
/// Months packed into one 64-bit column (12 × 5 = 60 bits).
const MONTHS_PER_SLOT: usize = 12;

/// Counted distinct days per (pairing, kind, year, month), per evidence variant. The
/// database returns one row per (pairing, kind) with the months packed 5 bits each into
/// integer columns (moving rows out of SQLite one by one cost more than the grouping).
struct Counts {
    /// The first month of the range, as `year * 12 + month - 1`.
    base: i64,
    by_variant: Vec<HashMap<(i64, VisitKind), Vec<i64>>>,
}

/// `year * 12 + month - 1`: consecutive months are consecutive numbers.
fn month_number(y: i32, m: u32) -> i64 {
    i64::from(y) * 12 + i64::from(m) - 1
}

impl Counts {
    async fn load(
        db: &impl ConnectionTrait,
        cal: &Calendar,
        homes: &Homes,
        span: Span,
    ) -> ApiResult<Counts> {
        let (first, detail) = cal.fact_range(span);
        let base = month_number(first.year(), first.month());
        let slots = usize::try_from(month_number(span.to.year(), span.to.month()) - base)
            .unwrap_or(0)
            / MONTHS_PER_SLOT
            + 1;
        let mut by_variant = Vec::with_capacity(cal.variants.len());
        for ev in &cal.variants {
            let inner = counted_days(homes, (first, detail, span.to), ev);
            let q = packed(inner, base, slots);
            let stmt = db.get_database_backend().build(&q);
            let mut map = HashMap::new();
            // Columns by position, as `packed` selects them: pairing_id, kind, s0, s1 ….
            for row in db.query_all_raw(stmt).await? {
                let Ok(kind) = row.try_get_by_index::<String>(1)?.parse::<VisitKind>() else {
                    continue;
                };
                let packed = (0..slots)
                    .map(|i| row.try_get_by_index::<i64>(2 + i))
                    .collect::<Result<Vec<_>, _>>()?;
                map.insert((row.try_get_by_index::<i64>(0)?, kind), packed);
            }
            by_variant.push(map);
        }
        Ok(Counts { base, by_variant })
    }

    /// Distinct days in one month from packed slots.
    fn unpack(&self, packed: &[i64], (y, m): (i32, u32)) -> u32 {
        let Ok(offset) = usize::try_from(month_number(y, m) - self.base) else {
            return 0;
        };
        let Some(slot) = packed.get(offset / MONTHS_PER_SLOT) else {
            return 0;
        };
        let shift = (offset % MONTHS_PER_SLOT) as u32 * MONTH_BITS;
        u32::try_from((slot >> shift) & ((1 << MONTH_BITS) - 1)).unwrap_or(0)
    }

    fn get(&self, ev: usize, pairing: i64, kind: VisitKind, ym: (i32, u32)) -> u32 {
        self.by_variant
            .get(ev)
            .and_then(|c| c.get(&(pairing, kind)))
            .map_or(0, |packed| self.unpack(packed, ym))
    }

    /// (household, kind, y, m) with a counted visit under any variant, for the months
    /// from the month of `from` (earlier months hold first helpers' facts only).
    fn counted(
        &self,
        pairings: &[Pairing],
        from: NaiveDate,
    ) -> HashSet<(i64, VisitKind, i32, u32)> {
        let household: HashMap<i64, i64> =
            pairings.iter().map(|p| (p.id, p.household_id)).collect();
        let skip =
            usize::try_from(month_number(from.year(), from.month()) - self.base).unwrap_or(0);
        let mut out = HashSet::new();
        for ((p, kind), packed) in self.by_variant.iter().flat_map(HashMap::iter) {
            let Some(h) = household.get(p) else { continue };
            for offset in skip..packed.len() * MONTHS_PER_SLOT {
                let n = self.base + offset as i64;
                let ym = (
                    i32::try_from(n.div_euclid(12)).unwrap_or(0),
                    (n.rem_euclid(12) + 1) as u32,
                );
                if self.unpack(packed, ym) > 0 {
                    out.insert((*h, *kind, ym.0, ym.1));
                }
            }
        }
        out
    }
}

/// `SELECT pairing_id, kind, s0, s1 … FROM (counted days) GROUP BY pairing_id, kind`,
/// where slot `i` holds months `base + 12i …` packed [`MONTH_BITS`] each: every row of
/// the inner query is one distinct day and adds one to its month. CASE keeps it portable
/// (no bit operators or string aggregation needed).
fn packed(inner: SelectStatement, base: i64, slots: usize) -> SelectStatement {
    let c = |name: &str| Expr::col((Alias::new("c"), Alias::new(name)));
    let mut q = Query::select();
    q.expr_as(c("pairing_id"), Alias::new("pairing_id"))
        .expr_as(c("kind"), Alias::new("kind"))
        .from_subquery(inner, Alias::new("c"));
    for slot in 0..slots {
        let mut case = sea_orm::sea_query::CaseStatement::new();
        for i in 0..MONTHS_PER_SLOT {
            let n = base + (slot * MONTHS_PER_SLOT + i) as i64;
            let (y, m) = (n.div_euclid(12), n.rem_euclid(12) + 1);
            case = case.case(
                c("y").eq(y).and(c("m").eq(m)),
                Expr::val(1i64 << (i as u32 * MONTH_BITS)),
            );
        }
        let sum = Func::sum(case.finally(Expr::val(0i64)));
        q.expr_as(
            Func::cast_as(sum, Alias::new("BIGINT")),
            Alias::new(format!("s{slot}")),
        );
    }
    q.group_by_col(Alias::new("pairing_id"))
        .group_by_col(Alias::new("kind"))
        .to_owned()
}

/// The one aggregation every report rests on: one row `(pairing, kind, year, month)` per
/// distinct day of counted visits by the households' pairings, for facts dated in
/// `[first, to]` — only first helpers' before `detail`.
///
/// Grouping by the day is what makes a second visit on the same day count once. The
/// group's columns are those the indexes deliver rows in: pairings of each household by
/// `ix_pairings_household` (household, role, valid_to, id), then each pairing's facts
/// by `ix_facts_pairing_day` (household, helper, visit date, kind, …), which also holds
/// every column the conditions read. SQLite matches a GROUP BY to an index in any order
/// of its terms, so it groups as it reads, without a temporary b-tree or a table row per
/// fact, and picks that plan with or without planner statistics. The extra columns
/// depend on the pairing id or the date, so they change no group; PostgreSQL drops those
/// of the pairing (its key decides them) and, with the kind before the date, sorts once
/// for this grouping and the outer one by pairing and kind.
fn counted_days(
    homes: &Homes,
    (first, detail, to): (NaiveDate, NaiveDate, NaiveDate),
    ev: &[(NaiveDate, Evidence)],
) -> SelectStatement {
    let f = |c: visit_fact::Column| Expr::col((visit_fact::Entity, c));
    let p = |c: pairing::Column| Expr::col((pairing::Entity, c));
    let home_ok = Condition::all()
        .add(f(visit_fact::Column::WitnessOk).eq(true))
        .add(evidence_met(ev));
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
    let in_force = SqCondition::all()
        .add(
            f(visit_fact::Column::HouseholdId)
                .equals((pairing::Entity, pairing::Column::HouseholdId)),
        )
        .add(f(visit_fact::Column::HelperId).equals((pairing::Entity, pairing::Column::HelperId)))
        .add(f(visit_fact::Column::VisitDate).gte(p(pairing::Column::ValidFrom)))
        .add(
            SqCondition::any()
                .add(p(pairing::Column::ValidTo).is_null())
                .add(f(visit_fact::Column::VisitDate).lt(p(pairing::Column::ValidTo))),
        );
    let needed = SqCondition::any()
        .add(p(pairing::Column::Role).eq(PairingRole::First.code()))
        .add(f(visit_fact::Column::VisitDate).gte(detail));
    Query::select()
        .expr_as(p(pairing::Column::Id), Alias::new("pairing_id"))
        .expr_as(f(visit_fact::Column::Kind), Alias::new("kind"))
        .expr_as(f(visit_fact::Column::Year), Alias::new("y"))
        .expr_as(f(visit_fact::Column::Month), Alias::new("m"))
        .from(pairing::Entity)
        .inner_join(visit_fact::Entity, in_force)
        .cond_where(homes.in_range((pairing::Entity, pairing::Column::HouseholdId)))
        .cond_where(homes.in_range((visit_fact::Entity, visit_fact::Column::HouseholdId)))
        .and_where(p(pairing::Column::HouseholdId).in_subquery(household_ids(homes)))
        .and_where(f(visit_fact::Column::VisitDate).gte(first))
        .and_where(f(visit_fact::Column::VisitDate).lte(to))
        .cond_where(needed)
        .cond_where(counts)
        .group_by_col((pairing::Entity, pairing::Column::HouseholdId))
        .group_by_col((pairing::Entity, pairing::Column::Role))
        .group_by_col((pairing::Entity, pairing::Column::ValidTo))
        .group_by_col((pairing::Entity, pairing::Column::Id))
        .group_by_col((visit_fact::Entity, visit_fact::Column::Kind))
        .group_by_col((visit_fact::Entity, visit_fact::Column::VisitDate))
        .group_by_col((visit_fact::Entity, visit_fact::Column::Year))
        .group_by_col((visit_fact::Entity, visit_fact::Column::Month))
        .to_owned()
}

/// The home visit facts that hold the evidence in force on their date: one term per
/// step, bounded by the days it is in force (no bound at all for a town whose evidence
/// never changed, the usual case, so the query is the same as before steps).
fn evidence_met(steps: &[(NaiveDate, Evidence)]) -> Condition {
    let f = |c: visit_fact::Column| Expr::col((visit_fact::Entity, c));
    let mut any = Condition::any();
    for (i, (from, ev)) in steps.iter().enumerate() {
        let mut step = Condition::all().add(f(visit_fact::Column::PhotoCount).gte(ev.min_photos));
        if ev.both_signatures {
            step = step.add(f(visit_fact::Column::HouseholdSigned).eq(true));
        }
        if i > 0 {
            step = step.add(f(visit_fact::Column::VisitDate).gte(*from));
        }
        if let Some((until, _)) = steps.get(i + 1) {
            step = step.add(f(visit_fact::Column::VisitDate).lt(*until));
        }
        any = any.add(step);
    }
    // No steps: no policy, nothing counts (an empty `any` would be no condition at all).
    if steps.is_empty() {
        any = any.add(Expr::val(1).eq(0));
    }
    any
}

/// The pairings grouped into stretches (see [`Reconciled::judge`]): per household,
/// helper and role, in date order, a pairing joins the stretch before it when it begins
/// the day that one ends. A pairing ended where it began (an exit before its start)
/// never held and is left out.
fn stretches(pairings: &[Pairing]) -> Vec<Vec<&Pairing>> {
    let mut held: Vec<&Pairing> = pairings
        .iter()
        .filter(|p| p.valid_to.is_none_or(|t| t > p.valid_from))
        .collect();
    held.sort_by_key(|p| {
        (
            p.household_id,
            p.helper_id,
            p.role.clone(),
            p.valid_from,
            p.id,
        )
    });
    let mut out: Vec<Vec<&Pairing>> = Vec::new();
    for p in held {
        let joins = out.last().and_then(|c| c.last()).is_some_and(|q| {
            (q.household_id, q.helper_id, &q.role) == (p.household_id, p.helper_id, &p.role)
                && q.valid_to == Some(p.valid_from)
        });
        match out.last_mut() {
            Some(chain) if joins => chain.push(p),
            _ => out.push(vec![p]),
        }
    }
    out
}

impl Reconciled {
    /// Judges every window of every pairing that overlaps it. A window ending today or
    /// later is open: not judged yet (see [`WindowResult::open`]). A helper's pairings
    /// with a household in one role that follow on each other without a gap (one ends
    /// the day the next begins: an exit and a return with the same helpers) are one
    /// stretch: a window they cover together is the helper's, judged once on the
    /// visits of all of them, not left to no one and listed twice.
    ///
    /// A stretch that ended (by the household's exit or a change of helper) owes the
    /// windows its end cut by the window policy's `exit_cuts` (none by default); any
    /// other window it overlaps without covering is listed, judged for no one.
    fn judge(&mut self, cal: &Calendar, counts: &Counts, exit_days: &super::exits::ExitDays) {
        let today = super::today();
        let successors = super::exits::Successors::of(
            self.pairings
                .iter()
                .map(|p| (p.household_id, p.role.as_str(), p.valid_from, p.created_at)),
        );
        let handovers = self.handovers();
        let town_of: HashMap<i64, i64> =
            self.households.iter().map(|h| (h.id, h.town_id)).collect();
        for chain in stretches(&self.pairings) {
            let (Some(first), Some(p)) = (chain.first(), chain.last()) else {
                continue;
            };
            let Some(town) = town_of.get(&p.household_id) else {
                continue;
            };
            let Ok(role) = p.role.parse::<PairingRole>() else {
                continue;
            };
            let (from, to) = (first.valid_from, p.valid_to);
            let exit_ended = to.is_some_and(|t| exit_days.contains_key(&(p.household_id, t)));
            let known_on =
                super::exits::end_known_on((p.household_id, &p.role, to), exit_days, &successors);
            let start_known_on = handovers.start_known_on(
                (first.household_id, &first.role, first.helper_id),
                (first.valid_from, first.filed_on),
            );
            for w in cal.towns.get(town).into_iter().flatten() {
                if w.req.role != role {
                    continue;
                }
                let owed = w.exit_cuts.owes((from, to), known_on, (w.start, w.end));
                let known_in_time = ExitCuts::start_known_in_time(start_known_on, w.end);
                let required = owed && known_in_time;
                // A window the pairing's end (an exit or a change of helper) cut and the
                // helper still owes is due by the day before the end, and judged from it.
                let due_by = Some(ExitCuts::due_by(to, w.end)).filter(|d| required && *d < w.end);
                let late = start_known_on.filter(|_| owed && !known_in_time);
                let overlaps = from <= w.end && to.is_none_or(|t| t > w.start);
                if !overlaps {
                    continue;
                }
                let count: u32 = chain
                    .iter()
                    .flat_map(|q| w.months.iter().map(move |ym| (q.id, *ym)))
                    .map(|(id, ym)| counts.get(w.ev, id, w.req.kind, ym))
                    .sum();
                self.windows.push(JudgedWindow {
                    pairing_id: p.id,
                    household_id: p.household_id,
                    helper_id: p.helper_id,
                    result: WindowResult {
                        role,
                        kind: w.req.kind,
                        start: w.start,
                        end: w.end,
                        count,
                        min_count: w.req.min_count,
                        required,
                        met: count >= w.req.min_count,
                        open: due_by.unwrap_or(w.end) >= today,
                        helper: None,
                        due_by,
                        ended_by_change: due_by.is_some() && !exit_ended,
                        change_filed_on: late,
                        first_pairing: late.is_some()
                            && handovers
                                .is_first((first.household_id, &first.role), first.valid_from),
                    },
                    sanctioned: w.sanctioned,
                });
            }
        }
    }

    /// The helper as a DTO.
    pub fn helper(&self, id: i64) -> Option<HelperRef> {
        self.helpers.get(&id).map(Helper::to_ref)
    }

    fn place_name(&self, id: i64) -> String {
        self.places
            .get(&id)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    }

    /// Windows required of a pairing, ended, and ending within `[from, to]`: what rates,
    /// misses and escalations judge (an open window is not a miss yet).
    pub fn required_in(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Iterator<Item = &JudgedWindow> {
        self.windows.iter().filter(move |w| {
            w.result.required && !w.result.open && w.result.end >= from && w.result.end <= to
        })
    }

    /// Rates per place (`key` picks the village or town of a household).
    pub fn rates(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        key: impl Fn(&Household) -> i64,
    ) -> Vec<AreaRate> {
        let by_household: HashMap<i64, &Household> =
            self.households.iter().map(|h| (h.id, h)).collect();
        let paired = self.paired_within(from, to);
        let mut out: BTreeMap<i64, AreaRate> = BTreeMap::new();
        for h in self.households.iter().filter(|h| paired.contains(&h.id)) {
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

    /// The households in the programme at some time within `[from, to]`: those with a
    /// pairing then. A household added to the ledger later, or exited earlier, is not one
    /// of the period's households (an earlier quarter's report must not change when the
    /// ledger grows, nor list it as unvisited).
    fn paired_within(&self, from: NaiveDate, to: NaiveDate) -> HashSet<i64> {
        self.pairings
            .iter()
            .filter(|p| p.valid_from <= to && p.valid_to.is_none_or(|t| t > from))
            .map(|p| p.household_id)
            .collect()
    }

    /// Missed windows ending within `[from, to]`.
    pub fn misses(&self, from: NaiveDate, to: NaiveDate) -> Vec<Miss> {
        let by_household: HashMap<i64, &Household> =
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
                    helper: helper.to_ref(),
                    unit: unit_of(&helper.unit_position),
                    role: w.result.role,
                    kind: w.result.kind,
                    start: w.result.start,
                    end: w.result.end,
                    due_by: w.result.due_by,
                    ended_by_change: w.result.ended_by_change,
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

    /// First helpers' sanctionable missed windows in `[year start, to]`, per helper:
    /// those of the kinds their policy counts (a missed call is a miss in the lists and
    /// rates, but seed 001 §四(四) sanctions missed home visits only).
    pub fn first_misses(&self, to: NaiveDate) -> BTreeMap<i64, u32> {
        let from = NaiveDate::from_ymd_opt(to.year(), 1, 1).unwrap_or(to);
        let mut per_helper: BTreeMap<i64, u32> = BTreeMap::new();
        for w in self
            .required_in(from, to)
            .filter(|w| !w.result.met && w.result.role == PairingRole::First && w.sanctioned)
        {
            *per_helper.entry(w.helper_id).or_default() += 1;
        }
        per_helper
    }

    /// Seed 001 §四(四): first helpers' sanctionable misses in `[year start, to]`, and
    /// units over the threshold, by the thresholds of `sanctions`.
    pub fn escalations(
        &self,
        to: NaiveDate,
        sanctions: &Sanctions,
    ) -> (Vec<HelperEscalation>, Vec<UnitEscalation>) {
        escalate(&self.first_misses(to), &self.helpers, sanctions)
    }

    /// `helpers` of the household in `role`, as DTOs, by the day their first pairing
    /// with it began: the order the office reads who held it when.
    fn in_pairing_order(
        &self,
        household: i64,
        role: PairingRole,
        mut helpers: Vec<i64>,
    ) -> Vec<HelperRef> {
        let began = |helper: i64| {
            self.pairings
                .iter()
                .filter(|p| {
                    p.household_id == household && p.helper_id == helper && p.role == role.code()
                })
                .map(|p| p.valid_from)
                .min()
        };
        helpers.sort_by_key(|h| (began(*h), *h));
        helpers.iter().filter_map(|id| self.helper(*id)).collect()
    }

    /// Whether a pairing of the household in `role` began inside `[start, end]` while
    /// another ended inside it: a change of helper, not a first pairing begun mid-window
    /// (QA s24a F5).
    fn helper_changed_in(
        &self,
        household: i64,
        role: PairingRole,
        (start, end): (NaiveDate, NaiveDate),
    ) -> bool {
        let of_role = || {
            self.pairings
                .iter()
                .filter(move |p| p.household_id == household && p.role == role.code())
                .filter(|p| p.valid_to.is_none_or(|t| t > p.valid_from))
        };
        let began = of_role().any(|p| p.valid_from > start && p.valid_from <= end);
        let ended = of_role().any(|p| p.valid_to.is_some_and(|t| t > start && t <= end));
        began && ended
    }

    /// The day a change of helper was filed that took the household over in `role` by
    /// the window's first day, when that was on or after its last day (see
    /// [`UnownedWindow::change_filed_on`]), and whether that was the household's first
    /// pairing in the role rather than a change.
    fn change_filed_after(
        &self,
        handovers: &super::exits::Handovers,
        (household, role): (i64, PairingRole),
        (start, end): (NaiveDate, NaiveDate),
    ) -> Option<(NaiveDate, bool)> {
        self.pairings
            .iter()
            .filter(|p| p.household_id == household && p.role == role.code())
            .filter(|p| p.valid_from <= start && p.valid_to.is_none_or(|t| t > start))
            .filter_map(|p| {
                let filed = handovers.start_known_on(
                    (p.household_id, &p.role, p.helper_id),
                    (p.valid_from, p.filed_on),
                )?;
                Some((
                    filed,
                    handovers.is_first((household, &p.role), p.valid_from),
                ))
            })
            .filter(|(filed, _)| *filed >= end)
            .min()
    }

    /// The changes of helper among the pairings (see [`super::exits::Handovers`]).
    fn handovers(&self) -> super::exits::Handovers {
        super::exits::Handovers::of(self.pairings.iter().map(|p| {
            (
                p.household_id,
                p.role.as_str(),
                p.helper_id,
                p.valid_from,
                p.valid_to,
            )
        }))
    }

    /// Windows ending in `[from, to]` that some pairing of the household overlapped but
    /// none covered in full, or whose holder took the household over by a change filed
    /// after the window ended, so none is judged on them (see [`UnownedWindow`]).
    pub fn unowned(&self, from: NaiveDate, to: NaiveDate) -> Vec<UnownedWindow> {
        type Key = (i64, PairingRole, VisitKind, NaiveDate, NaiveDate);
        let mut groups: BTreeMap<Key, (bool, Vec<i64>, u32)> = BTreeMap::new();
        for w in self
            .windows
            .iter()
            .filter(|w| w.result.end >= from && w.result.end <= to)
        {
            let r = &w.result;
            let g = groups
                .entry((w.household_id, r.role, r.kind, r.start, r.end))
                .or_default();
            g.0 |= r.required;
            g.2 = g.2.saturating_add(r.count);
            if !g.1.contains(&w.helper_id) {
                g.1.push(w.helper_id);
            }
        }
        let by_household: HashMap<i64, &Household> =
            self.households.iter().map(|h| (h.id, h)).collect();
        let handovers = self.handovers();
        let mut out: Vec<UnownedWindow> = groups
            .into_iter()
            .filter(|(_, (owned, _, _))| !owned)
            .filter_map(
                |((household, role, kind, start, end), (_, helpers, contacts))| {
                    let h = by_household.get(&household)?;
                    let late = self.change_filed_after(&handovers, (household, role), (start, end));
                    Some(UnownedWindow {
                        household_id: h.id,
                        head_name: h.head_name.clone(),
                        village: self.place_name(h.village_id),
                        role,
                        kind,
                        start,
                        end,
                        helpers: self.in_pairing_order(household, role, helpers),
                        exit_on: None,
                        helper_changed: self.helper_changed_in(household, role, (start, end)),
                        change_filed_on: late.map(|(day, _)| day),
                        first_pairing: late.is_some_and(|(_, first)| first),
                        contacts,
                    })
                },
            )
            .collect();
        out.sort_by(|a, b| {
            (a.end, &a.village, &a.head_name, a.role, a.kind).cmp(&(
                b.end,
                &b.village,
                &b.head_name,
                b.role,
                b.kind,
            ))
        });
        out
    }

    /// Households with no counted home visit in `[from, to]`.
    pub fn without_home_visit(&self, from: NaiveDate, to: NaiveDate) -> Vec<HouseholdRef> {
        let months = months(from, to);
        let paired = self.paired_within(from, to);
        self.households
            .iter()
            .filter(|h| paired.contains(&h.id))
            .filter(|h| {
                !months
                    .iter()
                    .any(|(y, m)| self.counted.contains(&(h.id, VisitKind::Home, *y, *m)))
            })
            .map(|h| HouseholdRef {
                household_id: h.id,
                head_name: h.head_name.clone(),
                village: self.place_name(h.village_id),
            })
            .collect()
    }
}

/// Seed 001 §四(四) from first helpers' sanctionable misses this year (`per_helper`):
/// each helper's action, and the units whose helpers reached the unit threshold in all.
/// A helper below the first threshold has no action and is not listed (their misses
/// still count toward the unit).
pub fn escalate(
    per_helper: &BTreeMap<i64, u32>,
    helpers: &HashMap<i64, Helper>,
    sanctions: &Sanctions,
) -> (Vec<HelperEscalation>, Vec<UnitEscalation>) {
    let mut list = Vec::new();
    let mut units: BTreeMap<String, u32> = BTreeMap::new();
    for (id, n) in per_helper {
        let Some(h) = helpers.get(id) else {
            continue;
        };
        let unit = unit_of(&h.unit_position);
        *units.entry(unit.clone()).or_default() += n;
        let Some(action) = helper_action(*n, sanctions) else {
            continue;
        };
        list.push(HelperEscalation {
            helper: h.to_ref(),
            unit,
            misses_this_year: *n,
            action: action.to_string(),
        });
    }
    list.sort_by(|a, b| {
        (b.misses_this_year, &a.unit, &a.helper.name).cmp(&(
            a.misses_this_year,
            &b.unit,
            &b.helper.name,
        ))
    });
    let mut unit_list: Vec<UnitEscalation> = units
        .into_iter()
        .filter_map(|(unit, n)| {
            unit_action(n, sanctions).map(|a| UnitEscalation {
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
    (list, unit_list)
}

/// Why a visit does not count (in Chinese), given the pairings of its household and the
/// evidence its policy asks; `None` when it counts.
pub fn reason_not_counted(
    f: &visit_fact::Model,
    pairings: &[Pairing],
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
    // A replaced version says so before a void: the void is the visit's, said once on
    // its current version (the sheet leaves replaced versions out).
    let reason = if f.superseded {
        bangfu_shared::report::SUPERSEDED_ZH
    } else if f.voided {
        "已作废"
    } else if f.clock_flag {
        "设备时间异常"
    } else if f.photo_reused {
        "照片或签字图片已用于其他走访"
    } else if !paired {
        "走访时未与该户结对"
    } else if home && ev.both_signatures && !f.household_signed {
        "缺少户主或见证人签字"
    } else if home && !f.witness_ok {
        "见证人未说明原因"
    } else if home && f.photo_count < i64::from(ev.min_photos) {
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
/// Each line is judged by the evidence of the policy in force for its household's town
/// on its visit date, as the visit was made under it (a policy changed mid-quarter
/// judges the visits after the change, not those before).
pub async fn record_lines(
    db: &impl ConnectionTrait,
    policies: &mut Policies,
    households: &[Household],
    pairings: &[Pairing],
    from: NaiveDate,
    to: NaiveDate,
    late_after: Option<chrono::DateTime<chrono::Utc>>,
) -> ApiResult<Vec<RecordLine>> {
    let places: HashMap<i64, (i64, i64)> = households
        .iter()
        .map(|h| (h.id, (h.county_id, h.town_id)))
        .collect();
    let facts = visit_fact::Entity::find()
        .filter(visit_fact::Column::HouseholdId.is_in(places.keys().copied()))
        .filter(visit_fact::Column::VisitDate.between(from, to))
        .order_by_asc(visit_fact::Column::VisitDate)
        .order_by_asc(visit_fact::Column::ReceivedAt)
        .order_by_asc(visit_fact::Column::RecordId)
        .all(db)
        .await?;
    let ids: Vec<String> = facts.iter().map(|f| f.record_id.clone()).collect();
    let mut flags = office_flags(db, &ids).await?;
    let mut seen: HashSet<(i64, i64, String, NaiveDate)> = HashSet::new();
    let mut out = Vec::new();
    for f in facts {
        let key = (f.household_id, f.helper_id, f.kind.clone(), f.visit_date);
        let (county, town) = places
            .get(&f.household_id)
            .copied()
            .ok_or_else(|| ApiError::Internal(format!("fact {}: household", f.record_id)))?;
        let ev = policies.evidence(db, county, town, f.visit_date).await?;
        let mut reason = reason_not_counted(&f, pairings, ev, seen.contains(&key));
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
        let shown = flags.remove(&f.record_id).unwrap_or_default();
        out.push(RecordLine {
            household_id: f.household_id,
            date: f.visit_date,
            kind,
            helper_id: f.helper_id,
            counts: reason.is_none(),
            reason,
            photo_count: i32::try_from(f.photo_count).unwrap_or(i32::MAX),
            late: late_after.is_some_and(|t| f.received_at > t),
            flags: shown,
            record_id: f.record_id,
        });
    }
    Ok(out)
}

/// Flags that a report shows beside a visit (see `RecordLine::flags`); a clock flag
/// already shows as the reason the visit does not count.
const OFFICE_FLAGS: [&str; 4] = [
    "entered_late",
    "chain_break",
    "seq_reused",
    super::sync::CLOCK_WENT_BACK,
];

/// The [`OFFICE_FLAGS`] of the records `ids`, by record id (records without are absent).
async fn office_flags(
    db: &impl ConnectionTrait,
    ids: &[String],
) -> ApiResult<HashMap<String, Vec<String>>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(crate::db::IN_CHUNK) {
        let rows: Vec<(String, String)> = record::Entity::find()
            .select_only()
            .columns([record::Column::Id, record::Column::Flags])
            .filter(record::Column::Id.is_in(chunk.to_vec()))
            .filter(record::Column::Flags.ne(""))
            .into_tuple()
            .all(db)
            .await?;
        for (id, flags) in rows {
            let flags: Vec<&str> = flags.split(',').collect();
            // With the device's clock wrong, how late it was signed is unknown.
            let clock_wrong = flags.iter().any(|f| super::sync::CLOCK_FLAGS.contains(f));
            let shown: Vec<String> = flags
                .into_iter()
                .filter(|f| OFFICE_FLAGS.contains(f))
                .filter(|f| !(clock_wrong && *f == "entered_late"))
                .map(str::to_string)
                .collect();
            if !shown.is_empty() {
                out.insert(id, shown);
            }
        }
    }
    Ok(out)
}

/// The first day whose visits a report of `[from, to]` lists: a window judged in it
/// (one that ends within it) may have begun before `from`, and the visits that met it
/// are its evidence (QA s23b F1: a window met by a visit of the quarter before read
/// 到位 beside 本季度无走访记录, and the drill-down had no record behind it).
pub fn evidence_from(windows: &[JudgedWindow], from: NaiveDate, to: NaiveDate) -> NaiveDate {
    windows
        .iter()
        .filter(|w| (from..=to).contains(&w.result.end))
        .map(|w| w.result.start)
        .fold(from, std::cmp::Ord::min)
}

/// Whether a report of the span from `from` lists `line`: a visit of the span, or one
/// before it that lies in a window of its helper and kind among `windows` (those the
/// report judges), as its evidence.
pub fn line_shown<'a>(
    line: &RecordLine,
    from: NaiveDate,
    mut windows: impl Iterator<Item = &'a JudgedWindow>,
) -> bool {
    line.date >= from
        || windows.any(|w| {
            w.helper_id == line.helper_id
                && w.household_id == line.household_id
                && w.result.kind == line.kind
                && (w.result.start..=w.result.end).contains(&line.date)
        })
}

/// A quarter's range.
pub fn quarter_range(q: Quarter) -> (NaiveDate, NaiveDate) {
    (q.start(), q.end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_voided_visit_is_said_voided_once_on_its_current_version() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 4).unwrap_or_default();
        let fact = |superseded: bool| visit_fact::Model {
            record_id: format!("r{superseded}"),
            original_id: "r".into(),
            household_id: 1,
            helper_id: 2,
            kind: "phone".into(),
            visit_date: day,
            year: 2026,
            month: 3,
            photo_count: 0,
            photos_complete: true,
            household_signed: false,
            witness_ok: true,
            clock_flag: false,
            photo_reused: false,
            voided: true,
            superseded,
            received_at: chrono::Utc::now(),
        };
        let ev = Evidence {
            both_signatures: true,
            min_photos: 1,
        };
        let reason = |f| reason_not_counted(&f, &[], ev, false);
        assert_eq!(reason(fact(false)).as_deref(), Some("已作废"));
        assert_eq!(
            reason(fact(true)).as_deref(),
            Some(bangfu_shared::report::SUPERSEDED_ZH),
            "the replaced versions are left out of the sheet, not each said voided"
        );
    }

    #[test]
    fn packed_months_unpack_across_slots() {
        let phone = vec![3 | (31 << MONTH_BITS), 2 << MONTH_BITS];
        let counts = Counts {
            base: month_number(2025, 11),
            by_variant: vec![HashMap::from([((7, VisitKind::Phone), phone)])],
        };
        let get = |kind, ym| counts.get(0, 7, kind, ym);
        assert_eq!(get(VisitKind::Phone, (2025, 11)), 3);
        assert_eq!(
            get(VisitKind::Phone, (2025, 12)),
            31,
            "a full month of days"
        );
        assert_eq!(get(VisitKind::Phone, (2026, 1)), 0);
        assert_eq!(
            get(VisitKind::Phone, (2026, 12)),
            2,
            "second slot, second month"
        );
        assert_eq!(get(VisitKind::Phone, (2025, 10)), 0, "before the range");
        assert_eq!(get(VisitKind::Home, (2025, 11)), 0);
        let pairing = Pairing {
            id: 7,
            household_id: 70,
            helper_id: 1,
            role: "first".into(),
            valid_from: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default(),
            valid_to: None,
            created_at: chrono::Utc::now(),
            filed_on: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default(),
        };
        let day = |y, m| NaiveDate::from_ymd_opt(y, m, 1).unwrap_or_default();
        let counted = counts.counted(std::slice::from_ref(&pairing), day(2025, 11));
        assert_eq!(counted.len(), 3);
        assert!(counted.contains(&(70, VisitKind::Phone, 2026, 12)));
        let later = counts.counted(&[pairing], day(2026, 1));
        assert_eq!(later.len(), 1, "months before `from` are left out");
        assert!(later.contains(&(70, VisitKind::Phone, 2026, 12)));
    }

    #[test]
    fn one_unit_written_with_or_without_a_space_is_one_unit() {
        assert_eq!(unit_of("市住建局 主任科员"), "市住建局");
        assert_eq!(unit_of("市住建局主任科员"), "市住建局");
        assert_eq!(unit_of("市住建局副主任科员"), "市住建局");
        assert_eq!(
            unit_of("市住建局　副局长"),
            "市住建局",
            "a full-width space"
        );
        assert_eq!(unit_of("市人民医院副院长"), "市人民医院");
        assert_eq!(unit_of("村委会主任"), "村委会");
        assert_eq!(unit_of("市教育局"), "市教育局", "no title: the whole cell");
        assert_eq!(unit_of("主任"), "主任", "a title alone stays as written");
        assert_eq!(unit_of(""), "");
    }

    #[test]
    fn a_position_in_brackets_is_the_same_unit() {
        for cell in [
            "市教育局(副科长)",
            "市教育局（副科长）",
            " 市教育局 ( 副科长 ) ",
            "市教育局　（副科长）",
            "市教育局(副科长）",
            "市教育局（党组成员、副局长）",
            "市教育局副科长",
            "市教育局　副科长",
            "市教育局 副科长",
        ] {
            assert_eq!(unit_of(cell), "市教育局", "{cell}");
        }
        // A bracket naming part of a unit, not a position, is the unit's name.
        assert_eq!(unit_of("市人民医院（东院）"), "市人民医院（东院）");
        assert_eq!(unit_of("市人民医院(东院)副院长"), "市人民医院(东院)");
        assert_eq!(unit_of("(副科长)"), "(副科长)", "no unit before it");
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
