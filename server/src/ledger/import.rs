//! Importing a ledger file, all or nothing.
//!
//! The whole import runs in one transaction: every row is validated first, then the
//! file is matched against what is stored and every rule that needs the database (the
//! caller's town, helpers known by phone, helper limits counted across files, the dates
//! of a change of helper) is checked. Any error rolls everything back and all errors
//! are reported at once: every stage runs even after an earlier one found errors. Only
//! a file that cannot be read as a whole (no header, a header laid out wrongly, not
//! text; see [`read::parse_rows`]) is refused before the database is asked. A row with
//! an error of its own (an invalid phone, an empty name, a 序号 repeated from an
//! earlier row) is left out of the database stages, and so is a row whose town (a town
//! office's file naming another town) or village is not resolved: each gets its own
//! errors, not a cascade, and the other rows are still checked to the end. A row left
//! out counts toward no limit and matches no stored helper or household, so an error
//! it would cause there (its helper over 一帮一, say) is told once it is fixed. A dry run does the same work and
//! always rolls back, so it reports exactly what a real import would do. Importing
//! the same file twice changes nothing; a file that gives a household another helper
//! ends the old pairing and starts a new one — history is never overwritten.
//!
//! A household is identified by village, head of household and phone; failing that, by
//! village and head alone when exactly one such household exists (a changed phone). A
//! helper is identified by phone number, which is also their login: a phone stored for
//! another county's helper, or under another name, refuses the row, and so does, in a
//! town office's file, a helper still paired with another town's households (see
//! [`upsert_helpers`]). Households missing from a later file are left as they are: a
//! ledger file adds and updates, it never deletes. A row naming a household that has
//! left pairing is left out whole, its helpers included ([`match_households`]).
//!
//! Changes of helper (seed 001 §三, DOMAIN.md): one filed with less notice than the
//! policy asks is accepted and flagged (`short_notice` on the pairing), never refused —
//! an unfiled change is the unit's own responsibility — and each is listed in the
//! report's `notices` (the import succeeded; they are flags, not failures). The
//! import's `reason` is stored only on the pairings it changed. A filing date after
//! today and an effective date more than a year ahead are refused ([`check_dates`]),
//! and so are pairings starting or ending before the current month (windows already
//! ended would change hands) unless the county office imports them, with a notice
//! ([`check_retroactive`]).

use bangfu_shared::api::ImportReport;
use bangfu_shared::ledger::{LedgerRow, RowError, col, normalize_cell};
use bangfu_shared::{HouseholdStatus, JurisdictionLevel, PairingRole, Policy, Role};
use chrono::NaiveDate;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::read;
use crate::entities::{
    account, helper, household, household_exit, jurisdiction, pairing, visit_fact,
};
use crate::error::{ApiError, ApiResult};
use crate::services::audit::{self, Entry};
use crate::services::{Caller, Scope, jurisdictions, now, policy};

/// Rows written per INSERT statement (well under SQLite's and PostgreSQL's bind limits).
const CHUNK: usize = 1000;

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Validate and report, change nothing.
    pub dry_run: bool,
    /// The county to import into; an admin must name one, an office imports into its own
    /// (naming another is 404 `county not found`, as it is out of its scope).
    pub county_id: Option<i64>,
    /// The date new pairings and changes of helper take effect.
    pub effective_from: NaiveDate,
    /// The date the changes were filed with the county office.
    pub filed_on: NaiveDate,
    /// Why helpers change; stored on the pairings this import changes, not on the
    /// households it pairs for the first time.
    pub reason: Option<String>,
    /// The county office confirms a change of helper dated before the current quarter:
    /// ended quarters are judged again by it (see [`check_retroactive`]).
    pub retroactive: bool,
}

/// Imports a ledger file; see the module documentation for the rules.
pub async fn import(
    db: &DatabaseConnection,
    caller: &Caller,
    bytes: &[u8],
    opts: &ImportOptions,
) -> ApiResult<ImportReport> {
    caller.require_office("import a ledger")?;
    let county_id = match (caller.role, caller.county_id, opts.county_id) {
        (Role::Admin, _, Some(c)) => c,
        (Role::Admin, _, None) => {
            return Err(ApiError::BadRequest(
                "an admin import must name the county (county=ID)".into(),
            ));
        }
        // An office's county is its own: another named is out of its scope, answered as
        // the other county endpoints do (never silently imported into its own instead).
        (_, Some(own), Some(c)) if c != own => return Err(ApiError::NotFound("county")),
        (_, Some(own), _) => own,
        (_, None, _) => {
            return Err(ApiError::Forbidden(
                "this account belongs to no county".into(),
            ));
        }
    };
    let county = jurisdictions::get(db, county_id).await?;
    if county.level != JurisdictionLevel::County.code() {
        return Err(ApiError::BadRequest(format!("{county_id} is not a county")));
    }
    let towns = jurisdictions::children(db, county_id).await?;
    let known: Vec<String> = towns.iter().map(|t| t.name.clone()).collect();
    // Parsing a county's spreadsheet takes long enough to hold up the sync requests an
    // HTTP worker serves: it runs on a blocking thread. It takes an office read's slot,
    // as reports and exports do: a workbook's text is held whole while it is read (a
    // 124 KB file of 120 MB text took 350 MB), and four at once took the server to
    // 1.2 GB (QA s33c C4).
    let owned = bytes.to_vec();
    let parsed = crate::services::cpu_slots::CpuSlots::office_reads()
        .run(move || read::parse_rows(&owned, &known))
        .await?
        .map_err(|mut errors| {
            // The file cannot be read, but the dates asked are known already: said in
            // the same answer, not after the file is mended.
            errors.extend(date_errors(opts));
            ApiError::InvalidLedger(errors)
        })?;
    let policy = policy::effective(db, county_id, None, opts.effective_from).await?;
    // One writer at a time: on SQLite the server's other writes (pushes, uploads) wait
    // for the import instead of making it fail at its first write after they commit
    // (`SQLITE_BUSY_SNAPSHOT`); on PostgreSQL two imports of one county (a retried
    // upload, two offices) take turns on the county's row instead of both creating the
    // same new households.
    let _gate = crate::db::write_gate(db).await;
    let txn = db.begin().await?;
    jurisdiction::Entity::find_by_id(county_id)
        .lock_exclusive()
        .one(&txn)
        .await?;
    let ctx = Ctx {
        caller,
        county_id,
        policy: &policy,
        opts,
        now: now(),
    };
    match apply(&txn, &ctx, &parsed, towns).await {
        Ok(mut report) => {
            report.dry_run = opts.dry_run;
            if opts.dry_run {
                txn.rollback().await?;
            } else {
                // Devices re-read the households and pairings at their next pull.
                if !report.is_noop() {
                    crate::services::sync::bump_ledger(&txn, county_id).await?;
                }
                txn.commit().await?;
            }
            Ok(report)
        }
        Err(e) => Err(abandon(txn, e).await),
    }
}

/// Rolls back a failed import and returns why it failed. A rollback that fails (SQLite
/// has already rolled back after `SQLITE_FULL`) must not hide the cause: a full disk
/// was answered 500 "cannot rollback - no transaction is active" instead of 503
/// `storage_unavailable` (QA s33a S9).
async fn abandon(txn: sea_orm::DatabaseTransaction, e: ApiError) -> ApiError {
    if let Err(r) = txn.rollback().await {
        tracing::warn!(error = %r, "rolling back a failed ledger import");
    }
    e
}

struct Ctx<'a> {
    caller: &'a Caller,
    county_id: i64,
    policy: &'a Policy,
    opts: &'a ImportOptions,
    now: chrono::DateTime<chrono::Utc>,
}

/// Everything decided about the file, filled step by step.
#[derive(Default)]
struct Work {
    report: ImportReport,
    errors: Vec<RowError>,
    /// The worksheet of each row, to place errors (see [`Work::error`]).
    sheets: Vec<Option<String>>,
    /// Every table of the file, in file order, to sort errors by ([`fail_if_errors`]).
    tables: Vec<Option<String>>,
    audit: Vec<Entry>,
    town_ids: HashMap<String, i64>,
    village_ids: HashMap<(i64, String), i64>,
    /// The town and village of each row, once both are known ([`resolve_villages`]).
    /// A row without one has its error already and is left out of every later stage,
    /// so that the other rows' errors are still found and reported in the same answer
    /// without a cascade of follow-on errors about the row itself.
    places: Vec<Option<Place>>,
    /// Household id per row, once known; never set for a row left out.
    households: Vec<Option<i64>>,
    /// The county's stored households in the file's towns, loaded by
    /// [`match_households`].
    stored: Vec<household::Model>,
    /// The stored household (an index into `stored`) each row names, if any.
    matched: Vec<Option<usize>>,
    /// Rows left out: their household has left pairing (see [`match_households`]).
    /// Nothing of such a row is written, its helpers are not even looked at.
    skipped: Vec<bool>,
    helpers: HashMap<String, helper::Model>,
    /// Phones of stored helpers a row may not name (see [`upsert_helpers`]): their
    /// pairings are not considered, so the row gets one error, not a cascade.
    refused: HashSet<String>,
    /// The towns and villages this import creates, by name, for its notice: a typo in
    /// an address makes a new town, which counts alone did not show (QA s29b J10).
    created_places: Vec<String>,
}

/// Where a row's household lives, as stored ids.
#[derive(Debug, Clone, Copy)]
struct Place {
    town: i64,
    village: i64,
}

impl Work {
    /// An error about a cell of row `r` (an index into the file's rows), on its sheet.
    fn error(&self, rows: &[LedgerRow], r: usize, column: usize, reason: String) -> RowError {
        RowError::cell(rows[r].line, column, reason)
            .in_sheet(self.sheets.get(r).and_then(Option::as_deref))
    }

    /// Whether row `r` is read past the places: it has a town and a village, and its
    /// household has not left pairing (see [`match_households`]).
    fn in_play(&self, r: usize) -> bool {
        self.places.get(r).copied().flatten().is_some()
            && !self.skipped.get(r).copied().unwrap_or(false)
    }
}

