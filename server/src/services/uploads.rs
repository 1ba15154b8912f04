//! Resumable uploads of photos and signature images (tus 1.0: core, creation, checksum,
//! termination).
//!
//! Bytes stream to the [`BlobStore`] as they arrive and are made durable before each
//! answer, so an interrupted upload resumes from the last byte the server holds. When
//! the last byte arrives the whole file is hashed (streamed, flat memory), compared with
//! the SHA-256 the client declared, checked to be a JPEG or PNG, and only then committed
//! under its hash; records that were waiting for it become complete.

use base64::Engine;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, IntoActiveModel, PaginatorTrait, QueryFilter, QuerySelect, QueryTrait, Set,
};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::sync::Arc;

use super::image_check::JpegScan;
use super::{Caller, sync};
use crate::config::Settings;
use crate::entities::{blob, upload};
use crate::error::{ApiError, ApiResult};
use crate::storage::{BlobStore, UploadWriter};

/// An upload as tus reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadState {
    pub id: String,
    pub offset: u64,
    pub length: u64,
    pub complete: bool,
    /// When it was created (an unfinished upload expires a set time after).
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl UploadState {
    /// Whether the upload holds every byte but was never finalised: the server stopped
    /// (or was busy, or the connection broke) between the last byte and the commit.
    /// Reported as it stands, `Upload-Offset` would equal `Upload-Length`, which a tus
    /// client takes for done, and nothing would ever finish it; see [`finish_held`].
    pub fn held_unfinished(&self) -> bool {
        !self.complete && self.offset == self.length
    }
}

/// Parses tus `Upload-Metadata` (`key base64value,key2 base64value2`). Keys must be
/// unique, as tus 1.0 says: of two `sha256` values, taking either would be a guess.
pub fn parse_metadata(header: &str) -> ApiResult<Vec<(String, String)>> {
    let pairs: Vec<(String, String)> = header
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, ' ');
            let key = it.next().unwrap_or_default().to_string();
            let value = match it.next() {
                Some(v) => base64::engine::general_purpose::STANDARD
                    .decode(v.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "Upload-Metadata value of {key} is not base64 text"
                        ))
                    })?,
                None => String::new(),
            };
            Ok((key, value))
        })
        .collect::<ApiResult<_>>()?;
    let mut keys = std::collections::HashSet::new();
    for (key, _) in &pairs {
        if !keys.insert(key.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "Upload-Metadata names {key} twice"
            )));
        }
    }
    Ok(pairs)
}

fn check_sha(s: &str) -> ApiResult<String> {
    let s = s.trim().to_ascii_lowercase();
    if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(ApiError::BadRequest(
            "sha256 metadata must be 64 hex characters".into(),
        ))
    }
}

/// What creation found or made.
pub enum Creation {
    /// The caller's unfinished upload of the same file, or a finished one (the server
    /// has the file), so a client that lost its upload URL resumes instead of restarting.
    Existing(upload::Model, UploadState),
    /// A new upload, not stored yet: [`keep`] stores it, or the bytes sent with the
    /// creation (tus creation-with-upload) do when they arrive.
    New(upload::Model),
}

/// Creates an upload of `length` bytes, or finds the caller's one for the same file.
pub async fn create(
    db: &DatabaseConnection,
    store: &Arc<dyn BlobStore>,
    settings: &Settings,
    caller: &Caller,
    length: u64,
    declared: Option<&str>,
) -> ApiResult<Creation> {
    let account_id = caller.account_id.ok_or(ApiError::Unauthenticated)?;
    may_upload(caller)?;
    if length > settings.max_upload_bytes {
        return Err(ApiError::PayloadTooLarge {
            what: "the file announced by Upload-Length",
            limit: usize::try_from(settings.max_upload_bytes).unwrap_or(usize::MAX),
        });
    }
    if length == 0 {
        return Err(ApiError::Invalid("an empty file is not an image".into()));
    }
    let declared = declared.map(check_sha).transpose()?;
    if let Some(sha) = &declared {
        let (unfinished, held) = lookup(db, account_id, sha, length, settings).await?;
        // Two unfinished uploads of one file (a client created again before the server
        // had seen its first attempt cut): continue the one holding the most bytes.
        let mut best: Option<(upload::Model, UploadState)> = None;
        for row in unfinished {
            let at = state(store, &row).await?;
            if best.as_ref().is_none_or(|(_, b)| at.offset > b.offset) {
                best = Some((row, at));
            }
        }
        if let Some((row, at)) = best {
            return Ok(Creation::Existing(row, at));
        }
        // The server already holds the file: finished on the spot, without its bytes,
        // only for an account that sent those bytes before. Another must send them (then
        // they are hashed and checked as any upload's): a hash seen on a record is no
        // proof of holding the file, and finishing an upload is what lets an account
        // read a file back (see `sync::blob_for`).
        if held == Some(length as i64)
            && senders(db, sha, &[account_id]).await?.contains(&account_id)
        {
            let row = new_row(account_id, length, declared.clone(), "complete");
            keep(db, &row).await?;
            let at = UploadState {
                id: row.id.clone(),
                offset: length,
                length,
                complete: true,
                created_at: row.created_at,
            };
            return Ok(Creation::Existing(row, at));
        }
    }
    // Refused before any byte of a creation-with-upload is read; [`keep_unfinished`]
    // holds the bound for requests that race past this.
    let open = unfinished_count(&crate::db::quick_read(db)?, account_id, settings).await?;
    if open >= settings.max_unfinished_uploads {
        return Err(too_many(open, settings));
    }
    Ok(Creation::New(new_row(
        account_id, length, declared, "partial",
    )))
}

