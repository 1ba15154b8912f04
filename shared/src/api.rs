//! JSON types of the REST API under `/api/v1`, shared by the server and its clients.
//!
//! Entities never leave the server; these types are the contract. Dates are ISO-8601
//! (`2026-03-01`), times RFC 3339 in UTC.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ledger::RowError;
use crate::policy::Policy;
use crate::{HouseholdStatus, JurisdictionLevel, PairingRole, Role};

/// Every error the API returns: a stable snake_case code for programs, a message for
/// people, and optional structured details (for example every bad row of an import).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// `POST /api/v1/auth/login`. Helpers log in with their phone number.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `POST /api/v1/auth/password`: the caller changes their own password; their other
/// sessions end (a phone left logged in elsewhere).
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for ChangePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangePassword").finish_non_exhaustive()
    }
}

/// `POST /api/v1/auth/enroll`: a helper's first login with the one-time code the town
/// office handed out; sets the password and logs in.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    pub username: String,
    pub code: String,
    pub new_password: String,
}

impl std::fmt::Debug for EnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A successful login: a bearer token for `Authorization: Bearer …`.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub me: Me,
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResponse")
            .field("expires_at", &self.expires_at)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

/// A place in the jurisdiction tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Place {
    pub id: i64,
    pub level: JurisdictionLevel,
    pub name: String,
}

/// `GET /api/v1/places`: a town or village of the office's scope, with the id other
/// requests take (`?town=`, `?village=`) and how many households of the ledger it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaceInScope {
    #[serde(flatten)]
    pub place: Place,
    /// The town of a village, the county of a town.
    pub parent_id: Option<i64>,
    pub households: u64,
}

/// `GET /api/v1/me`: who the token belongs to and what it may see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub account_id: i64,
    pub username: String,
    pub role: Role,
    /// The town or county an office account is scoped to; none for helpers and admins.
    pub scope: Option<Place>,
    /// The helper record of a helper account.
    pub helper: Option<HelperRef>,
}

/// A helper as other records refer to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HelperRef {
    pub id: i64,
    pub name: String,
    pub unit_position: String,
    pub phone: String,
}

/// A member of a household.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub name: String,
    /// Relation to the head of household (户主, 配偶, 子女, …).
    pub relation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_year: Option<i32>,
}

/// One pairing of a helper with a household over a period; history is never overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairingDto {
    pub id: i64,
    pub household_id: i64,
    pub helper: HelperRef,
    pub role: PairingRole,
    pub valid_from: NaiveDate,
    /// The first day the pairing no longer holds; none while it is active.
    pub valid_to: Option<NaiveDate>,
    /// The date the change was filed with the county office.
    pub filed_on: NaiveDate,
    pub reason: Option<String>,
    /// Filed with less notice than the policy asks (accepted with a reason, kept flagged).
    pub short_notice: bool,
    /// The household's exit ended it (not a change of helper): a window the exit cuts
    /// may still be the helper's, by the policy's `exit_cuts`. Absent from servers
    /// before it was sent: read as false.
    #[serde(default)]
    pub ended_by_exit: bool,
    /// The day (China time) the end was filed: the exit's filing, or the import that
    /// named the next helper. A window the end cuts is owed by `exit_cuts` only when it
    /// was filed by the day before the end ([`crate::policy::ExitCuts::owes`]). Absent
    /// while the pairing holds, for an end the server cannot date, and from servers
    /// before it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_known_on: Option<NaiveDate>,
    /// When the pairing took the household over from another helper in its role (a
    /// change of helper), or paired it for the first time dated back (filed after it
    /// began), the day it was filed (`filed_on`): a window ending by that day is not
    /// this helper's ([`crate::policy::ExitCuts::start_known_in_time`]). Absent for the
    /// same helper paired again, a first pairing filed in advance, and from servers
    /// before it was sent (older servers sent it for changes of helper only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_known_on: Option<NaiveDate>,
}

/// A household in lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HouseholdSummary {
    pub id: i64,
    pub head_name: String,
    pub town: Place,
    pub village: Place,
    pub address: String,
    pub phone: String,
    pub size: Option<i32>,
    /// The status on the day asked: a household whose exit is filed for a day still to
    /// come keeps the status it had (it is still paired and visited) until that day.
    pub status: HouseholdStatus,
    /// The first day out of pairing of the household's standing exit (已脱贫): still to
    /// come while `status` is not yet `exited`. Absent when no exit stands (none filed,
    /// cancelled, or the household was brought back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_on: Option<NaiveDate>,
    pub cause: String,
    pub measures: String,
    pub first_helper: Option<HelperRef>,
    pub second_helper: Option<HelperRef>,
}

