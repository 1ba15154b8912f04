//! The server calls the offline client makes (REST `/api/v1`, JSON): login and device
//! registration once, then sync — push, pull, tus 1.0 uploads and file downloads
//! (`docs/sync-protocol.md`).
//!
//! Plain HTTP is accepted: the server sits on a county intranet, a village LAN or on
//! loopback. Off loopback it carries the password and the token in clear, which
//! [`ApiClient::sends_in_clear`] tells the login screen so it can warn the helper.
//!
//! The bearer token goes to the server's own origin only. A tus `Location` (where the
//! next bytes of an upload go) is followed when it is a path on the server or an
//! absolute URL of the same scheme, host and port; one naming another host is refused
//! ([`FOREIGN_LOCATION`]), never sent the token, and not retried. Every
//! error the server sends is an `ErrorBody`; it reaches the helper as its message. No
//! call retries by itself: the sync engine decides what is worth another attempt.
//!
//! Not every answer comes from our server: a captive portal, a county proxy or a load
//! balancer may answer instead, with an empty body or an HTML page. Such an answer is
//! described in a short sentence (never pasted), so the helper can tell "the server
//! refused" from "something between us answered". A 2xx answer whose body cannot be
//! read (not the JSON this version expects, a tus answer without its headers) is a
//! [`ClientError::Server`] with code [`UNREADABLE`] and the 2xx status: the connection
//! worked, so it is not a network error, and the same request would get the same
//! answer, so it is not transient and is never retried. A body cut off mid-way is
//! different: that is the network, and it is retried.

use std::time::Duration;

use bangfu_shared::api::{
    DeviceDto, EnrollRequest, ErrorBody, LoginRequest, LoginResponse, Me, RegisterDevice, Snapshot,
};
use bangfu_shared::report::{AttendanceSheet, Quarter, SheetSubmission};
use bangfu_shared::sync::{PullResponse, PushResponse};
use bangfu_shared::visit::SignedRecord;
use base64::Engine as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ClientError, Result};

/// How a network error about the server's certificate begins.
const UNTRUSTED: &str = "untrusted certificate at";

/// Ends a certificate error when [`CA_FILE_VAR`]'s certificates were trusted too.
pub(crate) const CA_IN_USE: &str = " (trusting BANGFU_CA_FILE)";

fn ca_file_set() -> bool {
    std::env::var_os(CA_FILE_VAR).is_some_and(|p| !p.is_empty())
}

/// Whether a network error is about certificates (the server's, or the CA file's):
/// nothing a retry changes.
pub(crate) fn is_certificate_trouble(message: &str) -> bool {
    message.starts_with(UNTRUSTED)
        || message
            .strip_prefix(CA_FILE_VAR)
            .is_some_and(|rest| rest.starts_with('='))
}

/// A request that got no answer, in words the interface tells apart: a connection that
/// could not be made (`cannot reach URL: …`: refused, no route, a connect timeout) from
/// one made that the server never answered in time (`no answer from URL: timed out …`:
/// a hung server, a captive portal, a dead mobile link) and from one that broke off
/// while the request or its answer was on the way (`connection to URL broke off: …`: a
/// weak link; the address is right, and the server may have done what was asked, so
/// the advice is to sync again, not to check the address — QA s22a F3).
pub(crate) fn transport_error(base: &str, e: &reqwest::Error) -> ClientError {
    if let Some(why) = certificate_problem(e) {
        // Said, so the advice is not to set a CA file that is set (QA s29a I8).
        let ca = if ca_file_set() { CA_IN_USE } else { "" };
        return ClientError::Network(format!("{UNTRUSTED} {base}: {why}{ca}"));
    }
    if e.is_timeout() && !e.is_connect() {
        ClientError::Network(format!("no answer from {base}: timed out ({e})"))
    } else if e.is_connect() {
        ClientError::Network(format!("cannot reach {base}: {e}"))
    } else {
        ClientError::Network(format!("connection to {base} broke off: {e}"))
    }
}

/// How often a download tells its progress, in bytes: a few times per photo.
pub const PROGRESS_STEP: u64 = 32 * 1024;

/// A chunk whose sending ran out of time: on a weak uplink the photo's bytes were still
/// going out when the limit came, which says the link is slow, not that the server is
/// silent (QA s31b R3). The server keeps what arrived; the next sync goes on from there.
fn slow_upload(e: ClientError) -> ClientError {
    match e {
        ClientError::Network(m) => match m.strip_prefix("no answer from ") {
            Some(rest) => ClientError::Network(format!("upload to {rest}")),
            None => ClientError::Network(m),
        },
        other => other,
    }
}

/// The TLS verifier's words when the server's certificate was not accepted (an unknown
/// authority, a name that does not match, an expired certificate): a problem the helper
/// cannot fix by checking the network, said apart from "cannot reach".
fn certificate_problem(e: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if text.contains("certificate") {
            return Some(text);
        }
        source = cause.source();
    }
    None
}

/// A client for one server, with the bearer token once logged in.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    timeouts: Timeouts,
    /// This device's clock less the server's, in seconds, by the `Date` of the last
    /// JSON answer that had one (see [`ApiClient::clock_offset_secs`]).
    clock_offset: std::sync::Arc<std::sync::Mutex<Option<i64>>>,
}

/// How long calls may take. A limit on the whole request suits the small JSON calls
/// and tus chunks (the uploader shrinks its chunks on a slow link). A photo downloaded
/// on a weak rural link may take minutes while its bytes keep coming, so downloads get
/// a longer limit; and every call ends when no byte has arrived for `stall`, however
/// long it may take in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// A whole call, download excepted.
    pub request: Duration,
    /// A whole file download.
    pub download: Duration,
    /// No byte received for this long: the connection is taken as dead.
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(60),
            download: Duration::from_secs(15 * 60),
            stall: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The environment variable naming a PEM file of certificates to trust beside the
