//! The sync engine: every record this device signed, and every photo and signature
//! image they name, reaches the server exactly once; what the server holds for this
//! account (households, pairings, policy, and the helper's own records) comes back.
//! No UI here: the `bangfu sync` command and the TUI drive [`run`] and listen to its
//! [`SyncProgress`]. The protocol is `docs/sync-protocol.md`.
//!
//! One run, in order:
//! 1. **Push** the device's records the server has not acknowledged for good (local,
//!    uploading, awaiting photos), oldest first, in batches (halved after a failure in
//!    transit, so a weak link that cannot carry a whole batch still moves; see
//!    [`BatchSizer`]). Each batch is marked
//!    `uploading` in one transaction before it is sent (and put back to `local` if the
//!    push fails), and the acknowledgements are stored in one transaction when they
//!    come: `synced`, `awaiting_photos` (with the files the server lacks), `rejected`
//!    or `conflict` (with the server's reason).
//! 2. **Upload** the files the awaiting records lack, over tus with resume
//!    ([`upload`]).
//! 3. **Confirm**: push the awaiting records again; the server now answers `accepted`.
//! 4. **Pull** from the saved cursor until the server has nothing more: households,
//!    pairings and policy when the ledger changed; the account's records — those the
//!    device lacks are stored as synced (a reinstalled device recovers its history).
//! 5. **Sheets** (a second helper only): send the signed attendance-sheet submissions
//!    waiting on the device (each answer — the version the server froze, or its refusal
//!    — stored as it comes; one sent before without a stored answer is first compared
//!    with the server's latest version), then fetch this and the previous quarter's sheet (附件3) so
//!    it can be reviewed offline.
//! 6. **Download** the images of recovered records that are not on the device.
//!
//! Safe to kill at any instant: each step's effect is one store transaction, and a
//! new run starts again from what the store says (records still `uploading` are sent
//! again — the server answers a record it holds exactly as before — and an upload
//! continues from the server's offset). Transient failures are retried with backoff
//! ([`retry`]); a final answer is never retried, and an expired session stops the run.
//! A final answer about one file (an upload refused, a download that is not an image)
//! stops only that file: it becomes one of the report's `problems`, its records keep
//! their state, and the run goes on, so one bad photo never blocks every later sync.

pub mod retry;
pub mod upload;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bangfu_shared::Role;
use bangfu_shared::report::{AttendanceSheet, Quarter};
use bangfu_shared::sync::{Ack, AckStatus, MAX_PUSH_RECORDS};
use bangfu_shared::visit::{SignedRecord, sha256_hex};
use serde::Serialize;
use uuid::Uuid;

pub use retry::RetryPolicy;

use crate::api::ApiClient;
use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::problem::Problem;
use crate::store::{Store, StoredRecord, SubmissionState, SyncCounts};

/// How a sync runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOptions {
    /// Another base URL than the one saved at login (a proxy, a test).
    pub server: Option<String>,
    /// Records per push (at most 500, the server's limit); a push that fails in transit
    /// is retried with half as many (see `BatchSizer`).
    pub batch_size: usize,
    /// Largest tus `PATCH` body; a cut connection costs at most this much.
    pub chunk_bytes: usize,
    /// Send each chunk's SHA-256 (`Upload-Checksum`), so damaged chunks are dropped.
    pub checksum: bool,
    /// Records per pull page (at most 1000).
    pub pull_limit: u32,
    pub retry: RetryPolicy,
    /// One operation gives up retrying once it has failed for this long (since it
    /// started or last moved forward): see [`retry::Budget::give_up_after`].
    pub give_up_after: Duration,
    /// The whole run gives up retrying after this long.
    pub max_duration: Duration,
    /// Push rejected and conflicting records again (after the ledger changed, say).
    pub retry_rejected: bool,
    /// Download the images of records recovered by pull.
    pub download_images: bool,
    /// The quarters whose attendance sheet a second helper fetches; empty: the current
    /// quarter and the previous one.
    pub sheet_quarters: Vec<Quarter>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            server: None,
            batch_size: 100,
            chunk_bytes: 256 * 1024,
            checksum: true,
            pull_limit: 200,
            retry: RetryPolicy::default(),
            give_up_after: retry::DEFAULT_GIVE_UP_AFTER,
            max_duration: Duration::from_secs(15 * 60),
            retry_rejected: false,
            download_images: true,
            sheet_quarters: Vec::new(),
        }
    }
}

impl SyncOptions {
    /// The retry policy with the patience of one operation.
    pub(crate) fn budget(&self) -> retry::Budget {
        retry::Budget {
            policy: self.retry,
            give_up_after: self.give_up_after,
        }
    }
}

