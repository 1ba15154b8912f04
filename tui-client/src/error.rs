//! The one error type of the client library. Every variant carries a message a helper
//! can act on: the terminal UI and the headless commands show it as is.

use std::path::PathBuf;

/// What went wrong in the offline core (store, photos, signing, server calls).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The local SQLite store failed.
    #[error("local store: {0}")]
    Store(#[from] sea_orm::DbErr),
    /// A file or directory could not be read or written.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A file given as a photo or signature is not a decodable image.
    #[error("{path}: not a readable image ({reason}); it was not attached")]
    NotAnImage { path: PathBuf, reason: String },
    /// A photo is larger than the configured limit.
    #[error(
        "{path}: {size_mb:.1} MB is over the {limit_mb:.0} MB photo limit; it was not attached"
    )]
    PhotoTooLarge {
        path: PathBuf,
        size_mb: f64,
        limit_mb: f64,
    },
    /// A record or a form does not satisfy the visit rules.
    #[error(transparent)]
    Visit(#[from] bangfu_shared::visit::VisitError),
    /// A form field could not be understood.
    #[error("{field}: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
    /// The server answered with an error body.
    #[error("server: {message} ({code}, HTTP {status})")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
    /// The server could not be reached or answered something unreadable.
    #[error("network: {0}")]
    Network(String),
    /// The device has not logged in yet, so it has no households and no signing key.
    #[error(
        "not logged in on this device: run `bangfu login --server URL --username U --password-stdin`"
    )]
    NotLoggedIn,
    /// The logged-in account is not a helper and cannot record visits.
    #[error("this account is not a helper account and cannot record visits")]
    NotAHelper,
    /// A household, record or draft id that the store does not hold.
    #[error("{what} `{id}` not found in the local store")]
    NotFound { what: &'static str, id: String },
    /// An operation that breaks the record rules (amending a void record, voiding twice).
    #[error("{0}")]
    Refused(String),
    /// The device key file is unreadable or corrupt.
    #[error("device key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    /// Data in the store that this version cannot read.
    #[error("corrupt local data: {0}")]
    Corrupt(String),
    /// The server no longer accepts the saved session (the token expired or was revoked).
    #[error(
        "the server no longer accepts this device's session: run `bangfu login` again (nothing on the device is lost)"
    )]
    SessionExpired,
}

impl ClientError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ClientError::Io {
            path: path.into(),
            error: source,
        }
    }
}

impl ClientError {
    /// Whether another attempt may succeed: the network failed (no connection, a
    /// timeout, a stream cut mid-answer) or the server had a problem of its own (5xx,
    /// 408, 429). Every other answer is final and is never retried.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Network(_) => true,
            ClientError::Server { status, .. } => *status >= 500 || matches!(*status, 408 | 429),
            _ => false,
        }
    }

    /// The HTTP status of a server answer, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Server { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Result of the client library.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