/// system's: a county's own certificate authority, which government networks often use
/// and no system store holds.
pub const CA_FILE_VAR: &str = "BANGFU_CA_FILE";

/// TLS for an `https://` server (rustls): the system's trusted certificates (the
/// platform verifier), plus those of [`CA_FILE_VAR`] when it is set.
fn with_tls(
    builder: reqwest::ClientBuilder,
) -> Result<(reqwest::ClientBuilder, Option<std::path::PathBuf>)> {
    let Some(path) = std::env::var_os(CA_FILE_VAR).filter(|_| ca_file_set()) else {
        return Ok((builder, None));
    };
    let path = std::path::PathBuf::from(path);
    let bad =
        |why: String| ClientError::Network(format!("{CA_FILE_VAR}={}: {why}", path.display()));
    let pem = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
    // A file saved by Windows Notepad starts with a byte-order mark (QA s28d H4).
    let pem = pem.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&pem);
    // A Windows `.cer` export is DER, one certificate in binary (an ASN.1 sequence).
    let certs = if pem.first() == Some(&0x30) {
        vec![reqwest::Certificate::from_der(pem).map_err(|e| bad(e.to_string()))?]
    } else {
        reqwest::Certificate::from_pem_bundle(pem).map_err(|e| bad(e.to_string()))?
    };
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    let builder = certs
        .into_iter()
        .fold(builder, reqwest::ClientBuilder::add_root_certificate);
    Ok((builder, Some(path)))
}

impl ApiClient {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Result<Self> {
        Self::with_timeouts(base, Timeouts::default())
    }

