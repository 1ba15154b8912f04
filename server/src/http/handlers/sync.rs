//! Sync endpoints: push, pull, the town office's anomaly and review views, and files.

use actix_web::{HttpRequest, HttpResponse, web};
use bangfu_shared::sync::{
    DeviceAnomaly, FieldChange, FieldChangeDecision, PullResponse, PushRequest, PushResponse,
};
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::NoQuery;
use crate::http::extract::{Json, Query, json_words, without_position};
use crate::services::{Caller, anomalies, sync};

#[utoipa::path(post, path = "/api/v1/sync/push",
    request_body(content = Object, description = "`{\"records\": [SignedRecord, …]}`, at most 500 (docs/sync-protocol.md §3; the signed form in docs/canonical-form.md)"),
    responses((status = 200, body = PushResponse, description = "one ack per record, in order: accepted, awaiting_photos, rejected (reason_code) or conflict"),
        (status = 400, body = bangfu_shared::api::ErrorBody, description = "bad_request: malformed JSON, over 500 records"),
        (status = 403, description = "forbidden: not a helper's device"),
        (status = 413, description = "payload_too_large: over 32 MiB"),
        (status = 503, description = "busy: too many pushes over 4 MiB at once; retry after Retry-After")))]
/// Accepts a batch of signed records; one ack per record, in order.
pub async fn push(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Payload,
    _query: NoQuery,
) -> ApiResult<web::Json<PushResponse>> {
    use crate::services::cpu_slots::{CpuSlots, LARGE_BODY};
    // A large body holds a slot from before it is read until it is answered: its
    // memory is about twelve times its size (QA s23c F12). One of unknown length too.
    let _slot = match crate::http::extract::declared_length(&req) {
        Some(n) if n <= LARGE_BODY => None,
        _ => Some(CpuSlots::large_bodies().hold().await?),
    };
    let read = crate::http::extract::json_body_with(&req, body, read_push).await?;
    Ok(web::Json(
        sync::push_read(&state.db, &state.settings, &state.signers, &caller, read).await?,
    ))
}

/// A push body: the batch parsed whole, or when that fails, record by record, so a
/// record that names its id but does not parse is refused alone (QA s25a F3). The body
/// is refused whole (400, naming where) when it is not a push at all, or a record that
/// does not parse names no id to answer it by.
fn read_push(bytes: &[u8]) -> Result<sync::ReadPush, ApiError> {
    use serde_json::value::RawValue;
    if let Ok(request) = serde_json::from_slice::<PushRequest>(bytes) {
        return Ok(sync::ReadPush {
            request,
            unreadable: Vec::new(),
        });
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Parts<'a> {
        #[serde(borrow)]
        records: Vec<&'a RawValue>,
    }
    /// Just the id of a record that does not parse.
    #[derive(Deserialize)]
    struct Named {
        record: Id,
    }
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let Ok(parts) = serde_json::from_slice::<Parts>(bytes) else {
        return Err(refused(bytes));
    };
    let mut read = sync::ReadPush {
        request: PushRequest {
            records: Vec::with_capacity(parts.records.len()),
        },
        unreadable: Vec::new(),
    };
    for (index, raw) in parts.records.into_iter().enumerate() {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        match serde_path_to_error::deserialize(&mut de) {
            Ok(record) => read.request.records.push(record),
            Err(e) => {
                // Answered by its id only when that is spelt as the canonical form
                // spells it, so the ack names the id the device sent.
                let id = serde_json::from_str::<Named>(raw.get()).ok().and_then(|n| {
                    uuid::Uuid::parse_str(&n.record.id)
                        .ok()
                        .filter(|id| id.to_string() == n.record.id)
                });
                let Some(id) = id else {
                    return Err(refused(bytes));
                };
                read.unreadable.push(sync::Unreadable {
                    index,
                    id,
                    reason: format!(
                        "the record does not parse at `{}`: {}",
                        entry_place(index, &e.path().to_string()),
                        at_most(
                            &json_words(without_position(&e.inner().to_string())),
                            REASON_CHARS
                        )
                    ),
                });
            }
        }
    }
    if read.unreadable.is_empty() {
        // Every record parses: what failed is elsewhere, and the whole answer says where.
        return Err(refused(bytes));
    }
    Ok(read)
}

