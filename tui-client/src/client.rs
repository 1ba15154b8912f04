//! The offline core's entry point: one [`Client`] per data directory. It logs in once
//! with the network, then records, amends and voids visits with none.
//!
//! No terminal code here: the `bangfu` binary's TUI and headless commands, and any
//! embedder (a handheld shell, a mobile app), drive this API.

use crate::problem::Problem;
use bangfu_shared::api::{HouseholdDetail, Snapshot};
use bangfu_shared::policy::{DueStatus, window_of};
use bangfu_shared::visit::{
    FORMAT_VERSION, PhotoRef, RecordEnvelope, RecordType, SignedRecord, VisitBody, ZERO_HASH,
};
use bangfu_shared::{PairingRole, Policy, Role, VisitKind};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::api::ApiClient;
use crate::config::{DataDir, Limits, local_offset};
use crate::draft::VisitDraft;
use crate::error::{ClientError, Result};
use crate::photos::{PhotoStore, StoredImage};
use crate::signing::DeviceKey;
use crate::store::{Identity, Store, VisitRow};
use crate::sync::{SyncOptions, SyncProgress, SyncReport};

/// The offline client over one data directory.
#[derive(Debug, Clone)]
pub struct Client {
    data: DataDir,
    store: Store,
    photos: PhotoStore,
}

/// What `bangfu login` needs.
#[derive(Clone)]
pub struct LoginParams {
    pub server: String,
    pub username: String,
    pub password: String,
    /// The one-time enrollment code of a helper's first login (sets `password`).
    pub enroll_code: Option<String>,
    /// How the device is named on the server.
    pub device_label: String,
}

impl std::fmt::Debug for LoginParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginParams")
            .field("server", &self.server)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What a login did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSummary {
    pub device_id: i64,
    pub key_created: bool,
    pub households: usize,
    /// This device's clock less the server's, in seconds, when they differ by more than
    /// [`crate::sync::CLOCK_WARN_SECS`]: what the device signs would not count.
    pub clock_offset_secs: Option<i64>,
}

/// A household in the helper's list, with what is due under the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseholdOverview {
    pub detail: HouseholdDetail,
    /// The helper's role with this household today, if paired.
    pub role: Option<PairingRole>,
    pub last_home: Option<DateTime<Utc>>,
    pub last_phone: Option<DateTime<Utc>>,
    /// One entry per requirement of the policy for the helper's role that has a window
    /// due within the helper's pairing (see [`crate::windows`]): none past the last
    /// paired day. Its `overdue` says the requirement has windows in `missed`.
    pub due: Vec<DueStatus>,
    /// Every window the helper's pairing covers whole that ended with too few contacts,
    /// of today's quarter and the one before each current window, oldest first: what
    /// "overdue" means for this household, as the server's sheet judges it.
    pub missed: Vec<MissedWindow>,
    /// Visits the town office returned for correction (a review note) that the helper
    /// has not amended yet.
    pub to_correct: usize,
    /// When not paired today, the first day of a pairing of the helper's that begins
    /// later (an import dated ahead): what the list says instead of "not paired".
    pub pairing_from: Option<NaiveDate>,
    /// Visits (not voided) the server said do not count for attendance (a reused photo,
    /// a clock ahead…): they satisfy no window, so `last_home`/`last_phone` and `due`
    /// leave them out and the list marks them.
    pub not_counted: usize,
    /// The first day the helper is no longer paired, when a change of helper filed
    /// ahead (not the household's exit) ends the pairing later: the list says so, so an
    /// early due day is not read as a mistake (QA s24b F11).
    pub handover_on: Option<NaiveDate>,
}

/// A window of a visit requirement that ended with too few contacts of its kind, in
/// the helper's pairing (see [`crate::windows`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MissedWindow {
    pub kind: VisitKind,
    /// The window's first and last day.
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Its length in months, as the policy sets it (1, 2, 3, 4, 6 or 12).
    pub months: u32,
}

impl MissedWindow {
    /// The window of `months` months before the one holding `today`.
    pub fn before(kind: VisitKind, months: u32, today: NaiveDate) -> Self {
        let (start, _) = window_of(today, months);
        let to = start.pred_opt().unwrap_or(start);
        let (from, _) = window_of(to, months);
        MissedWindow {
            kind,
            from,
            to,
            months,
        }
    }
}

impl HouseholdOverview {
    /// The status on `today`: the server's, or 已脱贫 once a coming exit's day has come.
    /// The device learns statuses when the ledger changes, not as days pass, so the day
    /// an exit takes effect is read here from its `exit_on`.
    pub fn status_on(&self, today: NaiveDate) -> bangfu_shared::HouseholdStatus {
        let s = &self.detail.summary;
        match s.exit_on {
            Some(day) if day <= today => bangfu_shared::HouseholdStatus::Exited,
            _ => s.status,
        }
    }

    /// The first day out of pairing of an exit filed for a day still to come on `today`.
    pub fn coming_exit(&self, today: NaiveDate) -> Option<NaiveDate> {
        let s = &self.detail.summary;
        s.exit_on
            .filter(|day| *day > today && s.status != bangfu_shared::HouseholdStatus::Exited)
    }

    /// The coming end of the helper's pairing, for the list's mark: the household's
    /// exit (`true`), else a handover to another helper (`false`).
    pub fn coming_end(&self, today: NaiveDate) -> Option<(NaiveDate, bool)> {
        self.coming_exit(today)
            .map(|day| (day, true))
            .or_else(|| self.handover_on.filter(|d| *d > today).map(|d| (d, false)))
    }

    /// The earliest date by which a contact not yet made this window is due.
    pub fn next_due(&self) -> Option<(VisitKind, NaiveDate)> {
        self.due
            .iter()
            .filter(|d| !d.done_this_window)
            .map(|d| (d.kind, d.due_by))
            .min_by_key(|(_, d)| *d)
    }

    /// Whether any window was missed. Not read from `due`: a requirement with nothing
    /// more due (the pairing ends before its next window does) may still have misses.
    pub fn overdue(&self) -> bool {
        !self.missed.is_empty()
    }