/// `GET /api/v1/households/{id}`: a household with its members and pairing history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HouseholdDetail {
    #[serde(flatten)]
    pub summary: HouseholdSummary,
    pub members: Vec<Member>,
    /// Every pairing, newest first, ended ones included.
    pub pairings: Vec<PairingDto>,
}

/// An office takes a household out of pairing (已脱贫, no longer paired; or removed from
/// the ledger): its pairings end on `effective_from`, so attendance stops requiring
/// visits after it, while the quarters before it are judged as they were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HouseholdExit {
    /// The first day the household is no longer paired: today or later (the visit
    /// windows already ended keep their verdict), at most a year ahead. Until that day
    /// the household keeps its status and is still visited.
    pub effective_from: NaiveDate,
    /// Why (脱贫退出, 自然消亡, 迁出本县…): kept in the audit log and on the pairings.
    pub reason: String,
}

/// An office corrects a household's record (a misspelt head of household, a new phone,
/// the wrong village of its town): a ledger import cannot, since it knows a household
/// by village, name and phone, and reads a corrected row as a new household (QA s29b
/// J23). Fields left out stay as they are; devices get the correction at their next
/// sync, and the audit log keeps which fields changed and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HouseholdCorrection {
    /// The head of household's name, as the ledger writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_name: Option<String>,
    /// The household's phone (11-digit mobile or a landline with area code; empty for
    /// none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Another village of the household's town.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub village_id: Option<i64>,
    /// Why (a misspelling, a new number): kept in the audit log.
    pub reason: String,
}

/// An office brings a household that left pairing back (返贫, returned to poverty): its
/// status becomes 返贫, and the next ledger import that lists it pairs its helpers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HouseholdRejoin {
    /// Why (返贫原因): kept in the audit log.
    pub reason: String,
}

/// An office withdraws an exit it filed for a day still to come (a wrong household, a
/// day that was not agreed): the pairings get back what they said before it, the
/// household its status, and both the exit and its cancelling stay on record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExitCancel {
    /// Why the exit is withdrawn: kept with the exit and in the audit log.
    pub reason: String,
}

/// Withdraws a change of helper a ledger import filed for a day still to come, or for
/// today while the new helper has recorded nothing for the household
/// (`POST /api/v1/households/{id}/pairing-change/cancel`): the pairing it ended holds on
/// as before, and the filed one stays on record as never holding. A mistaken import
/// could not otherwise be undone: naming the old helper again from the same day is a
/// change on the new pairing's first day, which an import refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PairingChangeCancel {
    /// Only the change of this helper (`first` or `second`); without it, every change
    /// of the household still to come.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<PairingRole>,
    /// Why the change is withdrawn: kept in the audit log.
    pub reason: String,
}

/// One exit an office filed (`GET /api/v1/households/{id}/exits`, and across a town or
/// county `GET /api/v1/exits`, newest first): who filed it and when, and for a
/// cancelled one who withdrew it, when and why. The county samples exits to re-check
/// (seed 000), so each names its household and the accounts involved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExitDto {
    pub id: i64,
    pub household_id: i64,
    pub head_name: String,
    pub effective_from: NaiveDate,
    pub reason: String,
    pub filed_at: DateTime<Utc>,
    /// The office account that filed it; none when filed from the server's command line.
    pub filed_by: Option<String>,
    /// Set once the exit was cancelled, before its day.
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancelled_by: Option<String>,
    pub cancel_reason: Option<String>,
    /// The exit that moved this one earlier, if one did: that one is the exit that
    /// counts (a sample of exits to re-check takes it, not this row, which stays as the
    /// record of what was first filed). Cancelling it makes this one stand again.
    pub moved_by: Option<i64>,
    /// Set once the household was brought back (返贫) after this exit took effect: the
    /// exit stands as the record of the days it was out of pairing.
    pub rejoined_at: Option<DateTime<Utc>>,
    pub rejoined_by: Option<String>,
    pub rejoin_reason: Option<String>,
}

/// `GET /api/v1/audit`: one change from the append-only audit log (who changed what,
/// when, from which address), for the county to trace a figure back to the hands that
/// made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: i64,
    /// When, in UTC (RFC 3339, `Z`); `since=` is a day in China time (UTC+8), so an
    /// entry of 2026-12-04T22:00Z is on 2026-12-05 there.
    pub at: DateTime<Utc>,
    /// The account's username; none for the server's command line.
    pub account: Option<String>,
    /// What was done, e.g. `household.exit`, `ledger.import`, `record.has_issues`.
    pub action: String,
    /// The kind of thing changed, and its id when it has a numeric one.
    pub entity: String,
    pub entity_id: Option<i64>,
    /// What changed (never passwords, tokens or codes).
    pub detail: serde_json::Value,
    pub remote_addr: Option<String>,
}

