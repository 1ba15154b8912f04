//! tus 1.0.0 resumable uploads (core, creation and checksum extensions) under
//! `/api/v1/files`, so photos resume from the last byte the server holds and a stock tus
//! client can upload. Upload-Metadata `sha256` (hex) names the file the client expects.

use actix_web::http::header::HeaderMap;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::services::Caller;
use crate::services::uploads::{self, ChunkChecksum, ChunkHasher, FileCheck};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn require_tus(req: &HttpRequest) -> ApiResult<()> {
    match header(req.headers(), "Tus-Resumable") {
        Some("1.0.0") => Ok(()),
        _ => Err(ApiError::TusVersion),
    }
}

fn number(req: &HttpRequest, name: &str) -> ApiResult<u64> {
    header(req.headers(), name)
        .ok_or_else(|| ApiError::BadRequest(format!("{name} is required")))?
        .trim()
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{name} must be a non-negative integer")))
}

/// `OPTIONS /files`: what this server supports.
pub async fn options(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("Tus-Version", "1.0.0"))
        .insert_header(("Tus-Extension", "creation,checksum"))
        .insert_header(("Tus-Max-Size", state.settings.max_upload_bytes.to_string()))
        .insert_header(("Tus-Checksum-Algorithm", "sha1,sha256"))
        .finish()
}

/// `POST /files`: creates an upload (or returns the unfinished one for the same file).
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<HttpResponse> {
    require_tus(&req)?;
    if header(req.headers(), "Upload-Defer-Length").is_some() {
        return Err(ApiError::BadRequest(
            "Upload-Defer-Length is not supported: send Upload-Length".into(),
        ));
    }
    let length = number(&req, "Upload-Length")?;
    let metadata = header(req.headers(), "Upload-Metadata")
        .map(uploads::parse_metadata)
        .transpose()?
        .unwrap_or_default();
    let declared = metadata
        .iter()
        .find(|(k, _)| k == "sha256")
        .map(|(_, v)| v.as_str());
    let upload = uploads::create(
        &state.db,
        &state.store,
        &state.settings,
        &caller,
        length,
        declared,
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/files/{}", upload.id)))
        .insert_header(("Upload-Offset", upload.offset.to_string()))
        .finish())
}

/// `HEAD /files/{id}`: the offset to resume from.
pub async fn head(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    require_tus(&req)?;
    let upload = uploads::head(&state.db, &state.store, &caller, &id).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Upload-Offset", upload.offset.to_string()))
        .insert_header(("Upload-Length", upload.length.to_string()))
        .insert_header(("Cache-Control", "no-store"))
        .finish())
}

/// Marks an upload busy for the length of one PATCH.
struct Busy<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<String>>,
    id: String,
}

impl<'a> Busy<'a> {
    fn take(
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

/// `PATCH /files/{id}`: appends bytes at `Upload-Offset`, streaming them to storage.
pub async fn patch(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    mut body: web::Payload,
) -> ApiResult<HttpResponse> {
    require_tus(&req)?;
    if header(req.headers(), "Content-Type") != Some("application/offset+octet-stream") {
        return Err(ApiError::UnsupportedMediaType(
            "PATCH needs Content-Type: application/offset+octet-stream".into(),
        ));
    }
    let offset = number(&req, "Upload-Offset")?;
    let checksum = header(req.headers(), "Upload-Checksum")
        .map(ChunkChecksum::parse)
        .transpose()?;
    let row = uploads::find(&state.db, &caller, &id).await?;
    let _busy = Busy::take(&state.busy_uploads, &row.id)?;
    let current = uploads::state(&state.store, &row).await?;
    if current.complete || offset != current.offset {
        return Err(ApiError::Conflict(format!(
            "Upload-Offset {offset} does not match the server's offset {}",
            current.offset
        )));
    }
    let room = current.length - current.offset;
    let mut hasher = ChunkHasher::new(checksum);
    // A file sent whole in this PATCH is hashed and checked as it streams in.
    let mut whole = (offset == 0).then(FileCheck::new);
    let mut writer = state
        .store
        .append(&row.id, offset)
        .await
        .map_err(|e| ApiError::Internal(format!("storage: {e}")))?;
    let mut received: u64 = 0;
    let mut cut = false;
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else {
            cut = true;
            break;
        };
        received += chunk.len() as u64;
        if received > room {
            drop(writer);
            state
                .store
                .truncate(&row.id, offset)
                .await
                .map_err(|e| ApiError::Internal(format!("storage: {e}")))?;
            return Err(ApiError::BadRequest(format!(
                "the body goes past Upload-Length ({} bytes)",
                current.length
            )));
        }
        hasher.update(&chunk);
        if let Some(w) = whole.as_mut() {
            w.feed(&chunk);
        }
        writer
            .write(&chunk)
            .await
            .map_err(|e| ApiError::Internal(format!("storage: {e}")))?;
    }
    let new_offset = writer
        .finish()
        .await
        .map_err(|e| ApiError::Internal(format!("storage: {e}")))?;
    if hasher.is_checked() && (cut || !hasher.matches()) {
        state
            .store
            .truncate(&row.id, offset)
            .await
            .map_err(|e| ApiError::Internal(format!("storage: {e}")))?;
        return Err(if cut {
            ApiError::BadRequest("the connection broke mid-chunk; resend it".into())
        } else {
            ApiError::ChecksumMismatch
        });
    }
    if cut {
        return Err(ApiError::BadRequest(format!(
            "the connection broke; resume from offset {new_offset}"
        )));
    }
    if new_offset == current.length {
        uploads::finalize(&state.db, &state.store, &state.settings, row, whole).await?;
    }
    Ok(HttpResponse::NoContent()
        .insert_header(("Upload-Offset", new_offset.to_string()))
        .finish())
}
