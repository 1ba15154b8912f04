//! Sync: accepting signed records exactly once, and the pull feed.
//!
//! A record is accepted only if it parses and validates, its device is registered to the
//! pushing account, the account's helper is its author, its Ed25519 signature verifies
//! over the canonical bytes, and its author has been paired with its household. It is
//! committed before the acknowledgement is sent. The same record again gets the same
//! answer; a different record under a known id is a conflict and never overwrites.
//!
//! Every stored record carries a `change_seq` drawn from one counter row that each push
//! transaction updates first: the row lock orders commits, so the pull cursor is
//! monotonic on PostgreSQL as on SQLite.

use bangfu_shared::sync::{
    Ack, AckStatus, FieldChange, MAX_PUSH_RECORDS, PullResponse, PushRequest, PushResponse,
    ServerRecord, reason_code,
};
use bangfu_shared::visit::{RecordEnvelope, RecordType, SignedRecord, VisitError};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set, Statement,
};
use std::collections::{BTreeSet, HashMap, HashSet};

use super::push_reads::{self, Known, Neighbours, PushReads, Target, referenced};
use super::signers::{DeviceKeys, Signers};
use super::{Caller, audit, households, refusals};
use crate::config::Settings;
use crate::entities::{
    blob, device, device_anomaly, field_change, helper, household, pairing, record, record_blob,
    sync_counter, visit_fact,
};
use crate::error::{ApiError, ApiResult};

const ACCEPTED: &str = "accepted";
const AWAITING: &str = "awaiting_photos";

/// Takes `n` numbers from the change counter; must be the transaction's first write.
pub async fn next_changes(db: &impl ConnectionTrait, n: i64) -> ApiResult<i64> {
    use sea_orm::sea_query::ExprTrait;
    let rows = sync_counter::Entity::update_many()
        .col_expr(
            sync_counter::Column::Value,
            Expr::col(sync_counter::Column::Value).add(n),
        )
        .filter(sync_counter::Column::Name.eq("change"))
        .exec_with_returning(db)
        .await?;
    rows.first()
        .map(|r| r.value)
        .ok_or_else(|| ApiError::Internal("change counter missing".into()))
}

/// Marks a county's ledger as changed (households, pairings or policy), for pull.
///
/// Runs inside the transaction that makes the change: the number is drawn from the
/// change counter, whose row lock (held until commit) then orders this transaction's
/// commit with every push and every other mark. Drawn in one commit and written in
/// another, a pull in between could move a device's cursor past the mark, and the
/// device would never see the change.
///
/// Draw it **last**, after every other row lock the transaction takes (a household
/// updated or locked, a county row locked by an import, the key lock a policy insert
/// takes on its county). The counter is the one lock every push takes; a transaction
/// holding it while waiting for a household or county row that an import holds, while
/// the import waits for the counter, deadlocks on PostgreSQL (SQLite's single writer
/// hides it). Drawn last it is also held briefly, so a long import never holds up pushes.
pub async fn bump_ledger(txn: &impl ConnectionTrait, county_id: i64) -> ApiResult<()> {
    use sea_orm::sea_query::OnConflict;
    let value = next_changes(txn, 1).await?;
    sync_counter::Entity::insert(sync_counter::ActiveModel {
        name: Set(format!("ledger:{county_id}")),
        value: Set(value),
    })
    .on_conflict(
        OnConflict::column(sync_counter::Column::Name)
            .update_column(sync_counter::Column::Value)
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Why a record is refused: a stable code ([`reason_code`]) and the English words.
#[derive(Debug, Clone)]
struct Refusal {
    code: &'static str,
    reason: String,
}

impl Refusal {
    fn new(code: &'static str, reason: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason: reason.into(),
        }
    }
}

fn reject(id: uuid::Uuid, refusal: Refusal) -> Ack {
    Ack {
        id,
        status: AckStatus::Rejected,
        reason: Some(refusal.reason),
        reason_code: Some(refusal.code.to_string()),
        missing_blobs: Vec::new(),
        flags: Vec::new(),
    }
}

fn flags_of(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

/// Why a record whose signature fails is refused.
const ALTERED: &str = "the signature does not match the record: it was altered after signing or signed by another key";

/// A record that does not validate. [`VisitError`]'s own text already says "invalid
/// record" where it applies; it is not said twice.
fn invalid(e: VisitError) -> Refusal {
    let reason = match e {
        VisitError::Invalid(_) | VisitError::Text(_) | VisitError::OutOfYears { .. } => {
            e.to_string()
        }
        e => format!("invalid record: {e}"),
    };
    Refusal::new(reason_code::INVALID_RECORD, reason)
}

/// What a record's signature is checked with: its canonical bytes, signature and key.
type SignedBytes = (Vec<u8>, Signature, VerifyingKey);

/// The checks before the signature's: the record validates, its device is the
/// account's, its author the account's helper, its signature 64 bytes of hex.
fn precheck(
    r: &SignedRecord,
    caller: &Caller,
    devices: &DeviceKeys,
) -> Result<SignedBytes, Refusal> {
    let env = &r.record;
    env.validate().map_err(invalid)?;
    let key = devices.get(&env.device_id).ok_or_else(|| {
        Refusal::new(
            reason_code::DEVICE_NOT_REGISTERED,
            format!("device {} is not registered to this account", env.device_id),
        )
    })?;
    if Some(env.author_helper_id) != caller.helper_id {
        return Err(Refusal::new(
            reason_code::AUTHOR_NOT_HELPER,
            "the record's author is not this account's helper",
        ));
    }
    let bytes = env.canonical_bytes().map_err(invalid)?;
    let sig: [u8; 64] = hex::decode(&r.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            Refusal::new(
                reason_code::BAD_SIGNATURE_ENCODING,
                "the signature is not 64 hex-encoded bytes",
            )
        })?;
    Ok((bytes, Signature::from_bytes(&sig), key.key))
}

/// The verdict on every record of a push, in order: the hash of its canonical bytes,
/// or why it is refused (the first failing check, in the order of the protocol).
///
/// The signatures of a push are verified together (Ed25519 batch verification, about
/// twice as fast per signature as one by one); only if the batch fails are they checked
/// one by one, to find which. Weak (small-order) keys are refused at registration, so
/// the plain equation suffices; a re-encoded signature of the same record gets the same
/// ack (records are known by the hash of their canonical bytes, not by their signature).
fn verify_all(
    records: &[SignedRecord],
    caller: &Caller,
    devices: &DeviceKeys,
    paired: &HashSet<i64>,
) -> Vec<Result<String, Refusal>> {
    let pre: Vec<Result<SignedBytes, Refusal>> = records
        .iter()
        .map(|r| precheck(r, caller, devices))
        .collect();
    let signed: Vec<&SignedBytes> = pre.iter().flatten().collect();
    let all_valid = signed.len() > 1 && {
        let messages: Vec<&[u8]> = signed.iter().map(|(b, _, _)| b.as_slice()).collect();
        let signatures: Vec<Signature> = signed.iter().map(|(_, s, _)| *s).collect();
        let keys: Vec<VerifyingKey> = signed.iter().map(|(_, _, k)| *k).collect();
        ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
    };
    records
        .iter()
        .zip(pre)
        .map(|(r, checked)| {
            let (bytes, sig, key) = checked?;
            if !all_valid {
                key.verify(&bytes, &sig)
                    .map_err(|_| Refusal::new(reason_code::SIGNATURE_MISMATCH, ALTERED))?;
            }
            let household = r.record.household_id;
            if !paired.contains(&household) {
                return Err(Refusal::new(
                    reason_code::HOUSEHOLD_NEVER_PAIRED,
                    format!("household {household} has never been paired with this helper"),
                ));
            }
            Ok(bangfu_shared::visit::sha256_hex(&bytes))
        })
        .collect()
}

/// Records per push from which the signatures are checked on a blocking thread, so an
/// HTTP worker keeps serving while a large batch is verified (a hand-off costs more
/// than checking a few signatures where they are).
const VERIFY_APART_FROM: usize = 16;

/// The push with its verdicts (see [`verify_all`]), computed off the async workers
/// when the batch is large.
async fn verified(
    req: PushRequest,
    caller: &Caller,
    devices: std::sync::Arc<DeviceKeys>,
    paired: std::sync::Arc<HashSet<i64>>,
) -> ApiResult<(PushRequest, Vec<Result<String, Refusal>>)> {
    if req.records.len() < VERIFY_APART_FROM {
        let verdicts = verify_all(&req.records, caller, &devices, &paired);
        return Ok((req, verdicts));
    }
    let caller = caller.clone();
    tokio::task::spawn_blocking(move || {
        let verdicts = verify_all(&req.records, &caller, &devices, &paired);
        (req, verdicts)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("verifying a push: {e}")))
}

/// Rewrites the reason of records refused as signed by no device of the account when
/// the device is one of the account's, revoked: a found phone is told that, not that it
/// was never registered (QA s31a S2). The code stays `device_not_registered`, as
/// documented; only a refused push pays for the lookup. Returns the revoked devices:
/// their refusals are the town office's `refused` anomalies, as those of the account's
/// live devices are, so a lost phone still sending is seen (QA s29c K13).
async fn say_revoked(
    db: &DatabaseConnection,
    account_id: i64,
    req: &PushRequest,
    verdicts: &mut [Result<String, Refusal>],
) -> ApiResult<HashSet<i64>> {
    let unknown: BTreeSet<i64> = req
        .records
        .iter()
        .zip(verdicts.iter())
        .filter(|(_, v)| matches!(v, Err(r) if r.code == reason_code::DEVICE_NOT_REGISTERED))
        .map(|(r, _)| r.record.device_id)
        .collect();
    if unknown.is_empty() {
        return Ok(HashSet::new());
    }
    let revoked: HashMap<i64, chrono::DateTime<chrono::Utc>> = device::Entity::find()
        .filter(device::Column::Id.is_in(unknown))
        .filter(device::Column::AccountId.eq(account_id))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|d| Some((d.id, d.revoked_at?)))
        .collect();
    for (r, v) in req.records.iter().zip(verdicts.iter_mut()) {
        let Err(refusal) = v else { continue };
        if let Some(at) = revoked.get(&r.record.device_id) {
            refusal.reason = format!(
                "device {} was revoked (reported lost) at {}: what it signs is refused; log \
                 in again on this phone to make a new device key",
                r.record.device_id,
                at.format("%Y-%m-%d %H:%M UTC")
            );
        }
    }
    Ok(revoked.into_keys().collect())
}

