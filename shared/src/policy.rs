//! The per-county policy: pairing rules and visit requirements, as versioned data.
//!
//! Counties differ (seed 001 Laizhou 2018 vs seed 004 Xigang 2019), so nothing here is a
//! constant the code judges by: the server stores a `Policy` per county (a town may
//! override it) with the date it applies from, the client uses it to show what is due,
//! and the reports use it to judge attendance. The two shipped presets are named after
//! their source documents.

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::{PairingRole, SharedError, VisitKind};

/// Shipped presets, named after the document they come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PolicyPreset {
    /// Laizhou 2018 (seed 001 §三): first helper a home visit every 2 months and a call
    /// every month; second helper a home visit every month; home visits double-signed with a photo.
    #[serde(rename = "laizhou-2018")]
    Laizhou2018,
    /// Xigang town 2019 (seed 004 第三十九条): a home visit every quarter, a call every month.
    #[serde(rename = "xigang-2019")]
    Xigang2019,
}

impl PolicyPreset {
    /// Every shipped preset.
    pub const ALL: [PolicyPreset; 2] = [PolicyPreset::Laizhou2018, PolicyPreset::Xigang2019];

    /// The preset's name, as stored and typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PolicyPreset::Laizhou2018 => "laizhou-2018",
            PolicyPreset::Xigang2019 => "xigang-2019",
        }
    }

    /// The preset's rules.
    pub fn policy(self) -> Policy {
        let pairing = PairingRules {
            max_households_first: 1,
            max_households_second: 5,
            change_notice_months: 2,
            term_years: 3,
        };
        match self {
            PolicyPreset::Laizhou2018 => Policy {
                source: self.name().to_string(),
                pairing,
                visits: vec![
                    VisitRequirement {
                        role: PairingRole::First,
                        kind: VisitKind::Home,
                        min_count: 1,
                        window_months: 2,
                    },
                    VisitRequirement {
                        role: PairingRole::First,
                        kind: VisitKind::Phone,
                        min_count: 1,
                        window_months: 1,
                    },
                    VisitRequirement {
                        role: PairingRole::Second,
                        kind: VisitKind::Home,
                        min_count: 1,
                        window_months: 1,
                    },
                ],
                evidence: HomeVisitEvidence {
                    both_signatures: true,
                    min_photos: 1,
                },
                sanctions: Sanctions::default(),
                exit_cuts: ExitCuts::default(),
            },
            PolicyPreset::Xigang2019 => Policy {
                source: self.name().to_string(),
                pairing,
                visits: vec![
                    VisitRequirement {
                        role: PairingRole::First,
                        kind: VisitKind::Home,
                        min_count: 1,
                        window_months: 3,
                    },
                    VisitRequirement {
                        role: PairingRole::First,
                        kind: VisitKind::Phone,
                        min_count: 1,
                        window_months: 1,
                    },
                ],
                evidence: HomeVisitEvidence {
                    both_signatures: true,
                    min_photos: 0,
                },
                sanctions: Sanctions::default(),
                exit_cuts: ExitCuts::default(),
            },
        }
    }
}

impl std::str::FromStr for PolicyPreset {
    type Err = SharedError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyPreset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| SharedError::UnknownPreset(s.to_string()))
    }
}

/// Who may pair with how many households, and how changes are filed (seed 001 §三).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PairingRules {
    /// 一帮一: a first helper pairs with at most this many households.
    pub max_households_first: u32,
    /// A second helper supervises at most this many households.
    pub max_households_second: u32,
    /// A change of helper is filed this many months before it takes effect; shorter
    /// notice needs a stated reason and stays flagged.
    pub change_notice_months: u32,
    /// How long a pairing lasts.
    pub term_years: u32,
}

/// At least `min_count` contacts of `kind` by the helper in `role` in every calendar
/// window of `window_months` months (1 = month, 2 = Jan–Feb, Mar–Apr…, 3 = quarter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VisitRequirement {
    pub role: PairingRole,
    pub kind: VisitKind,
    pub min_count: u32,
    pub window_months: u32,
}

