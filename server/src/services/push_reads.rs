//! What a push reads before it writes, as one batch (`db::query_batch`): the change
//! counter (locked), the records already stored under the push's ids, which of its files
//! the server holds, the stored records around its sequence numbers, and what its visit
//! facts depend on. On PostgreSQL each is a round trip; on SQLite the write transaction
//! runs them in place.

use bangfu_shared::visit::RecordEnvelope;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityName, EntityTrait, QueryFilter, QueryResult,
    QuerySelect, QueryTrait, Statement,
};
use std::collections::{BTreeSet, HashMap, HashSet};

use super::facts::FactsReads;
use crate::db::{IN_CHUNK, TAG, tag, tag_of};
use crate::entities::{blob, field_change, record, record_blob, sync_counter};
use crate::error::{ApiError, ApiResult};

const COUNTER: &str = "counter";
const KNOWN: &str = "known";
const PRESENT: &str = "present";
const NEIGHBOUR: &str = "neighbour";
const TARGET: &str = "target";
const TARGET_BLOB: &str = "target_blob";
const CHAIN: &str = "chain";
const PROPOSED: &str = "proposed";

/// A record stored under an id the push carries: enough to answer a resend.
#[derive(Debug, Clone)]
pub struct Known {
    pub id: String,
    pub record_sha256: String,
    pub status: String,
    pub flags: String,
}

/// A stored record that a void or amendment of the push targets: whose visit it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The stored record's type code (`visit`, `amendment`, …).
    pub record_type: String,
    pub author_helper_id: i64,
    pub household_id: i64,
    /// The visit's time, for a visit.
    pub visit_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was signed (the device's clock): for a visit, when it was first entered.
    pub signed_at: chrono::DateTime<chrono::Utc>,
    /// The device that signed it, whose registration bounds when it can have signed.
    pub device_id: i64,
    /// Its flags, comma-separated (none for a target in the same push).
    pub flags: String,
    /// The files it refers to (photos, signature images), by SHA-256: an amendment
    /// bringing others brings evidence the visit did not have.
    pub blobs: BTreeSet<String>,
}

/// Stored (device, seq) → the records holding it, for the seqs around a batch.
pub type Neighbours = HashMap<(i64, i64), Vec<Neighbour>>;

/// A record of a device's chain next to one being pushed: what the chain and clock
/// checks compare it with.
#[derive(Debug, Clone)]
pub struct Neighbour {
    pub id: String,
    pub sha: String,
    pub prev_sha: String,
    /// When it was signed, by the device's clock.
    pub signed_at: chrono::DateTime<chrono::Utc>,
}

/// Everything a push decides from; see the module documentation.
#[derive(Debug, Default)]
pub struct PushReads {
    /// The change counter's value. Its row is locked by the read (an update to the same
    /// value), so on PostgreSQL, too, no other push draws numbers until this one commits.
    pub counter: i64,
    pub known: HashMap<String, Known>,
    /// The files among those the records refer to that the server holds.
    pub present: HashSet<String>,
    pub neighbours: Neighbours,
    /// The stored records the push's voids and amendments target, by id.
    pub targets: HashMap<String, Target>,
    /// Files of targets whose row has not been read yet.
    pending_blobs: HashMap<String, BTreeSet<String>>,
    pub facts: FactsReads,
    /// The family changes already decided of each amended visit (by the id of the
    /// visit an amendment corrects: the chain's first record), as `(kind, name)`.
    pub proposed: HashMap<String, HashSet<(String, String)>>,
    /// Records amending those visits, to their visit; and the changes read, by record.
    chain: HashMap<String, String>,
    proposed_by_record: Vec<(String, String, String)>,
}

impl PushReads {
    /// Reads what the records `envs` need, inside the push's write transaction.
    pub async fn load(db: &impl ConnectionTrait, envs: &[&RecordEnvelope]) -> ApiResult<PushReads> {
        let backend = db.get_database_backend();
        let mut stmts = vec![counter_lock(backend)];
        stmts.extend(known_queries(backend, envs));
        stmts.extend(present_queries(backend, envs));
        stmts.extend(neighbour_queries(backend, envs));
        stmts.extend(target_queries(backend, envs));
        stmts.extend(target_blob_queries(backend, envs));
        stmts.extend(FactsReads::queries(backend, envs));
        stmts.extend(proposed_queries(backend, envs));
        let rows = crate::db::query_batch(db, stmts).await?;
        let mut reads = PushReads {
            counter: -1,
            ..PushReads::default()
        };
        for row in &rows {
            reads.absorb(row)?;
        }
        for (record_id, kind, name) in std::mem::take(&mut reads.proposed_by_record) {
            let visit = reads.chain.get(&record_id).cloned().unwrap_or(record_id);
            reads
                .proposed
                .entry(visit)
                .or_default()
                .insert((kind, name));
        }
        if reads.counter < 0 {
            return Err(ApiError::Internal("change counter missing".into()));
        }
        Ok(reads)
    }

