//! tus 1.0.0 resumable uploads (core, creation, checksum, expiration and termination
//! extensions) under `/api/v1/files`, so photos resume from the last byte the server
//! holds and a stock tus client can upload. Upload-Metadata `sha256` (hex) names the
//! file the client expects.

use actix_web::http::header::HeaderMap;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use crate::AppState;
use crate::entities::upload;
use crate::error::{ApiError, ApiResult};
use crate::services::Caller;
use crate::services::upload_expiry;
use crate::services::uploads::{self, ChunkChecksum, ChunkHasher, Creation, FileCheck};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn require_tus(req: &HttpRequest) -> ApiResult<()> {
    match header(req.headers(), "Tus-Resumable") {
        Some("1.0.0") => Ok(()),
        _ => Err(ApiError::TusVersion),
    }
}

/// A header tus gives one value (`Upload-Length`, `Upload-Offset`, `Upload-Metadata`,
/// `Upload-Checksum`, `Content-Type`), if sent. Sent twice it is refused naming it:
/// taking either copy would be a guess, and the copy not taken may be the one the client
/// meant (QA s23c F11: of two `Upload-Offset`s the first was silently used). A value
/// that is not ASCII text is refused too, not taken for an absent header.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> ApiResult<Option<&'a str>> {
    let mut values = headers.get_all(name);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::BadRequest(format!(
            "{name} is sent more than once: send it once"
        )));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| ApiError::BadRequest(format!("{name} is not ASCII text")))
}

/// A tus number header: decimal digits only (Rust's parser would also take `+5`).
fn number(req: &HttpRequest, name: &str) -> ApiResult<u64> {
    let text = single(req.headers(), name)?
        .ok_or_else(|| ApiError::BadRequest(format!("{name} is required")))?
        .trim();
    let bad = || ApiError::BadRequest(format!("{name} must be a non-negative integer"));
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse().map_err(|_| bad())
}

#[utoipa::path(options, path = "/api/v1/files", responses((status = 204, description = "tus 1.0.0: `Tus-Version`, `Tus-Extension` (creation, creation-with-upload, checksum, expiration, termination), `Tus-Max-Size`, `Tus-Checksum-Algorithm: sha1,sha256`")))]
/// `OPTIONS /files`: what this server supports.
pub async fn options(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("Tus-Version", "1.0.0"))
        .insert_header((
            "Tus-Extension",
            "creation,creation-with-upload,checksum,expiration,termination",
        ))
        .insert_header(("Tus-Max-Size", state.settings.max_upload_bytes.to_string()))
        .insert_header(("Tus-Checksum-Algorithm", "sha1,sha256"))
        .finish()
}

/// Whether a request carries upload bytes: its `Content-Type` is
/// `application/offset+octet-stream`, compared as RFC 9110 compares media types (type
/// and subtype without regard to case, parameters after `;` allowed), so
/// `Application/Offset+Octet-Stream` is the same type.
fn carries_bytes(req: &HttpRequest) -> ApiResult<bool> {
    Ok(single(req.headers(), "Content-Type")?.is_some_and(is_offset_octet_stream))
}

/// Whether a request's body holds no byte (read up to its first chunk).
async fn is_empty(body: &mut web::Payload) -> bool {
    loop {
        match body.next().await {
            None => return true,
            Some(Ok(chunk)) if chunk.is_empty() => continue,
            Some(_) => return false,
        }
    }
}

/// Whether a `Content-Type` value names `application/offset+octet-stream` (see
/// [`carries_bytes`]).
fn is_offset_octet_stream(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/offset+octet-stream")
}

/// The chunk's `Upload-Checksum`, if sent. A value that is not ASCII text is refused,
/// not taken for an absent header: the client asked for the chunk to be verified.
fn checksum_of(req: &HttpRequest) -> ApiResult<Option<ChunkChecksum>> {
    single(req.headers(), "Upload-Checksum")?
        .map(ChunkChecksum::parse)
        .transpose()
}

