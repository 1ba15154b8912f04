//! Plain async services over `&impl ConnectionTrait`: every rule of the ledger, accounts
//! and scoping lives here, testable without HTTP. Handlers only extract, call, respond.

pub mod anomalies;
pub mod attendance;
pub mod audit;
pub mod auth;
pub mod caller;
pub mod change_corrections;
pub mod corrections;
pub mod cpu_slots;
pub mod devices;
pub mod enrollment;
pub mod exits;
pub mod facts;
pub mod households;
pub mod image_check;
pub mod jurisdictions;
pub mod pairing_changes;
pub mod policy;
pub mod push_reads;
pub mod refusals;
pub mod reports;
pub mod sessions;
pub mod signers;
pub mod sync;
pub mod throttle;
pub mod upload_expiry;
pub mod uploads;

pub use caller::{Caller, Scope};

use chrono::{DateTime, NaiveDate, Utc};

/// The current time; one place so every service agrees on it. To the microsecond, as
/// PostgreSQL keeps it: what SQLite stores reads back the same (QA s24a F2, s24d F3).
pub fn now() -> DateTime<Utc> {
    use chrono::{DurationRound, TimeDelta};
    let t = Utc::now();
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

/// Now, to the whole second: for times the API shows (a token's expiry, a device's
/// registration), which the protocol writes in the canonical form without a fraction.
pub fn now_seconds() -> DateTime<Utc> {
    bangfu_shared::visit::truncate_to_seconds(Utc::now())
}

/// Today's date in China (UTC+8), the calendar the programme's rules are written in.
pub fn today() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// The day in China (UTC+8) of an instant: the day an office filed something, as the
/// programme's calendar reads it.
pub fn china_day(t: DateTime<Utc>) -> NaiveDate {
    (t + chrono::Duration::hours(8)).date_naive()
}

/// An instant as the office reads it: China time, to the second, labelled
/// (`2026-12-05 23:29:33 (UTC+8)`), never a UTC time that reads as the day before.
pub fn china_time(t: DateTime<Utc>) -> String {
    (t + chrono::Duration::hours(8))
        .format("%Y-%m-%d %H:%M:%S (UTC+8)")
        .to_string()
}

/// The instant a day in China (UTC+8) begins: what "since 2026-12-01" means to an
/// office reading a list.
pub fn china_day_start(day: NaiveDate) -> DateTime<Utc> {
    (day.and_hms_opt(0, 0, 0).unwrap_or_default() - chrono::Duration::hours(8)).and_utc()
}

/// Holds a free text an office or a device sends (a review note, a sheet remark, a
/// device label) to the rules record texts follow ([`bangfu_shared::visit::check_text`]):
/// at most `max` characters, no control characters but line breaks and tabs, no
/// bidirectional overrides. 422 naming `what`.
pub fn check_free_text(text: &str, what: &str, max: usize) -> crate::error::ApiResult<()> {
    bangfu_shared::visit::check_text(text, what, max)
        .map_err(|e| crate::error::ApiError::Invalid(e.to_string()))
}

/// The first day of the current quarter (China time). Days before it lie in quarters
/// that have ended and may already be reported to the town and county offices, so a
/// change that would rejudge them (a household's exit, a new policy version) takes
/// effect from this day or later.
pub fn first_open_day() -> NaiveDate {
    bangfu_shared::report::Quarter::of(today()).start()
}
