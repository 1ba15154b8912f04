//! Request extractors: the authenticated [`Caller`] from `Authorization: Bearer …`, a
//! size-limited body reader that answers 413 instead of buffering without end, and
//! [`Json`] bodies and [`Query`] strings whose errors name the field they failed at.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
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

/// The client's address, for the audit log and the login throttle: the socket's, or,
/// when the socket is one of the `trusted_proxies`, the address that proxy forwarded
/// (see [`forwarded_client`]). A header from anyone else is not believed.
pub fn remote(req: &HttpRequest) -> Option<String> {
    // A server bound to `[::]` sees an IPv4 client as `::ffff:127.0.0.1`: compared as
    // the IPv4 address it is (QA s29c K6).
    let peer = req.peer_addr()?.ip().to_canonical();
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings.trusted_proxies.as_slice())
        .unwrap_or_default();
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(forwarded_client(peer, &forwarded.join(","), trusted).to_string())
}

/// The client behind `peer` by `X-Forwarded-For` (`client, proxy1, proxy2`: each proxy
/// appends the address it was reached from): read from the right, past the trusted
/// proxies, to the first address none of them is; a garbled entry ends the walk at the
/// last good one, so a client cannot hide behind a made-up hop.
pub fn forwarded_client(
    peer: std::net::IpAddr,
    forwarded_for: &str,
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    let trusted: Vec<std::net::IpAddr> = trusted.iter().map(|t| t.to_canonical()).collect();
    let mut client = peer.to_canonical();
    if !trusted.contains(&client) {
        return client;
    }
    for hop in forwarded_for.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<std::net::IpAddr>() else {
            break;
        };
        let ip = ip.to_canonical();
        client = ip;
        if !trusted.contains(&ip) {
            break;
        }
    }
    client
}

/// The application state of a request.
pub fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))
}

/// The account behind a request's bearer token, looked up by
/// [`crate::http::authenticate`] before the handler's other extractors run: `None` when
/// the token was refused.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Option<Caller>);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Known already: answered at once, so a refused token is the answer whatever
        // else is wrong with the request (QA s25b F2: a query that did not parse was
        // answered 400 or 401 by which extractor finished first).
        if let Some(Authenticated(known)) = req.extensions().get::<Authenticated>().cloned() {
            return Box::pin(async move { known.ok_or(ApiError::Unauthenticated) });
        }
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

/// A JSON body like `web::Json` (same content type check, 413 past the limit), with two
/// differences. A malformed body's error names where it failed (`records[212].seq`,
/// not "line 1 column 183422"), so a client's author finds the field at once. And a
/// large body is parsed on a blocking thread: a push of 500 records is ~300 KB,
/// milliseconds of parsing that on an HTTP worker would hold up every request the
/// worker serves, the one holding the database's write gate included.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A route's own body limit for [`Json`] (route `app_data`), where it differs from
/// the server's `max_json_bytes`: a push of 500 records may carry long notes.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

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

impl<T: serde::de::DeserializeOwned + Send + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Json<T>, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Payload::from_request(&req, payload);
        Box::pin(async move {
            let body = body
                .await
                .map_err(|e| ApiError::BadRequest(format!("cannot read body: {e}")))?;
            json_body(&req, body).await.map(Json)
        })
    }
}

/// Reads and parses a JSON body as [`Json`] does: the content type and encoding
/// checked, the route's [`BodyLimit`] (or the server's) held to, a large body parsed off
/// the async workers. For a handler that must act before the body is read.
pub async fn json_body<T: serde::de::DeserializeOwned + Send + 'static>(
    req: &HttpRequest,
    body: web::Payload,
) -> Result<T, ApiError> {
    json_body_with(req, body, parse_json::<T>).await
}

/// [`json_body`] parsed by `parse`: for a body read in parts (a push's records one by
/// one when the batch does not parse whole).
pub async fn json_body_with<T: Send + 'static>(
    req: &HttpRequest,
    body: web::Payload,
    parse: fn(&[u8]) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    if !is_json(req) {
        return Err(ApiError::UnsupportedMediaType(
            "expected Content-Type: application/json".into(),
        ));
    }
    encoded_as_is(req)?;
    let limit = match req.app_data::<BodyLimit>() {
        Some(route) => route.0,
        None => state(req)?.settings.max_json_bytes,
    };
    let bytes = read_body(req, body, limit).await?;
    if bytes.len() < PARSE_APART_FROM {
        return parse(&bytes);
    }
    tokio::task::spawn_blocking(move || parse(&bytes))
        .await
        .map_err(|e| ApiError::Internal(format!("parsing a body: {e}")))?
}