/// What makes a home visit count as evidence (双签字 and photos).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HomeVisitEvidence {
    /// The household (or a witness) and the helper must both sign.
    pub both_signatures: bool,
    /// At least this many photos.
    pub min_photos: u32,
}

impl HomeVisitEvidence {
    /// Whether a visit of `kind` with `photos` photos, signed by the household (or a
    /// witness) or not, is evidence enough to count: the rule the server's attendance
    /// applies, and the field client shows before the server has said so.
    pub fn met_by(&self, kind: VisitKind, photos: usize, household_signed: bool) -> bool {
        kind != VisitKind::Home
            || (photos >= self.min_photos as usize && (household_signed || !self.both_signatures))
    }
}

/// The home-visit evidence a county (or town) asks from a day on: one step of its policy
/// history. A visit is judged by the policy in force on its date (the server's rule), so
/// a device that judges visits itself needs the steps, not only today's policy: a rule
/// raised from October must not turn February's visits into misses on the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EvidenceSince {
    /// The first day this evidence is asked.
    pub from: NaiveDate,
    pub evidence: HomeVisitEvidence,
}

/// The evidence in force on `day` by `history` (oldest first): the last step from that
/// day or before; none before the first (no policy then, nothing to judge by).
pub fn evidence_on(history: &[EvidenceSince], day: NaiveDate) -> Option<&HomeVisitEvidence> {
    history
        .iter()
        .rev()
        .find(|s| s.from <= day)
        .map(|s| &s.evidence)
}

/// A county's (or town's) rule for windows the end of a pairing cuts, from a day on:
/// one step of its policy history. A window is judged by the policy in force on its first
/// day (the server's rule), so a device that judges windows itself needs the steps: a
/// rule changed in the middle of a window must not change, on the device alone, whether
/// the outgoing helper still owes it (QA s24b F8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExitCutsSince {
    /// The first day this rule applies (to windows beginning then or later).
    pub from: NaiveDate,
    pub exit_cuts: ExitCuts,
}

/// The visits a county (or town) asks from a day on: one step of its policy history.
/// A window is judged by the version in force on its first day (or, where a version
/// changed a visit's cadence inside it, on its last: [`asked_in`]), so a device that
/// shows past misses needs the steps, not only today's policy (QA s26d F4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VisitsSince {
    /// The first day these visits are asked.
    pub from: NaiveDate,
    pub visits: Vec<VisitRequirement>,
}

/// The requirements of `last` with windows of `months` months whose role and kind
/// `first` asks at another cadence only: a version that changed how often that visit
/// is asked. By first days alone a change on 11-01 from two-monthly to quarterly home
/// visits would leave no home window from November to December (the Oct–Dec window
/// begins under the old version, the Nov–Dec one under the new): such a window is
/// judged by the version in force on its last day, the windows of the two cadences
/// overlapping around the change (QA s26a F1).
pub fn cadence_changed(
    first: &[VisitRequirement],
    last: &[VisitRequirement],
    months: u32,
) -> Vec<VisitRequirement> {
    let asked = |r: &VisitRequirement, same_window: bool| {
        first.iter().any(|o| {
            o.role == r.role && o.kind == r.kind && (o.window_months == months) == same_window
        })
    };
    last.iter()
        .filter(|r| r.window_months == months && !asked(r, true) && asked(r, false))
        .cloned()
        .collect()
}

/// The visits of `role` asked in the window `[start, end]` of `months` months by
/// `history` (oldest first), as the server's reports judge it: those of the version in
/// force on its first day with windows of that length, and [`cadence_changed`] by the
/// version in force on its last day. None before the first step (no policy then).
pub fn asked_in(
    history: &[VisitsSince],
    role: PairingRole,
    months: u32,
    (start, end): (NaiveDate, NaiveDate),
) -> Vec<VisitRequirement> {
    let on = |day: NaiveDate| history.iter().rev().find(|s| s.from <= day);
    let Some(first) = on(start) else {
        return Vec::new();
    };
    let mut out: Vec<VisitRequirement> = first
        .visits
        .iter()
        .filter(|r| r.window_months == months)
        .cloned()
        .collect();
    if let Some(last) = on(end).filter(|last| last.visits != first.visits) {
        out.extend(cadence_changed(&first.visits, &last.visits, months));
    }
    out.retain(|r| r.role == role);
    out
}

