//! The quarterly reports built on reconciliation: the second helper's attendance sheet
//! (reviewed, remarked, signed and submitted from the field; frozen once submitted, a
//! resubmission is a new version), the town office's report and the county's ranking,
//! and the town office's "has issues" feedback on a record.

use bangfu_shared::api::Place;
use bangfu_shared::report::{
    AreaRate, AttendanceSheet, CountyReport, Quarter, SheetRow, SheetStatus, SheetSubmission,
    TownReport, window_rule_zh,
};
use bangfu_shared::{JurisdictionLevel, PairingRole, Role};
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::attendance::{self, Homes, Policies, Reconciled, Span};
use super::{Caller, Scope, audit, auth, jurisdictions};
use crate::entities::{
    attendance_sheet, device, helper, household, pairing, record, record_review,
};
use crate::error::{ApiError, ApiResult};

/// Households a second helper supervised at some point of the quarter.
fn supervised(helper_id: i64, q: Quarter) -> Condition {
    let sub = Query::select()
        .column(pairing::Column::HouseholdId)
        .from(pairing::Entity)
        .and_where(pairing::Column::HelperId.eq(helper_id))
        .and_where(pairing::Column::Role.eq(PairingRole::Second.code()))
        .and_where(pairing::Column::ValidFrom.lte(q.end()))
        .cond_where(
            Condition::any()
                .add(pairing::Column::ValidTo.is_null())
                .add(pairing::Column::ValidTo.gt(q.start())),
        )
        .cond_where(pairing::ever_holds())
        .to_owned();
    Condition::all().add(household::Column::Id.in_subquery(sub))
}

async fn latest_sheet(
    db: &impl ConnectionTrait,
    helper_id: i64,
    q: Quarter,
) -> ApiResult<Option<attendance_sheet::Model>> {
    Ok(attendance_sheet::Entity::find()
        .filter(attendance_sheet::Column::SecondHelperId.eq(helper_id))
        .filter(attendance_sheet::Column::Quarter.eq(q.to_string()))
        .order_by_desc(attendance_sheet::Column::Version)
        .one(db)
        .await?)
}

/// When the last sheet of quarter `q` listing household `household_id` was submitted:
/// the latest submission among its second helpers of the quarter (`pairings`, as
/// reconciled). The drill-down marks `late` against it, as the sheet does (QA s22c F8:
/// the drill-down said `late: false` for a record the sheet marked (迟报)).
pub async fn last_submission_for(
    db: &impl ConnectionTrait,
    pairings: &[attendance::Pairing],
    household_id: i64,
    q: Quarter,
) -> ApiResult<Option<chrono::DateTime<chrono::Utc>>> {
    // Each helper once: a helper paired twice in the quarter has one latest sheet.
    let helpers: std::collections::BTreeSet<i64> = pairings
        .iter()
        .filter(|p| p.household_id == household_id && p.role == PairingRole::Second.code())
        .map(|p| p.helper_id)
        .collect();
    let mut last = None;
    for helper in helpers {
        let at = latest_sheet(db, helper, q).await?.map(|s| s.submitted_at);
        last = last.max(at);
    }
    Ok(last)
}

/// Why an office finds no sheet for a helper: sheets belong to second helpers, by the
/// households they supervise (a first helper's id, or a quarter before the pairing, has
/// none). Out-of-scope helpers read the same, so the answer reveals nothing beyond scope.
const NO_SHEET_IN_SCOPE: &str = "attendance sheet of that helper for that quarter (sheets \
     are kept by second helpers, for the households in scope they supervised then; a \
     first helper keeps none)";

/// The second helper's quarterly sheet, as it stands now. The helper sees their own; an
/// office sees those of second helpers whose households are in its scope.
///
/// `submitted_version` names the last submission (devices compare against it), but the
/// rows are today's, not that version's: printed, the sheet says 当前数据 and carries no
/// signature. [`sheet_version`] gives a version as it was frozen.
pub async fn sheet(
    db: &impl ConnectionTrait,
    caller: &Caller,
    helper_id: i64,
    q: Quarter,
) -> ApiResult<AttendanceSheet> {
    // A first helper keeps no sheet: without this, their own helper id (the default of
    // `second_helper`) would give an empty sheet naming them as its second helper.
    if caller.role == Role::FirstHelper {
        return Err(ApiError::Forbidden(
            "attendance sheets are kept by second helpers: a first helper account has none \
             (your visits appear on your households' second helper's sheet)"
                .into(),
        ));
    }
    let own = caller.helper_id == Some(helper_id);
    if !own && caller.role.is_helper() {
        return Err(ApiError::NotFound("attendance sheet"));
    }
    require_begun(q, SHEET_NOT_BEGUN)?;
    let mut cond = supervised(helper_id, q);
    if !own {
        cond = cond.add(caller.scope().households());
    }
    let mut policies = Policies::default();
    let span = Span::all(q.start(), q.end());
    let rec = attendance::reconcile_span(db, &mut policies, &cond.into(), span).await?;
    // Asked before the helper is looked up: a helper of another county and one that
    // does not exist read the same (QA s25b F4).
    if rec.households.is_empty() && !own {
        return Err(ApiError::NotFound(NO_SHEET_IN_SCOPE));
    }
    let second = helper::Entity::find_by_id(helper_id)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound(NO_SHEET_IN_SCOPE))?;
    let last = latest_sheet(db, helper_id, q).await?;
    let frozen = last
        .as_ref()
        .and_then(|s| serde_json::from_str::<AttendanceSheet>(&s.body).ok());
    let submission_id = frozen.as_ref().and_then(|s| s.submission_id);
    let reviewed_rows_match = frozen.as_ref().and_then(|s| s.reviewed_rows_match);
    let remarks: HashMap<i64, String> = frozen
        .map(|s| {
            s.rows
                .into_iter()
                .filter_map(|r| Some((r.household_id, r.remark?)))
                .collect()
        })
        .unwrap_or_default();
    let rows = sheet_rows(
        db,
        &mut policies,
        &rec,
        helper_id,
        q,
        last.as_ref().map(|s| s.submitted_at),
        &remarks,
    )
    .await?;
    // The header names a town only when every row is in it: a second helper may
    // supervise households of two towns, and naming one would misfile the sheet.
    let towns: std::collections::BTreeSet<i64> = rec.households.iter().map(|h| h.town_id).collect();
    let town = match towns.into_iter().collect::<Vec<_>>().as_slice() {
        [only] => rec.places.get(only).cloned(),
        _ => None,
    };
    Ok(AttendanceSheet {
        quarter: q,
        second_helper: auth::helper_ref(&second),
        town,
        rows,
        policy_source: rec.policy_source.clone(),
        rule: window_rule_zh(&rec.exit_cut_days),
        submitted_version: last.as_ref().and_then(|s| i32::try_from(s.version).ok()),
        submitted_at: last.map(|s| s.submitted_at),
        submission_id,
        reviewed_rows_match,
        rows_frozen: None,
    })
}