/// Finalises an upload that holds all its bytes but was never finalised (see
/// [`uploads::finish_held`]). While a PATCH or the expiry sweep holds the upload the
/// answer is 503 busy: reporting the offset as it stands would tell a tus client the
/// upload is done before it is, and nothing changed, so a retry is safe.
async fn finish_held(state: &AppState, id: &str) -> ApiResult<uploads::UploadState> {
    let busy = uploads::Busy::take(&state.busy_uploads, id).map_err(|_| ApiError::Busy)?;
    uploads::finish_held(&state.db, &state.store, &state.settings, &busy).await
}

#[utoipa::path(post, path = "/api/v1/files",
    params(("Upload-Length" = u64, Header, description = "the file's size in bytes"), ("Upload-Metadata" = Option<String>, Header, description = "`sha256 <base64 of the lowercase hex SHA-256>`, and optionally `filename`")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream", description = "optional: the file's first bytes (creation-with-upload)"),
    responses((status = 201, description = "`Location` of the upload and `Upload-Offset` (= length when the file is done)"), (status = 403, description = "forbidden: not a helper's device"), (status = 413, description = "payload_too_large"), (status = 422, description = "invalid: the file is not the image it claims"), (status = 429, description = "too_many_uploads: the account holds `max_unfinished_uploads` (default 32) unfinished uploads; finish or let one expire")))]
/// `POST /files`: creates an upload (or returns the unfinished one for the same file).
/// With `Content-Type: application/offset+octet-stream` the body is the file's first
/// bytes (tus creation-with-upload): a photo sent whole takes one request, not two.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    detached(create_upload(req, state, caller, body)).await
}

async fn create_upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    require_tus(&req)?;
    if req.headers().contains_key("Upload-Defer-Length") {
        return Err(ApiError::BadRequest(
            "Upload-Defer-Length is not supported: send Upload-Length".into(),
        ));
    }
    let length = number(&req, "Upload-Length")?;
    let metadata = single(req.headers(), "Upload-Metadata")?
        .map(uploads::parse_metadata)
        .transpose()?
        .unwrap_or_default();
    let declared = metadata
        .iter()
        .find(|(k, _)| k == "sha256")
        .map(|(_, v)| v.as_str());
    let with_bytes = carries_bytes(&req)?;
    let checksum = if with_bytes { checksum_of(&req)? } else { None };
    upload_expiry::sweep_if_due(&state);
    let creation = uploads::create(
        &state.db,
        &state.store,
        &state.settings,
        &caller,
        length,
        declared,
    )
    .await?;
    let (id, offset, created) = match creation {
        // An upload nothing has reached yet takes the bytes; any other already holds
        // some (or all): the client continues from its offset.
        Creation::Existing(row, at) if with_bytes && at.offset == 0 && !at.complete => {
            let _busy = take(&state, &row.id)?;
            let (id, created) = (row.id.clone(), row.created_at);
            (
                id,
                receive(&state, (row, true), 0, checksum, body).await?,
                created,
            )
        }
        Creation::Existing(_, at) if at.held_unfinished() => {
            let at = finish_held(&state, &at.id).await?;
            (at.id, at.offset, at.created_at)
        }
        Creation::Existing(_, at) => (at.id, at.offset, at.created_at),
        Creation::New(row) if with_bytes => {
            let (id, created) = (row.id.clone(), row.created_at);
            (
                id,
                receive(&state, (row, false), 0, checksum, body).await?,
                created,
            )
        }
        Creation::New(row) => {
            uploads::keep_unfinished(&state.db, &state.settings, &row).await?;
            (row.id, 0, row.created_at)
        }
    };
    let mut resp = HttpResponse::Created();
    resp.insert_header(("Location", format!("/api/v1/files/{id}")))
        .insert_header(("Upload-Offset", offset.to_string()));
    expiry(&mut resp, &state, created, offset < length);
    Ok(synced(resp.finish()))
}

#[utoipa::path(head, path = "/api/v1/files/{id}", params(("id" = String, Path, description = "the upload")),
    responses((status = 200, description = "`Upload-Offset`, `Upload-Length`, `Cache-Control: no-store`"), (status = 404, description = "no such upload of the caller's")))]
