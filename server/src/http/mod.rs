//! The HTTP layer: routes, extractors and thin handlers over `services`. Handlers
//! extract, call one service, and answer with a `bangfu_shared::api` type or an `ApiError`.

pub mod extract;
pub mod handlers;
pub mod openapi;
pub mod shared_runs;

use actix_web::{HttpResponse, web};
use std::time::Instant;

use crate::AppState;
use crate::error::ApiError;

/// Mounts every route with JSON error handling for malformed input.
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    // JSON bodies and query strings go through `extract::{Json, Query}`, whose errors
    // name the field; a path segment that does not parse is a 400 here.
    cfg.app_data(web::Data::new(state))
        .app_data(
            web::PathConfig::default()
                .error_handler(|err, _| ApiError::BadRequest(path_error(&err.to_string())).into()),
        )
        .service(
            web::scope("/api/v1")
                .wrap(actix_web::middleware::from_fn(authenticate))
                // Answers name households, helpers and phones: kept by no cache on the
                // way or on disk, unless a route says otherwise (blobs, by their hash;
                // QA s25b F9).
                .wrap(
                    actix_web::middleware::DefaultHeaders::new()
                        .add((actix_web::http::header::CACHE_CONTROL, "no-store")),
                )
                .wrap(actix_web::middleware::from_fn(durable_writes))
                .wrap(actix_web::middleware::from_fn(log_request))
                .configure(handlers::routes)
                .default_service(web::to(not_found)),
        )
        .default_service(web::to(not_found));
}

/// Says what a path segment should be, in the words of the query errors, instead of
/// the parser's ("Path deserialize error: can not parse \"abc\" to a i64").
fn path_error(parser: &str) -> String {
    let given = parser.split('"').nth(1);
    match given {
        Some(v) if parser.contains("i64") || parser.contains("u64") => {
            format!("path: expected an id (a whole number), got `{v}`")
        }
        _ => format!("path: {parser}"),
    }
}

/// The JSON 404 of a path the API does not have.
pub(crate) async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound("route"))
}

/// The JSON 405 of a method a path does not answer; `allow` lists the ones it does,
/// each followed by ", " (as the route table's macro builds it).
pub(crate) async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let allow = allow.trim_end_matches(", ");
    actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed { allow })
}

/// Marks a response whose handler made what it promises durable itself, so
/// [`durable_writes`] does not wait for the group commit. Uploads: a finished file is
/// synced and named on disk before its blob row commits, and that row may wait for the
/// next fsync of the database: lost in a power cut, the upload is unknown (`HEAD` 404)
/// and records naming the file are `awaiting_photos` until it is sent again — never a
/// row pointing at bytes that are not there.
#[derive(Debug, Clone, Copy)]
pub struct SyncedByHandler;

/// A successful write request is answered only once what it committed is on disk (see
/// [`crate::db::Durability`]); concurrent requests share the fsync.
async fn durable_writes(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::http::Method;
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let durability = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.durability.clone());
    let res = next.call(req).await?;
    let synced = res.response().extensions().contains::<SyncedByHandler>();
    if writes
        && !synced
        && res.status().is_success()
        && let Some(d) = durability
    {
        d.sync()
            .await
            .map_err(|e| ApiError::Internal(format!("making the write durable: {e}")))?;
    }
    Ok(res)
}

/// Looks up the account of a request's bearer token before any extractor runs, and
/// leaves it for [`Caller`](crate::services::Caller)'s: a refused token is then the
/// answer however malformed the rest of the request is, never a 400 one time and a 401
/// the next (QA s25b F2). A request without a token is left as it is (logins, tus
/// `OPTIONS`).
async fn authenticate(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    if let Some(token) = extract::bearer(req.request()) {
        let state = extract::state(req.request())?;
        let remote = extract::remote(req.request());
        let known = match state.sessions.authenticate(&state.db, &token, remote).await {
            Ok(caller) => Some(caller),
            Err(ApiError::Unauthenticated) => None,
            Err(e) => return Err(e.into()),
        };
        req.extensions_mut().insert(extract::Authenticated(known));
    }
    next.call(req).await
}

/// Logs method, path (never the query string, which may hold names), status and time.
async fn log_request(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_string();
    let res = next.call(req).await?;
    tracing::info!(%method, %path, status = res.status().as_u16(), ms = start.elapsed().as_millis() as u64, "request");
    Ok(res)
}
