//! Reads and writes of the local store. Writes that belong together take a
//! `&impl ConnectionTrait` so the caller runs them inside one transaction.

use std::collections::HashMap;

use bangfu_shared::Role;
use bangfu_shared::api::{HelperRef, HouseholdDetail, Snapshot};
use bangfu_shared::policy::EvidenceSince;
use bangfu_shared::report::Quarter;
use bangfu_shared::visit::{RecordEnvelope, RecordType, SignedRecord, canonical_json, utc_seconds};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, QueryResult};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Store, stmt};
use crate::draft::VisitDraft;
use crate::error::{ClientError, Result};
use crate::flags::{Flag, visit_flags};
use crate::photos::StoredImage;

/// Who this device belongs to, saved at login.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub server: String,
    pub username: String,
    pub account_id: i64,
    pub role: Role,
    pub helper: Option<HelperRef>,
    /// The server's id of this device's registered key.
    pub device_id: i64,
    /// The device's public key, base64.
    pub public_key: String,
    /// Bearer token for sync (issue 4); never printed.
    pub token: String,
    pub token_expires_at: DateTime<Utc>,
    pub logged_in_at: DateTime<Utc>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("account_id", &self.account_id)
            .field("device_id", &self.device_id)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Where a record stands with the server.
///
/// `local` → `uploading` (sent, the answer not yet recorded) → `awaiting_photos` (the
/// server stored it but still lacks files) → `synced`; or `rejected` / `conflict` with
/// the server's reason. A process killed while a record is `uploading` leaves it so;
/// the next sync sends it again (the server answers a known record the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    Local,
    Uploading,
    AwaitingPhotos,
    Synced,
    Rejected,
    Conflict,
}

impl SyncState {
    /// Every state, in the order lists rank them (most urgent first).
    pub const ALL: [SyncState; 6] = [
        SyncState::Rejected,
        SyncState::Conflict,
        SyncState::Local,
        SyncState::Uploading,
        SyncState::AwaitingPhotos,
        SyncState::Synced,
    ];

    /// The code stored and printed.
    pub fn code(self) -> &'static str {
        match self {
            SyncState::Local => "local",
            SyncState::Uploading => "uploading",
            SyncState::AwaitingPhotos => "awaiting_photos",
            SyncState::Synced => "synced",
            SyncState::Rejected => "rejected",
            SyncState::Conflict => "conflict",
        }
    }

    /// Parses a stored code.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|x| x.code() == s)
            .ok_or_else(|| ClientError::Corrupt(format!("unknown sync state `{s}`")))
    }

    /// The server refused the record: the helper has to look at it.
    pub fn is_refused(self) -> bool {
        matches!(self, SyncState::Rejected | SyncState::Conflict)
    }
}

/// SQL ranking a record's sync state, most urgent first (for a visit's overall state).
const STATE_RANK: &str = "CASE {STATE} WHEN 'rejected' THEN 0 WHEN 'conflict' THEN 1 \
     WHEN 'local' THEN 2 WHEN 'uploading' THEN 3 WHEN 'awaiting_photos' THEN 4 ELSE 5 END";

/// SQL of the record `x`'s sync state as the visit's lists say it: a version waiting
/// for photos a later version made moot ([`super::outbox::photos_moot`]) has nothing
/// left to do, so it reads synced (a voided visit whose photo was damaged is not
/// 待传照片 for ever, QA s22a F2).
fn effective_state() -> String {
    format!(
        "(CASE WHEN x.sync_state = 'awaiting_photos' AND {} THEN 'synced' ELSE x.sync_state END)",
        super::outbox::photos_moot("x")
    )
}

/// A household on the device, and whether the helper is still paired with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalHousehold {
    pub detail: HouseholdDetail,
    /// Set once the pairing has ended: for a household the server lists with all of the
    /// helper's pairings closed, the real end (their latest `valid_to`); for one
    /// missing from the server's list, the local date the device first found it missing
    /// (the pairing had ended by then; exactly when, that copy cannot tell). `None`
    /// while the helper is paired with it.
    pub unpaired_since: Option<NaiveDate>,
}

impl LocalHousehold {
    /// Whether helper `helper_id` was paired with the household on `day`, by this copy:
    /// one of their pairings began by then and had not ended, and the device had not
    /// yet found the household gone from the server's list (an open pairing in a copy
    /// the server stopped sending vouches only until then). With no pairing of theirs
    /// in the copy there is nothing to judge by: true. [`pairing_sql`] says the same.
    pub fn paired_on(&self, helper_id: i64, day: NaiveDate) -> bool {
        let mut mine = self
            .detail
            .pairings
            .iter()
            .filter(|p| p.helper.id == helper_id)
            .peekable();
        if mine.peek().is_none() {
            return true;
        }
        let known = self.unpaired_since.is_none_or(|until| day <= until);
        known && mine.any(|p| p.valid_from <= day && p.valid_to.is_none_or(|to| day < to))
    }
}

fn local_household_from_row(r: &QueryResult) -> Result<LocalHousehold> {
    let since: Option<String> = r.try_get_by_index(1)?;
    Ok(LocalHousehold {
        detail: parse_json(&r.try_get_by_index::<String>(0)?)?,
        unpaired_since: since
            .map(|s| s.parse::<NaiveDate>().map_err(corrupt))
            .transpose()?,
    })
}

/// A signed record as stored, with its content hash and sync state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRecord {
    #[serde(flatten)]
    pub signed: SignedRecord,
    pub sha256: String,
    pub sync_state: SyncState,
    /// Why the server rejected the record (or why it conflicts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_reason: Option<String>,
    /// The server's stable code for that reason (`Ack::reason_code`); `None` from
    /// servers before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_reason_code: Option<String>,
}