async fn apply(
    db: &impl ConnectionTrait,
    ctx: &Ctx<'_>,
    parsed: &read::ParsedLedger,
    towns: Vec<jurisdiction::Model>,
) -> ApiResult<ImportReport> {
    let rows = parsed.rows.as_slice();
    let mut w = Work {
        places: vec![None; rows.len()],
        households: vec![None; rows.len()],
        matched: vec![None; rows.len()],
        skipped: vec![false; rows.len()],
        sheets: parsed.sheets.clone(),
        tables: parsed.tables.clone(),
        // The errors of the rows left out when reading, reported with the others.
        errors: parsed.errors.clone(),
        ..Work::default()
    };
    w.report.rows = rows.len();
    let mut step = std::time::Instant::now();
    let mut lap = |name: &str| {
        tracing::debug!(
            step = name,
            ms = step.elapsed().as_millis() as u64,
            "ledger import"
        );
        step = std::time::Instant::now();
    };
    // Every stage runs even when an earlier one found errors, so that one answer lists
    // them all (a user fixing the file should not learn of its problems one upload at
    // a time); a row whose place is unknown is left out of the later stages, and no
    // stage writes what depends on an earlier one having succeeded. Any error rolls
    // the whole transaction back.
    check_dates(ctx, &mut w);
    resolve_towns(db, ctx, rows, towns, &mut w).await?;
    resolve_villages(db, ctx, rows, &mut w).await?;
    lap("places");
    // Before the helpers: a row left out must not create its helpers or their accounts.
    match_households(db, rows, &mut w).await?;
    check_stored_seqs(db, ctx, rows, &mut w).await?;
    upsert_helpers(db, ctx, rows, &mut w).await?;
    lap("helpers");
    upsert_households(db, ctx, rows, &mut w).await?;
    lap("households");
    apply_pairings(db, ctx, rows, &mut w).await?;
    lap("pairings");
    ensure_accounts(db, ctx, rows, &mut w).await?;
    lap("accounts");
    fail_if_errors(&mut w)?;
    let summary = json!({
        "rows": w.report.rows,
        "households_created": w.report.households_created,
        "households_updated": w.report.households_updated,
        "households_skipped": w.report.households_skipped,
        "pairings_started": w.report.pairings_started,
        "pairings_ended": w.report.pairings_ended,
        "notices": w.report.notices.len(),
        "effective_from": ctx.opts.effective_from,
        "filed_on": ctx.opts.filed_on,
        "reason": ctx.opts.reason,
        "dry_run": ctx.opts.dry_run,
    });
    w.audit.push(Entry::new(
        "ledger.import",
        "county",
        Some(ctx.county_id),
        summary,
    ));
    audit::record_many(db, ctx.caller, std::mem::take(&mut w.audit)).await?;
    Ok(w.report)
}

fn fail_if_errors(w: &mut Work) -> ApiResult<()> {
    if w.errors.is_empty() {
        return Ok(());
    }
    let mut errors = std::mem::take(&mut w.errors);
    // Sheets in workbook order, then rows and columns.
    let mut order: HashMap<Option<&str>, usize> = HashMap::new();
    for s in w.tables.iter().chain(&w.sheets) {
        let next = order.len();
        order.entry(s.as_deref()).or_insert(next);
    }
    errors.sort_by_key(|e| {
        (
            order.get(&e.sheet.as_deref()).copied().unwrap_or(0),
            e.row,
            e.column_index,
        )
    });
    Err(ApiError::InvalidLedger(errors))
}

/// Maps town names to ids; a town office may only import its own town, a county office
/// or admin creates towns the county does not have yet.
async fn resolve_towns(
    db: &impl ConnectionTrait,
    ctx: &Ctx<'_>,
    rows: &[LedgerRow],
    towns: Vec<jurisdiction::Model>,
    w: &mut Work,
) -> ApiResult<()> {
    w.town_ids = towns.into_iter().map(|t| (t.name, t.id)).collect();
    if ctx.caller.role == Role::TownOffice {
        let own = ctx.caller.scope_id;
        let own_name = w
            .town_ids
            .iter()
            .find(|(_, id)| Some(**id) == own)
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        for (r, row) in rows.iter().enumerate().filter(|(_, r)| r.town != own_name) {
            let e = w.error(
                rows,
                r,
                col::ADDRESS,
                format!(
                    "该户属于「{}」，本账号只能导入「{own_name}」的台账",
                    row.town
                ),
            );
            w.errors.push(e);
        }
        w.town_ids.retain(|_, id| Some(*id) == own);
        return Ok(());
    }
    // In the order the file first names them, so the towns' ids (and the export's
    // order) are the same however often the file is imported (QA s24a F1).
    let mut missing: Vec<String> = Vec::new();
    for row in rows {
        if !w.town_ids.contains_key(&row.town) && !missing.contains(&row.town) {
            missing.push(row.town.clone());
        }
    }
    for name in missing {
        let (id, created) =
            jurisdictions::ensure(db, JurisdictionLevel::Town, &name, Some(ctx.county_id)).await?;
        if created {
            w.report.towns_created += 1;
            w.created_places.push(format!("镇街「{name}」"));
            w.audit.push(Entry::new(
                "jurisdiction.create",
                "jurisdiction",
                Some(id),
                json!({ "level": "town", "name": name }),
            ));
        }
        w.town_ids.insert(name, id);
    }
    Ok(())
}

/// The towns the file's rows name. Villages and households are matched within these
/// only: a row can never match a household of another town, and loading the whole
/// county made each import slower than the last.
fn file_towns(rows: &[LedgerRow], w: &Work) -> Vec<i64> {
    let ids: std::collections::BTreeSet<i64> = rows
        .iter()
        .filter_map(|r| w.town_ids.get(&r.town).copied())
        .collect();
    ids.into_iter().collect()
}

/// Maps each row's village to its id, creating the villages the county does not have
/// yet, and records each row's place ([`place_rows`]).
async fn resolve_villages(
    db: &impl ConnectionTrait,
    ctx: &Ctx<'_>,
    rows: &[LedgerRow],
    w: &mut Work,
) -> ApiResult<()> {
    let town_ids = file_towns(rows, w);
    let load = |town_ids: Vec<i64>| async move {
        jurisdiction::Entity::find()
            .filter(jurisdiction::Column::ParentId.is_in(town_ids))
            .filter(jurisdiction::Column::Level.eq(JurisdictionLevel::Village.code()))
            .all(db)
            .await
    };
    for v in load(town_ids.clone()).await? {
        if let Some(parent) = v.parent_id {
            // Keyed as a file's address cell now reads (full-width folded).
            let name = normalize_cell(col::ADDRESS, &v.name);
            w.village_ids.insert((parent, name), v.id);
        }
    }
    let mut missing: Vec<(i64, String)> = Vec::new();
    // Rows of a town not resolved ([`resolve_towns`]) have their error: no village of
    // theirs is created.
    for row in rows {
        let Some(&town) = w.town_ids.get(&row.town) else {
            continue;
        };
        let key = (town, row.village.clone());
        if !w.village_ids.contains_key(&key) && !missing.contains(&key) {
            missing.push(key);
        }
    }
    if !missing.is_empty() {
        create_villages(db, ctx, &missing, w).await?;
        for v in load(town_ids).await? {
            if let Some(parent) = v.parent_id {
                let key = (parent, v.name);
                if missing.contains(&key) {
                    w.audit.push(Entry::new(
                        "jurisdiction.create",
                        "jurisdiction",
                        Some(v.id),
                        json!({ "level": "village", "name": key.1 }),
                    ));
                }
                w.village_ids.insert(key, v.id);
            }
        }
    }
    place_rows(rows, w);
    Ok(())
}

/// The notice naming the towns and villages an import creates (the first 20, then how
/// many more): a misspelt address is caught here, before its households are paired.
fn created_places_zh(created: &[String]) -> Option<String> {
    const SHOWN: usize = 20;
    if created.is_empty() {
        return None;
    }
    let mut text = created
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("、");
    if created.len() > SHOWN {
        text.push_str(&format!("等{}处", created.len()));
    }
    Some(format!(
        "新建{text}：台账中的地址此前没有，请核对是否写错（写错的镇街或村会成为新的地方）"
    ))
}

