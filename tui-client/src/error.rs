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
    #[error("{error}: {path}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A file given as a photo or signature is not a decodable image. The reason comes
    /// before the path: a long path would push it off a narrow status line.
    #[error("not a readable image ({reason}); it was not attached: {path}")]
    NotAnImage { path: PathBuf, reason: String },
    /// A photo is larger than the configured limit.
    #[error(
        "{size_mb:.1} MB is over the {limit_mb:.0} MB photo limit; it was not attached: {path}"
    )]
    PhotoTooLarge {
        path: PathBuf,
        size_mb: f64,
        limit_mb: f64,
    },
    /// A JPEG or PNG that stops before its end marker or that its decoder cannot read
    /// through: most often a photo copied off a phone while it was still being written.
    /// The decoder would pad the missing part grey and keep it silently, so a half
    /// picture would be signed as evidence.
    #[error(
        "the photo file is incomplete or damaged, perhaps still being copied ({reason}); it was not attached: {path}"
    )]
    PhotoDamaged { path: PathBuf, reason: String },
    /// A picture with more pixels than the device decodes ([`crate::Limits::max_pixels`]):
    /// it is a real image, so the helper is told its size, not that it is unreadable.
    #[error(
        "{width}×{height} pixels is too large for a photo (at most {} megapixels); it was not attached: {path}",
        .max_pixels / 1_000_000
    )]
    PhotoTooManyPixels {
        path: PathBuf,
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    /// A picture too small to show a visit (a thumbnail, a 1×1 placeholder): evidence
    /// nobody can look at is refused when it is added, not when the town office sees it.
    #[error(
        "{width}×{height} pixels is too small for a visit photo (at least {min} on each side); it was not attached: {path}"
    )]
    PhotoTooSmall {
        path: PathBuf,
        width: u32,
        height: u32,
        min: u32,
    },
    /// A record or a form does not satisfy the visit rules.
    #[error(transparent)]
    Visit(#[from] bangfu_shared::visit::VisitError),
    /// An amendment changes what the household's signature attests (the time, the kind
    /// of visit, the deliveries, the family changes: codes `at`, `kind`, `deliveries`,
    /// `family_changes`) yet carries the old signature. The household signed the old
    /// content, so it must sign again.
    #[error(
        "the amendment changes what the household signed ({}); the household must sign again",
        .0.join(", ")
    )]
    ResignNeeded(Vec<&'static str>),
    /// An amendment carries the original's signature image for another signer (the
    /// witness renamed or replaced, or the household's mark given as a witness's): a
    /// mark stands for the person who made it, so the new signer must sign anew.
    #[error(
        "the signature carried over was made by the original signer, not by the one now named; the new signer must sign"
    )]
    SignerChanged,
    /// A sheet submission identical (rows reviewed and remarks) to the one already
    /// queued (`version: None`) or frozen as `version`: it would be a duplicate version.
    #[error("{}", match .version {
        Some(v) => format!("the sheet is the same as version {v}: nothing to submit"),
        None => "the sheet is the same as the submission waiting for the sync: nothing to submit".to_string(),
    })]
    SheetUnchanged { version: Option<i32> },
    /// A visit time later than now (beyond the clock tolerance): a visit is recorded
    /// after it happened, and a future time would count as a contact in advance.
    #[error("the visit time {at} is in the future: correct it")]
    FutureTime { at: chrono::DateTime<chrono::Utc> },
    /// A visit dated outside the helper's pairing with a household whose pairing ended
    /// (it left the server's list): the pairing periods are inclusive date ranges.
    #[error(
        "{head_name} (household {household_id}) is no longer paired with you: the visit date {day} is outside your pairing ({}); correct the date",
        format_periods(.periods, " to ", ", ")
    )]
    OutsidePairing {
        household_id: i64,
        head_name: String,
        day: chrono::NaiveDate,
        periods: Vec<(chrono::NaiveDate, chrono::NaiveDate)>,
    },
    /// A visit dated outside the helper's pairing with a household still paired with
    /// them (before the pairing began, or in a gap between two pairings): not the
    /// helper's to record. The periods are inclusive date ranges; one still open has no
    /// last day (`from 2026-12-29`), as it does not end today.
    #[error(
        "the visit date {day} is outside your pairing with {head_name} (household {household_id}: {}); correct the date",
        format_open_periods(.periods, crate::i18n::Lang::En)
    )]
    NotPairedOn {
        household_id: i64,
        head_name: String,
        day: chrono::NaiveDate,
        periods: Vec<(chrono::NaiveDate, Option<chrono::NaiveDate>)>,
    },
    /// A form field could not be understood.
    #[error("{field}: {problem}")]
    Field {
        field: &'static str,
        problem: FieldProblem,
    },
    /// An image a visit names is not (or no longer intact) in the local store.
    #[error(
        "image {0} is missing from the local store or damaged (not as signed): attach the photos again (bangfu visit amend --replace-photos), or void the visit"
    )]
    ImageMissing(String),
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
    /// Another sync (another `bangfu sync`, or the TUI's) is running on this data
    /// directory: two at once would send the same records and files twice over.
    #[error("another sync is running on this data directory; wait for it to finish")]
    SyncRunning,
    /// The logged-in account is not a helper and cannot record visits.
    #[error("this account is not a helper account and cannot record visits")]
    NotAHelper,
    /// A household, record or draft id that the store does not hold.
    #[error("{what} `{id}` not found in the local store")]
    NotFound { what: &'static str, id: String },
    /// An amendment (a record superseding an earlier visit) without a reason, or with a
    /// blank one: the town office reads the reason beside the changed visit, so neither
    /// the interface, the headless commands nor an embedder signs one without it.
    #[error("an amendment needs a reason: say why the visit is corrected")]
    AmendmentReasonMissing,
    /// An operation that breaks the record rules (amending a void record, voiding twice).
    #[error("{0}")]
    Refused(String),
    /// The device key file is unreadable or corrupt.
    #[error("device key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    /// Data in the store that this version cannot read.
    #[error("corrupt local data: {0}")]
    Corrupt(String),
    /// The store was written by a newer client: nothing is wrong with it, this program
    /// is too old to read it (QA s33d S3: it was said as corrupt data).
    #[error(
        "the store has schema version {found}, newer than this client ({known}); update the client (nothing was changed)"
    )]
    NewerStore { found: i64, known: i64 },
    /// The server no longer accepts the saved session (the token expired or was revoked).
    #[error(
        "the server no longer accepts this device's session: run `bangfu login` again (nothing on the device is lost)"
    )]
    SessionExpired,
    /// The town office revoked this device's key (the phone was reported lost): the
    /// server refuses every record it signs, so it signs and syncs no more (QA s30a L2).
    #[error(
        "the town office revoked this device's key (reported lost): records it signs are refused; log in with a new --data-dir, and record again the visits not yet synced here"
    )]
    DeviceRevoked,
    /// The server holds a record this device's key signed that this data directory does
    /// not: it is a copy (a backup restored, or the directory copied to another
    /// terminal), and signing on would give two records one number in the device's
    /// chain (QA s31b R1). Records already signed here still sync.
    #[error(
        "the server holds records this device's key signed that this data directory does not have (a restored backup, or a copy in use elsewhere): it signs no more, so no number of its chain is used twice; log in with a new --data-dir (the records signed here still sync)"
    )]
    DeviceForked,
}