/// A visit as it stands now: its latest content (the original or the last amendment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitRow {
    pub visit_id: Uuid,
    pub household_id: i64,
    /// The record carrying the current content.
    pub current: StoredRecord,
    pub amendments: i64,
    pub voided: bool,
    pub void_reason: Option<String>,
    /// Records of this visit (original, amendments, void) not yet synced.
    pub unsynced: i64,
    /// The most urgent sync state among the visit's records (a rejected amendment makes
    /// the visit show as rejected).
    pub sync: SyncState,
    /// The server's reason when that state is `rejected` or `conflict`.
    pub sync_reason: Option<String>,
    /// The server's code for that reason ([`crate::i18n::Lang::refusal`] says it in
    /// the helper's language).
    pub sync_reason_code: Option<String>,
    /// The server's flags that concern the visit ([`crate::flags::visit_flags`]), and the
    /// device's [`Flag::MissingEvidence`]: a synced visit may still not count, and only
    /// these say so. A voided visit keeps
    /// none of those that stop counting (it is out of the count, and cannot be amended).
    pub flags: Vec<Flag>,
    /// The town office's latest review note on one of the visit's records, if any.
    pub review: Option<ReviewNote>,
    /// The family changes the visit's records proposed that the town office decided,
    /// with its notes (a rejection and why: QA s29b J4).
    pub family_decisions: Vec<bangfu_shared::sync::DecidedChange>,
    /// Images of a visit not yet sent that are missing or altered on this device
    /// (filled by [`crate::Client::visits`]; empty from the store).
    pub damaged_images: Vec<String>,
}

impl VisitRow {
    /// Adds [`Flag::MissingEvidence`] to a home visit (not voided) short of the photos or
    /// household signature asked by the policy in force on its date (`history`): the
    /// server will not count it, and says so only in its reports.
    fn flag_short_evidence(&mut self, history: &[EvidenceSince]) {
        let short = !self.voided
            && self
                .current
                .signed
                .record
                .visit
                .as_ref()
                .is_some_and(|body| crate::client::short_of_evidence(history, body));
        if short && !self.flags.contains(&Flag::MissingEvidence) {
            self.flags.push(Flag::MissingEvidence);
        }
    }

    /// Adds [`Flag::OutsidePairing`] to a visit (not voided) dated on a day its author
    /// was not paired with the household, by the device's copy of it (`households`):
    /// the server will not count it, and says so only in its reports (QA s22e F3: a
    /// visit signed offline after the pairing ended showed as synced and counting).
    fn flag_outside_pairing(&mut self, households: &HashMap<i64, LocalHousehold>) {
        let record = &self.current.signed.record;
        let Some(body) = record.visit.as_ref() else {
            return;
        };
        let day = crate::client::today(body.at);
        let outside = !self.voided
            && households
                .get(&self.household_id)
                .is_some_and(|h| !h.paired_on(record.author_helper_id, day));
        if outside && !self.flags.contains(&Flag::OutsidePairing) {
            self.flags.push(Flag::OutsidePairing);
        }
    }
}

/// A town office's note that a visit "has issues" (照片模糊，请补拍…): what the helper is
/// asked to correct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewNote {
    pub note: String,
    /// Whether an amendment came after the reviewed record: the helper has answered it.
    pub amended_since: bool,
}

pub(crate) fn corrupt(e: impl std::fmt::Display) -> ClientError {
    ClientError::Corrupt(e.to_string())
}

/// A time the store wrote (RFC 3339); anything else is a corrupt store.
pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(s)
        .map_err(corrupt)?
        .with_timezone(&Utc))
}

pub(crate) fn parse_json<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(corrupt)
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(corrupt)
}

pub(crate) fn record_from_row(r: &QueryResult, offset: usize) -> Result<StoredRecord> {
    let envelope: String = r.try_get_by_index(offset)?;
    let signature: String = r.try_get_by_index(offset + 1)?;
    let sha256: String = r.try_get_by_index(offset + 2)?;
    let sync_state: String = r.try_get_by_index(offset + 3)?;
    let sync_reason: Option<String> = r.try_get_by_index(offset + 4)?;
    let sync_reason_code: Option<String> = r.try_get_by_index(offset + 5)?;
    let record: RecordEnvelope = parse_json(&envelope)?;
    Ok(StoredRecord {
        signed: SignedRecord { record, signature },
        sha256,
        sync_state: SyncState::parse(&sync_state)?,
        sync_reason,
        sync_reason_code,
    })
}

pub(crate) const RECORD_COLS: &str =
    "r.envelope_json, r.signature, r.sha256, r.sync_state, r.sync_reason, r.sync_reason_code";

/// The columns of a [`VisitRow`] (then [`RECORD_COLS`] of its current record).
const VISIT_COLS: &str = "v.visit_id, v.household_id, v.amendments, v.voided, v.void_reason, \
     (SELECT COUNT(*) FROM records x WHERE (x.id = v.visit_id OR x.target_id = v.visit_id) AND {STATE} <> 'synced'), \
     (SELECT {STATE} FROM records x WHERE x.id = v.visit_id OR x.target_id = v.visit_id ORDER BY {RANK}, x.seq LIMIT 1), \
     (SELECT x.sync_reason FROM records x WHERE x.id = v.visit_id OR x.target_id = v.visit_id ORDER BY {RANK}, x.seq LIMIT 1), \
     (SELECT x.sync_reason_code FROM records x WHERE x.id = v.visit_id OR x.target_id = v.visit_id ORDER BY {RANK}, x.seq LIMIT 1)";

fn visit_cols() -> String {
    VISIT_COLS
        .replace("{RANK}", STATE_RANK)
        .replace("{STATE}", &effective_state())
}

/// SQL true when the visit `v` whose current record is `r` counts for attendance as
/// far as the device knows: the server did not refuse that version and set no flag on
/// it that stops counting ([`Flag::stops_counting`]), a home visit has the photos
/// and household signature asked by the policy in force on its date (`history`; the
/// server judges that only in its reports: [`Flag::MissingEvidence`]), and its author
/// was paired with the household on its date ([`pairing_sql`]), and a version not on
/// the server whole needs no image a sync found unusable (missing or altered here, or
/// refused: `files.unusable_since`). A version not yet synced has no flags: it counts
/// provisionally, until the server answers.
fn counts_sql(history: &[EvidenceSince]) -> String {
    let codes = crate::flags::STOPS_COUNTING
        .iter()
        .map(|c| format!("'{c}'"))
        .collect::<Vec<_>>()
        .join(", ");
    // A visit never sent from a device whose key was revoked will never arrive: it does
    // not make a window done (QA s30c N2).
    format!(
        "r.sync_state NOT IN ('rejected', 'conflict') AND NOT (r.sync_state = 'local' AND \
         EXISTS (SELECT 1 FROM meta m WHERE m.key = 'device_revoked' AND m.value = 'true')) \
         AND NOT EXISTS \
         (SELECT 1 FROM json_each(r.sync_flags) f WHERE f.value IN ({codes})) \
         AND (v.kind <> 'home' OR {}) AND {} AND NOT EXISTS \
         (SELECT 1 FROM record_files rf JOIN files f ON f.sha256 = rf.sha256 \
          WHERE rf.record_id = r.id AND f.unusable_since IS NOT NULL \
          AND r.sync_state IN ('local', 'uploading', 'awaiting_photos'))",
        evidence_sql(history),
        pairing_sql()
    )
}