/// Inserts the villages the file names that the county does not have yet.
async fn create_villages(
    db: &impl ConnectionTrait,
    ctx: &Ctx<'_>,
    missing: &[(i64, String)],
    w: &mut Work,
) -> ApiResult<()> {
    w.report.villages_created = missing.len();
    let town_names: HashMap<i64, &String> = w.town_ids.iter().map(|(n, id)| (*id, n)).collect();
    let named: Vec<String> = missing
        .iter()
        .map(|(town, name)| {
            let town = town_names.get(town).map_or("", |t| t.as_str());
            format!("村「{town}{name}」")
        })
        .collect();
    w.created_places.extend(named);
    for chunk in missing.chunks(CHUNK) {
        let models = chunk.iter().map(|(town, name)| jurisdiction::ActiveModel {
            level: Set(JurisdictionLevel::Village.code().to_string()),
            name: Set(name.clone()),
            parent_id: Set(Some(*town)),
            created_at: Set(ctx.now),
            ..Default::default()
        });
        jurisdiction::Entity::insert_many(models)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Records each row's town and village ids ([`Work::places`]). A row of a town not
/// resolved is left without one; so is, defensively, a row whose village was not found
/// after creating the missing ones, with an error rather than a panic.
fn place_rows(rows: &[LedgerRow], w: &mut Work) {
    for (r, row) in rows.iter().enumerate() {
        let Some(&town) = w.town_ids.get(&row.town) else {
            continue;
        };
        match w.village_ids.get(&(town, row.village.clone())) {
            Some(&village) => w.places[r] = Some(Place { town, village }),
            None => {
                let e = w.error(
                    rows,
                    r,
                    col::ADDRESS,
                    format!("未能登记「{}{}」，请核对地址", row.town, row.village),
                );
                w.errors.push(e);
            }
        }
    }
}

/// Loads the file's helpers by phone, creates the new ones and updates changed units.
///
/// A phone number is a helper's identity and login across the whole server, so a row
/// whose helper phone is already stored is checked before it is trusted:
/// - a helper of another county is refused: matching them would rename a stranger and
///   pair them with households their county office cannot see;
/// - a different name is refused too, not written over the stored one: a mistyped
///   phone would otherwise silently rename somebody else and hand them the household.
///   Names differing only in spaces (`王 芳`, `王芳`) are the same name, stored without
///   them. Only the county office is told the stored name: to a town office it may be
///   another town's helper;
/// - in a town office's file, a helper paired with households outside the town is
///   refused ([`paired_outside_town`]): only the county office may change them.
///
/// A changed unit or position is an ordinary update.
async fn upsert_helpers(
    db: &impl ConnectionTrait,
    ctx: &Ctx<'_>,
    rows: &[LedgerRow],
    w: &mut Work,
) -> ApiResult<()> {
    // Each phone once, with the first row and name column that name it.
    let mut wanted: Vec<(&bangfu_shared::ledger::HelperEntry, usize, usize)> = Vec::new();
    let mut seen = HashSet::new();
    for (r, row) in rows.iter().enumerate().filter(|(r, _)| w.in_play(*r)) {
        for (entry, name_col) in [
            (&row.first, col::FIRST_NAME),
            (&row.second, col::SECOND_NAME),
        ] {
            if seen.insert(entry.phone.as_str()) {
                wanted.push((entry, r, name_col));
            }
        }
    }
    let phones: Vec<String> = wanted.iter().map(|(e, _, _)| e.phone.clone()).collect();
    w.helpers = load_helpers(db, &phones).await?;
    let (outside_town, inside_town) = match (ctx.caller.role, ctx.caller.scope()) {
        (Role::TownOffice, Scope::Town(town)) => {
            let ids: Vec<i64> = w.helpers.values().map(|h| h.id).collect();
            (
                paired_outside_town(db, &ids, town).await?,
                paired_by_town(db, &ids, town, true).await?,
            )
        }
        _ => (HashSet::new(), HashSet::new()),
    };
    let mut new = Vec::new();
    for &(entry, r, name_col) in &wanted {
        let Some(h) = w.helpers.get(&entry.phone) else {
            new.push(entry);
            continue;
        };
        if h.county_id != ctx.county_id {
            let e = w.error(rows, r, name_col, registered_elsewhere(&entry.phone));
            w.errors.push(e);
            w.refused.insert(entry.phone.clone());
            continue;
        }
        let stored_name: String = h.name.chars().filter(|c| !c.is_whitespace()).collect();
        if stored_name != entry.name {
            // The stored name is the county office's to see, and a town office's only
            // for a helper of its own town alone (paired with its households, and no
            // other town's), whom its household list names anyway.
            let own_town = inside_town.contains(&h.id) && !outside_town.contains(&h.id);
            let reason = if own_town || matches!(ctx.caller.role, Role::CountyOffice | Role::Admin)
            {
                format!(
                    "电话{}已登记为「{}」，此处为「{}」；请核对姓名和电话（本系统以电话识别帮扶责任人）",
                    entry.phone, h.name, entry.name
                )
            } else {
                registered_elsewhere(&entry.phone)
            };
            let e = w.error(rows, r, name_col, reason);
            w.errors.push(e);
            w.refused.insert(entry.phone.clone());
            continue;
        }
        if outside_town.contains(&h.id) {
            let e = w.error(
                rows,
                r,
                name_col,
                format!(
                    "电话{}的帮扶责任人还与本镇（街）以外的农户结对，本镇（街）的台账不能修改其信息或结对；\
                     如确需调整，请由县（市）扶贫办导入此行",
                    entry.phone
                ),
            );
            w.errors.push(e);
            w.refused.insert(entry.phone.clone());
            continue;
        }
        if h.name != entry.name || h.unit_position != entry.unit_position {
            let before = json!({ "name": h.name, "unit_position": h.unit_position });
            let mut active = h.clone().into_active_model();
            active.name = Set(entry.name.clone());
            active.unit_position = Set(entry.unit_position.clone());
            active.updated_at = Set(ctx.now);
            let updated = active.update(db).await?;
            w.audit.push(Entry::new(
                "helper.update",
                "helper",
                Some(updated.id),
                json!({ "before": before }),
            ));
            w.helpers.insert(entry.phone.clone(), updated);
            w.report.helpers_updated += 1;
        }
    }
    for chunk in new.chunks(CHUNK) {
        let models = chunk.iter().map(|e| helper::ActiveModel {
            county_id: Set(ctx.county_id),
            name: Set(e.name.clone()),
            unit_position: Set(e.unit_position.clone()),
            phone: Set(e.phone.clone()),
            created_at: Set(ctx.now),
            updated_at: Set(ctx.now),
            ..Default::default()
        });
        helper::Entity::insert_many(models)
            .exec_without_returning(db)
            .await?;
    }
    if !new.is_empty() {
        let new_phones: Vec<String> = new.iter().map(|e| e.phone.clone()).collect();
        let created = load_helpers(db, &new_phones).await?;
        w.audit.extend(
            created
                .values()
                .map(|h| Entry::new("helper.create", "helper", Some(h.id), json!({}))),
        );
        w.report.helpers_created = created.len();
        w.helpers.extend(created);
    }
    Ok(())
}

/// The refusal of a phone stored for someone the caller may not be told about: another
/// county's helper, or (to a town office) a helper stored under another name. Neither
/// the stored name nor the county is named; the county office can look them up.
fn registered_elsewhere(phone: &str) -> String {
    format!(
        "电话{phone}已在别处登记，不能在此结对；请核对姓名和电话（本系统以电话识别帮扶责任人），\
         如有疑问请与县（市）扶贫办核实"
    )
}

/// The helpers among `ids` paired now, or from a filed later date, with a household
/// outside `town`. A town office's ledger may not name them: updating their unit,
/// making them a second helper or pairing them would reach into another town's
/// households, and their account (whose enrollment code the town office could then
/// print) would open those households to whoever holds it.
async fn paired_outside_town(
    db: &impl ConnectionTrait,
    ids: &[i64],
    town: i64,
) -> ApiResult<HashSet<i64>> {
    paired_by_town(db, ids, town, false).await
}

/// The helpers among `ids` paired now, or from a filed later date, with a household of
/// `town` (`inside`), or with one outside it.
async fn paired_by_town(
    db: &impl ConnectionTrait,
    ids: &[i64],
    town: i64,
    inside: bool,
) -> ApiResult<HashSet<i64>> {
    // The town's own households: a small set, where "every other household" is the
    // whole server's.
    let own = Query::select()
        .column(household::Column::Id)
        .from(household::Entity)
        .and_where(household::Column::TownId.eq(town))
        .to_owned();
    let mut out = HashSet::new();
    for chunk in ids.chunks(CHUNK) {
        let found: Vec<i64> = pairing::Entity::find()
            .select_only()
            .column(pairing::Column::HelperId)
            .distinct()
            .filter(pairing::Column::HelperId.is_in(chunk.to_vec()))
            .filter(
                sea_orm::Condition::any()
                    .add(pairing::Column::ValidTo.is_null())
                    .add(pairing::Column::ValidTo.gt(crate::services::today())),
            )
            .filter(if inside {
                pairing::Column::HouseholdId.in_subquery(own.clone())
            } else {
                pairing::Column::HouseholdId.not_in_subquery(own.clone())
            })
            .into_tuple()
            .all(db)
            .await?;
        out.extend(found);
    }
    Ok(out)
}

async fn load_helpers(
    db: &impl ConnectionTrait,
    phones: &[String],
) -> ApiResult<HashMap<String, helper::Model>> {
    let mut out = HashMap::with_capacity(phones.len());
    for chunk in phones.chunks(CHUNK) {
        for h in helper::Entity::find()
            .filter(helper::Column::Phone.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            out.insert(h.phone.clone(), h);
        }
    }
    Ok(out)
}

/// Matches rows to stored households, and leaves out the rows of households that have
/// left pairing (已脱贫: an exit filed, in effect or from a later day).
///
/// A household its office took out of pairing stays out: a town's spreadsheet that still
/// lists it must not pair it again, update it, or — as its row is otherwise read before
/// the households are — create the helpers it names and their accounts. Such a helper
/// would be stored with no pairing, and since a phone is a helper's identity, a typo in
/// a row that changed nothing would lock that phone to the typed name for good. So this
/// runs before [`upsert_helpers`], and the row is left out entirely (counted in
/// `households_skipped`, named in the notices by [`apply_pairings`]).
async fn match_households(
    db: &impl ConnectionTrait,
    rows: &[LedgerRow],
    w: &mut Work,
) -> ApiResult<()> {
    let town_ids = file_towns(rows, w);
    let stored = household::Entity::find()
        .filter(household::Column::TownId.is_in(town_ids))
        .all(db)
        .await?;
    // Stored names and phones compared as a file's cells are now read (full-width
    // folded, spaces out of names): a household stored before that, as typed, is still
    // the same household, and its row is rewritten the normalised way.
    let keys: Vec<(String, String)> = stored
        .iter()
        .map(|h| {
            (
                normalize_cell(col::HEAD_NAME, &h.head_name),
                normalize_cell(col::PHONE, &h.phone),
            )
        })
        .collect();
    let mut exact: HashMap<(i64, &str, &str), usize> = HashMap::new();
    let mut loose: HashMap<(i64, &str), Vec<usize>> = HashMap::new();
    for (i, (h, (name, phone))) in stored.iter().zip(&keys).enumerate() {
        exact.insert((h.village_id, name.as_str(), phone.as_str()), i);
        loose
            .entry((h.village_id, name.as_str()))
            .or_default()
            .push(i);
    }
    let mut claimed: HashSet<usize> = HashSet::new();
    let mut matched: Vec<Option<usize>> = vec![None; rows.len()];
    for (r, row) in rows.iter().enumerate() {
        let Some(Place { village, .. }) = w.places[r] else {
            continue;
        };
        let found = exact
            .get(&(village, row.head_name.as_str(), row.phone.as_str()))
            .copied()
            .filter(|i| !claimed.contains(i));
        matched[r] = found.or_else(|| {
            match loose
                .get(&(village, row.head_name.as_str()))
                .map(Vec::as_slice)
            {
                Some([only])
                    if !claimed.contains(only) && !rows_have_exact(rows, &stored[*only]) =>
                {
                    Some(*only)
                }
                _ => None,
            }
        });
        if let Some(i) = matched[r] {
            claimed.insert(i);
            w.skipped[r] = stored[i].status == HouseholdStatus::Exited.code();
        }
    }
    w.matched = matched;
    w.stored = stored;
    Ok(())
}

/// Refuses a row whose 序号 another stored household of its town holds and keeps: one
/// the file does not list, or lists under the same number (QA s22c F2: a file numbered
/// from 1 imported into a town that already had 1 to 60 doubled 20 numbers, and the
/// town's own export could not be imported again). A household holds its number while
/// it is on the ledger, as the export lists it: with a pairing that still holds after
/// the file's effective date. So a household that has left pairing by then, or came
/// back (返贫) and is not paired yet, frees its number; one whose exit is filed for a
/// later day keeps it until then (QA s22e F1, F2); and a household the file renumbers
/// frees its old number.
async fn check_stored_seqs(
    db: &impl ConnectionTrait,
    ctx: &Ctx<'_>,
    rows: &[LedgerRow],
    w: &mut Work,
) -> ApiResult<()> {
    let ids: Vec<i64> = w.stored.iter().map(|h| h.id).collect();
    let mut on_ledger: HashSet<i64> = HashSet::new();
    for chunk in ids.chunks(crate::db::IN_CHUNK) {
        let held = open_pairings(
            db,
            pairing::Column::HouseholdId,
            chunk,
            ctx.opts.effective_from,
        );
        on_ledger.extend(held.await?.into_iter().map(|p| p.household_id));
    }
    // The number each stored household on the ledger will hold after the import.
    let mut kept: HashMap<usize, u32> = HashMap::new();
    for (i, h) in w.stored.iter().enumerate() {
        if on_ledger.contains(&h.id) {
            kept.insert(i, u32::try_from(h.ledger_seq).unwrap_or(0));
        }
    }
    for (r, row) in rows.iter().enumerate() {
        if let Some(i) = w.matched[r].filter(|_| !w.skipped[r]) {
            kept.insert(i, row.seq);
        }
    }
    let mut holders: HashMap<(i64, u32), Vec<usize>> = HashMap::new();
    for (&i, &seq) in &kept {
        holders
            .entry((w.stored[i].town_id, seq))
            .or_default()
            .push(i);
    }
    let mut errors = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let Some(place) = w.places[r].filter(|_| !w.skipped[r]) else {
            continue;
        };
        let other = holders.get(&(place.town, row.seq)).and_then(|hs| {
            hs.iter()
                .copied()
                .filter(|i| w.matched[r] != Some(*i))
                .min_by_key(|i| w.stored[*i].id)
        });
        let Some(i) = other else {
            continue;
        };
        let holder = &w.stored[i];
        // The same name: most likely the household itself, listed under another
        // village (a move the import cannot make, QA s22e F4).
        let why = if holder.head_name == row.head_name {
            "若是同一户迁往本镇街另一村，台账导入不能改户的村，请联系县（市）扶贫办".to_string()
        } else {
            "请改用未用的序号（可先导出本镇街台账查看；该户如已脱贫，其退出生效后序号即可让出）"
                .to_string()
        };
        errors.push(w.error(
            rows,
            r,
            col::SEQ,
            format!(
                "序号{}已是本镇街另一户（{}）的序号：同一镇街的序号决定台账和考勤表中各户的顺序，不能重复；{why}",
                row.seq, holder.head_name
            ),
        ));
    }
    w.errors.extend(errors);
    Ok(())
}

/// Updates the changed households the rows name ([`match_households`]) and creates new
/// ones; rows left out only count.
async fn upsert_households(
    db: &impl ConnectionTrait,
    ctx: &Ctx<'_>,
    rows: &[LedgerRow],
    w: &mut Work,
) -> ApiResult<()> {
    let stored = std::mem::take(&mut w.stored);
    let max_before = stored.iter().map(|h| h.id).max().unwrap_or(0);
    let mut new_rows = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        if w.skipped[r] {
            w.report.households_skipped += 1;
            continue;
        }
        let Some(place) = w.places[r] else {
            continue;
        };
        let Some(i) = w.matched[r] else {
            new_rows.push((r, place));
            continue;
        };
        let h = &stored[i];
        w.households[r] = Some(h.id);
        let address = format!("{}{}", row.town, row.village);
        let seq = i64::from(row.seq);
        if h.phone == row.phone
            && h.head_name == row.head_name
            && h.cause == row.cause
            && h.measures == row.measures
            && h.address == address
            && h.ledger_seq == seq
        {
            w.report.households_unchanged += 1;
            continue;
        }
        let before = json!({ "cause": h.cause, "measures": h.measures, "ledger_seq": h.ledger_seq, "phone_changed": h.phone != row.phone });
        let mut active = h.clone().into_active_model();
        active.phone = Set(row.phone.clone());
        // Matched by name, so only its spelling can differ (spaces, full-width forms).
        active.head_name = Set(row.head_name.clone());
        active.cause = Set(row.cause.clone());
        active.measures = Set(row.measures.clone());
        active.address = Set(address);
        active.ledger_seq = Set(seq);
        active.updated_at = Set(ctx.now);
        active.update(db).await?;
        w.audit.push(Entry::new(
            "household.update",
            "household",
            Some(h.id),
            json!({ "before": before, "row": row.line }),
        ));
        w.report.households_updated += 1;
    }
    create_households(db, ctx, rows, &new_rows, max_before, w).await
}