    /// As [`ApiClient::new`], with other limits.
    pub fn with_timeouts(base: &str, timeouts: Timeouts) -> Result<Self> {
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Field {
                field: "server",
                problem: crate::error::FieldProblem::NotAUrl(base),
            });
        }
        // Redirects are not followed: a 307 re-sends a login's password, and a record,
        // to whatever host it names, over http as readily (QA s32b V4). The helper is
        // told where the server points instead ([`redirected`]).
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .read_timeout(timeouts.stall);
        let mut ca_file = None;
        if base.starts_with("https://") {
            (builder, ca_file) = with_tls(builder)?;
        }
        // A certificate that parses as PEM but not as a certificate fails only here: it
        // is the file's fault, said as such (QA s28c G3).
        let http = builder.build().map_err(|e| match &ca_file {
            Some(path) => ClientError::Network(format!("{CA_FILE_VAR}={}: {e}", path.display())),
            None => ClientError::Network(e.to_string()),
        })?;
        Ok(ApiClient {
            http,
            base,
            token: None,
            timeouts,
            clock_offset: Default::default(),
        })
    }

    /// How far this device's clock is ahead of the server's (negative: behind), in
    /// seconds, by the HTTP `Date` of the last JSON answer; `None` before one. A clock
    /// set wrong makes every visit signed with it not count (the server flags it
    /// `clock_ahead` or `clock_behind`), so a sync says so while it can be fixed.
    pub fn clock_offset_secs(&self) -> Option<i64> {
        self.clock_offset.lock().ok().and_then(|o| *o)
    }

    /// Notes the clock offset an answer's `Date` header shows (to the second).
    fn note_clock(&self, resp: &reqwest::Response) {
        let Some(server) =
            header(resp, "date").and_then(|d| chrono::DateTime::parse_from_rfc2822(&d).ok())
        else {
            return;
        };
        let offset = (chrono::Utc::now() - server.to_utc()).num_seconds();
        if let Ok(mut o) = self.clock_offset.lock() {
            *o = Some(offset);
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether the password and the token cross the network in clear: a `http://` server
    /// that is not this device (loopback). Accepted, since a village may run its server
    /// on the LAN, but the helper should be told at login.
    pub fn sends_in_clear(&self) -> bool {
        if !self.base.starts_with("http://") {
            return false;
        }
        let Ok(url) = reqwest::Url::parse(&self.base) else {
            return true;
        };
        let Some(host) = url.host_str() else {
            return true;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) => !ip.is_loopback(),
            Err(_) => {
                // The parser lower-cases names.
                let name = host.trim_end_matches('.');
                !(name == "localhost" || name.ends_with(".localhost"))
            }
        }
    }

    /// Whether this client would follow `location` (a tus upload URL) with its token:
    /// see [`ApiClient::resolve`].
    pub fn follows(&self, location: &str) -> bool {
        self.resolve(location).is_ok()
    }

    /// Uses `token` for the calls that follow.
    pub fn with_token(mut self, token: String) -> Self {
        self.token = Some(token);
        self
    }

    /// `POST /api/v1/auth/login`.
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginResponse> {
        self.post(
            "/api/v1/auth/login",
            &LoginRequest {
                username: username.into(),
                password: password.into(),
            },
        )
        .await
    }

    /// `POST /api/v1/auth/enroll`: first login with the town office's one-time code.
    pub async fn enroll(
        &self,
        username: &str,
        code: &str,
        new_password: &str,
    ) -> Result<LoginResponse> {
        let body = EnrollRequest {
            username: username.into(),
            code: code.into(),
            new_password: new_password.into(),
        };
        self.post("/api/v1/auth/enroll", &body).await
    }

    /// `POST /api/v1/auth/logout`: ends this session on the server.
    pub async fn logout(&self) -> Result<()> {
        self.send_raw(self.http.post(format!("{}/api/v1/auth/logout", self.base)))
            .await
            .map(drop)
    }

    /// `POST /api/v1/auth/password`: changes the account's password; its other sessions
    /// end on the server, this one goes on.
    pub async fn change_password(&self, current: &str, new_password: &str) -> Result<()> {
        let body = bangfu_shared::api::ChangePassword {
            current_password: current.to_string(),
            new_password: new_password.to_string(),
        };
        self.send_raw(
            self.http
                .post(format!("{}/api/v1/auth/password", self.base))
                .json(&body),
        )
        .await
        .map(drop)
    }

    /// `GET /api/v1/me`.
    pub async fn me(&self) -> Result<Me> {
        self.get("/api/v1/me").await
    }

    /// `POST /api/v1/devices`: binds this device's public key to the account.
    pub async fn register_device(&self, public_key: &str, label: &str) -> Result<DeviceDto> {
        self.post(
            "/api/v1/devices",
            &RegisterDevice {
                public_key: public_key.into(),
                label: label.into(),
            },
        )
        .await
    }

    /// `GET /api/v1/me/snapshot`: the account's households, pairings and policy.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        self.get("/api/v1/me/snapshot").await
    }

    /// `POST /api/v1/sync/push`: one acknowledgement per record, in order.
    pub async fn push(&self, records: &[SignedRecord]) -> Result<PushResponse> {
        #[derive(Serialize)]
        struct Body<'a> {
            records: &'a [SignedRecord],
        }
        self.post("/api/v1/sync/push", &Body { records }).await
    }

    /// `GET /api/v1/sync/pull?cursor=C&limit=N`.
    pub async fn pull(&self, cursor: i64, limit: u32) -> Result<PullResponse> {
        self.get(&format!("/api/v1/sync/pull?cursor={cursor}&limit={limit}"))
            .await
    }

    /// `GET /api/v1/reports/attendance?quarter=Q`: the caller's own quarterly sheet.
    pub async fn attendance_sheet(&self, quarter: Quarter) -> Result<AttendanceSheet> {
        self.get(&format!("/api/v1/reports/attendance?quarter={quarter}"))
            .await
    }

    /// `POST /api/v1/reports/attendance/submit`: the signed remarks; the server answers
    /// the sheet frozen as a new version.
    pub async fn submit_sheet(&self, submission: &SheetSubmission) -> Result<AttendanceSheet> {
        self.post("/api/v1/reports/attendance/submit", submission)
            .await
    }

    /// tus creation (`POST /api/v1/files`) of an upload of `length` bytes declaring the
    /// file's SHA-256, carrying its first bytes `first` (creation-with-upload: a file
    /// that fits in one chunk takes one request), with their SHA-256 in
    /// `Upload-Checksum` when `checksum`. The server hands back the caller's unfinished
    /// upload of the same file if there is one (then `first` is taken only if it holds
    /// nothing yet), and a finished one (offset = length) if it has the file.
    pub async fn tus_create(
        &self,
        sha256: &str,
        length: u64,
        first: Vec<u8>,
        checksum: bool,
    ) -> Result<TusUpload> {
        let metadata = format!(
            "sha256 {}",
            base64::engine::general_purpose::STANDARD.encode(sha256)
        );
        let req = self
            .http
            .post(format!("{}/api/v1/files", self.base))
            .header("Tus-Resumable", TUS_VERSION)
            .header("Upload-Length", length.to_string())
            .header("Upload-Metadata", metadata);
        // Its first chunk as slow as any other on a weak uplink (QA s32d X2).
        let carried = !first.is_empty();
        let resp = self
            .send_raw(with_chunk(req, first, checksum))
            .await
            .map_err(|e| if carried { slow_upload(e) } else { e })?;
        let location = header(&resp, "location").ok_or_else(|| {
            unreadable(
                resp.status(),
                "the upload it created came without a Location",
            )
        })?;
        if let Err(why) = self.resolve(&location) {
            return Err(ClientError::Server {
                status: resp.status().as_u16(),
                code: FOREIGN_LOCATION.into(),
                message: why,
            });
        }
        let offset = header(&resp, "upload-offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(TusUpload {
            url: location,
            offset,
        })
    }

    /// tus `HEAD`: the offset the server holds for an upload.
    pub async fn tus_head(&self, url: &str) -> Result<u64> {
        let req = self
            .http
            .head(self.resolve(url).map_err(ClientError::Refused)?)
            .header("Tus-Resumable", TUS_VERSION)
            .header("Cache-Control", "no-store");
        let resp = self.send_raw(req).await?;
        header(&resp, "upload-offset")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| unreadable(resp.status(), "HEAD came without an Upload-Offset"))
    }

    /// tus `PATCH`: sends `chunk` at `offset` (with its SHA-256 in `Upload-Checksum`
    /// when `checksum`); returns the server's new offset, which is past `offset`.
    ///
    /// A success whose `Upload-Offset` is not past the offset sent took nothing (a
    /// proxy that swallows bodies, a server that lost the chunk): it is an error with
    /// code [`STALLED`], not progress, or a caller resending the same chunk would loop.
    pub async fn tus_patch(
        &self,
        url: &str,
        offset: u64,
        chunk: Vec<u8>,
        checksum: bool,
    ) -> Result<u64> {
        let req = self
            .http
            .patch(self.resolve(url).map_err(ClientError::Refused)?)
            .header("Tus-Resumable", TUS_VERSION)
            .header("Upload-Offset", offset.to_string());
        let carried = !chunk.is_empty();
        let resp = self
            .send_raw(with_chunk(req, chunk, checksum))
            .await
            .map_err(|e| if carried { slow_upload(e) } else { e })?;
        let next: u64 = header(&resp, "upload-offset")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| unreadable(resp.status(), "PATCH came without an Upload-Offset"))?;
        if carried && next <= offset {
            return Err(ClientError::Server {
                status: resp.status().as_u16(),
                code: STALLED.into(),
                message: format!(
                    "took a chunk at byte {offset} of the file but its offset stayed at {next}; \
                     a proxy between this device and the server may be dropping uploads"
                ),
            });
        }
        Ok(next)
    }

    /// tus `DELETE` (termination): ends an unfinished upload this device will never
    /// finish, so it stops holding one of the account's places for unfinished uploads
    /// on the server until it expires. A complete upload is refused (409) and stays.
    pub async fn tus_terminate(&self, url: &str) -> Result<()> {
        let req = self
            .http
            .delete(self.resolve(url).map_err(ClientError::Refused)?)
            .header("Tus-Resumable", TUS_VERSION);
        self.send_raw(req).await.map(drop)
    }

    /// `GET /api/v1/blobs/{sha256}`: a photo or signature image's bytes.
    pub async fn blob(&self, sha256: &str) -> Result<Vec<u8>> {
        let resp = self
            .send_raw(
                self.http
                    .get(format!("{}/api/v1/blobs/{sha256}", self.base))
                    .timeout(self.timeouts.download),
            )
            .await?;
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| ClientError::Network(format!("download of {sha256} broke off: {e}")))
    }

    /// As [`ApiClient::blob`], kept in `partial` as it arrives and resumed from there
    /// (`Range: bytes=N-`): a photo cut off on a weak link continues where it stopped, in
    /// the next attempt or the next run, instead of starting again. `partial` is removed
    /// once the whole file is read (the caller checks its hash). A server that ignores
    /// the range (200) is written over from the start; one that says the range starts
    /// past the end (416: `partial` is not a prefix of this file) is asked again whole.
    /// `on_bytes` is told, every [`PROGRESS_STEP`] bytes and at the end, how many bytes
    /// of the file the device holds, kept ones included (QA s31b R4: a photo coming over
    /// a weak link showed no movement for minutes).
    pub async fn blob_resuming(
        &self,
        sha256: &str,
        partial: &std::path::Path,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>> {
        match self.download_into(sha256, partial, on_bytes).await {
            Err(ClientError::Server { status: 416, .. }) => {
                remove_partial(partial)?;
                self.download_into(sha256, partial, on_bytes).await
            }
            other => other,
        }
    }

    async fn download_into(
        &self,
        sha256: &str,
        partial: &std::path::Path,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<u8>> {
        use std::io::Write as _;
        let have = std::fs::metadata(partial).map_or(0, |m| m.len());
        let mut req = self
            .http
            .get(format!("{}/api/v1/blobs/{sha256}", self.base))
            .timeout(self.timeouts.download);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        let mut resp = self.send_raw(req).await?;
        let resumed = resp.status() == reqwest::StatusCode::PARTIAL_CONTENT;
        let io = |e| ClientError::io(partial, e);
        // The household's photo, half-downloaded, is as private as a whole one (QA s33a
        // S11: a partial file was 0644).
        let mut options = std::fs::OpenOptions::new();
        options
            .create(true)
            .append(resumed)
            .write(true)
            .truncate(!resumed);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(partial).map_err(io)?;
        let mut held = if resumed { have } else { 0 };
        let mut told = held;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ClientError::Network(format!("download of {sha256} broke off: {e}")))?
        {
            file.write_all(&chunk).map_err(io)?;
            held += chunk.len() as u64;
            if held - told >= PROGRESS_STEP {
                on_bytes(held);
                told = held;
            }
        }
        on_bytes(held);
        drop(file);
        let bytes = std::fs::read(partial).map_err(io)?;
        remove_partial(partial)?;
        Ok(bytes)
    }

    /// The absolute URL of a `Location` the server sent, resolved against the server's
    /// URL (RFC 3986), if it lies on the server's origin: the same scheme, host and port.
    /// Anything else (another host, `//host/…`, another port, `https` for `http`) is
    /// refused with a sentence for the helper: the request would carry the token, and
    /// a proxy or a tampered answer could name any host to collect it.
    fn resolve(&self, location: &str) -> std::result::Result<reqwest::Url, String> {
        let base = reqwest::Url::parse(&self.base)
            .map_err(|e| format!("the server address {} is not a URL ({e})", self.base))?;
        let url = base.join(location.trim()).map_err(|e| {
            format!("the server gave an upload address that is not a URL ({e}): {location}")
        })?;
        if url.origin() != base.origin() {
            return Err(format!(
                "the server sent an upload to another address ({}) than the one this \
                 device logged in to ({}); it was not followed, so the session stays with \
                 the server (a proxy in between may be rewriting answers)",
                url.origin().ascii_serialization(),
                base.origin().ascii_serialization()
            ));
        }
        Ok(url)
    }

    /// Sends with the token; a non-2xx answer becomes [`ClientError::Server`].
    async fn send_raw(&self, mut req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| transport_error(&self.base, &e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        if let Some(e) = redirected(&resp) {
            return Err(e);
        }
        let bytes = resp.bytes().await.unwrap_or_default();
        Err(server_error(status, &bytes))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn send<T: DeserializeOwned>(&self, mut req: reqwest::RequestBuilder) -> Result<T> {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| transport_error(&self.base, &e))?;
        self.note_clock(&resp);
        if let Some(e) = redirected(&resp) {
            return Err(e);
        }
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_error(&self.base, &e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                let what = match describe(&bytes) {
                    Body::Empty => "the body is empty".to_string(),
                    Body::Html(note) => format!("the body is {note}"),
                    Body::Text(_) => format!("the body is not what this version expects ({e})"),
                };
                unreadable(status, &what)
            });
        }
        Err(server_error(status, &bytes))
    }
}

