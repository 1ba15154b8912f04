//! Sync bookkeeping in the local store: which records still go to the server, what the
//! server answered for each, the tus upload URLs of files being sent, the pull cursor,
//! and records received by pull.
//!
//! Every change the sync engine makes is one of these functions and one transaction,
//! so a process killed at any instant leaves the store consistent and the next sync
//! resumes: a record is `uploading` until its acknowledgement is stored, an upload URL
//! is kept until the file is complete, and the pull cursor advances in the same
//! transaction as the records and households of its page.

use bangfu_shared::sync::{Ack, AckStatus, PullResponse, ServerRecord, reason_code};
use bangfu_shared::visit::utc_seconds;
use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use serde::Serialize;
use uuid::Uuid;

use super::queries::{
    RECORD_COLS, SyncState, get_meta, parse_json, record_from_row, set_meta, to_json,
};
use super::{Store, StoredRecord, stmt};
use crate::error::Result;
use crate::problem::Problem;

/// SQL true when the record `r`, waiting for photos, has a later version of its visit
/// (an amendment or the void) on the server. Why (QA s22a F2): a photo damaged on the
/// device can never be sent, and the advice is to void or amend the visit; once that is
/// done, sending the old version again every sync and reporting its photo kept every
/// sync unfinished for ever. The server judges the visit by its latest version.
pub fn photos_moot(r: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM records later \
         WHERE later.target_id = COALESCE({r}.target_id, {r}.id) AND later.id > {r}.id \
         AND later.sync_state IN ('synced', 'awaiting_photos'))"
    )
}

/// How many records are in each sync state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyncCounts {
    pub local: u64,
    pub uploading: u64,
    /// This device's records the server holds without all their photos.
    pub awaiting_photos: u64,
    /// Records of another device of this account (history recovered by pull) that the
    /// server holds without all their photos: only that device has them, so no sync
    /// from here can finish them, and they do not keep this device's sync unfinished.
    pub awaiting_other_device: u64,
    /// This device's records the server holds without all their photos, of a visit
    /// since voided or amended on the server ([`photos_moot`]): nothing waits on those
    /// photos any more, so they are not sent and do not keep the sync unfinished.
    pub awaiting_superseded: u64,
    pub synced: u64,
    pub rejected: u64,
    pub conflict: u64,
}

impl SyncCounts {
    /// This device's records not yet synced (including refused ones).
    pub fn unsynced(&self) -> u64 {
        self.local + self.uploading + self.awaiting_photos + self.rejected + self.conflict
    }
}

/// What one pull page changed on the device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PullApplied {
    /// Records the device did not have, now stored as the server holds them.
    pub imported: u64,
    /// Records the device had whose sync state the server's copy updated.
    pub updated: u64,
    /// Records that came with a town-office review note the device did not hold.
    pub reviews_received: Vec<Uuid>,
    /// Decisions on family changes this device proposed that it did not hold: accepted
    /// and not accepted (the office's note may ask for a paper; QA s30a L6).
    pub decisions_received: DecisionsReceived,
    /// Records waiting in the inbox for the visit they amend or void.
    pub waiting: u64,
    /// The page carried the households, pairings and policy.
    pub households: bool,
    /// Records of the device held whole by the server before that now wait for files
    /// again (the server found its copy of one missing or damaged).
    pub asked_again: u64,
    /// Records that could not be stored, with the reason.
    pub problems: Vec<Problem>,
}

/// How many of the town office's decisions on this device's family changes a pull
/// brought (a change its helper withdrew is no news to them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DecisionsReceived {
    pub accepted: u64,
    pub rejected: u64,
}

impl DecisionsReceived {
    pub fn add(&mut self, other: DecisionsReceived) {
        self.accepted += other.accepted;
        self.rejected += other.rejected;
    }

    pub fn total(&self) -> u64 {
        self.accepted + self.rejected
    }
}

/// The local state an acknowledgement puts a record in.
pub fn state_of(status: AckStatus) -> SyncState {
    match status {
        AckStatus::Accepted => SyncState::Synced,
        AckStatus::AwaitingPhotos => SyncState::AwaitingPhotos,
        AckStatus::Rejected => SyncState::Rejected,
        AckStatus::Conflict => SyncState::Conflict,
    }
}

/// Why the server refused a record: its English words and its stable code
/// (`Ack::reason_code`; `None` from servers before it).
#[derive(Debug, Clone, Copy, Default)]
struct Why<'a> {
    reason: Option<&'a str>,
    code: Option<&'a str>,
}