/// Accepts a batch of signed records; see the module documentation. `signers` holds
/// the device keys and paired households of recent pushes (see [`Signers`]).
pub async fn push(
    db: &DatabaseConnection,
    settings: &Settings,
    signers: &Signers,
    caller: &Caller,
    req: PushRequest,
) -> ApiResult<PushResponse> {
    let helper_id = caller
        .helper_id
        .ok_or_else(|| ApiError::Forbidden("only a helper's device pushes records".into()))?;
    let account_id = caller.account_id.ok_or(ApiError::Unauthenticated)?;
    if req.records.len() > MAX_PUSH_RECORDS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_PUSH_RECORDS} records per push, got {}",
            req.records.len()
        )));
    }
    // Hex is case-blind to the signature check but not to a strict reader: the record
    // is stored, and served by pull, with the lowercase the canonical form names.
    let mut req = req;
    for r in &mut req.records {
        r.signature.make_ascii_lowercase();
    }
    let named = |f: fn(&RecordEnvelope) -> i64| -> Vec<i64> {
        let set: BTreeSet<i64> = req.records.iter().map(|r| f(&r.record)).collect();
        set.into_iter().collect()
    };
    let devices = signers
        .device_keys(db, account_id, &named(|e| e.device_id))
        .await?;
    let paired = signers
        .paired(db, helper_id, &named(|e| e.household_id))
        .await?;
    let (req, mut verdicts) = verified(req, caller, devices.clone(), paired).await?;
    let revoked = say_revoked(db, account_id, &req, &mut verdicts).await?;
    let own = (&*devices, &revoked);
    match push_once(db, settings, caller, &req, &verdicts, own).await {
        Err(ApiError::Database(e)) if is_unique_violation(&e) => {
            push_once(db, settings, caller, &req, &verdicts, own).await
        }
        other => other,
    }
}

/// A push body as read record by record: the records that parse, and those that do not
/// (a field of the wrong type, an enum value this server does not know), each with its
/// place in the batch. One record another client built wrongly is refused on its own;
/// it does not hold up the batch it came in (QA s25a F3).
#[derive(Debug)]
pub struct ReadPush {
    pub request: PushRequest,
    pub unreadable: Vec<Unreadable>,
}

/// A pushed record that names its id but does not parse.
#[derive(Debug, Clone)]
pub struct Unreadable {
    /// Its place in the pushed batch.
    pub index: usize,
    pub id: uuid::Uuid,
    /// Where it failed and why, as the parser says it (`record.visit.policies[0]: …`).
    pub reason: String,
}

/// [`push`] of a batch some of whose records did not parse: those are refused as
/// `invalid_record` in their places among the others' acks, and audited as any refusal.
pub async fn push_read(
    db: &DatabaseConnection,
    settings: &Settings,
    signers: &Signers,
    caller: &Caller,
    read: ReadPush,
) -> ApiResult<PushResponse> {
    let ReadPush {
        request,
        unreadable,
    } = read;
    let total = request.records.len() + unreadable.len();
    if total > MAX_PUSH_RECORDS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_PUSH_RECORDS} records per push, got {total}"
        )));
    }
    let parsed = push(db, settings, signers, caller, request).await?;
    if unreadable.is_empty() {
        return Ok(parsed);
    }
    let entries = unreadable
        .iter()
        .map(|u| {
            audit::Entry::new(
                "sync.reject",
                "record",
                None,
                serde_json::json!({ "record": u.id.to_string(), "reason": u.reason }),
            )
        })
        .collect();
    audit::record_many(db, caller, entries).await?;
    let mut refused = unreadable.into_iter().peekable();
    let mut parsed = parsed.acks.into_iter();
    let acks = (0..total)
        .filter_map(|i| match refused.next_if(|u| u.index == i) {
            Some(u) => Some(reject(
                u.id,
                Refusal::new(reason_code::INVALID_RECORD, u.reason),
            )),
            None => parsed.next(),
        })
        .collect();
    Ok(PushResponse { acks })
}

fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    let s = e.to_string().to_lowercase();
    s.contains("unique") || s.contains("duplicate key")
}

async fn push_once(
    db: &DatabaseConnection,
    settings: &Settings,
    caller: &Caller,
    req: &PushRequest,
    verdicts: &[Result<String, Refusal>],
    (devices, revoked): (&DeviceKeys, &HashSet<i64>),
) -> ApiResult<PushResponse> {
    let own_device = |device: i64| devices.contains_key(&device) || revoked.contains(&device);
    let own_device: &dyn Fn(i64) -> bool = &own_device;
    let mut acks: Vec<Option<Ack>> = vec![None; req.records.len()];
    let mut candidates: Vec<Candidate> = Vec::new();
    // Each id's first copy that passed the checks: its sha and its place in the batch.
    let mut in_batch: HashMap<String, (String, usize)> = HashMap::new();
    let mut rejected = Refused::default();
    for (i, (r, verdict)) in req.records.iter().zip(verdicts).enumerate() {
        let id = r.record.id.to_string();
        match verdict {
            Err(refusal) => {
                rejected.add(&r.record, refusal, caller, own_device);
                acks[i] = Some(reject(r.record.id, refusal.clone()));
            }
            Ok(sha) => match in_batch.get(&id) {
                Some((first, _)) if first != sha => acks[i] = Some(conflict(r.record.id)),
                Some(_) => {}
                None => {
                    in_batch.insert(id, (sha.clone(), i));
                    // Serialised before the write gate is taken, not while it is held.
                    let body =
                        serde_json::to_string(r).map_err(|e| ApiError::Internal(e.to_string()))?;
                    candidates.push(Candidate {
                        index: i,
                        sha: sha.clone(),
                        body,
                    });
                }
            },
        }
    }
    if candidates.is_empty() {
        if !rejected.audit.is_empty() {
            let (_gate, txn) = crate::db::begin_write(db).await?;
            crate::db::execute_all(&txn, rejected.statements(db.get_database_backend(), caller))
                .await?;
            txn.commit().await?;
        }
        return Ok(finish_acks(req, acks, &in_batch));
    }
    let (_gate, txn) = crate::db::begin_write(db).await?;
    let envs: Vec<&RecordEnvelope> = candidates
        .iter()
        .map(|c| &req.records[c.index].record)
        .collect();
    let mut reads = PushReads::load(&txn, &envs).await?;
    let mut fresh = Vec::new();
    let mut again = Vec::new();
    for c in candidates {
        let id = req.records[c.index].record.id;
        match reads.known.get(&id.to_string()) {
            Some(stored) if stored.record_sha256 == c.sha => {
                acks[c.index] = Some(ack_of(&txn, stored).await?);
                again.push(c.index);
            }
            Some(_) => acks[c.index] = Some(conflict(id)),
            None => fresh.push(c),
        }
    }
    flag_reused(&txn, &mut acks, &again).await?;
    let mut fresh = refuse_foreign_targets(
        req,
        fresh,
        &mut reads.targets,
        &mut acks,
        (&mut rejected, caller, own_device),
    );
    let backend = txn.get_database_backend();
    let mut writes = rejected.statements(backend, caller);
    let mut settle = None;
    if !fresh.is_empty() {
        let reads = std::mem::take(&mut reads);
        let planned = plan_fresh(backend, (settings, devices), caller, req, &mut fresh, reads)?;
        writes.extend(planned.writes);
        for (i, ack) in planned.acks {
            acks[i] = Some(ack);
        }
        settle = Some(planned.facts);
    }
    crate::db::execute_all(&txn, writes).await?;
    if let Some(facts) = settle {
        let cleared = facts.settle(&txn).await?;
        renumber(&txn, &cleared).await?;
        // A visit of this batch re-using the photo of a visit voided in it, too.
        for ack in acks.iter_mut().flatten() {
            if cleared.contains(&ack.id.to_string()) {
                ack.flags.retain(|f| f != PHOTO_REUSED);
            }
        }
    }
    txn.commit().await?;
    Ok(finish_acks(req, acks, &in_batch))
}