async fn sheet_rows(
    db: &impl ConnectionTrait,
    policies: &mut Policies,
    rec: &Reconciled,
    second_id: i64,
    q: Quarter,
    late_after: Option<chrono::DateTime<chrono::Utc>>,
    remarks: &HashMap<i64, String>,
) -> ApiResult<Vec<SheetRow>> {
    let lines = attendance::record_lines(
        db,
        policies,
        &rec.households,
        &rec.pairings,
        attendance::evidence_from(&rec.windows, q.start(), q.end()),
        q.end(),
        late_after,
    )
    .await?;
    let ids: Vec<i64> = rec.households.iter().map(|h| h.id).collect();
    let exits = super::exits::standing(db, &ids).await?;
    // Every exit in the quarter, those a return has ended too, by household: they
    // explain the windows they cut (QA s24d F4).
    let mut exit_days: HashMap<i64, Vec<chrono::NaiveDate>> = HashMap::new();
    for (id, on) in super::exits::exit_days_of(db, &ids).await?.into_keys() {
        if on > q.start() && on <= q.end() {
            exit_days.entry(id).or_default().push(on);
        }
    }
    let mut rows = Vec::new();
    for h in &rec.households {
        let firsts: Vec<&attendance::Pairing> = rec
            .pairings
            .iter()
            .filter(|p| p.household_id == h.id && p.role == PairingRole::First.code())
            .collect();
        let first_ids: HashSet<i64> = firsts.iter().map(|p| p.helper_id).collect();
        // The row's first helper: the latest of those paired during the quarter (a
        // pairing that ended before it began is history, not the current helper), and
        // of those, one already begun on the day the sheet is read: a change filed for
        // tomorrow does not name tomorrow's helper on today's sheet (QA s29b J19).
        let as_of = super::today().min(q.end());
        let begun = |p: &attendance::Pairing| (p.valid_from <= as_of, p.valid_from, p.id);
        let current = firsts
            .iter()
            .filter(|p| p.valid_from <= q.end() && p.valid_to.is_none_or(|t| t > q.start()))
            .max_by_key(|p| begun(p))
            .map(|p| p.helper_id);
        let in_quarter = |w: &&attendance::JudgedWindow| {
            w.household_id == h.id && w.result.end >= q.start() && w.result.end <= q.end()
        };
        let seconds: Vec<&attendance::Pairing> = rec
            .pairings
            .iter()
            .filter(|p| p.household_id == h.id && p.role == PairingRole::Second.code())
            .collect();
        // A first-helper window is on one sheet only: that of the second helper who
        // supervised the household on the last day of it anyone did (QA s22c F1: after
        // a change of second helper both sheets listed every window, so a helper signed
        // for misses before their time and the sheets added up to more than the town
        // report).
        let answers_for = |start: chrono::NaiveDate, end: chrono::NaiveDate| {
            seconds
                .iter()
                .filter_map(|p| {
                    let from = p.valid_from.max(start);
                    let to = p
                        .valid_to
                        .and_then(|t| t.pred_opt())
                        .map_or(end, |t| t.min(end));
                    (from <= to).then_some((to, p.valid_from, p.id, p.helper_id))
                })
                .max()
                .map(|(.., helper)| helper)
        };
        let firsts_windows: Vec<&attendance::JudgedWindow> = rec
            .windows
            .iter()
            .filter(in_quarter)
            .filter(|w| w.result.role == PairingRole::First)
            .filter(|w| answers_for(w.result.start, w.result.end) == Some(second_id))
            .collect();
        let own_windows: Vec<&attendance::JudgedWindow> = rec
            .windows
            .iter()
            .filter(in_quarter)
            .filter(|w| w.result.role == PairingRole::Second && w.helper_id == second_id)
            .collect();
        // Its visits: those on days this helper supervised, and those in its windows
        // (before the quarter, only those: the evidence of a window that began then).
        let shown_day = |day: chrono::NaiveDate| {
            seconds.iter().any(|p| {
                p.helper_id == second_id
                    && p.valid_from <= day
                    && p.valid_to.is_none_or(|t| t > day)
            }) || firsts_windows
                .iter()
                .any(|w| w.result.start <= day && day <= w.result.end)
        };
        let sorted = |mut v: Vec<bangfu_shared::report::WindowResult>| {
            v.sort_by_key(|w| (w.start, w.kind != bangfu_shared::VisitKind::Home, w.end));
            v
        };
        rows.push(SheetRow {
            seq: u32::try_from(h.ledger_seq).unwrap_or(0),
            household_id: h.id,
            head_name: h.head_name.clone(),
            village: rec
                .places
                .get(&h.village_id)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            // The latest first helper paired while this second helper supervised the
            // household: after a change of second helper the old sheet names the first
            // helper he supervised, not a later one (QA s22e F6).
            first_helper: firsts
                .iter()
                .filter(|f| {
                    seconds.iter().any(|s| {
                        s.helper_id == second_id
                            && overlap((f.valid_from, f.valid_to), (s.valid_from, s.valid_to), q)
                    })
                })
                .max_by_key(|p| begun(p))
                .map(|p| p.helper_id)
                .or(current)
                .and_then(|id| rec.helper(id)),
            records: lines
                .iter()
                .filter(|l| l.household_id == h.id && first_ids.contains(&l.helper_id))
                .filter(|l| shown_day(l.date))
                .filter(|l| attendance::line_shown(l, q.start(), firsts_windows.iter().copied()))
                .cloned()
                .collect(),
            // Each window names its helper: with a change of helper in the quarter,
            // some windows are the previous helper's, not the row's current one.
            windows: sorted(
                firsts_windows
                    .iter()
                    .map(|w| bangfu_shared::report::WindowResult {
                        helper: rec.helper(w.helper_id),
                        ..w.result.clone()
                    })
                    .collect(),
            ),
            own_records: lines
                .iter()
                .filter(|l| l.household_id == h.id && l.helper_id == second_id)
                .filter(|l| attendance::line_shown(l, q.start(), own_windows.iter().copied()))
                .cloned()
                .collect(),
            own_windows: sorted(own_windows.iter().map(|w| w.result.clone()).collect()),
            remark: remarks.get(&h.id).cloned(),
            exit_on: exits
                .get(&h.id)
                .map(|e| e.on)
                .filter(|on| *on > q.start() && *on <= q.end()),
            exit_days: exit_days
                .remove(&h.id)
                .map(|mut days| {
                    days.sort_unstable();
                    days
                })
                .unwrap_or_default(),
        });
    }
    Ok(rows)
}