/// The step a sync is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    Pushing,
    Uploading,
    Confirming,
    Pulling,
    Downloading,
    Done,
}

/// Where a running sync stands: records and bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncProgress {
    pub phase: SyncPhase,
    /// Records of this device sent and answered for good (synced, rejected, conflict).
    pub records_done: u64,
    /// Records of this device this run sends.
    pub records_total: u64,
    /// Bytes of photos and signature images the server holds, of `bytes_total`.
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Records received by pull so far.
    pub pulled: u64,
    /// Recovered images downloaded, of `files_total`.
    pub files_done: u64,
    pub files_total: u64,
    /// Bytes of those images received so far, the one arriving included.
    pub bytes_received: u64,
    /// The last transient failure and the pause before the next attempt, while waiting.
    pub retry: Option<String>,
    /// The same note in Chinese (the error as the interface says it, and the pause), so
    /// a Chinese progress line carries no English.
    pub retry_zh: Option<String>,
}

impl SyncProgress {
    fn new() -> Self {
        SyncProgress {
            phase: SyncPhase::Pushing,
            records_done: 0,
            records_total: 0,
            bytes_done: 0,
            bytes_total: 0,
            pulled: 0,
            files_done: 0,
            files_total: 0,
            bytes_received: 0,
            retry: None,
            retry_zh: None,
        }
    }

    /// Overall completion in `[0, 1]`: records and bytes weigh the same.
    pub fn ratio(&self) -> f64 {
        if self.phase == SyncPhase::Done {
            return 1.0;
        }
        let part = |done: u64, total: u64| (total > 0).then(|| done as f64 / total as f64);
        let parts: Vec<f64> = [
            part(self.records_done, self.records_total),
            part(self.bytes_done, self.bytes_total),
            part(self.files_done, self.files_total),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            return 0.0;
        }
        (parts.iter().sum::<f64>() / parts.len() as f64).clamp(0.0, 1.0)
    }
}

/// A record the server refused, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub id: Uuid,
    /// The server's words (English).
    pub reason: String,
    /// The server's stable code for the reason (`Ack::reason_code`), which
    /// [`crate::i18n::Lang::refusal`] says in the helper's language; `None` from servers
    /// before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Records of this device sent (each counted once, however often it was pushed).
    pub pushed: u64,
    /// Records sent that the server now holds complete.
    pub synced: u64,
    /// Records sent that the server holds but still lacks files for.
    pub awaiting_photos: u64,
    pub rejected: Vec<Refusal>,
    pub conflicts: Vec<Refusal>,
    /// Files the server now holds that this run sent (or found already there).
    pub files_uploaded: u64,
    /// Bytes sent in successful `PATCH`es.
    pub bytes_sent: u64,
    /// Uploads that continued from an offset the server already held.
    pub files_resumed: u64,
    /// Records received by pull (the device's own included).
    pub pulled: u64,
    /// Records the device did not have, stored from the server.
    pub imported: u64,
    /// Households, pairings and policy were updated.
    pub households_updated: bool,
    pub files_downloaded: u64,
    pub bytes_downloaded: u64,
    /// What could not be done (a refused photo, a record that cannot be stored), as data
    /// the report says in the helper's language ([`crate::i18n::Lang::problem`]).
    pub problems: Vec<Problem>,
    /// Every record on the device by sync state, after the run.
    pub counts: SyncCounts,
    /// Visits on the device, after the run, that the server flagged as not counting for
    /// attendance (`clock_ahead`, `dated_after_signing`, `photo_reused`;
    /// [`crate::flags::Flag::stops_counting`])
    /// and that no amendment has settled yet; voided visits aside. The helper has to
    /// check and amend them.
    pub not_counted: u64,
    /// Visits this run brought a new town-office review note for (the office marked
    /// them "has issues", `POST /records/{id}/review`) and that no amendment has
    /// answered yet; voided visits aside. The helper has to correct them.
    pub returned_for_correction: u64,
    /// The town office's decisions on this device's proposed family changes that this
    /// run brought: said, since one not accepted asks the helper to act (QA s30a L6).
    pub decisions_received: crate::store::DecisionsReceived,
    /// Attendance sheets fetched (a second helper).
    pub sheets_pulled: u64,
    /// Records this device had synced that the server lacked since, or whose files it
    /// asked for again (its database restored from an older backup; its copy of a file
    /// found missing or damaged): the sync runs a second pass to send them.
    #[serde(skip_serializing_if = "is_zero")]
    pub asked_again: u64,
    /// This device's clock less the server's, in seconds, when they differ by more
    /// than [`CLOCK_WARN_SECS`] (by the server's answers; QA s26c F2): visits signed
    /// with it are not counted, and "today" and the current quarter read wrong here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_offset_secs: Option<i64>,
    /// Signed sheet submissions the server accepted in this run, as (quarter, version).
    pub sheets_submitted: Vec<(Quarter, i32)>,
    /// Sheet submissions the server refused in this run, with its reason.
    pub sheets_rejected: Vec<(Quarter, String)>,
}