/// Sets a record's sync state (on `db`, the caller's transaction).
async fn set_state(
    db: &impl ConnectionTrait,
    id: &str,
    state: SyncState,
    why: Why<'_>,
    missing: &[String],
    flags: &[String],
) -> Result<()> {
    let now = utc_seconds::format(&Utc::now());
    let sql = "UPDATE records SET sync_state = ?, sync_reason = ?, sync_reason_code = ?, sync_missing = ?, sync_flags = ?, \
               synced_at = CASE WHEN ? = 'synced' THEN COALESCE(synced_at, ?) ELSE synced_at END WHERE id = ?";
    let values = [
        state.code().into(),
        why.reason.map(str::to_string).into(),
        why.code.map(str::to_string).into(),
        to_json(&missing)?.into(),
        to_json(&flags)?.into(),
        state.code().into(),
        now.into(),
        id.into(),
    ];
    db.execute_raw(stmt(sql, values)).await?;
    Ok(())
}

/// Keeps the town office's decisions on the family changes a pulled record proposed.
/// Returns the decisions the device did not hold before.
async fn set_family_decisions(
    db: &impl ConnectionTrait,
    id: &str,
    decided: &[bangfu_shared::sync::DecidedChange],
) -> Result<DecisionsReceived> {
    let held: Vec<bangfu_shared::sync::DecidedChange> = db
        .query_one_raw(stmt(
            "SELECT family_decisions FROM records WHERE id = ?",
            vec![id.into()],
        ))
        .await?
        .map(|r| r.try_get_by_index::<String>(0))
        .transpose()?
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    let mut news = DecisionsReceived::default();
    for d in decided.iter().filter(|d| !held.contains(d)) {
        match d.status.as_str() {
            "accepted" => news.accepted += 1,
            "rejected" => news.rejected += 1,
            _ => {}
        }
    }
    let json = serde_json::to_string(decided).map_err(super::queries::corrupt)?;
    let sql = "UPDATE records SET family_decisions = ? WHERE id = ?";
    db.execute_raw(stmt(sql, vec![json.into(), id.into()]))
        .await?;
    Ok(news)
}

/// Keeps the town office's review note of a pulled record (`None` clears it). Returns
/// whether a note the device did not hold arrived (new, or reworded): the sync report
/// tells the helper, who would otherwise find it only by opening the history.
async fn set_review(db: &impl ConnectionTrait, id: &str, review: Option<&str>) -> Result<bool> {
    // `IS NOT` compares NULLs too: an unchanged note (or none again) updates nothing.
    let sql = "UPDATE records SET review_note = ? WHERE id = ? AND review_note IS NOT ?";
    let note = review.map(str::to_string);
    let values = [note.clone().into(), id.into(), note.into()];
    let changed = db.execute_raw(stmt(sql, values)).await?.rows_affected() > 0;
    Ok(changed && review.is_some())
}

async fn exists(db: &impl ConnectionTrait, sql: &str, values: Vec<sea_orm::Value>) -> Result<bool> {
    Ok(db.query_one_raw(stmt(sql, values)).await?.is_some())
}

impl Store {
    /// Records of `device_id` the server has not acknowledged for good, in chain order:
    /// local, uploading (sent, answer unknown) and awaiting photos; with
    /// `retry_rejected` also rejected and conflicting ones.
    pub async fn records_to_push(
        &self,
        device_id: i64,
        retry_rejected: bool,
    ) -> Result<Vec<StoredRecord>> {
        let states = if retry_rejected {
            "'local', 'uploading', 'awaiting_photos', 'rejected', 'conflict'"
        } else {
            "'local', 'uploading', 'awaiting_photos'"
        };
        let sql = format!(
            "SELECT {RECORD_COLS} FROM records r WHERE r.device_id = ? AND r.sync_state IN ({states}) \
             AND NOT (r.sync_state = 'awaiting_photos' AND {}) ORDER BY r.seq",
            photos_moot("r")
        );
        let rows = self
            .db
            .query_all_raw(stmt(&sql, [device_id.into()]))
            .await?;
        rows.iter().map(|r| record_from_row(r, 0)).collect()
    }