/// Whether two pairings (`valid_from`, exclusive `valid_to`) held on a common day of
/// quarter `q`.
fn overlap(
    a: (chrono::NaiveDate, Option<chrono::NaiveDate>),
    b: (chrono::NaiveDate, Option<chrono::NaiveDate>),
    q: Quarter,
) -> bool {
    let from = a.0.max(b.0).max(q.start());
    let until = [a.1, b.1, q.end().succ_opt()].into_iter().flatten().min();
    until.is_none_or(|u| from < u)
}

/// A second helper submits the quarter's sheet with remarks, signed by a device key.
/// Exactly once per `submission_id`: sending it again (after a lost answer) returns the
/// version it froze.
///
/// The version frozen is the sheet as it stands now, which may not be the sheet the
/// helper reviewed (a visit voided or synced since the device pulled it). A submission
/// that names the digest of the rows it reviewed (`rows_sha256`, signed) is still
/// frozen, so its remarks are kept, but the version records whether its rows are those
/// ([`AttendanceSheet::reviewed_rows_match`]).
pub async fn submit(
    db: &DatabaseConnection,
    caller: &Caller,
    sub: &SheetSubmission,
) -> ApiResult<AttendanceSheet> {
    let helper_id = caller
        .helper_id
        .filter(|_| caller.role == Role::SecondHelper)
        .ok_or_else(|| {
            ApiError::Forbidden("only a second helper submits an attendance sheet".into())
        })?;
    verify_submission(db, caller, sub).await?;
    check_submission_form(sub)?;
    let mut sheet = sheet(db, caller, helper_id, sub.quarter).await?;
    if sheet.rows.is_empty() {
        return Err(ApiError::Invalid(format!(
            "you supervised no household in {}: there is no sheet to submit",
            sub.quarter
        )));
    }
    check_remarks(&sub.remarks, &sheet.rows)?;
    // Compared case-blind: the digest is hex, and a client writing it in capitals
    // reviewed the same rows.
    let frozen_rows = sheet.rows_sha256();
    sheet.reviewed_rows_match = sub
        .rows_sha256
        .as_deref()
        .map(|reviewed| reviewed.eq_ignore_ascii_case(&frozen_rows));
    let remarks: HashMap<i64, &String> = sub.remarks.iter().map(|(h, r)| (*h, r)).collect();
    for row in &mut sheet.rows {
        row.remark = remarks
            .get(&row.household_id)
            .map(|r| r.to_string())
            .filter(|r| !r.trim().is_empty());
    }
    let (_gate, txn) = crate::db::begin_write(db).await?;
    // One submission of a helper at a time (PostgreSQL; SQLite has one writer anyway):
    // two sends of one submission must not both find it missing, nor two submissions
    // take the same version number.
    helper::Entity::find_by_id(helper_id)
        .lock_exclusive()
        .one(&txn)
        .await?;
    if let Some(frozen) = already_submitted(&txn, helper_id, sub).await? {
        return Ok(frozen);
    }
    let version = latest_sheet(&txn, helper_id, sub.quarter)
        .await?
        .map_or(1, |s| s.version + 1);
    let now = super::now();
    sheet.submitted_version =
        Some(i32::try_from(version).map_err(|_| ApiError::Internal("sheet version".into()))?);
    sheet.submitted_at = Some(now);
    sheet.submission_id = sub.submission_id;
    let body = serde_json::to_string(&sheet).map_err(|e| ApiError::Internal(e.to_string()))?;
    let row = attendance_sheet::ActiveModel {
        second_helper_id: Set(helper_id),
        quarter: Set(sub.quarter.to_string()),
        version: Set(version),
        body: Set(body),
        signature: Set(sub.signature.clone()),
        device_id: Set(sub.device_id),
        submitted_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        caller,
        audit::Entry::new(
            "sheet.submit",
            "attendance_sheet",
            Some(row.id),
            serde_json::json!({
                "quarter": sub.quarter,
                "version": version,
                "reviewed_rows_match": sheet.reviewed_rows_match,
            }),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(sheet)
}

pub use bangfu_shared::report::MAX_SHEET_REMARK_CHARS;

/// Refuses (422, naming the quarter and `why`) a quarter that has not begun on the
/// programme's calendar ([`super::today`], China time). One rule for the sheet's
/// submission and the town and county reports: a quarter still to come has no visits
/// to report, and answering it as data (every rate —, nothing missed) would pass for a
/// report. The drill-down of a household's records refuses such a quarter too.
pub fn require_begun(q: Quarter, why: &str) -> ApiResult<()> {
    if q.start() > super::today() {
        return Err(ApiError::NotBegun(format!("{q} has not begun: {why}")));
    }
    Ok(())
}

/// Why a sheet refuses a quarter still to come: every window would read 进行中 and
/// the sheet would pass for one with nothing missed (s21c N6).
const SHEET_NOT_BEGUN: &str = "a quarter's sheet lists the visits made in it";

/// Why a town or county report refuses a quarter still to come.
const REPORT_NOT_BEGUN: &str = "a quarter is reported once its visits are made";

/// Refuses (422) a submission that cannot be a quarter's report: one for a quarter that
/// has not begun (a sheet reports visits made, and the town report would show it as
/// submitted before anything was due), or one whose `rows_sha256` is not a SHA-256 (a
/// client's bug, which would otherwise print as "the data changed after review").
fn check_submission_form(sub: &SheetSubmission) -> ApiResult<()> {
    require_begun(
        sub.quarter,
        "a quarter's sheet is submitted once its visits are made",
    )?;
    match sub.rows_sha256.as_deref() {
        Some(d) if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Err(ApiError::Invalid(format!(
                "rows_sha256 must be the 64 hex digits of the SHA-256 of the rows reviewed, \
                 not {:?}",
                d.chars().take(80).collect::<String>()
            )))
        }
        _ => Ok(()),
    }
}

/// Refuses (422, naming the household) remarks a frozen version must not hold: one for a
/// household not on the sheet, two for one household (which the signature would cover
/// while the version kept only one), or one over [`MAX_SHEET_REMARK_CHARS`].
fn check_remarks(remarks: &[(i64, String)], rows: &[SheetRow]) -> ApiResult<()> {
    let name = |id: i64| {
        rows.iter()
            .find(|r| r.household_id == id)
            .map(|r| format!("household {id} ({})", r.head_name))
    };
    let mut seen = HashSet::new();
    for (id, remark) in remarks {
        let household = name(*id)
            .ok_or_else(|| ApiError::Invalid(format!("household {id} is not on this sheet")))?;
        if !seen.insert(*id) {
            return Err(ApiError::Invalid(format!(
                "{household} has more than one remark: send one remark per household"
            )));
        }
        super::check_free_text(remark, "remarks", usize::MAX)?;
        // One line of the printed sheet: a break would split the row of every listing
        // that prints one per line (QA s30a L5).
        if remark.contains(['\n', '\r', '\t', '\u{2028}', '\u{2029}']) {
            return Err(ApiError::Invalid(format!(
                "the remark for {household} holds a line break or tab: a remark is one line \
                 of the printed sheet"
            )));
        }
        let chars = remark.chars().count();
        if chars > MAX_SHEET_REMARK_CHARS {
            return Err(ApiError::Invalid(format!(
                "the remark for {household} is {chars} characters long: at most \
                 {MAX_SHEET_REMARK_CHARS} fit a line of the printed sheet"
            )));
        }
    }
    Ok(())
}

/// Checks that the submission's device belongs to the caller and its signature holds.
async fn verify_submission(
    db: &DatabaseConnection,
    caller: &Caller,
    sub: &SheetSubmission,
) -> ApiResult<()> {
    let dev = device::Entity::find_by_id(sub.device_id)
        .one(db)
        .await?
        .filter(|d| Some(d.account_id) == caller.account_id && d.revoked_at.is_none())
        .ok_or_else(|| {
            ApiError::Invalid(format!(
                "device {} is not registered to this account",
                sub.device_id
            ))
        })?;
    let key: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(&dev.public_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| ApiError::Internal("device key".into()))?;
    let sig: [u8; 64] = hex::decode(&sub.signature)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| ApiError::Invalid("the signature is not 64 hex-encoded bytes".into()))?;
    VerifyingKey::from_bytes(&key)
        .map_err(|_| ApiError::Internal("device key".into()))?
        .verify_strict(&sub.signing_bytes(), &Signature::from_bytes(&sig))
        .map_err(|_| ApiError::Invalid("the signature does not match the sheet".into()))
}

