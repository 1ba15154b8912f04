//! Request extractors: the authenticated [`Caller`] from `Authorization: Bearer …`, a
//! size-limited body reader that answers 413 instead of buffering without end, and
//! [`BulkJson`] for large JSON bodies.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use std::future::Future;
use std::pin::Pin;

use crate::AppState;
use crate::error::ApiError;
use crate::services::Caller;

/// The bearer token of a request, if any.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim().to_string()).filter(|t| !t.is_empty())
}

/// The peer address recorded in the audit log (the socket's, not a spoofable header).
pub fn remote(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

/// The application state of a request.
pub fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer(req);
        let remote = remote(req);
        let state = state(req);
        Box::pin(async move {
            let token = token.ok_or(ApiError::Unauthenticated)?;
            let state = state?;
            state.sessions.authenticate(&state.db, &token, remote).await
        })
    }
}

/// A JSON body like `web::Json` (same size limit, content type and error answers), parsed
/// on a blocking thread when it is large: a push of 500 records is ~300 KB, milliseconds
/// of parsing that on an HTTP worker would hold up every request the worker serves, the
/// one holding the database's write gate included.
#[derive(Debug)]
pub struct BulkJson<T>(pub T);

/// Bodies from this size are parsed off the HTTP worker (below it the hand-off costs
/// more than the parse).
const PARSE_APART_FROM: usize = 64 * 1024;

/// Whether the request says its body is JSON (`application/json` or `…+json`).
fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| {
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        })
}

impl<T: serde::de::DeserializeOwned + Send + 'static> FromRequest for BulkJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<BulkJson<T>, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Payload::from_request(&req, payload);
        Box::pin(async move {
            if !is_json(&req) {
                return Err(ApiError::UnsupportedMediaType(
                    "expected Content-Type: application/json".into(),
                ));
            }
            let limit = state(&req)?.settings.max_json_bytes;
            let body = body
                .await
                .map_err(|e| ApiError::BadRequest(format!("cannot read body: {e}")))?;
            let bytes = read_body(&req, body, limit).await?;
            let small = bytes.len() < PARSE_APART_FROM;
            let parse = move || {
                serde_json::from_slice::<T>(&bytes)
                    .map(BulkJson)
                    .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
            };
            if small {
                return parse();
            }
            tokio::task::spawn_blocking(parse)
                .await
                .map_err(|e| ApiError::Internal(format!("parsing a body: {e}")))?
        })
    }
}

/// Reads a whole body up to `limit` bytes; a declared or actual larger body is a 413.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("reading the body failed: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