/// Refuses an account that does not capture photos. Only a helper's device (the
/// accounts that push visit records) sends photos and signature images; an office
/// account never does, and an upload it opened would only reserve a row and a file
/// (QA s23c F9).
fn may_upload(caller: &Caller) -> ApiResult<()> {
    match caller.helper_id {
        Some(_) => Ok(()),
        None => Err(ApiError::Forbidden(format!(
            "only a helper's device uploads photos and signature images; an account of \
             role {} sends none",
            caller.role.code()
        ))),
    }
}

/// How many uploads the account holds unfinished and not yet expired (an expired one is
/// discarded by the next sweep, and frees its place at once).
/// One of a file this account has sent whole by another upload is not counted (QA
/// s25c F1: a creation sent again while the killed run's was still arriving left a
/// second upload of the file, which nothing would finish, holding its place for the
/// whole expiry). Only the account's own finished upload frees it: a file merely held
/// by the server would let any account open uploads past the limit by naming hashes
/// (QA s25d F2).
async fn unfinished_count(
    db: &impl ConnectionTrait,
    account_id: i64,
    settings: &Settings,
) -> ApiResult<u64> {
    use sea_orm::sea_query::{Alias, ExprTrait, Query};
    let done = Alias::new("done");
    let sent_whole = Query::select()
        .expr(Expr::val(1))
        .from_as(upload::Entity, done.clone())
        .and_where(
            Expr::col((done.clone(), upload::Column::Sha256))
                .equals((upload::Entity, upload::Column::Sha256)),
        )
        .and_where(Expr::col((done.clone(), upload::Column::AccountId)).eq(account_id))
        .and_where(Expr::col((done, upload::Column::Status)).eq("complete"))
        .to_owned();
    Ok(upload::Entity::find()
        .filter(upload::Column::AccountId.eq(account_id))
        .filter(super::upload_expiry::unexpired(settings))
        .filter(Expr::exists(sent_whole).not())
        .count(db)
        .await?)
}

/// Once `sha256` is stored from upload `kept`: the account's other unfinished uploads
/// of the same file, which nothing will finish now (its device saw the file stored),
/// are discarded, each unless a request is sending to it this instant (QA s25c F1).
pub async fn discard_others(
    db: &DatabaseConnection,
    store: &Arc<dyn BlobStore>,
    busy: &std::sync::Mutex<std::collections::HashSet<String>>,
    (account_id, kept): (i64, &str),
    sha256: &str,
) -> ApiResult<()> {
    // A lookup of microseconds on every stored file: in place on SQLite, not a hand-off
    // to a pool's thread and back.
    let ids: Vec<String> = upload::Entity::find()
        .select_only()
        .column(upload::Column::Id)
        .filter(upload::Column::AccountId.eq(account_id))
        .filter(upload::Column::Status.eq("partial"))
        .filter(upload::Column::Sha256.eq(sha256))
        .filter(upload::Column::Id.ne(kept))
        .into_tuple()
        .all(&crate::db::quick_read(db)?)
        .await?;
    let marks: Vec<Busy<'_>> = ids
        .iter()
        .filter_map(|id| Busy::take(busy, id).ok())
        .collect();
    if marks.is_empty() {
        return Ok(());
    }
    discard_unfinished(db, store, &marks).await
}