/// Where in the push body a record's entry failed, as the whole-body refusals name
/// places: `records[3].record.visit.kind`, or `records[3]` for the entry itself.
fn entry_place(index: usize, path: &str) -> String {
    match path {
        "." | "" => format!("records[{index}]"),
        p => format!("records[{index}].{p}"),
    }
}

/// How much of the parser's words a refusal keeps: they quote the value that failed,
/// which may be megabytes, and the reason goes back in the ack and into the audit log
/// (QA s25d F3).
const REASON_CHARS: usize = 300;

/// `text`, cut to `max` characters (an ellipsis says so).
fn at_most(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Why a push body that does not parse whole is refused whole, in the words of every
/// other JSON body's refusal.
fn refused(bytes: &[u8]) -> ApiError {
    match crate::http::extract::parse_json::<PushRequest>(bytes) {
        Err(e) => e,
        Ok(_) => ApiError::BadRequest("invalid JSON body".into()),
    }
}

/// Options of `GET /sync/pull`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PullQuery {
    /// The cursor of the last pull (0 the first time).
    #[serde(default)]
    pub cursor: i64,
    /// Records per page (default 200, at most 1000).
    pub limit: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/sync/pull", params(PullQuery),
    responses((status = 200, body = Object, description = "PullResponse: `records` (the account's own, as ServerRecord), `households` and `policy` when the ledger changed, `cursor`, `more` (docs/sync-protocol.md §5)"),
        (status = 403, description = "forbidden: not a helper's device")))]
/// What changed for the caller since the cursor.
pub async fn pull(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<PullQuery>,
) -> ApiResult<web::Json<PullResponse>> {
    if q.cursor < 0 {
        return Err(ApiError::BadRequest(format!(
            "query parameter `cursor`: {} is not a cursor: send 0 the first time, then the \
             cursor of the last page",
            q.cursor
        )));
    }
    Ok(web::Json(
        sync::pull(&state.db, &caller, q.cursor, q.limit.unwrap_or(200)).await?,
    ))
}

/// A town filter for office views.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TownQuery {
    pub town: Option<i64>,
    /// For review lists: `pending` (default), `accepted`, `rejected` or `all`.
    pub status: Option<String>,
}

/// The town filter of the anomaly list (which has no status: an anomaly is a record).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AnomalyQuery {
    pub town: Option<i64>,
    /// `json` (default) or `csv`: the list to print, in Chinese, naming each helper.
    pub format: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/sync/anomalies", params(AnomalyQuery),
    responses((status = 200, body = Vec<DeviceAnomaly>, description = "JSON, or CSV in Chinese with format=csv"), (status = 400, description = "bad_request: format is not json or csv"), (status = 403, description = "forbidden: not an office")))]
/// Gaps, chain breaks and clock anomalies of devices in the caller's scope.
pub async fn anomalies(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<AnomalyQuery>,
) -> ApiResult<HttpResponse> {
    let csv = match q.format.as_deref().unwrap_or("json") {
        "json" => false,
        "csv" => true,
        other => {
            return Err(ApiError::BadRequest(format!(
                "format must be json or csv, not {other}"
            )));
        }
    };
    let list = anomalies::in_scope(&state.db, &caller, q.town).await?;
    if !csv {
        return Ok(HttpResponse::Ok().json(&list));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"device-anomalies.csv\"",
        ))
        .body(anomalies::to_csv(&state.db, &list).await?))
}

#[utoipa::path(get, path = "/api/v1/review/family-changes", params(TownQuery),
    responses((status = 200, body = Vec<FieldChange>), (status = 403, description = "forbidden: not an office")))]