/// Creates the households of the rows no stored household matched (each with its
/// place), and records their ids ([`Work::households`]).
async fn create_households(
    db: &impl ConnectionTrait,
    ctx: &Ctx<'_>,
    rows: &[LedgerRow],
    new_rows: &[(usize, Place)],
    max_before: i64,
    w: &mut Work,
) -> ApiResult<()> {
    if new_rows.is_empty() {
        return Ok(());
    }
    for chunk in new_rows.chunks(CHUNK) {
        let models = chunk.iter().map(|&(r, place)| {
            let row = &rows[r];
            household::ActiveModel {
                county_id: Set(ctx.county_id),
                town_id: Set(place.town),
                village_id: Set(place.village),
                head_name: Set(row.head_name.clone()),
                phone: Set(row.phone.clone()),
                address: Set(format!("{}{}", row.town, row.village)),
                size: Set(None),
                members: Set("[]".to_string()),
                cause: Set(row.cause.clone()),
                measures: Set(row.measures.clone()),
                status: Set(HouseholdStatus::Identified.code().to_string()),
                ledger_seq: Set(i64::from(row.seq)),
                created_at: Set(ctx.now),
                updated_at: Set(ctx.now),
                ..Default::default()
            }
        });
        household::Entity::insert_many(models)
            .exec_without_returning(db)
            .await?;
    }
    let created = household::Entity::find()
        .filter(household::Column::TownId.is_in(file_towns(rows, w)))
        .filter(household::Column::Id.gt(max_before))
        .all(db)
        .await?;
    let by_key: HashMap<(i64, &str, &str), i64> = created
        .iter()
        .map(|h| ((h.village_id, h.head_name.as_str(), h.phone.as_str()), h.id))
        .collect();
    for &(r, place) in new_rows {
        let row = &rows[r];
        let id = by_key
            .get(&(place.village, row.head_name.as_str(), row.phone.as_str()))
            .copied()
            .ok_or_else(|| {
                ApiError::Internal(format!(
                    "household of row {} not found after insert",
                    row.line
                ))
            })?;
        w.households[r] = Some(id);
        w.audit.push(Entry::new(
            "household.create",
            "household",
            Some(id),
            json!({ "row": row.line }),
        ));
    }
    w.report.households_created = new_rows.len();
    Ok(())
}

/// Whether some row names this stored household exactly (then the loose match must not take it).
fn rows_have_exact(rows: &[LedgerRow], h: &household::Model) -> bool {
    let name = normalize_cell(col::HEAD_NAME, &h.head_name);
    let phone = normalize_cell(col::PHONE, &h.phone);
    let address = normalize_cell(col::ADDRESS, &h.address);
    rows.iter().any(|r| {
        r.head_name == name && r.phone == phone && address == format!("{}{}", r.town, r.village)
    })
}

/// What happens to one (household, role) pairing.
enum Decision {
    Unchanged,
    Start,
    Change(pairing::Model),
}