impl SyncReport {
    /// Everything on the device is on the server and nothing went wrong.
    pub fn complete(&self) -> bool {
        self.counts.unsynced() == 0 && self.problems.is_empty() && self.sheets_rejected.is_empty()
    }
}

/// Keeps the progress and tells the listener each change.
pub struct Reporter<'a> {
    sink: &'a (dyn Fn(&SyncProgress) + Send + Sync),
    progress: SyncProgress,
}

impl<'a> Reporter<'a> {
    fn new(sink: &'a (dyn Fn(&SyncProgress) + Send + Sync)) -> Self {
        Reporter {
            sink,
            progress: SyncProgress::new(),
        }
    }

    fn emit(&self) {
        (self.sink)(&self.progress);
    }

    fn update(&mut self, f: impl FnOnce(&mut SyncProgress)) {
        self.progress.retry = None;
        self.progress.retry_zh = None;
        f(&mut self.progress);
        self.emit();
    }

    /// What a download tells as its bytes arrive: the progress as it stands, with
    /// `before` (the files already received) and the file's bytes so far received.
    fn download_progress(&self, before: u64) -> impl Fn(u64) + Sync + use<'a> {
        let mut at = self.progress.clone();
        at.retry = None;
        at.retry_zh = None;
        let sink = self.sink;
        move |held| {
            let mut p = at.clone();
            p.bytes_received = before + held;
            sink(&p);
        }
    }

    /// A file's server offset is now `at`; `reported` is what was counted for it before.
    fn file_at(&mut self, reported: &mut u64, at: u64) {
        if at > *reported {
            let delta = at - *reported;
            *reported = at;
            self.update(|p| p.bytes_done += delta);
        }
    }

    /// A transient failure; the next attempt follows after `pause`, or (`None`) is
    /// under way.
    fn retrying(&mut self, e: &ClientError, pause: Option<Duration>) {
        // What failed, without the advice and address of the final error ("请再同步一次"
        // while the run retries by itself, QA s25c F4): the note fits a status line.
        let full = crate::i18n::Lang::Zh.error(e);
        let zh = full.split('：').next().unwrap_or(&full);
        // Nor "try again later" while it is trying again itself (QA s31b R3).
        let zh = zh.split("，请").next().unwrap_or(zh);
        let (en, zh) = match pause {
            Some(p) => {
                let secs = p.as_secs_f64();
                (
                    format!("{e} (retrying in {secs:.1} s)"),
                    format!("{zh}（{secs:.1} 秒后重试）"),
                )
            }
            None => (format!("{e} (retrying now)"), format!("{zh}（正在重试）")),
        };
        self.progress.retry = Some(en);
        self.progress.retry_zh = Some(zh);
        self.emit();
    }
}

/// An answer that means the session is over becomes [`ClientError::SessionExpired`].
fn session(e: ClientError) -> ClientError {
    match e.status() {
        Some(401) => ClientError::SessionExpired,
        _ => e,
    }
}

