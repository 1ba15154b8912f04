//! Attendance reports (seed 001 §四(二), 附件3): the second helper's quarterly sheet, the
//! town and county summaries, and the calendar rules they are judged by.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::api::{HelperRef, Place};
use crate::policy::Sanctions;
use crate::{PairingRole, SharedError, VisitKind};

/// The rule every report states: which windows a pairing is judged on.
pub const WINDOW_RULE_ZH: &str = "考勤按自然月、双月（1–2月、3–4月……）、季度计算；某一考勤周期仅在结对关系覆盖整个周期时才计入应走访，更换帮扶责任人的，新帮扶责任人只对在更换报备日之后结束的周期负责；跨季度的双月周期计入其结束月份所在的季度；同一帮扶人同日多次走访同一户只计一次；各周期按其首日适用的政策考核，政策调整改变某类走访频次的，跨调整日的新频次周期按其末日适用的政策一并考核；尚未结束的周期显示为“进行中”，结束后才计入到位率和未到位。";

/// The rule a report states: [`WINDOW_RULE_ZH`], and the exception the policies'
/// `exit_cuts` make for windows the end of a pairing (an exit or a change) cuts, from the
/// `min_days_held` of every policy that judged the report's windows (0: no exception).
/// Policies that differ over the windows (a new version, a town's own) are all named.
pub fn window_rule_zh(min_days_held: &std::collections::BTreeSet<u32>) -> String {
    let days: Vec<String> = min_days_held
        .iter()
        .filter(|d| **d > 0)
        .map(u32::to_string)
        .collect();
    if days.is_empty() {
        return WINDOW_RULE_ZH.to_string();
    }
    let mixed = if min_days_held.len() > 1 {
        let none = if min_days_held.contains(&0) {
            "，部分周期无此例外"
        } else {
            ""
        };
        format!("；天数按各周期首日适用的政策{none}")
    } else {
        String::new()
    };
    format!(
        "{WINDOW_RULE_ZH}例外：因贫困户退出帮扶或更换帮扶责任人而中断的周期，结对关系自周期首日起\
         至中断前满{}天、且中断至迟在前一日已报备的，计入原帮扶人应走访（须在中断前走访到位；\
         当日或事后报备的中断不考核）{mixed}。",
        days.join("天或")
    )
}

/// Why a version of a visit does not count once an amendment replaced it: the reason a
/// report line gives, and what the sheet's 帮扶记录 leaves out.
pub const SUPERSEDED_ZH: &str = "已被更正记录取代";

/// The 附件3 column headers of the second helper's sheet, in order.
pub const SHEET_HEADERS: [&str; 7] = [
    "序号",
    "贫困户姓名",
    "家庭地址(村)",
    "第一帮扶责任人姓名",
    "工作单位及职务",
    "联系方式",
    "帮扶记录",
];

/// A calendar quarter, written `2026Q1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct Quarter {
    pub year: i32,
    /// 1–4.
    pub q: u32,
}

impl Quarter {
    /// The quarter holding `date`.
    pub fn of(date: NaiveDate) -> Quarter {
        Quarter {
            year: date.year(),
            q: date.month0() / 3 + 1,
        }
    }

    /// First day.
    pub fn start(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, (self.q - 1) * 3 + 1, 1).unwrap_or_default()
    }

    /// Last day.
    pub fn end(self) -> NaiveDate {
        crate::policy::window_of(self.start(), 3).1
    }

    /// The quarter before.
    pub fn previous(self) -> Quarter {
        if self.q == 1 {
            Quarter {
                year: self.year - 1,
                q: 4,
            }
        } else {
            Quarter {
                year: self.year,
                q: self.q - 1,
            }
        }
    }
}

impl Quarter {
    /// The quarter as a Chinese office heads a printed report: `2026年第三季度` (the
    /// API's `2026Q3` is a token, not a heading; QA s33c C8).
    pub fn zh(&self) -> String {
        let nth = ["一", "二", "三", "四"]
            .get((self.q as usize).saturating_sub(1))
            .copied()
            .unwrap_or("?");
        format!("{}年第{nth}季度", self.year)
    }
}

impl std::fmt::Display for Quarter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}Q{}", self.year, self.q)
    }
}

impl std::str::FromStr for Quarter {
    type Err = SharedError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SharedError::UnknownCode {
            kind: "quarter (e.g. 2026Q1)",
            value: s.to_string(),
        };
        // Exactly `YYYYQn` (`q` too): no sign, space or leading zero, so a quarter has
        // one spelling wherever it is named (QA s26c F6).
        let b = s.as_bytes();
        let well_formed = b.len() == 6
            && b[..4].iter().all(u8::is_ascii_digit)
            && matches!(b[4], b'Q' | b'q')
            && (b'1'..=b'4').contains(&b[5]);
        if !well_formed {
            return Err(bad());
        }
        let year: i32 = s[..4].parse().map_err(|_| bad())?;
        let q = u32::from(b[5] - b'0');
        if !(2000..=2100).contains(&year) {
            return Err(SharedError::UnknownCode {
                kind: "quarter (years 2000 to 2100)",
                value: s.to_string(),
            });
        }
        Ok(Quarter { year, q })
    }
}

impl TryFrom<String> for Quarter {
    type Error = SharedError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Quarter> for String {
    fn from(q: Quarter) -> String {
        q.to_string()
    }
}

/// How one requirement fared in one calendar window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowResult {
    pub role: PairingRole,
    pub kind: VisitKind,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Counted visits (distinct days).
    pub count: u32,
    pub min_count: u32,
    /// Whether the pairing covered the whole window (otherwise it is not judged).
    pub required: bool,
    pub met: bool,
    /// The window has not ended yet (it ends today or later): the helper still has
    /// time, so an unmet one is "in progress", not a miss, and rates, misses and
    /// escalations leave it out until it ends.
    #[serde(default)]
    pub open: bool,
    /// Whose window it is, on a sheet's first-helper windows: a household whose first
    /// helper changed during the quarter has windows of more than one helper, and the
    /// sheet must not put them all under the current helper's name. Absent elsewhere and
    /// in sheets frozen before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helper: Option<HelperRef>,
    /// The last day a contact counts, when the end of the pairing (the household's exit
    /// or a change of helper) cut the window and the policy's `exit_cuts` still made it
    /// the helper's: the day before the end (the window is judged, no longer open, from
    /// that day). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_by: Option<NaiveDate>,
    /// With `due_by`: the pairing was ended by a change of helper, not by the household's
    /// exit, so the sheet says `（12-20起结对变动）`, not `（12-20起退出帮扶）`. Absent when
    /// false (and in sheets frozen before a change could cut a window owed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ended_by_change: bool,
    /// On a window not judged only because the change of helper that began the pairing
    /// was filed after the window ended: the filing day, so the sheet says
    /// `（结对变动2026-12-06才报备）` as the town report does, not that the pairing missed
    /// part of the window (QA s28a F5). Absent otherwise, and from older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_filed_on: Option<NaiveDate>,
    /// With `change_filed_on`: the pairing filed late was the household's first in the
    /// role (a county's first import dated back), not a change of helper, so the text
    /// says `首次结对…才报备` (QA s29c K11). Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_pairing: bool,
}

impl WindowResult {
    /// The window as the sheet names it: `11-01~12-31入户到位`, or for one the end of the
    /// pairing cut, the part that was due and the end,
    /// `11-01~12-19入户未到位（12-20起退出帮扶）`.
    pub fn text_zh(&self) -> String {
        let end = self.due_by.unwrap_or(self.end);
        let mut s = format!(
            "{}~{}{}{}",
            self.start.format("%m-%d"),
            end.format("%m-%d"),
            self.kind.label_zh(),
            self.verdict_zh()
        );
        s.push_str(&self.cut_zh());
        s
    }

    /// What cut a window the helper still owes: `（12-20起退出帮扶）` or, for a change of
    /// helper, `（12-20起结对变动）`; empty for a window the pairing covered whole.
    pub fn cut_zh(&self) -> String {
        let Some(day) = self.due_by.and_then(|d| d.succ_opt()) else {
            return String::new();
        };
        let what = if self.ended_by_change {
            "结对变动"
        } else {
            "退出帮扶"
        };
        format!("（{}起{what}）", day.format("%m-%d"))
    }

