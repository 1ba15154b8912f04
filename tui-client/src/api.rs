//! The server calls the offline client makes (REST `/api/v1`, JSON): login and device
//! registration once, then sync — push, pull, tus 1.0 uploads and file downloads
//! (`docs/sync-protocol.md`).
//!
//! Plain HTTP is accepted: the server sits on a county intranet or on loopback. Every
//! error the server sends is an `ErrorBody`; it reaches the helper as its message. No
//! call retries by itself: the sync engine decides what is worth another attempt.

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

/// A client for one server, with the bearer token once logged in.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ApiClient {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Result<Self> {
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Field {
                field: "server",
                message: format!("`{base}` is not an http:// URL"),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Network(e.to_string()))?;
        Ok(ApiClient {
            http,
            base,
            token: None,
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
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
        let resp = self.send_raw(with_chunk(req, first, checksum)).await?;
        let location = header(&resp, "location").ok_or_else(|| {
            ClientError::Network("the server created an upload without a Location".into())
        })?;
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
            .head(self.url(url))
            .header("Tus-Resumable", TUS_VERSION)
            .header("Cache-Control", "no-store");
        let resp = self.send_raw(req).await?;
        header(&resp, "upload-offset")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::Network("HEAD answered without Upload-Offset".into()))
    }

    /// tus `PATCH`: sends `chunk` at `offset` (with its SHA-256 in `Upload-Checksum`
    /// when `checksum`); returns the server's new offset.
    pub async fn tus_patch(
        &self,
        url: &str,
        offset: u64,
        chunk: Vec<u8>,
        checksum: bool,
    ) -> Result<u64> {
        let req = self
            .http
            .patch(self.url(url))
            .header("Tus-Resumable", TUS_VERSION)
            .header("Upload-Offset", offset.to_string());
        let resp = self.send_raw(with_chunk(req, chunk, checksum)).await?;
        header(&resp, "upload-offset")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::Network("PATCH answered without Upload-Offset".into()))
    }

    /// `GET /api/v1/blobs/{sha256}`: a photo or signature image's bytes.
    pub async fn blob(&self, sha256: &str) -> Result<Vec<u8>> {
        let resp = self
            .send_raw(
                self.http
                    .get(format!("{}/api/v1/blobs/{sha256}", self.base)),
            )
            .await?;
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| ClientError::Network(format!("download of {sha256} broke off: {e}")))
    }

    /// The absolute URL of a `Location` the server sent: an absolute URL as it is, a
    /// path relative to the server's origin (RFC 3986 reference resolution).
    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            return path.to_string();
        }
        let origin = match self.base.find("://").map(|i| i + 3) {
            Some(start) => match self.base[start..].find('/') {
                Some(slash) => &self.base[..start + slash],
                None => self.base.as_str(),
            },
            None => self.base.as_str(),
        };
        format!("{origin}{path}")
    }

    /// Sends with the token; a non-2xx answer becomes [`ClientError::Server`].
    async fn send_raw(&self, mut req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Network(format!("cannot reach {}: {e}", self.base)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
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
            .map_err(|e| ClientError::Network(format!("cannot reach {}: {e}", self.base)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Network(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                ClientError::Network(format!("unexpected answer from the server: {e}"))
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

/// The error for a non-2xx answer: the server's `ErrorBody`, or the start of the body.
fn server_error(status: reqwest::StatusCode, bytes: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => ClientError::Server {
            status: status.as_u16(),
            code: body.error,
            message: body.message,
        },
        Err(_) => ClientError::Server {
            status: status.as_u16(),
            code: "http_error".into(),
            message: String::from_utf8_lossy(bytes).chars().take(200).collect(),
        },
    }
}