    /// The missed window that began first (the policy's order breaks a tie): the one a
    /// list row names.
    pub fn first_missed(&self) -> Option<&MissedWindow> {
        self.missed.iter().min_by_key(|w| w.from)
    }
}

/// A household whose pairing with the helper ended: the server lists it with all of the
/// helper's pairings closed (it does for a quarter after the end), or its list of the
/// helper's households no longer has it. It stays on the device so its drafts can be
/// signed and its visits amended or voided (the server takes records for any household
/// the helper was ever paired with) and its history keeps its name; it leaves the list
/// of households to visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedHousehold {
    pub detail: HouseholdDetail,
    /// The date the pairing is known to have ended by: the real end ([`Self::ended_on`])
    /// when the device's copy has it, else the local date the device first found the
    /// household missing from the server's list.
    pub unpaired_since: NaiveDate,
    /// The real end from the pairing history: the first day the helper is no longer
    /// paired (the latest `valid_to` of the helper's pairings, all closed). `None` when
    /// the copy on the device predates the end.
    pub ended_on: Option<NaiveDate>,
    /// The helper's pairings with it, as inclusive date ranges, oldest first.
    pub periods: Vec<(NaiveDate, NaiveDate)>,
    /// Its visits (not voided) that do not count, as on a current household's row:
    /// among them those signed offline after the pairing ended, which the helper may
    /// have to correct (QA s23a F13). Filled by [`Client::ended_households_at`].
    pub not_counted: usize,
}

/// The day the helper's pairing in `role` holding on `today` ends, when it ends later
/// and not by the household's exit: a change of helper filed ahead ([`HouseholdOverview::handover_on`]).
fn handover_on(
    detail: &HouseholdDetail,
    helper_id: i64,
    role: PairingRole,
    today: NaiveDate,
) -> Option<NaiveDate> {
    let until = crate::windows::stretches(detail, helper_id, role)
        .into_iter()
        .find(|s| s.from <= today && s.until.is_some_and(|u| u > today))?
        .until?;
    (detail.summary.exit_on != Some(until)).then_some(until)
}

/// The day helper `helper_id`'s pairing with a household ended, by its pairing history:
/// the latest `valid_to` of the helper's pairings when none of them holds on `today` or
/// later (`valid_to` absent or after `today`). `None` while one does, and when the
/// history has none of the helper's.
pub fn pairing_ended_on(
    detail: &HouseholdDetail,
    helper_id: i64,
    today: NaiveDate,
) -> Option<NaiveDate> {
    let mut mine = detail
        .pairings
        .iter()
        .filter(|p| p.helper.id == helper_id)
        .peekable();
    mine.peek()?;
    mine.map(|p| p.valid_to.filter(|to| *to <= today))
        .collect::<Option<Vec<NaiveDate>>>()?
        .into_iter()
        .max()
}

impl EndedHousehold {
    /// The helper's pairing periods from the household's pairing history: each ends the
    /// day before its `valid_to`. When the copy on the device predates the end (the
    /// server stopped sending the household before the device saw the end), a pairing
    /// still open in it is taken to have lasted until `unpaired_since`: the last day the
    /// device can vouch for. The server judges attendance by its own dates.
    pub fn new(detail: HouseholdDetail, helper_id: i64, unpaired_since: NaiveDate) -> Self {
        let ended_on = pairing_ended_on(&detail, helper_id, unpaired_since);
        let mut periods: Vec<(NaiveDate, NaiveDate)> = detail
            .pairings
            .iter()
            .filter(|p| p.helper.id == helper_id)
            .filter_map(|p| {
                let to = p
                    .valid_to
                    .and_then(|t| t.pred_opt())
                    .map_or(unpaired_since, |t| t.min(unpaired_since));
                (p.valid_from <= to).then_some((p.valid_from, to))
            })
            .collect();
        periods.sort();
        EndedHousehold {
            detail,
            unpaired_since,
            ended_on,
            periods,
            not_counted: 0,
        }
    }

    /// The end to show, in words: the first day no longer paired ("2026-03-10起不再结对",
    /// "unpaired from 2026-03-10"), or the day the device noticed ("本机获知于 2026-03-12").
    pub fn shown_end(&self, lang: crate::i18n::Lang) -> String {
        let t = lang.texts();
        if self.periods.is_empty() {
            return t.pairing_withdrawn.to_string();
        }
        match (self.ended_on, lang) {
            (Some(on), crate::i18n::Lang::Zh) => format!("{on}{}", t.pairing_ended_on),
            (Some(on), crate::i18n::Lang::En) => format!("{} {on}", t.pairing_ended_on),
            (None, _) => format!("{} {}", t.pairing_ended_since, self.unpaired_since),
        }
    }

    /// Whether the helper was paired with the household on `day`.
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.periods
            .iter()
            .any(|(from, to)| *from <= day && day <= *to)
    }

    /// For a household still paired: refuses a visit dated `day` outside helper
    /// `helper_id`'s pairings with it (before the first began, in a gap between
    /// pairings, before a pairing that starts later). No pairing of the helper's in the
    /// copy: nothing to judge by.
    pub fn check_current(&self, helper_id: i64, day: NaiveDate) -> Result<()> {
        let periods = open_periods(&self.detail, helper_id);
        let covered = periods
            .iter()
            .any(|(from, to)| *from <= day && to.is_none_or(|to| day <= to));
        if periods.is_empty() || covered {
            return Ok(());
        }
        Err(ClientError::NotPairedOn {
            household_id: self.detail.summary.id,
            head_name: self.detail.summary.head_name.clone(),
            day,
            periods,
        })
    }

    /// Refuses a visit dated `day` unless it falls within the helper's pairing: a visit
    /// after the pairing ended is not the helper's to record.
    pub fn check(&self, day: NaiveDate) -> Result<()> {
        if self.covers(day) {
            return Ok(());
        }
        Err(ClientError::OutsidePairing {
            household_id: self.detail.summary.id,
            head_name: self.detail.summary.head_name.clone(),
            day,
            periods: self.periods.clone(),
        })
    }
}