    /// 到位 / 进行中 / 未到位, as the sheet and reports print it.
    pub fn verdict_zh(&self) -> &'static str {
        match (self.met, self.open) {
            (true, _) => "到位",
            (false, true) => "进行中",
            (false, false) => "未到位",
        }
    }
}

/// One visit or call as a report lists it, counted or not, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordLine {
    pub record_id: String,
    pub household_id: i64,
    pub date: NaiveDate,
    pub kind: VisitKind,
    pub helper_id: i64,
    pub counts: bool,
    /// Why it does not count (in Chinese), when it does not.
    pub reason: Option<String>,
    pub photo_count: i32,
    /// Arrived after the sheet's last submission (in the drill-down: the last
    /// submission of a sheet listing the household, `(迟报)` on it).
    pub late: bool,
    /// What the server flagged on the record that the office should weigh: `entered_late`
    /// (signed days after its date), `chain_break` and `seq_reused` (its device's record
    /// chain is inconsistent). A wrong device clock is not here: it is the `reason`.
    /// See [`flag_zh`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// A record flag as the office reads it (the code itself when this version does not
/// know it, so a newer server's flag is never dropped).
pub fn flag_zh(flag: &str) -> &str {
    match flag {
        "entered_late" => "补录",
        "chain_break" => "设备记录链断裂",
        "seq_reused" => "设备序号重复",
        "clock_went_back" => "设备时间倒退",
        "clock_ahead" | "clock_behind" | "dated_after_signing" => "设备时间异常",
        other => other,
    }
}

/// The marks a sheet's 帮扶记录 may carry and what each means: read by a reviewer who
/// meets `(迟报)(补录)` on one visit and needs to know these are two things (QA s22b F9).
/// Each is the text found in a cell, the mark as the legend shows it, and its meaning.
const MARKS_ZH: [(&str, &str, &str); 11] = [
    ("(迟报)", "(迟报)", "上次报送考勤表后才收到的记录"),
    ("(补录)", "(补录)", "走访后逾期才录入的记录（供核查）"),
    ("(不计:", "(不计:…)", "不计入考勤的记录，冒号后为原因"),
    ("(设备时间异常)", "(设备时间异常)", "设备时钟与服务器不符"),
    (
        "(设备记录链断裂)",
        "(设备记录链断裂)",
        "该设备的记录有缺失或改动，供核查",
    ),
    (
        "(设备序号重复)",
        "(设备序号重复)",
        "该设备的记录序号重复，供核查",
    ),
    (
        "(设备时间倒退)",
        "(设备时间倒退)",
        "签名时间早于该设备上一条记录，设备时钟曾被调回，供核查",
    ),
    (
        "无人负责：",
        "无人负责",
        "其后的周期没有帮扶责任人须负责（结对变动、退出帮扶，或结对变动、首次结对迟报），镇街报告的“无人负责的窗口”逐一列出",
    ),
    (
        "不考核",
        "不考核",
        "结对未覆盖整个周期（期间结对变动或退出帮扶），或结对变动、首次结对在周期结束后才报备，该周期不判定到位与否",
    ),
    (
        "起结对变动）",
        "（某日起结对变动）",
        "更换帮扶责任人前，原帮扶责任人自周期首日结对已满政策规定天数且更换已提前报备，该周期仍由其负责，须在变动前走访到位",
    ),
    (
        "起退出帮扶",
        "（某日起退出帮扶）",
        "贫困户自该日起退出帮扶；被退出中断的周期，帮扶责任人自周期首日结对已满政策规定天数且退出已提前报备的仍由其负责（须在退出前走访到位），否则不考核",
    ),
];

/// `标记说明：(迟报) …；(补录) …` for the marks that appear in `texts` (the 帮扶记录
/// cells of a sheet, or one row's), in a fixed order; `None` when there are none.
pub fn marks_legend_zh<'a>(texts: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let texts: Vec<&str> = texts.into_iter().collect();
    let found: Vec<String> = MARKS_ZH
        .iter()
        .filter(|(needle, _, _)| texts.iter().any(|t| t.contains(needle)))
        .map(|(_, shown, meaning)| format!("{shown} {meaning}"))
        .collect();
    (!found.is_empty()).then(|| format!("标记说明：{}", found.join("；")))
}

/// One row of the second helper's sheet: a household and its first helper's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SheetRow {
    /// The household's 序号 in its town's ledger (the sheet lists rows in that order).
    /// Not the row's number on the sheet: 附件3 numbers the rows it lists 1..n, as the
    /// server's CSV, XLSX and PDF do, and so must any client that prints the sheet.
    pub seq: u32,
    pub household_id: i64,
    pub head_name: String,
    pub village: String,
    pub first_helper: Option<HelperRef>,
    /// Visits and calls of the household's first helper(s) in the quarter.
    pub records: Vec<RecordLine>,
    /// The first helper's windows, met or missed.
    pub windows: Vec<WindowResult>,
    /// The second helper's own home visits to this household, and their windows.
    pub own_records: Vec<RecordLine>,
    pub own_windows: Vec<WindowResult>,
    /// The second helper's remark.
    #[serde(default)]
    pub remark: Option<String>,
    /// The household left pairing on this day within the quarter (its standing exit):
    /// the windows after it are no one's, and the sheet says why they are missing. Not
    /// part of the rows' digest: a version frozen before it existed still matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_on: Option<NaiveDate>,
    /// Every day the household left pairing within the quarter, its standing exit's and
    /// those of exits a return (返贫) has since ended: a window such an exit cut is named
    /// `（11-20起退出帮扶）` as in the town report, not `（结对未覆盖整个周期）` (QA s24d
    /// F4). Not part of the rows' digest; empty (absent) when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exit_days: Vec<NaiveDate>,
}

impl SheetRow {
    /// The names of the first helpers whose visits and windows the row holds, by id, when
    /// they are not all the row's `first_helper` (a change of helper during the quarter):
    /// then each visit and window in [`SheetRow::record_text`] is prefixed with its
    /// helper's name, so none is read as the current helper's. Empty otherwise.
    fn other_helpers(&self) -> std::collections::BTreeMap<i64, String> {
        let names: std::collections::BTreeMap<i64, String> = self
            .windows
            .iter()
            .filter_map(|w| w.helper.as_ref())
            .chain(self.first_helper.as_ref())
            .map(|h| (h.id, h.name.clone()))
            .collect();
        let current = self.first_helper.as_ref().map(|h| h.id);
        let someone_else = self
            .windows
            .iter()
            .filter(|w| w.required)
            .filter_map(|w| w.helper.as_ref().map(|h| h.id))
            .chain(self.records.iter().map(|r| r.helper_id))
            .any(|id| Some(id) != current);
        if someone_else {
            names
        } else {
            std::collections::BTreeMap::new()
        }
    }