fn too_many(open: u64, settings: &Settings) -> ApiError {
    ApiError::TooManyUploads {
        open,
        limit: settings.max_unfinished_uploads,
        expiry_days: settings.upload_expiry_days,
    }
}

/// Of `accounts`, those that once sent the server the bytes of `sha256`: a finished
/// upload that carried them, whose hash was checked against those bytes.
///
/// The hash an upload declares proves nothing: anyone can create an upload of any hash
/// and never send a byte. A creation declaring a file the server already holds is
/// finished on the spot without its bytes ([`create`]), for an account that sent them
/// before only; such a row is finished at the instant it was created (`completed_at`
/// equals `created_at`, both set from one clock reading) and is not counted here.
pub async fn senders(
    db: &impl ConnectionTrait,
    sha256: &str,
    accounts: &[i64],
) -> ApiResult<std::collections::HashSet<i64>> {
    let mut out = std::collections::HashSet::new();
    for chunk in accounts.chunks(crate::db::IN_CHUNK) {
        let rows = upload::Entity::find()
            .filter(upload::Column::Sha256.eq(sha256))
            .filter(upload::Column::AccountId.is_in(chunk.to_vec()))
            .filter(upload::Column::Status.eq("complete"))
            .all(db)
            .await?;
        out.extend(
            rows.into_iter()
                .filter(|u| u.completed_at.is_some_and(|done| done != u.created_at))
                .map(|u| u.account_id),
        );
    }
    Ok(out)
}

const UNFINISHED: &str = "unfinished";
const HELD: &str = "held";

/// The caller's unfinished uploads of the file `sha256` of `length` bytes, and the size
/// of the blob the server holds under that hash, if any: one batch, in place.
async fn lookup(
    db: &DatabaseConnection,
    account_id: i64,
    sha256: &str,
    length: u64,
    settings: &Settings,
) -> ApiResult<(Vec<upload::Model>, Option<i64>)> {
    use crate::db::{TAG, tag, tag_of};
    let backend = db.get_database_backend();
    // Not one past its expiry: that one is gone for HEAD and PATCH already, so the file
    // is created again rather than handed back dead (QA s24d F6).
    let unfinished = upload::Entity::find()
        .expr_as(tag(UNFINISHED), TAG)
        .filter(upload::Column::Sha256.eq(sha256))
        .filter(upload::Column::AccountId.eq(account_id))
        .filter(upload::Column::Length.eq(length as i64))
        .filter(super::upload_expiry::unexpired(settings))
        .build(backend);
    let held = blob::Entity::find()
        .select_only()
        .expr_as(tag(HELD), TAG)
        .column(blob::Column::Size)
        .filter(blob::Column::Sha256.eq(sha256))
        .build(backend);
    let (mut rows, mut size) = (Vec::new(), None);
    let db = crate::db::quick_read(db)?;
    for row in crate::db::query_batch(&db, vec![unfinished, held]).await? {
        if tag_of(&row)? == UNFINISHED {
            rows.push(upload::Model::from_query_result(&row, "")?);
        } else {
            size = Some(row.try_get("", "size")?);
        }
    }
    Ok((rows, size))
}

fn new_row(account_id: i64, length: u64, sha256: Option<String>, status: &str) -> upload::Model {
    let now = super::now();
    upload::Model {
        id: uuid::Uuid::now_v7().simple().to_string(),
        sha256,
        length: length as i64,
        status: status.to_string(),
        account_id,
        created_at: now,
        completed_at: (status == "complete").then_some(now),
    }
}