/// SQL true unless the device's copy of the household of visit `v` (current record
/// `r`) says its author was not paired with it on the visit's date (China time), as
/// [`LocalHousehold::paired_on`] judges ([`Flag::OutsidePairing`]). A household not on
/// the device, or no pairing of the author in its copy: nothing to judge by, true.
fn pairing_sql() -> String {
    const MINE: &str = "FROM households h, json_each(h.detail_json, '$.pairings') p \
         WHERE h.id = v.household_id \
         AND json_extract(p.value, '$.helper.id') = json_extract(r.envelope_json, '$.author_helper_id')";
    const DAY: &str = "date(v.at, '+8 hours')";
    format!(
        "(NOT EXISTS (SELECT 1 {MINE}) OR EXISTS (SELECT 1 {MINE} \
         AND json_extract(p.value, '$.valid_from') <= {DAY} \
         AND (json_extract(p.value, '$.valid_to') IS NULL OR {DAY} < json_extract(p.value, '$.valid_to')) \
         AND (h.unpaired_since IS NULL OR {DAY} <= h.unpaired_since)))"
    )
}

/// SQL true when the home visit `v` (current record `r`) has the evidence of the step
/// of `history` in force on its date (China time): a CASE from the newest step back;
/// before the first step, or with no history, nothing is asked.
fn evidence_sql(history: &[EvidenceSince]) -> String {
    if history.is_empty() {
        return "1".into();
    }
    let mut sql = String::from("(CASE");
    for step in history.iter().rev() {
        let from = crate::client::china_midnight(step.from);
        let signed = if step.evidence.both_signatures {
            " AND json_type(r.envelope_json, '$.visit.household_signature.image_sha256') IS NOT NULL"
        } else {
            ""
        };
        sql.push_str(&format!(
            " WHEN v.at >= '{}' THEN (json_array_length(r.envelope_json, '$.visit.photos') >= {}{signed})",
            utc_seconds::format(&from),
            step.evidence.min_photos
        ));
    }
    sql.push_str(" ELSE 1 END)");
    sql
}

/// After [`RECORD_COLS`] of the current record: its flags, then the flags of the
/// visit's other records (a JSON array of their JSON arrays).
const VISIT_FLAG_COLS: &str = "r.sync_flags, \
     (SELECT json_group_array(x.sync_flags) FROM records x \
      WHERE (x.id = v.visit_id OR x.target_id = v.visit_id) AND x.id <> v.latest_record_id), \
     (SELECT json_array(x.review_note, x.id <> v.latest_record_id) FROM records x \
      WHERE (x.id = v.visit_id OR x.target_id = v.visit_id) AND x.review_note IS NOT NULL \
      ORDER BY x.created_at DESC, x.seq DESC LIMIT 1), \
     (SELECT json_group_array(x.family_decisions) FROM records x \
      WHERE (x.id = v.visit_id OR x.target_id = v.visit_id) AND x.family_decisions <> '[]')";

fn visit_from_row(r: &QueryResult) -> Result<VisitRow> {
    let id: String = r.try_get_by_index(0)?;
    let state: Option<String> = r.try_get_by_index(6)?;
    let voided = r.try_get_by_index::<i64>(3)? != 0;
    let mut flags = visit_flags_from_row(r, 15)?;
    // A voided visit is out of the count by its void and can no longer be amended: a
    // "not counted, amend it" flag says nothing the helper can act on, and "entered
    // late: it counts" would be wrong (QA s23b F11).
    if voided {
        flags.retain(|f| !f.stops_counting() && *f != Flag::EnteredLate);
    }
    Ok(VisitRow {
        visit_id: Uuid::parse_str(&id).map_err(corrupt)?,
        household_id: r.try_get_by_index(1)?,
        amendments: r.try_get_by_index(2)?,
        voided,
        void_reason: r.try_get_by_index(4)?,
        unsynced: r.try_get_by_index(5)?,
        sync: SyncState::parse(state.as_deref().unwrap_or("local"))?,
        sync_reason: r.try_get_by_index(7)?,
        sync_reason_code: r.try_get_by_index(8)?,
        current: record_from_row(r, 9)?,
        flags,
        review: review_from_row(r, 17)?,
        family_decisions: decisions_from_row(r, 18)?,
        damaged_images: Vec::new(),
    })
}

/// The decisions of all the visit's records (a JSON array of their JSON arrays).
fn decisions_from_row(
    r: &QueryResult,
    offset: usize,
) -> Result<Vec<bangfu_shared::sync::DecidedChange>> {
    let Some(json) = r.try_get_by_index::<Option<String>>(offset)? else {
        return Ok(Vec::new());
    };
    let lists: Vec<String> = parse_json(&json)?;
    let mut out = Vec::new();
    for list in lists {
        out.extend(parse_json::<Vec<bangfu_shared::sync::DecidedChange>>(
            &list,
        )?);
    }
    Ok(out)
}

fn review_from_row(r: &QueryResult, offset: usize) -> Result<Option<ReviewNote>> {
    let Some(json) = r.try_get_by_index::<Option<String>>(offset)? else {
        return Ok(None);
    };
    let (note, amended_since): (String, i64) = parse_json(&json)?;
    Ok(Some(ReviewNote {
        note,
        amended_since: amended_since != 0,
    }))
}