/// The version this very submission froze, if it was received before. Its id is signed,
/// so the same submission carries the same signature (Ed25519 is deterministic) and a
/// new signing a different one. Submissions without an id are each a new version.
///
/// A known id with another signature (other remarks, another quarter) is a conflict,
/// as for a record: the id names one submission, and a second freeze under it would
/// leave two versions the helper's device cannot tell apart.
async fn already_submitted(
    db: &impl ConnectionTrait,
    helper_id: i64,
    sub: &SheetSubmission,
) -> ApiResult<Option<AttendanceSheet>> {
    let Some(id) = sub.submission_id else {
        return Ok(None);
    };
    let rows = attendance_sheet::Entity::find()
        .filter(attendance_sheet::Column::SecondHelperId.eq(helper_id))
        .all(db)
        .await?;
    for row in rows {
        let frozen: AttendanceSheet = serde_json::from_str(&row.body)
            .map_err(|e| ApiError::Internal(format!("sheet {}: {e}", row.id)))?;
        if frozen.submission_id != Some(id) {
            continue;
        }
        if row.signature == sub.signature && row.quarter == sub.quarter.to_string() {
            return Ok(Some(frozen));
        }
        return Err(ApiError::Conflict(format!(
            "submission {id} already froze version {} of the {} sheet with other content: \
             a new submission needs a new submission_id",
            row.version, row.quarter
        )));
    }
    Ok(None)
}