    /// The second helper's own visits in window `w` that do not count, with why:
    /// `（09-10入户不计：照片或签字图片已用于其他走访）`; empty when there are none.
    fn uncounted_own(&self, w: &WindowResult) -> String {
        let parts: Vec<String> = self
            .own_records
            .iter()
            .filter(|r| !r.counts && r.kind == w.kind && (w.start..=w.end).contains(&r.date))
            .map(|r| {
                let why = r.reason.as_deref().unwrap_or("");
                format!("{}{}不计：{why}", r.date.format("%m-%d"), r.kind.label_zh())
            })
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("（{}）", parts.join("；"))
        }
    }

    /// The 第二帮扶责任人走访 cell: the second helper's own home-visit windows the policy
    /// asks of them, `7月已走访；8月未走访；9月进行中`, a window met only by visits that
    /// arrived after the last submission or were entered late marked `(迟报)`, `(补录)`,
    /// a window an exit cut naming it (`（12-05起退出帮扶）`), one left unjudged (cut by an
    /// exit or a change) as `12月不考核`, or `12月已走访（不考核）` when the helper still
    /// visited in it.
    /// What the second helper signs for themselves, so the device shows it as the
    /// printed sheet does (QA s22b F2).
    pub fn own_text(&self) -> String {
        let named = unjudged_named(&self.own_windows);
        self.own_windows
            .iter()
            .zip(named)
            .filter_map(|(w, named)| {
                let counted: Vec<&RecordLine> = self
                    .own_records
                    .iter()
                    .filter(|r| r.counts && r.kind == w.kind && (w.start..=w.end).contains(&r.date))
                    .collect();
                // Met only by visits that arrived after the last submission, or only
                // by visits entered late: the office sees it, as it does on the first
                // helper's visits (QA s23b F3, s22c F8).
                let only = |p: fn(&RecordLine) -> bool| {
                    !counted.is_empty() && counted.iter().all(|r| p(r))
                };
                let mut marks = String::new();
                if only(|r| r.late) {
                    marks.push_str("(迟报)");
                }
                if only(|r| r.flags.iter().any(|f| f == "entered_late")) {
                    marks.push_str("(补录)");
                }
                let month = w.start.format("%-m");
                // A window not judged (an exit or a change cut it) is still named when
                // the helper visited in it: the visit is not lost from the sheet (QA
                // s23a F16, s23d F8).
                // Nor is a home-visit window without a visit, once, unless another
                // stretch of the helper's answers for it: the cell does not go blank
                // (QA s24b F4).
                if !w.required {
                    if !counted.is_empty() {
                        return Some(format!("{month}月已走访{marks}（不考核）"));
                    }
                    return (w.kind == VisitKind::Home && named)
                        .then(|| format!("{month}月不考核"));
                }
                let exit = w.cut_zh();
                let state = match (w.met, w.open) {
                    (true, _) => "已走访",
                    (false, true) => "进行中",
                    (false, false) => "未走访",
                };
                if !w.met {
                    marks.clear();
                    // A visit made but not counted is named with why, as in the first
                    // helper's column: "未走访" alone read as no visit (QA s29b J7).
                    marks = self.uncounted_own(w);
                }
                Some(format!("{month}月{state}{marks}{exit}"))
            })
            .collect::<Vec<_>>()
            .join("；")
    }

    /// The 帮扶记录 cell: dates of visits and calls, and met/missed per window; each
    /// prefixed with its helper's name (`曹秀兰：01-09电话`) when the row holds more than
    /// the current first helper's.
    ///
    /// A household that left pairing in the quarter ends it with `｜12-20起退出帮扶`.
    ///
    /// A version an amendment replaced is left out (the amendment is the visit now;
    /// listing each version read as several visits on one day); the drill-down keeps
    /// them all.
    pub fn record_text(&self) -> String {
        let names = self.other_helpers();
        let whose = |id: Option<i64>| {
            id.and_then(|id| names.get(&id))
                .map(|n| format!("{n}："))
                .unwrap_or_default()
        };
        // A helper's name heads their run of visits and windows once, not each of them,
        // and the windows no one answers for are headed 无人负责 (QA s28a F5, s28b F5).
        let mut last_label = String::new();
        let mut once = move |label: String| {
            if label == last_label {
                String::new()
            } else {
                last_label.clone_from(&label);
                label
            }
        };
        let visits: Vec<String> = self
            .records
            .iter()
            .filter(|r| r.reason.as_deref() != Some(SUPERSEDED_ZH))
            .map(|r| {
                let mut s = format!(
                    "{}{}{}",
                    once(whose(Some(r.helper_id))),
                    r.date.format("%m-%d"),
                    r.kind.label_zh()
                );
                if !r.counts {
                    s.push_str(&format!("(不计:{})", r.reason.clone().unwrap_or_default()));
                }
                if r.late {
                    s.push_str("(迟报)");
                }
                for f in &r.flags {
                    s.push_str(&format!("({})", flag_zh(f)));
                }
                s
            })
            .collect();
        let named = unjudged_named(&self.windows);
        let mut once = {
            let mut last_label = String::new();
            move |label: String| {
                if label == last_label {
                    String::new()
                } else {
                    last_label.clone_from(&label);
                    label
                }
            }
        };
        let no_one = if names.is_empty() {
            ""
        } else {
            "无人负责："
        };
        let windows: Vec<String> = self
            .windows
            .iter()
            .zip(named)
            .filter_map(|(w, named)| {
                if w.required {
                    let who = once(whose(w.helper.as_ref().map(|h| h.id)));
                    return Some(format!("{who}{}", w.text_zh()));
                }
                // A window no pairing answers for (a change of helper or an exit cut it)
                // is named once, not dropped, so the sheet does not read as if the
                // household asked nothing then (QA s23b F5).
                named.then(|| format!("{}{}", once(no_one.to_string()), self.unjudged_text(w)))
            })
            .collect();
        let visits = if visits.is_empty() {
            "本季度无走访记录".to_string()
        } else {
            visits.join("；")
        };
        let exit = self
            .exit_on
            .map(|d| format!("｜{}起退出帮扶", d.format("%m-%d")))
            .unwrap_or_default();
        format!("{visits}｜{}{exit}", windows.join("；"))
    }

    /// A window judged for no one, as the 帮扶记录 cell names it:
    /// `11-01~12-31入户不考核（期间结对变动）` when more than one helper held part of it,
    /// `（12-20起退出帮扶）` when the household's exit fell inside it (both,
    /// `（期间结对变动；12-20起退出帮扶）`, when a change came first), else
    /// `（结对未覆盖整个周期）` (a pairing begun inside it, say: no helper changed; QA s24a
    /// F5, F8).
    fn unjudged_text(&self, w: &WindowResult) -> String {
        let same = || {
            self.windows
                .iter()
                .filter(|o| (o.kind, o.start, o.end) == (w.kind, w.start, w.end))
        };
        let helpers: std::collections::BTreeSet<i64> = same()
            .filter_map(|o| o.helper.as_ref().map(|h| h.id))
            .collect();
        let late = same()
            .filter_map(|o| o.change_filed_on.map(|day| (day, o.first_pairing)))
            .max()
            .map(|(day, first)| format!("{}{day}才报备", late_filing_zh(first)));
        // Both, when a change and then the exit cut it, as the town report says (QA
        // s24b F9).
        let exit = self
            .exit_on
            .iter()
            .chain(&self.exit_days)
            .filter(|d| (w.start..=w.end).contains(*d))
            .min();
        let cut = match (exit, helpers.len() > 1) {
            (Some(day), false) => Some(format!("{}起退出帮扶", day.format("%m-%d"))),
            (Some(day), true) => Some(format!("期间结对变动；{}起退出帮扶", day.format("%m-%d"))),
            (None, true) => Some("期间结对变动".into()),
            (None, false) => None,
        };
        let cause = match (cut, late) {
            (Some(cut), Some(late)) => format!("{cut}；{late}"),
            (Some(text), None) | (None, Some(text)) => text,
            (None, None) => "结对未覆盖整个周期".into(),
        };
        format!(
            "{}~{}{}不考核（{cause}）",
            w.start.format("%m-%d"),
            w.end.format("%m-%d"),
            w.kind.label_zh()
        )
    }
}

/// Which of `windows` a sheet names as judged for no one (不考核): those not required
/// that no required window of the same kind and days stands beside (another stretch
/// answers for it), the first of each kind and days only (one per pairing overlaps it).
fn unjudged_named(windows: &[WindowResult]) -> Vec<bool> {
    let key = |w: &WindowResult| (w.kind, w.start, w.end);
    let owned: std::collections::BTreeSet<_> =
        windows.iter().filter(|w| w.required).map(key).collect();
    let mut seen = std::collections::BTreeSet::new();
    windows
        .iter()
        .map(|w| !w.required && !owned.contains(&key(w)) && seen.insert(key(w)))
        .collect()
}

/// The second helper's quarterly attendance sheet (附件3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttendanceSheet {
    pub quarter: Quarter,
    pub second_helper: HelperRef,
    pub town: Option<Place>,
    pub rows: Vec<SheetRow>,
    /// The `source` of each policy version that judged the quarter's windows, joined
    /// with 、 in the order met.
    pub policy_source: String,
    pub rule: String,
    /// The last submitted version, if any (a new submission becomes version + 1).
    pub submitted_version: Option<i32>,
    pub submitted_at: Option<DateTime<Utc>>,
    /// The [`SheetSubmission::submission_id`] that froze `submitted_version`: a device
    /// that lost the answer to its submission sees here whether it arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<uuid::Uuid>,
    /// Whether the rows `submitted_version` froze are the rows the helper reviewed and
    /// signed ([`SheetSubmission::rows_sha256`] equal to [`rows_sha256`] of the frozen
    /// rows): `false` when visits were voided or arrived between the device's pull and
    /// the submission, so the signed remarks sit on verdicts the helper never saw
    /// ([`CHANGED_SINCE_REVIEW_ZH`]). Absent for a submission without a digest (older
    /// devices) and for sheets frozen before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_rows_match: Option<bool>,
    /// On a frozen version shown to an office that sees only part of it: how many rows
    /// the version froze (`rows` holds the office's share). The device signature covers
    /// all of them, not the part shown. Absent when nothing was left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_frozen: Option<u32>,
}