/// Date ranges as `FROM{to}TO`, joined by `sep` (`-` when there are none).
pub fn format_periods(
    periods: &[(chrono::NaiveDate, chrono::NaiveDate)],
    to: &str,
    sep: &str,
) -> String {
    if periods.is_empty() {
        return "-".into();
    }
    periods
        .iter()
        .map(|(from, until)| format!("{from}{to}{until}"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// Pairing periods of which the last may be open, in `lang`: `2025-01-01 至 2025-06-30、
/// 2026-12-29 起` / `2025-01-01 to 2025-06-30, from 2026-12-29`.
pub fn format_open_periods(
    periods: &[(chrono::NaiveDate, Option<chrono::NaiveDate>)],
    lang: crate::i18n::Lang,
) -> String {
    if periods.is_empty() {
        return "-".into();
    }
    let zh = lang == crate::i18n::Lang::Zh;
    periods
        .iter()
        .map(|(from, until)| match (until, zh) {
            (Some(until), true) => format!("{from} 至 {until}"),
            (Some(until), false) => format!("{from} to {until}"),
            (None, true) => format!("{from} 起"),
            (None, false) => format!("from {from}"),
        })
        .collect::<Vec<_>>()
        .join(if zh { "、" } else { ", " })
}

/// What is wrong with what the helper typed in a field: English for the headless
/// commands ([`std::fmt::Display`]), the interface's words via [`crate::i18n::Lang::error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    /// Not a time (the text as typed).
    #[error("`{0}` is not a time: write 2026-03-01 08:30")]
    NotATime(String),
    /// A delivery not written `ITEM:YUAN[:OCCASION]`.
    #[error("`{0}`: write ITEM:YUAN or ITEM:YUAN:OCCASION, e.g. 月饼:88:中秋")]
    DeliveryFormat(String),
    /// A delivery without the item.
    #[error("`{0}`: the item is missing")]
    ItemMissing(String),
    /// A family change not written `KIND:NAME`.
    #[error("`{0}`: write KIND:NAME, e.g. birth:张小宝")]
    FamilyFormat(String),
    /// A family change without the person's name.
    #[error("`{0}`: the person's name is missing")]
    NameMissing(String),
    /// An amount or a code the shared rules refuse (`BadAmount`, `UnknownCode`).
    #[error(transparent)]
    Rule(bangfu_shared::visit::VisitError),
    /// A void without a reason.
    #[error("a void needs a reason")]
    VoidReasonMissing,
    /// A sheet remark longer than the printed sheet holds (its length in characters).
    #[error(
        "the remark is {0} characters long: at most {max} fit a line of the printed sheet",
        max = bangfu_shared::report::MAX_SHEET_REMARK_CHARS
    )]
    RemarkTooLong(usize),
    /// A server address that is not an http(s) URL.
    #[error("`{0}` is not an http:// URL")]
    NotAUrl(String),
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
    /// A certificate the device does not trust, or a CA file it cannot use, is final
    /// too: no attempt changes it, and retrying only kept the helper waiting (QA s29a
    /// I8).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Network(m) => !crate::api::is_certificate_trouble(m),
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