/// Every submitted version of a sheet, oldest first (they are frozen). An office sees
/// only the rows of households in its scope: a second helper may supervise households
/// of two towns, and each town office sees its own.
pub async fn sheet_versions(
    db: &impl ConnectionTrait,
    caller: &Caller,
    helper_id: i64,
    q: Quarter,
) -> ApiResult<Vec<AttendanceSheet>> {
    Ok(frozen_versions(db, caller, helper_id, q, None)
        .await?
        .into_iter()
        .map(|v| v.sheet)
        .collect())
}

/// A submitted version as frozen, as one caller may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrozenVersion {
    /// The version, its rows limited to the caller's scope.
    pub sheet: AttendanceSheet,
    /// The device signature (hex) the version was submitted under. It covers the whole
    /// body the helper signed, all `signed_rows` rows, not a part an office is shown.
    pub signature: String,
    /// How many rows the version froze: more than `sheet.rows` when some were of
    /// households outside the caller's scope.
    pub signed_rows: usize,
}

impl FrozenVersion {
    /// Whether rows were left out (an office sees only its own households): the
    /// signature then does not cover what is shown.
    pub fn is_partial(&self) -> bool {
        self.sheet.rows.len() < self.signed_rows
    }
}

/// One submitted version of a sheet as it was frozen (rows limited to the caller's scope,
/// as in [`sheet_versions`]), with the device signature it was submitted under: what a
/// sheet printed as "第N版" must show, rather than today's data. When rows were left
/// out ([`FrozenVersion::is_partial`]) the printout says so and does not present the
/// signature as its own.
pub async fn sheet_version(
    db: &impl ConnectionTrait,
    caller: &Caller,
    helper_id: i64,
    q: Quarter,
    version: i32,
) -> ApiResult<FrozenVersion> {
    frozen_versions(db, caller, helper_id, q, Some(version))
        .await?
        .pop()
        .ok_or(ApiError::NotFound("attendance sheet version"))
}

/// The frozen versions (all, or the one named) with their signatures, oldest first.
async fn frozen_versions(
    db: &impl ConnectionTrait,
    caller: &Caller,
    helper_id: i64,
    q: Quarter,
    version: Option<i32>,
) -> ApiResult<Vec<FrozenVersion>> {
    sheet(db, caller, helper_id, q).await?;
    let mut find = attendance_sheet::Entity::find()
        .filter(attendance_sheet::Column::SecondHelperId.eq(helper_id))
        .filter(attendance_sheet::Column::Quarter.eq(q.to_string()));
    if let Some(v) = version {
        find = find.filter(attendance_sheet::Column::Version.eq(v));
    }
    let mut versions: Vec<FrozenVersion> = find
        .order_by_asc(attendance_sheet::Column::Version)
        .all(db)
        .await?
        .into_iter()
        .map(|s| {
            serde_json::from_str::<AttendanceSheet>(&s.body)
                .map(|sheet| FrozenVersion {
                    signed_rows: sheet.rows.len(),
                    sheet,
                    signature: s.signature,
                })
                .map_err(|e| ApiError::Internal(format!("sheet {}: {e}", s.id)))
        })
        .collect::<ApiResult<_>>()?;
    if caller.helper_id != Some(helper_id) {
        let listed: HashSet<i64> = versions
            .iter()
            .flat_map(|v| v.sheet.rows.iter().map(|r| r.household_id))
            .collect();
        let visible: HashSet<i64> = household::Entity::find()
            .select_only()
            .column(household::Column::Id)
            .filter(household::Column::Id.is_in(listed))
            .filter(caller.scope().households())
            .into_tuple::<i64>()
            .all(db)
            .await?
            .into_iter()
            .collect();
        for v in &mut versions {
            v.sheet.rows.retain(|r| visible.contains(&r.household_id));
            if v.is_partial() {
                v.sheet.rows_frozen = u32::try_from(v.signed_rows).ok();
            }
        }
    }
    Ok(versions)
}

async fn town_in_scope(
    db: &impl ConnectionTrait,
    caller: &Caller,
    town: Option<i64>,
) -> ApiResult<Place> {
    caller.require_office("read town reports")?;
    let id = match (town, caller.scope()) {
        (Some(t), _) => t,
        (None, Scope::Town(own)) => own,
        _ => return Err(ApiError::BadRequest("name the town (town=ID)".into())),
    };
    let place = jurisdictions::get(db, id)
        .await
        .map_err(|_| ApiError::NotFound("town"))?;
    let visible = match caller.scope() {
        Scope::All => true,
        Scope::County(c) => place.parent_id == Some(c),
        Scope::Town(own) => own == id,
        _ => false,
    };
    if !visible || place.level != JurisdictionLevel::Town.code() {
        return Err(ApiError::NotFound("town"));
    }
    Ok(jurisdictions::to_place(&place))
}