/// The tus protocol version spoken.
pub const TUS_VERSION: &str = "1.0.0";

/// An upload the server created (or found): its URL and the offset it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TusUpload {
    /// As the server sent it in `Location` (usually a path: `/api/v1/files/{id}`).
    pub url: String,
    pub offset: u64,
}

/// A tus request carrying `chunk` (`application/offset+octet-stream`), with its SHA-256
/// in `Upload-Checksum` when `checksum`.
fn with_chunk(
    req: reqwest::RequestBuilder,
    chunk: Vec<u8>,
    checksum: bool,
) -> reqwest::RequestBuilder {
    let mut req = req.header("Content-Type", "application/offset+octet-stream");
    if checksum {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(&chunk);
        req = req.header(
            "Upload-Checksum",
            format!(
                "sha256 {}",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ),
        );
    }
    req.body(chunk)
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

/// The code of a 2xx answer whose body or headers cannot be read (see the module
/// documentation): final, not retried.
pub const UNREADABLE: &str = "unreadable_answer";

/// The code of a tus `PATCH` that succeeded without moving the upload's offset.
pub const STALLED: &str = "upload_stalled";

/// The code of a tus creation whose `Location` names another origin than the server's
/// (see the module documentation): final, not retried, and never followed.
pub const FOREIGN_LOCATION: &str = "foreign_upload_location";

/// A 2xx answer this version cannot read: a protocol error, not the network's.
fn unreadable(status: reqwest::StatusCode, what: &str) -> ClientError {
    // An HTML page already says whose it probably is (a proxy's login page): a second
    // guess at the cause after it read as two (QA s22a F6).
    let cause = if what.contains("probably from a proxy") {
        ""
    } else {
        " (a different server version, or a proxy that changed the answer)"
    };
    ClientError::Server {
        status: status.as_u16(),
        code: UNREADABLE.into(),
        message: format!("answered {} but {what}{cause}", status_words(status)),
    }
}

/// "502 Bad Gateway", or just the number for a status without a standard name.
fn status_words(status: reqwest::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// The longest piece of a plain-text error body shown to the helper.
const SNIPPET_CHARS: usize = 200;

/// What a body that is not our JSON holds, described for the helper.
#[derive(Debug, PartialEq, Eq)]
enum Body {
    Empty,
    /// A note on an HTML page (its title, if short): never the page itself.
    Html(String),
    /// The first line, cut to [`SNIPPET_CHARS`].
    Text(String),
}

fn describe(bytes: &[u8]) -> Body {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return Body::Empty;
    }
    // `to_ascii_lowercase` keeps byte offsets, so indices found in `lower` fit `text`.
    let lower = text.to_ascii_lowercase();
    let head = lower.get(..lower.len().min(1024)).unwrap_or(&lower);
    if head.starts_with("<!doctype") || head.starts_with("<html") || head.contains("<body") {
        let title = lower
            .find("<title>")
            .map(|i| i + "<title>".len())
            .and_then(|start| {
                let end = start + lower.get(start..)?.find("</title>")?;
                text.get(start..end)
            })
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|t| !t.is_empty() && t.chars().count() <= 80);
        return Body::Html(match title {
            Some(t) => format!("an HTML page (\u{201c}{t}\u{201d}, probably from a proxy)"),
            None => "an HTML page (probably from a proxy)".into(),
        });
    }
    let line = text.lines().next().unwrap_or_default().trim();
    let mut snippet: String = line
        .chars()
        .filter(|c| !c.is_control())
        .take(SNIPPET_CHARS)
        .collect();
    if line.chars().count() > SNIPPET_CHARS || text.lines().nth(1).is_some() {
        snippet.push('…');
    }
    Body::Text(snippet)
}