/// `HEAD /files/{id}`: the offset to resume from.
pub async fn head(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    require_tus(&req)?;
    let upload = {
        let db = crate::db::quick_read(&state.db)?;
        uploads::head(&db, &state.store, &caller, &id).await?
    };
    upload_expiry::refuse_lapsed(&state.settings, upload.created_at, upload.complete)?;
    let upload = if upload.held_unfinished() {
        finish_held(&state, &upload.id).await?
    } else {
        upload
    };
    let mut resp = HttpResponse::Ok();
    resp.insert_header(("Upload-Offset", upload.offset.to_string()))
        .insert_header(("Upload-Length", upload.length.to_string()))
        .insert_header(("Cache-Control", "no-store"));
    expiry(&mut resp, &state, upload.created_at, !upload.complete);
    Ok(resp.finish())
}

/// Adds `Upload-Expires` to the answer about an upload created at `created`, when it is
/// `unfinished` (a finished upload does not expire).
fn expiry(
    resp: &mut actix_web::HttpResponseBuilder,
    state: &AppState,
    created: chrono::DateTime<chrono::Utc>,
    unfinished: bool,
) {
    if unfinished {
        let at = upload_expiry::expires_header(&state.settings, created);
        resp.insert_header(("Upload-Expires", at));
    }
}

#[utoipa::path(patch, path = "/api/v1/files/{id}", params(("id" = String, Path, description = "the upload"), ("Upload-Offset" = u64, Header, description = "where these bytes go: the server's offset")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses((status = 204, description = "`Upload-Offset` after the bytes; at the length, the file was hashed, checked and stored"), (status = 409, description = "the offset is not the server's"),
        (status = 460, description = "checksum mismatch (`Upload-Checksum`): the chunk was dropped"), (status = 422, description = "invalid: the file's hash or image check failed")))]
/// `PATCH /files/{id}`: appends bytes at `Upload-Offset`, streaming them to storage.
pub async fn patch(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    detached(append(req, state, caller, id.into_inner(), body)).await
}

async fn append(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: String,
    mut body: web::Payload,
) -> ApiResult<HttpResponse> {
    require_tus(&req)?;
    if !carries_bytes(&req)? {
        return Err(ApiError::UnsupportedMediaType(
            "PATCH needs Content-Type: application/offset+octet-stream".into(),
        ));
    }
    let offset = number(&req, "Upload-Offset")?;
    // tus sends no length on PATCH; one sent twice is refused like any doubled header
    // rather than ignored (QA s24c F7).
    single(req.headers(), "Upload-Length")?;
    let checksum = checksum_of(&req)?;
    let row = uploads::find(&crate::db::quick_read(&state.db)?, &caller, &id).await?;
    upload_expiry::refuse_lapsed(&state.settings, row.created_at, row.status == "complete")?;
    let _busy = take(&state, &row.id)?;
    if row.status == "complete" {
        // A client that lost the answer to its last PATCH, or that took a creation's
        // `Upload-Offset` for 0, asks the offset and sends what is left: nothing. As
        // tusd does, that is answered as done, so a stock client's retry converges
        // (QA s31a S1: tuspy failed on a file the server held).
        if offset == row.length as u64 && is_empty(&mut body).await {
            // Its checksum, if sent, is held to the empty chunk, as any chunk's is.
            if !ChunkHasher::new(checksum).matches() {
                return Err(ApiError::ChecksumMismatch);
            }
            let mut resp = HttpResponse::NoContent();
            resp.insert_header(("Upload-Offset", offset.to_string()));
            return Ok(synced(resp.finish()));
        }
        return Err(ApiError::Conflict(format!(
            "the upload is complete: the server holds all {} bytes; nothing more to send",
            row.length
        )));
    }
    if offset > row.length as u64 {
        let held = uploads::state(&state.store, &row).await?.offset;
        return Err(ApiError::Conflict(format!(
            "Upload-Offset {offset} does not match the server's offset {held}"
        )));
    }
    let (length, created) = (row.length as u64, row.created_at);
    let new_offset = receive(&state, (row, true), offset, checksum, body).await?;
    let mut resp = HttpResponse::NoContent();
    resp.insert_header(("Upload-Offset", new_offset.to_string()));
    expiry(&mut resp, &state, created, new_offset < length);
    Ok(synced(resp.finish()))
}