/// The rule in force on `day` by `history` (oldest first); none before the first step.
pub fn exit_cuts_on(history: &[ExitCutsSince], day: NaiveDate) -> Option<ExitCuts> {
    history
        .iter()
        .rev()
        .find(|s| s.from <= day)
        .map(|s| s.exit_cuts)
}

/// What seed 001 §四(四) does about a first helper's missed windows, counted over the
/// calendar year: the thresholds and which kinds of contact a miss of counts.
///
/// The seed sanctions "未按要求入户帮扶" — missed *home* visits — so by default a missed
/// phone window stays in the miss lists and the rates but leads to no sanction. A county
/// that also sanctions calls lists `phone` in `counted_kinds`. Every field has a serde
/// default equal to the seed, so policies stored before this block existed still parse
/// and judge as before (apart from phone misses, which the seed never sanctioned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Sanctions {
    /// The kinds whose missed windows count toward the thresholds below.
    pub counted_kinds: Vec<VisitKind>,
    /// From this many misses a year: reported to the helper's unit, helper interviewed.
    pub report_at: u32,
    /// From this many: publicly criticised by the unit, no award this year.
    pub criticise_at: u32,
    /// A unit whose helpers missed this many person-times a year: the unit is criticised
    /// and its head interviewed.
    pub unit_at: u32,
}

impl Default for Sanctions {
    /// Seed 001 §四(四): home visits; once, twice, a unit with three person-times.
    fn default() -> Sanctions {
        Sanctions {
            counted_kinds: vec![VisitKind::Home],
            report_at: 1,
            criticise_at: 2,
            unit_at: 3,
        }
    }
}

impl Sanctions {
    /// Whether a missed window of `kind` counts toward sanctions.
    pub fn counts(&self, kind: VisitKind) -> bool {
        self.counted_kinds.contains(&kind)
    }
}

/// What a window cut short by the end of a pairing (the household's exit, or a change
/// of helper) asks of the helper who held it.
///
/// A window is judged for a pairing that covers it whole. An exit ends the household's
/// pairings inside the windows it falls in, and a change of helper ends the outgoing
/// helper's, so by default those windows are judged for no one (the town report lists
/// them, and the sheet says 不考核): a helper who skipped November is not sanctioned
/// when the household exits on December 31. The seeds say nothing on this, so it is a
/// county's setting: with `min_days_held` above 0, a window the helper held from its
/// first day for at least that many days before the pairing ended is theirs, its
/// contacts due before the end. An exit and a change are judged alike (QA s23b F4): a
/// change filed late in a window otherwise took a near-certain miss, and its sanction,
/// off the outgoing helper, and the incoming one never covers the window whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ExitCuts {
    /// Days the pairing must have held a window before it ended (an exit or a change of
    /// helper) for the window to be judged; 0 (the default, and both presets): never.
    pub min_days_held: u32,
}

impl ExitCuts {
    /// Whether a helper's pairing held from `from` until `until` (the first day no
    /// longer paired, by an exit or a change of helper) is judged on the window
    /// `[start, end]`: when it covers the window whole, or when its end cut a window it
    /// held from the start for `min_days_held` days or more, and the end was filed
    /// (`known_on`) by the day before it. An end filed on its own day or later (an
    /// exit filed for today, a change dated back) left the helper no day to visit
    /// knowing the window was now due early: the window is no one's (QA s24a F7, s23b
    /// F14). `known_on` unknown (a server that does not say): judged as filed in time.
    pub fn owes(
        &self,
        (from, until): (NaiveDate, Option<NaiveDate>),
        known_on: Option<NaiveDate>,
        (start, end): (NaiveDate, NaiveDate),
    ) -> bool {
        let Some(until) = until else {
            return from <= start;
        };
        if from > start || until <= start {
            return false;
        }
        if until > end {
            return true;
        }
        self.min_days_held > 0
            && (until - start).num_days() >= i64::from(self.min_days_held)
            && known_on.is_none_or(|k| k < until)
    }