/// Starts, keeps or changes each row's two pairings; checks notice and helper limits.
async fn apply_pairings(
    db: &impl ConnectionTrait,
    ctx: &Ctx<'_>,
    rows: &[LedgerRow],
    w: &mut Work,
) -> ApiResult<()> {
    let household_ids: Vec<i64> = w.households.iter().flatten().copied().collect();
    let helper_ids: Vec<i64> = w.helpers.values().map(|h| h.id).collect();
    let mut open: HashMap<(i64, String), pairing::Model> = HashMap::new();
    for chunk in household_ids.chunks(CHUNK) {
        for p in open_pairings(
            db,
            pairing::Column::HouseholdId,
            chunk,
            ctx.opts.effective_from,
        )
        .await?
        {
            open.insert((p.household_id, p.role.clone()), p);
        }
    }
    // Every open pairing of the file's helpers, wherever the household is.
    let mut load: HashMap<(i64, String), HashSet<i64>> = HashMap::new();
    for chunk in helper_ids.chunks(CHUNK) {
        for p in open_pairings(
            db,
            pairing::Column::HelperId,
            chunk,
            ctx.opts.effective_from,
        )
        .await?
        {
            load.entry((p.helper_id, p.role))
                .or_default()
                .insert(p.household_id);
        }
    }
    let opts = ctx.opts;
    let returned = returned_since(db, &household_ids).await?;
    let mut starts: Vec<Start> = Vec::new();
    let mut ends: Vec<pairing::Model> = Vec::new();
    let mut flagged: Vec<RowError> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        // A row of a household that left pairing was left out ([`match_households`]).
        if w.skipped[r] {
            flagged.push(w.error(
                rows,
                r,
                col::HEAD_NAME,
                "该户已退出结对或已办理日后退出（已脱贫），本行未导入：未恢复其结对，也未登记本行的\
                 帮扶责任人；如退出有误，请在退出生效前撤销；如该户返贫，请先将其标记为返贫再导入"
                    .into(),
            ));
            continue;
        }
        let Some(household_id) = w.households[r] else {
            continue;
        };
        // A household that left pairing and came back is paired anew from its return:
        // dated earlier, the import would rewrite the pairings its exit ended (a miss
        // the exit made final erased, or a pairing read as never broken).
        if let Some(&(exit, back)) = returned.get(&household_id)
            && opts.effective_from < back
        {
            let e = w.error(
                rows,
                r,
                col::HEAD_NAME,
                format!(
                    "该户已于{exit}退出结对、{back}返贫：生效日期{}早于返贫日，会改写退出时结束的结对；\
                     请将生效日期定为{back}或之后",
                    opts.effective_from
                ),
            );
            w.errors.push(e);
            continue;
        }
        for (role, entry, name_col) in [
            (PairingRole::First, &row.first, col::FIRST_NAME),
            (PairingRole::Second, &row.second, col::SECOND_NAME),
        ] {
            if w.refused.contains(&entry.phone) {
                continue;
            }
            let helper_id = w
                .helpers
                .get(&entry.phone)
                .map(|h| h.id)
                .ok_or_else(|| ApiError::Internal("helper vanished".into()))?;
            let decision = match open.get(&(household_id, role.code().to_string())) {
                None => Decision::Start,
                Some(p) if p.helper_id == helper_id => Decision::Unchanged,
                Some(p) => Decision::Change(p.clone()),
            };
            let mut start = Start {
                row: r,
                household_id,
                helper_id,
                role,
                short_notice: false,
                change: false,
            };
            match decision {
                Decision::Unchanged => {}
                Decision::Start => starts.push(start),
                Decision::Change(old) => {
                    if opts.effective_from <= old.valid_from {
                        // A change filed for a later day is withdrawn, not overtaken: an
                        // import from the day after would leave its helper paired for a
                        // day (QA s31c T4).
                        let withdraw = if old.valid_from > crate::services::today() {
                            format!(
                                "；如要撤销{}起的这次更换、保留原帮扶责任人，请撤销结对变动（接口 \
                                 POST /api/v1/households/{household_id}/pairing-change/cancel，\
                                 命令行 household cancel-change --id {household_id} --role {}）",
                                old.valid_from,
                                role.code()
                            )
                        } else {
                            String::new()
                        };
                        let e = w.error(
                            rows,
                            r,
                            name_col,
                            format!(
                                "更换{}的生效日期{}须晚于现结对的开始日期{}：请以生效日期\
                                 {}或以后导入（接口参数 effective_from，命令行 --effective-from）{withdraw}",
                                role.label_zh(),
                                opts.effective_from,
                                old.valid_from,
                                old.valid_from.succ_opt().unwrap_or(old.valid_from)
                            ),
                        );
                        w.errors.push(e);
                        continue;
                    }
                    // DOMAIN: an unfiled change is the unit's own responsibility — kept,
                    // flagged, and listed for the office, never refused.
                    start.short_notice = !ctx
                        .policy
                        .notice_is_sufficient(opts.filed_on, opts.effective_from);
                    start.change = true;
                    if start.short_notice {
                        flagged.push(w.error(
                            rows,
                            r,
                            name_col,
                            format!(
                                "更换{}未提前{}个月报备（报备{}，生效{}）：已接受，标记为未按期报备",
                                role.label_zh(),
                                ctx.policy.pairing.change_notice_months,
                                opts.filed_on,
                                opts.effective_from
                            ),
                        ));
                    }
                    if let Some(set) = load.get_mut(&(old.helper_id, old.role.clone())) {
                        set.remove(&household_id);
                    }
                    starts.push(start);
                    ends.push(old);
                }
            }
        }
    }
    let quarter = quarter_start(crate::services::today());
    let adds_back = matches!(ctx.caller.role, Role::CountyOffice | Role::Admin)
        && !starts.is_empty()
        && ends.is_empty()
        && !ctx.opts.retroactive
        && ctx.opts.effective_from < quarter
        && county_paired_before(db, ctx.county_id).await?;
    if adds_back {
        refuse_added_back(ctx, w);
    } else if let Some(notice) = check_retroactive(ctx, !starts.is_empty(), !ends.is_empty(), w) {
        flagged.push(notice);
    }
    if let Some(notice) = visits_uncounted(db, ctx, &ends).await? {
        flagged.push(notice);
    }
    if let Some(notice) = cut_windows(db, ctx, &ends).await? {
        flagged.push(notice);
    }
    let changed: Vec<(i64, PairingRole)> = ends
        .iter()
        .filter_map(|p| Some((p.household_id, p.role.parse().ok()?)))
        .collect();
    if let Some(notice) = filed_late_windows(db, ctx, &changed, true).await? {
        flagged.push(notice);
    }
    let first: Vec<(i64, PairingRole)> = starts
        .iter()
        .filter(|st| !st.change)
        .map(|st| (st.household_id, st.role))
        .collect();
    if let Some(notice) = filed_late_windows(db, ctx, &first, false).await? {
        flagged.push(notice);
    }
    for st in &starts {
        load.entry((st.helper_id, st.role.code().to_string()))
            .or_default()
            .insert(st.household_id);
    }
    // The file's own rows, by household: an over-limit error names those pairing the
    // helper, new or kept as they were, and counts the pairings held outside the file
    // apart (QA s30b M2: rows that kept their helper were said to be outside it).
    let line_of: HashMap<i64, usize> = rows
        .iter()
        .enumerate()
        .filter_map(|(r, row)| Some((w.households[r]?, row.line)))
        .collect();
    for &Start {
        row: r,
        helper_id,
        role,
        ..
    } in &starts
    {
        let max = match role {
            PairingRole::First => ctx.policy.pairing.max_households_first,
            PairingRole::Second => ctx.policy.pairing.max_households_second,
        } as usize;
        let key = (helper_id, role.code().to_string());
        let count = load.get(&key).map_or(0, HashSet::len);
        if count > max {
            let held = load.get(&key).cloned().unwrap_or_default();
            let lines: BTreeMap<usize, i64> = held
                .iter()
                .filter_map(|h| Some((*line_of.get(h)?, *h)))
                .collect();
            let elsewhere = held.len() - lines.len();
            let name_col = if role == PairingRole::First {
                col::FIRST_NAME
            } else {
                col::SECOND_NAME
            };
            let e = w.error(
                rows,
                r,
                name_col,
                over_limit(role, max, count, lines.keys(), elsewhere),
            );
            w.errors.push(e);
        }
    }
    if !w.errors.is_empty() {
        return Ok(());
    }
    if let Some(notice) = created_places_zh(&w.created_places) {
        flagged.insert(0, RowError::file(0, notice));
    }
    w.report.notices = flagged;
    write_pairings(db, ctx, w, &starts, &ends).await
}

/// Households among `ids` that left pairing and were brought back (返贫): the day the
/// latest such exit took effect, and the day (China time) of the return — the first day
/// the household may be paired again.
async fn returned_since(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> ApiResult<HashMap<i64, (NaiveDate, NaiveDate)>> {
    let mut out: HashMap<i64, (NaiveDate, NaiveDate)> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let exits = household_exit::Entity::find()
            .filter(household_exit::Column::HouseholdId.is_in(chunk.to_vec()))
            .filter(household_exit::Column::CancelledAt.is_null())
            .filter(household_exit::Column::RejoinedAt.is_not_null())
            .all(db)
            .await?;
        for e in exits {
            let Some(at) = e.rejoined_at else { continue };
            let back = (at + chrono::Duration::hours(8)).date_naive();
            // An exit the return ended before its day (one it had moved earlier) never
            // took the household out.
            if e.effective_from > back {
                continue;
            }
            let entry = out
                .entry(e.household_id)
                .or_insert((e.effective_from, back));
            if back > entry.1 {
                *entry = (e.effective_from, back);
            }
        }
    }
    Ok(out)
}

/// The over-limit error: how many households the helper would hold, which rows of the
/// file pair them, and how many pairings they already hold outside it.
fn over_limit<'a>(
    role: PairingRole,
    max: usize,
    count: usize,
    lines: impl Iterator<Item = &'a usize>,
    elsewhere: usize,
) -> String {
    let lines: Vec<String> = lines.map(usize::to_string).collect();
    let outside = if elsewhere > 0 {
        format!("，另有本文件以外已有的结对{elsewhere}户")
    } else {
        String::new()
    };
    format!(
        "{}按政策最多结对{max}户，导入后将结对{count}户（本文件第{}行{outside}）",
        role.label_zh(),
        lines.join("、")
    )
}

/// A pairing the import starts.
struct Start {
    /// Index of the file row.
    row: usize,
    household_id: i64,
    helper_id: i64,
    role: PairingRole,
    /// A change of helper filed with less notice than the policy asks.
    short_notice: bool,
    /// It replaces another helper (rather than pairing a household for the first time).
    change: bool,
}

/// The first day of the quarter `day` is in.
fn quarter_start(day: NaiveDate) -> NaiveDate {
    bangfu_shared::policy::window_of(day, 3).0
}

/// The longest `reason` an import stores on the pairings it changes, in characters: a
/// line beside each pairing, as an exit's reason is.
const MAX_REASON_CHARS: usize = 200;

/// How far ahead an import may start pairings: the bound a household's exit has too
/// (`services::exits`), a year and a day.
const MAX_DAYS_AHEAD: i64 = 366;

/// Refuses the import's dates that cannot be meant, whatever the file holds: a filing
/// date in the future, which would make any change look filed in time (a filing that
/// has not happened), and pairings starting more than a year ahead (a mistyped year,
/// which would leave the households' current pairings holding for years and the new
/// ones invisible until then). Both name the query parameter, as the user set it.
fn check_dates(ctx: &Ctx<'_>, w: &mut Work) {
    w.errors.extend(date_errors(ctx.opts));
}

/// The errors of [`check_dates`], which depend on the options alone.
fn date_errors(opts: &ImportOptions) -> Vec<RowError> {
    let today = crate::services::today();
    let mut errors = Vec::new();
    if opts.filed_on > today {
        errors.push(RowError::file(
            0,
            format!(
                "报备日期（filed_on）{}晚于今天：报备日期最迟为今天（{today}）",
                opts.filed_on
            ),
        ));
    }
    let reason_chars = opts
        .reason
        .as_deref()
        .map_or(0, |r| r.trim().chars().count());
    if reason_chars > MAX_REASON_CHARS {
        errors.push(RowError::file(
            0,
            format!("更换原因（reason）有{reason_chars}字，超过{MAX_REASON_CHARS}字的上限"),
        ));
    }
    let latest = today + chrono::Duration::days(MAX_DAYS_AHEAD);
    if opts.effective_from > latest {
        errors.push(RowError::file(
            0,
            format!(
                "生效日期（effective_from）{}超过一年以后：最迟为{latest}",
                opts.effective_from
            ),
        ));
    }
    errors
}