#[utoipa::path(delete, path = "/api/v1/files/{id}", params(("id" = String, Path, description = "the upload")),
    responses((status = 204, description = "terminated: the unfinished upload and its bytes are gone, and it no longer counts toward `max_unfinished_uploads`"), (status = 404, description = "no such upload of the caller's (or past its expiry)"),
        (status = 409, description = "conflict: the upload is complete; the server keeps the file"), (status = 409, description = "upload_in_progress: another request's bytes to the upload are still arriving; nothing was removed, try again")))]
/// `DELETE /files/{id}` (tus termination): ends an unfinished upload its client will
/// never finish (its file was lost or altered on the device), so its place under the
/// account's limit is freed now rather than at its expiry (QA s25a F12). While a PATCH
/// holds the upload the answer is 409 `upload_in_progress` and nothing is removed.
pub async fn terminate(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    require_tus(&req)?;
    // Detached: a client hanging up must not leave the row gone and its bytes behind.
    detached(async move {
        // Another account's upload is not found before any mark is taken on its id.
        let row = uploads::find(&crate::db::quick_read(&state.db)?, &caller, &id).await?;
        let busy = take(&state, &row.id)?;
        uploads::terminate(&state.db, &state.store, &state.settings, &caller, &busy).await?;
        Ok(HttpResponse::NoContent().finish())
    })
    .await
}

/// Marks upload `id` busy for a request that sends it bytes; taken already (another
/// request's bytes still arriving), the answer is `upload_in_progress`.
fn take<'a>(state: &'a AppState, id: &str) -> ApiResult<uploads::Busy<'a>> {
    uploads::Busy::take(&state.busy_uploads, id).map_err(|e| match e {
        ApiError::Conflict(_) => ApiError::UploadInProgress {
            idle_secs: state.settings.upload_idle_secs,
        },
        other => other,
    })
}

/// Upload answers need no group commit: the bytes they acknowledge were synced by the
/// store (see [`crate::http::SyncedByHandler`]).
fn synced(mut resp: HttpResponse) -> HttpResponse {
    resp.extensions_mut().insert(crate::http::SyncedByHandler);
    resp
}

/// Runs a request that receives upload bytes as a task of its own: when a client's
/// connection drops, the server drops the request's handler, and what arrived before
/// the cut must still be kept (and a new upload recorded) so the client can resume.
async fn detached(
    work: impl std::future::Future<Output = ApiResult<HttpResponse>> + 'static,
) -> ApiResult<HttpResponse> {
    actix_web::rt::spawn(work)
        .await
        .map_err(|e| ApiError::Internal(format!("upload task: {e}")))?
}