/// The town office's quarterly report. A quarter that has not begun is refused (422):
/// see [`require_begun`].
/// The town a town report would cover, checked (the caller's scope, a quarter that has
/// begun) before the request takes an office-read slot: a request refused at once is
/// not queued behind other offices' reports first (QA s28a F7).
pub async fn town_report_target(
    db: &impl ConnectionTrait,
    caller: &Caller,
    town: Option<i64>,
    q: Quarter,
) -> ApiResult<i64> {
    let town = town_in_scope(db, caller, town).await?;
    require_begun(q, REPORT_NOT_BEGUN)?;
    Ok(town.id)
}

pub async fn town_report(
    db: &impl ConnectionTrait,
    caller: &Caller,
    town: Option<i64>,
    q: Quarter,
) -> ApiResult<TownReport> {
    let town = town_in_scope(db, caller, town).await?;
    require_begun(q, REPORT_NOT_BEGUN)?;
    let mut policies = Policies::default();
    let rec = attendance::reconcile_span(
        db,
        &mut policies,
        &Condition::all()
            .add(household::Column::TownId.eq(town.id))
            .into(),
        Span::year_to(q),
    )
    .await?;
    let villages = rec.rates(q.start(), q.end(), |h| h.village_id);
    let sanctions = match rec.households.first() {
        Some(h) => policies.sanctions(db, h.county_id, q.end()).await?,
        None => Default::default(),
    };
    let (escalations, unit_escalations) = rec.escalations(q.end(), &sanctions);
    let mut unowned_windows = rec.unowned(q.start(), q.end());
    super::exits::mark_exit_cuts(db, &mut unowned_windows).await?;
    let mut seconds: Vec<i64> = rec
        .pairings
        .iter()
        .filter(|p| {
            p.role == PairingRole::Second.code()
                && p.valid_from <= q.end()
                && p.valid_to.is_none_or(|t| t > q.start())
        })
        .map(|p| p.helper_id)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    seconds.sort_by_key(|id| rec.helpers.get(id).map(|h| h.name.clone()));
    let submitted = latest_versions(db, &seconds, q).await?;
    let mut changed = HashMap::new();
    for id in submitted.keys() {
        changed.insert(*id, sheet_changed(db, *id, q).await?);
    }
    let sheets = seconds
        .iter()
        .filter_map(|id| {
            let last = submitted.get(id);
            Some(SheetStatus {
                second_helper: rec.helper(*id)?,
                version: last.map(|s| s.0),
                submitted_at: last.map(|s| s.1),
                changed_since: changed.get(id).is_some_and(|c| c.changed_since),
                not_as_reviewed: changed.get(id).is_some_and(|c| c.not_as_reviewed),
            })
        })
        .collect();
    Ok(TownReport {
        quarter: q,
        total: total(&villages, town.id, &town.name),
        town,
        sheets,
        villages,
        misses: rec.misses(q.start(), q.end()),
        escalations,
        unit_escalations,
        unit_at: sanctions.unit_at,
        no_home_visit: rec.without_home_visit(q.start(), q.end()),
        unowned_windows,
        rule: window_rule_zh(&rec.exit_cut_days),
    })
}

/// What the town office is told of a second helper's latest submitted version.
#[derive(Debug, Clone, Copy, Default)]
struct VersionStanding {
    /// The sheet's rows today differ from the version's (the digest the device compares
    /// for 数据已变化): all its rows, whoever asks, as the version froze them all.
    changed_since: bool,
    /// The version froze rows other than those the helper reviewed.
    not_as_reviewed: bool,
}

/// How a second helper's latest submitted version stands (default: none submitted).
async fn sheet_changed(
    db: &impl ConnectionTrait,
    helper_id: i64,
    q: Quarter,
) -> ApiResult<VersionStanding> {
    let Some(last) = latest_sheet(db, helper_id, q).await? else {
        return Ok(VersionStanding::default());
    };
    let frozen: AttendanceSheet = serde_json::from_str(&last.body)
        .map_err(|e| ApiError::Internal(format!("stored sheet: {e}")))?;
    let live = sheet(db, &Caller::system(), helper_id, q).await?;
    Ok(VersionStanding {
        changed_since: live.rows_sha256() != frozen.rows_sha256(),
        not_as_reviewed: frozen.reviewed_rows_match == Some(false),
    })
}