    /// Takes every record of `device_id` the server held (synced, awaiting photos) as
    /// sent without an answer (`uploading`): after the server's database was restored
    /// from an older backup, a pull from the start settles those it holds, and the rest
    /// are sent again. Returns how many.
    pub async fn unconfirm_own(&self, device_id: i64) -> Result<u64> {
        let done = self
            .db
            .execute_raw(stmt(
                "UPDATE records SET sync_state = 'uploading' \
                 WHERE device_id = ? AND sync_state IN ('synced', 'awaiting_photos')",
                [device_id.into()],
            ))
            .await?;
        Ok(done.rows_affected())
    }

    /// Marks local records as sent (`uploading`) before their batch goes out, in one
    /// transaction.
    pub async fn mark_uploading(&self, ids: &[Uuid]) -> Result<()> {
        let txn = self.begin_write().await?;
        for id in ids {
            txn.execute_raw(stmt(
                "UPDATE records SET sync_state = 'uploading' WHERE id = ? AND sync_state = 'local'",
                [id.to_string().into()],
            ))
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Puts records marked `uploading` back to `local` when their push failed (the
    /// next sync sends them either way; the list should not claim they are on the way).
    pub async fn unmark_uploading(&self, ids: &[Uuid]) -> Result<()> {
        let txn = self.begin_write().await?;
        for id in ids {
            txn.execute_raw(stmt(
                "UPDATE records SET sync_state = 'local' WHERE id = ? AND sync_state = 'uploading'",
                [id.to_string().into()],
            ))
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Stores the server's answers for a pushed batch, in one transaction.
    pub async fn apply_acks(&self, acks: &[Ack]) -> Result<()> {
        let txn = self.begin_write().await?;
        for ack in acks {
            // "Not processed" is no answer about the record: it goes back to `local`
            // and is pushed again at the next sync, like one whose push failed.
            let state = if ack.reason_code.as_deref() == Some(reason_code::NOT_PROCESSED) {
                SyncState::Local
            } else {
                state_of(ack.status)
            };
            let why = if state.is_refused() {
                Why {
                    reason: ack.reason.as_deref(),
                    code: ack.reason_code.as_deref(),
                }
            } else {
                Why::default()
            };
            set_state(
                &txn,
                &ack.id.to_string(),
                state,
                why,
                &ack.missing_blobs,
                &ack.flags,
            )
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Marks an image the sync could not upload (missing or altered on the device, or
    /// refused by the server), or clears the mark once it uploaded (`unusable` false): a
    /// visit not yet on the server whole that needs a marked image does not count
    /// (QA s23a F4: it read 本期已完成 while the server never counted it).
    pub async fn mark_image(&self, sha256: &str, unusable: bool) -> Result<()> {
        let since = unusable.then(|| utc_seconds::format(&Utc::now()));
        self.db
            .execute_raw(stmt(
                "UPDATE files SET unusable_since = ? WHERE sha256 = ?",
                [since.into(), sha256.into()],
            ))
            .await?;
        Ok(())
    }

    /// The files the server said a record still lacks (its last acknowledgement).
    pub async fn missing_files(&self, id: Uuid) -> Result<Vec<String>> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT sync_missing FROM records WHERE id = ?",
                [id.to_string().into()],
            ))
            .await?;
        match row {
            Some(r) => parse_json(&r.try_get_by_index::<String>(0)?),
            None => Ok(Vec::new()),
        }
    }

    /// The tus upload URL saved for a file, if an upload of it was started.
    pub async fn upload_url(&self, sha256: &str) -> Result<Option<String>> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT url FROM uploads WHERE sha256 = ?",
                [sha256.into()],
            ))
            .await?;
        Ok(row.map(|r| r.try_get_by_index::<String>(0)).transpose()?)
    }

    /// Remembers the tus upload URL of a file.
    pub async fn save_upload(&self, sha256: &str, url: &str, length: u64) -> Result<()> {
        let sql = "INSERT INTO uploads (sha256, url, length, created_at) VALUES (?, ?, ?, ?) \
                   ON CONFLICT (sha256) DO UPDATE SET url = excluded.url, length = excluded.length, created_at = excluded.created_at";
        let values = [
            sha256.into(),
            url.into(),
            (length.min(i64::MAX as u64) as i64).into(),
            utc_seconds::format(&Utc::now()).into(),
        ];
        self.db.execute_raw(stmt(sql, values)).await?;
        Ok(())
    }

    /// Forgets a file's upload URL (complete, or gone from the server).
    pub async fn forget_upload(&self, sha256: &str) -> Result<()> {
        self.db
            .execute_raw(stmt(
                "DELETE FROM uploads WHERE sha256 = ?",
                [sha256.into()],
            ))
            .await?;
        Ok(())
    }

    /// The cursor of the last pull page stored (0 before the first pull).
    pub async fn pull_cursor(&self) -> Result<i64> {
        Ok(get_meta(&self.db, "sync_cursor").await?.unwrap_or(0))
    }

    /// Number of records in each sync state.
    pub async fn sync_counts(&self) -> Result<SyncCounts> {
        let device = self.identity().await?.map_or(-1, |i| i.device_id);
        let rows = self
            .db
            .query_all_raw(stmt(
                &format!(
                    "SELECT r.sync_state, r.device_id = ?, \
                     r.sync_state = 'awaiting_photos' AND {}, COUNT(*) \
                     FROM records r GROUP BY 1, 2, 3",
                    photos_moot("r")
                ),
                [device.into()],
            ))
            .await?;
        let mut c = SyncCounts::default();
        for r in rows {
            let mine = r.try_get_by_index::<bool>(1)?;
            let moot = r.try_get_by_index::<bool>(2)?;
            let n = r.try_get_by_index::<i64>(3)?.max(0) as u64;
            match SyncState::parse(&r.try_get_by_index::<String>(0)?)? {
                SyncState::Local => c.local += n,
                SyncState::Uploading => c.uploading += n,
                SyncState::AwaitingPhotos if mine && moot => c.awaiting_superseded += n,
                SyncState::AwaitingPhotos if mine => c.awaiting_photos += n,
                SyncState::AwaitingPhotos => c.awaiting_other_device += n,
                SyncState::Synced => c.synced += n,
                SyncState::Rejected => c.rejected += n,
                SyncState::Conflict => c.conflict += n,
            }
        }
        Ok(c)
    }

    /// The images of records the server holds whole (`synced`), with the size the
    /// device registered for each: a sync fetches back any whose file was lost from the
    /// device since ([`crate::photos::PhotoStore::holds`]), so amending such a visit
    /// does not ask for new photos (QA s23d F9).
    pub async fn synced_images(&self) -> Result<Vec<(String, u64)>> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT DISTINCT rf.sha256, f.bytes FROM record_files rf \
                 JOIN records r ON r.id = rf.record_id JOIN files f ON f.sha256 = rf.sha256 \
                 WHERE r.sync_state = 'synced' ORDER BY rf.sha256",
                [],
            ))
            .await?;
        rows.iter()
            .map(|r| {
                let bytes: i64 = r.try_get_by_index(1)?;
                Ok((
                    r.try_get_by_index::<String>(0)?,
                    bytes.max(0).unsigned_abs(),
                ))
            })
            .collect()
    }

    /// Images records refer to that are not on the device (history recovered by pull
    /// before its photos were downloaded).
    pub async fn missing_images(&self) -> Result<Vec<String>> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT DISTINCT rf.sha256 FROM record_files rf LEFT JOIN files f ON f.sha256 = rf.sha256 \
                 WHERE f.sha256 IS NULL ORDER BY rf.sha256",
                [],
            ))
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get_by_index::<String>(0)?))
            .collect()
    }

    /// Stores one pull page in one transaction: households, pairings and policy when
    /// the page carries them, the records (new ones imported as the server holds them,
    /// known ones updated), and the cursor. A record whose original visit has not
    /// arrived waits in the inbox and is retried with every later page.
    pub async fn apply_pull_page(&self, page: &PullResponse) -> Result<PullApplied> {
        let txn = self.begin_write().await?;
        let mut out = PullApplied::default();
        if let Some(households) = &page.households {
            let today = crate::client::today(Utc::now());
            let identity: Option<super::Identity> = get_meta(&txn, "identity").await?;
            let helper_id = identity.and_then(|i| i.helper).map(|h| h.id);
            Self::replace_households(&txn, households, helper_id, today).await?;
            set_meta(&txn, "snapshot_at", &Utc::now()).await?;
            out.households = true;
        }
        if let Some(policy) = &page.policy {
            set_meta(&txn, "policy", policy).await?;
            set_meta(&txn, "evidence_history", &page.evidence_history).await?;
            set_meta(&txn, "exit_cuts_history", &page.exit_cuts_history).await?;
            set_meta(&txn, "visits_history", &page.visits_history).await?;
        }
        if Self::forked(&txn, page).await? {
            set_meta(&txn, "device_forked", &true).await?;
        }
        let now = utc_seconds::format(&Utc::now());
        for r in &page.records {
            let sql = "INSERT INTO pull_inbox (id, server_json, received_at) VALUES (?, ?, ?) \
                       ON CONFLICT (id) DO UPDATE SET server_json = excluded.server_json, received_at = excluded.received_at";
            txn.execute_raw(stmt(
                sql,
                [
                    r.signed.record.id.to_string().into(),
                    to_json(r)?.into(),
                    now.clone().into(),
                ],
            ))
            .await?;
        }
        set_meta(&txn, "sync_cursor", &page.cursor).await?;
        Self::drain_inbox(&txn, &mut out).await?;
        txn.commit().await?;
        Ok(out)
    }

    /// Whether `page` holds a record signed by this data directory's device key that the
    /// directory does not: the directory is a copy, and its chain forked (QA s31b R1).
    async fn forked(txn: &DatabaseTransaction, page: &PullResponse) -> Result<bool> {
        let identity: Option<super::Identity> = get_meta(txn, "identity").await?;
        let Some(device) = identity.map(|i| i.device_id) else {
            return Ok(false);
        };
        // One query for the page (at most 1,000 records; SQLite takes 32,766 values).
        let own: std::collections::BTreeSet<String> = page
            .records
            .iter()
            .filter(|r| r.signed.record.device_id == device)
            .map(|r| r.signed.record.id.to_string())
            .collect();
        if own.is_empty() {
            return Ok(false);
        }
        let marks = vec!["?"; own.len()].join(",");
        let sql = format!("SELECT COUNT(*) FROM records WHERE id IN ({marks})");
        let asked = own.len();
        let row = txn
            .query_one_raw(stmt(&sql, own.into_iter().map(Into::into)))
            .await?;
        let held = row.map(|r| r.try_get_by_index::<i64>(0)).transpose()?;
        Ok(held.and_then(|n| usize::try_from(n).ok()) != Some(asked))
    }

    /// Stores what the inbox can, oldest first; repeats while a pass makes progress
    /// (an amendment waits for its visit). Each record is stored under a savepoint, so
    /// one the device cannot take is rolled back without undoing the rest. A record
    /// that cannot be stored stays in the inbox and is reported by every sync, once
    /// each, until it can be (an update, a repaired store): never reported once and
    /// forgotten.
    async fn drain_inbox(txn: &DatabaseTransaction, out: &mut PullApplied) -> Result<()> {
        // Each pass meets a stuck record again: said once per drain.
        let before = out.problems.len();
        Self::drain_passes(txn, out).await?;
        let found = out.problems.split_off(before);
        let mut seen = std::collections::HashSet::new();
        out.problems
            .extend(found.into_iter().filter(|p| seen.insert(p.clone())));
        Ok(())
    }

    async fn drain_passes(txn: &DatabaseTransaction, out: &mut PullApplied) -> Result<()> {
        loop {
            let rows = txn
                .query_all_raw(stmt("SELECT id, server_json FROM pull_inbox", []))
                .await?;
            let mut items = Vec::new();
            for r in &rows {
                let id: String = r.try_get_by_index(0)?;
                match serde_json::from_str::<ServerRecord>(&r.try_get_by_index::<String>(1)?) {
                    Ok(sr) => items.push((id, sr)),
                    Err(e) => out.problems.push(Problem::RecordUnreadable {
                        id: id.clone(),
                        detail: e.to_string(),
                    }),
                }
            }
            items.sort_by_key(|(_, sr)| {
                let e = &sr.signed.record;
                (e.created_at, e.device_id, e.seq)
            });
            let mut progressed = false;
            for (id, sr) in &items {
                let savepoint = txn.begin().await?;
                let done = match import_one(&savepoint, sr, out).await {
                    Ok(done) => {
                        savepoint.commit().await?;
                        done
                    }
                    Err(e) => {
                        savepoint.rollback().await?;
                        out.problems.push(Problem::RecordNotStored {
                            id: id.clone(),
                            detail: e.to_string(),
                        });
                        false
                    }
                };
                if done {
                    delete_inbox(txn, id).await?;
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        let row = txn
            .query_one_raw(stmt("SELECT COUNT(*) FROM pull_inbox", []))
            .await?;
        out.waiting = row
            .map(|r| r.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0)
            .max(0) as u64;
        Ok(())
    }
}

async fn delete_inbox(db: &impl ConnectionTrait, id: &str) -> Result<()> {
    db.execute_raw(stmt("DELETE FROM pull_inbox WHERE id = ?", [id.into()]))
        .await?;
    Ok(())
}

/// How many records under one device and number a store keeps beyond the device's own.
pub const MAX_SEQUENCE_COPIES: i64 = 16;

/// The row columns for records of `device` under numbers already held here: negative,
/// so no device's own chain (positive ids) ever sees them; the first is `-device`, as
/// earlier versions stored the second copy.
fn shadow_columns(device: i64) -> impl Iterator<Item = i64> {
    (0..MAX_SEQUENCE_COPIES).map(move |n| -(device.saturating_add(n << 40)))
}

/// Stores one inbox record if it can be; `Ok(false)` when it must wait.
pub(crate) async fn import_one(
    db: &impl ConnectionTrait,
    sr: &ServerRecord,
    out: &mut PullApplied,
) -> Result<bool> {
    let env = &sr.signed.record;
    let id = env.id.to_string();
    let state = state_of(sr.status);
    // The server accepted it, so a record this version cannot read is from a newer
    // client (a later format): it stays in the inbox, where an updated app finds it,
    // rather than being dropped while the cursor moves past it for good.
    let sha = match env.validate().and_then(|()| env.record_sha256()) {
        Ok(sha) => sha,
        Err(e) => {
            out.problems.push(Problem::RecordNewerFormat {
                id: env.id,
                detail: e.to_string(),
            });
            return Ok(false);
        }
    };
    let local = db
        .query_one_raw(stmt(
            "SELECT sha256, sync_state FROM records WHERE id = ?",
            [id.clone().into()],
        ))
        .await?
        .map(|r| {
            Ok::<_, sea_orm::DbErr>((
                r.try_get_by_index::<String>(0)?,
                r.try_get_by_index::<String>(1)?,
            ))
        })
        .transpose()?;
    match local {
        Some((local_sha, was)) if local_sha == sha => {
            // Held whole once, waiting for files again: the server lost its copy of
            // one, and this device (if it took it) is to send it again.
            if was == SyncState::Synced.code() && state == SyncState::AwaitingPhotos {
                out.asked_again += 1;
            }
            set_state(db, &id, state, Why::default(), &sr.missing_blobs, &sr.flags).await?;
            let news = set_family_decisions(db, &id, &sr.family_changes).await?;
            out.decisions_received.add(news);
            if set_review(db, &id, sr.review.as_deref()).await? {
                out.reviews_received.push(env.id);
            }
            out.updated += 1;
            return Ok(true);
        }
        Some(_) => {
            let reason =
                "the server holds a different record under this id; it was not overwritten";
            let why = Why {
                reason: Some(reason),
                code: Some(bangfu_shared::sync::reason_code::CONFLICT),
            };
            set_state(db, &id, SyncState::Conflict, why, &[], &[]).await?;
            out.problems.push(Problem::RecordConflict { id: env.id });
            return Ok(true);
        }
        None => {}
    }
    if let Some(target) = env.target_id
        && !exists(
            db,
            "SELECT 1 FROM records WHERE id = ?",
            vec![target.to_string().into()],
        )
        .await?
    {
        return Ok(false);
    }
    let taken = |device: i64| {
        exists(
            db,
            "SELECT 1 FROM records WHERE device_id = ? AND seq = ?",
            vec![device.into(), env.seq.into()],
        )
    };
    // Another record under a number this store holds: a copy of this data directory (a
    // restored backup, say) signed it. The server stores and counts it (flagged
    // `seq_reused`), so it is kept here too, its row under the negated device id: the
    // store's one record per (device, number) holds, and this device's own chain and
    // numbering never see it (QA s22d F1: refused, it was never shown, and every sync
    // reported it again).
    // Each further copy goes under its own negative column (QA s25a F5: a third under
    // one number stayed unshown and was reported at every sync).
    let mut device_column = None;
    for column in std::iter::once(env.device_id).chain(shadow_columns(env.device_id)) {
        if !taken(column).await? {
            device_column = Some(column);
            break;
        }
    }
    let Some(device_column) = device_column else {
        out.problems.push(Problem::SequenceTaken {
            id: env.id,
            device_id: env.device_id,
            seq: env.seq,
        });
        return Ok(false);
    };
    Store::append_under(db, &sr.signed, device_column).await?;
    set_state(db, &id, state, Why::default(), &sr.missing_blobs, &sr.flags).await?;
    set_family_decisions(db, &id, &sr.family_changes).await?;
    if set_review(db, &id, sr.review.as_deref()).await? {
        out.reviews_received.push(env.id);
    }
    out.imported += 1;
    Ok(true)
}