/// Helper `helper_id`'s pairings with a household as inclusive date ranges, oldest
/// first; a pairing still open has no last day (it does not end today).
pub fn open_periods(
    detail: &HouseholdDetail,
    helper_id: i64,
) -> Vec<(NaiveDate, Option<NaiveDate>)> {
    let mut periods: Vec<_> = detail
        .pairings
        .iter()
        .filter(|p| p.helper.id == helper_id)
        .filter_map(|p| match p.valid_to {
            None => Some((p.valid_from, None)),
            Some(to) => to
                .pred_opt()
                .filter(|last| p.valid_from <= *last)
                .map(|last| (p.valid_from, Some(last))),
        })
        .collect();
    periods.sort();
    periods
}

/// The first day of helper `helper_id`'s next pairing with a household when none holds
/// on `today` (a pairing imported to start on a later day): the helper is told from
/// when, rather than that the household is not paired.
pub fn pairing_from(
    detail: &HouseholdDetail,
    helper_id: i64,
    today: NaiveDate,
) -> Option<NaiveDate> {
    detail
        .pairings
        .iter()
        .filter(|p| p.helper.id == helper_id && p.valid_from > today)
        .map(|p| p.valid_from)
        .min()
}

/// The quarter of a new visit dated `day` when that quarter ended before `now`'s date:
/// its attendance has been (or is being) reported, so such a date is said to the
/// helper before signing (a correct late entry is allowed; a typing error is common).
pub fn closed_quarter(
    day: NaiveDate,
    now: DateTime<Utc>,
) -> Option<bangfu_shared::report::Quarter> {
    use bangfu_shared::report::Quarter;
    let q = Quarter::of(day);
    (q < Quarter::of(today(now))).then_some(q)
}

/// Why an office or administrator account cannot log in on the field client: it
/// records no visits and signs no sheets; its reports are on the server.
pub const HELPERS_ONLY: &str = "this client is for first and second helpers; an office or administrator account uses the server's reports and review queue";

/// An image of a visit already on another visit of this device
/// ([`Client::reused_images`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReusedImage {
    pub sha256: String,
    /// The household's (or the witness's) signature image, not a photo.
    pub signature: bool,
    /// The earliest other visit carrying it, and its time.
    pub visit_id: Uuid,
    pub at: DateTime<Utc>,
}

/// The server's address as the helper may type it, made the base the API client
/// expects: spaces and trailing `/` dropped, and the API root `/api/v1` the server
/// prints at start-up taken off (the client adds it to every path).
pub fn normalize_server(url: &str) -> String {
    let mut base = url.trim().trim_end_matches('/');
    while let Some(stripped) = base.strip_suffix("/api/v1") {
        base = stripped.trim_end_matches('/');
    }
    base.to_string()
}

/// How far ahead of the device clock a visit time may be: clocks of two devices differ
/// by a few minutes; a time beyond that is a typing error (or a fabrication).
pub const FUTURE_TOLERANCE: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Refuses a visit time later than `now` + [`FUTURE_TOLERANCE`]. Only the client checks
/// this: the server's validation also reads old records, and its own clock is another.
pub fn check_not_future(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
    if at > now + FUTURE_TOLERANCE {
        return Err(ClientError::FutureTime { at });
    }
    Ok(())
}

/// An amendment's target with its reason trimmed, or
/// [`ClientError::AmendmentReasonMissing`] when the reason is absent or blank.
fn amendment_with_reason((target, reason): (Uuid, Option<String>)) -> Result<(Uuid, String)> {
    reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .map(|r| (target, r))
        .ok_or(ClientError::AmendmentReasonMissing)
}

/// Today's date where the helper works (UTC+8).
pub fn today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&local_offset()).date_naive()
}

/// Whether `body` is short of the photos or household signature asked by the policy in
/// force on its date (China time) by `history`: the server will not count it, and says
/// so only in its reports, so the device says so itself. False before any policy.
pub fn short_of_evidence(
    history: &[bangfu_shared::policy::EvidenceSince],
    body: &bangfu_shared::visit::VisitBody,
) -> bool {
    !evidence_shortfall(history, body).is_empty()
}

/// What a home visit lacks of the evidence its policy asks: said part by part, so the
/// helper is not sent back for photos when the witness's mark is what is missing (QA
/// s28a F8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    /// Fewer photos than the policy asks.
    Photos { have: usize, need: usize },
    /// No household signature: none at all, or a witness named without a drawn mark
    /// (`witness_unmarked`), which is a typed name, not a signature.
    Signature { witness_unmarked: bool },
}

/// The parts of the evidence `body` lacks by the policy in force on its date (empty when
/// it has them all, is not a home visit, or no policy is known).
pub fn evidence_shortfall(
    history: &[bangfu_shared::policy::EvidenceSince],
    body: &bangfu_shared::visit::VisitBody,
) -> Vec<Shortfall> {
    use bangfu_shared::visit::HouseholdSignature;
    let Some(ev) = bangfu_shared::policy::evidence_on(history, today(body.at)) else {
        return Vec::new();
    };
    if ev.met_by(body.kind, body.photos.len(), body.household_signed()) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let need = ev.min_photos as usize;
    if body.photos.len() < need {
        out.push(Shortfall::Photos {
            have: body.photos.len(),
            need,
        });
    }
    if ev.both_signatures && !body.household_signed() {
        out.push(Shortfall::Signature {
            witness_unmarked: matches!(
                body.household_signature,
                Some(HouseholdSignature::Witness { .. })
            ),
        });
    }
    out
}

/// The instant China's `day` begins: where a day-dated rule (a policy version) starts
/// for visits stored by their instant.
pub fn china_midnight(day: NaiveDate) -> DateTime<Utc> {
    let offset = i64::from(local_offset().local_minus_utc());
    (day.and_time(chrono::NaiveTime::MIN) - chrono::TimeDelta::seconds(offset)).and_utc()
}