/// Adds [`PHOTO_REUSED`] to the acks at `indices` (records the server already held)
/// whose visit re-uses a photo now: a fact of the moment, not stored with the record.
async fn flag_reused(
    db: &impl ConnectionTrait,
    acks: &mut [Option<Ack>],
    indices: &[usize],
) -> ApiResult<()> {
    if indices.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = indices
        .iter()
        .filter_map(|&i| acks[i].as_ref())
        .map(|a| a.id.to_string())
        .collect();
    let reused = super::facts::photo_reused(db, &ids).await?;
    for &i in indices {
        if let Some(ack) = acks[i].as_mut()
            && reused.contains(&ack.id.to_string())
        {
            ack.flags.push(PHOTO_REUSED.to_string());
        }
    }
    Ok(())
}

/// Gives the records `ids` new change numbers, so their devices' next pull brings them
/// again with what changed about them (a photo no longer counted as re-used, a file
/// the server lost). Inside a write transaction (a push, after its counter advance).
async fn renumber(db: &impl ConnectionTrait, ids: &[String]) -> ApiResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let last = next_changes(db, ids.len() as i64).await?;
    for (n, id) in ids.iter().enumerate() {
        record::Entity::update_many()
            .col_expr(record::Column::ChangeSeq, Expr::value(last - n as i64))
            .filter(record::Column::Id.eq(id.as_str()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// The acks in the order of the push; later copies of a record within the same batch
/// get the first copy's answer: the copy that passed the checks (`in_batch`), not a
/// later copy refused on its own (a bad signature), which must not turn a stored
/// record's answer into `rejected`.
fn finish_acks(
    req: &PushRequest,
    acks: Vec<Option<Ack>>,
    in_batch: &HashMap<String, (String, usize)>,
) -> PushResponse {
    let first_of = |id: &uuid::Uuid| {
        in_batch
            .get(&id.to_string())
            .and_then(|(_, i)| acks.get(*i).cloned().flatten())
    };
    let answers: Vec<Ack> = req
        .records
        .iter()
        .zip(acks.iter().cloned())
        .map(|(r, a)| {
            a.or_else(|| first_of(&r.record.id)).unwrap_or_else(|| {
                reject(
                    r.record.id,
                    Refusal::new(reason_code::NOT_PROCESSED, "not processed"),
                )
            })
        })
        .collect();
    PushResponse { acks: answers }
}

/// Why a void or amendment may not act on the visit it names: a helper corrects or
/// withdraws only their own visits, of the same household, and names the original
/// visit (an amendment of an amendment names the original too). `None` when it may.
fn target_problem(env: &RecordEnvelope, target: &Target) -> Option<Refusal> {
    let what = if env.record_type == RecordType::Void {
        "void"
    } else {
        "amendment"
    };
    if target.record_type != RecordType::Visit.code() {
        return Some(Refusal::new(
            reason_code::TARGET_NOT_A_VISIT,
            format!(
                "this {what} names a record of type `{}`, not a visit: name the original visit",
                target.record_type
            ),
        ));
    }
    if target.author_helper_id != env.author_helper_id {
        return Some(Refusal::new(
            reason_code::TARGET_OTHER_HELPER,
            format!(
                "this {what} names a visit recorded by another helper: only its author may correct or withdraw it"
            ),
        ));
    }
    if target.household_id != env.household_id {
        return Some(Refusal::new(
            reason_code::TARGET_OTHER_HOUSEHOLD,
            format!(
                "this {what} is for household {}, but the visit it names is of household {}",
                env.household_id, target.household_id
            ),
        ));
    }
    None
}

/// The records of `fresh` as what a void or amendment in the same push may target.
fn as_targets(req: &PushRequest, fresh: &[Candidate]) -> HashMap<String, Target> {
    fresh
        .iter()
        .map(|c| {
            let e = &req.records[c.index].record;
            let target = Target {
                record_type: e.record_type.code().to_string(),
                author_helper_id: e.author_helper_id,
                household_id: e.household_id,
                visit_at: e.visit.as_ref().map(|v| v.at),
                signed_at: e.created_at,
                device_id: e.device_id,
                flags: String::new(),
                blobs: e
                    .visit
                    .as_ref()
                    .map(|v| v.referenced_hashes().into_iter().collect())
                    .unwrap_or_default(),
            };
            (e.id.to_string(), target)
        })
        .collect()
}

/// Refuses the voids and amendments among `fresh` whose target, stored or in the same
/// batch, is not theirs to change ([`target_problem`]). A target that has not arrived
/// yet is judged by the visit facts when it does (`facts`: only its author's voids and
/// amendments act on it), so records may still arrive in any order. `targets` (the
/// stored ones) gains the batch's own records when any record names a target, for the
/// date check of amendments ([`dating_flags`]).
fn refuse_foreign_targets(
    req: &PushRequest,
    fresh: Vec<Candidate>,
    targets: &mut HashMap<String, Target>,
    acks: &mut [Option<Ack>],
    (rejected, caller, own_device): (&mut Refused, &Caller, &dyn Fn(i64) -> bool),
) -> Vec<Candidate> {
    let names_one = |c: &Candidate| req.records[c.index].record.target_id.is_some();
    if !fresh.iter().any(names_one) {
        return fresh;
    }
    for (id, target) in as_targets(req, &fresh) {
        targets.entry(id).or_insert(target);
    }
    let mut kept = Vec::with_capacity(fresh.len());
    for c in fresh {
        let env = &req.records[c.index].record;
        let problem = env.target_id.and_then(|t| {
            targets
                .get(&t.to_string())
                .and_then(|target| target_problem(env, target))
        });
        match problem {
            None => kept.push(c),
            Some(refusal) => {
                rejected.add(env, &refusal, caller, own_device);
                acks[c.index] = Some(reject(env.id, refusal));
            }
        }
    }
    kept
}

/// The refusals of a push: their audit entries, and the `refused` anomalies of those
/// signed by the caller's own devices ([`refusals::anomaly`]), written together.
#[derive(Default)]
struct Refused {
    audit: Vec<audit::Entry>,
    anomalies: Vec<device_anomaly::ActiveModel>,
}

impl Refused {
    fn add(
        &mut self,
        env: &RecordEnvelope,
        refusal: &Refusal,
        caller: &Caller,
        own_device: &dyn Fn(i64) -> bool,
    ) {
        self.audit.push(audit::Entry::new(
            "sync.reject",
            "record",
            None,
            serde_json::json!({ "record": env.id.to_string(), "reason": refusal.reason }),
        ));
        self.anomalies.extend(refusals::anomaly(
            env,
            refusal.code,
            &refusal.reason,
            own_device(env.device_id),
            caller.helper_id,
        ));
    }

    fn statements(self, backend: sea_orm::DbBackend, caller: &Caller) -> Vec<Statement> {
        let mut writes = audit::statements(backend, caller, self.audit);
        writes.extend(crate::db::insert_statements(backend, self.anomalies, 500));
        writes
    }
}

/// A verified record of a push, first of its id in the batch.
struct Candidate {
    /// Its position in the push.
    index: usize,
    /// The SHA-256 of its canonical bytes.
    sha: String,
    /// The signed record as stored.
    body: String,
}

fn conflict(id: uuid::Uuid) -> Ack {
    Ack {
        id,
        status: AckStatus::Conflict,
        reason: Some(
            "the server holds a different record under this id; it was not overwritten".into(),
        ),
        reason_code: Some(reason_code::CONFLICT.to_string()),
        missing_blobs: Vec::new(),
        flags: Vec::new(),
    }
}

async fn ack_of(db: &impl ConnectionTrait, r: &Known) -> ApiResult<Ack> {
    let missing = if r.status == AWAITING {
        missing_blobs(db, &r.id).await?
    } else {
        Vec::new()
    };
    let id =
        r.id.parse()
            .map_err(|_| ApiError::Internal(format!("record id {}", r.id)))?;
    Ok(Ack {
        id,
        status: status_of(&r.status),
        reason: None,
        reason_code: None,
        missing_blobs: missing,
        flags: flags_of(&r.flags),
    })
}

fn status_of(s: &str) -> AckStatus {
    if s == AWAITING {
        AckStatus::AwaitingPhotos
    } else {
        AckStatus::Accepted
    }
}

async fn missing_blobs(db: &impl ConnectionTrait, record_id: &str) -> ApiResult<Vec<String>> {
    let wanted: Vec<String> = record_blob::Entity::find()
        .filter(record_blob::Column::RecordId.eq(record_id))
        .all(db)
        .await?
        .into_iter()
        .map(|b| b.sha256)
        .collect();
    let have = present_blobs(db, &wanted).await?;
    Ok(wanted.into_iter().filter(|s| !have.contains(s)).collect())
}

async fn present_blobs(db: &impl ConnectionTrait, shas: &[String]) -> ApiResult<HashSet<String>> {
    let mut out = HashSet::new();
    for chunk in shas.chunks(crate::db::IN_CHUNK) {
        let found = blob::Entity::find()
            .select_only()
            .column(blob::Column::Sha256)
            .filter(blob::Column::Sha256.is_in(chunk.to_vec()))
            .into_tuple::<String>()
            .all(db)
            .await?;
        out.extend(found);
    }
    Ok(out)
}

/// The writes that store a push's new records, and their acks.
struct Planned {
    writes: Vec<Statement>,
    /// What is left to settle once the writes ran (amended visits).
    facts: super::facts::FactsPlan,
    acks: Vec<(usize, Ack)>,
}

/// Plans the storing of new records from what the push read (`reads`, taken in its
/// write transaction): the counter's numbers, statuses, chain and clock flags, rows.
fn plan_fresh(
    backend: DbBackend,
    (settings, devices): (&Settings, &DeviceKeys),
    caller: &Caller,
    req: &PushRequest,
    fresh: &mut [Candidate],
    reads: PushReads,
) -> ApiResult<Planned> {
    let n = fresh.len() as i64;
    let last = reads.counter + n;
    let first_seq = reads.counter + 1;
    let now = super::now();
    let mut batch: Neighbours = HashMap::new();
    for c in fresh.iter() {
        let e = &req.records[c.index].record;
        batch
            .entry((e.device_id, e.seq))
            .or_default()
            .push(push_reads::Neighbour {
                id: e.id.to_string(),
                sha: c.sha.clone(),
                prev_sha: e.prev_sha256.clone(),
                signed_at: e.created_at,
            });
    }
    let mut rows = Vec::with_capacity(fresh.len());
    let mut links = Vec::new();
    let mut changes = Vec::new();
    // Each corrected visit's family changes already decided: an amendment repeating one
    // proposes nothing new (see `push_reads::proposed_queries`). Pending ones are
    // withdrawn by the correction, whose copies take their place.
    let decided = &reads.proposed;
    let mut anomalies = Vec::new();
    let mut acks = Vec::with_capacity(fresh.len());
    for (k, c) in fresh.iter_mut().enumerate() {
        let env = &req.records[c.index].record;
        let id = env.id.to_string();
        let refs = referenced(env);
        let missing: Vec<String> = refs
            .iter()
            .filter(|s| !reads.present.contains(*s))
            .cloned()
            .collect();
        let mut flags = Vec::new();
        for (kind, detail) in clock_problems(env, now, settings, devices) {
            flags.push(kind.to_string());
            anomalies.push(anomaly(env, kind, detail));
        }
        let around = (&reads.neighbours, &batch);
        for (kind, detail) in chain_problems(env, &c.sha, around, settings) {
            flags.push(kind.to_string());
            anomalies.push(anomaly(env, kind, detail));
        }
        let target = env
            .target_id
            .and_then(|t| reads.targets.get(&t.to_string()));
        for flag in dating_flags(env, target, settings, devices) {
            if !flags.iter().any(|f| f == flag) {
                flags.push(flag.to_string());
            }
        }
        let status = if missing.is_empty() {
            ACCEPTED
        } else {
            AWAITING
        };
        rows.push(record::ActiveModel {
            id: Set(id.clone()),
            change_seq: Set(first_seq + k as i64),
            device_id: Set(env.device_id),
            device_seq: Set(env.seq),
            prev_sha256: Set(env.prev_sha256.clone()),
            record_sha256: Set(c.sha.clone()),
            author_helper_id: Set(env.author_helper_id),
            account_id: Set(caller.account_id.unwrap_or_default()),
            household_id: Set(env.household_id),
            record_type: Set(env.record_type.code().to_string()),
            target_id: Set(env.target_id.map(|t| t.to_string())),
            visit_kind: Set(env.visit.as_ref().map(|v| v.kind.code().to_string())),
            visit_at: Set(env.visit.as_ref().map(|v| v.at)),
            created_at_device: Set(env.created_at),
            received_at: Set(now),
            status: Set(status.to_string()),
            flags: Set(flags.join(",")),
            body: Set(std::mem::take(&mut c.body)),
            review: Set(None),
            ..Default::default()
        });
        links.extend(refs.iter().map(|s| record_blob::ActiveModel {
            record_id: Set(id.clone()),
            sha256: Set(s.clone()),
            ..Default::default()
        }));
        if let Some(v) = env
            .visit
            .as_ref()
            .filter(|_| env.record_type != RecordType::Void)
        {
            let before = env.target_id.and_then(|t| decided.get(&t.to_string()));
            let new_ones = v
                .family_changes
                .iter()
                .filter(|c| {
                    before.is_none_or(|d| !d.contains(&(c.kind.code().to_string(), c.name.clone())))
                })
                .collect::<Vec<_>>();
            changes.extend(new_ones.into_iter().map(|c| field_change::ActiveModel {
                record_id: Set(id.clone()),
                household_id: Set(env.household_id),
                kind: Set(c.kind.code().to_string()),
                name: Set(c.name.clone()),
                status: Set("pending".into()),
                note: Set(None),
                decided_by: Set(None),
                decided_at: Set(None),
                created_at: Set(now),
                ..Default::default()
            }));
        }
        acks.push((
            c.index,
            Ack {
                id: env.id,
                status: status_of(status),
                reason: None,
                reason_code: None,
                missing_blobs: missing,
                flags,
            },
        ));
    }
    let stored: Vec<(&RecordEnvelope, bool, bool)> = fresh
        .iter()
        .zip(&acks)
        .map(|(c, (_, ack))| {
            (
                &req.records[c.index].record,
                ack.status == AckStatus::Accepted,
                ack.flags.iter().any(|f| CLOCK_FLAGS.contains(&f.as_str())),
            )
        })
        .collect();
    let mut facts = super::facts::plan(backend, &stored, now, reads.facts);
    for (_, ack) in acks.iter_mut() {
        if facts.reused.contains(&ack.id.to_string()) {
            ack.flags.push(PHOTO_REUSED.to_string());
        }
    }
    // Every write of the push, in order: the counter, the records, what hangs off them,
    // their facts, the audit entry.
    let mut writes = vec![push_reads::counter_advance(backend, n)];
    writes.extend(crate::db::insert_statements(backend, rows, 200));
    writes.extend(crate::db::insert_statements(backend, links, 500));
    writes.extend(crate::db::insert_statements(backend, changes, 500));
    writes.extend(crate::db::insert_statements(backend, anomalies, 500));
    writes.append(&mut facts.statements);
    writes.extend(audit::statements(
        backend,
        caller,
        vec![audit::Entry::new(
            "sync.push",
            "record",
            None,
            serde_json::json!({ "accepted": fresh.len(), "change_seq_to": last }),
        )],
    ));
    Ok(Planned {
        writes,
        facts,
        acks,
    })
}
/// A visit dated after the record was signed: a visit cannot be recorded before it
/// happens, so its time was typed wrong or the device's clock was behind. Like a clock
/// ahead of the server's, it is flagged and does not count.
pub const DATED_AFTER_SIGNING: &str = "dated_after_signing";

/// A visit signed more than `late_entry_days` after the date it claims (or an amendment
/// that moves it to such a day): it counts, but the office sees it was entered late (visits written up at
/// quarter end from memory are what the seeds call 弄虚作假 when they never happened).
pub const ENTERED_LATE: &str = "entered_late";

/// A visit whose photo another visit used first (by arrival): it does not count
/// (照片已用于其他走访). Unlike the other flags it is the current judgement, not stored
/// with the record: it goes when the other visit is voided, and the record comes back
/// in pull without it.
pub const PHOTO_REUSED: &str = "photo_reused";

/// The flags of a visit's own dates against its signing time (device clock).
/// `target`: for an amendment, the visit it corrects, when known.
fn dating_flags(
    env: &RecordEnvelope,
    target: Option<&Target>,
    settings: &Settings,
    devices: &DeviceKeys,
) -> Vec<&'static str> {
    let Some(visit) = env.visit.as_ref() else {
        return Vec::new();
    };
    let mut flags = Vec::new();
    if (visit.at - env.created_at).num_seconds() > settings.clock_tolerance_secs {
        flags.push(DATED_AFTER_SIGNING);
    }
    // An amendment weeks later that keeps the visit's day (a corrected note) is judged
    // by when the visit was first entered: late if the visit was (an amendment must
    // not wash off the office's 补录 mark, QA s22b F1), not for its own date. One that
    // moves the day (into a missed window, say) is judged like a visit entered then,
    // and so is one whose visit has not arrived to compare.
    // A visit signed with the clock set back (`clock_behind`) was entered when no one
    // knows: its amendment is judged by its own signing, or a set-back clock would carry
    // its visit past the late-entry mark for good.
    let kept_day = target.filter(|t| {
        env.record_type == RecordType::Amendment
            && t.visit_at.is_some_and(|at| {
                super::facts::local_date(at) == super::facts::local_date(visit.at)
            })
            && !signed_before_registration(t.signed_at, t.device_id, settings, devices)
    });
    // Evidence the visit did not have (a photo or signature image the amendment brings)
    // is entered when the amendment is signed: a photo taken months later proves
    // nothing of the visit, and once made it count unmarked (QA s29b J18).
    let new_evidence = kept_day.is_some_and(|t| {
        visit
            .referenced_hashes()
            .iter()
            .any(|h| !t.blobs.contains(h))
    });
    let entered = match kept_day {
        Some(t) if !new_evidence => t.signed_at,
        _ => env.created_at,
    };
    // Nor does a correction that keeps the day wash off the mark of a visit signed with
    // the clock gone back: its date is still that clock's word (QA s26d F5).
    if kept_day.is_some_and(|t| t.flags.split(',').any(|f| f == CLOCK_WENT_BACK)) {
        flags.push(CLOCK_WENT_BACK);
    }
    // Compared as durations: whole days would let 7 days 23 hours pass as 7.
    let late = chrono::TimeDelta::try_days(settings.late_entry_days)
        .is_some_and(|limit| entered - visit.at > limit);
    if late {
        flags.push(ENTERED_LATE);
    }
    flags
}

/// The flags saying the device's clock was wrong when it signed: the visit does not
/// count until amended, and how late it was entered is unknown.
pub const CLOCK_FLAGS: [&str; 3] = [CLOCK_AHEAD, CLOCK_BEHIND, DATED_AFTER_SIGNING];
const CLOCK_AHEAD: &str = "clock_ahead";
const CLOCK_BEHIND: &str = "clock_behind";

/// The clock flags of a new record, each with its anomaly's detail (times in China
/// time, as the office reads every other time). Ahead: signed later than the server
/// received it. Behind: signed before its device was registered, which no device can
/// do with a right clock (QA s26a F2, s26c F1: a clock set back to date a visit into a
/// closed quarter, which would also escape `entered_late`).
fn clock_problems(
    env: &RecordEnvelope,
    now: chrono::DateTime<chrono::Utc>,
    settings: &Settings,
    devices: &DeviceKeys,
) -> Vec<(&'static str, String)> {
    let tolerance = chrono::Duration::seconds(settings.clock_tolerance_secs);
    let mut out = Vec::new();
    if env.created_at - now > tolerance {
        out.push((
            CLOCK_AHEAD,
            format!(
                "device time {} is ahead of the server's {}",
                super::china_time(env.created_at),
                super::china_time(now)
            ),
        ));
    }
    if signed_before_registration(env.created_at, env.device_id, settings, devices) {
        let registered = devices
            .get(&env.device_id)
            .map_or(env.created_at, |d| d.registered_at);
        out.push((
            CLOCK_BEHIND,
            format!(
                "device time {} is before this device was registered, {}: its clock was set back",
                super::china_time(env.created_at),
                super::china_time(registered)
            ),
        ));
    }
    out
}

/// Whether `signed_at`, by the clock of `device` (one of the account's), lies before the
/// device was registered by more than the clock tolerance.
fn signed_before_registration(
    signed_at: chrono::DateTime<chrono::Utc>,
    device: i64,
    settings: &Settings,
    devices: &DeviceKeys,
) -> bool {
    let tolerance = chrono::Duration::seconds(settings.clock_tolerance_secs);
    devices
        .get(&device)
        .is_some_and(|d| d.registered_at - signed_at > tolerance)
}

fn anomaly(env: &RecordEnvelope, kind: &str, detail: String) -> device_anomaly::ActiveModel {
    device_anomaly::ActiveModel {
        device_id: Set(env.device_id),
        helper_id: Set(env.author_helper_id),
        kind: Set(kind.to_string()),
        device_seq: Set(env.seq),
        detail: Set(detail),
        detected_at: Set(super::now()),
        ..Default::default()
    }
}

/// Chain breaks and reused sequence numbers around one new record, against what is
/// stored and what arrives in the same batch (both indexed by device and sequence).
fn chain_problems(
    env: &RecordEnvelope,
    sha: &str,
    (stored, batch): (&Neighbours, &Neighbours),
    settings: &Settings,
) -> Vec<(&'static str, String)> {
    let mut around: HashMap<i64, Vec<push_reads::Neighbour>> = HashMap::new();
    for seq in [env.seq - 1, env.seq, env.seq + 1] {
        let key = (env.device_id, seq);
        let list = stored
            .get(&key)
            .into_iter()
            .chain(batch.get(&key))
            .flatten()
            .cloned()
            .collect();
        around.insert(seq, list);
    }
    let me = env.id.to_string();
    let mut problems = Vec::new();
    if around[&env.seq].iter().any(|n| n.id != me) {
        problems.push((
            "seq_reused",
            format!(
                "sequence number {} is used by more than one record",
                env.seq
            ),
        ));
    }
    if let Some(prev) = around[&(env.seq - 1)].first()
        && prev.sha != env.prev_sha256
    {
        problems.push((
            "chain_break",
            format!(
                "record {} does not chain to the device's record {}",
                env.seq,
                env.seq - 1
            ),
        ));
    }
    if let Some(next) = around[&(env.seq + 1)].first()
        && next.prev_sha != sha
        && !problems.iter().any(|(k, _)| *k == "chain_break")
    {
        problems.push((
            "chain_break",
            format!(
                "the device's record {} does not chain to record {}",
                env.seq + 1,
                env.seq
            ),
        ));
    }
    // Signed before the device's record before it: the clock went back between them
    // (set back to date a visit into a closed quarter, or a fast clock put right). It
    // counts; the office sees it on the sheet (QA s26a F2).
    let tolerance = chrono::Duration::seconds(settings.clock_tolerance_secs);
    if let Some(prev) = around[&(env.seq - 1)].first()
        && prev.signed_at - env.created_at > tolerance
    {
        problems.push((
            CLOCK_WENT_BACK,
            format!(
                "record {} was signed at {}, before the device's record {} ({}): its clock went back",
                env.seq,
                super::china_time(env.created_at),
                env.seq - 1,
                super::china_time(prev.signed_at)
            ),
        ));
    }
    problems
}

/// The flag of a record signed, by its device's clock, before the record before it.
pub const CLOCK_WENT_BACK: &str = "clock_went_back";

/// The files a record refers to (photos, signature images), by SHA-256.
pub async fn blobs_of(db: &impl ConnectionTrait, record_id: &str) -> ApiResult<Vec<String>> {
    Ok(record_blob::Entity::find()
        .filter(record_blob::Column::RecordId.eq(record_id))
        .order_by_asc(record_blob::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|b| b.sha256)
        .collect())
}

/// The [`crate::db::TAG`] of [`referring_records`]' rows.
pub const REFERRING: &str = "referring";

/// The records that refer to the file `sha256`, for [`complete_waiting_records`]: read
/// with the writes that record the file (`db::query_batch`).
pub fn referring_records(backend: DbBackend, sha256: &str) -> Statement {
    record_blob::Entity::find()
        .select_only()
        .expr_as(crate::db::tag(REFERRING), crate::db::TAG)
        .column(record_blob::Column::RecordId)
        .filter(record_blob::Column::Sha256.eq(sha256))
        .build(backend)
}

/// After a blob arrives: every record among `waiting` (those referring to it, see
/// [`referring_records`]) still awaiting photos and now missing none is complete.
/// Runs inside the write transaction that records the blob.
pub async fn complete_waiting_records(
    db: &impl ConnectionTrait,
    waiting: Vec<String>,
) -> ApiResult<()> {
    if waiting.is_empty() {
        return Ok(());
    }
    let mut ready = Vec::new();
    for r in record::Entity::find()
        .filter(record::Column::Id.is_in(waiting))
        .filter(record::Column::Status.eq(AWAITING))
        .all(db)
        .await?
    {
        if missing_blobs(db, &r.id).await?.is_empty() {
            ready.push(r);
        }
    }
    if ready.is_empty() {
        return Ok(());
    }
    let last = next_changes(db, ready.len() as i64).await?;
    let ids: HashSet<String> = ready.iter().map(|r| r.id.clone()).collect();
    for (n, r) in ready.into_iter().enumerate() {
        let mut active = r.into_active_model();
        active.status = Set(ACCEPTED.into());
        active.change_seq = Set(last - n as i64);
        active.update(db).await?;
    }
    super::facts::photos_completed(db, &ids).await?;
    Ok(())
}

/// What changed for the caller since `cursor`: their records, and their households
/// and policy when the county's ledger changed.
pub async fn pull(
    db: &impl ConnectionTrait,
    caller: &Caller,
    cursor: i64,
    limit: u64,
) -> ApiResult<PullResponse> {
    let helper_id = caller
        .helper_id
        .ok_or_else(|| ApiError::Forbidden("only a helper's device pulls records".into()))?;
    let limit = limit.clamp(1, 1000);
    let cursor = within_issued(db, cursor).await?;
    // The county's ledger mark is read before the records: numbers commit in order (the
    // counter's row lock), so every change numbered up to the mark is visible to the
    // records query that follows. Read after it, a record change and then a ledger
    // change committing in between would let the cursor jump past the record.
    let ledger = match caller.county_id {
        Some(c) => sync_counter::Entity::find_by_id(format!("ledger:{c}"))
            .one(db)
            .await?
            .map_or(0, |r| r.value),
        None => 0,
    };
    let rows = record::Entity::find()
        .filter(record::Column::AuthorHelperId.eq(helper_id))
        .filter(record::Column::ChangeSeq.gt(cursor))
        .order_by_asc(record::Column::ChangeSeq)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    let page: Vec<String> = rows
        .iter()
        .take(limit as usize)
        .map(|r| r.id.clone())
        .collect();
    let reused = super::facts::photo_reused(db, &page).await?;
    let mut decided = decided_changes(db, &page).await?;
    let mut records = Vec::new();
    let mut next = cursor;
    for r in rows.into_iter().take(limit as usize) {
        next = next.max(r.change_seq);
        // One unreadable stored body must not stop every later pull of the helper's
        // devices at this cursor: it is left out (and logged by id) and the page goes on.
        let signed: SignedRecord = match serde_json::from_str(&r.body) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(record = %r.id, "stored record left out of pull: {e}");
                continue;
            }
        };
        let missing = if r.status == AWAITING {
            missing_blobs(db, &r.id).await?
        } else {
            Vec::new()
        };
        let mut flags = flags_of(&r.flags);
        if reused.contains(&r.id) {
            flags.push(PHOTO_REUSED.to_string());
        }
        records.push(ServerRecord {
            signed,
            status: status_of(&r.status),
            missing_blobs: missing,
            flags,
            family_changes: decided.remove(&r.id).unwrap_or_default(),
            received_at: r.received_at,
            review: r.review,
        });
    }
    let snap = if ledger > cursor {
        let snap = households::snapshot(db, caller).await?;
        if !more {
            next = next.max(ledger);
        }
        Some(snap)
    } else {
        None
    };
    let mut page = PullResponse {
        records,
        households: None,
        policy: None,
        evidence_history: Vec::new(),
        exit_cuts_history: Vec::new(),
        visits_history: Vec::new(),
        cursor: next,
        more,
    };
    if let Some(snap) = snap {
        page.households = Some(snap.households);
        page.policy = Some(snap.policy);
        page.evidence_history = snap.evidence_history;
        page.exit_cuts_history = snap.exit_cuts_history;
        page.visits_history = snap.visits_history;
    }
    Ok(page)
}

