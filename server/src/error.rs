//! The server's one error type. Services return it; the HTTP layer turns each variant
//! into a status and a stable snake_case code, in one place (`status` and `code` below).
//! Causes of internal errors are logged, never sent to the client.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use bangfu_shared::api::ErrorBody;
use bangfu_shared::ledger::RowError;

/// Everything that can go wrong serving a request or running a server command.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: bad JSON, a wrong type, a missing parameter.
    #[error("{0}")]
    BadRequest(String),
    /// An imported ledger has errors; every one of them is in the details.
    #[error("the ledger has {} error(s); nothing was imported", .0.len())]
    InvalidLedger(Vec<RowError>),
    /// A value that parses but breaks a rule (for example a weak password).
    #[error("{0}")]
    Invalid(String),
    /// A quarter still to come was asked for where only a begun one makes sense (a
    /// sheet, a report, a submission): a code of its own (`quarter_not_begun`) so a
    /// device whose clock runs a little ahead at a quarter's start can tell it from a
    /// refusal worth showing.
    #[error("{0}")]
    NotBegun(String),
    /// No bearer token, or one that is unknown, expired or revoked.
    #[error("authentication required")]
    Unauthenticated,
    /// Wrong username or password, or an account not enrolled yet: deliberately not
    /// saying which, so a login never tells whether a phone number is a helper's.
    #[error(
        "wrong username or password (a helper's first login uses the enrollment code from the town office)"
    )]
    InvalidCredentials,
    /// Enrollment with a wrong or expired code (or for a phone that has none): as
    /// [`ApiError::InvalidCredentials`], the same code and status and never saying which,
    /// in the words of the enrollment (QA s25a F11: it spoke of a wrong password).
    #[error(
        "wrong or expired enrollment code for this phone number (the town office issues a new one)"
    )]
    InvalidEnrollmentCode,
    /// A password change whose `current_password` is not the caller's: the caller is
    /// logged in, so no username is in question (QA s29c K10). Throttled as a wrong
    /// password.
    #[error("current_password is not this account's password; nothing was changed")]
    WrongCurrentPassword,
    /// The caller's role may not do this at all.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing by that id within what the caller may see (out-of-scope looks the same).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// A device key registered again after its device was revoked (a lost phone found
    /// again): its own code, so the field client makes a new key (QA s29c K2).
    #[error(
        "this device key was revoked (its phone reported lost, by the helper or the town office): it signs nothing more; log in again to make a new device key"
    )]
    DeviceRevoked,
    /// The path exists, but not for this method; `allow` lists the methods it answers.
    #[error("this path answers {allow} only")]
    MethodNotAllowed { allow: &'static str },
    /// A body, or a file announced by its length (`what` says which), is over the
    /// configured limit.
    #[error("{what} over the limit of {limit} bytes")]
    PayloadTooLarge { what: &'static str, limit: usize },
    /// A download's `Range` starts at or past the end of the file (`length` bytes).
    #[error("the range starts past the end of the file ({length} bytes)")]
    RangeNotSatisfiable { length: u64 },
    /// The body is of a type this endpoint does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A tus request without `Tus-Resumable: 1.0.0`.
    #[error("this server speaks tus 1.0.0: send Tus-Resumable: 1.0.0")]
    TusVersion,
    /// A PATCH body that does not match its `Upload-Checksum`; the chunk was dropped.
    #[error("the chunk does not match its Upload-Checksum; it was discarded, resend it")]
    ChecksumMismatch,
    /// Too many wrong passwords or codes for this username from this address lately.
    #[error("too many failed attempts; try again in {retry_after_secs} seconds")]
    TooManyAttempts { retry_after_secs: u64 },
    /// An account asked for a new upload while holding `open` unfinished ones, the most
    /// it may hold at once (`limit`): each reserves a row and a file on the server. One
    /// is freed when it is finished, terminated (tus `DELETE`) or when it expires
    /// (`expiry_days` after creation).
    #[error(
        "this account already holds {open} unfinished uploads, the most it may hold at once \
         ({limit}): finish one (send the rest of its bytes), terminate one that will never \
         be finished (DELETE its upload) or let it expire ({expiry_days} days after its \
         creation) before starting another"
    )]
    TooManyUploads {
        open: u64,
        limit: u64,
        expiry_days: i64,
    },
    /// Another request to this upload is still being received (a PATCH, or the body of
    /// the creation that made it): the client asks the offset again shortly. A 409 as
    /// tus answers an offset that moved, with a code of its own so a client waits
    /// instead of counting a failure (QA s25c F3); a request whose connection went
    /// silent holds the upload at most `upload_idle_secs`.
    #[error(
        "another request to this upload is still being received (one whose connection went silent holds it at most {idle_secs} s); ask its offset again shortly"
    )]
    UploadInProgress { idle_secs: u64 },
    /// An upload request's body sent nothing for `idle_secs`: taken as cut, the bytes
    /// before kept (a checksummed chunk's dropped). A 408, which clients retry, not a
    /// 400 that reads as the file refused (QA s25d F1); `offset` is where to go on from.
    #[error(
        "the body sent nothing for {idle_secs} s and was taken as cut; go on from offset {offset}"
    )]
    UploadIdle { idle_secs: u64, offset: u64 },
    /// A request body (other than an upload's) sent nothing for `idle_secs`: taken as
    /// cut and ended, so a silent connection holds neither a connection nor a large-push
    /// slot for long (QA s32b V2, V3). A 408, which clients retry.
    #[error(
        "the request body sent nothing for {idle_secs} s and was taken as cut; nothing of it was kept: send the request again"
    )]
    BodyIdle { idle_secs: u64 },
    /// Other large pushes (over 4 MiB) hold every slot for them longer than a push waits:
    /// not the database's doing (QA s32b V2).
    #[error(
        "other large pushes are being received and this one waited its turn too long; try again in a few seconds, or send smaller batches"
    )]
    PushesBusy,
    /// The server's storage refused a write: the disk is full, or the data directory is
    /// not writable (a mount gone read-only, permissions changed). The operator's to
    /// fix, and passing once they do: 503 with `Retry-After`, nothing of the request
    /// kept; the cause goes to the log, not to the client (QA s26b F4).
    #[error(
        "the server cannot write to its storage just now (full or not writable); nothing of this request was kept: try again later"
    )]
    StorageUnavailable(String),
    /// A stored file was found missing or damaged when read (its blob deleted by hand, a
    /// disk fault, a truncated copy): not the client's fault and not a passing one. The
    /// server forgets the file and asks its uploader for it again; a 410 tells the reader
    /// not to retry now (QA s26b F2, F3).
    #[error(
        "the server's copy of this file is lost or damaged; the device that sent it is asked for it again at its next sync"
    )]
    FileLost,
    /// The database is held by another writer (a command-line import beside the
    /// server) or out of connections for longer than a request waits: nothing was
    /// written, and the same request will do later.
    #[error("the server's database is busy; try again in a few seconds")]
    Busy,
    /// Other offices' reports or exports hold every slot for them longer than a request
    /// waits: not the database's doing, and one such job takes seconds, so the client is
    /// told to come back in a minute, not in five seconds (QA s28a F7).
    #[error(
        "other offices' reports, exports or ledger files are being prepared and this one waited its turn too long; try again in a minute"
    )]
    ReportsBusy,
    /// A PDF was asked for and the server has no usable Chinese font to print it with:
    /// the server's setup, not the client's request, is at fault, and the message says
    /// what to install.
    #[error("{0}")]
    PdfFontMissing(String),
    /// The database failed (not the client's fault).
    #[error("database error")]
    Database(sea_orm::DbErr),
    /// Anything else that is the server's fault.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::InvalidLedger(_) => "invalid_ledger",
            ApiError::Invalid(_) => "invalid",
            ApiError::NotBegun(_) => "quarter_not_begun",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidCredentials
            | ApiError::InvalidEnrollmentCode
            | ApiError::WrongCurrentPassword => "invalid_credentials",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::DeviceRevoked => "device_revoked",
            ApiError::UploadInProgress { .. } => "upload_in_progress",
            ApiError::UploadIdle { .. } => "upload_idle",
            ApiError::BodyIdle { .. } => "body_idle",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::TusVersion => "unsupported_tus_version",
            ApiError::ChecksumMismatch => "checksum_mismatch",
            ApiError::TooManyAttempts { .. } => "too_many_attempts",
            ApiError::TooManyUploads { .. } => "too_many_uploads",
            ApiError::Busy | ApiError::ReportsBusy | ApiError::PushesBusy => "busy",
            ApiError::FileLost => "file_lost",
            ApiError::StorageUnavailable(_) => "storage_unavailable",
            ApiError::PdfFontMissing(_) => "pdf_font_missing",
            ApiError::Database(_) | ApiError::Internal(_) => "internal",
        }
    }

    /// The body sent to the client.
    pub fn body(&self) -> ErrorBody {
        let details = match self {
            ApiError::InvalidLedger(errors) => serde_json::to_value(errors).ok(),
            ApiError::PayloadTooLarge { limit, .. } => {
                Some(serde_json::json!({ "limit_bytes": limit }))
            }
            ApiError::RangeNotSatisfiable { length } => {
                Some(serde_json::json!({ "length": length }))
            }
            ApiError::TooManyUploads { open, limit, .. } => {
                Some(serde_json::json!({ "open": open, "limit": limit }))
            }
            _ => None,
        };
        ErrorBody {
            error: self.code().to_string(),
            message: self.to_string(),
            details,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidLedger(_) | ApiError::Invalid(_) | ApiError::NotBegun(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unauthenticated
            | ApiError::InvalidCredentials
            | ApiError::WrongCurrentPassword
            | ApiError::InvalidEnrollmentCode => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::UploadInProgress { .. } | ApiError::DeviceRevoked => {
                StatusCode::CONFLICT
            }
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TusVersion => StatusCode::PRECONDITION_FAILED,
            ApiError::UploadIdle { .. } | ApiError::BodyIdle { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::ChecksumMismatch => {
                StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ApiError::TooManyAttempts { .. } | ApiError::TooManyUploads { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::FileLost => StatusCode::GONE,
            ApiError::Busy
            | ApiError::ReportsBusy
            | ApiError::PushesBusy
            | ApiError::PdfFontMissing(_)
            | ApiError::StorageUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Database(e) => tracing::error!(error = %e, "database error"),
            ApiError::Internal(e) => tracing::error!(error = %e, "internal error"),
            ApiError::PdfFontMissing(e) => tracing::error!(error = %e, "cannot print PDF"),
            ApiError::StorageUnavailable(e) => {
                tracing::error!(error = %e, "storage full or not writable: a request was answered 503")
            }
            _ => {}
        }
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthenticated) {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let ApiError::MethodNotAllowed { allow } = self {
            resp.insert_header(("Allow", *allow));
        }
        if matches!(self, ApiError::TusVersion) {
            resp.insert_header(("Tus-Version", "1.0.0"));
        }
        if let ApiError::TooManyAttempts { retry_after_secs } = self {
            resp.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        if matches!(self, ApiError::Busy | ApiError::PushesBusy) {
            resp.insert_header(("Retry-After", BUSY_RETRY_AFTER_SECS.to_string()));
        }
        if matches!(self, ApiError::ReportsBusy) {
            resp.insert_header(("Retry-After", REPORTS_RETRY_AFTER_SECS.to_string()));
        }
        if matches!(self, ApiError::StorageUnavailable(_)) {
            resp.insert_header(("Retry-After", STORAGE_RETRY_AFTER_SECS.to_string()));
        }
        if let ApiError::RangeNotSatisfiable { length } = self {
            resp.insert_header(("Content-Range", format!("bytes */{length}")));
        }
        resp.json(self.body())
    }
}

/// What a busy server asks the client to wait before sending the request again.
const BUSY_RETRY_AFTER_SECS: u64 = 5;

/// `Retry-After` of [`ApiError::ReportsBusy`]: a queue of reports takes longer to clear.
const REPORTS_RETRY_AFTER_SECS: u64 = 60;

/// What a server whose storage is full asks the client to wait: someone must act.
const STORAGE_RETRY_AFTER_SECS: u64 = 60;

/// A storage (file) error: a full disk or an unwritable data directory is
/// [`ApiError::StorageUnavailable`], naming `what` was being done; anything else is
/// the server's fault.
pub fn storage_failure(e: std::io::Error, what: &str) -> ApiError {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::StorageFull | K::QuotaExceeded | K::ReadOnlyFilesystem | K::PermissionDenied => {
            ApiError::StorageUnavailable(format!("{what}: {e}"))
        }
        _ => ApiError::Internal(format!("storage: {what}: {e}")),
    }
}

impl From<sea_orm::DbErr> for ApiError {
    /// A wait for the database that ran out (the SQLite write lock held by another
    /// process, a pool with no free connection) is [`ApiError::Busy`]; anything else is
    /// the server's fault.
    fn from(e: sea_orm::DbErr) -> Self {
        // SQLite's lock; PostgreSQL's lock and statement timeouts, a server short of
        // connections or restarting (QA s26b F8, F9): the same request will do later.
        let locked = || {
            let text = e.to_string();
            [
                "database is locked",
                "canceling statement due to lock timeout",
                "canceling statement due to statement timeout",
                "too many clients already",
                "remaining connection slots are reserved",
                "the database system is starting up",
                "the database system is shutting down",
            ]
            .iter()
            .any(|s| text.contains(s))
        };
        if matches!(e, sea_orm::DbErr::ConnectionAcquire(_)) || locked() {
            tracing::warn!(cause = %e, "database busy: a request was answered 503");
            return ApiError::Busy;
        }
        // PostgreSQL's text cannot hold U+0000 (SQLite's can): a client's text carrying
        // one, in a field no rule checked before the query, is the client's mistake.
        let text = e.to_string();
        // SQLite's SQLITE_FULL and SQLITE_READONLY; PostgreSQL's "could not extend file"
        // and "No space left on device".
        if [
            "database or disk is full",
            "attempt to write a readonly database",
            "No space left on device",
            "could not extend file",
        ]
        .iter()
        .any(|s| text.contains(s))
        {
            return ApiError::StorageUnavailable(format!("database: {text}"));
        }
        if text.contains("invalid byte sequence") && text.contains("0x00") {
            return ApiError::BadRequest(
                "the request holds the character U+0000 (NUL), which no text may hold".into(),
            );
        }
        ApiError::Database(e)
    }
}

/// Services return this.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A full disk or an unwritable data directory is the server's passing state: 503
    /// with a code of its own and `Retry-After`, the cause in the log only (QA s26b F4).
    /// PostgreSQL's waits that ran out, and a server short of connections, are a
    /// passing state: 503 `busy` with `Retry-After`, as SQLite's lock is.
    #[test]
    fn postgresql_timeouts_and_connection_limits_are_busy() {
        for text in [
            "error returned from database: canceling statement due to lock timeout",
            "error returned from database: canceling statement due to statement timeout",
            "error returned from database: sorry, too many clients already",
        ] {
            let e = ApiError::from(sea_orm::DbErr::Custom(text.into()));
            assert!(matches!(e, ApiError::Busy), "{text}");
        }
    }

    #[test]
    fn a_full_or_unwritable_storage_is_a_503_to_retry() {
        let full = storage_failure(
            std::io::Error::from(std::io::ErrorKind::StorageFull),
            "an upload",
        );
        let db = ApiError::from(sea_orm::DbErr::Custom(
            "Execution Error: database or disk is full".into(),
        ));
        let readonly = storage_failure(
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            "an upload",
        );
        for e in [full, db, readonly] {
            assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE, "{e:?}");
            assert_eq!(e.code(), "storage_unavailable");
            let resp = e.error_response();
            assert_eq!(
                resp.headers()
                    .get("Retry-After")
                    .and_then(|v| v.to_str().ok()),
                Some("60")
            );
            assert!(
                !e.to_string().contains("disk is full"),
                "the cause is not sent"
            );
        }
        let other = storage_failure(std::io::Error::other("bad sector"), "an upload");
        assert_eq!(other.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_nul_postgresql_cannot_store_is_the_clients_mistake() {
        let e = ApiError::from(sea_orm::DbErr::Custom(
            "error returned from database: invalid byte sequence for encoding \"UTF8\": 0x00"
                .into(),
        ));
        assert_eq!(e.status_code(), StatusCode::BAD_REQUEST);
        assert!(e.to_string().contains("U+0000"), "{e}");
    }

    #[test]
    fn internal_causes_are_not_sent() {
        let e = ApiError::Database(sea_orm::DbErr::Custom("secret table detail".into()));
        let body = e.body();
        assert_eq!(body.error, "internal");
        assert!(!body.message.contains("secret"));
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_database_wait_that_ran_out_is_a_busy_server_not_an_internal_error() {
        use sea_orm::{DbErr, RuntimeErr, error::ConnAcquireErr};
        for e in [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::Exec(RuntimeErr::Internal("database is locked".into())),
        ] {
            let e = ApiError::from(e);
            assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(e.code(), "busy");
            let resp = e.error_response();
            assert_eq!(
                resp.headers().get("Retry-After").map(|v| v.as_bytes()),
                Some(&b"5"[..])
            );
        }
        let other = ApiError::from(DbErr::Custom("constraint failed".into()));
        assert_eq!(other.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn too_many_uploads_is_a_429_saying_how_many_and_what_frees_one() {
        let e = ApiError::TooManyUploads {
            open: 32,
            limit: 32,
            expiry_days: 30,
        };
        assert_eq!(e.status_code(), StatusCode::TOO_MANY_REQUESTS);
        let body = e.body();
        assert_eq!(body.error, "too_many_uploads");
        assert!(
            body.message.contains("holds 32 unfinished uploads")
                && body.message.contains("finish one")
                && body.message.contains("expire (30 days"),
            "{}",
            body.message
        );
        assert_eq!(
            body.details,
            Some(serde_json::json!({"open": 32, "limit": 32}))
        );
        assert!(e.error_response().headers().get("Retry-After").is_none());
    }

    #[test]
    fn ledger_errors_carry_every_row() {
        let e = ApiError::InvalidLedger(vec![
            RowError::cell(3, 1, "不能为空"),
            RowError::cell(9, 8, "x"),
        ]);
        assert_eq!(e.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        let details = e.body().details.unwrap();
        assert_eq!(details.as_array().map(Vec::len), Some(2));
        assert_eq!(details[0]["column"], "贫困户姓名");
    }
}