/// Stores a new upload's row: one still waiting for (some of) its bytes, or one the
/// server already holds the file of.
pub async fn keep(db: &impl ConnectionTrait, row: &upload::Model) -> ApiResult<()> {
    let _gate = crate::db::write_gate(db).await;
    upload::Entity::insert(row.clone().into_active_model())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Stores a new unfinished upload's row, unless its account holds
/// [`Settings::max_unfinished_uploads`] already: counted and inserted in one write
/// transaction, with the account's row locked on PostgreSQL (SQLite's write lock is
/// one already), so creations racing each other cannot all pass the count [`create`]
/// made before them. On refusal the caller discards any bytes the upload took.
pub async fn keep_unfinished(
    db: &DatabaseConnection,
    settings: &Settings,
    row: &upload::Model,
) -> ApiResult<()> {
    let (_gate, txn) = crate::db::begin_write(db).await?;
    crate::entities::account::Entity::find_by_id(row.account_id)
        .lock_exclusive()
        .one(&txn)
        .await?;
    let open = unfinished_count(&txn, row.account_id, settings).await?;
    if open >= settings.max_unfinished_uploads {
        return Err(too_many(open, settings));
    }
    txn.commit_with(vec![
        upload::Entity::insert(row.clone().into_active_model()).build(db.get_database_backend()),
    ])
    .await?;
    Ok(())
}

fn io(e: std::io::Error) -> ApiError {
    crate::error::storage_failure(e, "an upload")
}

/// A storage error as the client should see it: a write at a stale offset is a 409.
pub fn storage_error(e: std::io::Error) -> ApiError {
    match crate::storage::offset_moved(&e) {
        Some(held) => ApiError::Conflict(format!(
            "Upload-Offset does not match the server's offset {held}"
        )),
        None => io(e),
    }
}

/// Where an upload stands: its row, and the bytes the store holds for it.
pub async fn state(store: &Arc<dyn BlobStore>, row: &upload::Model) -> ApiResult<UploadState> {
    let length = row.length as u64;
    let offset = if row.status == "complete" {
        length
    } else {
        store.upload_len(&row.id).await.map_err(io)?
    };
    Ok(UploadState {
        id: row.id.clone(),
        offset,
        length,
        complete: row.status == "complete",
        created_at: row.created_at,
    })
}

/// The caller's upload by id (another account's is not found).
pub async fn find(
    db: &impl ConnectionTrait,
    caller: &Caller,
    id: &str,
) -> ApiResult<upload::Model> {
    upload::Entity::find_by_id(id.to_string())
        .one(db)
        .await?
        .filter(|u| Some(u.account_id) == caller.account_id && u.status != "failed")
        .ok_or(ApiError::NotFound("upload"))
}

/// `HEAD`: where the upload stands.
pub async fn head(
    db: &impl ConnectionTrait,
    store: &Arc<dyn BlobStore>,
    caller: &Caller,
    id: &str,
) -> ApiResult<UploadState> {
    state(store, &find(db, caller, id).await?).await
}

/// Terminates the caller's upload `busy` marks (tus termination, `DELETE`): a client
/// that will never finish it (its file was lost or altered on the device) frees its
/// place under [`Settings::max_unfinished_uploads`] at once instead of in
/// `upload_expiry_days`. Only an unfinished upload goes: a complete one is a file the
/// server keeps (records may refer to it), refused with a conflict. One that holds
/// every byte is finished first, as `HEAD` would ([`finish_held`]): stored, it is
/// complete and stays; refused by its checks, it is failed and its bytes gone already.
/// `busy` is taken by the caller, so no PATCH or sweep runs meanwhile.
pub async fn terminate(
    db: &DatabaseConnection,
    store: &Arc<dyn BlobStore>,
    settings: &Settings,
    caller: &Caller,
    busy: &Busy<'_>,
) -> ApiResult<()> {
    // Read again under the mark: a PATCH that held it may have finished the upload.
    let row = find(db, caller, busy.id()).await?;
    let complete = row.status == "complete";
    super::upload_expiry::refuse_lapsed(settings, row.created_at, complete)?;
    if !complete && state(store, &row).await?.held_unfinished() {
        match finish_held(db, store, settings, busy).await {
            Ok(_) => return Err(stays(&row)),
            Err(ApiError::Invalid(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    if complete {
        return Err(stays(&row));
    }
    discard_unfinished(db, store, std::slice::from_ref(busy)).await
}

/// The refusal to terminate a complete upload.
fn stays(row: &upload::Model) -> ApiError {
    ApiError::Conflict(format!(
        "the upload is complete: the server holds all {} bytes and keeps the file (records \
         may refer to it); only an unfinished upload can be terminated",
        row.length
    ))
}

/// Removes unfinished uploads (each marked busy by the caller, so no PATCH adds to
/// them meanwhile): the one way an unfinished upload goes, whether its client
/// terminates it or the expiry sweep discards it. The rows go first, then the bytes: a
/// crash between leaves bytes nobody names, never a row without its bytes. A row that
/// is no longer unfinished (completed under another mark) is kept.
pub async fn discard_unfinished(
    db: &DatabaseConnection,
    store: &Arc<dyn BlobStore>,
    marks: &[Busy<'_>],
) -> ApiResult<()> {
    let ids: Vec<String> = marks.iter().map(|b| b.id().to_string()).collect();
    for chunk in ids.chunks(crate::db::IN_CHUNK) {
        let _gate = crate::db::write_gate(db).await;
        upload::Entity::delete_many()
            .filter(upload::Column::Id.is_in(chunk.to_vec()))
            .filter(upload::Column::Status.eq("partial"))
            .exec(db)
            .await?;
    }
    for id in &ids {
        store.discard(id).await.map_err(io)?;
    }
    Ok(())
}

/// Marks an upload busy for the length of one PATCH (a second one at the same time is
/// refused), or while its client terminates it or the expiry sweep discards it.
pub struct Busy<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<String>>,
    id: String,
}

impl<'a> Busy<'a> {
    /// The upload it marks.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Takes `id`, or refuses with a conflict when it is taken.
    pub fn take(
        set: &'a std::sync::Mutex<std::collections::HashSet<String>>,
        id: &str,
    ) -> ApiResult<Busy<'a>> {
        let mut guard = set
            .lock()
            .map_err(|_| ApiError::Internal("upload lock poisoned".into()))?;
        if !guard.insert(id.to_string()) {
            return Err(ApiError::Conflict(
                "another PATCH to this upload is in progress".into(),
            ));
        }
        Ok(Busy {
            set,
            id: id.to_string(),
        })
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.set.lock() {
            guard.remove(&self.id);
        }
    }
}

/// A checksum the client sent with a PATCH (tus checksum extension).
#[derive(Debug, Clone)]
pub enum ChunkChecksum {
    Sha1(Vec<u8>),
    Sha256(Vec<u8>),
}

impl ChunkChecksum {
    /// Parses `Upload-Checksum: <algorithm> <base64 digest>`.
    ///
    /// A header that cannot be a checksum (no digest, not base64, the wrong length for
    /// its algorithm, an algorithm not offered) is the client's mistake and a 400: the
    /// tus checksum extension keeps 460 for a well-formed digest the body does not
    /// match, which clients answer by sending the chunk again, so a malformed header
    /// answered with 460 would be retried forever.
    pub fn parse(header: &str) -> ApiResult<ChunkChecksum> {
        let bad = |why: &str| ApiError::BadRequest(format!("Upload-Checksum {why}"));
        let (alg, value) = header
            .trim()
            .split_once(' ')
            .ok_or_else(|| bad("needs an algorithm and a digest"))?;
        let digest = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .map_err(|_| bad("digest is not base64"))?;
        let size = match alg {
            "sha1" => 20,
            "sha256" => 32,
            other => {
                return Err(bad(&format!(
                    "algorithm {other} is not supported (sha1, sha256)"
                )));
            }
        };
        if digest.len() != size {
            return Err(bad(&format!(
                "digest is {} bytes; a {alg} digest is {size}",
                digest.len()
            )));
        }
        Ok(if alg == "sha1" {
            ChunkChecksum::Sha1(digest)
        } else {
            ChunkChecksum::Sha256(digest)
        })
    }
}

/// Running digest of one PATCH body, to compare with its `Upload-Checksum`.
pub enum ChunkHasher {
    None,
    Sha1(sha1::Sha1, Vec<u8>),
    Sha256(Sha256, Vec<u8>),
}

impl ChunkHasher {
    /// A hasher for an optional checksum.
    pub fn new(checksum: Option<ChunkChecksum>) -> ChunkHasher {
        match checksum {
            None => ChunkHasher::None,
            Some(ChunkChecksum::Sha1(d)) => ChunkHasher::Sha1(sha1::Sha1::new(), d),
            Some(ChunkChecksum::Sha256(d)) => ChunkHasher::Sha256(Sha256::new(), d),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            ChunkHasher::None => {}
            ChunkHasher::Sha1(h, _) => h.update(bytes),
            ChunkHasher::Sha256(h, _) => h.update(bytes),
        }
    }

    /// Whether a checksum was given (then a body cut short is dropped, not kept).
    pub fn is_checked(&self) -> bool {
        !matches!(self, ChunkHasher::None)
    }

    /// Whether the body matched its checksum (true when none was given).
    pub fn matches(self) -> bool {
        match self {
            ChunkHasher::None => true,
            ChunkHasher::Sha1(h, d) => h.finalize().as_slice() == d.as_slice(),
            ChunkHasher::Sha256(h, d) => h.finalize().as_slice() == d.as_slice(),
        }
    }
}

/// Called when the last byte has arrived, with the writer still holding the last
/// bytes: verify and commit, or discard with a reason. `inline` is the check of the
/// whole file when it arrived in one request, fed as the bytes streamed in (then the
/// file is synced and moved to its address in one step); otherwise the file is made
/// durable and read back. `stored` says whether the upload's row exists yet (a file
/// sent whole with its creation is recorded only now).
pub async fn finalize(
    db: &DatabaseConnection,
    store: &Arc<dyn BlobStore>,
    settings: &Settings,
    upload: (upload::Model, bool),
    writer: Box<dyn UploadWriter>,
    inline: Option<FileCheck>,
) -> ApiResult<String> {
    let (upload_id, stored) = (upload.0.id.clone(), upload.1);
    let done = check_and_record(db, store, settings, upload, writer, inline).await;
    if done.is_err() && !stored {
        // No row names these bytes, whatever failed (the image check's queue full, the
        // disk, the database busy): the creation is sent again whole, so nothing of
        // this one may stay behind (the expiry sweep only finds uploads with a row).
        if let Err(e) = store.discard(&upload_id).await {
            tracing::warn!(error = %e, "could not discard an unrecorded upload's bytes");
        }
    }
    done
}

/// [`finalize`]'s work: verify, then record (or refuse with a reason).
async fn check_and_record(
    db: &DatabaseConnection,
    store: &Arc<dyn BlobStore>,
    settings: &Settings,
    upload: (upload::Model, bool),
    writer: Box<dyn UploadWriter>,
    inline: Option<FileCheck>,
) -> ApiResult<String> {
    let (row, stored) = upload;
    let small = (row.length as u64) <= settings.full_decode_limit_bytes;
    let decode = Decode {
        png: small,
        jpeg: small && settings.decode_jpeg_pixels,
    };
    let checked = match inline.map(FileCheck::finish) {
        Some(Ok((sha, content_type))) if !decode.wants(content_type) => {
            match declared_mismatch(&row, &sha) {
                Some(reason) => Err(reason),
                None => {
                    writer.finish_as_blob(&sha).await.map_err(storage_error)?;
                    Ok((sha, content_type, true))
                }
            }
        }
        Some(Err(reason)) => Err(reason),
        _ => {
            writer.finish().await.map_err(storage_error)?;
            let (id, store2) = (row.id.clone(), store.clone());
            super::cpu_slots::CpuSlots::image_checks()
                .run(move || verify(store2.as_ref(), &id, decode))
                .await?
                .and_then(|(sha, ct)| match declared_mismatch(&row, &sha) {
                    Some(reason) => Err(reason),
                    None => Ok((sha, ct, false)),
                })
        }
    };
    let (sha, content_type, moved) = match checked {
        Ok(v) => v,
        Err(reason) => {
            store.discard(&row.id).await.map_err(io)?;
            if stored {
                let mut active = row.into_active_model();
                active.status = Set("failed".into());
                active.update(db).await?;
            }
            return Err(ApiError::Invalid(reason));
        }
    };
    // One transaction records the blob and the finished upload and completes the
    // records that were waiting for it. A file that arrived whole in this request is at
    // its content address already (and the request is sent again whole if this fails).
    // Another moves there (the same bytes if another upload got there first) only once
    // the transaction is open: moved before it, a transaction that cannot begin (the
    // database busy: 503) would leave the upload holding nothing, its bytes under an
    // address no row names, and the client's resend answered 409.
    record_blob(db, store, (row, stored), &sha, content_type, moved).await?;
    Ok(sha)
}

/// Records a verified file: the blob, the finished upload and the records waiting for
/// it, in one transaction (moving the bytes to their address inside it unless `moved`).
async fn record_blob(
    db: &DatabaseConnection,
    store: &Arc<dyn BlobStore>,
    upload: (upload::Model, bool),
    sha: &str,
    content_type: &str,
    moved: bool,
) -> ApiResult<()> {
    let (row, stored) = upload;
    let sha = sha.to_string();
    let upload_id = row.id.clone();
    let backend = db.get_database_backend();
    let blob_row = blob::Entity::insert(blob::ActiveModel {
        sha256: Set(sha.clone()),
        size: Set(row.length),
        content_type: Set(content_type.into()),
        created_at: Set(super::now()),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::column(blob::Column::Sha256)
            .do_nothing()
            .to_owned(),
    )
    .build(backend);
    let upload_row = if stored {
        upload::Entity::update_many()
            .col_expr(upload::Column::Status, Expr::value("complete"))
            .col_expr(upload::Column::Sha256, Expr::value(sha.clone()))
            .col_expr(upload::Column::CompletedAt, Expr::value(super::now()))
            .filter(upload::Column::Id.eq(row.id.as_str()))
            .build(backend)
    } else {
        let done = upload::Model {
            status: "complete".into(),
            sha256: Some(sha.clone()),
            completed_at: Some(super::now()),
            ..row
        };
        upload::Entity::insert(done.into_active_model()).build(backend)
    };
    let referring = sync::referring_records(backend, &sha);
    let (gate, txn) = crate::db::begin_write(db).await?;
    if !moved {
        store.commit(&upload_id, &sha).await.map_err(io)?;
    }
    // On PostgreSQL (which has no write gate) the change counter's row is locked first,
    // as a push does, so a push storing a record that waits for this file and this
    // upload are ordered: either the push sees the file, or this sees the record. On
    // SQLite write transactions run one at a time already, and the lock would only add
    // a page to the log.
    let mut batch = Vec::with_capacity(4);
    if crate::db::is_postgres(&txn) {
        batch.push(super::push_reads::counter_lock(backend));
    }
    batch.extend([blob_row, upload_row, referring]);
    let mut waiting = Vec::new();
    for row in crate::db::query_batch(&txn, batch).await? {
        if crate::db::tag_of(&row)? == sync::REFERRING {
            waiting.push(row.try_get("", "record_id")?);
        }
    }
    sync::complete_waiting_records(&txn, waiting).await?;
    txn.commit().await?;
    drop(gate);
    Ok(())
}

/// Finalises an upload that holds all its bytes but was never finalised (see
/// [`UploadState::held_unfinished`]): the same hash, image check and commit the last
/// PATCH runs. `HEAD` and re-creation call it, so the answer a stock tus client takes
/// for done (`Upload-Offset` = `Upload-Length`) is only given once the file is stored.
/// `busy` is the upload's mark: no PATCH or expiry sweep runs meanwhile. Returns where
/// the upload stands after; an error leaves it as it was (busy) or failed (refused).
pub async fn finish_held(
    db: &DatabaseConnection,
    store: &Arc<dyn BlobStore>,
    settings: &Settings,
    busy: &Busy<'_>,
) -> ApiResult<UploadState> {
    // Read again under the mark: a PATCH that held it may have finished the upload.
    let row = upload::Entity::find_by_id(busy.id().to_string())
        .one(db)
        .await?
        .filter(|u| u.status != "failed")
        .ok_or(ApiError::NotFound("upload"))?;
    let at = state(store, &row).await?;
    if !at.held_unfinished() {
        return Ok(at);
    }
    let writer = store
        .append(&row.id, at.length)
        .await
        .map_err(storage_error)?;
    finalize(db, store, settings, (row, true), writer, None).await?;
    Ok(UploadState {
        offset: at.length,
        complete: true,
        ..at
    })
}

/// Why the file is refused when its hash is not the one its creation declared.
fn declared_mismatch(row: &upload::Model, sha: &str) -> Option<String> {
    row.sha256
        .as_ref()
        .filter(|declared| declared.as_str() != sha)
        .map(|declared| {
            format!("the file's SHA-256 is {sha}, not the declared {declared}; upload refused")
        })
}

/// Which formats get a full pixel decode on top of the structural check.
#[derive(Debug, Clone, Copy)]
struct Decode {
    png: bool,
    jpeg: bool,
}

impl Decode {
    fn wants(self, content_type: &str) -> bool {
        match content_type {
            "image/png" => self.png,
            _ => self.jpeg,
        }
    }
}

/// The SHA-256 of a whole file and whether it is a well-formed JPEG (structural walk,
/// [`JpegScan`]) or PNG (signature), fed the bytes in order, in constant memory.
pub struct FileCheck {
    hasher: Sha256,
    jpeg: Option<JpegScan>,
    png: bool,
    started: bool,
}

impl Default for FileCheck {
    fn default() -> Self {
        FileCheck {
            hasher: Sha256::new(),
            jpeg: None,
            png: false,
            started: false,
        }
    }
}

impl FileCheck {
    /// A check that has seen no bytes.
    pub fn new() -> FileCheck {
        FileCheck::default()
    }

    /// Feeds the next bytes of the file.
    pub fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if !self.started {
            self.started = true;
            if bytes.starts_with(&[0xFF]) {
                self.jpeg = Some(JpegScan::new());
            } else {
                self.png = bytes.starts_with(&[0x89]);
            }
        }
        self.hasher.update(bytes);
        if let Some(scan) = self.jpeg.as_mut() {
            scan.feed(bytes);
        }
    }

    /// (sha256 hex, content type), or why the file is not an image. A PNG's signature is
    /// checked here, the rest of it by the decoder; a JPEG's declared size is held to
    /// [`MAX_PIXELS`] here, a PNG's when its header is read.
    pub fn finish(self) -> Result<(String, &'static str), String> {
        let sha = hex::encode(self.hasher.finalize());
        match self.jpeg {
            Some(scan) => {
                let info = scan.finish()?;
                within_pixel_limit(u32::from(info.width), u32::from(info.height))?;
                Ok((sha, "image/jpeg"))
            }
            None if self.png => Ok((sha, "image/png")),
            None => Err("the file is not a JPEG or PNG image".into()),
        }
    }
}

/// Refuses an image whose header declares more than [`MAX_PIXELS`], whichever path
/// checks it (structural walk or decode), so the limit the protocol documents holds
/// even where no pixel is decoded.
fn within_pixel_limit(width: u32, height: u32) -> Result<(), String> {
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!(
            "the image is too large to check: it declares {width}×{height} pixels, over the \
             limit of {} megapixels (a photo from the field client is a few megapixels)",
            MAX_PIXELS >> 20
        ));
    }
    Ok(())
}

/// Reads the upload back: hashes and checks it, and decodes it when `decode` asks;
/// returns (sha256, content type).
fn verify(
    store: &dyn BlobStore,
    id: &str,
    decode: Decode,
) -> Result<(String, &'static str), String> {
    let mut reader = store
        .open_upload(id)
        .map_err(|e| format!("cannot read the upload: {e}"))?;
    let mut check = FileCheck::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| format!("cannot read the upload: {e}"))?;
        if n == 0 {
            break;
        }
        check.feed(&buf[..n]);
    }
    let (sha, content_type) = check.finish()?;
    if content_type == "image/jpeg" && !decode.jpeg {
        return Ok((sha, content_type));
    }
    reader.rewind().map_err(|e| e.to_string())?;
    use std::io::Seek as _;
    let mut reader = std::io::BufReader::new(reader);
    let (width, height) = image::ImageReader::new(&mut reader)
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .into_dimensions()
        .map_err(|e| format!("the file does not decode as an image: {e}"))?;
    within_pixel_limit(width, height)?;
    reader.rewind().map_err(|e| e.to_string())?;
    let mut image = image::ImageReader::new(reader)
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    image.limits(limits);
    let decoded = if decode.wants(content_type) {
        image.decode().map(drop)
    } else {
        image.into_dimensions().map(drop)
    };
    decoded.map_err(|e| match e {
        image::ImageError::Limits(_) => format!(
            "the image is too large to check: its pixels would take over {} MiB decoded \
             (a photo from the field client is a few megapixels)",
            MAX_DECODED_BYTES >> 20
        ),
        e => format!("the file does not decode as an image: {e}"),
    })?;
    Ok((sha, content_type))
}