/// Refuses dates that would rewrite what was already due: pairings that start or end
/// before the current month. A window that has ended is judged for the pairing that
/// covered it; a change of helper dated into it leaves it to no one (the old helper's
/// miss erased) or, dated earlier, to a new helper who could not have visited, so only
/// the county office, which keeps the ledger and the reports, may import one — and its
/// report says so when it ends pairings (a notice; a county's first ledger dated back
/// only starts them). Before the current quarter the attendance may already be
/// reported, and the refusal says that; a county office's change dated there is
/// refused too unless it confirms it (`retroactive`, QA s23b F7: a change filed today
/// and dated back charged its new helper with ended windows and sanctions, and took the
/// old helper's visits out of a reported quarter).
fn check_retroactive(ctx: &Ctx<'_>, starts: bool, ends: bool, w: &mut Work) -> Option<RowError> {
    let today = crate::services::today();
    let opts = ctx.opts;
    let month = bangfu_shared::policy::window_of(today, 1).0;
    if !(starts || ends) || opts.effective_from >= month {
        return None;
    }
    let county_level = matches!(ctx.caller.role, Role::CountyOffice | Role::Admin);
    let quarter = quarter_start(today);
    // Into an ended quarter, a change rewrites attendance that may be reported and
    // sanctioned: the county office says it means it (QA s23b F7).
    if county_level && ends && opts.effective_from < quarter && !opts.retroactive {
        w.errors.push(RowError::file(
            0,
            format!(
                "生效日期{}早于本季度（{quarter}起）：已结束季度的考勤将按更改后的结对重新判定——\
                 新帮扶责任人要对其生效日起的周期负责（含已结束的）{}，原帮扶责任人此后的走访不再计入，\
                 已上报的考勤表和问责名单会随之改变。确需追溯更正台账，请加 retroactive=true\
                 （命令行 --retroactive）重新导入",
                opts.effective_from,
                filed_late_zh(opts)
            ),
        ));
        return None;
    }
    if county_level {
        return ends.then(|| {
            RowError::file(
                0,
                format!(
                    "生效日期{}早于本月（{month}起）：已结束的考勤周期按更改后的结对重新判定：\
                 新帮扶责任人对生效日起的周期负责{}，原帮扶责任人此后的走访不再计入，\
                 其在这些周期的未到位记录也不再计入",
                    opts.effective_from,
                    filed_late_zh(opts)
                ),
            )
        });
    }
    let why = if opts.effective_from < quarter {
        format!("早于本季度（{quarter}起）：往季考勤可能已上报")
    } else {
        format!("早于本月（{month}起）：已结束的考勤周期会因此改由他人负责或无人负责")
    };
    w.errors.push(RowError::file(
        0,
        format!(
            "生效日期{}{why}，追溯更改结对须由县（市）扶贫办导入",
            opts.effective_from
        ),
    ));
    None
}

/// Whether the county had a pairing before this import. Its first ledger may be dated
/// back: no quarter of it was reported. A later one adding households paired from a
/// day in an ended quarter changes what was reported of it, as a change of helper dated
/// there does (QA s32a U1, s32d X1).
async fn county_paired_before(db: &impl ConnectionTrait, county_id: i64) -> ApiResult<bool> {
    let homes = Query::select()
        .column(household::Column::Id)
        .from(household::Entity)
        .and_where(household::Column::CountyId.eq(county_id))
        .to_owned();
    Ok(pairing::Entity::find()
        .select_only()
        .column(pairing::Column::Id)
        .filter(pairing::Column::HouseholdId.in_subquery(homes))
        .into_tuple::<i64>()
        .one(db)
        .await?
        .is_some())
}

/// Refuses, unless confirmed, households added to a county's ledger paired from a day
/// in an ended quarter (see [`county_paired_before`]): filed then, their helpers are
/// charged with reported windows; filed later, the quarter still gains households,
/// windows no one answers for and a second helper who never reported (QA s32d X1).
fn refuse_added_back(ctx: &Ctx<'_>, w: &mut Work) {
    let quarter = quarter_start(crate::services::today());
    let opts = ctx.opts;
    let what = if opts.filed_on < quarter {
        format!(
            "，其帮扶责任人要对报备（{}）后已结束的周期负责",
            opts.filed_on
        )
    } else {
        "（户数、无人负责的周期、未报送的第二帮扶责任人）".to_string()
    };
    w.errors.push(RowError::file(
        0,
        format!(
            "新增户的生效日期{}早于本季度（{quarter}起）：这些户将计入已结束季度的考勤{what}，\
             已上报的考勤表、排名和问责名单会随之改变。确需追溯补录台账，请加 retroactive=true\
             （命令行 --retroactive）重新导入；否则请将生效日期定为{quarter}或之后",
            opts.effective_from
        ),
    ));
}

/// The exception to "the new helper answers from the effective day", when the change
/// was filed after it: a window that ended by the filing day is no one's
/// ([`filed_late_windows`]).
fn filed_late_zh(opts: &ImportOptions) -> String {
    if opts.filed_on > opts.effective_from {
        format!("，但{}报备前已结束的周期除外（无人负责）", opts.filed_on)
    } else {
        String::new()
    }
}

/// A window a change of helper cuts, and whether the outgoing pairing still owes it:
/// its role, kind, first and last day, and the last day to visit when it does.
type CutWindow = (
    PairingRole,
    bangfu_shared::VisitKind,
    NaiveDate,
    NaiveDate,
    Option<NaiveDate>,
);

/// The windows the changes ending `ends` on the import's effective day cut, and whom
/// they are left to: said at the import rather than found on the sheet (QA s23b F4). A
/// cut window is the outgoing helper's when the policy in force on its first day (the
/// household's town's, as the sheet judges it; s24b F7) says the pairing held it long
/// enough (`exit_cuts.min_days_held`, counted from the pairing's own first day; s24b
/// F1); the incoming helper never covers it whole. None when nothing is cut.
async fn cut_windows(
    db: &impl ConnectionTrait,
    ctx: &Ctx<'_>,
    ends: &[pairing::Model],
) -> ApiResult<Option<RowError>> {
    let on = ctx.opts.effective_from;
    let towns = towns_of(db, ends).await?;
    let mut policies = FirstDayPolicies::default();
    let mut tally: BTreeMap<CutWindow, u32> = BTreeMap::new();
    for p in ends {
        let (Ok(role), Some(&town)) = (p.role.parse::<PairingRole>(), towns.get(&p.household_id))
        else {
            continue;
        };
        for months in WINDOW_MONTHS {
            let (start, end) = bangfu_shared::policy::window_of(on, months);
            if start == on {
                continue;
            }
            let Some(policy) = policies.get(db, ctx.county_id, (town, start)).await? else {
                continue;
            };
            let owed = policy.exit_cuts.owes(
                (p.valid_from, Some(on)),
                Some(crate::services::today()),
                (start, end),
            );
            for req in policy
                .requirements_for(role)
                .filter(|r| r.window_months == months)
            {
                let by = on.pred_opt().filter(|_| owed);
                *tally.entry((role, req.kind, start, end, by)).or_default() += 1;
            }
        }
    }
    Ok(cut_windows_zh(on, &tally).map(|text| RowError::file(0, text)))
}

/// Every cadence a policy may ask, in months.
const WINDOW_MONTHS: [u32; 6] = [1, 2, 3, 4, 6, 12];

/// The town of each household of `pairings`.
async fn towns_of(
    db: &impl ConnectionTrait,
    pairings: &[pairing::Model],
) -> ApiResult<HashMap<i64, i64>> {
    let ids: Vec<i64> = pairings.iter().map(|p| p.household_id).collect();
    towns_of_households(db, &ids).await
}

/// The town of each of the households `ids`.
async fn towns_of_households(
    db: &impl ConnectionTrait,
    ids: &[i64],
) -> ApiResult<HashMap<i64, i64>> {
    let mut towns = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let ids = chunk.to_vec();
        let found: Vec<(i64, i64)> = household::Entity::find()
            .select_only()
            .column(household::Column::Id)
            .column(household::Column::TownId)
            .filter(household::Column::Id.is_in(ids))
            .into_tuple()
            .all(db)
            .await?;
        towns.extend(found);
    }
    Ok(towns)
}

/// The policy judging a window of a town: the one in force on its first day, each
/// looked up once.
#[derive(Default)]
struct FirstDayPolicies(HashMap<(i64, NaiveDate), Option<Policy>>);

impl FirstDayPolicies {
    async fn get(
        &mut self,
        db: &impl ConnectionTrait,
        county: i64,
        (town, start): (i64, NaiveDate),
    ) -> ApiResult<Option<&Policy>> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.0.entry((town, start)) {
            slot.insert(
                match policy::effective(db, county, Some(town), start).await {
                    Ok(policy) => Some(policy),
                    // No policy in force then: nothing was asked in that window.
                    Err(ApiError::Invalid(_)) => None,
                    Err(e) => return Err(e),
                },
            );
        }
        Ok(self.0.get(&(town, start)).and_then(Option::as_ref))
    }
}