/// The error for a non-2xx answer: the server's `ErrorBody`, or a sentence saying what
/// came instead (nothing, an HTML page, some text), with the status in words.
/// The code of a redirect this client did not follow.
pub const REDIRECT: &str = "redirect";

/// A redirect, as an error naming where it pointed: the request (a password, a record)
/// is not sent on to it (see [`ApiClient::with_timeouts`]).
fn redirected(resp: &reqwest::Response) -> Option<ClientError> {
    let status = resp.status();
    if !status.is_redirection() || status == reqwest::StatusCode::NOT_MODIFIED {
        return None;
    }
    let to = header(resp, "location").unwrap_or_default();
    Some(ClientError::Server {
        status: status.as_u16(),
        code: REDIRECT.into(),
        message: format!(
            "answered {} pointing to {to}: not followed, so nothing was sent there; if it \
             is the server's new address, log in again with --server set to it",
            status_words(status)
        ),
    })
}

fn server_error(status: reqwest::StatusCode, bytes: &[u8]) -> ClientError {
    let words = status_words(status);
    let (code, message) = match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) if !body.message.trim().is_empty() => (body.error, body.message),
        Ok(body) => (body.error, format!("answered {words} with no explanation")),
        Err(_) => (
            "http_error".to_string(),
            match describe(bytes) {
                Body::Empty => format!("answered {words} with no explanation"),
                Body::Html(note) => format!("answered {words} with {note}"),
                Body::Text(snippet) => format!("answered {words}: {snippet}"),
            },
        ),
    };
    ClientError::Server {
        status: status.as_u16(),
        code,
        message,
    }
}