    fn absorb(&mut self, row: &QueryResult) -> ApiResult<()> {
        let tag = tag_of(row)?;
        let text = |col: &str| -> Result<String, sea_orm::DbErr> { row.try_get("", col) };
        match tag.as_str() {
            COUNTER => self.counter = row.try_get("", "value")?,
            KNOWN => {
                let known = Known {
                    id: text("id")?,
                    record_sha256: text("record_sha256")?,
                    status: text("status")?,
                    flags: text("flags")?,
                };
                self.known.insert(known.id.clone(), known);
            }
            PRESENT => {
                self.present.insert(text("sha256")?);
            }
            NEIGHBOUR => {
                let key = (
                    row.try_get("", "device_id")?,
                    row.try_get("", "device_seq")?,
                );
                self.neighbours.entry(key).or_default().push(Neighbour {
                    id: text("id")?,
                    sha: text("record_sha256")?,
                    prev_sha: text("prev_sha256")?,
                    signed_at: row.try_get("", "created_at_device")?,
                });
            }
            TARGET => {
                let target = Target {
                    record_type: text("record_type")?,
                    author_helper_id: row.try_get("", "author_helper_id")?,
                    household_id: row.try_get("", "household_id")?,
                    visit_at: row.try_get("", "visit_at")?,
                    signed_at: row.try_get("", "created_at_device")?,
                    device_id: row.try_get("", "device_id")?,
                    flags: text("flags")?,
                    blobs: self.pending_blobs.remove(&text("id")?).unwrap_or_default(),
                };
                self.targets.insert(text("id")?, target);
            }
            CHAIN => {
                self.chain.insert(text("id")?, text("target_id")?);
            }
            PROPOSED => {
                self.proposed_by_record
                    .push((text("record_id")?, text("kind")?, text("name")?));
            }
            TARGET_BLOB => {
                let (id, sha) = (text("record_id")?, text("sha256")?);
                match self.targets.get_mut(&id) {
                    Some(t) => {
                        t.blobs.insert(sha);
                    }
                    None => {
                        self.pending_blobs.entry(id).or_default().insert(sha);
                    }
                }
            }
            other => {
                if !self.facts.absorb(other, row)? {
                    return Err(ApiError::Internal(format!("unexpected row tagged {other}")));
                }
            }
        }
        Ok(())
    }
}

/// Reads the change counter and locks its row: an update that keeps its value (its row
/// is tagged `counter`). Whatever runs after it in a transaction is ordered with every
/// push and upload.
pub fn counter_lock(backend: DbBackend) -> Statement {
    let table = sync_counter::Entity.table_name();
    Statement::from_string(
        backend,
        format!(
            "UPDATE {table} SET value = value WHERE name = 'change' \
             RETURNING CAST('{COUNTER}' AS TEXT) AS {TAG}, value"
        ),
    )
}

/// The update that draws `n` numbers from the counter read by [`PushReads::load`].
pub fn counter_advance(backend: DbBackend, n: i64) -> Statement {
    use sea_orm::sea_query::ExprTrait;
    sync_counter::Entity::update_many()
        .col_expr(
            sync_counter::Column::Value,
            Expr::col(sync_counter::Column::Value).add(n),
        )
        .filter(sync_counter::Column::Name.eq("change"))
        .build(backend)
}

fn known_queries(backend: DbBackend, envs: &[&RecordEnvelope]) -> Vec<Statement> {
    let ids = envs.iter().map(|e| e.id.to_string());
    records_by_id(
        backend,
        ids,
        KNOWN,
        &[
            record::Column::Id,
            record::Column::RecordSha256,
            record::Column::Status,
            record::Column::Flags,
        ],
    )
}

/// The stored records that the voids and amendments among `envs` target.
fn target_queries(backend: DbBackend, envs: &[&RecordEnvelope]) -> Vec<Statement> {
    let ids = envs
        .iter()
        .filter_map(|e| e.target_id.map(|t| t.to_string()));
    records_by_id(
        backend,
        ids,
        TARGET,
        &[
            record::Column::Id,
            record::Column::RecordType,
            record::Column::AuthorHelperId,
            record::Column::HouseholdId,
            record::Column::VisitAt,
            record::Column::CreatedAtDevice,
            record::Column::DeviceId,
            record::Column::Flags,
        ],
    )
}