/// The body length a request declares (`Content-Length`), if it declares one.
pub fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Refuses a body sent compressed (`Content-Encoding: gzip`…): the server reads bodies
/// as sent, and compressed bytes would otherwise be reported as malformed JSON.
fn encoded_as_is(req: &HttpRequest) -> Result<(), ApiError> {
    let encoding = req
        .headers()
        .get(actix_web::http::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(()),
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {other} is not supported: send the body uncompressed"
        ))),
    }
}

/// chrono's words for a date string that does not parse ("input is out of range" for
/// 2026-02-30), said as what the field takes.
fn date_words(inner: &str) -> std::borrow::Cow<'_, str> {
    let chrono = [
        "input is out of range",
        "input contains invalid characters",
        "premature end of input",
        "trailing input",
        "input is not enough for unique date and time",
    ];
    match chrono.iter().find(|m| inner.starts_with(**m)) {
        Some(_) => "expected a calendar date as YYYY-MM-DD (no such date, or not a date)".into(),
        None => inner.into(),
    }
}

/// The parser's words for a value of the wrong shape, said in JSON's terms rather than
/// Rust's (QA s31a S7: `expected i64`, `struct VisitBody with 11 elements`): the sender
/// wrote JSON, and knows objects, arrays and numbers, not the server's types.
pub fn json_words(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(at) = rest.find("expected ") {
        let (before, from) = rest.split_at(at + "expected ".len());
        out.push_str(before);
        let word_end = from
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(from.len());
        let (word, after) = from.split_at(word_end);
        let said = match word {
            "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" | "isize" => {
                "a whole number"
            }
            "f32" | "f64" => "a number",
            "struct" => {
                // `struct Name`, and an optional ` with N elements`.
                let name = |c: char| c.is_ascii_alphanumeric() || c == '_';
                let past_name = after
                    .strip_prefix(' ')
                    .map_or(after, |t| t.trim_start_matches(name));
                out.push_str("an object");
                rest = strip_elements(past_name);
                continue;
            }
            other => other,
        };
        out.push_str(said);
        rest = after;
    }
    out.push_str(rest);
    out.replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: map", "invalid type: object")
}

/// `text` without a leading ` with N elements`.
fn strip_elements(text: &str) -> &str {
    text.strip_prefix(" with ")
        .and_then(|t| t.split_once(" elements"))
        .filter(|(n, _)| n.bytes().all(|b| b.is_ascii_digit()))
        .map_or(text, |(_, after)| after)
}

/// The parser's words without the ` at line L column C` it ends with: a place within
/// the text it was given, which for one record of a push is not the request's.
pub fn without_position(inner: &str) -> &str {
    match inner.rsplit_once(" at line ") {
        Some((words, place))
            if place.split_once(" column ").is_some_and(|(l, c)| {
                [l, c].iter().all(|n| n.bytes().all(|b| b.is_ascii_digit()))
            }) =>
        {
            words
        }
        _ => inner,
    }
}

/// Parses a JSON body; on failure parses it again, tracking the path, to name the field
/// (the tracking costs nothing on the bodies that parse). A body that is valid JSON of
/// the wrong shape at the top (an array where an object is expected) says so plainly.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = match serde_json::from_slice::<T>(bytes) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    if let Some(why) = not_utf8(bytes) {
        return Err(ApiError::BadRequest(format!(
            "invalid JSON body: the body must be JSON in UTF-8 without a byte order mark, \
             and this one {why}"
        )));
    }
    let top = bytes.trim_ascii_start().first().copied();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let message = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) if e.path().iter().next().is_some() => {
            format!(
                "invalid JSON body at `{}`: {}",
                e.path(),
                json_words(&date_words(&e.inner().to_string()))
            )
        }
        _ if top != Some(b'{')
            && first.classify() == serde_json::error::Category::Data
            && first.to_string().contains("expected struct") =>
        {
            let found = match top {
                Some(b'[') => "an array",
                Some(b'"') => "a string",
                _ => "a bare value",
            };
            format!("invalid JSON body: the body is {found}; this request takes a JSON object")
        }
        _ => format!("invalid JSON body: {first}"),
    };
    Err(ApiError::BadRequest(message))
}