    /// Whether a pairing whose start was filed on `start_known_on` is judged on a window
    /// ending `end`: only when filed before the window's last day, so the helper had a
    /// day of it knowing the household was theirs. A change of helper imported with its
    /// start dated back otherwise charged the new helper with windows that had ended
    /// before anyone told them (QA s26a F3), as a first pairing dated back did (s29b
    /// J1); such a window is no one's, as one an end filed late cuts. `None` (the same
    /// helper paired again, or a server that does not say): judged as filed in time.
    pub fn start_known_in_time(start_known_on: Option<NaiveDate>, end: NaiveDate) -> bool {
        start_known_on.is_none_or(|k| k < end)
    }

    /// The last day a contact can be made in a window `[start, end]` the pairing owes:
    /// the day before the pairing ended when its end cuts the window.
    pub fn due_by(until: Option<NaiveDate>, end: NaiveDate) -> NaiveDate {
        until
            .and_then(|u| u.pred_opt())
            .map_or(end, |last| last.min(end))
    }
}

/// The longest [`Policy::source`], in characters: a document's title and number, the
/// limit of the ledger's other label-like texts (a unit, an address).
pub const MAX_SOURCE_CHARS: usize = 200;

/// A county's (or town's) rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Policy {
    /// The preset or document this policy was made from.
    pub source: String,
    pub pairing: PairingRules,
    pub visits: Vec<VisitRequirement>,
    pub evidence: HomeVisitEvidence,
    /// Absent from policies stored before sanctions were settings: the seed's ladder.
    #[serde(default)]
    pub sanctions: Sanctions,
    /// Absent from policies stored before it was a setting: windows an exit cuts are
    /// judged for no one.
    #[serde(default)]
    pub exit_cuts: ExitCuts,
}

impl Policy {
    /// Checks the numbers make sense: windows divide a year, limits are positive.
    pub fn validate(&self) -> Result<(), SharedError> {
        let invalid = |m: String| Err(SharedError::InvalidPolicy(m));
        if self.pairing.max_households_first == 0 || self.pairing.max_households_second == 0 {
            return invalid("household limits must be at least 1".into());
        }
        // A policy asking nothing would report every helper as having met it, and one
        // without its source cannot say on the reports which document it follows
        // (QA s22c F7).
        if self.visits.is_empty() {
            return invalid("visits: a policy asks at least one visit or call".into());
        }
        if self.source.trim().is_empty() {
            return invalid(
                "source: name the document the policy follows (printed on every report)".into(),
            );
        }
        // The source is printed on every report and listed by every office: held to the
        // rules of every other free text, so a NUL or a direction override cannot garble
        // a printed sheet and a pasted document cannot fill its heading (QA s23 F1).
        if let Err(e) = crate::visit::check_text(&self.source, "source", MAX_SOURCE_CHARS) {
            return invalid(e.to_string());
        }
        for (i, v) in self.visits.iter().enumerate() {
            let twin = self.visits[..i]
                .iter()
                .any(|w| (w.role, w.kind, w.window_months) == (v.role, v.kind, v.window_months));
            if twin {
                // Both would judge every window: one miss would count as two.
                return invalid(format!(
                    "visits: the {} {} visits every {} months are listed twice; give one \
                     entry with the count",
                    v.role.code(),
                    v.kind.code(),
                    v.window_months
                ));
            }
            if !matches!(v.window_months, 1 | 2 | 3 | 4 | 6 | 12) {
                return invalid(format!(
                    "window of {} months does not divide a year",
                    v.window_months
                ));
            }
            if v.min_count == 0 {
                return invalid("a visit requirement needs a count of at least 1".into());
            }
            // More than one a day cannot be met, and would only mark every window missed:
            // counted on the shortest window of that length (February, 28 days a month).
            let most = 28 * v.window_months;
            if v.min_count > most {
                return invalid(format!(
                    "visits: {} {} visits in a window of {} month(s) cannot be made (at most {most})",
                    v.min_count,
                    v.kind.code(),
                    v.window_months
                ));
            }
        }
        let s = &self.sanctions;
        if s.report_at == 0 || s.criticise_at < s.report_at || s.unit_at == 0 {
            return invalid(
                "sanction thresholds must be at least 1, criticism no earlier than reporting"
                    .into(),
            );
        }
        let days = self.exit_cuts.min_days_held;
        if days > 0 {
            // A window of n months lasts at most this many days; an exit inside it leaves
            // at most one day fewer held.
            let longest = self
                .visits
                .iter()
                .map(|v| v.window_months)
                .max()
                .unwrap_or(12);
            let most = match longest {
                1 => 31,
                2 => 62,
                3 => 92,
                4 => 123,
                6 => 184,
                _ => 366,
            };
            if days >= most {
                let plural = if longest == 1 { "" } else { "s" };
                return invalid(format!(
                    "exit_cuts.min_days_held is {days}: the longest window of this policy \
                     ({longest} month{plural}) lasts at most {most} days, so no exit or \
                     change could leave {days} days of it held (give at most {})",
                    most - 1
                ));
            }
        }
        Ok(())
    }