/// A page of a list endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
    /// In a pass by cursor (begun with `?after=0`), a full page's cursor: the next page
    /// is `?after=` it, and holds neither the rows of this one again nor skips any,
    /// whatever changed meanwhile. Absent after the last page, from pages asked by
    /// number (`page=`), and from servers before it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// What a ledger import did, or with `dry_run` would do. A file with any error imports
/// nothing; the errors then come back in the error body's `details`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportReport {
    pub dry_run: bool,
    pub rows: usize,
    pub households_created: usize,
    pub households_updated: usize,
    pub households_unchanged: usize,
    /// Rows left out because their household has left pairing (已脱贫, an exit filed,
    /// in effect or still to come): such a row changes nothing — its household, helpers
    /// and accounts are neither created nor updated — and is named in `notices`. Counted
    /// apart from `households_unchanged` so a file that still lists such households is
    /// not read as fully up to date.
    #[serde(default)]
    pub households_skipped: usize,
    pub helpers_created: usize,
    pub helpers_updated: usize,
    pub pairings_started: usize,
    pub pairings_ended: usize,
    pub accounts_created: usize,
    pub towns_created: usize,
    pub villages_created: usize,
    /// Changes of helper accepted with less notice than the policy asks (kept flagged).
    pub short_notice: usize,
    /// Always empty in a report: a file with errors imports nothing and its errors come
    /// in the error body's `details`. Kept for clients that read it.
    pub errors: Vec<RowError>,
    /// What was accepted but flagged, one line per row: each change of helper filed
    /// with less notice than the policy asks, and each row left out (see
    /// `households_skipped`), for the office to follow up.
    #[serde(default)]
    pub notices: Vec<RowError>,
}

impl ImportReport {
    /// Whether applying the file would change nothing (a re-import of the same file).
    pub fn is_noop(&self) -> bool {
        self.households_created == 0
            && self.households_updated == 0
            && self.helpers_created == 0
            && self.helpers_updated == 0
            && self.pairings_started == 0
            && self.pairings_ended == 0
            && self.accounts_created == 0
            && self.towns_created == 0
            && self.villages_created == 0
    }
}

/// One line of the enrollment-code sheet a town office prints and hands out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollmentCode {
    pub name: String,
    pub phone: String,
    pub role: Role,
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

/// `POST /api/v1/devices`: bind a client device's Ed25519 public key to the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterDevice {
    /// The 32-byte public key, base64 (standard alphabet, padded).
    pub public_key: String,
    /// A name for the device the helper will recognise.
    pub label: String,
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceDto {
    pub id: i64,
    pub public_key: String,
    pub label: String,
    pub registered_at: DateTime<Utc>,
    /// When it was revoked (a lost phone): an office's list of a helper's devices shows
    /// what it revoked and when. Absent while it is in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Records the server received from it: with `last_record_at`, how an office tells
    /// a helper's phones apart before revoking the lost one (QA s30a L3). 0 from servers
    /// before it was sent.
    #[serde(default)]
    pub records: u64,
    /// When the server received its latest record (its highest sequence number); absent
    /// before its first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_record_at: Option<DateTime<Utc>>,
    /// Its highest sequence number received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<i64>,
}

/// `GET /api/v1/me/snapshot`: everything a helper's device needs to work offline — the
/// households the account may see, with pairing history, and the policy that judges them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    pub me: Me,
    pub households: Vec<HouseholdDetail>,
    pub policy: Policy,
    /// The home-visit evidence of each policy version, oldest first: the device judges a
    /// visit by the one in force on its date. Absent from servers before it was sent.
    #[serde(default)]
    pub evidence_history: Vec<crate::policy::EvidenceSince>,
    /// The `exit_cuts` of each policy version, oldest first: the device judges a window
    /// by the rule in force on its first day. Absent from servers before it was sent
    /// (then the device judges by today's policy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exit_cuts_history: Vec<crate::policy::ExitCutsSince>,
    /// The visits asked by each policy version, oldest first: the device judges a past
    /// window by the version the reports judge it by ([`crate::policy::asked_in`]).
    /// Absent from servers before it was sent (then the device judges by today's
    /// policy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visits_history: Vec<crate::policy::VisitsSince>,
    pub server_time: DateTime<Utc>,
}
