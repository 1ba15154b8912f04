//! Visit facts: one row per visit or amendment record with what attendance needs to
//! judge it, kept current inside the same transactions that store records, so reports
//! aggregate facts in SQL instead of re-reading signed records.
//!
//! Cross-record rules live here: a void record voids the visit it targets (whichever
//! arrives first); the newest amendment of a visit supersedes the original and older
//! amendments; a photo or signature image already used by another visit is flagged on
//! the later one.

use bangfu_shared::VisitKind;
use bangfu_shared::visit::{HouseholdSignature, RecordEnvelope, RecordType};
use chrono::{DateTime, Datelike, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryResult, QuerySelect, QueryTrait, Set, Statement,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::entities::{record, record_blob, record_review, visit_fact};
use crate::error::ApiResult;

/// The visit's calendar day in China (UTC+8), the day the rules count.
pub fn local_date(at: DateTime<Utc>) -> chrono::NaiveDate {
    (at + chrono::Duration::hours(8)).date_naive()
}

use crate::db::IN_CHUNK;

/// The writes that add the facts of records about to be stored and apply their effects
/// on stored ones, planned from what is stored before them (and the batch itself), so
/// they can run with the records' own inserts; then [`FactsPlan::settle`].
pub struct FactsPlan {
    /// Void updates and fact inserts, to run in order once the records are inserted.
    pub statements: Vec<Statement>,
    /// Visits with an amendment stored or in the batch: the newest version is settled.
    amended: BTreeSet<String>,
    /// Visits an amendment of the batch answers (a "has issues" note goes back to review).
    answered: Vec<String>,
    /// Visits the batch's voids withdraw: the visits sharing their photos are judged again.
    withdrawn: Vec<String>,
    /// Records of the batch whose visit uses a photo another visit used first: they do
    /// not count, and their acknowledgement says so (flag `photo_reused`).
    pub reused: BTreeSet<String>,
}

/// What planning a batch's facts needs from what is stored: which of its visits stored
/// records void or amend, and which visits already use its photos. Read with the rest of
/// a push ([`FactsReads::queries`], then [`FactsReads::absorb`] on each row).
#[derive(Debug, Default)]
pub struct FactsReads {
    /// Visits voided by a stored void, as (visit, the void's author, its household):
    /// a void acts only on its own author's visit of that household.
    voided: HashSet<Whose>,
    amended: BTreeSet<String>,
    /// Photo hash → the standing visit that used it first: (arrival, record id, original).
    photo_owners: HashMap<String, Use>,
}

/// One standing use of a file, ordered by arrival then record id: (arrival, record id,
/// the visit's original id). The earliest use owns the file.
type Use = (DateTime<Utc>, String, String);

/// A visit (by original id) and whose it is: (visit, author helper, household).
type Whose = (String, i64, i64);

const TARGETED: &str = "targeted";
const PHOTO_USER: &str = "photo_user";

impl FactsReads {
    /// The queries for the visits among `envs` (tagged, for `db::query_batch`).
    pub fn queries(backend: DbBackend, envs: &[&RecordEnvelope]) -> Vec<Statement> {
        let visits: Vec<&RecordEnvelope> = envs.iter().copied().filter(|e| is_visit(e)).collect();
        let originals: Vec<String> = visits.iter().map(|e| original_of(e)).collect();
        let photos: Vec<String> = visits
            .iter()
            .filter_map(|e| e.visit.as_ref())
            .flat_map(|v| v.referenced_hashes())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let targeted = originals.chunks(IN_CHUNK).map(|chunk| {
            record::Entity::find()
                .select_only()
                .expr_as(crate::db::tag(TARGETED), crate::db::TAG)
                .column(record::Column::TargetId)
                .column(record::Column::RecordType)
                .column(record::Column::AuthorHelperId)
                .column(record::Column::HouseholdId)
                .filter(record::Column::TargetId.is_in(chunk.to_vec()))
                .build(backend)
        });
        let users = photos.chunks(IN_CHUNK).map(|chunk| {
            record_blob::Entity::find()
                .select_only()
                .expr_as(crate::db::tag(PHOTO_USER), crate::db::TAG)
                .column(record_blob::Column::Sha256)
                .column_as(
                    Expr::col((visit_fact::Entity, visit_fact::Column::OriginalId)),
                    "original_id",
                )
                .column_as(
                    Expr::col((visit_fact::Entity, visit_fact::Column::RecordId)),
                    "record_id",
                )
                .column_as(
                    Expr::col((visit_fact::Entity, visit_fact::Column::ReceivedAt)),
                    "received_at",
                )
                .join(sea_orm::JoinType::InnerJoin, blob_fact())
                .filter(record_blob::Column::Sha256.is_in(chunk.to_vec()))
                .filter(visit_fact::Column::Voided.eq(false))
                .build(backend)
        });
        targeted.chain(users).collect()
    }

    /// Takes a row of one of [`FactsReads::queries`]; `false` if the row is another's.
    pub fn absorb(&mut self, tag: &str, row: &QueryResult) -> Result<bool, DbErr> {
        match tag {
            TARGETED => {
                let target: Option<String> = row.try_get("", "target_id")?;
                let kind: String = row.try_get("", "record_type")?;
                let author: i64 = row.try_get("", "author_helper_id")?;
                let household: i64 = row.try_get("", "household_id")?;
                if let Some(target) = target {
                    if kind == RecordType::Void.code() {
                        self.voided.insert((target, author, household));
                    } else if kind == RecordType::Amendment.code() {
                        self.amended.insert(target);
                    }
                }
            }
            PHOTO_USER => {
                let sha: String = row.try_get("", "sha256")?;
                let original: String = row.try_get("", "original_id")?;
                let record_id: String = row.try_get("", "record_id")?;
                let at: DateTime<Utc> = row.try_get("", "received_at")?;
                own_first(&mut self.photo_owners, sha, (at, record_id, original));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Records `usage` of `sha` if it is earlier than the owner known so far.
fn own_first(owners: &mut HashMap<String, Use>, sha: String, usage: Use) {
    match owners.entry(sha) {
        std::collections::hash_map::Entry::Occupied(mut o) => {
            if usage < *o.get() {
                o.insert(usage);
            }
        }
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(usage);
        }
    }
}

/// A record that has a visit fact: a visit or an amendment (a void only marks one).
fn is_visit(e: &RecordEnvelope) -> bool {
    e.record_type != RecordType::Void && e.visit.is_some()
}

/// Plans the facts of `stored` (envelope, photos complete, clock flagged), records not
/// yet inserted, from `reads` (made before them) and the batch itself.
pub fn plan(
    backend: DbBackend,
    stored: &[(&RecordEnvelope, bool, bool)],
    received_at: DateTime<Utc>,
    reads: FactsReads,
) -> FactsPlan {
    // A void acts only on its author's facts of its household (see `sync`'s check).
    let mut voids: BTreeMap<(i64, i64), Vec<String>> = BTreeMap::new();
    for (e, _, _) in stored
        .iter()
        .filter(|(e, _, _)| e.record_type == RecordType::Void)
    {
        if let Some(target) = e.target_id {
            voids
                .entry((e.author_helper_id, e.household_id))
                .or_default()
                .push(target.to_string());
        }
    }
    let mut statements: Vec<Statement> = voids
        .iter()
        .flat_map(|((author, household), targets)| {
            targets.chunks(IN_CHUNK).map(move |chunk| {
                visit_fact::Entity::update_many()
                    .col_expr(visit_fact::Column::Voided, Expr::value(true))
                    .filter(visit_fact::Column::OriginalId.is_in(chunk.to_vec()))
                    .filter(visit_fact::Column::HelperId.eq(*author))
                    .filter(visit_fact::Column::HouseholdId.eq(*household))
                    .build(backend)
            })
        })
        .collect();
    let visits: Vec<(&RecordEnvelope, bool, bool)> = stored
        .iter()
        .filter(|(e, _, _)| is_visit(e))
        .copied()
        .collect();
    let originals: Vec<String> = visits.iter().map(|(e, _, _)| original_of(e)).collect();
    let FactsReads {
        mut voided,
        mut amended,
        mut photo_owners,
    } = reads;
    for (e, _, _) in stored {
        let Some(target) = e.target_id.map(|t| t.to_string()) else {
            continue;
        };
        if e.record_type == RecordType::Void {
            voided.insert((target, e.author_helper_id, e.household_id));
        } else if e.record_type == RecordType::Amendment {
            amended.insert(target);
        }
    }
    // The batch's uses arrive together: ordered among themselves by record id. Like
    // the stored links read before, every file a visit links counts (its signature
    // images too); a visit voided already (its void came first) owns nothing.
    for ((env, _, _), original) in visits.iter().zip(&originals) {
        if voided.contains(&(original.clone(), env.author_helper_id, env.household_id)) {
            continue;
        }
        for sha in env.visit.iter().flat_map(|v| v.referenced_hashes()) {
            let usage = (received_at, env.id.to_string(), original.clone());
            own_first(&mut photo_owners, sha, usage);
        }
    }
    let mut rows = Vec::with_capacity(visits.len());
    let mut reused_ids = BTreeSet::new();
    for ((env, complete, clock_flag), original) in visits.iter().zip(&originals) {
        let Some(visit) = &env.visit else { continue };
        // The visit that used a photo first owns it; an amendment of that visit keeps it.
        // A visit voided already does not count anyway: that is what its device hears.
        let is_voided =
            voided.contains(&(original.clone(), env.author_helper_id, env.household_id));
        let reused = !is_voided
            && visit.referenced_hashes().iter().any(|sha| {
                photo_owners
                    .get(sha)
                    .is_some_and(|(_, _, owner)| owner != original)
            });
        if reused {
            reused_ids.insert(env.id.to_string());
        }
        rows.push(fact_of(
            env,
            visit,
            original,
            *complete,
            *clock_flag,
            reused,
            is_voided,
            received_at,
        ));
    }
    statements.extend(crate::db::insert_statements(backend, rows, 500));
    let answered = visits
        .iter()
        .map(|v| v.0)
        .zip(&originals)
        .filter(|(env, _)| env.record_type == RecordType::Amendment)
        .map(|(_, original)| original.clone())
        .collect();
    let withdrawn = voids.into_values().flatten().collect();
    FactsPlan {
        statements,
        amended,
        answered,
        withdrawn,
        reused: reused_ids,
    }
}

impl FactsPlan {
    /// After the records and the plan's statements are in: keeps only the newest version
    /// of each amended visit, and returns visits an amendment answers to review.
    /// Returns the stored records that no longer re-use a photo (the visit that used it
    /// first was voided): their devices must hear of it on their next pull.
    pub async fn settle(&self, db: &impl ConnectionTrait) -> ApiResult<Vec<String>> {
        for original in &self.amended {
            supersede(db, original).await?;
        }
        for original in &self.answered {
            resubmit(db, original).await?;
        }
        let mut cleared = Vec::new();
        for original in &self.withdrawn {
            cleared.extend(rejudge_photos(db, original).await?);
        }
        Ok(cleared)
    }
}

/// A record's file links joined to its visit fact.
fn blob_fact() -> sea_orm::RelationDef {
    record_blob::Entity::belongs_to(visit_fact::Entity)
        .from(record_blob::Column::RecordId)
        .to(visit_fact::Column::RecordId)
        .into()
}

/// One use of a photo by a visit fact.
#[derive(Debug, sea_orm::FromQueryResult)]
struct PhotoUse {
    sha256: String,
    record_id: String,
    original_id: String,
    voided: bool,
    photo_reused: bool,
    received_at: DateTime<Utc>,
}

/// The uses of the photos `shas` by visit facts.
async fn photo_uses(db: &impl ConnectionTrait, shas: &[String]) -> ApiResult<Vec<PhotoUse>> {
    let mut out = Vec::new();
    for chunk in shas.chunks(IN_CHUNK) {
        let rows = record_blob::Entity::find()
            .select_only()
            .column(record_blob::Column::Sha256)
            .column_as(
                Expr::col((visit_fact::Entity, visit_fact::Column::RecordId)),
                "record_id",
            )
            .column_as(
                Expr::col((visit_fact::Entity, visit_fact::Column::OriginalId)),
                "original_id",
            )
            .column_as(
                Expr::col((visit_fact::Entity, visit_fact::Column::Voided)),
                "voided",
            )
            .column_as(
                Expr::col((visit_fact::Entity, visit_fact::Column::PhotoReused)),
                "photo_reused",
            )
            .column_as(
                Expr::col((visit_fact::Entity, visit_fact::Column::ReceivedAt)),
                "received_at",
            )
            .join(sea_orm::JoinType::InnerJoin, blob_fact())
            .filter(record_blob::Column::Sha256.is_in(chunk.to_vec()))
            .into_model::<PhotoUse>()
            .all(db)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

/// After `original` was voided: a visit flagged for re-using one of its photos is judged
/// again, against the visits that still stand, so a visit recorded again (after the
/// first was withdrawn as entered on the wrong household, say) with the same photo
/// counts. The rule is the one applied as facts arrive ([`plan`]): a file belongs to the
/// standing visit whose record linked it first (as a photo or a signature image; by
/// arrival, then record id), and a fact is flagged when one of its files (a photo or
/// its household or witness signature image: a mark drawn on the pad is never the same
/// twice, so the same bytes again are a copy) belongs to another visit.
/// Returns the records cleared.
async fn rejudge_photos(db: &impl ConnectionTrait, original: &str) -> ApiResult<Vec<String>> {
    let shas: Vec<String> = record_blob::Entity::find()
        .select_only()
        .column(record_blob::Column::Sha256)
        .join(sea_orm::JoinType::InnerJoin, blob_fact())
        .filter(visit_fact::Column::OriginalId.eq(original))
        .into_tuple()
        .all(db)
        .await?;
    let flagged: BTreeMap<String, String> = photo_uses(db, &shas)
        .await?
        .into_iter()
        .filter(|u| u.photo_reused && !u.voided)
        .map(|u| (u.record_id, u.original_id))
        .collect();
    let mut cleared = Vec::new();
    for (record_id, visit) in flagged {
        let Some(photos) = photos_of(db, &record_id).await? else {
            // Unreadable, it cannot be judged again: the flag stays.
            tracing::warn!(record = %record_id, "a stored record's body does not parse");
            continue;
        };
        let mut owners = HashMap::new();
        for u in photo_uses(db, &photos)
            .await?
            .into_iter()
            .filter(|u| !u.voided)
        {
            own_first(
                &mut owners,
                u.sha256,
                (u.received_at, u.record_id, u.original_id),
            );
        }
        let still = owners.values().any(|(_, _, owner)| *owner != visit);
        if !still {
            visit_fact::Entity::update_many()
                .col_expr(visit_fact::Column::PhotoReused, Expr::value(false))
                .filter(visit_fact::Column::RecordId.eq(record_id.as_str()))
                .exec(db)
                .await?;
            cleared.push(record_id);
        }
    }
    Ok(cleared)
}

/// The files (by hash: photos and signature image) of the stored visit record
/// `record_id`, read from its body; `None` when the body does not parse.
async fn photos_of(db: &impl ConnectionTrait, record_id: &str) -> ApiResult<Option<Vec<String>>> {
    let body: Option<String> = record::Entity::find()
        .select_only()
        .column(record::Column::Body)
        .filter(record::Column::Id.eq(record_id))
        .into_tuple()
        .one(db)
        .await?;
    let signed: Option<bangfu_shared::visit::SignedRecord> =
        body.and_then(|b| serde_json::from_str(&b).ok());
    Ok(signed.map(|s| {
        s.record
            .visit
            .map(|v| v.referenced_hashes())
            .unwrap_or_default()
    }))
}

/// Of the records `ids`, those whose visit currently re-uses a photo another visit used
/// first (read at answer time, so a flag cleared by a later void is not repeated).
pub async fn photo_reused(db: &impl ConnectionTrait, ids: &[String]) -> ApiResult<HashSet<String>> {
    let mut out = HashSet::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let rows: Vec<String> = visit_fact::Entity::find()
            .select_only()
            .column(visit_fact::Column::RecordId)
            .filter(visit_fact::Column::RecordId.is_in(chunk.to_vec()))
            .filter(visit_fact::Column::PhotoReused.eq(true))
            .into_tuple()
            .all(db)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

/// The visit a record belongs to: itself, or the original an amendment corrects.
fn original_of(env: &RecordEnvelope) -> String {
    env.target_id.unwrap_or(env.id).to_string()
}

#[allow(
    clippy::too_many_arguments,
    reason = "one row's worth of already computed facts"
)]
fn fact_of(
    env: &RecordEnvelope,
    visit: &bangfu_shared::visit::VisitBody,
    original: &str,
    complete: bool,
    clock_flag: bool,
    photo_reused: bool,
    voided: bool,
    received_at: DateTime<Utc>,
) -> visit_fact::ActiveModel {
    let date = local_date(visit.at);
    let witness_ok = match &visit.household_signature {
        Some(HouseholdSignature::Witness {
            name, role, reason, ..
        }) => !name.trim().is_empty() && !role.trim().is_empty() && !reason.trim().is_empty(),
        _ => true,
    };
    visit_fact::ActiveModel {
        record_id: Set(env.id.to_string()),
        original_id: Set(original.to_string()),
        household_id: Set(env.household_id),
        helper_id: Set(env.author_helper_id),
        kind: Set(visit.kind.code().to_string()),
        visit_date: Set(date),
        year: Set(i64::from(date.year())),
        month: Set(i64::from(date.month())),
        // Distinct pictures: one listed twice (signed before clients refused it) is one.
        photo_count: Set(visit
            .photos
            .iter()
            .map(|p| p.sha256.as_str())
            .collect::<HashSet<_>>()
            .len() as i64),
        photos_complete: Set(complete),
        household_signed: Set(visit.kind == VisitKind::Phone || visit.household_signed()),
        witness_ok: Set(witness_ok),
        clock_flag: Set(clock_flag),
        photo_reused: Set(photo_reused),
        voided: Set(voided),
        superseded: Set(false),
        received_at: Set(received_at),
    }
}

/// Keeps only the newest version (original or amendment, by device time then sequence) of a visit.
async fn supersede(db: &impl ConnectionTrait, original: &str) -> ApiResult<()> {
    let ids: Vec<String> = visit_fact::Entity::find()
        .select_only()
        .column(visit_fact::Column::RecordId)
        .filter(visit_fact::Column::OriginalId.eq(original))
        .into_tuple()
        .all(db)
        .await?;
    let versions = record::Entity::find()
        .filter(record::Column::Id.is_in(ids.clone()))
        .all(db)
        .await?;
    // Once the original is stored, only its author's amendments of its household are
    // versions of it; any other (refused at push when the original came first) never counts.
    let original_row = versions
        .iter()
        .find(|r| r.id == original && r.record_type == RecordType::Visit.code());
    let newest = newest_version(versions.iter().filter(|r| {
        original_row.is_none_or(|o| {
            r.author_helper_id == o.author_helper_id && r.household_id == o.household_id
        })
    }))
    .map(|r| r.id.clone());
    for id in ids {
        visit_fact::Entity::update_many()
            .col_expr(
                visit_fact::Column::Superseded,
                Expr::value(Some(&id) != newest.as_ref()),
            )
            .filter(visit_fact::Column::RecordId.eq(id.as_str()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// The version of a visit that stands among `versions` (its original and amendments):
/// any amendment over the original; of one device's amendments its last by sequence
/// number (its clock may have been set back between them, as the field client orders
/// them); between devices, the one whose last amendment was signed latest (device time,
/// then device id and sequence, so the choice never depends on row order).
pub(crate) fn newest_version<'a>(
    versions: impl Iterator<Item = &'a record::Model>,
) -> Option<&'a record::Model> {
    let mut original = None;
    let mut last_of_device: HashMap<i64, &record::Model> = HashMap::new();
    for r in versions {
        if r.record_type == RecordType::Visit.code() {
            original = Some(r);
            continue;
        }
        let last = last_of_device.entry(r.device_id).or_insert(r);
        if r.device_seq > last.device_seq {
            *last = r;
        }
    }
    last_of_device
        .into_values()
        .max_by_key(|r| (r.created_at_device, r.device_id, r.device_seq))
        .or(original)
}

/// An amendment answers a "has issues" note: the visit goes back to the town office.
async fn resubmit(db: &impl ConnectionTrait, original: &str) -> ApiResult<()> {
    let last = record_review::Entity::find()
        .filter(record_review::Column::RecordId.eq(original))
        .all(db)
        .await?
        .into_iter()
        .max_by_key(|r| r.id);
    if last.is_some_and(|r| r.state == "has_issues") {
        record_review::ActiveModel {
            record_id: Set(original.to_string()),
            state: Set("resubmitted".into()),
            reason: Set(None),
            account_id: Set(None),
            at: Set(super::now()),
            ..Default::default()
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

/// Records whose files have all arrived: their facts now have complete photos.
pub async fn photos_completed(
    db: &impl ConnectionTrait,
    record_ids: &HashSet<String>,
) -> ApiResult<()> {
    if record_ids.is_empty() {
        return Ok(());
    }
    visit_fact::Entity::update_many()
        .col_expr(visit_fact::Column::PhotosComplete, Expr::value(true))
        .filter(visit_fact::Column::RecordId.is_in(record_ids.iter().cloned()))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn version(id: &str, kind: RecordType, device: i64, seq: i64, hour: u32) -> record::Model {
        record::Model {
            seq_id: 0,
            id: id.into(),
            change_seq: 0,
            device_id: device,
            device_seq: seq,
            prev_sha256: String::new(),
            record_sha256: String::new(),
            author_helper_id: 1,
            account_id: 1,
            household_id: 1,
            record_type: kind.code().into(),
            target_id: None,
            visit_kind: None,
            visit_at: None,
            created_at_device: Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0).unwrap(),
            received_at: Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap(),
            status: String::new(),
            flags: String::new(),
            body: String::new(),
            review: None,
        }
    }

    /// A device's clock set back between two of its amendments, and a second device:
    /// the same version stands whatever order the rows come in.
    #[test]
    fn the_standing_version_does_not_depend_on_row_order() {
        let rows = [
            version("v", RecordType::Visit, 1, 4, 9),
            version("a", RecordType::Amendment, 1, 5, 10),
            version("b", RecordType::Amendment, 1, 6, 5),
            version("c", RecordType::Amendment, 2, 1, 7),
        ];
        let orders: [[usize; 4]; 4] = [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]];
        for order in orders {
            let newest = newest_version(order.iter().map(|&i| &rows[i]));
            // Device 1's last is b (signed at 05:00 by its clock); device 2's c at 07:00.
            assert_eq!(newest.map(|r| r.id.as_str()), Some("c"), "{order:?}");
        }
        let alone = newest_version(rows[..3].iter());
        assert_eq!(
            alone.map(|r| r.id.as_str()),
            Some("b"),
            "one device: by sequence"
        );
        let original = newest_version(rows[..1].iter());
        assert_eq!(original.map(|r| r.id.as_str()), Some("v"));
    }
}