/// Ids of the households an office caller may see, optionally in one town.
async fn households_in_scope(
    db: &impl ConnectionTrait,
    caller: &Caller,
    town: Option<i64>,
) -> ApiResult<Vec<i64>> {
    caller.require_office("view sync anomalies and reviews")?;
    let mut cond = caller.scope().households();
    if let Some(t) = town {
        // A town outside the scope is not found, as in the reports: an empty list would
        // read as "nothing to review" for a mistyped id.
        super::jurisdictions::town_in_scope(db, caller, t).await?;
        cond = cond.add(household::Column::TownId.eq(t));
    }
    Ok(household::Entity::find()
        .select_only()
        .column(household::Column::Id)
        .filter(cond)
        .into_tuple()
        .all(db)
        .await?)
}

/// A cursor past every change number the server has issued cannot come from this
/// server's answers: the database was restored from a backup older than the device's
/// last pull (or the device's store is damaged). Answered as if it were 0, so the device
/// receives everything again (it keeps what it holds once) and takes the new, lower
/// cursor; echoed back, it would hear "nothing new" for ever.
async fn within_issued(db: &impl ConnectionTrait, cursor: i64) -> ApiResult<i64> {
    let issued = sync_counter::Entity::find_by_id("change".to_string())
        .one(db)
        .await?
        .map_or(0, |r| r.value);
    Ok(if cursor > issued { 0 } else { cursor })
}