    /// The requirements that apply to a helper in `role`.
    pub fn requirements_for(&self, role: PairingRole) -> impl Iterator<Item = &VisitRequirement> {
        self.visits.iter().filter(move |v| v.role == role)
    }

    /// Whether a change of helper filed on `filed_on` to take effect on `effective`
    /// gives the notice this policy asks for.
    pub fn notice_is_sufficient(&self, filed_on: NaiveDate, effective: NaiveDate) -> bool {
        filed_on
            .checked_add_months(Months::new(self.pairing.change_notice_months))
            .is_some_and(|deadline| deadline <= effective)
    }
}

/// The calendar window of `months` months (aligned to the year) that holds `date`:
/// its first and last day.
pub fn window_of(date: NaiveDate, months: u32) -> (NaiveDate, NaiveDate) {
    let months = months.clamp(1, 12);
    let index = date.month0() / months;
    let start_month = index * months + 1;
    let start = NaiveDate::from_ymd_opt(date.year(), start_month, 1).unwrap_or(date);
    let end = start
        .checked_add_months(Months::new(months))
        .and_then(|d| d.pred_opt())
        .unwrap_or(date);
    (start, end)
}

/// How a requirement stands on `today` given the date it was last met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DueStatus {
    pub kind: VisitKind,
    /// The last day of the current window: the next contact is due by then.
    pub due_by: NaiveDate,
    /// Whether the current window already has a contact.
    pub done_this_window: bool,
    /// Whether a window of this requirement ended without its contacts (a miss):
    /// [`due_status`] looks at the previous window only (and not once this one has a
    /// contact); the field client sets it for any missed window of the quarter it lists.
    pub overdue: bool,
}