/// What a frozen version whose rows differ from those the helper reviewed says, on the
/// versions list and the printed sheet.
pub const CHANGED_SINCE_REVIEW_ZH: &str = "冻结的数据与责任人审阅时不同（审阅后有变化）";

/// Domain prefix of [`rows_digest_bytes`].
const ROWS_DIGEST_PREFIX: &[u8] = b"bangfu-sheet-rows-v1\n";

/// The canonical bytes of a sheet's rows as the helper reviews them: what the attendance
/// says, not how it is laid out. A UTF-8 text, one item per line, each line ending in
/// `\n`, fields separated by a tab (`\t`):
///
/// ```text
/// bangfu-sheet-rows-v1
/// row\t<household_id>
/// record\t<len>:<record_id>\t<counts>             each first-helper record, in order
/// window\t<kind>\t<start>\t<end>\t<verdict>       each first-helper window, in order
/// own_record\t<len>:<record_id>\t<counts>         the second helper's own, likewise
/// own_window\t<kind>\t<start>\t<end>\t<verdict>
/// row\t…                                           the next row, in sheet order
/// ```
///
/// (`\t` stands for a tab; the notes on the right are not part of the bytes.)
///
/// `household_id` is decimal; `<len>:<record_id>` is the id's length in UTF-8 bytes
/// (decimal), a colon, and the id; `counts` is `1` or `0`; `kind` is the visit kind's
/// code (`home`, `phone`); dates are `YYYY-MM-DD`; `verdict` is `met` (到位), `open`
/// (进行中), `missed` (未到位), or `unjudged` for a window the pairing did not cover
/// whole (`required: false`; the sheet names it 不考核). Names, remarks, photo counts,
/// `late`, flags and any field added later are not in it, so the digest changes only
/// when the attendance does.
pub fn rows_digest_bytes(rows: &[SheetRow]) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let record = |out: &mut String, tag: &str, r: &RecordLine| {
        let _ = writeln!(
            out,
            "{tag}\t{}:{}\t{}",
            r.record_id.len(),
            r.record_id,
            u8::from(r.counts)
        );
    };
    let window = |out: &mut String, tag: &str, w: &WindowResult| {
        let verdict = match (w.required, w.met, w.open) {
            (false, _, _) => "unjudged",
            (true, true, _) => "met",
            (true, false, true) => "open",
            (true, false, false) => "missed",
        };
        let _ = writeln!(
            out,
            "{tag}\t{}\t{}\t{}\t{verdict}",
            w.kind.code(),
            w.start.format("%Y-%m-%d"),
            w.end.format("%Y-%m-%d")
        );
    };
    for row in rows {
        let _ = writeln!(out, "row\t{}", row.household_id);
        for r in &row.records {
            record(&mut out, "record", r);
        }
        for w in &row.windows {
            window(&mut out, "window", w);
        }
        for r in &row.own_records {
            record(&mut out, "own_record", r);
        }
        for w in &row.own_windows {
            window(&mut out, "own_window", w);
        }
    }
    let mut bytes = ROWS_DIGEST_PREFIX.to_vec();
    bytes.extend_from_slice(out.as_bytes());
    bytes
}

/// SHA-256 (lowercase hex) of [`rows_digest_bytes`]: what a second helper's signature
/// says they reviewed ([`SheetSubmission::rows_sha256`]).
pub fn rows_sha256(rows: &[SheetRow]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(rows_digest_bytes(rows)))
}

impl AttendanceSheet {
    /// [`rows_sha256`] of this sheet's rows.
    pub fn rows_sha256(&self) -> String {
        rows_sha256(&self.rows)
    }
}

/// The longest remark a second helper may give a household on the sheet, in characters.
/// A remark is a line in the 备注 column of the printed 附件3, a sentence or two; far
/// longer text cannot be printed as one (Excel holds at most 32,767 characters a cell)
/// and, frozen in a version, could never be corrected. Here so the device refuses it
/// when it is typed, not the server weeks later at sync.
pub const MAX_SHEET_REMARK_CHARS: usize = 500;

/// What the second helper sends at quarter end: remarks per household, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SheetSubmission {
    pub quarter: Quarter,
    pub device_id: i64,
    /// household id → remark.
    pub remarks: Vec<(i64, String)>,
    /// Ed25519 (hex) over [`SheetSubmission::signing_bytes`].
    pub signature: String,
    /// Chosen by the device when the helper signs (a UUIDv7). The server freezes one
    /// version per id, so a submission sent again after a lost answer gets the same
    /// version back instead of freezing another; signing the same remarks again (to
    /// include late visits) is a new id, so a new version. Signed with the rest.
    /// Devices from before it send none and every send is a new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<uuid::Uuid>,
    /// [`rows_sha256`] of the sheet the helper reviewed (the device's stored copy), so
    /// the signature covers the attendance and not only the remarks: the server marks
    /// the version it freezes when its rows differ
    /// ([`AttendanceSheet::reviewed_rows_match`]). Signed with the rest
    /// (`bangfu-sheet-v3`). Devices from before it send none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_sha256: Option<String>,
}

impl SheetSubmission {
    /// The bytes the device key signs: a domain prefix, the quarter, device and remarks,
    /// the submission id and the digest of the reviewed rows (`bangfu-sheet-v3`;
    /// `bangfu-sheet-v2` without a digest, `v1` without an id either). The body is JSON
    /// with its keys in alphabetical order and the remarks sorted.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut remarks = self.remarks.clone();
        remarks.sort();
        let mut body = serde_json::json!({ "quarter": self.quarter.to_string(), "device_id": self.device_id, "remarks": remarks });
        if let Some(id) = self.submission_id {
            body["submission_id"] = serde_json::Value::String(id.to_string());
        }
        let prefix: &[u8] = match (&self.rows_sha256, self.submission_id) {
            (Some(digest), _) => {
                body["rows_sha256"] = serde_json::Value::String(digest.clone());
                b"bangfu-sheet-v3\n"
            }
            (None, Some(_)) => b"bangfu-sheet-v2\n",
            (None, None) => b"bangfu-sheet-v1\n",
        };
        let mut out = prefix.to_vec();
        out.extend_from_slice(body.to_string().as_bytes());
        out
    }
}

/// Households, required windows and windows met in one place (a village, a town).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AreaRate {
    pub place_id: i64,
    pub name: String,
    pub households: u32,
    pub required_windows: u32,
    pub met_windows: u32,
    /// 到位率: met ÷ required; `null` when nothing was required in the period. A 1.0
    /// there would read as a perfect record to whatever consumes the JSON (a DHIS2
    /// data-value push, a dashboard), where the printed reports show —.
    pub rate: Option<f64>,
    /// Rank among its peers (towns in a county report), 1 = best; absent for an area
    /// with nothing required in the period (no rate to rank it by).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u32>,
}

impl AreaRate {
    /// Sets the rate from the counts.
    pub fn finish(&mut self) {
        self.rate = (self.required_windows > 0)
            .then(|| f64::from(self.met_windows) / f64::from(self.required_windows));
    }
}

/// A missed window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Miss {
    pub household_id: i64,
    pub head_name: String,
    pub village: String,
    pub helper: HelperRef,
    pub unit: String,
    pub role: PairingRole,
    pub kind: VisitKind,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// The window's last day to visit when the end of the pairing (the household's exit
    /// or a change of helper) cut it: the day before the end (see
    /// [`WindowResult::due_by`]). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_by: Option<NaiveDate>,
    /// With `due_by`: a change of helper ended the pairing, not the household's exit
    /// ([`WindowResult::ended_by_change`]). Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ended_by_change: bool,
}

impl Miss {
    /// The window as the town report prints it: `2026-11-01至2026-12-31`, or for one the
    /// end of the pairing cut, `2026-11-01至2026-12-04（2026-12-05起退出帮扶）` or, for a
    /// change of helper, `（2026-12-05起结对变动）`: a household still in the programme is
    /// not reported as having left it (QA s24b F10).
    pub fn period_zh(&self) -> String {
        match self.due_by {
            Some(by) => {
                let what = if self.ended_by_change {
                    "结对变动"
                } else {
                    "退出帮扶"
                };
                let day = by.succ_opt().unwrap_or(by);
                format!("{}至{by}（{day}起{what}）", self.start)
            }
            None => format!("{}至{}", self.start, self.end),
        }
    }
}

