//! One file to the server over tus 1.0 (core, creation, creation-with-upload, checksum),
//! resuming from the last byte the server holds.
//!
//! The first chunk travels with the creation (tus creation-with-upload), so a photo
//! that fits in one chunk takes one request. The upload URL is saved in the store as
//! soon as the server creates it, so a sync killed mid-file continues the same upload
//! next time (and a creation cut before its answer is found again by the file's hash).
//! Before sending more, the uploader asks the server's offset (`HEAD`) and sends from
//! there in chunks (`PATCH`), each with its SHA-256 in `Upload-Checksum`: a chunk cut
//! off mid-way is dropped by the server, so a cut costs at most one chunk. After a cut
//! the chunk size halves (down to [`MIN_CHUNK`]) so a link that only carries a little
//! at a time still gets the file through; steady success doubles it back.
//!
//! 409 (the offset moved: a PATCH whose answer was lost, or one still finishing on
//! the server) and 460 (the chunk arrived damaged) are answered by asking the offset
//! again; 404 (the upload is gone: discarded or failed) by creating a new one. 413
//! (over the server's limit) and 422 (the finished file did not match its SHA-256 or
//! is not a JPEG/PNG) are final for this file.

use std::time::Instant;

use bangfu_shared::visit::sha256_hex;

use super::retry::Attempts;
use super::{Reporter, SyncOptions};
use crate::api::ApiClient;
use crate::error::{ClientError, Result};
use crate::store::Store;

/// The smallest chunk a weak link falls back to.
pub const MIN_CHUNK: usize = 16 * 1024;

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uploaded {
    /// The server has the whole file (now, or already had it).
    Complete {
        /// Bytes this call sent in successful `PATCH`es.
        sent: u64,
        /// The server's offset when this call first asked (> 0: a resumed upload).
        resumed_from: u64,
    },
    /// The server refused the file for good (413, 422); the reason is for the helper.
    Refused(String),
}

/// Uploads `bytes` (whose SHA-256 is `sha256`) in chunks of at most
/// `opts.chunk_bytes`, retrying under `opts.retry` until `deadline`.
pub async fn upload(
    api: &ApiClient,
    store: &Store,
    sha256: &str,
    bytes: &[u8],
    opts: &SyncOptions,
    deadline: Instant,
    reporter: &mut Reporter<'_>,
) -> Result<Uploaded> {
    let (max_chunk, checksum) = (opts.chunk_bytes, opts.checksum);
    if sha256_hex(bytes) != sha256 {
        return Err(ClientError::Corrupt(format!(
            "image {sha256} on this device does not match its hash; it cannot be sent"
        )));
    }
    let length = bytes.len() as u64;
    let max_chunk = max_chunk.max(MIN_CHUNK);
    let mut chunk = max_chunk;
    let mut url = store.upload_url(sha256).await?;
    // The offset the server reported last, if nothing since may have moved it.
    let mut offset: Option<u64> = None;
    // Where this file stands in the progress report.
    let mut reported: u64 = 0;
    let mut resumed_from: Option<u64> = None;
    let mut sent: u64 = 0;
    let mut successes_in_a_row = 0u32;
    let mut attempts = Attempts::new(opts.retry, deadline);
    loop {
        let step: Result<u64> = async {
            let u = match &url {
                Some(u) => u.clone(),
                None => {
                    // The first chunk travels with the creation (creation-with-upload).
                    let first = bytes.get(..chunk.min(bytes.len())).unwrap_or_default();
                    let n = first.len() as u64;
                    let created = api
                        .tus_create(sha256, length, first.to_vec(), checksum)
                        .await?;
                    store.save_upload(sha256, &created.url, length).await?;
                    url = Some(created.url.clone());
                    // The server took the chunk unless it already held (some of) the file.
                    let took = created.offset == n;
                    if took {
                        sent += n;
                    }
                    if resumed_from.is_none() {
                        resumed_from = Some(if took { 0 } else { created.offset });
                    }
                    offset = Some(created.offset);
                    created.url
                }
            };
            let at = match offset.take() {
                Some(o) => o,
                None => api.tus_head(&u).await?,
            };
            if resumed_from.is_none() {
                resumed_from = Some(at);
            }
            reporter.file_at(&mut reported, at.min(length));
            if at >= length {
                return Ok(at);
            }
            let start = usize::try_from(at).unwrap_or(bytes.len()).min(bytes.len());
            let end = start.saturating_add(chunk).min(bytes.len());
            let body = bytes.get(start..end).unwrap_or_default().to_vec();
            let n = body.len() as u64;
            let next = api.tus_patch(&u, at, body, checksum).await?;
            sent += n;
            offset = Some(next);
            reporter.file_at(&mut reported, next.min(length));
            Ok(next)
        }
        .await;
        match step {
            Ok(at) if at >= length => {
                store.forget_upload(sha256).await?;
                return Ok(Uploaded::Complete {
                    sent,
                    resumed_from: resumed_from.unwrap_or(0),
                });
            }
            Ok(_) => {
                attempts.progressed();
                successes_in_a_row += 1;
                if successes_in_a_row >= 4 && chunk < max_chunk {
                    chunk = chunk.saturating_mul(2).min(max_chunk);
                    successes_in_a_row = 0;
                }
            }
            Err(e) => {
                successes_in_a_row = 0;
                offset = None;
                match e.status() {
                    Some(413 | 422) => {
                        store.forget_upload(sha256).await?;
                        return Ok(Uploaded::Refused(e.to_string()));
                    }
                    Some(404) if url.is_some() => {
                        // The upload is gone from the server: start another.
                        store.forget_upload(sha256).await?;
                        url = None;
                    }
                    Some(401) => return Err(ClientError::SessionExpired),
                    Some(409 | 460) => {}
                    _ if e.is_transient() => chunk = (chunk / 2).max(MIN_CHUNK),
                    _ => return Err(e),
                }
                match attempts.failed() {
                    Some(pause) => {
                        reporter.retrying(&e, pause);
                        tokio::time::sleep(pause).await;
                    }
                    None => return Err(e),
                }
            }
        }
    }
}