/// The latest submitted (version, time) of each second helper's sheet for the quarter.
async fn latest_versions(
    db: &impl ConnectionTrait,
    second_helpers: &[i64],
    q: Quarter,
) -> ApiResult<HashMap<i64, (i32, chrono::DateTime<chrono::Utc>)>> {
    let mut out: HashMap<i64, (i32, chrono::DateTime<chrono::Utc>)> = HashMap::new();
    for chunk in second_helpers.chunks(1000) {
        let rows: Vec<(i64, i64, chrono::DateTime<chrono::Utc>)> = attendance_sheet::Entity::find()
            .select_only()
            .column(attendance_sheet::Column::SecondHelperId)
            .column(attendance_sheet::Column::Version)
            .column(attendance_sheet::Column::SubmittedAt)
            .filter(attendance_sheet::Column::Quarter.eq(q.to_string()))
            .filter(attendance_sheet::Column::SecondHelperId.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        for (id, version, at) in rows {
            let version = i32::try_from(version).unwrap_or(i32::MAX);
            let e = out.entry(id).or_insert((version, at));
            if version > e.0 {
                *e = (version, at);
            }
        }
    }
    Ok(out)
}

fn total(parts: &[AreaRate], id: i64, name: &str) -> AreaRate {
    let mut t = AreaRate {
        place_id: id,
        name: name.to_string(),
        ..AreaRate::default()
    };
    for p in parts {
        t.households += p.households;
        t.required_windows += p.required_windows;
        t.met_windows += p.met_windows;
    }
    t.finish();
    t
}

/// The county office's quarterly report: towns ranked by 到位率. A quarter that has not
/// begun is refused (422), as for [`town_report`].
/// The county a county report would cover, checked before the request takes an
/// office-read slot (see [`town_report_target`]).
pub async fn county_report_target(
    db: &impl ConnectionTrait,
    caller: &Caller,
    county: Option<i64>,
    q: Quarter,
) -> ApiResult<i64> {
    caller.require(&[Role::CountyOffice], "read county reports")?;
    let id = match (caller.scope(), county) {
        (Scope::All, Some(c)) => c,
        (Scope::County(own), None) => own,
        (Scope::County(own), Some(c)) if c == own => own,
        (Scope::All, None) => {
            return Err(ApiError::BadRequest("name the county (county=ID)".into()));
        }
        _ => return Err(ApiError::NotFound("county")),
    };
    jurisdictions::county(db, id).await?;
    require_begun(q, REPORT_NOT_BEGUN)?;
    Ok(id)
}

pub async fn county_report(
    db: &impl ConnectionTrait,
    caller: &Caller,
    county: Option<i64>,
    q: Quarter,
) -> ApiResult<CountyReport> {
    let id = county_report_target(db, caller, county, q).await?;
    let place = jurisdictions::county(db, id).await?;
    let mut policies = Policies::default();
    let (mut towns, misses, helpers, cut_days) = county_parts(db, &mut policies, id, q).await?;
    // A town with nothing required this quarter has no rate to rank by: it goes last,
    // unranked.
    let rates: Vec<f64> = towns.iter().filter_map(|t| t.rate).collect();
    for t in towns.iter_mut() {
        if let Some(rate) = t.rate {
            t.rank = Some(1 + rates.iter().filter(|r| **r > rate).count() as u32);
        }
    }
    towns.sort_by(|a, b| {
        (a.rank.is_none(), a.rank, &a.name).cmp(&(b.rank.is_none(), b.rank, &b.name))
    });
    let sanctions = if helpers.is_empty() {
        Default::default()
    } else {
        policies.sanctions(db, id, q.end()).await?
    };
    let (escalations, unit_escalations) = attendance::escalate(&misses, &helpers, &sanctions);
    Ok(CountyReport {
        quarter: q,
        total: total(&towns, id, &place.name),
        county: jurisdictions::to_place(&place),
        towns,
        escalations,
        unit_escalations,
        unit_at: sanctions.unit_at,
        rule: window_rule_zh(&cut_days),
    })
}

/// Households reconciled at once for a county report: a county of ordinary size in one
/// go, a province-sized one in slices of consecutive ids, so memory stays bounded and
/// each slice's pairings and facts are found by index.
const COUNTY_SLICE: usize = 20_000;

/// What a county report is made of: each town's rate, and first helpers' misses this
/// year with the helpers who missed.
async fn county_parts(
    db: &impl ConnectionTrait,
    policies: &mut Policies,
    county: i64,
    q: Quarter,
) -> ApiResult<(
    Vec<AreaRate>,
    BTreeMap<i64, u32>,
    HashMap<i64, attendance::Helper>,
    BTreeSet<u32>,
)> {
    let mut cut_days = BTreeSet::new();
    let mut towns: BTreeMap<i64, AreaRate> = BTreeMap::new();
    let mut misses: BTreeMap<i64, u32> = BTreeMap::new();
    let mut helpers = HashMap::new();
    for ids in household_slices(db, county).await? {
        let homes = Homes {
            cond: Condition::all().add(household::Column::CountyId.eq(county)),
            ids: Some(ids),
        };
        let mut rec = attendance::reconcile_span(db, policies, &homes, Span::year_to(q)).await?;
        cut_days.append(&mut rec.exit_cut_days);
        for part in rec.rates(q.start(), q.end(), |h| h.town_id) {
            let t = towns.entry(part.place_id).or_insert_with(|| AreaRate {
                place_id: part.place_id,
                name: part.name.clone(),
                ..AreaRate::default()
            });
            t.households += part.households;
            t.required_windows += part.required_windows;
            t.met_windows += part.met_windows;
        }
        for (id, n) in rec.first_misses(q.end()) {
            *misses.entry(id).or_default() += n;
            if let Some(h) = rec.helpers.remove(&id) {
                helpers.insert(id, h);
            }
        }
    }
    let mut towns: Vec<AreaRate> = towns.into_values().collect();
    towns.iter_mut().for_each(AreaRate::finish);
    towns.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((towns, misses, helpers, cut_days))
}

/// The county's households in id order, cut into `(first id, last id)` slices of
/// `COUNTY_SLICE`.
async fn household_slices(db: &impl ConnectionTrait, county: i64) -> ApiResult<Vec<(i64, i64)>> {
    let ids: Vec<i64> = household::Entity::find()
        .select_only()
        .column(household::Column::Id)
        .filter(household::Column::CountyId.eq(county))
        .order_by_asc(household::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids
        .chunks(COUNTY_SLICE)
        .filter_map(|c| Some((*c.first()?, *c.last()?)))
        .collect())
}

/// The town office marks a record "has issues"; the note reaches the helper's device on
/// its next pull, and the helper's amendment returns the record to review.
/// Refuses a mark on a record its helper has since corrected or voided (a later record
/// of the same visit): the mark showed as 已更正 at once and never reached the helper
/// (QA s32d X5). The office reviews the newest record of the visit instead.
async fn refuse_superseded(db: &DatabaseConnection, rec: &record::Model) -> ApiResult<()> {
    let visit = rec.target_id.clone().unwrap_or_else(|| rec.id.clone());
    let versions = record::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(record::Column::TargetId.eq(visit.clone()))
                .add(record::Column::Id.eq(visit)),
        )
        .all(db)
        .await?;
    // The one that stands, as the reports choose it (QA s33c C3: naming any later one
    // sent the office to a record itself corrected since).
    match super::facts::newest_version(versions.iter()) {
        Some(newest) if newest.id != rec.id => Err(ApiError::Conflict(format!(
            "this visit was corrected or voided by its helper since (record {}): review \
             the newest record of the visit instead",
            newest.id
        ))),
        _ => Ok(()),
    }
}