/// What seed 001 §四(四) asks for a first helper's misses this year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HelperEscalation {
    pub helper: HelperRef,
    pub unit: String,
    pub misses_this_year: u32,
    pub action: String,
}

/// A work unit with the policy's `unit_at` or more person-times of misses this year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnitEscalation {
    pub unit: String,
    pub person_times: u32,
    pub action: String,
}

/// The action for a first helper with `misses` sanctionable misses this year, by the
/// thresholds of `s` (seed 001 §四(四)); none below the first. The wording follows the
/// seed: the second step is a *public* criticism by the helper's unit (公开通报批评).
pub fn helper_action(misses: u32, s: &Sanctions) -> Option<&'static str> {
    if misses >= s.criticise_at {
        Some("由其工作单位对其公开通报批评，取消本年度评先评优资格")
    } else if misses >= s.report_at {
        Some("通报派出单位，约谈")
    } else {
        None
    }
}

/// The action for a unit with `person_times` sanctionable misses this year (none under
/// the threshold of `s`).
pub fn unit_action(person_times: u32, s: &Sanctions) -> Option<&'static str> {
    (person_times >= s.unit_at).then_some("通报批评派出单位，约谈单位主要负责人")
}

/// A second helper's sheet status, for the town office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SheetStatus {
    pub second_helper: HelperRef,
    pub version: Option<i32>,
    pub submitted_at: Option<DateTime<Utc>>,
    /// The sheet's rows today differ from those of the version submitted (a visit
    /// synced, voided or amended since, an exit filed or withdrawn, a window ended): the
    /// town office asks for it again. Absent when unchanged or never submitted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed_since: bool,
    /// The version submitted froze rows other than those the helper reviewed and signed
    /// (its `reviewed_rows_match` is false: the device had not synced what arrived
    /// since): the device asks for it again, and so does the town office (QA s23b F9).
    /// Absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_as_reviewed: bool,
}

impl SheetStatus {
    /// What the town office is to do about the version, for the 报送情况 table: empty
    /// when it stands.
    pub fn resubmit_zh(&self) -> &'static str {
        match (self.not_as_reviewed, self.changed_since) {
            (true, _) => "审阅后数据有变化，需重新报送",
            (false, true) => "已变动，需重新报送",
            (false, false) => "",
        }
    }
}

/// A household with no counted home visit in the quarter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HouseholdRef {
    pub household_id: i64,
    pub head_name: String,
    pub village: String,
}

/// A window of the quarter that no pairing is judged on: the household had a helper of
/// that role during the window, but none for all of it (a change of helper mid-window,
/// or a pairing begun or ended inside it). The rule stays — a window is judged only for
/// a pairing covering all of it — but the town office sees these, since no one answers
/// for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnownedWindow {
    pub household_id: i64,
    pub head_name: String,
    pub village: String,
    pub role: PairingRole,
    pub kind: VisitKind,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// The helpers paired with the household for part of the window, in pairing order.
    pub helpers: Vec<HelperRef>,
    /// The first day out of pairing of the household's exit, when that falls inside the
    /// window: the window was cut by the household leaving (已脱贫), not by a change of
    /// helper. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_on: Option<NaiveDate>,
    /// A pairing of the role began inside the window while another of the role ended
    /// inside it (a change of helper): what left it to no one, with or without an exit
    /// as well. A household first paired mid-window is not a change. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub helper_changed: bool,
    /// The helper who held the window took the household over by a change filed on this
    /// day, on or after the window's last day (a change imported dated back): the window
    /// had ended before anyone told them, so it is not theirs (QA s26a F3). Absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_filed_on: Option<NaiveDate>,
    /// With `change_filed_on`: that filing was the household's first pairing in the role,
    /// not a change of helper (see [`WindowResult::first_pairing`]). Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_pairing: bool,
    /// Contacts of the window's kind counted in it, by the helpers paired then while
    /// they were: a window judged for no one may still have been visited, and the
    /// office should not read it as a gap (QA s26a F5). Absent from servers before it
    /// was sent: read as 0.
    #[serde(default)]
    pub contacts: u32,
}

impl UnownedWindow {
    /// The 期间走访 column: whether the helpers paired then made the contact anyway.
    pub fn contacts_zh(&self) -> String {
        match self.contacts {
            0 => "未走访".into(),
            n => format!("已走访{n}次"),
        }
    }
}

impl UnownedWindow {
    /// The 说明 the town report prints: what cut the window.
    pub fn cause_zh(&self) -> String {
        let late = self.change_filed_on.map(|day| {
            format!(
                "{}{day}才报备，晚于周期结束",
                late_filing_zh(self.first_pairing)
            )
        });
        let cut = match (self.exit_on, self.helper_changed) {
            (Some(day), false) => Some(format!("{day}起退出帮扶")),
            (Some(day), true) => Some(format!("期间结对变动；{day}起退出帮扶")),
            (None, true) => Some("期间结对变动".to_string()),
            (None, false) => None,
        };
        match (cut, late) {
            (Some(cut), Some(late)) => format!("{cut}；{late}"),
            (Some(text), None) | (None, Some(text)) => text,
            // A pairing begun (or ended) inside the window, no helper following
            // another: not a change (QA s24a F5).
            (None, None) => "结对未覆盖整个周期".into(),
        }
    }
}

/// What was filed late, for a window judged for no one because of it: a change of
/// helper (结对变动), or the household's first pairing dated back (首次结对).
fn late_filing_zh(first_pairing: bool) -> &'static str {
    if first_pairing {
        "首次结对"
    } else {
        "结对变动"
    }
}

/// The town office's quarterly report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TownReport {
    pub quarter: Quarter,
    pub town: Place,
    pub sheets: Vec<SheetStatus>,
    pub villages: Vec<AreaRate>,
    pub total: AreaRate,
    pub misses: Vec<Miss>,
    pub escalations: Vec<HelperEscalation>,
    pub unit_escalations: Vec<UnitEscalation>,
    /// The person-times this year that put a unit in `unit_escalations`: the policy's
    /// `sanctions.unit_at` at the quarter's end, which titles that list.
    #[serde(default = "seed_unit_at")]
    pub unit_at: u32,
    pub no_home_visit: Vec<HouseholdRef>,
    /// 无人负责的窗口: the quarter's windows judged for no one.
    #[serde(default)]
    pub unowned_windows: Vec<UnownedWindow>,
    pub rule: String,
}

/// The county office's quarterly report: towns ranked by rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountyReport {
    pub quarter: Quarter,
    pub county: Place,
    pub towns: Vec<AreaRate>,
    pub total: AreaRate,
    pub escalations: Vec<HelperEscalation>,
    pub unit_escalations: Vec<UnitEscalation>,
    /// As [`TownReport::unit_at`].
    #[serde(default = "seed_unit_at")]
    pub unit_at: u32,
    pub rule: String,
}

/// `unit_at` for a report written before it was given: seed 001 §四(四)'s 3.
fn seed_unit_at() -> u32 {
    Sanctions::default().unit_at
}