/// Streams a request body into an upload at `offset` (the store checks that it holds
/// exactly that many bytes); returns the new offset. `upload` is the row and whether
/// it is stored yet. A chunk whose checksum fails is dropped; bytes before a cut are
/// kept (unless checksummed); the last byte verifies and commits the file.
async fn receive(
    state: &AppState,
    upload: (upload::Model, bool),
    offset: u64,
    checksum: Option<ChunkChecksum>,
    mut body: web::Payload,
) -> ApiResult<u64> {
    let (row, stored) = upload;
    let length = row.length as u64;
    let room = length.saturating_sub(offset);
    let mut hasher = ChunkHasher::new(checksum);
    // A file sent whole in this request is hashed and checked as it streams in.
    let mut whole = (offset == 0).then(FileCheck::new);
    let mut writer = state
        .store
        .append(&row.id, offset)
        .await
        .map_err(uploads::storage_error)?;
    writer.expect(room);
    let mut received: u64 = 0;
    let mut cut = false;
    let mut silent = false;
    let idle = std::time::Duration::from_secs(state.settings.upload_idle_secs.max(1));
    // A body silent for `idle` is cut like a broken one: a dead connection would
    // otherwise hold the upload (every other request to it answered "in progress")
    // for as long as the network keeps it open (QA s25c F2).
    loop {
        let chunk = match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                cut = true;
                break;
            }
            Err(_) => {
                (cut, silent) = (true, true);
                break;
            }
        };
        received += chunk.len() as u64;
        if received > room {
            writer.abandon().await.map_err(uploads::storage_error)?;
            return Err(ApiError::BadRequest(format!(
                "the body goes past Upload-Length ({length} bytes)"
            )));
        }
        hasher.update(&chunk);
        if let Some(w) = whole.as_mut() {
            w.feed(&chunk);
        }
        writer.write(&chunk).await.map_err(uploads::storage_error)?;
    }
    let idle = |offset| ApiError::UploadIdle {
        idle_secs: state.settings.upload_idle_secs.max(1),
        offset,
    };
    if hasher.is_checked() && (cut || !hasher.matches()) {
        writer.abandon().await.map_err(uploads::storage_error)?;
        return Err(if silent {
            idle(offset)
        } else if cut {
            ApiError::BadRequest("the connection broke mid-chunk; resend it".into())
        } else {
            ApiError::ChecksumMismatch
        });
    }
    // A body cut after its last byte (a chunked body without its terminator) still
    // delivered the whole file: it is finalised below like any other, or the upload
    // would hold every byte and never be stored.
    if offset + received < length {
        let new_offset = writer.finish().await.map_err(uploads::storage_error)?;
        if !stored && let Err(e) = uploads::keep_unfinished(&state.db, &state.settings, &row).await
        {
            // No row names these bytes: nothing would ever discard them.
            if let Err(e) = state.store.discard(&row.id).await {
                tracing::warn!(error = %e, "could not discard an unrecorded upload's bytes");
            }
            return Err(e);
        }
        if silent {
            return Err(idle(new_offset));
        }
        if cut {
            return Err(ApiError::BadRequest(format!(
                "the connection broke; resume from offset {new_offset}"
            )));
        }
        return Ok(new_offset);
    }
    let (account, id) = (row.account_id, row.id.clone());
    let sha = uploads::finalize(
        &state.db,
        &state.store,
        &state.settings,
        (row, stored),
        writer,
        whole,
    )
    .await?;
    // The file is stored: a duplicate upload of it left by a run killed mid-creation
    // would hold a place under the account's limit for nothing.
    if let Err(e) = uploads::discard_others(
        &state.db,
        &state.store,
        &state.busy_uploads,
        (account, &id),
        &sha,
    )
    .await
    {
        tracing::warn!(error = %e, "could not discard duplicate unfinished uploads");
    }
    Ok(length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn length(value: &str) -> ApiResult<u64> {
        number(
            &TestRequest::default()
                .insert_header(("Upload-Length", value))
                .to_http_request(),
            "Upload-Length",
        )
    }

    #[test]
    fn tus_numbers_are_plain_decimal_digits() {
        assert_eq!(length("5").ok(), Some(5));
        assert_eq!(length(" 1024 ").ok(), Some(1024));
        for bad in ["+5", "-5", "5.0", "0x10", "", "18446744073709551616"] {
            let e = length(bad).expect_err(bad);
            assert!(e.to_string().contains("Upload-Length"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_tus_header_sent_twice_is_refused_by_name() {
        let req = TestRequest::default()
            .append_header(("Upload-Offset", "0"))
            .append_header(("Upload-Offset", "5"))
            .to_http_request();
        let e = number(&req, "Upload-Offset").expect_err("two offsets");
        assert!(matches!(e, ApiError::BadRequest(_)), "{e:?}");
        assert!(
            e.to_string()
                .contains("Upload-Offset is sent more than once"),
            "{e}"
        );
    }

    #[test]
    fn the_offset_media_type_is_compared_as_rfc_9110_says() {
        for same in [
            "application/offset+octet-stream",
            "Application/Offset+Octet-Stream",
            "APPLICATION/OFFSET+OCTET-STREAM; charset=binary",
            " application/offset+octet-stream ;x=y",
        ] {
            assert!(is_offset_octet_stream(same), "{same}");
        }
        for other in [
            "application/octet-stream",
            "application/offset+octet-streamx",
            "",
        ] {
            assert!(!is_offset_octet_stream(other), "{other}");
        }
    }
}