/// The most memory a full decode of an upload may take (the decoder refuses a larger
/// image from its header, before allocating): 48 megapixels of RGBA. A small file can
/// declare huge dimensions (a PNG of one colour compresses ~1000:1), and the image
/// crate's own default would let each decode take 512 MiB.
pub const MAX_DECODED_BYTES: u64 = MAX_PIXELS * 4;

/// The most pixels an upload may declare: 48 megapixels (a 12-megapixel phone camera
/// leaves four times the room).
pub const MAX_PIXELS: u64 = 48 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_checksum_headers_parse() {
        let md = parse_metadata("sha256 YWJj,filename aW1nLmpwZw==,flag").unwrap();
        assert_eq!(
            md,
            vec![
                ("sha256".into(), "abc".into()),
                ("filename".into(), "img.jpg".into()),
                ("flag".into(), String::new())
            ]
        );
        assert!(parse_metadata("sha256 !!!").is_err());
        let twice = parse_metadata("sha256 YWJj,sha256 ZGVm")
            .unwrap_err()
            .to_string();
        assert!(twice.contains("sha256 twice"), "{twice}");
        let mut h = ChunkHasher::new(Some(
            ChunkChecksum::parse("sha1 qZk+NkcGgWq6PiVxeFDCbJzQ2J0=").unwrap(),
        ));
        h.update(b"abc");
        assert!(h.matches(), "sha1(abc)");
        assert!(ChunkChecksum::parse("md5 AAAA").is_err());
        // Well-formed but the wrong size for its algorithm: refused, not compared.
        assert!(ChunkChecksum::parse("sha1 ").is_err(), "empty digest");
        assert!(ChunkChecksum::parse("sha256 qZk+NkcGgWq6PiVxeFDCbJzQ2J0=").is_err());
    }
}