/// What is due for one requirement, from the date of the last contact of its kind.
pub fn due_status(req: &VisitRequirement, last: Option<NaiveDate>, today: NaiveDate) -> DueStatus {
    let (start, end) = window_of(today, req.window_months);
    let prev_start = start
        .checked_sub_months(Months::new(req.window_months))
        .unwrap_or(start);
    let done_this_window = last.is_some_and(|d| d >= start && d <= today);
    let overdue = !done_this_window && last.is_none_or(|d| d < prev_start);
    DueStatus {
        kind: req.kind,
        due_by: end,
        done_this_window,
        overdue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn windows_are_calendar_aligned() {
        assert_eq!(
            window_of(d(2026, 2, 14), 1),
            (d(2026, 2, 1), d(2026, 2, 28))
        );
        assert_eq!(
            window_of(d(2026, 2, 14), 2),
            (d(2026, 1, 1), d(2026, 2, 28))
        );
        assert_eq!(
            window_of(d(2026, 4, 30), 2),
            (d(2026, 3, 1), d(2026, 4, 30))
        );
        assert_eq!(
            window_of(d(2026, 12, 31), 3),
            (d(2026, 10, 1), d(2026, 12, 31))
        );
        assert_eq!(
            window_of(d(2024, 2, 29), 1),
            (d(2024, 2, 1), d(2024, 2, 29))
        );
    }

    #[test]
    fn presets_round_trip_by_name_and_validate() {
        for p in PolicyPreset::ALL {
            assert_eq!(p.name().parse::<PolicyPreset>(), Ok(p));
            assert_eq!(p.policy().validate(), Ok(()));
            let json = serde_json::to_string(&p.policy()).unwrap();
            assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), p.policy());
        }
        assert!("beijing-2020".parse::<PolicyPreset>().is_err());
    }

    #[test]
    fn presets_differ_as_their_sources_say() {
        let lz = PolicyPreset::Laizhou2018.policy();
        let xg = PolicyPreset::Xigang2019.policy();
        let home = |p: &Policy, r| {
            p.requirements_for(r)
                .find(|v| v.kind == VisitKind::Home)
                .map(|v| v.window_months)
        };
        assert_eq!(home(&lz, PairingRole::First), Some(2));
        assert_eq!(home(&lz, PairingRole::Second), Some(1));
        assert_eq!(home(&xg, PairingRole::First), Some(3));
        assert_eq!(lz.evidence.min_photos, 1);
    }

    #[test]
    fn two_months_notice() {
        let p = PolicyPreset::Laizhou2018.policy();
        assert!(p.notice_is_sufficient(d(2026, 1, 1), d(2026, 3, 1)));
        assert!(!p.notice_is_sufficient(d(2026, 1, 2), d(2026, 3, 1)));
        assert!(p.notice_is_sufficient(d(2025, 12, 31), d(2026, 2, 28)));
    }

    #[test]
    fn due_status_marks_overdue_after_a_missed_window() {
        let req = VisitRequirement {
            role: PairingRole::First,
            kind: VisitKind::Home,
            min_count: 1,
            window_months: 2,
        };
        let today = d(2026, 4, 10);
        assert!(due_status(&req, Some(d(2026, 3, 5)), today).done_this_window);
        let s = due_status(&req, Some(d(2026, 2, 20)), today);
        assert!(!s.done_this_window && !s.overdue);
        assert_eq!(s.due_by, d(2026, 4, 30));
        assert!(due_status(&req, Some(d(2025, 12, 20)), today).overdue);
        assert!(due_status(&req, None, today).overdue);
    }

    #[test]
    fn policies_stored_before_sanctions_parse_with_the_seeds_ladder() {
        let mut old = serde_json::to_value(PolicyPreset::Laizhou2018.policy()).unwrap();
        old.as_object_mut().unwrap().remove("sanctions");
        let parsed: Policy = serde_json::from_value(old).unwrap();
        assert_eq!(parsed, PolicyPreset::Laizhou2018.policy());
        assert_eq!(
            parsed.sanctions,
            Sanctions {
                counted_kinds: vec![VisitKind::Home],
                report_at: 1,
                criticise_at: 2,
                unit_at: 3,
            }
        );
        assert!(!parsed.sanctions.counts(VisitKind::Phone));
        let partial: Sanctions =
            serde_json::from_str(r#"{"counted_kinds":["home","phone"]}"#).unwrap();
        assert!(partial.counts(VisitKind::Phone));
        assert_eq!((partial.report_at, partial.unit_at), (1, 3));
    }

    #[test]
    fn a_change_dated_back_owes_no_window_that_ended_before_it_was_filed() {
        let end = d(2026, 3, 31);
        assert!(ExitCuts::start_known_in_time(None, end), "first helper");
        assert!(ExitCuts::start_known_in_time(Some(d(2026, 3, 30)), end));
        assert!(
            !ExitCuts::start_known_in_time(Some(end), end),
            "filed on the last day: no day left to visit"
        );
        assert!(!ExitCuts::start_known_in_time(Some(d(2026, 5, 6)), end));
    }

    #[test]
    fn a_window_cut_by_an_exit_or_a_change_is_owed_only_by_the_policys_setting() {
        let nov_dec = (d(2026, 11, 1), d(2026, 12, 31));
        let off = ExitCuts::default();
        let on = ExitCuts { min_days_held: 30 };
        let held_from = d(2026, 1, 1);
        // Covered whole: owed whatever the setting.
        for rule in [off, on] {
            assert!(rule.owes((held_from, None), None, nov_dec));
            assert!(rule.owes((held_from, Some(d(2027, 1, 1))), None, nov_dec));
        }
        // Ended on 12-20, by an exit or a change of helper alike (QA s23b F4).
        let ended_dec_20 = (held_from, Some(d(2026, 12, 20)));
        assert!(!off.owes(ended_dec_20, None, nov_dec), "default: no one's");
        assert!(on.owes(ended_dec_20, None, nov_dec), "held 49 days");
        // Filed in time (the day before at the latest), or not (QA s24a F7).
        assert!(on.owes(ended_dec_20, Some(d(2026, 12, 19)), nov_dec));
        assert!(
            !on.owes(ended_dec_20, Some(d(2026, 12, 20)), nov_dec),
            "filed for today: no day left to visit"
        );
        assert!(
            !on.owes(ended_dec_20, Some(d(2027, 1, 5)), nov_dec),
            "dated back"
        );
        let ended_dec_1 = (held_from, Some(d(2026, 12, 1)));
        assert!(
            on.owes(ended_dec_1, None, nov_dec),
            "held 30 days: Nov 1–30"
        );
        let ended_nov_30 = (held_from, Some(d(2026, 11, 30)));
        assert!(!on.owes(ended_nov_30, None, nov_dec), "29 days");
        // Not held from the window's first day (the incoming helper), or ended before
        // it began.
        let late = (d(2026, 11, 2), Some(d(2026, 12, 20)));
        assert!(!on.owes(late, None, nov_dec));
        assert!(!on.owes((d(2026, 11, 2), None), None, nov_dec));
        assert!(!on.owes((held_from, Some(d(2026, 11, 1))), None, nov_dec));
        // Due the day before the exit.
        assert_eq!(
            ExitCuts::due_by(Some(d(2026, 12, 20)), d(2026, 12, 31)),
            d(2026, 12, 19)
        );
        assert_eq!(ExitCuts::due_by(None, d(2026, 12, 31)), d(2026, 12, 31));
        assert_eq!(
            ExitCuts::due_by(Some(d(2027, 1, 1)), d(2026, 12, 31)),
            d(2026, 12, 31)
        );
        // Stored policies without it parse as the default; too many days is named.
        let mut old = serde_json::to_value(PolicyPreset::Laizhou2018.policy()).unwrap();
        old.as_object_mut().unwrap().remove("exit_cuts");
        let parsed: Policy = serde_json::from_value(old).unwrap();
        assert_eq!(parsed.exit_cuts, off);
        let mut p = PolicyPreset::Laizhou2018.policy();
        p.exit_cuts.min_days_held = 62;
        let e = p.validate().unwrap_err().to_string();
        assert!(
            e.contains("exit_cuts.min_days_held") && e.contains("at most 61"),
            "2-month windows at most: {e}"
        );
        p.exit_cuts.min_days_held = 61;
        assert_eq!(p.validate(), Ok(()));
        let mut q = p.clone();
        q.visits[0].min_count = 100_000;
        assert!(q.validate().is_err(), "more than one a day");
        q.exit_cuts.min_days_held = 0;
        q.visits[0].window_months = 1;
        q.visits[0].min_count = 29;
        assert!(q.validate().is_err(), "more than one a day in February");
        q.visits[0].min_count = 28;
        assert_eq!(q.validate(), Ok(()));
        q.visits.clear();
        assert!(q.validate().is_err(), "asks nothing");
        let mut q = p.clone();
        q.source = " ".into();
        assert!(q.validate().unwrap_err().to_string().contains("source"));
        // The source is a free text like any other: no control characters or direction
        // overrides, at most MAX_SOURCE_CHARS characters (QA s23 F1).
        for bad in ["a\u{0}b", "a\u{7}b", "abc\u{202E}fed"] {
            q.source = bad.into();
            let why = q.validate().unwrap_err().to_string();
            assert!(
                why.contains("source") && why.contains("control character"),
                "{bad:?}: {why}"
            );
        }
        q.source = "办".repeat(MAX_SOURCE_CHARS);
        assert_eq!(q.validate(), Ok(()));
        q.source = "办".repeat(MAX_SOURCE_CHARS + 1);
        let why = q.validate().unwrap_err().to_string();
        assert!(
            why.contains("source") && why.contains("over the limit of 200"),
            "{why}"
        );
        assert!(e.contains("(2 months)"), "{e}");
        for v in &mut p.visits {
            v.window_months = 1;
        }
        let e = p.validate().unwrap_err().to_string();
        assert!(e.contains("(1 month)") && e.contains("at most 30"), "{e}");
    }

    #[test]
    fn a_visit_is_judged_by_the_evidence_in_force_on_its_day() {
        let lz = PolicyPreset::Laizhou2018.policy().evidence;
        let mut two = lz.clone();
        two.min_photos = 2;
        let history = [
            EvidenceSince {
                from: d(2018, 1, 1),
                evidence: lz.clone(),
            },
            EvidenceSince {
                from: d(2026, 10, 1),
                evidence: two.clone(),
            },
        ];
        assert_eq!(evidence_on(&history, d(2017, 12, 31)), None);
        assert_eq!(evidence_on(&history, d(2026, 9, 30)), Some(&lz));
        assert_eq!(evidence_on(&history, d(2026, 10, 1)), Some(&two));
        let cuts = [ExitCutsSince {
            from: d(2026, 10, 1),
            exit_cuts: ExitCuts { min_days_held: 30 },
        }];
        assert_eq!(exit_cuts_on(&cuts, d(2026, 9, 30)), None);
        assert_eq!(
            exit_cuts_on(&cuts, d(2026, 11, 1)),
            Some(ExitCuts { min_days_held: 30 })
        );
    }

    #[test]
    fn a_home_visit_counts_with_the_evidence_its_policy_asks() {
        let ev = PolicyPreset::Laizhou2018.policy().evidence;
        assert!(ev.met_by(VisitKind::Home, 1, true));
        assert!(!ev.met_by(VisitKind::Home, 0, true), "a photo is asked");
        assert!(
            !ev.met_by(VisitKind::Home, 2, false),
            "both signatures are asked"
        );
        assert!(
            ev.met_by(VisitKind::Phone, 0, false),
            "a call needs neither"
        );
        let xg = PolicyPreset::Xigang2019.policy().evidence;
        assert!(xg.met_by(VisitKind::Home, 0, true));
    }

    #[test]
    fn invalid_policy_is_named() {
        let mut p = PolicyPreset::Laizhou2018.policy();
        p.visits[0].window_months = 5;
        assert!(p.validate().unwrap_err().to_string().contains("5 months"));
    }

    #[test]
    fn a_requirement_listed_twice_is_refused() {
        let mut p = PolicyPreset::Laizhou2018.policy();
        let twin = p.visits[0].clone();
        p.visits.push(twin.clone());
        let e = p.validate().unwrap_err().to_string();
        assert!(e.contains("listed twice"), "{e}");
        // The same kind over another window is a requirement of its own.
        p.visits.pop();
        p.visits.push(VisitRequirement {
            window_months: if twin.window_months == 12 { 6 } else { 12 },
            ..twin
        });
        assert_eq!(p.validate(), Ok(()));
    }
}