/// Field-proposed family changes of households in scope, by status. A pending change
/// whose visit its helper has since voided or corrected is shown as `withdrawn`: the
/// office must not put into the ledger what the helper took back (a correction carries
/// its own changes, pending in their turn).
pub async fn field_changes(
    db: &impl ConnectionTrait,
    caller: &Caller,
    town: Option<i64>,
    status: Option<&str>,
) -> ApiResult<Vec<FieldChange>> {
    let ids = households_in_scope(db, caller, town).await?;
    // Withdrawn is derived from pending (see `withdrawn_records`), or stored by a decision.
    let stored_status: Option<Vec<&str>> = match status {
        Some(WITHDRAWN) => Some(vec!["pending", WITHDRAWN]),
        Some(s) => Some(vec![s]),
        None => None,
    };
    let mut out = Vec::new();
    for chunk in ids.chunks(1000) {
        let mut q = field_change::Entity::find()
            .filter(field_change::Column::HouseholdId.is_in(chunk.to_vec()));
        if let Some(s) = &stored_status {
            q = q.filter(field_change::Column::Status.is_in(s.clone()));
        }
        let mut rows = q.order_by_asc(field_change::Column::Id).all(db).await?;
        let pending: Vec<String> = rows
            .iter()
            .filter(|c| c.status == "pending")
            .map(|c| c.record_id.clone())
            .collect();
        let withdrawn = withdrawn_records(db, &pending).await?;
        for c in &mut rows {
            if c.status == "pending" && withdrawn.contains(&c.record_id) {
                c.status = WITHDRAWN.into();
            }
        }
        let replaced = super::change_corrections::replaced(db, &rows).await?;
        out.extend(
            rows.into_iter()
                .filter(|c| status.is_none_or(|s| c.status == s))
                .filter_map(|c| {
                    let old = replaced
                        .get(&c.id)
                        .map(|o| bangfu_shared::sync::ReplacedChange {
                            id: o.id,
                            name: o.name.clone(),
                        });
                    to_field_change(c).map(|dto| FieldChange {
                        replaces: old,
                        ..dto
                    })
                }),
        );
    }
    with_context(db, &mut out).await?;
    Ok(out)
}