/// Withdraws a record's standing "has issues" mark (one given by mistake): a `withdrawn`
/// review with the reason, and the record's note cleared, so its helper's device drops
/// it at the next pull and no correction is asked (QA s32d X5). 409 when no mark stands.
pub async fn withdraw_mark(
    db: &DatabaseConnection,
    caller: &Caller,
    record_id: &str,
    reason: &str,
) -> ApiResult<()> {
    let rec = reviewable(db, caller, record_id, reason).await?;
    if rec.review.is_none() {
        return Err(ApiError::Conflict(
            "this record has no \"has issues\" mark standing to withdraw".into(),
        ));
    }
    review_step(
        db,
        caller,
        rec,
        ("withdrawn", "record.review_withdrawn"),
        reason,
    )
    .await
}

/// The record `record_id` in the office's scope, with `reason` checked: what marking it
/// and withdrawing a mark both need.
async fn reviewable(
    db: &DatabaseConnection,
    caller: &Caller,
    record_id: &str,
    reason: &str,
) -> ApiResult<record::Model> {
    caller.require_office("review records")?;
    if reason.trim().is_empty() {
        return Err(ApiError::Invalid("say what the issue is".into()));
    }
    super::check_free_text(reason, "reason", bangfu_shared::visit::MAX_ITEM_CHARS)?;
    let rec = record::Entity::find()
        .filter(record::Column::Id.eq(record_id))
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("record"))?;
    household::Entity::find()
        .filter(
            caller
                .scope()
                .households()
                .add(household::Column::Id.eq(rec.household_id)),
        )
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("record"))?;
    Ok(rec)
}

pub async fn mark_has_issues(
    db: &DatabaseConnection,
    caller: &Caller,
    record_id: &str,
    reason: &str,
) -> ApiResult<()> {
    let rec = reviewable(db, caller, record_id, reason).await?;
    refuse_superseded(db, &rec).await?;
    review_step(db, caller, rec, ("has_issues", "record.has_issues"), reason).await
}

/// Writes one step of a record's review: the step with its reason, the note its helper's
/// device shows (the reason while the record has issues, none once the mark is
/// withdrawn), a new change number so the next pull brings it, and the audit entry
/// `action`.
async fn review_step(
    db: &DatabaseConnection,
    caller: &Caller,
    rec: record::Model,
    (state, action): (&str, &'static str),
    reason: &str,
) -> ApiResult<()> {
    let reason = reason.trim();
    let txn = db.begin().await?;
    let seq = super::sync::next_changes(&txn, 1).await?;
    record_review::ActiveModel {
        record_id: Set(rec.id.clone()),
        state: Set(state.into()),
        reason: Set(Some(reason.to_string())),
        account_id: Set(caller.account_id),
        at: Set(super::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let mut active = rec.into_active_model();
    active.review = Set((state == "has_issues").then(|| reason.to_string()));
    active.change_seq = Set(seq);
    let rec = active.update(&txn).await?;
    audit::record(
        &txn,
        caller,
        audit::Entry::new(
            action,
            "record",
            None,
            serde_json::json!({
                "record": rec.id,
                "household_id": rec.household_id,
                "author_helper_id": rec.author_helper_id,
                "reason": reason,
            }),
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The review history of a record (has issues, resubmitted), oldest first.
pub async fn review_history(
    db: &impl ConnectionTrait,
    record_id: &str,
) -> ApiResult<Vec<(String, Option<String>)>> {
    Ok(record_review::Entity::find()
        .filter(record_review::Column::RecordId.eq(record_id))
        .order_by_asc(record_review::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.state, r.reason))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, head: &str) -> SheetRow {
        SheetRow {
            seq: 1,
            household_id: id,
            head_name: head.into(),
            village: String::new(),
            first_helper: None,
            records: vec![],
            windows: vec![],
            own_records: vec![],
            own_windows: vec![],
            remark: None,
            exit_on: None,
            exit_days: Vec::new(),
        }
    }

    fn refusal(remarks: &[(i64, &str)]) -> Option<String> {
        let remarks: Vec<(i64, String)> =
            remarks.iter().map(|(h, r)| (*h, r.to_string())).collect();
        match check_remarks(&remarks, &[row(1, "田晓东"), row(2, "叶秀兰")]) {
            Ok(()) => None,
            Err(ApiError::Invalid(m)) => Some(m),
            Err(e) => panic!("not a 422: {e:?}"),
        }
    }

    #[test]
    fn remarks_a_frozen_version_must_not_hold_are_refused_naming_the_household() {
        let at_limit = "户".repeat(MAX_SHEET_REMARK_CHARS);
        assert_eq!(refusal(&[(1, "电话回访到位"), (2, &at_limit)]), None);
        assert_eq!(refusal(&[]), None);

        let over = format!("{at_limit}。");
        let m = refusal(&[(1, "a"), (2, &over)]).unwrap();
        assert!(
            m.contains("household 2 (叶秀兰)") && m.contains("501"),
            "{m}"
        );

        let m = refusal(&[(1, "a"), (1, "b")]).unwrap();
        assert!(
            m.contains("household 1 (田晓东) has more than one remark"),
            "{m}"
        );
        let m = refusal(&[(2, ""), (2, "b")]).unwrap();
        assert!(m.contains("household 2"), "{m}");

        let m = refusal(&[(1, "a"), (9, "b")]).unwrap();
        assert_eq!(m, "household 9 is not on this sheet");
    }
}