fn remove_partial(partial: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(partial) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ClientError::io(partial, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn message(status: u16, body: &str) -> String {
        server_error(StatusCode::from_u16(status).unwrap(), body.as_bytes()).to_string()
    }

    #[test]
    fn an_empty_error_answer_says_so_in_words() {
        let m = message(502, "");
        assert_eq!(
            m,
            "server: answered 502 Bad Gateway with no explanation (http_error, HTTP 502)"
        );
        assert!(message(504, " \n").contains("504 Gateway Timeout with no explanation"));
        assert!(message(599, "").contains("answered 599 with no explanation"));
    }

    #[test]
    fn an_html_error_page_is_described_not_pasted() {
        let page = "<!DOCTYPE html>\n<html><head><title>502 Bad\n Gateway</title>\
                    <style>body{color:red}</style></head><body><h1>502 Bad Gateway</h1>\
                    <hr><center>nginx</center></body></html>";
        let m = message(502, page);
        assert!(
            m.contains("answered 502 Bad Gateway with an HTML page (“502 Bad Gateway”, probably from a proxy)"),
            "{m}"
        );
        assert!(!m.contains('<'), "no markup reaches the helper: {m}");
        let untitled = message(403, "<html><body>Access denied by policy</body></html>");
        assert!(
            untitled.contains("403 Forbidden with an HTML page (probably from a proxy)"),
            "{untitled}"
        );
    }

    #[test]
    fn a_plain_text_error_is_quoted_short_on_one_line() {
        let long = format!("{}\nsecond line", "x".repeat(500));
        let m = message(500, &long);
        assert!(m.contains("answered 500 Internal Server Error: xxx"), "{m}");
        assert!(m.contains("…"), "{m}");
        assert!(!m.contains("second line"));
        assert!(m.chars().count() < 300, "{m}");
    }

    #[test]
    fn the_servers_own_error_body_is_used_as_it_is() {
        let body = r#"{"error":"payload_too_large","message":"the file is over 20 MB"}"#;
        let e = server_error(StatusCode::PAYLOAD_TOO_LARGE, body.as_bytes());
        assert_eq!(
            e.to_string(),
            "server: the file is over 20 MB (payload_too_large, HTTP 413)"
        );
        let empty = r#"{"error":"bad_gateway","message":""}"#;
        assert!(message(502, empty).contains("with no explanation (bad_gateway"));
    }

    /// A peer on loopback: `answer` gets each connection's request (lower-cased) and
    /// writes whatever it likes back. Returns its base URL.
    fn loopback(answer: impl Fn(&str, &mut std::net::TcpStream) + Send + 'static) -> String {
        use std::io::Read as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                answer(&String::from_utf8_lossy(&buf[..n]).to_lowercase(), &mut s);
            }
        });
        format!("http://{addr}")
    }

    /// A server on loopback that answers every request with `answer`, once per
    /// connection.
    fn answering(answer: &'static str) -> String {
        use std::io::Write as _;
        loopback(move |_, s| {
            let _ = s.write_all(answer.as_bytes());
        })
    }

    /// A server on loopback that answers every request with `head`, then `body` in
    /// `pieces` equal parts `gap` apart, as a weak link delivers it.
    fn trickling(body: Vec<u8>, pieces: usize, gap: Duration) -> String {
        use std::io::Write as _;
        loopback(move |_, s| {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            for piece in body.chunks(body.len().div_ceil(pieces)) {
                std::thread::sleep(gap);
                if s.write_all(piece).is_err() {
                    break;
                }
            }
        })
    }

    fn short_limits() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_millis(600),
            download: Duration::from_secs(20),
            stall: Duration::from_millis(600),
        }
    }

    /// A photo whose bytes keep coming takes longer than an ordinary call may, and
    /// still arrives; a link that stops sending ends the download at the stall limit.
    #[tokio::test]
    async fn a_slow_download_finishes_and_a_stalled_one_ends() {
        let photo: Vec<u8> = (0..=255).cycle().take(4000).collect();
        let slow = trickling(photo.clone(), 10, Duration::from_millis(150));
        let api = ApiClient::with_timeouts(&slow, short_limits()).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(api.blob("ab").await.unwrap(), photo);
        assert!(
            started.elapsed() > short_limits().request,
            "the download outlasted the limit of an ordinary call"
        );

        // Half the photo, then five seconds of silence: the rest would arrive well
        // within the download limit, so only the stall limit can end it.
        let stalled = trickling(photo, 2, Duration::from_secs(5));
        let api = ApiClient::with_timeouts(&stalled, short_limits()).unwrap();
        let e = api.blob("ab").await.unwrap_err();
        assert!(e.is_transient(), "a dead link is worth another try: {e}");
    }

    /// A download cut halfway keeps what came, for the next sync to resume, in a file
    /// only the user can read, like the photo it will become (QA s33a S11).
    #[cfg(unix)]
    #[tokio::test]
    async fn a_cut_download_keeps_its_bytes_private() {
        use std::os::unix::fs::PermissionsExt;
        let stalled = loopback(|_, s| {
            use std::io::Write as _;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\n\
                        content-length: 4000\r\nconnection: close\r\n\r\n";
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&[7; 2000]);
            std::thread::sleep(Duration::from_secs(5));
        });
        let api = ApiClient::with_timeouts(&stalled, short_limits()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("ab.download");
        let e = api
            .blob_resuming("ab", &partial, &|_| {})
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
        let meta = std::fs::metadata(&partial).unwrap();
        assert_eq!(meta.len(), 2000, "the first half is kept");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    /// A server that takes the connection and never answers is told apart from one that
    /// cannot be reached: 服务器无响应（等待超时）, not 连不上服务器.
    #[tokio::test]
    async fn a_server_that_never_answers_is_a_timeout_not_unreachable() {
        use crate::i18n::Lang;
        let hung = loopback(|_, _| std::thread::sleep(Duration::from_secs(5)));
        let api = ApiClient::with_timeouts(&hung, short_limits()).unwrap();
        let e = api.me().await.unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(e.to_string().contains("no answer from"), "{e}");
        let zh = Lang::Zh.error(&e);
        assert!(
            zh.contains("服务器无响应（等待超时）") && !zh.contains("连不上"),
            "{zh}"
        );

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let api = ApiClient::with_timeouts(&refused, short_limits()).unwrap();
        let zh = Lang::Zh.error(&api.me().await.unwrap_err());
        assert!(zh.contains("连不上服务器"), "{zh}");
    }

    /// A redirect is not followed: the password of a login never reaches the host it
    /// names, and the helper is told where the server pointed (QA s32b V4).
    #[tokio::test]
    async fn a_redirect_is_said_not_followed() {
        use crate::i18n::Lang;
        let reached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = reached.clone();
        let elsewhere = loopback(move |_, _| seen.store(true, std::sync::atomic::Ordering::SeqCst));
        let head = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere}/api/v1/auth/login\r\n\
             content-length: 0\r\nconnection: close\r\n\r\n"
        );
        let redirecting = loopback(move |_, s| {
            use std::io::Write as _;
            let _ = s.write_all(head.as_bytes());
        });
        let api = ApiClient::new(&redirecting).unwrap();
        let e = api
            .login("19000000000", "secret-password")
            .await
            .unwrap_err();
        assert!(
            matches!(&e, ClientError::Server { code, status: 307, .. } if code == REDIRECT),
            "{e:?}"
        );
        assert!(!e.is_transient(), "{e}");
        let zh = Lang::Zh.error(&e);
        assert!(
            zh.contains(&format!("{elsewhere}/api/v1/auth/login")),
            "{zh}"
        );
        assert!(zh.contains("本机没有跟随"), "{zh}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !reached.load(std::sync::atomic::Ordering::SeqCst),
            "nothing was sent to the other host"
        );
    }

    /// A photo chunk still going out when the time ran out says the link is slow and
    /// the rest follows next time, not that the server is silent (QA s31b R3).
    #[tokio::test]
    async fn a_chunk_that_times_out_is_a_slow_upload() {
        use crate::i18n::Lang;
        let hung = loopback(|_, _| std::thread::sleep(Duration::from_secs(5)));
        let api = ApiClient::with_timeouts(&hung, short_limits()).unwrap();
        let e = api
            .tus_patch("/api/v1/uploads/x", 0, vec![7; 4096], true)
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
        let zh = Lang::Zh.error(&e);
        assert!(zh.starts_with("网络太慢，照片上传超时"), "{zh}");
        assert!(!zh.contains("服务器无响应"), "{zh}");
        // The first chunk, carried by the creation, alike (QA s32d X2).
        let e = api
            .tus_create(&"ab".repeat(32), 8192, vec![7; 4096], true)
            .await
            .unwrap_err();
        let zh = Lang::Zh.error(&e);
        assert!(zh.starts_with("网络太慢，照片上传超时"), "{zh}");
    }

    /// A connection made and then cut half-way through the answer is said to have
    /// broken off (sync again), not that the server cannot be reached (check the
    /// address).
    #[tokio::test]
    async fn a_connection_cut_half_way_broke_off_and_is_not_unreachable() {
        use crate::i18n::Lang;
        use std::io::Write as _;
        let cut = loopback(|_, s| {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{\"id\":",
            );
        });
        let api = ApiClient::with_timeouts(&cut, short_limits()).unwrap();
        let e = api.me().await.unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(e.to_string().contains("broke off"), "{e}");
        let zh = Lang::Zh.error(&e);
        assert!(
            zh.starts_with("网络中断：与服务器的连接中途断开") && !zh.contains("连不上"),
            "{zh}"
        );
        assert!(zh.contains("已完成的部分不会丢失"), "{zh}");
    }

    /// A server that cuts its first answer half-way, then answers a `Range` request
    /// with the rest (206), recording the `Range` header each request carried.
    fn cutting_then_resuming(
        body: Vec<u8>,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::Write as _;
        let ranges = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = ranges.clone();
        let base = loopback(move |request, s| {
            let range = request
                .lines()
                .find_map(|l| l.strip_prefix("range: bytes="))
                .map(|r| r.trim().trim_end_matches('-').to_string());
            seen.lock().unwrap().push(range.clone().unwrap_or_default());
            let (head, part) = match range.and_then(|r| r.parse::<usize>().ok()) {
                Some(start) => (
                    format!(
                        "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\n\
                         content-range: bytes {start}-{}/{}\r\nconnection: close\r\n\r\n",
                        body.len() - start,
                        body.len() - 1,
                        body.len()
                    ),
                    &body[start..],
                ),
                None => (
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    ),
                    &body[..body.len() / 2],
                ),
            };
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(part);
        });
        (base, ranges)
    }

    /// A download cut half-way keeps what arrived, and the next attempt asks only for
    /// the rest; the partial file is gone once the whole file is read.
    #[tokio::test]
    async fn a_cut_download_resumes_from_the_bytes_it_kept() {
        let photo: Vec<u8> = (0..=255).cycle().take(10_000).collect();
        let (base, ranges) = cutting_then_resuming(photo.clone());
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("ab.download");
        let api = ApiClient::new(&base).unwrap();
        let told = std::sync::Mutex::new(Vec::new());
        let on_bytes = |n: u64| told.lock().unwrap().push(n);
        let e = api
            .blob_resuming("ab", &partial, &on_bytes)
            .await
            .unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert_eq!(std::fs::read(&partial).unwrap(), photo[..5_000]);
        told.lock().unwrap().clear();
        assert_eq!(
            api.blob_resuming("ab", &partial, &on_bytes).await.unwrap(),
            photo
        );
        // The progress counts the bytes kept from the cut attempt (QA s31b R4).
        assert_eq!(told.lock().unwrap().last(), Some(&10_000), "{told:?}");
        assert!(!partial.exists());
        assert_eq!(*ranges.lock().unwrap(), ["", "5000"]);
    }

    /// A `Location` is followed on the server's own origin only: a path, or an
    /// absolute URL of the same scheme, host and port.
    #[test]
    fn only_locations_on_the_servers_origin_are_followed() {
        let api = ApiClient::new("http://10.1.2.3:8080/").unwrap();
        for own in [
            "/api/v1/files/1",
            "http://10.1.2.3:8080/api/v1/files/1",
            "HTTP://10.1.2.3:8080/api/v1/files/1",
        ] {
            assert_eq!(
                api.resolve(own).unwrap().as_str(),
                "http://10.1.2.3:8080/api/v1/files/1",
                "{own}"
            );
        }
        for foreign in [
            "http://collector.example/api/v1/files/1",
            "//collector.example/api/v1/files/1",
            "http://10.1.2.3:9090/api/v1/files/1",
            "https://10.1.2.3:8080/api/v1/files/1",
            "http://10.1.2.3:8080@collector.example/api/v1/files/1",
        ] {
            assert!(!api.follows(foreign), "{foreign}");
        }
        let tls = ApiClient::new("https://bangfu.example").unwrap();
        assert!(tls.follows("https://bangfu.example:443/api/v1/files/1"));
    }

    /// Neither a creation nor a HEAD or PATCH sends the token to another host.
    #[tokio::test]
    async fn the_token_never_goes_to_another_host() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = std::sync::Arc::new(AtomicUsize::new(0));
        let count = hits.clone();
        let foreign = loopback(move |_, _| {
            count.fetch_add(1, Ordering::SeqCst);
        });
        let answer: &'static str = Box::leak(
            format!(
                "HTTP/1.1 201 Created\r\nlocation: {foreign}/api/v1/files/1\r\n\
                 upload-offset: 0\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .into_boxed_str(),
        );
        let api = ApiClient::new(&answering(answer))
            .unwrap()
            .with_token("bf_secret".into());
        let e = api
            .tus_create("ab", 10, Vec::new(), false)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, ClientError::Server { status: 201, code, .. } if code == FOREIGN_LOCATION),
            "{e:?}"
        );
        assert!(!e.is_transient(), "{e}");
        let elsewhere = format!("{foreign}/api/v1/files/1");
        let e = api.tus_head(&elsewhere).await.unwrap_err();
        assert!(matches!(e, ClientError::Refused(_)), "{e:?}");
        assert!(!e.is_transient());
        let e = api
            .tus_patch(&elsewhere, 0, vec![1], false)
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Refused(_)), "{e:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "the other host heard nothing"
        );
    }

    /// Plain HTTP off this device carries the password in clear: the login warns.
    #[test]
    fn plain_http_off_loopback_is_flagged() {
        for clear in [
            "http://192.168.1.10:8080",
            "http://bangfu.lan",
            "http://notlocalhost.example",
        ] {
            assert!(ApiClient::new(clear).unwrap().sends_in_clear(), "{clear}");
        }
        for safe in [
            "https://bangfu.example",
            "http://127.0.0.1:8080",
            "http://127.8.9.1",
            "http://localhost:8080",
            "http://LOCALHOST",
            "http://[::1]:8080",
        ] {
            assert!(!ApiClient::new(safe).unwrap().sends_in_clear(), "{safe}");
        }
    }

    /// The device's clock is read against the server's `Date`: a server five years
    /// ahead of this machine's clock shows it five years behind; one without a `Date`
    /// leaves what is known as it is.
    #[tokio::test]
    async fn the_clock_offset_is_read_from_the_servers_date() {
        let json = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\
                    date: Tue, 05 Dec 2045 12:00:00 GMT\r\nconnection: close\r\n\r\n{}";
        let api = ApiClient::new(&answering(json)).unwrap();
        assert_eq!(api.clock_offset_secs(), None, "nothing heard yet");
        let _ = api.me().await;
        let offset = api.clock_offset_secs().unwrap();
        let expected = (chrono::Utc::now()
            - chrono::DateTime::parse_from_rfc3339("2045-12-05T12:00:00Z")
                .unwrap()
                .to_utc())
        .num_seconds();
        assert!((offset - expected).abs() < 60, "{offset} vs {expected}");
        assert!(crate::sync::clock_is_off(offset));
    }

    /// A captive portal or a proxy answering 200 with a page is not the network (the
    /// connection worked) and not transient (it would answer the same again).
    #[tokio::test]
    async fn an_unreadable_success_is_a_final_protocol_error_not_a_network_one() {
        let page = "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 60\r\n\
                    connection: close\r\n\r\n<html><head><title>Wi-Fi login</title></head></html>\n\n\n\n\n\n\n\n";
        let api = ApiClient::new(&answering(page)).unwrap();
        let e = api.me().await.unwrap_err();
        assert!(!e.is_transient(), "{e}");
        assert!(!matches!(e, ClientError::Network(_)), "{e}");
        assert!(
            matches!(&e, ClientError::Server { status: 200, code, .. } if code == UNREADABLE),
            "{e:?}"
        );
        let m = e.to_string();
        assert!(
            m.contains("answered 200 OK but the body is an HTML page (“Wi-Fi login”"),
            "{m}"
        );
        assert!(!m.contains("a different server version"), "one guess: {m}");

        let json = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\
                    connection: close\r\n\r\n{\"what\":1}\n";
        let api = ApiClient::new(&answering(json)).unwrap();
        let e = api.me().await.unwrap_err();
        assert!(!e.is_transient(), "{e}");
        assert!(
            e.to_string()
                .contains("the body is not what this version expects (missing field"),
            "{e}"
        );
        assert!(e.to_string().contains("a different server version"), "{e}");
    }
}