/// Fills in each change's household head, visit time and helper: three reads for the
/// whole list, whatever its length.
async fn with_context(db: &impl ConnectionTrait, changes: &mut [FieldChange]) -> ApiResult<()> {
    let household_ids: BTreeSet<i64> = changes.iter().map(|c| c.household_id).collect();
    let record_ids: BTreeSet<String> = changes.iter().map(|c| c.record_id.to_string()).collect();
    let mut heads: HashMap<i64, String> = HashMap::new();
    let mut visits: HashMap<String, (Option<chrono::DateTime<chrono::Utc>>, i64)> = HashMap::new();
    let household_ids: Vec<i64> = household_ids.into_iter().collect();
    for chunk in household_ids.chunks(crate::db::IN_CHUNK) {
        let rows: Vec<(i64, String)> = household::Entity::find()
            .select_only()
            .columns([household::Column::Id, household::Column::HeadName])
            .filter(household::Column::Id.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        heads.extend(rows);
    }
    let record_ids: Vec<String> = record_ids.into_iter().collect();
    for chunk in record_ids.chunks(crate::db::IN_CHUNK) {
        let rows: Vec<(String, Option<chrono::DateTime<chrono::Utc>>, i64)> =
            record::Entity::find()
                .select_only()
                .columns([
                    record::Column::Id,
                    record::Column::VisitAt,
                    record::Column::AuthorHelperId,
                ])
                .filter(record::Column::Id.is_in(chunk.to_vec()))
                .into_tuple()
                .all(db)
                .await?;
        visits.extend(rows.into_iter().map(|(id, at, h)| (id, (at, h))));
    }
    let helper_ids: Vec<i64> = visits
        .values()
        .map(|(_, h)| *h)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut helpers: HashMap<i64, String> = HashMap::new();
    for chunk in helper_ids.chunks(crate::db::IN_CHUNK) {
        let rows: Vec<(i64, String)> = helper::Entity::find()
            .select_only()
            .columns([helper::Column::Id, helper::Column::Name])
            .filter(helper::Column::Id.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        helpers.extend(rows);
    }
    for c in changes {
        c.head_name = heads.get(&c.household_id).cloned().unwrap_or_default();
        if let Some((at, helper)) = visits.get(&c.record_id.to_string()) {
            c.visit_at = *at;
            c.helper_name = helpers.get(helper).cloned().unwrap_or_default();
        }
    }
    Ok(())
}

/// The status of a family change whose visit was voided or corrected by its helper.
const WITHDRAWN: &str = "withdrawn";

/// Of the records `ids`, those whose visit no longer stands: voided, or replaced by a
/// later correction (the facts know both, whichever record arrived first).
async fn withdrawn_records(
    db: &impl ConnectionTrait,
    ids: &[String],
) -> ApiResult<HashSet<String>> {
    let mut out = HashSet::new();
    for chunk in ids.chunks(crate::db::IN_CHUNK) {
        let rows: Vec<String> = visit_fact::Entity::find()
            .select_only()
            .column(visit_fact::Column::RecordId)
            .filter(visit_fact::Column::RecordId.is_in(chunk.to_vec()))
            .filter(
                sea_orm::Condition::any()
                    .add(visit_fact::Column::Voided.eq(true))
                    .add(visit_fact::Column::Superseded.eq(true)),
            )
            .into_tuple()
            .all(db)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

fn to_field_change(c: field_change::Model) -> Option<FieldChange> {
    Some(FieldChange {
        id: c.id,
        record_id: c.record_id.parse().ok()?,
        household_id: c.household_id,
        kind: c.kind,
        name: c.name,
        status: c.status,
        note: c.note,
        head_name: String::new(),
        visit_at: None,
        helper_name: String::new(),
        replaces: None,
    })
}

/// The town office decides on a field change; an accepted one updates the household's
/// members (births and move-ins join, deaths and move-outs leave).
///
/// The reads before the transaction only find the change and check the caller's scope.
/// Inside it, the change leaves `pending` by a conditional update: of two reviewers
/// deciding at once exactly one gets through, the other gets a conflict. The household's
/// members are read again, locked, inside the transaction, so two changes of one
/// household accepted at once both land. An accept marks the ledger last, after the
/// household's row lock (see [`bump_ledger`]).
/// The longest note a decision on a family change keeps.
pub const MAX_DECISION_NOTE_CHARS: usize = 500;

pub async fn decide(
    db: &DatabaseConnection,
    caller: &Caller,
    id: i64,
    decision: bangfu_shared::sync::FieldChangeDecision,
) -> ApiResult<FieldChange> {
    caller.require_office("review field changes")?;
    let bangfu_shared::sync::FieldChangeDecision {
        accept,
        note,
        new_head,
    } = decision;
    let new_head = new_head
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    // Served back in every listing of the queue: as long as a review note, no longer
    // (QA s22c F7 stored one of 100,000 characters).
    if let Some(n) = &note {
        super::check_free_text(n, "note", MAX_DECISION_NOTE_CHARS)?;
    }
    let change = field_change::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("field change"))?;
    let h = household::Entity::find()
        .filter(
            caller
                .scope()
                .households()
                .add(household::Column::Id.eq(change.household_id)),
        )
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("field change"))?;
    if change.status != "pending" {
        return Err(already_decided(&change.status));
    }
    let withdrawn = !withdrawn_records(db, std::slice::from_ref(&change.record_id))
        .await?
        .is_empty();
    let replaces = super::change_corrections::replaced(db, std::slice::from_ref(&change))
        .await?
        .remove(&change.id);
    let (_gate, txn) = crate::db::begin_write(db).await?;
    let status = match (withdrawn, accept) {
        (true, _) => WITHDRAWN,
        (false, true) => "accepted",
        (false, false) => "rejected",
    };
    let decided_at = super::now();
    // A change its helper withdrew was decided by no one: the refused request's note is
    // not kept, or the helper's device shows it as the reason (QA s30a L1).
    let (note, decided_by) = match withdrawn {
        true => (None, None),
        false => (note, caller.account_id),
    };
    let flipped = field_change::Entity::update_many()
        .set(field_change::ActiveModel {
            status: Set(status.into()),
            note: Set(note.clone()),
            decided_by: Set(decided_by),
            decided_at: Set(Some(decided_at)),
            ..Default::default()
        })
        .filter(field_change::Column::Id.eq(id))
        .filter(field_change::Column::Status.eq("pending"))
        .exec(&txn)
        .await?;
    if flipped.rows_affected != 1 {
        let now = field_change::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .map_or_else(|| "removed".to_string(), |c| c.status);
        return Err(already_decided(&now));
    }
    if withdrawn {
        txn.commit().await?;
        return Err(ApiError::Conflict(
            "the visit this change came from was voided or corrected by its helper, so the \
             change is withdrawn (a correction carries its own changes for review)"
                .into(),
        ));
    }
    if accept {
        let h_county = h.county_id;
        let h = household::Entity::find_by_id(h.id)
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or(ApiError::NotFound("field change"))?;
        // An unreadable stored list is not taken for an empty one: accepting a birth
        // would then leave the household with the baby alone.
        let mut members: Vec<bangfu_shared::api::Member> = serde_json::from_str(&h.members)
            .map_err(|e| ApiError::Internal(format!("household {} members: {e}", h.id)))?;
        // A household from a ledger, which has no member columns, lists no one: its
        // head is one all the same, so the head's death applies and a birth makes two,
        // not a household of the baby alone (QA s29b J3).
        if members.is_empty() && !h.head_name.trim().is_empty() {
            members.push(bangfu_shared::api::Member {
                name: h.head_name.clone(),
                relation: "户主".into(),
                birth_year: None,
            });
        }
        let before = members.len() as i64;
        let head = next_head(&h, &members, &change, new_head.as_deref())?;
        match &replaces {
            Some(old) => apply_replacement(&mut members, &change, old)?,
            None => apply_member_change(&mut members, &change)?,
        }
        if let Some(head) = &head {
            make_head(&mut members, head)?;
        }
        // A size the ledger gave (more people than are named) moves by the change.
        let named = members.len() as i64;
        let size = h.size.map_or(named, |n| (n + named - before).max(named));
        let household_id = h.id;
        let mut active = h.into_active_model();
        if let Some(head) = &head {
            active.head_name = Set(head.clone());
            household_head_audit(&txn, caller, household_id, change.id).await?;
        }
        active.size = Set(Some(size));
        active.members =
            Set(serde_json::to_string(&members).map_err(|e| ApiError::Internal(e.to_string()))?);
        active.updated_at = Set(super::now());
        active.update(&txn).await?;
        // Last, after the household's row lock: see `bump_ledger`.
        bump_ledger(&txn, h_county).await?;
    }
    // The record comes again at its helper's next pull, with the decision and its note
    // (QA s29b J4). Drawn after every other lock, as `bump_ledger`'s number is.
    let seq = next_changes(&txn, 1).await?;
    record::Entity::update_many()
        .col_expr(record::Column::ChangeSeq, Expr::value(seq))
        .filter(record::Column::Id.eq(&change.record_id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        caller,
        audit::Entry::new(
            "field_change.decide",
            "field_change",
            Some(id),
            serde_json::json!({ "accept": accept, "replaces": replaces.as_ref().map(|o| o.id) }),
        ),
    )
    .await?;
    txn.commit().await?;
    let decided = field_change::Model {
        status: status.into(),
        note,
        decided_by,
        decided_at: Some(decided_at),
        ..change
    };
    let mut decided =
        [to_field_change(decided).ok_or_else(|| ApiError::Internal("field change id".into()))?];
    with_context(db, &mut decided).await?;
    let [decided] = decided;
    Ok(decided)
}

/// Applies an accepted family change to the household's members. A change that would
/// do nothing is refused rather than reported done: a newcomer already listed (accepted
/// twice, from a visit and its correction, say) or a leaver who is not a member (a
/// misspelt name) — the office then rejects it or corrects the ledger by hand.
///
/// The head of household the change leaves: `Some(new_head)` when the change takes the
/// head out (a death, a move or a marriage out), `None` when the head stays. Without a
/// new head such a change is refused: the household would go on under a dead person's
/// name on every sheet and report (QA s32d X4). The new head is named at the accept,
/// from the members, in the same step (QA s33c C2: renaming the head by a correction
/// first turned the old head's row into a second copy of the spouse).
fn next_head(
    h: &household::Model,
    members: &[bangfu_shared::api::Member],
    change: &field_change::Model,
    new_head: Option<&str>,
) -> ApiResult<Option<String>> {
    let removes = matches!(change.kind.as_str(), "death" | "move_out" | "marriage_out");
    let takes_the_head = removes && change.name.trim() == h.head_name.trim();
    match (takes_the_head, new_head) {
        (true, Some(head)) if head == change.name.trim() => Err(ApiError::Invalid(format!(
            "new_head: {head} is the one leaving; name a member who stays"
        ))),
        (true, Some(head)) => Ok(Some(head.to_string())),
        (true, None) => {
            let staying: Vec<&str> = members
                .iter()
                .map(|m| m.name.as_str())
                .filter(|n| *n != change.name)
                .collect();
            // A household of one: no one is left to head it, and the office takes it out
            // of pairing (exit) next (QA s33d S4: its death could never be accepted).
            if staying.is_empty() {
                return Ok(None);
            }
            Err(ApiError::Conflict(format!(
                "{} is the head of household {}: accept this change with new_head naming \
                 the member who heads the household now (one of: {}); it is still pending",
                change.name,
                h.id,
                staying.join(", ")
            )))
        }
        (false, Some(_)) => Err(ApiError::Invalid(format!(
            "new_head: only for a change that takes the head of household ({}) out",
            h.head_name
        ))),
        (false, None) => Ok(None),
    }
}

/// Makes member `head` the head of household (户主); refused if no member has the name,
/// unless the household lists no one else (a ledger's household, whose spreadsheet
/// names only its head): then the new head is listed as such.
fn make_head(members: &mut Vec<bangfu_shared::api::Member>, head: &str) -> ApiResult<()> {
    if members.is_empty() {
        members.push(bangfu_shared::api::Member {
            name: head.to_string(),
            relation: "户主".into(),
            birth_year: None,
        });
        return Ok(());
    }
    let Some(m) = members.iter_mut().find(|m| m.name == head) else {
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        return Err(ApiError::Invalid(format!(
            "new_head: {head} is not a member of the household (members: {}); accept a \
             marriage or move in first if they have just joined",
            names.join(", ")
        )));
    };
    m.relation = "户主".into();
    Ok(())
}

/// The audit entry of a head of household named at an accept: which change, not the
/// names (personal data, as a correction's entry keeps none).
async fn household_head_audit(
    txn: &impl ConnectionTrait,
    caller: &Caller,
    household_id: i64,
    change_id: i64,
) -> ApiResult<()> {
    let detail = serde_json::json!({ "fields": ["head_name"], "field_change": change_id });
    audit::record(
        txn,
        caller,
        audit::Entry::new(
            "household.new_head",
            "household",
            Some(household_id),
            detail,
        ),
    )
    .await
}

fn apply_member_change(
    members: &mut Vec<bangfu_shared::api::Member>,
    change: &field_change::Model,
) -> ApiResult<()> {
    let listed = members.iter().any(|m| m.name == change.name);
    match change.kind.as_str() {
        "birth" | "move_in" | "marriage_in" if listed => Err(ApiError::Conflict(format!(
            "{} is already a member of the household: reject this change, or correct the \
             ledger if this is another person of the same name",
            change.name
        ))),
        "birth" | "move_in" | "marriage_in" => {
            members.push(bangfu_shared::api::Member {
                name: change.name.clone(),
                relation: relation_for(&change.kind).into(),
                birth_year: None,
            });
            Ok(())
        }
        _ if !listed => Err(ApiError::Conflict(format!(
            "{} is not a member of the household: reject this change, or correct the ledger",
            change.name
        ))),
        _ => {
            members.retain(|m| m.name != change.name);
            Ok(())
        }
    }
}

/// Applies an accepted change that takes the place of `old`, accepted earlier on the
/// same visit (QA s33c C1): a newcomer renames the member `old` added (keeping their
/// relation and birth year) rather than adding a second person; a departure gives back
/// the member `old` took out, then takes out the one named now.
fn apply_replacement(
    members: &mut Vec<bangfu_shared::api::Member>,
    change: &field_change::Model,
    old: &field_change::Model,
) -> ApiResult<()> {
    let joins = matches!(change.kind.as_str(), "birth" | "move_in" | "marriage_in");
    let renamed = members.iter().position(|m| m.name == old.name);
    match (joins, renamed) {
        (true, Some(i)) if !members.iter().any(|m| m.name == change.name) => {
            members[i].name = change.name.clone();
            Ok(())
        }
        (true, _) => apply_member_change(members, change),
        (false, _) => {
            apply_member_change(members, change)?;
            if !members.iter().any(|m| m.name == old.name) {
                members.push(bangfu_shared::api::Member {
                    name: old.name.clone(),
                    relation: "家庭成员".into(),
                    birth_year: None,
                });
            }
            Ok(())
        }
    }
}

/// The decided family changes of the records `ids`, by record, in the order proposed.
async fn decided_changes(
    db: &impl ConnectionTrait,
    ids: &[String],
) -> ApiResult<HashMap<String, Vec<bangfu_shared::sync::DecidedChange>>> {
    let mut out: HashMap<String, Vec<bangfu_shared::sync::DecidedChange>> = HashMap::new();
    for chunk in ids.chunks(crate::db::IN_CHUNK) {
        for c in field_change::Entity::find()
            .filter(field_change::Column::RecordId.is_in(chunk.to_vec()))
            .filter(field_change::Column::Status.ne("pending"))
            .order_by_asc(field_change::Column::Id)
            .all(db)
            .await?
        {
            out.entry(c.record_id.clone())
                .or_default()
                .push(bangfu_shared::sync::DecidedChange {
                    kind: c.kind,
                    name: c.name,
                    status: c.status,
                    note: c.note,
                });
        }
    }
    Ok(out)
}

/// The answer to a decision on a change that is no longer pending.
fn already_decided(status: &str) -> ApiError {
    ApiError::Conflict(format!("this change was already {status}"))
}

fn relation_for(kind: &str) -> &'static str {
    match kind {
        "birth" => "子女",
        "marriage_in" => "配偶",
        _ => "家庭成员",
    }
}

/// A blob's bytes, if a record in the caller's scope uses it and that record's account
/// sent the server those bytes, or the caller sent them (see [`uploads::senders`]).
///
/// A record naming a file proves nothing about who holds it: the hash is all a record
/// carries, and hashes are seen on every record a helper or office can read. Without the
/// second condition, any helper could read any file whose hash they had seen (a visit
/// of theirs naming it), a household's photos long after their pairing ended included.
/// A helper's households are those of their device list: one whose pairing ended within
/// the last quarter stays on the second helper's sheet, its photos the evidence to sign.
/// A record naming a file: its household, the account that sent it, its author
/// helper, when the visit was and when the device made the record.
type BlobUse = (
    i64,
    i64,
    i64,
    Option<chrono::DateTime<chrono::Utc>>,
    chrono::DateTime<chrono::Utc>,
);

/// Whether the caller may see a record naming the file: an office one of its scope's
/// households'; a helper their own, or one of a household of their device list dated
/// while they were paired with it (a second helper reads the evidence of their sheet,
/// not the visits before they took the household over, nor after they left it).
async fn blob_use_visible(
    db: &impl ConnectionTrait,
    caller: &Caller,
    uses: &[BlobUse],
) -> ApiResult<bool> {
    let households: Vec<i64> = uses.iter().map(|u| u.0).collect();
    let in_scope: HashSet<i64> = household::Entity::find()
        .select_only()
        .column(household::Column::Id)
        .filter(
            caller
                .scope()
                .device_households()
                .add(household::Column::Id.is_in(households.clone())),
        )
        .into_tuple::<i64>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let helper = match (caller.role.is_helper(), caller.helper_id) {
        (false, _) => return Ok(uses.iter().any(|u| in_scope.contains(&u.0))),
        (true, None) => return Ok(false),
        (true, Some(h)) => h,
    };
    let pairings = pairing::Entity::find()
        .filter(pairing::Column::HelperId.eq(helper))
        .filter(pairing::Column::HouseholdId.is_in(households))
        .all(db)
        .await?;
    Ok(uses.iter().filter(|u| in_scope.contains(&u.0)).any(|u| {
        let day = super::facts::local_date(u.3.unwrap_or(u.4));
        u.2 == helper
            || pairings.iter().any(|p| {
                p.household_id == u.0 && p.valid_from <= day && p.valid_to.is_none_or(|to| day < to)
            })
    }))
}

pub async fn blob_for(
    db: &DatabaseConnection,
    store: &std::sync::Arc<dyn crate::storage::BlobStore>,
    caller: &Caller,
    sha256: &str,
) -> ApiResult<(Vec<u8>, String)> {
    let b = blob::Entity::find_by_id(sha256.to_string())
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("file"))?;
    let users: Vec<String> = record_blob::Entity::find()
        .filter(record_blob::Column::Sha256.eq(sha256))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.record_id)
        .collect();
    let uses: Vec<BlobUse> = record::Entity::find()
        .select_only()
        .columns([
            record::Column::HouseholdId,
            record::Column::AccountId,
            record::Column::AuthorHelperId,
            record::Column::VisitAt,
            record::Column::CreatedAtDevice,
        ])
        .filter(record::Column::Id.is_in(users))
        .into_tuple()
        .all(db)
        .await?;
    let mut accounts: Vec<i64> = uses.iter().map(|u| u.1).collect();
    accounts.extend(caller.account_id);
    let senders = super::uploads::senders(db, sha256, &accounts).await?;
    let uses: Vec<BlobUse> = uses
        .into_iter()
        .filter(|u| senders.contains(&u.1))
        .collect();
    let visible = !uses.is_empty() && blob_use_visible(db, caller, &uses).await?;
    let own = caller.account_id.is_some_and(|a| senders.contains(&a));
    if !visible && !own {
        return Err(ApiError::NotFound("file"));
    }
    let damage = match store.read_blob(sha256).await {
        Ok(bytes)
            if bytes.len() as i64 == b.size
                && bangfu_shared::visit::sha256_hex(&bytes) == sha256 =>
        {
            return Ok((bytes, b.content_type));
        }
        Ok(bytes) => format!(
            "{} bytes of {} whose SHA-256 is not its name",
            bytes.len(),
            b.size
        ),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData
            ) =>
        {
            e.to_string()
        }
        Err(e) => {
            return Err(crate::error::storage_failure(
                e,
                &format!("reading file {sha256}"),
            ));
        }
    };
    tracing::error!(
        file = sha256,
        damage,
        "a stored file is missing or damaged: forgotten, its uploader's device is asked for it again"
    );
    store
        .set_aside(sha256)
        .await
        .map_err(|e| crate::error::storage_failure(e, &format!("setting file {sha256} aside")))?;
    file_lost(db, sha256).await?;
    Err(ApiError::FileLost)
}