/// The title of the list of units to sanction, with the threshold the policy sets. A
/// town's list counts its own households' misses only (a unit's helpers may serve
/// several towns), and says so: under the county's title it read as the county's count
/// (QA s26a F5).
pub fn unit_escalations_title_zh(unit_at: u32, town_only: bool) -> String {
    let scope = if town_only { "本镇范围内" } else { "" };
    format!("派出单位问责（{scope}本年度累计{unit_at}人次以上）")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_heads_a_report_in_chinese() {
        for (token, heading) in [("2026Q3", "2026年第三季度"), ("2027Q1", "2027年第一季度")]
        {
            assert_eq!(token.parse::<Quarter>().unwrap().zh(), heading);
        }
    }

    #[test]
    fn a_window_the_exit_cut_names_its_due_part_and_the_exit() {
        let w = window(12, VisitKind::Home, false, None);
        assert_eq!(w.text_zh(), "12-01~12-31入户未到位");
        let cut = WindowResult {
            due_by: NaiveDate::from_ymd_opt(2026, 12, 19),
            ..w
        };
        assert_eq!(cut.text_zh(), "12-01~12-19入户未到位（12-20起退出帮扶）");
        // A change of helper cut it (QA s23b F4): not read as the household leaving.
        let changed = WindowResult {
            ended_by_change: true,
            ..cut
        };
        assert_eq!(
            changed.text_zh(),
            "12-01~12-19入户未到位（12-20起结对变动）"
        );
    }

    #[test]
    fn the_rule_names_every_exit_cut_setting_that_judged_the_windows() {
        let rule = |days: &[u32]| window_rule_zh(&days.iter().copied().collect());
        assert_eq!(rule(&[]), WINDOW_RULE_ZH);
        assert_eq!(rule(&[0]), WINDOW_RULE_ZH);
        let one = rule(&[30]);
        assert!(
            one.ends_with("满30天、且中断至迟在前一日已报备的，计入原帮扶人应走访（须在中断前走访到位；当日或事后报备的中断不考核）。"),
            "{one}"
        );
        let two = rule(&[30, 45]);
        assert!(
            two.contains("满30天或45天、") && two.contains("按各周期首日适用的政策"),
            "{two}"
        );
        assert!(!two.contains("部分周期无此例外"), "{two}");
        let with_none = rule(&[0, 30]);
        assert!(
            with_none.contains("满30天、") && with_none.contains("部分周期无此例外"),
            "{with_none}"
        );
    }

    #[test]
    fn an_unowned_window_says_what_cut_it() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 20).unwrap();
        let w = UnownedWindow {
            household_id: 1,
            head_name: "田晓东".into(),
            village: "河口村".into(),
            role: PairingRole::First,
            kind: VisitKind::Home,
            start: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            end: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            helpers: vec![],
            exit_on: None,
            helper_changed: true,
            change_filed_on: None,
            first_pairing: false,
            contacts: 0,
        };
        assert_eq!(w.cause_zh(), "期间结对变动");
        let both = UnownedWindow {
            exit_on: Some(day),
            ..w.clone()
        };
        assert_eq!(both.cause_zh(), "期间结对变动；2026-12-20起退出帮扶");
        let exit = UnownedWindow {
            helper_changed: false,
            ..both
        };
        assert_eq!(exit.cause_zh(), "2026-12-20起退出帮扶");
        let json = serde_json::to_value(&exit).unwrap();
        assert!(json.get("helper_changed").is_none(), "{json}");
        // A first pairing begun inside the window is not a change (QA s24a F5).
        let begun = UnownedWindow {
            exit_on: None,
            ..exit
        };
        assert_eq!(begun.cause_zh(), "结对未覆盖整个周期");
        // Held whole by a helper whose change was filed after it ended (QA s26a F3).
        let filed_late = UnownedWindow {
            change_filed_on: Some(NaiveDate::from_ymd_opt(2027, 1, 6).unwrap()),
            ..begun
        };
        assert_eq!(
            filed_late.cause_zh(),
            "结对变动2027-01-06才报备，晚于周期结束"
        );
        // The household's first pairing imported dated back (QA s29c K11).
        let first = UnownedWindow {
            first_pairing: true,
            ..filed_late
        };
        assert_eq!(first.cause_zh(), "首次结对2027-01-06才报备，晚于周期结束");
    }

    #[test]
    fn quarters_parse_and_bound() {
        let q: Quarter = "2026q1".parse().unwrap();
        assert_eq!(q.to_string(), "2026Q1");
        assert_eq!(q.start(), NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        assert_eq!(q.end(), NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
        assert_eq!(
            "2026Q4".parse::<Quarter>().unwrap().end(),
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
        );
        assert_eq!(q.previous().to_string(), "2025Q4");
        for bad in [
            "2026Q5", "2026", "Q1", "abcdQ1", "2026Q04", "+2026Q4", " 2026Q4", "2026Q4 ", "02026Q4",
        ] {
            assert!(bad.parse::<Quarter>().is_err(), "{bad}");
        }
        let far = "1999Q1".parse::<Quarter>().unwrap_err().to_string();
        assert!(far.contains("years 2000 to 2100"), "{far}");
        assert_eq!(serde_json::to_string(&q).unwrap(), "\"2026Q1\"");
    }

    #[test]
    fn escalation_ladder() {
        let seed = Sanctions::default();
        assert_eq!(helper_action(0, &seed), None);
        assert_eq!(helper_action(1, &seed), Some("通报派出单位，约谈"));
        let twice = helper_action(2, &seed).unwrap();
        assert!(twice.starts_with("由其工作单位对其公开通报批评"), "{twice}");
        assert!(twice.contains("取消本年度评先评优"));
        assert_eq!(helper_action(5, &seed), Some(twice));
        assert_eq!(unit_action(2, &seed), None);
        assert!(unit_action(3, &seed).is_some());
        let strict = Sanctions {
            report_at: 2,
            criticise_at: 3,
            unit_at: 5,
            ..Sanctions::default()
        };
        assert_eq!(helper_action(1, &strict), None);
        assert_eq!(helper_action(2, &strict), Some("通报派出单位，约谈"));
        assert_eq!(helper_action(3, &strict), Some(twice));
        assert_eq!(unit_action(4, &strict), None);
        assert!(unit_action(5, &strict).is_some());
    }

    fn helper(id: i64, name: &str) -> HelperRef {
        HelperRef {
            id,
            name: name.into(),
            unit_position: String::new(),
            phone: String::new(),
        }
    }

    fn window(m: u32, kind: VisitKind, met: bool, who: Option<HelperRef>) -> WindowResult {
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        WindowResult {
            role: PairingRole::First,
            kind,
            start: day(m, 1),
            end: crate::policy::window_of(day(m, 1), 1).1,
            count: u32::from(met),
            min_count: 1,
            required: true,
            met,
            open: false,
            helper: who,
            due_by: None,
            ended_by_change: false,
            change_filed_on: None,
            first_pairing: false,
        }
    }

    #[test]
    fn the_own_visits_cell_names_each_window_asked_of_the_second_helper() {
        let mut row = sheet_row_for_own_text();
        assert_eq!(row.own_text(), "");
        let mut cut = window(3, VisitKind::Home, false, None);
        cut.due_by = NaiveDate::from_ymd_opt(2026, 3, 19);
        let mut open = window(2, VisitKind::Home, false, None);
        open.open = true;
        let mut unasked = window(2, VisitKind::Phone, false, None);
        unasked.required = false;
        row.own_windows = vec![window(1, VisitKind::Home, true, None), open, unasked, cut];
        assert_eq!(
            row.own_text(),
            "1月已走访；2月进行中；3月未走访（03-20起退出帮扶）"
        );
        // A window left unjudged in which the helper visited still shows the visit.
        let mut unjudged = window(4, VisitKind::Home, true, None);
        unjudged.required = false;
        let mut visit = line(4, 3, 2);
        visit.kind = VisitKind::Home;
        let mut shown = row.clone();
        shown.own_windows = vec![unjudged];
        shown.own_records = vec![visit];
        assert_eq!(shown.own_text(), "4月已走访（不考核）");
        shown.own_records[0].late = true;
        assert_eq!(shown.own_text(), "4月已走访(迟报)（不考核）");
        // And without a visit it still says so, not a blank cell (QA s24b F4).
        shown.own_records.clear();
        assert_eq!(shown.own_text(), "4月不考核");
        // A visit that does not count is named with why, not read as none (QA s29b J7).
        let mut uncounted = row.clone();
        let mut not_counted = line(3, 10, 2);
        not_counted.kind = VisitKind::Home;
        not_counted.counts = false;
        not_counted.reason = Some("照片或签字图片已用于其他走访".into());
        uncounted.own_windows = vec![window(3, VisitKind::Home, false, None)];
        uncounted.own_records = vec![not_counted];
        assert_eq!(
            uncounted.own_text(),
            "3月未走访（03-10入户不计：照片或签字图片已用于其他走访）"
        );
        // A window met only by a visit entered late says so.
        let mut late = line(1, 9, 2);
        late.kind = VisitKind::Home;
        late.flags = vec!["entered_late".into()];
        row.own_records = vec![late.clone()];
        assert!(
            row.own_text().starts_with("1月已走访(补录)；"),
            "{}",
            row.own_text()
        );
        // One that arrived after the last submission, too (QA s23b F3).
        row.own_records[0].late = true;
        assert!(
            row.own_text().starts_with("1月已走访(迟报)(补录)；"),
            "{}",
            row.own_text()
        );
        let mut on_time = late;
        on_time.flags.clear();
        row.own_records.push(on_time);
        assert!(
            row.own_text().starts_with("1月已走访；"),
            "{}",
            row.own_text()
        );
    }

    /// A window across two quarters met by a visit of the earlier one: the later
    /// quarter's row says it has no visit of its own, not that there was none (QA s22b
    /// F9: `无走访记录｜09-01~10-31入户到位` read as a contradiction).
    #[test]
    fn a_row_without_visits_of_its_quarter_says_so() {
        let mut row = sheet_row_for_own_text();
        row.windows = vec![window(9, VisitKind::Home, true, None)];
        assert!(
            row.record_text().starts_with("本季度无走访记录｜"),
            "{}",
            row.record_text()
        );
    }

    /// QA s23b F5, s24a F5/F8, s24b F9: a window judged for no one is named once, with
    /// what cut it.
    #[test]
    fn a_window_judged_for_no_one_says_what_cut_it() {
        let mut row = sheet_row_for_own_text();
        let mut a = window(12, VisitKind::Phone, false, Some(helper(1, "甲")));
        a.required = false;
        row.windows = vec![a.clone()];
        assert!(
            row.record_text()
                .ends_with("12-01~12-31电话不考核（结对未覆盖整个周期）"),
            "{}",
            row.record_text()
        );
        let mut b = a.clone();
        b.helper = Some(helper(2, "乙"));
        row.windows = vec![a, b];
        let text = row.record_text();
        assert!(
            text.ends_with("12-01~12-31电话不考核（期间结对变动）"),
            "{text}"
        );
        assert_eq!(text.matches("不考核").count(), 1, "{text}");
        row.exit_on = NaiveDate::from_ymd_opt(2026, 12, 20);
        assert!(
            row.record_text()
                .contains("12-01~12-31电话不考核（期间结对变动；12-20起退出帮扶）"),
            "{}",
            row.record_text()
        );
    }

    /// QA s28a F5, s28b F5: a window not judged because the change of helper was filed
    /// after it ended says so, as the town report does, headed 无人负责 where names are
    /// shown; a helper's name heads each run of their windows once.
    #[test]
    fn a_window_of_a_change_filed_late_says_when_it_was_filed() {
        let mut row = sheet_row_for_own_text();
        let new = Some(helper(2, "吴新"));
        let mut late = window(10, VisitKind::Phone, false, new.clone());
        late.required = false;
        late.change_filed_on = NaiveDate::from_ymd_opt(2026, 12, 6);
        let mut open = window(12, VisitKind::Phone, false, new.clone());
        open.open = true;
        let mut home = window(11, VisitKind::Home, false, new);
        home.open = true;
        row.windows = vec![home, late, open];
        let text = row.record_text();
        assert_eq!(
            text,
            "本季度无走访记录｜吴新：11-01~11-30入户进行中；\
             无人负责：10-01~10-31电话不考核（结对变动2026-12-06才报备）；\
             吴新：12-01~12-31电话进行中"
        );
        // The legend says what 无人负责 means (QA s28c G5).
        let legend = marks_legend_zh([text.as_str()]).unwrap_or_default();
        assert!(legend.contains("无人负责 其后的周期"), "{legend}");
        // A helper's run of windows is headed once.
        row.windows.swap(1, 2);
        assert_eq!(
            row.record_text().matches("吴新：").count(),
            1,
            "{}",
            row.record_text()
        );
    }

    /// QA s29c K11: a household's first pairing imported dated back is not a change of
    /// helper, and its windows say so on the sheet and in the town report.
    #[test]
    fn a_first_pairing_filed_late_is_not_called_a_change() {
        let mut row = sheet_row_for_own_text();
        let mut late = window(10, VisitKind::Phone, false, Some(helper(2, "吴新")));
        late.required = false;
        late.change_filed_on = NaiveDate::from_ymd_opt(2026, 12, 6);
        late.first_pairing = true;
        row.windows = vec![late];
        let text = row.record_text();
        assert!(text.contains("（首次结对2026-12-06才报备）"), "{text}");
        assert!(!text.contains("结对变动"), "{text}");
    }

    #[test]
    fn the_marks_legend_names_only_the_marks_used() {
        assert_eq!(marks_legend_zh(["01-09电话；01-20入户"]), None);
        let legend = marks_legend_zh(["09-28入户(迟报)(补录)", "07-01电话(不计:已作废)"]).unwrap();
        assert!(
            legend.starts_with("标记说明：(迟报) 上次报送考勤表后才收到的记录；(补录) "),
            "{legend}"
        );
        assert!(legend.contains("(不计:…) 不计入考勤的记录"), "{legend}");
        assert!(!legend.contains("设备"), "{legend}");
        assert!(
            !legend.contains("计入考勤，"),
            "补录 may not count: {legend}"
        );
        // A window judged for no one, or still owed after a change of helper, is
        // explained (QA s24b F6).
        let legend = marks_legend_zh([
            "01-01~02-28入户不考核（期间结对变动）；曹秀兰：01-01~02-14入户未到位（02-15起结对变动）",
        ])
        .unwrap();
        assert!(
            legend.contains("不考核 结对未覆盖整个周期")
                && legend.contains("（某日起结对变动） 更换帮扶责任人前"),
            "{legend}"
        );
        assert!(
            marks_legend_zh(["11-01~12-19入户未到位（12-20起退出帮扶）"])
                .is_some_and(|l| l.contains("（某日起退出帮扶） 贫困户自该日起退出帮扶")),
            "the exit's mark too (QA s24c F5)"
        );
        assert!(
            !marks_legend_zh(["01-01~02-28入户不考核（期间结对变动）"])
                .is_some_and(|l| l.contains("起结对变动")),
            "期间结对变动 is not the change that leaves a window owed"
        );
    }

    fn sheet_row_for_own_text() -> SheetRow {
        SheetRow {
            seq: 1,
            household_id: 1,
            head_name: "张三".into(),
            village: "东村".into(),
            first_helper: None,
            records: vec![],
            windows: vec![],
            own_records: vec![],
            own_windows: vec![],
            remark: None,
            exit_on: None,
            exit_days: Vec::new(),
        }
    }

    fn line(m: u32, d: u32, helper_id: i64) -> RecordLine {
        RecordLine {
            record_id: format!("r{m}{d}"),
            household_id: 1,
            date: NaiveDate::from_ymd_opt(2026, m, d).unwrap(),
            kind: VisitKind::Phone,
            helper_id,
            counts: true,
            reason: None,
            photo_count: 0,
            late: false,
            flags: Vec::new(),
        }
    }

    fn row(records: Vec<RecordLine>, windows: Vec<WindowResult>) -> SheetRow {
        SheetRow {
            seq: 1,
            household_id: 1,
            head_name: "户主".into(),
            village: "村".into(),
            first_helper: Some(helper(2, "余立新")),
            records,
            windows,
            own_records: vec![],
            own_windows: vec![],
            remark: None,
            exit_on: None,
            exit_days: Vec::new(),
        }
    }

    #[test]
    fn a_row_with_two_first_helpers_names_whose_each_window_is() {
        let (c, d) = (helper(1, "曹秀兰"), helper(2, "余立新"));
        let two = row(
            vec![line(1, 9, 1), line(3, 9, 2)],
            vec![
                window(1, VisitKind::Phone, true, Some(c.clone())),
                window(3, VisitKind::Phone, true, Some(d.clone())),
            ],
        );
        assert_eq!(
            two.record_text(),
            "曹秀兰：01-09电话；余立新：03-09电话｜曹秀兰：01-01~01-31电话到位；余立新：03-01~03-31电话到位"
        );
        let one = row(
            vec![line(3, 9, 2)],
            vec![window(3, VisitKind::Phone, false, Some(d))],
        );
        assert_eq!(
            one.record_text(),
            "03-09电话｜03-01~03-31电话未到位",
            "only the current helper's: no names"
        );
    }

    #[test]
    fn a_record_shows_its_flags_in_chinese_and_an_unknown_one_by_code() {
        let mut late = line(3, 9, 2);
        late.flags = vec![
            "entered_late".into(),
            "chain_break".into(),
            "new_flag".into(),
        ];
        let r = row(vec![late], vec![]);
        assert_eq!(
            r.record_text(),
            "03-09电话(补录)(设备记录链断裂)(new_flag)｜"
        );
    }

    #[test]
    fn sheet_signing_bytes_ignore_remark_order() {
        let q: Quarter = "2026Q1".parse().unwrap();
        let a = SheetSubmission {
            quarter: q,
            device_id: 1,
            remarks: vec![(2, "b".into()), (1, "a".into())],
            signature: String::new(),
            submission_id: None,
            rows_sha256: None,
        };
        let b = SheetSubmission {
            remarks: vec![(1, "a".into()), (2, "b".into())],
            ..a.clone()
        };
        assert_eq!(a.signing_bytes(), b.signing_bytes());
        assert!(a.signing_bytes().starts_with(b"bangfu-sheet-v1\n"));
    }

    #[test]
    fn a_submission_id_is_signed_so_each_signing_is_its_own_submission() {
        let q: Quarter = "2026Q1".parse().unwrap();
        let first = SheetSubmission {
            quarter: q,
            device_id: 1,
            remarks: vec![(1, "a".into())],
            signature: String::new(),
            submission_id: Some(uuid::Uuid::from_u128(1)),
            rows_sha256: None,
        };
        let again = SheetSubmission {
            submission_id: Some(uuid::Uuid::from_u128(2)),
            ..first.clone()
        };
        let bytes = first.signing_bytes();
        assert!(bytes.starts_with(b"bangfu-sheet-v2\n"));
        assert!(String::from_utf8_lossy(&bytes).contains("00000000-0000-0000-0000-000000000001"));
        assert_ne!(bytes, again.signing_bytes(), "same remarks, new signing");
        let old = SheetSubmission {
            submission_id: None,
            ..first.clone()
        };
        assert!(
            !serde_json::to_string(&old)
                .unwrap()
                .contains("submission_id")
        );
        let parsed: SheetSubmission =
            serde_json::from_str(&serde_json::to_string(&first).unwrap()).unwrap();
        assert_eq!(parsed, first);
    }

    fn reviewed_row() -> SheetRow {
        let mut own = line(2, 3, 7);
        own.record_id = "自己的".into();
        own.kind = VisitKind::Home;
        let mut unjudged = window(2, VisitKind::Home, false, None);
        unjudged.required = false;
        SheetRow {
            household_id: 42,
            own_records: vec![own],
            own_windows: vec![unjudged],
            ..row(
                vec![line(1, 9, 2)],
                vec![
                    window(1, VisitKind::Phone, true, Some(helper(2, "余立新"))),
                    window(2, VisitKind::Phone, false, None),
                ],
            )
        }
    }

    #[test]
    fn the_rows_digest_has_a_documented_byte_form() {
        let rows = vec![reviewed_row(), row(vec![], vec![])];
        assert_eq!(
            String::from_utf8(rows_digest_bytes(&rows)).unwrap(),
            "bangfu-sheet-rows-v1\n\
             row\t42\n\
             record\t3:r19\t1\n\
             window\tphone\t2026-01-01\t2026-01-31\tmet\n\
             window\tphone\t2026-02-01\t2026-02-28\tmissed\n\
             own_record\t9:自己的\t1\n\
             own_window\thome\t2026-02-01\t2026-02-28\tunjudged\n\
             row\t1\n"
        );
        assert_eq!(
            rows_sha256(&rows),
            "01c32d3b7f2beefdb7fdbd8f9a200958aef72528efcd55749aec19786596d5ed",
            "a test vector: the digest of these rows never changes"
        );
        assert_eq!(rows_sha256(&[]).len(), 64);
    }

    #[test]
    fn the_rows_digest_changes_with_the_attendance() {
        let base = vec![reviewed_row()];
        let digest = rows_sha256(&base);
        let changed = |edit: &dyn Fn(&mut SheetRow)| {
            let mut rows = base.clone();
            edit(&mut rows[0]);
            rows_sha256(&rows)
        };
        type Edit<'a> = &'a dyn Fn(&mut SheetRow);
        let cases: [(&str, Edit); 9] = [
            ("a verdict", &|r| r.windows[0].met = false),
            ("a window closing", &|r| r.windows[1].open = true),
            ("a window judged", &|r| r.own_windows[0].required = true),
            ("a window's end", &|r| r.windows[0].end = r.windows[1].end),
            ("a window's kind", &|r| r.windows[0].kind = VisitKind::Home),
            ("a record no longer counting", &|r| {
                r.records[0].counts = false
            }),
            ("a voided record", &|r| r.records.clear()),
            ("an own record", &|r| {
                r.own_records[0].record_id = "x".into()
            }),
            ("the household", &|r| r.household_id = 43),
        ];
        for (what, edit) in cases {
            assert_ne!(changed(edit), digest, "{what}");
        }
        let mut two = base.clone();
        two.push(row(vec![], vec![]));
        let mut swapped = two.clone();
        swapped.reverse();
        assert_ne!(rows_sha256(&two), rows_sha256(&swapped), "the row order");
        // A record moved from the first helper's to the helper's own is not the same.
        let mut moved = base.clone();
        let r = moved[0].records.remove(0);
        moved[0].own_records.insert(0, r);
        assert_ne!(rows_sha256(&moved), digest, "whose record");
    }

    #[test]
    fn the_rows_digest_ignores_layout_and_added_fields() {
        let base = vec![reviewed_row()];
        let digest = rows_sha256(&base);
        let mut shown = base.clone();
        let r = &mut shown[0];
        r.seq = 9;
        r.head_name = "改名".into();
        r.village = "别村".into();
        r.first_helper = None;
        r.remark = Some("备注".into());
        r.records[0].late = true;
        r.records[0].photo_count = 3;
        r.records[0].flags = vec!["entered_late".into()];
        r.records[0].reason = Some("理由".into());
        r.windows[0].helper = None;
        r.windows[0].count = 5;
        r.windows[1].min_count = 2;
        assert_eq!(
            rows_sha256(&shown),
            digest,
            "names, remarks and flags are not attendance"
        );
        // A newer server's fields, on the row, a record and a window, are not in it.
        let mut json = serde_json::to_value(&base[0]).unwrap();
        json["new_row_field"] = serde_json::json!("x");
        json["records"][0]["new_record_field"] = serde_json::json!(1);
        json["windows"][0]["new_window_field"] = serde_json::json!([true]);
        let parsed: SheetRow = serde_json::from_value(json).unwrap();
        assert_eq!(rows_sha256(&[parsed]), digest);
    }

    #[test]
    fn a_reviewed_digest_is_signed_as_v3_and_older_forms_stay() {
        let q: Quarter = "2026Q1".parse().unwrap();
        let v2 = SheetSubmission {
            quarter: q,
            device_id: 1,
            remarks: vec![(1, "a".into())],
            signature: String::new(),
            submission_id: Some(uuid::Uuid::from_u128(1)),
            rows_sha256: None,
        };
        assert_eq!(
            String::from_utf8(v2.signing_bytes()).unwrap(),
            "bangfu-sheet-v2\n{\"device_id\":1,\"quarter\":\"2026Q1\",\"remarks\":[[1,\"a\"]],\"submission_id\":\"00000000-0000-0000-0000-000000000001\"}"
        );
        let v3 = SheetSubmission {
            rows_sha256: Some("ab".repeat(32)),
            ..v2.clone()
        };
        assert_eq!(
            String::from_utf8(v3.signing_bytes()).unwrap(),
            format!(
                "bangfu-sheet-v3\n{{\"device_id\":1,\"quarter\":\"2026Q1\",\"remarks\":[[1,\"a\"]],\"rows_sha256\":\"{}\",\"submission_id\":\"00000000-0000-0000-0000-000000000001\"}}",
                "ab".repeat(32)
            )
        );
        let other = SheetSubmission {
            rows_sha256: Some("cd".repeat(32)),
            ..v2.clone()
        };
        assert_ne!(
            v3.signing_bytes(),
            other.signing_bytes(),
            "the digest is signed"
        );
        assert!(!serde_json::to_string(&v2).unwrap().contains("rows_sha256"));
        let parsed: SheetSubmission =
            serde_json::from_str(&serde_json::to_string(&v3).unwrap()).unwrap();
        assert_eq!(parsed, v3);
    }
}