/// The windows pairings filed after they ended leave to no one: those of the
/// pairings' (household, role) beginning on or after the effective day and ending by
/// the filing day (`ExitCuts::start_known_in_time`), each by the policy in force on its
/// first day. Said at the import, as the reports will list them (QA s28a F4): for
/// changes of helper (`changes`), or for households paired for the first time (s29b
/// J1: a county's first import dated back put every helper on the sanction lists with
/// no word). None when filed before any such window ended.
async fn filed_late_windows(
    db: &impl ConnectionTrait,
    ctx: &Ctx<'_>,
    pairs: &[(i64, PairingRole)],
    changes: bool,
) -> ApiResult<Option<RowError>> {
    let (on, filed) = (ctx.opts.effective_from, ctx.opts.filed_on);
    if pairs.is_empty() || filed <= on {
        return Ok(None);
    }
    let ids: Vec<i64> = pairs.iter().map(|(h, _)| *h).collect();
    let towns = towns_of_households(db, &ids).await?;
    let mut policies = FirstDayPolicies::default();
    type Window = (PairingRole, bangfu_shared::VisitKind, NaiveDate, NaiveDate);
    let mut tally: BTreeMap<Window, u32> = BTreeMap::new();
    for &(household, role) in pairs {
        let Some(&town) = towns.get(&household) else {
            continue;
        };
        for months in WINDOW_MONTHS {
            let (first, end) = bangfu_shared::policy::window_of(on, months);
            let mut start = if first == on {
                Some(first)
            } else {
                end.succ_opt()
            };
            while let Some(day) = start {
                let (from, to) = bangfu_shared::policy::window_of(day, months);
                if bangfu_shared::policy::ExitCuts::start_known_in_time(Some(filed), to) {
                    break;
                }
                if let Some(policy) = policies.get(db, ctx.county_id, (town, from)).await? {
                    for req in policy
                        .requirements_for(role)
                        .filter(|r| r.window_months == months)
                    {
                        *tally.entry((role, req.kind, from, to)).or_default() += 1;
                    }
                }
                start = to.succ_opt();
            }
        }
    }
    let parts: Vec<String> = tally
        .into_iter()
        .map(|((role, kind, start, end), n)| {
            format!(
                "{}{}（{}~{}）：{n}户",
                role.label_zh(),
                kind.label_zh(),
                start.format("%m-%d"),
                end.format("%m-%d"),
            )
        })
        .collect();
    let who = if changes {
        "新帮扶责任人不对其负责，原帮扶责任人已不再结对"
    } else {
        "首次结对的帮扶责任人不对其负责（生效日期早于报备日期，报备前无人能录入走访）"
    };
    Ok((!parts.is_empty()).then(|| {
        RowError::file(
            0,
            format!(
                "报备日期{filed}晚于以下考勤周期结束：{who}，\
                 这些周期无人负责（不考核），在镇街报告的无人负责的窗口中列出：{}",
                parts.join("；")
            ),
        )
    }))
}

/// [`cut_windows`]' notice: each cut window once, with how many households leave it to
/// the outgoing helper (with the last day to visit), then how many to no one.
fn cut_windows_zh(on: NaiveDate, tally: &BTreeMap<CutWindow, u32>) -> Option<String> {
    type Window = (PairingRole, bangfu_shared::VisitKind, NaiveDate, NaiveDate);
    let mut windows: BTreeMap<Window, (Vec<String>, u32)> = BTreeMap::new();
    for (&(role, kind, start, end, by), &n) in tally {
        let entry = windows.entry((role, kind, start, end)).or_default();
        match by {
            Some(by) => entry.0.push(format!(
                "{n}户仍由原帮扶责任人负责，最后走访日{}",
                by.format("%m-%d")
            )),
            None => entry.1 += n,
        }
    }
    let parts: Vec<String> = windows
        .into_iter()
        .map(|((role, kind, start, end), (mut owed, none))| {
            if none > 0 {
                owed.push(format!("{none}户原、新帮扶责任人均不负责（不考核）"));
            }
            format!(
                "{}{}（{}~{}）：{}",
                role.label_zh(),
                kind.label_zh(),
                start.format("%m-%d"),
                end.format("%m-%d"),
                owed.join("，")
            )
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "生效日期{on}在考勤周期中间，按各周期首日适用的政策：{}",
            parts.join("；")
        )
    })
}

/// For changes dated before today: the visits the outgoing helpers already recorded on
/// or after the effective day, which the change takes out of the count (走访时未与该户
/// 结对), said in the report rather than found later on the sheet (QA s23b F2: a town
/// office's change dated the 1st of the month un-counted a signed visit of the 1st).
async fn visits_uncounted(
    db: &impl ConnectionTrait,
    ctx: &Ctx<'_>,
    ends: &[pairing::Model],
) -> ApiResult<Option<RowError>> {
    let from = ctx.opts.effective_from;
    if ends.is_empty() || from >= crate::services::today() {
        return Ok(None);
    }
    let mut count = 0u64;
    for chunk in ends.chunks(CHUNK) {
        let mut pairs = sea_orm::Condition::any();
        for p in chunk {
            pairs = pairs.add(
                sea_orm::Condition::all()
                    .add(visit_fact::Column::HouseholdId.eq(p.household_id))
                    .add(visit_fact::Column::HelperId.eq(p.helper_id)),
            );
        }
        // Contacts, not rows: a second visit of a day, a clock ahead or a reused photo
        // never counted, so the change takes nothing from it (QA s23d F6).
        count += visit_fact::Entity::find()
            .select_only()
            .column(visit_fact::Column::HouseholdId)
            .column(visit_fact::Column::HelperId)
            .column(visit_fact::Column::Kind)
            .column(visit_fact::Column::VisitDate)
            .distinct()
            .filter(pairs)
            .filter(visit_fact::Column::VisitDate.gte(from))
            .filter(visit_fact::Column::Voided.eq(false))
            .filter(visit_fact::Column::Superseded.eq(false))
            .filter(visit_fact::Column::ClockFlag.eq(false))
            .filter(visit_fact::Column::PhotoReused.eq(false))
            .count(db)
            .await?;
    }
    Ok((count > 0).then(|| {
        RowError::file(
            0,
            format!(
                "原帮扶责任人在生效日期{from}及以后已记录的{count}次走访（同日同类只计一次），因更换后走访时未与该户结对，不再计入考勤"
            ),
        )
    }))
}

/// The pairings by `by` among `ids` still holding on `on`: open, or ending after it (an
/// exit an office scheduled for a later day).
async fn open_pairings(
    db: &impl ConnectionTrait,
    by: pairing::Column,
    ids: &[i64],
    on: chrono::NaiveDate,
) -> ApiResult<Vec<pairing::Model>> {
    Ok(pairing::Entity::find()
        .filter(by.is_in(ids.to_vec()))
        .filter(pairing::holding_after(on))
        // A household may have two holding on `on`: one ending on a later day and its
        // successor already filed from that day. Oldest first, so the successor (the
        // pairing the ledger now names) is the one kept per household and role.
        .order_by_asc(pairing::Column::ValidFrom)
        .order_by_asc(pairing::Column::Id)
        .all(db)
        .await?)
}

async fn write_pairings(
    db: &impl ConnectionTrait,
    ctx: &Ctx<'_>,
    w: &mut Work,
    starts: &[Start],
    ends: &[pairing::Model],
) -> ApiResult<()> {
    let opts = ctx.opts;
    let end_ids: Vec<i64> = ends.iter().map(|p| p.id).collect();
    for chunk in end_ids.chunks(CHUNK) {
        pairing::Entity::update_many()
            .col_expr(
                pairing::Column::ValidTo,
                sea_orm::sea_query::Expr::value(opts.effective_from),
            )
            .filter(pairing::Column::Id.is_in(chunk.to_vec()))
            .exec(db)
            .await?;
    }
    w.audit.extend(ends.iter().map(|p| {
        Entry::new(
            "pairing.end",
            "pairing",
            Some(p.id),
            json!({
                "valid_to": opts.effective_from,
                "household_id": p.household_id,
                "helper_id": p.helper_id,
                "role": p.role,
            }),
        )
    }));
    let max_before = pairing::Entity::find()
        .select_only()
        .column_as(pairing::Column::Id.max(), "m")
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?
        .flatten()
        .unwrap_or(0);
    let reason = opts
        .reason
        .as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    for chunk in starts.chunks(CHUNK) {
        // The reason explains a change of helper: a household paired for the first
        // time was not changed, and must not carry it.
        let models = chunk.iter().map(|st| pairing::ActiveModel {
            household_id: Set(st.household_id),
            helper_id: Set(st.helper_id),
            role: Set(st.role.code().to_string()),
            valid_from: Set(opts.effective_from),
            valid_to: Set(None),
            filed_on: Set(opts.filed_on),
            reason: Set(reason.clone().filter(|_| st.change)),
            short_notice: Set(st.short_notice),
            created_at: Set(ctx.now),
            ..Default::default()
        });
        pairing::Entity::insert_many(models)
            .exec_without_returning(db)
            .await?;
    }
    // The pairings this import created: newer than the mark and of its households (on
    // PostgreSQL another county's import may insert pairings meanwhile; households
    // belong to one county, whose row the import holds).
    let households: BTreeSet<i64> = starts.iter().map(|st| st.household_id).collect();
    let households: Vec<i64> = households.into_iter().collect();
    for chunk in households.chunks(CHUNK) {
        let created = pairing::Entity::find()
            .filter(pairing::Column::Id.gt(max_before))
            .filter(pairing::Column::HouseholdId.is_in(chunk.to_vec()))
            .order_by_asc(pairing::Column::Id)
            .all(db)
            .await?;
        w.audit.extend(created.iter().map(|p| {
            Entry::new("pairing.start", "pairing", Some(p.id), json!({ "household_id": p.household_id, "helper_id": p.helper_id, "role": p.role, "short_notice": p.short_notice }))
        }));
    }
    w.report.pairings_started = starts.len();
    w.report.pairings_ended = ends.len();
    w.report.short_notice = starts.iter().filter(|s| s.short_notice).count();
    Ok(())
}

/// Makes the accounts `ids` second helpers: their helper now supervises households.
async fn promote_to_second(db: &impl ConnectionTrait, ids: &[i64], w: &mut Work) -> ApiResult<()> {
    for &id in ids {
        account::Entity::update_many()
            .col_expr(
                account::Column::Role,
                sea_orm::sea_query::Expr::value(Role::SecondHelper.code()),
            )
            .filter(account::Column::Id.eq(id))
            .exec(db)
            .await?;
        w.audit.push(Entry::new(
            "account.update",
            "account",
            Some(id),
            json!({ "role": Role::SecondHelper }),
        ));
    }
    Ok(())
}