fn visit_flags_from_row(r: &QueryResult, offset: usize) -> Result<Vec<Flag>> {
    let current: Vec<String> = parse_json(&r.try_get_by_index::<String>(offset)?)?;
    let others: Option<String> = r.try_get_by_index(offset + 1)?;
    let others: Vec<String> = parse_json(others.as_deref().unwrap_or("[]"))?;
    let others = others
        .iter()
        .map(|o| parse_json::<Vec<String>>(o))
        .collect::<Result<Vec<_>>>()?;
    Ok(visit_flags(
        current.iter().map(String::as_str),
        others.iter().flatten().map(String::as_str),
    ))
}

pub(crate) async fn get_meta<T: DeserializeOwned>(
    db: &impl ConnectionTrait,
    key: &str,
) -> Result<Option<T>> {
    let row = db
        .query_one_raw(stmt("SELECT value FROM meta WHERE key = ?", [key.into()]))
        .await?;
    match row {
        Some(r) => Ok(Some(parse_json(&r.try_get_by_index::<String>(0)?)?)),
        None => Ok(None),
    }
}

pub(crate) async fn set_meta<T: Serialize>(
    db: &impl ConnectionTrait,
    key: &str,
    value: &T,
) -> Result<()> {
    let sql = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
    db.execute_raw(stmt(sql, [key.into(), to_json(value)?.into()]))
        .await?;
    Ok(())
}

impl Store {
    /// How far this device's clock was off the server's (seconds, device less server)
    /// at the last login or sync, when beyond the tolerance; `None` when it was right.
    /// Kept so that recording a visit offline warns while the clock is still wrong.
    pub async fn clock_offset(&self) -> Result<Option<i64>> {
        Ok(get_meta::<Option<i64>>(&self.db, "clock_offset_secs")
            .await?
            .flatten())
    }

    /// Keeps what the last login or sync measured (see [`Store::clock_offset`]).
    pub async fn set_clock_offset(&self, offset_secs: Option<i64>) -> Result<()> {
        set_meta(&self.db, "clock_offset_secs", &offset_secs).await
    }

    /// The sheet remarks being typed in the TUI, kept at every key so a killed process
    /// or a flat battery does not lose them (QA s30d P3), one per row: (quarter,
    /// household, text).
    pub async fn remarks_typing(&self) -> Result<Vec<(Quarter, i64, String)>> {
        Ok(
            get_meta::<Vec<(Quarter, i64, String)>>(&self.db, "remarks_typing")
                .await?
                .unwrap_or_default(),
        )
    }

    /// Keeps the text being typed for one row; `None` drops that row's alone, so
    /// another row's editor never throws this one's away (QA s30e Q1).
    pub async fn set_remark_typing(
        &self,
        (quarter, household): (Quarter, i64),
        text: Option<&str>,
    ) -> Result<()> {
        let mut all = self.remarks_typing().await?;
        all.retain(|(q, h, _)| (*q, *h) != (quarter, household));
        if let Some(text) = text {
            all.push((quarter, household, text.to_string()));
        }
        set_meta(&self.db, "remarks_typing", &all).await
    }

    /// Whether a login heard that the town office revoked this data directory's device
    /// key (see [`crate::ClientError::DeviceRevoked`]).
    pub async fn device_revoked(&self) -> Result<bool> {
        Ok(get_meta::<bool>(&self.db, "device_revoked")
            .await?
            .unwrap_or(false))
    }

    /// Keeps that the device key was revoked: it signs and syncs no more.
    pub async fn set_device_revoked(&self) -> Result<()> {
        set_meta(&self.db, "device_revoked", &true).await
    }

    /// Whether a pull found records of this device's key that this data directory does
    /// not hold (see [`crate::ClientError::DeviceForked`]).
    pub async fn device_forked(&self) -> Result<bool> {
        Ok(get_meta::<bool>(&self.db, "device_forked")
            .await?
            .unwrap_or(false))
    }

    /// The saved login, if this device has logged in.
    pub async fn identity(&self) -> Result<Option<Identity>> {
        get_meta(&self.db, "identity").await
    }

    /// The county policy downloaded with the snapshot.
    pub async fn policy(&self) -> Result<Option<bangfu_shared::Policy>> {
        get_meta(&self.db, "policy").await
    }

    /// The home-visit evidence of each policy version, oldest first (empty from a server
    /// that did not send it: then the device judges no visit by its evidence).
    pub async fn evidence_history(&self) -> Result<Vec<EvidenceSince>> {
        Ok(get_meta(&self.db, "evidence_history")
            .await?
            .unwrap_or_default())
    }

    /// The `exit_cuts` of each policy version, oldest first (empty from a server that
    /// did not send it: then the device judges every window by today's policy).
    pub async fn exit_cuts_history(&self) -> Result<Vec<bangfu_shared::policy::ExitCutsSince>> {
        Ok(get_meta(&self.db, "exit_cuts_history")
            .await?
            .unwrap_or_default())
    }

    /// The visits asked by each policy version, oldest first (empty from a server that
    /// did not send it: then the device judges every window by today's policy).
    pub async fn visits_history(&self) -> Result<Vec<bangfu_shared::policy::VisitsSince>> {
        Ok(get_meta(&self.db, "visits_history")
            .await?
            .unwrap_or_default())
    }

    /// When the households were last downloaded (server time).
    pub async fn snapshot_time(&self) -> Result<Option<DateTime<Utc>>> {
        get_meta(&self.db, "snapshot_at").await
    }