/// The review queue of field-proposed family changes.
pub async fn field_changes(
    state: web::Data<AppState>,
    caller: Caller,
    q: Query<TownQuery>,
) -> ApiResult<web::Json<Vec<FieldChange>>> {
    let status = match q.status.as_deref().unwrap_or("pending") {
        "all" => None,
        s @ ("pending" | "accepted" | "rejected" | "withdrawn") => Some(s),
        other => {
            return Err(ApiError::BadRequest(format!(
                "status must be pending, accepted, rejected, withdrawn or all, not {other}"
            )));
        }
    };
    Ok(web::Json(
        sync::field_changes(&state.db, &caller, q.town, status).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/review/family-changes/{id}", params(("id" = i64, Path, description = "field change id")), request_body = FieldChangeDecision,
    responses((status = 200, body = FieldChange), (status = 404, description = "not_found: no such change in the caller's scope"), (status = 409, description = "conflict: already decided, a change that takes the head of household out accepted without new_head, or a member already listed / not listed"), (status = 422, description = "invalid: new_head not a remaining member, or given for a change that does not take the head out")))]
/// Accepts or rejects a field change.
pub async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Json<FieldChangeDecision>,
    _query: NoQuery,
) -> ApiResult<web::Json<FieldChange>> {
    Ok(web::Json(
        sync::decide(&state.db, &caller, id.into_inner(), body.into_inner()).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/blobs/{sha256}", params(("sha256" = String, Path, description = "the file's SHA-256, 64 hex digits")),
    responses((status = 200, content_type = "image/jpeg", description = "the bytes (image/jpeg or image/png)"), (status = 206, description = "the rest from `Range: bytes=N-`"),
        (status = 404, description = "not_found: no record in scope whose account sent it, and not sent by the caller"), (status = 416, description = "range_not_satisfiable")))]
/// A photo or signature image by SHA-256, if a record in the caller's scope uses it.
///
/// `Range: bytes=N-` (what a download resuming after a cut link sends) answers 206 with
/// the rest from byte N; any other range form is ignored and the whole file sent (as
/// RFC 9110 allows), and a start at or past the end is 416.
pub async fn blob(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    sha: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let sha = sha.into_inner().to_ascii_lowercase();
    if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::BadRequest(
            "a file is named by 64 hex characters".into(),
        ));
    }
    let (bytes, content_type) = sync::blob_for(&state.db, &state.store, &caller, &sha).await?;
    let length = bytes.len() as u64;
    let mut resp = match resume_from(&req) {
        Some(start) if start >= length => {
            return Err(ApiError::RangeNotSatisfiable { length });
        }
        Some(start) => {
            let mut resp = HttpResponse::PartialContent();
            resp.insert_header((
                "Content-Range",
                format!("bytes {start}-{}/{length}", length - 1),
            ));
            let rest = bytes.get(start as usize..).unwrap_or_default().to_vec();
            return Ok(blob_headers(&mut resp, content_type).body(rest));
        }
        None => HttpResponse::Ok(),
    };
    Ok(blob_headers(&mut resp, content_type).body(bytes))
}

fn blob_headers(
    resp: &mut actix_web::HttpResponseBuilder,
    content_type: String,
) -> &mut actix_web::HttpResponseBuilder {
    resp.content_type(content_type)
        // The stored type is the decoded image's: a browser must not guess another
        // from bytes after the image (QA s23c F8).
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Accept-Ranges", "bytes"))
        .insert_header(("Cache-Control", "private, max-age=31536000, immutable"))
}

/// The N of a `Range: bytes=N-` header; `None` for no header or any other form.
fn resume_from(req: &HttpRequest) -> Option<u64> {
    let value = req.headers().get("Range")?.to_str().ok()?;
    let start = value.trim().strip_prefix("bytes=")?.strip_suffix('-')?;
    start.parse().ok()
}