/// Why a body that did not parse is not UTF-8 JSON at all, if that is why: a byte order
/// mark (UTF-8's, UTF-16's or UTF-32's), NUL bytes among the first four (JSON text
/// starts with ASCII, so UTF-16 or UTF-32 without a mark shows them, as RFC 4627 §3
/// detects it), or bytes that are not UTF-8. Said instead of the parser's words
/// ("expected value at line 1 column 1"), which point at a character the sender cannot
/// see (QA s23c F11). Only asked once a body failed to parse: a body that parses costs
/// nothing more.
fn not_utf8(bytes: &[u8]) -> Option<&'static str> {
    const MARKS: [(&[u8], &str); 5] = [
        (
            &[0x00, 0x00, 0xFE, 0xFF],
            "is UTF-32 (it starts with a byte order mark)",
        ),
        (
            &[0xFF, 0xFE, 0x00, 0x00],
            "is UTF-32 (it starts with a byte order mark)",
        ),
        (
            &[0xEF, 0xBB, 0xBF],
            "starts with a byte order mark (EF BB BF); send the JSON without it",
        ),
        (
            &[0xFE, 0xFF],
            "is UTF-16 (it starts with a byte order mark)",
        ),
        (
            &[0xFF, 0xFE],
            "is UTF-16 (it starts with a byte order mark)",
        ),
    ];
    if let Some((_, why)) = MARKS.iter().find(|(mark, _)| bytes.starts_with(mark)) {
        return Some(why);
    }
    if bytes.iter().take(4).any(|&b| b == 0) {
        return Some("is UTF-16 or UTF-32 (it has NUL bytes where JSON text begins)");
    }
    std::str::from_utf8(bytes)
        .is_err()
        .then_some("is not valid UTF-8 (another encoding, such as GBK or Latin-1?)")
}

/// A query string like `web::Query`, whose error names the parameter at fault
/// (``query parameter `page`: expected a whole number (0 or more), got `-1` ``).
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Query<T>, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(Query))
    }
}

/// Parses a query string as actix-web's `Query` does; an error names the parameter.
pub fn parse_query<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let parts = form_urlencoded::parse(query.as_bytes());
    serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(parts)).map_err(|e| {
        let message = match e.path().iter().next() {
            Some(_) => {
                let name = e.path().to_string();
                let why = value_error(query, &name, &e.inner().to_string());
                format!("query parameter `{name}`: {why}")
            }
            None => format!("query: {}", e.inner()),
        };
        ApiError::BadRequest(message)
    })
}

/// Chrono's words for a date it could not read ("input contains invalid characters"):
/// they name neither the format nor what was given.
const DATE_ERRORS: [&str; 6] = [
    "input is out of range",
    "input contains invalid characters",
    "premature end of input",
    "trailing input",
    "input is not enough",
    "no possible date",
];

/// Says what a number or date parameter should be when the parser's words (Rust's
/// integer errors: "invalid digit found in string"; chrono's) would not tell a person;
/// other errors pass.
fn value_error(query: &str, name: &str, why: &str) -> String {
    let given = || {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    if DATE_ERRORS.iter().any(|d| why.contains(d)) {
        return format!("expected a date as YYYY-MM-DD, got `{}`", given());
    }
    let integer = why.contains("invalid digit")
        || why.contains("too large")
        || why.contains("too small")
        || why.contains("empty string");
    if !integer {
        return why.to_string();
    }
    let given = given();
    if why.contains("too large") || why.contains("too small") {
        return format!("`{given}` is out of range");
    }
    let sign = if given.starts_with('-') {
        " (0 or more)"
    } else {
        ""
    };
    format!("expected a whole number{sign}, got `{given}`")
}

/// A request that takes no query parameters: any it carries is refused (400, naming
/// them) rather than ignored. Why: `POST /policies?town=2` made a version for the whole
/// county, the office's town silently dropped (QA s32b V5), where a query struct
/// refuses a parameter it does not know.
#[derive(Debug, Clone, Copy)]
pub struct NoQuery;

impl FromRequest for NoQuery {
    type Error = ApiError;
    type Future = std::future::Ready<Result<NoQuery, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(no_query(req.query_string()))
    }
}

fn no_query(query: &str) -> Result<NoQuery, ApiError> {
    if query.is_empty() {
        return Ok(NoQuery);
    }
    let names: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .map(|(name, _)| format!("`{name}`"))
        .collect();
    Err(ApiError::BadRequest(format!(
        "this request takes no query parameters, got {}: what it needs goes in its JSON \
         body (GET /api/v1/openapi.json lists its fields)",
        names.join(", ")
    )))
}