impl Client {
    /// Opens (creating and migrating) the store in `data`.
    pub async fn open(data: DataDir, limits: Limits) -> Result<Self> {
        data.ensure()?;
        let store = Store::open(&data.db_path()).await?;
        let photos = PhotoStore::new(&data, limits);
        Ok(Client {
            data,
            store,
            photos,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn photos(&self) -> &PhotoStore {
        &self.photos
    }

    pub fn data_dir(&self) -> &DataDir {
        &self.data
    }

    /// The first (and only) networked step: authenticate, make or load the device key,
    /// register it, download the households. Everything after works offline.
    pub async fn login(&self, params: &LoginParams) -> Result<LoginSummary> {
        // The server prints its API root (`…/api/v1`): accepted as the server's address.
        let api = ApiClient::new(&normalize_server(&params.server))?;
        let login = match &params.enroll_code {
            Some(code) => api.enroll(&params.username, code, &params.password).await?,
            None => api.login(&params.username, &params.password).await.map_err(|e| match e {
                // First login: say how to use the town office's one-time code.
                ClientError::Server { status, code, message } if code == "invalid_credentials" || code == "enrollment_required" => ClientError::Server {
                    status,
                    code,
                    message: format!("{message} (first login: add --enroll-code CODE from the town office; the password given becomes yours)"),
                },
                other => other,
            })?,
        };
        let api = api.with_token(login.token.clone());
        if !matches!(login.me.role, Role::FirstHelper | Role::SecondHelper) {
            // Nothing is saved and no device key is made: the account signs no records.
            // The session just opened is closed (best effort: the refusal stands anyway).
            let _ = api.logout().await;
            return Err(ClientError::Refused(HELPERS_ONLY.into()));
        }
        let (key, key_created) = DeviceKey::load_or_create(&self.data.key_path())?;
        let device = match api
            .register_device(&key.public_key_base64(), &params.device_label)
            .await
        {
            // Kept, so that this device stops signing visits no server will take and
            // its sync says why, not "log in again" in a loop (QA s30a L2).
            Err(ClientError::Server { code, .. }) if code == "device_revoked" => {
                self.store.set_device_revoked().await?;
                let _ = api.logout().await;
                return Err(ClientError::DeviceRevoked);
            }
            other => other?,
        };
        let snapshot = api.snapshot().await?;
        let clock_offset_secs = Some((Utc::now() - snapshot.server_time).num_seconds())
            .filter(|o| crate::sync::clock_is_off(*o));
        let identity = Identity {
            server: api.base().to_string(),
            username: params.username.clone(),
            account_id: login.me.account_id,
            role: login.me.role,
            helper: snapshot.me.helper.clone().or(login.me.helper.clone()),
            device_id: device.id,
            public_key: device.public_key,
            token: login.token,
            token_expires_at: login.expires_at,
            logged_in_at: Utc::now(),
        };
        let households = snapshot.households.len();
        self.install_login(&identity, &snapshot).await?;
        self.store.set_clock_offset(clock_offset_secs).await?;
        Ok(LoginSummary {
            device_id: identity.device_id,
            key_created,
            households,
            clock_offset_secs,
        })
    }

    /// [`ClientError::DeviceForked`] once a pull found this data directory is a copy
    /// whose device key signed elsewhere: it must not sign on.
    pub async fn ensure_not_forked(&self) -> Result<()> {
        match self.store.device_forked().await? {
            true => Err(ClientError::DeviceForked),
            false => Ok(()),
        }
    }

    /// [`ClientError::DeviceRevoked`] once a login heard this device's key was revoked.
    pub async fn ensure_not_revoked(&self) -> Result<()> {
        match self.store.device_revoked().await? {
            true => Err(ClientError::DeviceRevoked),
            false => Ok(()),
        }
    }

    /// Changes the logged-in account's password (needs the network): the helper's own
    /// way to a new one, ending their sessions on other devices (QA s29c K14).
    pub async fn change_password(&self, current: &str, new_password: &str) -> Result<()> {
        let identity = self.identity().await?;
        ApiClient::new(&identity.server)?
            .with_token(identity.token)
            .change_password(current, new_password)
            .await
    }

    /// Saves a login and its snapshot. [`Client::login`] calls it after the network
    /// steps; tests and provisioning tools call it directly.
    pub async fn install_login(&self, identity: &Identity, snapshot: &Snapshot) -> Result<()> {
        self.store.save_login(identity, snapshot).await
    }

    /// The saved login, or [`ClientError::NotLoggedIn`].
    pub async fn identity(&self) -> Result<Identity> {
        self.store.identity().await?.ok_or(ClientError::NotLoggedIn)
    }

    /// Whether a sync has brought this account's history from the server yet. A login
    /// downloads the households but not the visits recorded on other devices (or before
    /// a reinstall): until the first pull, "never visited" and "overdue" are only what
    /// this device knows, and the interface says so. The pull cursor is 0 before it.
    pub async fn history_pulled(&self) -> Result<bool> {
        Ok(self.store.pull_cursor().await? > 0)
    }

    /// The downloaded policy, or [`ClientError::NotLoggedIn`].
    pub async fn policy(&self) -> Result<Policy> {
        self.store.policy().await?.ok_or(ClientError::NotLoggedIn)
    }

    /// The device key (made at login).
    pub fn device_key(&self) -> Result<DeviceKey> {
        DeviceKey::load(&self.data.key_path())
    }

    /// The helper's households with last contacts and what is due on `now`'s date.
    pub async fn households(&self, now: DateTime<Utc>) -> Result<Vec<HouseholdOverview>> {
        let identity = self.identity().await?;
        let policy = self.policy().await?;
        let history = self.store.evidence_history().await?;
        let cuts = self.store.exit_cuts_history().await?;
        let asked = self.store.visits_history().await?;
        let ev = history.as_slice();
        let contacts = self.store.last_contacts(now + FUTURE_TOLERANCE, ev).await?;
        // The oldest window judged (the one before a yearly window) began on the first
        // day of last year: at most two years back.
        let times = self
            .store
            .contact_times(
                now - chrono::TimeDelta::days(800),
                now + FUTURE_TOLERANCE,
                ev,
            )
            .await?;
        let corrections = self.store.pending_corrections().await?;
        let uncounted = self
            .store
            .not_counted_visits(now + FUTURE_TOLERANCE, ev)
            .await?;
        let today = today(now);
        let helper_id = identity.helper.as_ref().map(|h| h.id);
        let households = self.store.households().await?;
        Ok(households
            .into_iter()
            // A pairing that ended since the server last sent the list (an exit filed
            // for a later day) ends by its date, without waiting for the next list.
            .filter(|detail| {
                helper_id.is_none_or(|id| pairing_ended_on(detail, id, today).is_none())
            })
            .map(|detail| {
                let last = contacts.get(&detail.summary.id);
                let last_home = last.and_then(|m| m.get(VisitKind::Home.code())).copied();
                let last_phone = last.and_then(|m| m.get(VisitKind::Phone.code())).copied();
                let role = helper_id.and_then(|id| role_on(&detail, id, today));
                let (due, missed) = match (helper_id, role) {
                    (Some(helper), Some(role)) => crate::windows::judge_household(
                        &policy,
                        (&cuts, &asked),
                        &detail,
                        (helper, role),
                        times.get(&detail.summary.id),
                        today,
                    ),
                    _ => Default::default(),
                };
                let to_correct = corrections.get(&detail.summary.id).copied().unwrap_or(0);
                let not_counted = uncounted.get(&detail.summary.id).copied().unwrap_or(0);
                let pairing_from = match (helper_id, role) {
                    (Some(helper), None) => pairing_from(&detail, helper, today),
                    _ => None,
                };
                let handover_on = match (helper_id, role) {
                    (Some(helper), Some(role)) => handover_on(&detail, helper, role, today),
                    _ => None,
                };
                HouseholdOverview {
                    pairing_from,
                    detail,
                    role,
                    last_home,
                    last_phone,
                    due,
                    missed,
                    to_correct,
                    not_counted,
                    handover_on,
                }
            })
            .collect())
    }

    /// The households whose pairing with the helper ended by today, with the helper's
    /// pairing periods (see [`EndedHousehold`]).
    pub async fn ended_households(&self) -> Result<Vec<EndedHousehold>> {
        self.ended_households_at(Utc::now()).await
    }

    /// The households whose pairing with the helper ended by `now`'s date: stored as
    /// ended, or listed with all of the helper's pairings closed by then.
    pub async fn ended_households_at(&self, now: DateTime<Utc>) -> Result<Vec<EndedHousehold>> {
        let identity = self.identity().await?;
        let helper_id = identity.helper.as_ref().map_or(-1, |h| h.id);
        let today = today(now);
        let mut ended: Vec<EndedHousehold> = self
            .store
            .local_households()
            .await?
            .into_iter()
            .filter_map(|h| {
                let since = h
                    .unpaired_since
                    .or_else(|| pairing_ended_on(&h.detail, helper_id, today))?;
                Some(EndedHousehold::new(h.detail, helper_id, since))
            })
            .collect();
        // Counted only when there is a household to show them on (most refreshes have
        // none).
        if !ended.is_empty() {
            let history = self.store.evidence_history().await?;
            let uncounted = self
                .store
                .not_counted_visits(now + FUTURE_TOLERANCE, &history)
                .await?;
            for h in &mut ended {
                h.not_counted = uncounted.get(&h.detail.summary.id).copied().unwrap_or(0);
            }
        }
        Ok(ended)
    }

    /// One household's details (current or ended).
    pub async fn household(&self, id: i64) -> Result<HouseholdDetail> {
        self.store
            .household(id)
            .await?
            .ok_or_else(|| ClientError::NotFound {
                what: "household",
                id: id.to_string(),
            })
    }

    /// Checks, downsizes and stores a photo; returns the reference a visit carries.
    pub async fn attach_photo(&self, path: &std::path::Path) -> Result<PhotoRef> {
        let img = self
            .photos
            .import_photo(path, crate::photos::MIN_PHOTO_EDGE)?;
        self.store.register_file(&img).await?;
        Ok(PhotoRef {
            sha256: img.sha256,
            bytes: img.bytes,
            width: img.width,
            height: img.height,
        })
    }

    /// Removes the images stored since `since` that nothing uses: a save that failed
    /// after its photos were copied (a refused visit, a full phone) left them behind,
    /// unseen by the helper and never sent (QA s33a S6, s33d S2). An image another
    /// visit or a draft names stays. Returns how many went.
    pub async fn forget_unused_images_since(&self, since: std::time::SystemTime) -> Result<usize> {
        let mut removed = 0;
        for sha in self.photos.stored_since(since) {
            if self.store.image_in_use(&sha).await? {
                continue;
            }
            let path = self.photos.path_of(&sha);
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ClientError::io(&path, e)),
            }
            self.store.forget_file(&sha).await?;
        }
        Ok(removed)
    }

    /// Stores a rendered signature PNG; returns its hash.
    pub async fn attach_signature_png(&self, png: &[u8]) -> Result<String> {
        let img: StoredImage = self.photos.put_png(png)?;
        self.store.register_file(&img).await?;
        Ok(img.sha256)
    }

    /// Stores a photo of the signed paper card; returns its hash.
    /// (A signature's crop may be a thin strip: only a visit photo has a least size.)
    pub async fn attach_card_photo(&self, path: &std::path::Path) -> Result<String> {
        let img = self.photos.import_photo(path, 1)?;
        self.store.register_file(&img).await?;
        Ok(img.sha256)
    }

    /// The images of a visit that another visit of this device (any household, not
    /// voided, not `except`: the visit being amended) already carries. The server counts
    /// a photo for one visit only, and a signature is made at each visit, so a copy is
    /// said to the helper at attach time, when a draft reopens and before signing.
    pub async fn reused_images(
        &self,
        photos: &[PhotoRef],
        signature: Option<&str>,
        except: Option<Uuid>,
    ) -> Result<Vec<ReusedImage>> {
        let mut out = Vec::new();
        for p in photos {
            if let Some((visit_id, at)) = self.store.photo_visit(&p.sha256, except).await? {
                out.push(ReusedImage {
                    sha256: p.sha256.clone(),
                    signature: false,
                    visit_id,
                    at,
                });
            }
        }
        if let Some(h) = signature
            && let Some((visit_id, at)) = self.store.image_visit(h, None, except).await?
        {
            out.push(ReusedImage {
                sha256: h.to_string(),
                signature: true,
                visit_id,
                at,
            });
        }
        Ok(out)
    }

    /// [`Self::reused_images`] of a draft as it stands (its signature image whatever the
    /// method: a witness's mark is a signature too).
    pub async fn draft_reused_images(&self, draft: &VisitDraft) -> Result<Vec<ReusedImage>> {
        let signature = draft
            .signature_image
            .as_deref()
            .filter(|_| draft.kind == VisitKind::Home);
        self.reused_images(&draft.photos, signature, draft.amends)
            .await
    }

    /// Saves a draft (every form change does).
    pub async fn save_draft(&self, draft: &VisitDraft) -> Result<()> {
        self.store.save_draft(draft).await
    }

    /// Signs and stores the visit a draft describes, removing the draft in the same
    /// transaction. A home visit without the household's signature is refused and the
    /// draft is kept.
    pub async fn complete_draft(
        &self,
        draft: &VisitDraft,
        now: DateTime<Utc>,
    ) -> Result<SignedRecord> {
        // The same check the form shows: it names a lapsed signature, a future time and
        // a correction without its reason (the town office reads the reason beside the
        // changed visit; the shared record rules do not require it, records signed
        // before this check stay valid, so the client asks before signing).
        if let Some(e) = draft.missing(now) {
            return Err(e);
        }
        let body = draft.to_body()?;
        let reason = Some(draft.reason.trim().to_string()).filter(|r| !r.is_empty());
        self.record_visit(
            draft.household_id,
            body,
            draft.amends.map(|a| (a, reason)),
            Some(draft.id),
            now,
        )
        .await
    }

    /// Signs and stores a visit, or with `amends` an amendment of an earlier visit and
    /// the reason for it. An amendment without a reason (absent or blank) is refused
    /// with [`ClientError::AmendmentReasonMissing`] before anything is checked or stored.
    pub async fn record_visit(
        &self,
        household_id: i64,
        body: VisitBody,
        amends: Option<(Uuid, Option<String>)>,
        draft_id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<SignedRecord> {
        let amends = amends.map(amendment_with_reason).transpose()?;
        check_not_future(body.at, now)?;
        body.ready_to_sign()?;
        for hash in body.referenced_hashes() {
            if !self.store.has_file(&hash).await? || !self.photos.verify(&hash) {
                return Err(ClientError::ImageMissing(hash));
            }
        }
        let household = self
            .store
            .local_household(household_id)
            .await?
            .ok_or_else(|| ClientError::NotFound {
                what: "household",
                id: household_id.to_string(),
            })?;
        // With a household whose pairing ended, a new visit (or a correction that moves
        // a visit to another day) must be dated within the helper's pairing.
        let identity = self.identity().await?;
        let helper_id = identity.helper.as_ref().map(|h| h.id);
        let since = household.unpaired_since.or_else(|| {
            helper_id.and_then(|id| pairing_ended_on(&household.detail, id, today(now)))
        });
        // With a current household, a date before the pairing began (or in a gap
        // between pairings) is refused as well: the pairing as it stands until today.
        let (ended, current) = match (since, helper_id) {
            (Some(since), Some(helper)) => (
                Some(EndedHousehold::new(household.detail, helper, since)),
                None,
            ),
            (Some(_), None) => return Err(ClientError::NotAHelper),
            (None, Some(helper)) => (
                None,
                Some(EndedHousehold::new(
                    household.detail,
                    helper,
                    today(now + FUTURE_TOLERANCE),
                )),
            ),
            (None, None) => (None, None),
        };
        let check_date = |day: NaiveDate| -> Result<()> {
            match (&ended, &current) {
                (Some(ended), _) => ended.check(day),
                (None, Some(current)) => match helper_id {
                    Some(helper) => current.check_current(helper, day),
                    None => Ok(()),
                },
                (None, None) => Ok(()),
            }
        };
        let (record_type, target_id, reason) = match amends {
            Some((target, reason)) => {
                let original = self.original_visit(target).await?;
                let moved = original
                    .current
                    .signed
                    .record
                    .visit
                    .as_ref()
                    .is_none_or(|v| today(v.at) != today(body.at));
                if moved {
                    check_date(today(body.at))?;
                }
                if original.voided {
                    return Err(ClientError::Refused(format!(
                        "visit {} was voided and cannot be amended",
                        original.visit_id
                    )));
                }
                if original.household_id != household_id {
                    return Err(ClientError::Refused(
                        "an amendment cannot move a visit to another household".into(),
                    ));
                }
                // The household's signature attests the content it was given on: carried
                // over onto changed content, it would attest what the household never saw.
                // A mark stands for the person who made it: never relabelled.
                if let Some(signed) = original
                    .current
                    .signed
                    .record
                    .visit
                    .as_ref()
                    .and_then(|v| v.household_signature.as_ref())
                    && let Some(new) = &body.household_signature
                    && crate::draft::mark_relabelled(signed, new)
                {
                    return Err(ClientError::SignerChanged);
                }
                if let Some(signed) = &original.current.signed.record.visit
                    && body.household_signature.is_some()
                    && body.household_signature == signed.household_signature
                {
                    let changed = crate::draft::attested_changes(signed, &body);
                    if !changed.is_empty() {
                        return Err(ClientError::ResignNeeded(changed));
                    }
                }
                (RecordType::Amendment, Some(original.visit_id), Some(reason))
            }
            None => {
                check_date(today(body.at))?;
                (RecordType::Visit, None, None)
            }
        };
        self.append(
            household_id,
            record_type,
            Some(body),
            target_id,
            reason,
            draft_id,
            now,
        )
        .await
    }

    /// Withdraws a visit with a signed void record.
    pub async fn void_visit(
        &self,
        visit_id: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<SignedRecord> {
        if reason.trim().is_empty() {
            return Err(ClientError::Field {
                field: "reason",
                problem: crate::error::FieldProblem::VoidReasonMissing,
            });
        }
        let original = self.original_visit(visit_id).await?;
        if original.voided {
            return Err(ClientError::Refused(format!(
                "visit {} is already void",
                original.visit_id
            )));
        }
        self.append(
            original.household_id,
            RecordType::Void,
            None,
            Some(original.visit_id),
            Some(reason.trim().into()),
            None,
            now,
        )
        .await
    }

    /// The visit a record id belongs to (an amendment's or void's id leads to its original).
    pub async fn original_visit(&self, id: Uuid) -> Result<VisitRow> {
        let not_found = || ClientError::NotFound {
            what: "visit",
            id: id.to_string(),
        };
        let record = self.store.record(id).await?.ok_or_else(not_found)?;
        let visit_id = record.signed.record.target_id.unwrap_or(id);
        self.store.visit(visit_id).await?.ok_or_else(not_found)
    }

    #[allow(clippy::too_many_arguments)]
    async fn append(
        &self,
        household_id: i64,
        record_type: RecordType,
        visit: Option<VisitBody>,
        target_id: Option<Uuid>,
        reason: Option<String>,
        draft_id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<SignedRecord> {
        self.ensure_not_revoked().await?;
        self.ensure_not_forked().await?;
        let identity = self.identity().await?;
        let helper = identity.helper.as_ref().ok_or(ClientError::NotAHelper)?;
        if self.store.household(household_id).await?.is_none() {
            return Err(ClientError::NotFound {
                what: "household",
                id: household_id.to_string(),
            });
        }
        let key = self.device_key()?;
        let txn = self.store.begin_write().await?;
        let (seq, prev) = Store::chain_head(&txn, identity.device_id)
            .await?
            .unwrap_or((0, ZERO_HASH.to_string()));
        let envelope = RecordEnvelope {
            v: FORMAT_VERSION,
            id: Uuid::now_v7(),
            record_type,
            device_id: identity.device_id,
            seq: seq + 1,
            prev_sha256: prev,
            author_helper_id: helper.id,
            household_id,
            // The canonical form carries whole seconds: keep the record as it is signed.
            created_at: bangfu_shared::visit::truncate_to_seconds(now),
            visit,
            target_id,
            reason,
        };
        let signed = key.sign(envelope)?;
        Store::append(&txn, &signed).await?;
        if let Some(id) = draft_id {
            Store::delete_draft(&txn, id).await?;
        }
        txn.commit().await?;
        Ok(signed)
    }

    /// Visits as they stand now, newest first. A visit with records still to send has
    /// its images checked against their hashes ([`VisitRow::damaged_images`]): one that
    /// was altered or lost on the device can never be sent, and the helper must hear so
    /// rather than wait on "awaiting photos".
    pub async fn visits(&self, household_id: Option<i64>, limit: u64) -> Result<Vec<VisitRow>> {
        let mut rows = self.store.visits(household_id, limit).await?;
        for v in rows.iter_mut().filter(|v| v.unsynced > 0 && !v.voided) {
            if let Some(body) = &v.current.signed.record.visit {
                v.damaged_images = body
                    .referenced_hashes()
                    .into_iter()
                    .filter(|h| !self.photos.verify(h))
                    .collect();
            }
        }
        Ok(rows)
    }

    /// Drafts, most recent first.
    pub async fn drafts(&self) -> Result<Vec<VisitDraft>> {
        self.store.drafts().await
    }

    /// Sends every record and image not yet on the server and brings back what changed
    /// there (households, pairings, policy, this account's records); see
    /// [`crate::sync`]. `progress` hears each step. Safe to interrupt at any point: the
    /// next call resumes.
    pub async fn sync(
        &self,
        options: &SyncOptions,
        progress: &(dyn Fn(&SyncProgress) + Send + Sync),
    ) -> Result<SyncReport> {
        let _held = self.sync_lock()?;
        self.ensure_not_revoked().await?;
        let report = crate::sync::run(self, options, progress).await?;
        let report = if report.asked_again == 0 {
            report
        } else {
            // The pull brought records the server holds without a file it had: what
            // this device has of them goes at once, not at the next sync (QA s26b F2).
            let mut again = crate::sync::run(self, options, progress).await?;
            again.asked_again = report.asked_again;
            again
        };
        self.store
            .set_clock_offset(report.clock_offset_secs)
            .await?;
        Ok(report)
    }

    /// Holds this data directory's sync lock (an OS file lock, released when the file
    /// closes, so a killed sync never leaves it held), or says another sync has it.
    fn sync_lock(&self) -> Result<std::fs::File> {
        let path = self.data.sync_lock_path();
        let io = |error: std::io::Error| ClientError::Io {
            error,
            path: path.clone(),
        };
        // The user's alone, as every file of the data directory (QA s25b F10).
        crate::config::private_file(&path)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(ClientError::SyncRunning),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

/// What [`Client::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// SQLite's `PRAGMA integrity_check` answer (`ok`).
    pub integrity: String,
    /// Records of this device, the ones checked.
    pub records: usize,
    /// Records of the account's other devices held here (recovered by pull): their
    /// chains and signatures are the server's to check, and their own device's.
    pub other_devices_records: usize,
    /// Everything wrong: chain gaps, bad signatures, missing or altered images.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.integrity == "ok" && self.problems.is_empty()
    }
}

impl Client {
    /// Checks the store file, this device's record chain (sequence, hashes, Ed25519
    /// signatures) and every image the records name.
    pub async fn verify(&self) -> Result<VerifyReport> {
        use base64::Engine as _;
        let integrity = self.store.integrity_check().await?;
        let identity = self.identity().await?;
        let key: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(&identity.public_key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| {
                ClientError::Corrupt("the saved public key is not 32 bytes of base64".into())
            })?;
        let records = self.store.device_records(identity.device_id).await?;
        let mut problems = Vec::new();
        let mut prev = ZERO_HASH.to_string();
        for (i, r) in records.iter().enumerate() {
            let rec = &r.signed.record;
            let id = rec.id;
            if rec.seq != i as i64 + 1 {
                let expected = i as i64 + 1;
                problems.push(Problem::SequenceGap {
                    id,
                    seq: rec.seq,
                    expected,
                });
            }
            if rec.prev_sha256 != prev {
                problems.push(Problem::ChainBroken { id });
            }
            match rec.record_sha256() {
                Ok(h) if h == r.sha256 => {}
                _ => problems.push(Problem::ContentChanged { id }),
            }
            if crate::signing::verify(&r.signed, &key).is_err() {
                problems.push(Problem::BadSignature { id });
            }
            if let Some(v) = &rec.visit {
                for sha256 in v.referenced_hashes() {
                    if !self.photos.verify(&sha256) {
                        problems.push(Problem::RecordImageDamaged { id, sha256 });
                    }
                }
            }
            if rec.record_type == RecordType::Visit && self.store.visit(rec.id).await?.is_none() {
                problems.push(Problem::NoVisitRow { id });
            }
            prev = r.sha256.clone();
        }
        Ok(VerifyReport {
            integrity,
            other_devices_records: self.store.count_other_devices(identity.device_id).await?,
            records: records.len(),
            problems,
        })
    }
}

/// The role of helper `helper_id` with a household on `day`, from the pairing history.
pub fn role_on(detail: &HouseholdDetail, helper_id: i64, day: NaiveDate) -> Option<PairingRole> {
    detail
        .pairings
        .iter()
        .filter(|p| {
            p.helper.id == helper_id && p.valid_from <= day && p.valid_to.is_none_or(|to| day < to)
        })
        .map(|p| p.role)
        .min()
}

/// How this device is named on the server: `bangfu@HOSTNAME`.
pub fn device_label() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        "bangfu terminal".into()
    } else {
        format!("bangfu@{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_server;

    /// QA s28a F8: a home visit short of evidence is told what it lacks: photos, a
    /// signature, or a witness's mark, each alone.
    #[test]
    fn a_shortfall_names_what_is_missing() {
        use super::{Shortfall, evidence_shortfall};
        use bangfu_shared::policy::{EvidenceSince, HomeVisitEvidence};
        use bangfu_shared::visit::{HouseholdSignature, PhotoRef, VisitBody};
        let history = [EvidenceSince {
            from: chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
            evidence: HomeVisitEvidence {
                min_photos: 1,
                both_signatures: true,
            },
        }];
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-05T02:00:00Z")
            .unwrap()
            .to_utc();
        let mut body = VisitBody::new(bangfu_shared::VisitKind::Home, at);
        body.photos = vec![PhotoRef {
            sha256: "a".repeat(64),
            bytes: 1,
            width: 1,
            height: 1,
        }];
        body.household_signature = Some(HouseholdSignature::Witness {
            name: "王见证".into(),
            role: "村民".into(),
            reason: "户主外出".into(),
            image_sha256: None,
        });
        assert_eq!(
            evidence_shortfall(&history, &body),
            [Shortfall::Signature {
                witness_unmarked: true
            }],
            "the photo is there: only the witness's mark is missing"
        );
        body.photos.clear();
        body.household_signature = None;
        assert_eq!(
            evidence_shortfall(&history, &body),
            [
                Shortfall::Photos { have: 0, need: 1 },
                Shortfall::Signature {
                    witness_unmarked: false
                }
            ]
        );
        let text = crate::i18n::Lang::Zh.shortfall_text(&evidence_shortfall(&history, &body));
        assert!(
            text.contains("照片0张") && text.contains("缺少户主签字"),
            "{text}"
        );
    }

    /// QA s24b F11: a pairing a change filed ahead ends later is a handover; one the
    /// household's exit ends, or one that holds, is not.
    #[test]
    fn a_pairing_ending_later_by_a_change_is_a_handover() {
        use bangfu_shared::PairingRole;
        let d = |m, day| chrono::NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let mut detail = crate::app::testing::household(1, "张三", "东村");
        let helper = detail.pairings[0].helper.id;
        let role = detail.pairings[0].role;
        let today = d(12, 5);
        assert_eq!(super::handover_on(&detail, helper, role, today), None);
        detail.pairings[0].valid_to = Some(d(12, 20));
        assert_eq!(
            super::handover_on(&detail, helper, role, today),
            Some(d(12, 20))
        );
        detail.summary.exit_on = Some(d(12, 20));
        assert_eq!(super::handover_on(&detail, helper, role, today), None);
        let other = match role {
            PairingRole::First => PairingRole::Second,
            PairingRole::Second => PairingRole::First,
        };
        assert_eq!(super::handover_on(&detail, helper, other, today), None);
    }

    /// QA s32c W10: a change of helper withdrawn ended the new pairing where it began:
    /// the helper never held it, which is said, not an empty period "ended" that day.
    #[test]
    fn a_withdrawn_pairing_is_said_never_to_have_begun() {
        let d = |m, day| chrono::NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let mut detail = crate::app::testing::household(1, "张三", "东村");
        let helper = detail.pairings[0].helper.id;
        detail.pairings[0].valid_from = d(12, 6);
        detail.pairings[0].valid_to = Some(d(12, 6));
        let ended = super::EndedHousehold::new(detail.clone(), helper, d(12, 7));
        assert!(ended.periods.is_empty());
        assert_eq!(
            ended.shown_end(crate::i18n::Lang::Zh),
            "结对未曾生效（已撤回）"
        );
        // One that held a day is an end.
        detail.pairings[0].valid_to = Some(d(12, 7));
        let ended = super::EndedHousehold::new(detail, helper, d(12, 8));
        assert_eq!(
            ended.shown_end(crate::i18n::Lang::Zh),
            "2026-12-07起不再结对"
        );
    }

    #[test]
    fn the_printed_api_root_and_trailing_slashes_are_taken_off_the_server_address() {
        for typed in [
            "http://127.0.0.1:18080",
            "http://127.0.0.1:18080/",
            "http://127.0.0.1:18080/api/v1",
            "http://127.0.0.1:18080/api/v1/",
            " http://127.0.0.1:18080/api/v1// ",
        ] {
            assert_eq!(normalize_server(typed), "http://127.0.0.1:18080", "{typed}");
        }
        // A server behind a path prefix keeps it.
        assert_eq!(
            normalize_server("https://example.cn/bangfu/api/v1"),
            "https://example.cn/bangfu"
        );
    }
}
