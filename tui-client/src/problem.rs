//! What a sync or a `verify` found wrong with one record or image, as data: the
//! report says it in the helper's language ([`crate::i18n::Lang::problem`]), and in
//! English (`Display`) for logs and `--lang en`; `--json` gives the fields.

use serde::Serialize;
use uuid::Uuid;

/// One thing a sync could not do, or a `verify` found wrong, with what it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// A record names an image that is not on this device.
    ImageNotOnDevice { sha256: String },
    /// The image file is there but could not be read.
    ImageUnreadable { sha256: String, detail: String },
    /// The image on this device is not the one signed (its bytes changed).
    ImageDamaged { sha256: String },
    /// The server refused the image; the records naming it stay awaiting photos.
    ImageRefused {
        sha256: String,
        reason: String,
        records: Vec<Uuid>,
    },
    /// The server takes no new upload from this account for now: it holds as many
    /// unfinished uploads as the server allows. `files` images were not sent; the
    /// records naming them stay awaiting photos, and the next sync offers them again.
    UploadsDeferred {
        reason: String,
        files: u64,
        records: Vec<Uuid>,
    },
    /// An image downloaded from the server is not what its hash names.
    DownloadMismatch { sha256: String },
    /// An image downloaded from the server does not decode.
    DownloadNotImage { sha256: String, reason: String },
    /// An image could not be downloaded (the server's words).
    DownloadFailed { sha256: String, detail: String },
    /// A record from the server is not readable JSON.
    RecordUnreadable { id: String, detail: String },
    /// A record from the server is of a format this version cannot read; kept for an
    /// update.
    RecordNewerFormat { id: Uuid, detail: String },
    /// A record from the server could not be stored here.
    RecordNotStored { id: String, detail: String },
    /// The server holds a different record under this record's id.
    RecordConflict { id: Uuid },
    /// A recovered record takes a device sequence number another record has here.
    SequenceTaken { id: Uuid, device_id: i64, seq: i64 },
    /// The server did not process the record; it is sent again at the next sync.
    NotProcessed { id: Uuid },
    /// The quarter's attendance sheet could not be pulled (the server's words).
    SheetUnavailable { quarter: String, reason: String },
    /// `verify`: the record's sequence number breaks the device's count.
    SequenceGap { id: Uuid, seq: i64, expected: i64 },
    /// `verify`: the record does not chain to the one before it.
    ChainBroken { id: Uuid },
    /// `verify`: the record's content no longer has the hash it was stored with.
    ContentChanged { id: Uuid },
    /// `verify`: the record's signature does not verify with this device's key.
    BadSignature { id: Uuid },
    /// `verify`: a record names an image that is missing or altered.
    RecordImageDamaged { id: Uuid, sha256: String },
    /// `verify`: a visit record has no row in the visit list.
    NoVisitRow { id: Uuid },
    /// Anything else, in the words of whoever found it.
    Other { detail: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::ImageNotOnDevice { sha256 } => {
                write!(f, "image {sha256} is not on this device; it cannot be sent")
            }
            Problem::ImageUnreadable { sha256, detail } => write!(f, "image {sha256}: {detail}"),
            Problem::ImageDamaged { sha256 } => write!(
                f,
                "image {sha256} on this device does not match its hash; it cannot be sent"
            ),
            Problem::ImageRefused {
                sha256,
                reason,
                records,
            } => write!(
                f,
                "image {sha256} was not accepted: {reason}; record {} stays awaiting photos \
                 and the image is offered again at the next sync",
                join(records)
            ),
            Problem::UploadsDeferred {
                reason,
                files,
                records,
            } => write!(
                f,
                "{files} image(s) were not sent: the server takes no new upload from this \
                 account for now ({reason}); record {} stays awaiting photos and the images \
                 are offered again at the next sync",
                join(records)
            ),
            Problem::DownloadMismatch { sha256 } => write!(
                f,
                "image {sha256} downloaded from the server does not match its hash"
            ),
            Problem::DownloadNotImage { sha256, reason } => write!(
                f,
                "image {sha256} from the server is not a readable JPEG or PNG ({reason}); it \
                 was not stored on this device"
            ),
            Problem::DownloadFailed { sha256, detail } => write!(f, "image {sha256}: {detail}"),
            Problem::RecordUnreadable { id, detail } => {
                write!(f, "record {id} from the server is unreadable: {detail}")
            }
            Problem::RecordNewerFormat { id, detail } => write!(
                f,
                "record {id} from the server cannot be read by this version of the app \
                 ({detail}); it is kept and read after an update"
            ),
            Problem::RecordNotStored { id, detail } => write!(f, "record {id}: {detail}"),
            Problem::RecordConflict { id } => write!(
                f,
                "record {id}: the server holds a different record under this id; it was not \
                 overwritten"
            ),
            Problem::SequenceTaken { id, device_id, seq } => write!(
                f,
                "record {id}: device {device_id} already has a different record number {seq} \
                 here; not imported"
            ),
            Problem::NotProcessed { id } => write!(
                f,
                "record {id} was not processed by the server; it is sent again at the next sync"
            ),
            Problem::SheetUnavailable { quarter, reason } => {
                write!(f, "attendance sheet {quarter}: {reason}")
            }
            Problem::SequenceGap { id, seq, expected } => {
                write!(f, "record {id}: seq {seq} where {expected} was expected")
            }
            Problem::ChainBroken { id } => {
                write!(f, "record {id}: does not chain to the previous record")
            }
            Problem::ContentChanged { id } => {
                write!(f, "record {id}: content hash differs from the stored one")
            }
            Problem::BadSignature { id } => {
                write!(
                    f,
                    "record {id}: the signature does not verify with this device's key"
                )
            }
            Problem::RecordImageDamaged { id, sha256 } => {
                write!(f, "record {id}: image {sha256} is missing or altered")
            }
            Problem::NoVisitRow { id } => write!(f, "record {id}: no visit row"),
            Problem::Other { detail } => f.write_str(detail),
        }
    }
}

/// Record ids, comma-separated.
pub fn join(ids: &[Uuid]) -> String {
    ids.iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