/// Forgets a stored file found missing or damaged, so it can be had again: its blob row
/// goes (a new upload of it is then a plain upload, not "already held"), and the records
/// that refer to it wait for it again (`awaiting_photos`, their visits not counted
/// meanwhile), renumbered so their devices' next pull says so and the device that holds
/// the file sends it again.
async fn file_lost(db: &DatabaseConnection, sha256: &str) -> ApiResult<()> {
    let (_gate, txn) = crate::db::begin_write(db).await?;
    let referring: Vec<String> = record_blob::Entity::find()
        .filter(record_blob::Column::Sha256.eq(sha256))
        .all(&txn)
        .await?
        .into_iter()
        .map(|l| l.record_id)
        .collect();
    blob::Entity::delete_by_id(sha256.to_string())
        .exec(&txn)
        .await?;
    let accepted: Vec<String> = record::Entity::find()
        .select_only()
        .column(record::Column::Id)
        .filter(record::Column::Id.is_in(referring))
        .filter(record::Column::Status.eq(ACCEPTED))
        .into_tuple()
        .all(&txn)
        .await?;
    if !accepted.is_empty() {
        record::Entity::update_many()
            .col_expr(record::Column::Status, Expr::value(AWAITING))
            .filter(record::Column::Id.is_in(accepted.clone()))
            .exec(&txn)
            .await?;
        renumber(&txn, &accepted).await?;
        visit_fact::Entity::update_many()
            .col_expr(visit_fact::Column::PhotosComplete, Expr::value(false))
            .filter(visit_fact::Column::RecordId.is_in(accepted))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QA s28b F7: a record that does not validate is said invalid once, whatever the
    /// error's own words (`invalid record: invalid record: …` was sent to devices).
    #[test]
    fn an_invalid_record_is_said_invalid_once() {
        let errors = [
            VisitError::Invalid("a void needs its target".into()),
            VisitError::OutOfYears {
                what: "the visit time",
                china: "2101-01-01 00:30:00".into(),
                first: 2000,
                last: 2100,
            },
            VisitError::MissingHouseholdSignature,
        ];
        for e in errors {
            let reason = invalid(e).reason;
            assert_eq!(reason.matches("invalid record").count(), 1, "{reason}");
        }
    }
}