/// The files of the stored records that the voids and amendments among `envs` target.
fn target_blob_queries(backend: DbBackend, envs: &[&RecordEnvelope]) -> Vec<Statement> {
    let ids: Vec<String> = envs
        .iter()
        .filter_map(|e| e.target_id.map(|t| t.to_string()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    ids.chunks(IN_CHUNK)
        .map(|chunk| {
            record_blob::Entity::find()
                .select_only()
                .expr_as(tag(TARGET_BLOB), TAG)
                .columns([record_blob::Column::RecordId, record_blob::Column::Sha256])
                .filter(record_blob::Column::RecordId.is_in(chunk.to_vec()))
                .build(backend)
        })
        .collect()
}

/// The family changes already decided of the visits the push's amendments correct,
/// and of earlier amendments of them: an amendment repeats its visit's changes, which
/// are decided once (QA s32d X3: a correction queued them again, and accepting one
/// again removed a member twice). Two queries per chunk of visits: the records of each
/// chain, and their changes. None for a push without an amendment proposing a change.
fn proposed_queries(backend: DbBackend, envs: &[&RecordEnvelope]) -> Vec<Statement> {
    use sea_orm::Condition;
    let visits: Vec<String> = envs
        .iter()
        .filter(|e| {
            e.visit
                .as_ref()
                .is_some_and(|v| !v.family_changes.is_empty())
        })
        .filter_map(|e| e.target_id.map(|t| t.to_string()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = Vec::new();
    for chunk in visits.chunks(IN_CHUNK) {
        out.push(
            record::Entity::find()
                .select_only()
                .expr_as(tag(CHAIN), TAG)
                .columns([record::Column::Id, record::Column::TargetId])
                .filter(record::Column::TargetId.is_in(chunk.to_vec()))
                .build(backend),
        );
        let chain = sea_orm::sea_query::Query::select()
            .column(record::Column::Id)
            .from(record::Entity)
            .cond_where(
                Condition::any()
                    .add(record::Column::Id.is_in(chunk.to_vec()))
                    .add(record::Column::TargetId.is_in(chunk.to_vec())),
            )
            .to_owned();
        out.push(
            field_change::Entity::find()
                .select_only()
                .expr_as(tag(PROPOSED), TAG)
                .columns([
                    field_change::Column::RecordId,
                    field_change::Column::Kind,
                    field_change::Column::Name,
                ])
                .filter(field_change::Column::RecordId.in_subquery(chain))
                // Decided ones only: a pending change of a corrected visit is withdrawn,
                // and the correction's copy takes its place in the queue.
                .filter(field_change::Column::Status.is_in(["accepted", "rejected"]))
                .build(backend),
        );
    }
    out
}

/// `columns` of the stored records among `ids`, tagged `what`, a query per chunk.
fn records_by_id(
    backend: DbBackend,
    ids: impl Iterator<Item = String>,
    what: &'static str,
    columns: &[record::Column],
) -> Vec<Statement> {
    let ids: Vec<String> = ids.collect::<BTreeSet<_>>().into_iter().collect();
    ids.chunks(IN_CHUNK)
        .map(|chunk| {
            record::Entity::find()
                .select_only()
                .expr_as(tag(what), TAG)
                .columns(columns.iter().copied())
                .filter(record::Column::Id.is_in(chunk.to_vec()))
                .build(backend)
        })
        .collect()
}

/// The files the records refer to (photos, signature images), by SHA-256.
pub fn referenced(env: &RecordEnvelope) -> Vec<String> {
    env.visit
        .as_ref()
        .map(|v| v.referenced_hashes())
        .unwrap_or_default()
}

fn present_queries(backend: DbBackend, envs: &[&RecordEnvelope]) -> Vec<Statement> {
    let shas: Vec<String> = envs
        .iter()
        .flat_map(|e| referenced(e))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    shas.chunks(IN_CHUNK)
        .map(|chunk| {
            blob::Entity::find()
                .select_only()
                .expr_as(tag(PRESENT), TAG)
                .column(blob::Column::Sha256)
                .filter(blob::Column::Sha256.is_in(chunk.to_vec()))
                .build(backend)
        })
        .collect()
}

/// For each device, its stored records from one before the batch's lowest sequence
/// number to one after its highest.
fn neighbour_queries(backend: DbBackend, envs: &[&RecordEnvelope]) -> Vec<Statement> {
    let mut ranges: HashMap<i64, (i64, i64)> = HashMap::new();
    for e in envs {
        let r = ranges.entry(e.device_id).or_insert((e.seq, e.seq));
        r.0 = r.0.min(e.seq);
        r.1 = r.1.max(e.seq);
    }
    let mut ranges: Vec<_> = ranges.into_iter().collect();
    ranges.sort_unstable();
    ranges
        .into_iter()
        .map(|(device, (lo, hi))| {
            record::Entity::find()
                .select_only()
                .expr_as(tag(NEIGHBOUR), TAG)
                .columns([
                    record::Column::Id,
                    record::Column::DeviceId,
                    record::Column::DeviceSeq,
                    record::Column::RecordSha256,
                    record::Column::PrevSha256,
                    record::Column::CreatedAtDevice,
                ])
                .filter(record::Column::DeviceId.eq(device))
                .filter(record::Column::DeviceSeq.between(lo - 1, hi + 1))
                .build(backend)
        })
        .collect()
}
