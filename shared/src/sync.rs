//! Sync protocol v1: the types devices and the server exchange to move signed records
//! and their photos, exactly once, over bad networks. `docs/sync-protocol.md` describes
//! the whole protocol for implementers of other clients.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::HouseholdDetail;
use crate::policy::Policy;
use crate::visit::SignedRecord;

/// Most records accepted in one push.
pub const MAX_PUSH_RECORDS: usize = 500;

/// `POST /api/v1/sync/push`: a batch of signed records, in any order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub records: Vec<SignedRecord>,
}

/// What became of one pushed record. The server answers every record of a batch; a
/// record it already holds gets the same answer again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    /// Stored, with every photo and signature image it refers to.
    Accepted,
    /// Stored; some files it refers to have not been uploaded yet (see `missing_blobs`).
    AwaitingPhotos,
    /// Not stored: the reason says why (bad signature, unknown device, invalid record…).
    Rejected,
    /// Not stored: the server holds a different record under this id. Never overwritten.
    Conflict,
}

/// The server's answer for one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ack {
    pub id: Uuid,
    pub status: AckStatus,
    /// Why a record was rejected or conflicts, in English words for people. Kept for
    /// clients that read it; a client showing the refusal in the helper's language
    /// goes by `reason_code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why a record was rejected or conflicts, as a stable code (one of
    /// [`reason_code`](crate::sync::reason_code)), set with every `reason`. Absent from
    /// servers before it was added, so readers treat it as optional and fall back to
    /// `reason`, as they do for a code they do not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// SHA-256 of files the record refers to that the server does not have yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_blobs: Vec<String>,
    /// Anomalies recorded with the record (`clock_ahead`, `chain_break`, `seq_reused`,
    /// …), and `photo_reused` while another visit holds its photo first
    /// (`docs/sync-protocol.md`, "Flags").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// The codes of [`Ack::reason_code`]: one per check of a push, in the order the server
/// makes them (`docs/sync-protocol.md`, section 3). Never renamed; new ones may appear.
pub mod reason_code {
    /// The record does not validate (format rules of the canonical form).
    pub const INVALID_RECORD: &str = "invalid_record";
    /// Its `device_id` is not a device of this account, or the device was revoked.
    pub const DEVICE_NOT_REGISTERED: &str = "device_not_registered";
    /// Its `author_helper_id` is not this account's helper.
    pub const AUTHOR_NOT_HELPER: &str = "author_not_helper";
    /// Its `signature` is not 64 bytes of hex.
    pub const BAD_SIGNATURE_ENCODING: &str = "bad_signature_encoding";
    /// The signature does not verify: the record was altered after signing, or signed
    /// by another key.
    pub const SIGNATURE_MISMATCH: &str = "signature_mismatch";
    /// The helper has never been paired with the record's household.
    pub const HOUSEHOLD_NEVER_PAIRED: &str = "household_never_paired";
    /// A void or amendment names a record that is not an original visit.
    pub const TARGET_NOT_A_VISIT: &str = "target_not_a_visit";
    /// A void or amendment names a visit recorded by another helper.
    pub const TARGET_OTHER_HELPER: &str = "target_other_helper";
    /// A void or amendment names a visit of another household.
    pub const TARGET_OTHER_HOUSEHOLD: &str = "target_other_household";
    /// The server holds a different record under this id (status `conflict`).
    pub const CONFLICT: &str = "conflict";
    /// The server did not process the record (it should not happen): push it again.
    pub const NOT_PROCESSED: &str = "not_processed";
}

/// The answer to a push, one ack per record in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushResponse {
    pub acks: Vec<Ack>,
}

/// A record as the server holds it, for pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    pub signed: SignedRecord,
    pub status: AckStatus,
    pub missing_blobs: Vec<String>,
    pub flags: Vec<String>,
    pub received_at: DateTime<Utc>,
    /// The town office's review note ("has issues: …"), once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
}

/// `GET /api/v1/sync/pull?cursor=C`: what changed since the cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullResponse {
    /// The account's own records whose state changed since the cursor, oldest change first.
    pub records: Vec<ServerRecord>,
    /// The account's households with pairing history, present when the ledger of its
    /// county changed since the cursor (a helper's households are few, so they come whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub households: Option<Vec<HouseholdDetail>>,
    /// The policy in force, sent with the households.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// The home-visit evidence of each policy version, oldest first, sent with the
    /// policy ([`crate::api::Snapshot::evidence_history`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence_history: Vec<crate::policy::EvidenceSince>,
    /// The `exit_cuts` of each policy version, oldest first, sent with the policy
    /// ([`crate::api::Snapshot::exit_cuts_history`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exit_cuts_history: Vec<crate::policy::ExitCutsSince>,
    /// The visits asked by each policy version, oldest first, sent with the policy
    /// ([`crate::api::Snapshot::visits_history`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visits_history: Vec<crate::policy::VisitsSince>,
    /// The cursor to send next time. Monotonic; opaque to clients.
    pub cursor: i64,
    /// More changes are waiting: pull again with the new cursor.
    pub more: bool,
}

/// A sequence or chain problem of one device, for the town office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceAnomaly {
    pub device_id: i64,
    pub helper_id: i64,
    /// `gap`, `refused`, `chain_break`, `seq_reused` or `clock_ahead`.
    pub kind: String,
    /// The sequence number concerned; for a `gap`, the first one missing.
    pub seq: i64,
    /// For a `gap`, the last sequence number missing (equal to `seq` when one is): a
    /// gap is one entry however many numbers it spans, so a device claiming sequence
    /// number 2^53−1 costs the office view one line. Absent for the other kinds, and
    /// from servers before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_to: Option<i64>,
    pub detail: String,
    pub detected_at: DateTime<Utc>,
}

/// A family change seen in the field, waiting for the town office's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldChange {
    pub id: i64,
    pub record_id: Uuid,
    pub household_id: i64,
    /// birth, move_in, marriage_in, death, move_out, marriage_out.
    pub kind: String,
    pub name: String,
    /// `pending`, `accepted`, `rejected`, or `withdrawn`: its visit was voided or
    /// corrected by its helper, so it is not to be decided.
    pub status: String,
    pub note: Option<String>,
    /// What the office judges by (QA s22b F9): the household's head, the time of the
    /// visit that proposed the change (`None` until that visit's record is stored), and
    /// the helper who recorded it.
    #[serde(default)]
    pub head_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub helper_name: String,
}

/// The town office's decision on a field change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldChangeDecision {
    pub accept: bool,
    pub note: Option<String>,
}