/// Reads a whole body up to `limit` bytes; a declared or actual larger body is a 413,
/// and one that sends nothing for `upload_idle_secs` a 408 `body_idle`: the request head
/// has a timeout of its own, and a body with none held its connection, and a large
/// push's slot, for as long as the sender kept silent (QA s32b V2, V3).
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
        return Err(ApiError::PayloadTooLarge {
            what: "request body",
            limit,
        });
    }
    let idle_secs = req
        .app_data::<web::Data<AppState>>()
        .map_or(30, |s| s.settings.upload_idle_secs)
        .max(1);
    let idle = std::time::Duration::from_secs(idle_secs);
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = tokio::time::timeout(idle, payload.next())
        .await
        .map_err(|_| ApiError::BodyIdle { idle_secs })?
    {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("reading the body failed: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge {
                what: "request body",
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A date from a request, refused (400, naming `field`) outside the years report
/// quarters use ([`bangfu_shared::visit::TIME_YEARS`]). Serde takes any year chrono can
/// hold (`+10000-01-01`), which sorts wrongly where dates are stored as text and no
/// quarter can report.
pub fn date_in_range(day: chrono::NaiveDate, field: &str) -> Result<chrono::NaiveDate, ApiError> {
    use chrono::Datelike;
    let years = bangfu_shared::visit::TIME_YEARS;
    if years.contains(&day.year()) {
        Ok(day)
    } else {
        Err(ApiError::BadRequest(format!(
            "{field}: {day} is outside the years {}–{}",
            years.start(),
            years.end()
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parser_words_are_said_in_json_terms() {
        use super::{json_words, without_position};
        assert_eq!(
            json_words("invalid type: string \"x\", expected i64"),
            "invalid type: string \"x\", expected a whole number"
        );
        assert_eq!(
            json_words("invalid length 9, expected struct VisitBody with 11 elements"),
            "invalid length 9, expected an object"
        );
        assert_eq!(
            json_words("invalid type: sequence, expected struct RecordEnvelope"),
            "invalid type: array, expected an object"
        );
        assert_eq!(
            json_words("unknown variant `teleport`, expected `home` or `phone`"),
            "unknown variant `teleport`, expected `home` or `phone`"
        );
        assert_eq!(
            without_position("missing field `signature` at line 1 column 549"),
            "missing field `signature`"
        );
        assert_eq!(without_position("no position here"), "no position here");
    }

    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code, reason = "only the parse is under test")]
    struct Visit {
        seq: u64,
        notes: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code, reason = "only the parse is under test")]
    struct Push {
        records: Vec<Visit>,
    }

    fn message(e: ApiError) -> String {
        match e {
            ApiError::BadRequest(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_body_not_in_utf8_says_so() {
        let json = r#"{"records":[{"seq":1}]}"#;
        let utf16le: Vec<u8> = json.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let utf16be: Vec<u8> = json.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let with = |mark: &[u8], body: &[u8]| [mark, body].concat();
        let cases = [
            (with(&[0xFF, 0xFE], &utf16le), "is UTF-16"),
            (with(&[0xFE, 0xFF], &utf16be), "is UTF-16"),
            (utf16le.clone(), "UTF-16 or UTF-32"),
            (utf16be, "UTF-16 or UTF-32"),
            (
                with(&[0xEF, 0xBB, 0xBF], json.as_bytes()),
                "byte order mark",
            ),
            (
                b"{\"records\":[{\"notes\":\"caf\xe9\"}]}".to_vec(),
                "not valid UTF-8",
            ),
        ];
        for (body, why) in cases {
            let m = message(parse_json::<Push>(&body).expect_err(why));
            assert!(
                m.contains("must be JSON in UTF-8 without a byte order mark") && m.contains(why),
                "{why}: {m}"
            );
        }
        assert!(parse_json::<Push>(json.as_bytes()).is_ok());
    }

    #[test]
    fn a_body_error_names_the_record_and_field() {
        let body = br#"{"records":[{"seq":1},{"seq":2},{"seq":"3"}]}"#;
        let m = message(parse_json::<Push>(body).expect_err("a string seq"));
        assert!(
            m.starts_with("invalid JSON body at `records[2].seq`: invalid type: string"),
            "{m}"
        );
        let m = message(parse_json::<Push>(br#"{"records":[{"notes":"x"}]}"#).expect_err("no seq"));
        assert!(
            m.contains("`records[0]`") && m.contains("missing field `seq`"),
            "{m}"
        );
    }

    #[test]
    fn a_body_that_is_not_json_keeps_the_position() {
        let m = message(parse_json::<Push>(b"{\"records\": [").expect_err("cut short"));
        assert!(
            m.starts_with("invalid JSON body") && m.contains("line 1 column"),
            "{m}"
        );
        let good = parse_json::<Push>(br#"{"records":[{"seq":7}]}"#).expect("parses");
        assert_eq!(good.records[0].seq, 7);
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code, reason = "only the parse is under test")]
    struct Page {
        page: Option<u64>,
        town: Option<i64>,
        q: Option<String>,
        since: Option<chrono::NaiveDate>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code, reason = "only the parse is under test")]
    struct Dated {
        effective_from: chrono::NaiveDate,
    }

    #[test]
    fn a_body_date_that_is_no_date_says_what_the_field_takes() {
        for bad in ["2026-02-30", "2026-2-3x", "2026"] {
            let body = format!(r#"{{"effective_from":"{bad}"}}"#);
            let m = message(parse_json::<Dated>(body.as_bytes()).expect_err(bad));
            assert_eq!(
                m,
                "invalid JSON body at `effective_from`: expected a calendar date as \
                 YYYY-MM-DD (no such date, or not a date)",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_request_without_query_parameters_names_those_it_was_given() {
        assert!(no_query("").is_ok());
        let said = message(no_query("town=2&county=1").unwrap_err());
        assert!(said.contains("`town`, `county`"), "{said}");
    }

    #[test]
    fn a_query_error_names_the_parameter() {
        let m = message(parse_query::<Page>("town=3&page=-1").expect_err("negative page"));
        assert_eq!(
            m,
            "query parameter `page`: expected a whole number (0 or more), got `-1`"
        );
        let m = message(parse_query::<Page>("page=99999999999999999999").expect_err("huge"));
        assert_eq!(
            m,
            "query parameter `page`: `99999999999999999999` is out of range"
        );
        let m = message(parse_query::<Page>("town=x1").expect_err("not a number"));
        assert_eq!(
            m,
            "query parameter `town`: expected a whole number, got `x1`"
        );
        for bad in ["yesterday", "2026-13-01", "2026-12-0", "2026-12-01x"] {
            let m = message(parse_query::<Page>(&format!("since={bad}")).expect_err(bad));
            assert_eq!(
                m,
                format!("query parameter `since`: expected a date as YYYY-MM-DD, got `{bad}`")
            );
        }
        let ok = parse_query::<Page>("q=%E4%B8%9C%E5%9F%8E&page=2").expect("parses");
        assert_eq!((ok.q.as_deref(), ok.page), (Some("东城"), Some(2)));
    }

    #[test]
    fn request_dates_are_held_to_the_report_years() {
        let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert!(date_in_range(day(2026, 12, 3), "valid_from").is_ok());
        assert!(date_in_range(day(2100, 12, 31), "valid_from").is_ok());
        let e = date_in_range(day(10000, 1, 1), "valid_from").unwrap_err();
        assert!(e.to_string().contains("valid_from"), "{e}");
        assert!(date_in_range(day(1999, 12, 31), "date").is_err());
    }

    /// Behind a trusted proxy the client is the address it forwarded; anyone else's
    /// header, or a garbled hop, changes nothing.
    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right() {
        let ip = |s: &str| {
            s.parse::<std::net::IpAddr>()
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let proxy = ip("127.0.0.1");
        let trusted = [proxy, ip("10.0.0.2")];
        let client = |peer, header| super::forwarded_client(peer, header, &trusted);
        assert_eq!(client(proxy, "203.0.113.7"), ip("203.0.113.7"));
        // A spoofed first entry is left of the hop the proxy appended.
        assert_eq!(client(proxy, "1.2.3.4, 203.0.113.7"), ip("203.0.113.7"));
        assert_eq!(client(proxy, "203.0.113.7, 10.0.0.2"), ip("203.0.113.7"));
        assert_eq!(client(proxy, ""), proxy);
        assert_eq!(client(proxy, "garbage"), proxy);
        assert_eq!(client(proxy, "garbage, 10.0.0.2"), ip("10.0.0.2"));
        // An IPv4 proxy seen through an IPv6 socket is the same proxy (QA s29c K6).
        assert_eq!(
            client(ip("::ffff:127.0.0.1"), "203.0.113.7"),
            ip("203.0.113.7")
        );
        // A header from a peer that is no trusted proxy is not believed.
        assert_eq!(
            client(ip("198.51.100.1"), "203.0.113.7"),
            ip("198.51.100.1")
        );
    }
}