/// Gives every helper of the file an account (login = phone, no password until they
/// enroll), and makes a helper who now supervises households a second helper.
async fn ensure_accounts(
    db: &impl ConnectionTrait,
    ctx: &Ctx<'_>,
    rows: &[LedgerRow],
    w: &mut Work,
) -> ApiResult<()> {
    let phones: Vec<String> = w.helpers.keys().cloned().collect();
    let mut by_username: HashMap<String, account::Model> = HashMap::new();
    for chunk in phones.chunks(CHUNK) {
        for a in account::Entity::find()
            .filter(account::Column::Username.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            by_username.insert(a.username.clone(), a);
        }
    }
    let mut is_second: HashSet<&str> = HashSet::new();
    let mut first_line: HashMap<&str, (usize, usize)> = HashMap::new();
    for (r, row) in rows.iter().enumerate().filter(|(r, _)| w.in_play(*r)) {
        is_second.insert(row.second.phone.as_str());
        first_line
            .entry(row.first.phone.as_str())
            .or_insert((r, col::FIRST_PHONE));
        first_line
            .entry(row.second.phone.as_str())
            .or_insert((r, col::SECOND_PHONE));
    }
    let mut new = Vec::new();
    let mut promoted: Vec<i64> = Vec::new();
    // A refused phone has its error already ([`upsert_helpers`]): nothing of its
    // account is checked or changed.
    for (phone, h) in w.helpers.iter().filter(|(p, _)| !w.refused.contains(*p)) {
        let role = if is_second.contains(phone.as_str()) {
            Role::SecondHelper
        } else {
            Role::FirstHelper
        };
        match by_username.get(phone) {
            None => new.push((phone.clone(), h.id, role)),
            Some(a) if a.helper_id != Some(h.id) => {
                let (r, column) = first_line
                    .get(phone.as_str())
                    .copied()
                    .unwrap_or((0, col::FIRST_PHONE));
                let e = w.error(rows, r, column, format!("手机号{phone}已被其他账号使用"));
                w.errors.push(e);
            }
            Some(a) if role == Role::SecondHelper && a.role == Role::FirstHelper.code() => {
                promoted.push(a.id);
            }
            Some(_) => {}
        }
    }
    // Errors of this or any earlier stage: the import is refused, nothing more written.
    if !w.errors.is_empty() {
        return Ok(());
    }
    promote_to_second(db, &promoted, w).await?;
    new.sort();
    for chunk in new.chunks(CHUNK) {
        let models = chunk
            .iter()
            .map(|(phone, helper_id, role)| account::ActiveModel {
                username: Set(phone.clone()),
                password_hash: Set(None),
                role: Set(role.code().to_string()),
                scope_id: Set(None),
                helper_id: Set(Some(*helper_id)),
                enrollment_code_hash: Set(None),
                enrollment_expires_at: Set(None),
                disabled: Set(false),
                created_at: Set(ctx.now),
                ..Default::default()
            });
        account::Entity::insert_many(models)
            .exec_without_returning(db)
            .await?;
    }
    w.report.accounts_created = new.len();
    if !new.is_empty() {
        w.audit.push(Entry::new(
            "account.create",
            "account",
            None,
            json!({ "helper_accounts": new.len() }),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bangfu_shared::PolicyPreset;
    use bangfu_shared::ledger::HelperEntry;

    fn opts(effective_from: NaiveDate, filed_on: NaiveDate) -> ImportOptions {
        ImportOptions {
            dry_run: true,
            county_id: None,
            effective_from,
            filed_on,
            reason: None,
            retroactive: false,
        }
    }

    /// The file-level errors `check_dates` finds for these dates.
    fn date_errors(effective_from: NaiveDate, filed_on: NaiveDate) -> Vec<String> {
        let caller = Caller::system();
        let policy = PolicyPreset::Laizhou2018.policy();
        let opts = opts(effective_from, filed_on);
        let ctx = Ctx {
            caller: &caller,
            county_id: 1,
            policy: &policy,
            opts: &opts,
            now: now(),
        };
        let mut w = Work::default();
        check_dates(&ctx, &mut w);
        w.errors.into_iter().map(|e| e.reason).collect()
    }

    /// QA s23b F4: the import says which windows a change cuts and whom they are left to.
    #[test]
    fn a_change_inside_a_window_says_whom_each_window_is_left_to() {
        use bangfu_shared::VisitKind;
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let mut tally = std::collections::BTreeMap::new();
        assert_eq!(super::cut_windows_zh(d(12, 20), &tally), None);
        tally.insert(
            (
                PairingRole::First,
                VisitKind::Home,
                d(11, 1),
                d(12, 31),
                Some(d(12, 19)),
            ),
            3,
        );
        tally.insert(
            (
                PairingRole::First,
                VisitKind::Home,
                d(11, 1),
                d(12, 31),
                None,
            ),
            2,
        );
        tally.insert(
            (
                PairingRole::First,
                VisitKind::Phone,
                d(12, 1),
                d(12, 31),
                None,
            ),
            3,
        );
        assert_eq!(
            super::cut_windows_zh(d(12, 20), &tally).unwrap_or_default(),
            "生效日期2026-12-20在考勤周期中间，按各周期首日适用的政策：\
             第一帮扶责任人入户（11-01~12-31）：3户仍由原帮扶责任人负责，最后走访日12-19，\
             2户原、新帮扶责任人均不负责（不考核）；\
             第一帮扶责任人电话（12-01~12-31）：3户原、新帮扶责任人均不负责（不考核）"
        );
    }

    /// QA s33a S9: a transaction SQLite has already rolled back (as after a full disk)
    /// leaves the import's own error to be answered, not the rollback's.
    #[tokio::test]
    async fn a_failed_rollback_does_not_hide_why_the_import_failed() {
        use sea_orm::{ConnectionTrait, TransactionTrait};
        let t = crate::testing::TestDb::sqlite().await;
        let txn = t.db.begin().await.unwrap();
        txn.execute_unprepared("ROLLBACK").await.unwrap();
        let full = ApiError::StorageUnavailable("database: database or disk is full".into());
        let said = abandon(txn, full).await;
        assert!(
            matches!(&said, ApiError::StorageUnavailable(m) if m.contains("disk is full")),
            "{said}"
        );
        t.cleanup().await;
    }

    #[test]
    fn a_reason_over_200_characters_is_refused_naming_the_parameter() {
        let today = crate::services::today();
        let mut o = opts(today, today);
        o.reason = Some("原".repeat(201));
        let errors = super::date_errors(&o);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].reason.contains("reason") && errors[0].reason.contains("201"));
        o.reason = Some("原".repeat(200));
        assert!(super::date_errors(&o).is_empty());
    }

    #[test]
    fn effective_dates_up_to_a_year_and_a_day_ahead_and_filings_up_to_today_pass() {
        let today = crate::services::today();
        let latest = today + chrono::Duration::days(MAX_DAYS_AHEAD);
        assert!(date_errors(latest, today).is_empty());
        assert!(date_errors(today, today).is_empty());
    }

    #[test]
    fn an_effective_date_further_ahead_is_refused_naming_parameter_date_and_bound() {
        let today = crate::services::today();
        let latest = today + chrono::Duration::days(MAX_DAYS_AHEAD);
        let given = latest + chrono::Duration::days(1);
        let errors = date_errors(given, today);
        assert_eq!(errors.len(), 1, "{errors:?}");
        for part in ["effective_from", &given.to_string(), &latest.to_string()] {
            assert!(errors[0].contains(part), "{part} in {errors:?}");
        }
    }

    #[test]
    fn a_filing_date_after_today_is_refused_naming_parameter_date_and_bound() {
        let today = crate::services::today();
        let tomorrow = today + chrono::Duration::days(1);
        let errors = date_errors(today, tomorrow);
        assert_eq!(errors.len(), 1, "{errors:?}");
        for part in ["filed_on", &tomorrow.to_string(), &today.to_string()] {
            assert!(errors[0].contains(part), "{part} in {errors:?}");
        }
    }

    fn row(line: usize, town: &str, village: &str) -> LedgerRow {
        let helper = |phone: &str| HelperEntry {
            name: "王芳".into(),
            unit_position: "县农业局 科员".into(),
            phone: phone.into(),
        };
        LedgerRow {
            line,
            seq: 1,
            head_name: "高长青".into(),
            town: town.into(),
            village: village.into(),
            cause: "因病".into(),
            measures: String::new(),
            phone: String::new(),
            first: helper("13700000001"),
            second: helper("13700000002"),
        }
    }

    #[test]
    fn rows_without_a_town_get_no_place_and_no_further_error() {
        let rows = [
            row(2, "东城镇", "河口村"),
            row(3, "西港镇", "前进村"),
            row(4, "东城镇", "未知村"),
        ];
        let mut w = Work {
            places: vec![None; rows.len()],
            skipped: vec![false; rows.len()],
            ..Work::default()
        };
        w.town_ids.insert("东城镇".into(), 10);
        w.village_ids.insert((10, "河口村".into()), 100);
        place_rows(&rows, &mut w);
        assert!(matches!(
            w.places[0],
            Some(Place {
                town: 10,
                village: 100
            })
        ));
        assert!(
            w.places[1].is_none(),
            "another town: its error is the town's"
        );
        assert!(w.places[2].is_none());
        let lines: Vec<usize> = w.errors.iter().map(|e| e.row).collect();
        assert_eq!(
            lines,
            vec![4],
            "only the village not found is an error here"
        );
        assert_eq!(
            (0..3).map(|r| w.in_play(r)).collect::<Vec<_>>(),
            vec![true, false, false]
        );
    }

    #[test]
    fn errors_are_sorted_by_sheet_even_when_a_sheets_rows_were_all_left_out() {
        // Sheet 甲's only row had a cell error (left out when reading); sheet 乙's row
        // broke a database rule.
        let place =
            |row: usize, sheet: &str| RowError::cell(row, col::PHONE, "x").in_sheet(Some(sheet));
        let mut w = Work {
            tables: vec![Some("甲".into()), Some("乙".into())],
            sheets: vec![Some("乙".into())],
            errors: vec![place(2, "乙"), place(3, "甲")],
            ..Work::default()
        };
        let Err(ApiError::InvalidLedger(errors)) = fail_if_errors(&mut w) else {
            panic!("errors are a refusal");
        };
        let sheets: Vec<Option<&str>> = errors.iter().map(|e| e.sheet.as_deref()).collect();
        assert_eq!(sheets, [Some("甲"), Some("乙")]);
    }

    /// A helper over the limit is told which rows of the file pair them, and how many
    /// pairings they hold outside it, apart: not "outside this file" when all are in it.
    #[test]
    fn an_over_limit_error_names_the_rows_and_the_pairings_outside_the_file() {
        let in_file = over_limit(PairingRole::First, 1, 2, [2, 7].iter(), 0);
        assert_eq!(
            in_file,
            "第一帮扶责任人按政策最多结对1户，导入后将结对2户（本文件第2、7行）"
        );
        let with_stored = over_limit(PairingRole::Second, 5, 6, [4].iter(), 5);
        assert!(
            with_stored.contains("本文件第4行，另有本文件以外已有的结对5户"),
            "{with_stored}"
        );
    }
}