/// Runs one sync of `client`'s store; see the module documentation. `progress` hears
/// every change of [`SyncProgress`].
pub async fn run(
    client: &Client,
    opts: &SyncOptions,
    progress: &(dyn Fn(&SyncProgress) + Send + Sync),
) -> Result<SyncReport> {
    let identity = client.identity().await?;
    if identity.helper.is_none() {
        return Err(ClientError::NotAHelper);
    }
    let api = ApiClient::new(opts.server.as_deref().unwrap_or(&identity.server))?
        .with_token(identity.token.clone());
    let start = Instant::now();
    // A duration too large for the clock means no deadline (about a century).
    let deadline = start
        .checked_add(opts.max_duration)
        .or_else(|| start.checked_add(Duration::from_secs(3_000_000_000)))
        .unwrap_or(start);
    let store = client.store();
    let batch_size = opts.batch_size.clamp(1, MAX_PUSH_RECORDS);
    let mut rep = Reporter::new(progress);
    let mut report = SyncReport::default();

    // 1. Push.
    let pending = store
        .records_to_push(identity.device_id, opts.retry_rejected)
        .await?;
    report.pushed = pending.len() as u64;
    rep.update(|p| p.records_total = pending.len() as u64);
    let mut awaiting: Vec<Uuid> = Vec::new();
    let mut sizer = BatchSizer::new(batch_size);
    let push = Push {
        api: &api,
        store,
        opts,
        deadline,
    };
    push.all(&pending, &mut sizer, &mut rep, |acks, rep| {
        tally(acks, &mut report, rep, |id| awaiting.push(id));
    })
    .await?;

    // 2. Upload what the awaiting records lack, but for versions a void or amendment
    // pushed just now has made moot (see `photos_moot`).
    if !awaiting.is_empty() {
        let still: std::collections::HashSet<Uuid> = store
            .records_to_push(identity.device_id, false)
            .await?
            .iter()
            .map(|r| r.signed.record.id)
            .collect();
        awaiting.retain(|id| still.contains(id));
    }
    let mut wanted: Vec<String> = Vec::new();
    // The records waiting for each file, to name them when the file is refused.
    let mut waiting: HashMap<String, Vec<Uuid>> = HashMap::new();
    for id in &awaiting {
        for sha in store.missing_files(*id).await? {
            let records = waiting.entry(sha.clone()).or_default();
            if records.is_empty() {
                wanted.push(sha);
            }
            records.push(*id);
        }
    }
    // Files with an upload this device left unfinished go first: resuming them frees
    // the server's room for new ones (it bounds the unfinished uploads of an account).
    let mut files = Vec::new();
    let mut fresh = Vec::new();
    for sha in wanted {
        let path = client.photos().path_of(&sha);
        let resuming = store.upload_url(&sha).await?.is_some();
        match std::fs::metadata(&path) {
            Ok(m) if resuming => files.push((sha, path, m.len())),
            Ok(m) => fresh.push((sha, path, m.len())),
            Err(_) => {
                store.mark_image(&sha, true).await?;
                if resuming {
                    upload::abandon(&api, store, &sha).await?;
                }
                report
                    .problems
                    .push(Problem::ImageNotOnDevice { sha256: sha });
            }
        }
    }
    files.append(&mut fresh);
    if !files.is_empty() {
        rep.update(|p| {
            p.phase = SyncPhase::Uploading;
            p.bytes_total = files.iter().map(|(_, _, n)| n).sum();
        });
    }
    // Once the server takes no new upload (too many unfinished), the files after it
    // would only be refused the same: they wait for the next sync with it.
    let mut deferred: Option<(String, Vec<String>)> = None;
    for (sha, path, len) in &files {
        if let Some((_, later)) = deferred.as_mut() {
            later.push(sha.clone());
            continue;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                store.mark_image(sha, true).await?;
                report.problems.push(Problem::ImageUnreadable {
                    sha256: sha.clone(),
                    detail: e.to_string(),
                });
                continue;
            }
        };
        let outcome = upload::upload(&api, store, sha, &bytes, opts, deadline, &mut rep).await;
        match outcome.map_err(session) {
            Ok(upload::Uploaded::Complete { sent, resumed_from }) => {
                store.mark_image(sha, false).await?;
                report.files_uploaded += 1;
                report.bytes_sent += sent;
                if resumed_from > 0 && resumed_from < *len {
                    report.files_resumed += 1;
                }
            }
            // One refused file must not hold back the others, the pull or the
            // downloads: it is reported, its records stay awaiting photos, and the
            // next sync tries it again.
            Ok(upload::Uploaded::Refused(reason)) => {
                store.mark_image(sha, true).await?;
                report.problems.push(Problem::ImageRefused {
                    sha256: sha.clone(),
                    reason,
                    records: waiting.get(sha).cloned().unwrap_or_default(),
                });
            }
            Ok(upload::Uploaded::Damaged) => {
                store.mark_image(sha, true).await?;
                report.problems.push(Problem::ImageDamaged {
                    sha256: sha.clone(),
                });
            }
            // Nothing is wrong with the file: it is not marked, only left for later.
            Ok(upload::Uploaded::Deferred(reason)) => {
                deferred = Some((reason, vec![sha.clone()]));
            }
            Err(e) => return Err(e),
        }
    }
    if let Some((reason, shas)) = deferred {
        let mut records: Vec<Uuid> = shas
            .iter()
            .flat_map(|sha| waiting.get(sha).cloned().unwrap_or_default())
            .collect();
        records.sort();
        records.dedup();
        report.problems.push(Problem::UploadsDeferred {
            reason,
            files: shas.len() as u64,
            records,
        });
    }

    // 3. Confirm the awaiting records.
    if !awaiting.is_empty() {
        rep.update(|p| p.phase = SyncPhase::Confirming);
        let mut again = Vec::new();
        for id in &awaiting {
            if let Some(r) = store.record(*id).await? {
                again.push(r);
            }
        }
        push.all(&again, &mut sizer, &mut rep, |acks, rep| {
            tally(acks, &mut report, rep, |_| {});
        })
        .await?;
    }
    report.awaiting_photos = store
        .records_to_push(identity.device_id, false)
        .await?
        .iter()
        .filter(|r| r.sync_state == crate::store::SyncState::AwaitingPhotos)
        .count() as u64;

    // 4. Pull.
    rep.update(|p| p.phase = SyncPhase::Pulling);
    let mut cursor = store.pull_cursor().await?;
    let mut reviews_received = Vec::new();
    let mut restored = false;
    loop {
        let page = retry::retry(
            opts.budget(),
            deadline,
            |e, pause| rep.retrying(e, pause),
            || api.pull(cursor, opts.pull_limit),
        )
        .await
        .map_err(session)?;
        // A cursor the server answers with one below it: its database was restored from
        // a backup older than this device's last pull, and what the device synced since
        // may be gone from it (QA s26b F1). Every record of this device the server had
        // is taken as sent without an answer (`uploading`); the pull from the start that
        // follows settles those it still holds, and the rest go again.
        if page.cursor < cursor && !restored {
            restored = true;
            store.unconfirm_own(identity.device_id).await?;
        }
        let applied = store.apply_pull_page(&page).await?;
        report.pulled += page.records.len() as u64;
        report.imported += applied.imported;
        report.asked_again += applied.asked_again;
        report.households_updated |= applied.households;
        reviews_received.extend(applied.reviews_received);
        report.decisions_received.add(applied.decisions_received);
        report.problems.extend(applied.problems);
        let pulled = report.pulled;
        rep.update(|p| p.pulled = pulled);
        let advanced = page.cursor != cursor;
        cursor = page.cursor;
        if !page.more || !advanced {
            break;
        }
    }

    if restored {
        let lost = store.sync_counts().await?;
        report.asked_again += lost.local + lost.uploading;
    }

    // 5. Attendance sheets.
    if identity.role == Role::SecondHelper {
        sheets(&api, store, opts, deadline, &mut rep, &mut report).await?;
    }

    // 6. Download the images of recovered records, and those of synced records lost
    // from the device since (QA s23d F9).
    if opts.download_images {
        let mut missing = store.missing_images().await?;
        for (sha, bytes) in store.synced_images().await? {
            if !client.photos().holds(&sha, bytes) && !missing.contains(&sha) {
                missing.push(sha);
            }
        }
        if !missing.is_empty() {
            rep.update(|p| {
                p.phase = SyncPhase::Downloading;
                p.files_total = missing.len() as u64;
            });
        }
        for sha in &missing {
            // Kept across attempts and runs, so a cut download resumes (see
            // `ApiClient::blob_resuming`).
            let partial = client.data_dir().tmp_dir().join(format!("{sha}.download"));
            let on_bytes = rep.download_progress(report.bytes_downloaded);
            let got = retry::retry(
                opts.budget(),
                deadline,
                |e, pause| rep.retrying(e, pause),
                || api.blob_resuming(sha, &partial, &on_bytes),
            )
            .await
            .map_err(session);
            // A file that cannot be had is one problem in the report, not the end of
            // the run: the other files still come, and the next sync asks again.
            match got {
                Ok(bytes) if sha256_hex(&bytes) == *sha => {
                    match client.photos().put_received(&bytes) {
                        Ok(img) => {
                            store.register_file(&img).await?;
                            report.files_downloaded += 1;
                            report.bytes_downloaded += bytes.len() as u64;
                        }
                        Err(ClientError::NotAnImage { reason, .. }) => {
                            report.problems.push(Problem::DownloadNotImage {
                                sha256: sha.clone(),
                                reason,
                            })
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(_) => report.problems.push(Problem::DownloadMismatch {
                    sha256: sha.clone(),
                }),
                // Not on the server yet (its record awaits photos another device has),
                // or not visible: not one to count as downloaded (QA s31b R5: the
                // progress read ↓ 2/2 with nothing received).
                Err(ClientError::Server {
                    status: 403 | 404, ..
                }) => {
                    rep.update(|p| p.files_total = p.files_total.saturating_sub(1));
                    continue;
                }
                // Refused (a 410: the server lost its copy and asks the uploader for
                // it again), or failing on the server's side past the retries: that
                // file's problem; the others still come (QA s26b F2). A network
                // failure ends the run: the next file would fail the same.
                Err(e) if refusal(&e).is_some() || server_failure(&e) => {
                    report.problems.push(Problem::DownloadFailed {
                        sha256: sha.clone(),
                        detail: e.to_string(),
                    })
                }
                Err(e) => return Err(e),
            }
            let received = report.bytes_downloaded;
            rep.update(|p| {
                p.files_done += 1;
                p.bytes_received = received;
            });
        }
    }

    report.counts = store.sync_counts().await?;
    let visits = store.visits(None, u64::MAX).await?;
    report.not_counted = visits
        .iter()
        .filter(|v| !v.voided && v.flags.iter().any(crate::flags::Flag::stops_counting))
        .count() as u64;
    report.returned_for_correction = returned_for_correction(&visits, &reviews_received);
    report.clock_offset_secs = api.clock_offset_secs().filter(|o| clock_is_off(*o));
    rep.update(|p| p.phase = SyncPhase::Done);
    Ok(report)
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How far the device's clock may differ from the server's before the helper is told:
/// the server's default `clock_tolerance_secs`, beyond which what the device signs is
/// flagged and not counted.
pub const CLOCK_WARN_SECS: i64 = 600;

/// Whether a clock offset (device less server, seconds) is worth telling the helper.
pub fn clock_is_off(offset_secs: i64) -> bool {
    offset_secs.abs() > CLOCK_WARN_SECS
}

/// How many of `visits` got a review note in this run (on their first record or their
/// current one) that still asks for a correction.
fn returned_for_correction(visits: &[crate::store::VisitRow], received: &[Uuid]) -> u64 {
    visits
        .iter()
        .filter(|v| !v.voided && v.review.as_ref().is_some_and(|r| !r.amended_since))
        .filter(|v| {
            received.contains(&v.visit_id) || received.contains(&v.current.signed.record.id)
        })
        .count() as u64
}

/// A final answer that refuses the request itself (not the session, not a passing
/// failure): its message.
/// A 5xx answer: the server failed on its side (after the retries a sync gives it).
fn server_failure(e: &ClientError) -> bool {
    matches!(e, ClientError::Server { status, .. } if (500..600).contains(status))
}

fn refusal(e: &ClientError) -> Option<String> {
    match e {
        ClientError::Server {
            status, message, ..
        } if (400..500).contains(status) && !matches!(status, 401 | 408 | 429) => {
            Some(message.clone())
        }
        _ => None,
    }
}

/// Whether the server's latest version of `sheet` carries exactly `remarks`.
fn already_frozen(sheet: &AttendanceSheet, remarks: &[(i64, String)]) -> bool {
    if sheet.submitted_version.is_none() {
        return false;
    }
    let mut held: Vec<(i64, String)> = sheet
        .rows
        .iter()
        .filter_map(|r| Some((r.household_id, r.remark.clone()?)))
        .collect();
    let mut sent: Vec<(i64, String)> = remarks
        .iter()
        .filter(|(_, r)| !r.trim().is_empty())
        .cloned()
        .collect();
    held.sort();
    sent.sort();
    held == sent
}

/// Step 5: sends the waiting sheet submissions, then fetches the sheets.
async fn sheets(
    api: &ApiClient,
    store: &Store,
    opts: &SyncOptions,
    deadline: Instant,
    rep: &mut Reporter<'_>,
    report: &mut SyncReport,
) -> Result<()> {
    for pending in store.pending_submissions().await? {
        let sub = &pending.submission;
        // Sent before without a stored answer, the server may have frozen it. One with
        // an id is simply sent again (the server answers with the version it froze);
        // one from before ids is first compared with the server's latest version.
        if pending.attempted && sub.submission_id.is_none() {
            let now = retry::retry(
                opts.budget(),
                deadline,
                |e, pause| rep.retrying(e, pause),
                || api.attendance_sheet(sub.quarter),
            )
            .await
            .map_err(session);
            match now {
                Ok(sheet) if already_frozen(&sheet, &sub.remarks) => {
                    let version = sheet.submitted_version.unwrap_or_default();
                    store
                        .answer_submission(pending.id, &SubmissionState::Submitted { version })
                        .await?;
                    store.save_sheet(&sheet).await?;
                    report.sheets_submitted.push((sub.quarter, version));
                    continue;
                }
                Ok(_) | Err(ClientError::Server { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        store.mark_submission_attempted(pending.id).await?;
        let sent = retry::retry(
            opts.budget(),
            deadline,
            |e, pause| rep.retrying(e, pause),
            || api.submit_sheet(sub),
        )
        .await
        .map_err(session);
        match sent {
            Ok(sheet) => {
                let version = sheet.submitted_version.unwrap_or_default();
                store
                    .answer_submission(pending.id, &SubmissionState::Submitted { version })
                    .await?;
                store.save_sheet(&sheet).await?;
                report.sheets_submitted.push((sub.quarter, version));
            }
            Err(e) => match refusal(&e) {
                Some(reason) => {
                    store
                        .answer_submission(
                            pending.id,
                            &SubmissionState::Rejected {
                                reason: reason.clone(),
                            },
                        )
                        .await?;
                    report.sheets_rejected.push((sub.quarter, reason));
                }
                None => return Err(e),
            },
        }
    }
    let quarters = if opts.sheet_quarters.is_empty() {
        let current = Quarter::of(crate::client::today(chrono::Utc::now()));
        vec![current, current.previous()]
    } else {
        opts.sheet_quarters.clone()
    };
    for q in quarters {
        let got = retry::retry(
            opts.budget(),
            deadline,
            |e, pause| rep.retrying(e, pause),
            || api.attendance_sheet(q),
        )
        .await
        .map_err(session);
        match got {
            Ok(sheet) => {
                store.save_sheet(&sheet).await?;
                report.sheets_pulled += 1;
            }
            // No sheet for this quarter, or one that has not begun by the server's
            // calendar (this device's clock runs ahead): nothing to show.
            Err(ClientError::Server { status: 404, .. }) => {}
            Err(ClientError::Server { code, .. }) if code == "quarter_not_begun" => {}
            Err(e) => match refusal(&e) {
                Some(reason) => report.problems.push(Problem::SheetUnavailable {
                    quarter: q.to_string(),
                    reason,
                }),
                None => return Err(e),
            },
        }
    }
    Ok(())
}

/// Counts a batch's answers into the report and the progress.
fn tally(
    acks: &[Ack],
    report: &mut SyncReport,
    rep: &mut Reporter<'_>,
    mut on_awaiting: impl FnMut(Uuid),
) {
    let mut done = 0;
    for ack in acks {
        let refusal = || Refusal {
            id: ack.id,
            reason: ack.reason.clone().unwrap_or_default(),
            reason_code: ack.reason_code.clone(),
        };
        match ack.status {
            AckStatus::Accepted => {
                report.synced += 1;
                done += 1;
            }
            AckStatus::AwaitingPhotos => on_awaiting(ack.id),
            AckStatus::Rejected
                if ack.reason_code.as_deref()
                    == Some(bangfu_shared::sync::reason_code::NOT_PROCESSED) =>
            {
                report.problems.push(Problem::NotProcessed { id: ack.id });
            }
            AckStatus::Rejected => {
                report.rejected.push(refusal());
                done += 1;
            }
            AckStatus::Conflict => {
                report.conflicts.push(refusal());
                done += 1;
            }
        }
    }
    rep.update(|p| p.records_done = (p.records_done + done).min(p.records_total));
}

/// How many records the next push carries. It starts at the configured size, halves
/// after each push that fails in transit (down to one record), and doubles again
/// (up to the configured size) after [`BatchSizer::REGROW_AFTER`] pushes in a row got
/// through: a weak link that drops a connection, or times out, before a whole batch has
/// crossed may still carry half of it, and a link that recovered should not be held to
/// one record per round trip for the rest of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchSizer {
    size: usize,
    max: usize,
    /// Pushes in a row that got through at the current size.
    streak: u32,
}

impl BatchSizer {
    const REGROW_AFTER: u32 = 4;

    fn new(max: usize) -> Self {
        let max = max.max(1);
        BatchSizer {
            size: max,
            max,
            streak: 0,
        }
    }

    /// A push of `sent` records failed in transit.
    fn failed(&mut self, sent: usize) {
        self.size = (sent / 2).max(1);
        self.streak = 0;
    }

    /// A push got through.
    fn succeeded(&mut self) {
        self.streak += 1;
        if self.streak >= Self::REGROW_AFTER && self.size < self.max {
            self.size = (self.size * 2).min(self.max);
            self.streak = 0;
        }
    }
}

/// What every push of one run shares.
struct Push<'a> {
    api: &'a ApiClient,
    store: &'a Store,
    opts: &'a SyncOptions,
    deadline: Instant,
}

impl Push<'_> {
    /// Pushes `records` in order, in batches sized by `sizer`; `answered` hears each
    /// batch's acknowledgements once they are stored. A transient failure is retried
    /// with backoff (with a smaller batch); the attempts start afresh after each batch
    /// that gets through, and the run's deadline bounds them all.
    async fn all(
        &self,
        records: &[StoredRecord],
        sizer: &mut BatchSizer,
        rep: &mut Reporter<'_>,
        mut answered: impl FnMut(&[Ack], &mut Reporter<'_>),
    ) -> Result<()> {
        let mut attempts = retry::Attempts::new(self.opts.budget(), self.deadline);
        let mut at = 0;
        while at < records.len() {
            let batch = &records[at..records.len().min(at + sizer.size)];
            match self.once(batch).await {
                Ok(acks) => {
                    answered(&acks, rep);
                    at += batch.len();
                    attempts.progressed();
                    sizer.succeeded();
                }
                Err(e) if e.is_transient() => {
                    let Some(pause) = attempts.failed() else {
                        return Err(e);
                    };
                    sizer.failed(batch.len());
                    rep.retrying(&e, Some(pause));
                    tokio::time::sleep(pause).await;
                    rep.retrying(&e, None);
                }
                Err(e) => return Err(session(e)),
            }
        }
        Ok(())
    }

    /// Sends one batch (marked `uploading` first, put back to `local` if the push
    /// fails) and stores the answers.
    async fn once(&self, batch: &[StoredRecord]) -> Result<Vec<Ack>> {
        let ids: Vec<Uuid> = batch.iter().map(|r| r.signed.record.id).collect();
        self.store.mark_uploading(&ids).await?;
        let records: Vec<SignedRecord> = batch.iter().map(|r| r.signed.clone()).collect();
        let resp = match self.api.push(&records).await {
            Ok(resp) => resp,
            Err(e) => {
                self.store.unmark_uploading(&ids).await?;
                return Err(e);
            }
        };
        if resp.acks.len() != ids.len() || resp.acks.iter().zip(&ids).any(|(a, id)| a.id != *id) {
            // The connection worked; the answer is wrong. Not retried (see `crate::api`).
            return Err(ClientError::Server {
                status: 200,
                code: crate::api::UNREADABLE.into(),
                message: format!(
                    "answered {} acknowledgements for a batch of {} records",
                    resp.acks.len(),
                    ids.len()
                ),
            });
        }
        self.store.apply_acks(&resp.acks).await?;
        Ok(resp.acks)
    }
}

#[cfg(test)]
mod tests {
    use super::{BatchSizer, ClientError, Duration, Reporter, SyncProgress};

    #[test]
    fn a_retry_note_is_said_in_chinese_too() {
        let sink = |_: &SyncProgress| {};
        let mut r = Reporter::new(&sink);
        let e = ClientError::Network("cannot reach http://h:1: error sending request".into());
        r.retrying(&e, Some(Duration::from_millis(7500)));
        assert_eq!(
            r.progress.retry_zh.as_deref(),
            Some("网络不通（7.5 秒后重试）")
        );
        assert!(
            r.progress
                .retry
                .as_deref()
                .is_some_and(|s| s.contains("retrying in 7.5 s"))
        );
        // Once the pause is over, the line no longer counts down a pause long gone
        // (QA s23a F7).
        r.retrying(&e, None);
        assert_eq!(r.progress.retry_zh.as_deref(), Some("网络不通（正在重试）"));
        // A timeout while retrying does not say to try again later (QA s31b R3).
        let slow = ClientError::Network("operation timed out: http://h:1/api/v1/files".into());
        r.retrying(&slow, None);
        let note = r.progress.retry_zh.clone().unwrap_or_default();
        assert!(
            note.starts_with("服务器无响应（等待超时）") && !note.contains("稍后重试"),
            "{note}"
        );
    }

    #[test]
    fn a_failed_push_halves_the_batch_down_to_one_record() {
        let mut s = BatchSizer::new(100);
        s.failed(100);
        assert_eq!(s.size, 50);
        s.failed(37); // the last, shorter batch of a run
        assert_eq!(s.size, 18);
        s.failed(1);
        assert_eq!(s.size, 1, "never zero");
        assert_eq!(BatchSizer::new(0).size, 1);
    }

    #[test]
    fn pushes_that_get_through_grow_the_batch_back_to_its_size() {
        let mut s = BatchSizer::new(100);
        s.succeeded();
        assert_eq!(s.size, 100, "never above the configured size");
        s.failed(100);
        s.failed(50);
        assert_eq!(s.size, 25);
        for _ in 0..BatchSizer::REGROW_AFTER - 1 {
            s.succeeded();
        }
        assert_eq!(s.size, 25, "not before a streak");
        s.succeeded();
        assert_eq!(s.size, 50);
        s.succeeded();
        s.failed(50);
        assert_eq!(s.size, 25, "a failure ends the streak");
        for _ in 0..2 * BatchSizer::REGROW_AFTER {
            s.succeeded();
        }
        assert_eq!(s.size, 100, "capped at the configured size");
    }
}