    /// Saves a login and the snapshot that came with it, updating the households, in
    /// one transaction (a half-downloaded household list is never shown).
    pub async fn save_login(&self, identity: &Identity, snapshot: &Snapshot) -> Result<()> {
        let txn = self.begin_write().await?;
        // Another account or server on this device: the previous one's households are
        // not this helper's former ones (and ids of another server mean other places).
        let previous: Option<Identity> = get_meta(&txn, "identity").await?;
        let same = previous
            .is_some_and(|p| p.server == identity.server && p.account_id == identity.account_id);
        if !same {
            txn.execute_raw(stmt("DELETE FROM households", Vec::<sea_orm::Value>::new()))
                .await?;
        }
        set_meta(&txn, "identity", identity).await?;
        set_meta(&txn, "policy", &snapshot.policy).await?;
        set_meta(&txn, "evidence_history", &snapshot.evidence_history).await?;
        set_meta(&txn, "exit_cuts_history", &snapshot.exit_cuts_history).await?;
        set_meta(&txn, "visits_history", &snapshot.visits_history).await?;
        set_meta(&txn, "snapshot_at", &snapshot.server_time).await?;
        let today = crate::client::today(snapshot.server_time);
        let helper_id = identity.helper.as_ref().map(|h| h.id);
        Self::replace_households(&txn, &snapshot.households, helper_id, today).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Stores `households` (the server's complete list of the helper's households), on
    /// `db` (the caller's transaction). A listed household none of whose pairings with
    /// helper `helper_id` holds on `today` or later is stored as ended, unpaired since
    /// the real end ([`crate::client::pairing_ended_on`]); the other listed ones are
    /// current (again). A household on the device that the list leaves out is kept,
    /// marked unpaired since `today` (unless it was marked before): its drafts and
    /// history stay usable.
    pub(crate) async fn replace_households(
        db: &impl ConnectionTrait,
        households: &[HouseholdDetail],
        helper_id: Option<i64>,
        today: NaiveDate,
    ) -> Result<()> {
        db.execute_raw(stmt(
            "UPDATE households SET unpaired_since = ? WHERE unpaired_since IS NULL",
            [today.to_string().into()],
        ))
        .await?;
        for h in households {
            let ended = helper_id.and_then(|id| crate::client::pairing_ended_on(h, id, today));
            let sql = "INSERT INTO households (id, head_name, village, detail_json, unpaired_since) \
                       VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET head_name = excluded.head_name, \
                       village = excluded.village, detail_json = excluded.detail_json, \
                       unpaired_since = excluded.unpaired_since";
            let values = [
                h.summary.id.into(),
                h.summary.head_name.clone().into(),
                h.summary.village.name.clone().into(),
                to_json(h)?.into(),
                ended.map(|d| d.to_string()).into(),
            ];
            db.execute_raw(stmt(sql, values)).await?;
        }
        Ok(())
    }

    /// The households the helper is paired with (the current ones of the server's latest
    /// list), by village then name.
    pub async fn households(&self) -> Result<Vec<HouseholdDetail>> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT detail_json FROM households WHERE unpaired_since IS NULL ORDER BY village, head_name, id",
                [],
            ))
            .await?;
        rows.iter()
            .map(|r| parse_json(&r.try_get_by_index::<String>(0)?))
            .collect()
    }

    /// Every household on the device, current or ended, by village then name.
    pub async fn local_households(&self) -> Result<Vec<LocalHousehold>> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT detail_json, unpaired_since FROM households ORDER BY village, head_name, id",
                [],
            ))
            .await?;
        rows.iter().map(local_household_from_row).collect()
    }

    /// Every household on the device by id, current or ended.
    async fn households_by_id(&self) -> Result<HashMap<i64, LocalHousehold>> {
        Ok(self
            .local_households()
            .await?
            .into_iter()
            .map(|h| (h.detail.summary.id, h))
            .collect())
    }

    /// The households stored as ended (listed by the server as ended, or no longer in
    /// its list), by village then name.
    pub async fn ended_households(&self) -> Result<Vec<LocalHousehold>> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT detail_json, unpaired_since FROM households WHERE unpaired_since IS NOT NULL \
                 ORDER BY village, head_name, id",
                [],
            ))
            .await?;
        rows.iter().map(local_household_from_row).collect()
    }

    /// One household, current or not.
    pub async fn household(&self, id: i64) -> Result<Option<HouseholdDetail>> {
        Ok(self.local_household(id).await?.map(|h| h.detail))
    }

    /// One household, current or not, with whether the server still lists it.
    pub async fn local_household(&self, id: i64) -> Result<Option<LocalHousehold>> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT detail_json, unpaired_since FROM households WHERE id = ?",
                [id.into()],
            ))
            .await?;
        row.as_ref().map(local_household_from_row).transpose()
    }

    /// The latest home visit and phone call that counts for attendance (not voided, not
    /// later than `until`, see `counts_sql`) of every household, keyed by household id
    /// then kind code. A visit dated in the future (a device clock ahead, a typing error)
    /// would mark the household as visited for months: it is ignored until its time
    /// comes. A visit the server said does not count (a reused photo, a clock ahead…)
    /// satisfies no window: the list must not say 本期已完成 while the sheet says missed.
    /// A visit not yet synced counts provisionally (the server has not judged it).
    pub async fn last_contacts(
        &self,
        until: DateTime<Utc>,
        history: &[EvidenceSince],
    ) -> Result<HashMap<i64, HashMap<String, DateTime<Utc>>>> {
        let sql = format!(
            "SELECT v.household_id, v.kind, MAX(v.at) FROM visits v \
             JOIN records r ON r.id = v.latest_record_id \
             WHERE v.voided = 0 AND v.at <= ? AND {} GROUP BY v.household_id, v.kind",
            counts_sql(history)
        );
        let mut out: HashMap<i64, HashMap<String, DateTime<Utc>>> = HashMap::new();
        let values = [utc_seconds::format(&until).into()];
        for r in self.db.query_all_raw(stmt(&sql, values)).await? {
            let at = parse_time(&r.try_get_by_index::<String>(2)?)?;
            out.entry(r.try_get_by_index(0)?)
                .or_default()
                .insert(r.try_get_by_index(1)?, at);
        }
        Ok(out)
    }

    /// The times of every visit that counts for attendance (as in [`Self::last_contacts`])
    /// from `since` to `until`, keyed by household id then kind code: a window is met by
    /// its own contacts, so judging each window of the quarter needs all of them, not
    /// only the latest.
    pub async fn contact_times(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        history: &[EvidenceSince],
    ) -> Result<HashMap<i64, HashMap<String, Vec<DateTime<Utc>>>>> {
        let sql = format!(
            "SELECT v.household_id, v.kind, v.at FROM visits v \
             JOIN records r ON r.id = v.latest_record_id \
             WHERE v.voided = 0 AND v.at >= ? AND v.at <= ? AND {}",
            counts_sql(history)
        );
        let mut out: HashMap<i64, HashMap<String, Vec<DateTime<Utc>>>> = HashMap::new();
        let values = [
            utc_seconds::format(&since).into(),
            utc_seconds::format(&until).into(),
        ];
        for r in self.db.query_all_raw(stmt(&sql, values)).await? {
            let at = parse_time(&r.try_get_by_index::<String>(2)?)?;
            out.entry(r.try_get_by_index(0)?)
                .or_default()
                .entry(r.try_get_by_index(1)?)
                .or_default()
                .push(at);
        }
        Ok(out)
    }

    /// Per household, how many of its visits (not voided, not later than `until`) the
    /// server said do not count for attendance (a flag that stops counting on their
    /// current version): the list marks them, as they satisfy no window.
    pub async fn not_counted_visits(
        &self,
        until: DateTime<Utc>,
        history: &[EvidenceSince],
    ) -> Result<HashMap<i64, usize>> {
        let sql = format!(
            "SELECT v.household_id, COUNT(*) FROM visits v \
             JOIN records r ON r.id = v.latest_record_id \
             WHERE v.voided = 0 AND v.at <= ? AND NOT ({}) GROUP BY v.household_id",
            counts_sql(history)
        );
        let values = [utc_seconds::format(&until).into()];
        let mut out = HashMap::new();
        for r in self.db.query_all_raw(stmt(&sql, values)).await? {
            let count: i64 = r.try_get_by_index(1)?;
            out.insert(
                r.try_get_by_index(0)?,
                usize::try_from(count).map_err(corrupt)?,
            );
        }
        Ok(out)
    }

    /// Per household, how many of its visits (not voided) the town office returned for
    /// correction and the helper has not amended since: the latest record of the visit
    /// carrying a review note is still its current one (see [`ReviewNote::amended_since`]).
    pub async fn pending_corrections(&self) -> Result<HashMap<i64, usize>> {
        let sql = "SELECT v.household_id, COUNT(*) FROM visits v WHERE v.voided = 0 \
                   AND v.latest_record_id = (SELECT x.id FROM records x \
                   WHERE (x.id = v.visit_id OR x.target_id = v.visit_id) AND x.review_note IS NOT NULL \
                   ORDER BY x.created_at DESC, x.seq DESC LIMIT 1) \
                   GROUP BY v.household_id";
        let mut out = HashMap::new();
        for r in self.db.query_all_raw(stmt(sql, [])).await? {
            let count: i64 = r.try_get_by_index(1)?;
            out.insert(
                r.try_get_by_index(0)?,
                usize::try_from(count).map_err(corrupt)?,
            );
        }
        Ok(out)
    }

    /// The visit (not voided, other than `except`) that first carried photo `sha256`, in
    /// any of its versions, with its time: the server counts a photo for one visit only,
    /// so the helper is warned before reusing it. See [`Self::image_visit`].
    pub async fn photo_visit(
        &self,
        sha256: &str,
        except: Option<Uuid>,
    ) -> Result<Option<(Uuid, DateTime<Utc>)>> {
        self.image_visit(sha256, Some("photo"), except).await
    }

    /// The visit (not voided, other than `except`) that first carried image `sha256` in
    /// `role` (`photo`, `household_signature`; `None`: any role), with its time; `None`
    /// when no visit would make the server flag this use. A signature is made at each
    /// visit: the same image on two visits is a copy, whether it was a signature or a
    /// photo there.
    ///
    /// As the server judges it (`photo_reused`): the owner of an image is the standing
    /// visit that used it first, in any version, a superseded one included (an
    /// amendment that swapped a photo away does not free it). The order of use is the
    /// signing time of the first record carrying it (the device's approximation of
    /// the server's arrival order). When amending `except`, a visit that took the image
    /// only after `except` first carried it is the reuser, not the owner: no warning.
    pub async fn image_visit(
        &self,
        sha256: &str,
        role: Option<&str>,
        except: Option<Uuid>,
    ) -> Result<Option<(Uuid, DateTime<Utc>)>> {
        let sql = "SELECT v.visit_id, v.at, MIN(r.created_at) AS first_use FROM record_files f \
                   JOIN records r ON r.id = f.record_id \
                   JOIN visits v ON v.visit_id = COALESCE(r.target_id, r.id) \
                   WHERE f.sha256 = ? AND (? = '' OR f.role = ?) AND v.voided = 0 \
                   AND v.visit_id <> ? \
                   GROUP BY v.visit_id, v.at \
                   HAVING first_use < COALESCE((SELECT MIN(s.created_at) FROM record_files g \
                       JOIN records s ON s.id = g.record_id \
                       WHERE g.sha256 = ? AND COALESCE(s.target_id, s.id) = ?), '9999') \
                   ORDER BY first_use, v.at LIMIT 1";
        let except = except.map(|u| u.to_string()).unwrap_or_default();
        let role = role.unwrap_or_default().to_string();
        let values = [
            sha256.into(),
            role.clone().into(),
            role.into(),
            except.clone().into(),
            sha256.into(),
            except.into(),
        ];
        let row = self.db.query_one_raw(stmt(sql, values)).await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let id: String = r.try_get_by_index(0)?;
        let id = Uuid::parse_str(&id).map_err(corrupt)?;
        let at = parse_time(&r.try_get_by_index::<String>(1)?)?;
        Ok(Some((id, at)))
    }

    /// Registers a stored image (idempotent).
    pub async fn register_file(&self, img: &StoredImage) -> Result<()> {
        let sql = "INSERT OR IGNORE INTO files (sha256, media_type, bytes, width, height, added_at) VALUES (?, ?, ?, ?, ?, ?)";
        let values = [
            img.sha256.clone().into(),
            img.media_type.mime().into(),
            (img.bytes as i64).into(),
            i64::from(img.width).into(),
            i64::from(img.height).into(),
            utc_seconds::format(&Utc::now()).into(),
        ];
        self.db.execute_raw(stmt(sql, values)).await?;
        Ok(())
    }

    /// Whether any record, draft, pulled record waiting in the inbox or upload names
    /// the image `sha256`.
    pub async fn image_in_use(&self, sha256: &str) -> Result<bool> {
        let sql = "SELECT 1 WHERE EXISTS (SELECT 1 FROM record_files WHERE sha256 = ?) \
                   OR EXISTS (SELECT 1 FROM uploads WHERE sha256 = ?) \
                   OR EXISTS (SELECT 1 FROM drafts WHERE instr(form_json, ?) > 0) \
                   OR EXISTS (SELECT 1 FROM pull_inbox WHERE instr(server_json, ?) > 0)";
        let row = self
            .db
            .query_one_raw(stmt(sql, [0, 1, 2, 3].map(|_| sha256.into())))
            .await?;
        Ok(row.is_some())
    }

    /// Forgets the registration of an image no longer on the device.
    pub async fn forget_file(&self, sha256: &str) -> Result<()> {
        self.db
            .execute_raw(stmt("DELETE FROM files WHERE sha256 = ?", [sha256.into()]))
            .await?;
        Ok(())
    }

    /// Whether an image is registered.
    pub async fn has_file(&self, sha256: &str) -> Result<bool> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT 1 FROM files WHERE sha256 = ?",
                [sha256.into()],
            ))
            .await?;
        Ok(row.is_some())
    }

    /// The last record of a device's chain: its sequence number and hash.
    pub(crate) async fn chain_head(
        db: &impl ConnectionTrait,
        device_id: i64,
    ) -> Result<Option<(i64, String)>> {
        let sql = "SELECT seq, sha256 FROM records WHERE device_id = ? ORDER BY seq DESC LIMIT 1";
        match db.query_one_raw(stmt(sql, [device_id.into()])).await? {
            Some(r) => Ok(Some((r.try_get_by_index(0)?, r.try_get_by_index(1)?))),
            None => Ok(None),
        }
    }

    /// Appends a signed record and updates the visit projection, on `db` (the caller's
    /// transaction).
    pub(crate) async fn append(db: &impl ConnectionTrait, signed: &SignedRecord) -> Result<String> {
        Self::append_under(db, signed, signed.record.device_id).await
    }

    /// [`Store::append`] with `device_column` in the row's `device_id` (the signed
    /// envelope keeps the real one): a record a copy of this data directory signed under
    /// a number this store already holds is kept under the negated device id (see the
    /// pull's import in the outbox).
    pub(crate) async fn append_under(
        db: &impl ConnectionTrait,
        signed: &SignedRecord,
        device_column: i64,
    ) -> Result<String> {
        let r = &signed.record;
        let canonical = canonical_json(&serde_json::to_value(r).map_err(corrupt)?)?;
        let sha256 = r.record_sha256()?;
        let sql = "INSERT INTO records (id, device_id, seq, record_type, household_id, target_id, sha256, prev_sha256, envelope_json, signature, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        let values = [
            r.id.to_string().into(),
            device_column.into(),
            r.seq.into(),
            r.record_type.code().into(),
            r.household_id.into(),
            r.target_id.map(|t| t.to_string()).into(),
            sha256.clone().into(),
            r.prev_sha256.clone().into(),
            canonical.into(),
            signed.signature.clone().into(),
            utc_seconds::format(&r.created_at).into(),
        ];
        db.execute_raw(stmt(sql, values)).await?;

        if let Some(visit) = &r.visit {
            for p in &visit.photos {
                let sql = "INSERT OR IGNORE INTO record_files (record_id, sha256, role) VALUES (?, ?, 'photo')";
                db.execute_raw(stmt(
                    sql,
                    [r.id.to_string().into(), p.sha256.clone().into()],
                ))
                .await?;
            }
            if let Some(h) = visit
                .household_signature
                .as_ref()
                .and_then(|s| s.image_sha256())
            {
                let sql = "INSERT OR IGNORE INTO record_files (record_id, sha256, role) VALUES (?, ?, 'household_signature')";
                db.execute_raw(stmt(sql, [r.id.to_string().into(), h.into()]))
                    .await?;
            }
        }

        let at = r.visit.as_ref().map(|v| utc_seconds::format(&v.at));
        let kind = r.visit.as_ref().map(|v| v.kind.code());
        match (r.record_type, r.target_id) {
            (RecordType::Visit, _) => {
                let sql = "INSERT INTO visits (visit_id, household_id, kind, at, latest_record_id) VALUES (?, ?, ?, ?, ?)";
                let values = [
                    r.id.to_string().into(),
                    r.household_id.into(),
                    kind.into(),
                    at.into(),
                    r.id.to_string().into(),
                ];
                db.execute_raw(stmt(sql, values)).await?;
            }
            (RecordType::Amendment, Some(target)) => {
                // An amendment always supersedes the original. Among amendments, one
                // device's are ordered by its sequence numbers (its clock may have gone
                // back between them); different devices' by their `created_at`. Records
                // recovered by sync may arrive in any order.
                let sql = "UPDATE visits SET kind = ?, at = ?, latest_record_id = ? WHERE visit_id = ? \
                           AND EXISTS (SELECT 1 FROM records l WHERE l.id = visits.latest_record_id AND ( \
                               l.record_type = 'visit' \
                               OR (l.device_id = ? AND l.seq < ?) \
                               OR (l.device_id <> ? AND l.created_at <= ?)))";
                let values = [
                    kind.into(),
                    at.into(),
                    r.id.to_string().into(),
                    target.to_string().into(),
                    r.device_id.into(),
                    r.seq.into(),
                    r.device_id.into(),
                    utc_seconds::format(&r.created_at).into(),
                ];
                db.execute_raw(stmt(sql, values)).await?;
                let sql = "UPDATE visits SET amendments = amendments + 1 WHERE visit_id = ?";
                db.execute_raw(stmt(sql, [target.to_string().into()]))
                    .await?;
            }
            (RecordType::Void, Some(target)) => {
                let sql = "UPDATE visits SET voided = 1, void_reason = ? WHERE visit_id = ?";
                db.execute_raw(stmt(
                    sql,
                    [r.reason.clone().into(), target.to_string().into()],
                ))
                .await?;
            }
            _ => {
                return Err(ClientError::Refused(
                    "an amendment or void needs a target".into(),
                ));
            }
        }
        Ok(sha256)
    }

    /// A record by id.
    pub async fn record(&self, id: Uuid) -> Result<Option<StoredRecord>> {
        let sql = format!("SELECT {RECORD_COLS} FROM records r WHERE r.id = ?");
        let row = self
            .db
            .query_one_raw(stmt(&sql, [id.to_string().into()]))
            .await?;
        row.map(|r| record_from_row(&r, 0)).transpose()
    }

    /// Every record of a device in chain order (for verification and sync).
    pub async fn device_records(&self, device_id: i64) -> Result<Vec<StoredRecord>> {
        let sql =
            format!("SELECT {RECORD_COLS} FROM records r WHERE r.device_id = ? ORDER BY r.seq");
        let rows = self
            .db
            .query_all_raw(stmt(&sql, [device_id.into()]))
            .await?;
        rows.iter().map(|r| record_from_row(r, 0)).collect()
    }

    /// How many records here were made by devices other than `device_id`.
    pub async fn count_other_devices(&self, device_id: i64) -> Result<usize> {
        let sql = "SELECT COUNT(*) FROM records WHERE device_id <> ?";
        let row = self.db.query_one_raw(stmt(sql, [device_id.into()])).await?;
        let n = row.map(|r| r.try_get_by_index::<i64>(0)).transpose()?;
        Ok(n.unwrap_or(0).max(0) as usize)
    }

    /// The records that refer to a visit (amendments, voids), oldest first.
    pub async fn records_targeting(&self, visit_id: Uuid) -> Result<Vec<StoredRecord>> {
        let sql = format!(
            "SELECT {RECORD_COLS} FROM records r WHERE r.target_id = ? ORDER BY r.created_at, r.seq"
        );
        let rows = self
            .db
            .query_all_raw(stmt(&sql, [visit_id.to_string().into()]))
            .await?;
        rows.iter().map(|r| record_from_row(r, 0)).collect()
    }

    /// Number of signed records on the device.
    pub async fn record_count(&self) -> Result<i64> {
        let row = self
            .db
            .query_one_raw(stmt("SELECT COUNT(*) FROM records", []))
            .await?;
        Ok(row
            .map(|r| r.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0))
    }

    /// Visits as they stand now, newest first; one household's or all, at most `limit`.
    pub async fn visits(&self, household_id: Option<i64>, limit: u64) -> Result<Vec<VisitRow>> {
        let sql = format!(
            "SELECT {}, {RECORD_COLS}, {VISIT_FLAG_COLS} \
             FROM visits v JOIN records r ON r.id = v.latest_record_id \
             WHERE (? IS NULL OR v.household_id = ?) ORDER BY v.at DESC, v.visit_id DESC LIMIT ?",
            visit_cols()
        );
        let values = [
            household_id.into(),
            household_id.into(),
            (limit.min(i64::MAX as u64) as i64).into(),
        ];
        let rows = self.db.query_all_raw(stmt(&sql, values)).await?;
        let mut visits: Vec<VisitRow> = rows.iter().map(visit_from_row).collect::<Result<_>>()?;
        let history = self.evidence_history().await?;
        let households = self.households_by_id().await?;
        for v in &mut visits {
            v.flag_short_evidence(&history);
            v.flag_outside_pairing(&households);
        }
        Ok(visits)
    }

    /// One visit as it stands now.
    pub async fn visit(&self, visit_id: Uuid) -> Result<Option<VisitRow>> {
        let sql = format!(
            "SELECT {}, {RECORD_COLS}, {VISIT_FLAG_COLS} FROM visits v JOIN records r ON r.id = v.latest_record_id WHERE v.visit_id = ?",
            visit_cols()
        );
        let row = self
            .db
            .query_one_raw(stmt(&sql, [visit_id.to_string().into()]))
            .await?;
        let Some(mut visit) = row.map(|r| visit_from_row(&r)).transpose()? else {
            return Ok(None);
        };
        visit.flag_short_evidence(&self.evidence_history().await?);
        let household = self.local_household(visit.household_id).await?;
        visit.flag_outside_pairing(
            &household
                .into_iter()
                .map(|h| (h.detail.summary.id, h))
                .collect(),
        );
        Ok(Some(visit))
    }

    /// Saves (or replaces) a draft.
    pub async fn save_draft(&self, draft: &VisitDraft) -> Result<()> {
        let sql = "INSERT INTO drafts (id, household_id, form_json, updated_at) VALUES (?, ?, ?, ?) \
                   ON CONFLICT (id) DO UPDATE SET household_id = excluded.household_id, form_json = excluded.form_json, updated_at = excluded.updated_at";
        let values = [
            draft.id.to_string().into(),
            draft.household_id.into(),
            to_json(draft)?.into(),
            utc_seconds::format(&Utc::now()).into(),
        ];
        self.db.execute_raw(stmt(sql, values)).await?;
        Ok(())
    }

    /// Every draft, most recently edited first.
    pub async fn drafts(&self) -> Result<Vec<VisitDraft>> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT form_json FROM drafts ORDER BY updated_at DESC, id DESC",
                [],
            ))
            .await?;
        rows.iter()
            .map(|r| parse_json(&r.try_get_by_index::<String>(0)?))
            .collect()
    }

    /// One draft.
    pub async fn draft(&self, id: Uuid) -> Result<Option<VisitDraft>> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT form_json FROM drafts WHERE id = ?",
                [id.to_string().into()],
            ))
            .await?;
        row.map(|r| parse_json(&r.try_get_by_index::<String>(0)?))
            .transpose()
    }

    /// Discards a draft (drafts are not records: the helper may throw one away).
    pub async fn discard_draft(&self, id: Uuid) -> Result<()> {
        Self::delete_draft(&self.db, id).await
    }

    pub(crate) async fn delete_draft(db: &impl ConnectionTrait, id: Uuid) -> Result<()> {
        db.execute_raw(stmt(
            "DELETE FROM drafts WHERE id = ?",
            [id.to_string().into()],
        ))
        .await?;
        Ok(())
    }

    /// Inserts already-signed records in one transaction, chain order (records received
    /// by sync, or a benchmark's fixture). Each is checked against the chain head.
    pub async fn import_records(&self, records: &[SignedRecord]) -> Result<()> {
        let txn = self.begin_write().await?;
        for signed in records {
            let head = Self::chain_head(&txn, signed.record.device_id).await?;
            let (seq, prev) = head.unwrap_or((0, bangfu_shared::visit::ZERO_HASH.to_string()));
            if signed.record.seq != seq + 1 || signed.record.prev_sha256 != prev {
                return Err(ClientError::Refused(format!(
                    "record {} does not continue its device's chain",
                    signed.record.id
                )));
            }
            Self::append(&txn, signed).await?;
        }
        txn.commit().await?;
        Ok(())
    }
}
