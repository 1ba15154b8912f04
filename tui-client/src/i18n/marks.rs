//! The household list's marks: windows missed (逾期), coming exits, visits to correct.

use super::*;

// What the household list says of a household: the visit window it missed (逾期) and the
// visits the town office returned for correction (待更正). Kept in a block of its own.

pub(super) const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Lang {
    /// A missed window in words: "2026年第3季度", "2026年1–2月", "2026年8月", "2026年上半年",
    /// "2025年" (English "Q3 2026", "Jan–Feb 2026"…). `short` (a list row) leaves out
    /// the year of `today`, and says a window of last year "去年…".
    pub fn window(self, w: &crate::client::MissedWindow, today: NaiveDate, short: bool) -> String {
        let year = w.from.year();
        let this_year = short && year == today.year();
        let last_year = short && year + 1 == today.year();
        let (m1, m2) = (w.from.month(), w.to.month());
        match self {
            Lang::Zh => {
                let period = match w.months {
                    1 => format!("{m1}月"),
                    3 => format!("第{}季度", m1.div_ceil(3)),
                    6 if m1 == 1 => "上半年".to_string(),
                    6 => "下半年".to_string(),
                    12 => String::new(),
                    _ => format!("{m1}–{m2}月"),
                };
                match (this_year, last_year) {
                    (true, _) => period,
                    (_, true) => format!("去年{period}"),
                    _ => format!("{year}年{period}"),
                }
            }
            Lang::En => {
                let name = |m: u32| MONTHS_EN[(m as usize).saturating_sub(1) % 12];
                let period = match w.months {
                    1 => name(m1).to_string(),
                    3 => format!("Q{}", m1.div_ceil(3)),
                    6 if m1 == 1 => "H1".to_string(),
                    6 => "H2".to_string(),
                    12 => String::new(),
                    _ => format!("{}–{}", name(m1), name(m2)),
                };
                match (this_year, last_year, period.is_empty()) {
                    (true, _, _) => period,
                    (_, true, true) => "last year".to_string(),
                    (_, _, true) => year.to_string(),
                    _ => format!("{period} {year}"),
                }
            }
        }
    }

    /// A household row's overdue mark with the window it names (`!逾期 1–2月`), or bare
    /// (`!逾期`) when there is no room or no window.
    pub fn overdue_mark(
        self,
        w: Option<&crate::client::MissedWindow>,
        today: NaiveDate,
        with_window: bool,
    ) -> String {
        let overdue = self.texts().overdue;
        match w.filter(|_| with_window) {
            Some(w) => format!("!{overdue} {}", self.window(w, today, true)),
            None => format!("!{overdue}"),
        }
    }

    /// The forms of the mark of a coming end of the helper's pairing, from the fullest
    /// to the shortest, for a list row that has to make room: the household's exit
    /// ("将于12月28日退出", "12月28日退出", "退12/28"; English "leaves 2026-12-28",
    /// "leaves 12-28", "out 12/28") or, when `exit` is false, a handover to another
    /// helper ("将于12月28日交接", "12月28日交接", "交12/28"; "hands over 2026-12-28", …;
    /// QA s24b F11). A year other than `today`'s stays in every form: the helper must
    /// not read next year's exit as this year's.
    pub fn ending_marks(self, (day, exit): (NaiveDate, bool), today: NaiveDate) -> Vec<String> {
        let same_year = day.year() == today.year();
        let (long, short) = match (self, same_year) {
            (Lang::Zh, true) => ("%-m月%-d日", "%-m/%-d"),
            (Lang::Zh, false) => ("%Y年%-m月%-d日", "%Y/%-m/%-d"),
            (Lang::En, true) => ("%m-%d", "%-m/%-d"),
            (Lang::En, false) => ("%Y-%m-%d", "%Y/%-m/%-d"),
        };
        let (word, letter) = match (self, exit) {
            (Lang::Zh, true) => ("退出", "退"),
            (Lang::Zh, false) => ("交接", "交"),
            (Lang::En, true) => ("leaves", "out"),
            (Lang::En, false) => ("hands over", "to"),
        };
        match self {
            Lang::Zh => vec![
                format!("将于{}{word}", day.format(long)),
                format!("{}{word}", day.format(long)),
                format!("{letter}{}", day.format(short)),
            ],
            Lang::En => vec![
                format!("{word} {day}"),
                format!("{word} {}", day.format(long)),
                format!("{letter} {}", day.format(short)),
            ],
        }
    }

    /// The forms of a household row's overdue mark, fullest first: with the window
    /// missed (`!逾期 1–2月`), bare (`!逾期`), then the sign alone (`!`), which the row's
    /// red still explains.
    pub fn overdue_marks(
        self,
        w: Option<&crate::client::MissedWindow>,
        today: NaiveDate,
    ) -> Vec<String> {
        let mut forms = vec![
            self.overdue_mark(w, today, true),
            self.overdue_mark(w, today, false),
            "!".to_string(),
        ];
        forms.dedup();
        forms
    }

    /// When a pairing of the helper's with a household begins on a later day: "12月29日起
    /// 结对" / "paired from 2026-12-29" (the year in Chinese when it is not `today`'s);
    /// `short` for a narrow list, "12-29起结对" / "from 12-29".
    pub fn pairing_from(self, day: NaiveDate, today: NaiveDate, short: bool) -> String {
        let same_year = day.year() == today.year();
        match (self, short, same_year) {
            (Lang::Zh, false, true) => format!("{}起结对", day.format("%-m月%-d日")),
            (Lang::Zh, false, false) => format!("{}起结对", day.format("%Y年%-m月%-d日")),
            (Lang::Zh, true, true) => format!("{}起结对", day.format("%m-%d")),
            (Lang::Zh, true, false) => format!("{day}起结对"),
            (Lang::En, false, _) => format!("paired from {day}"),
            (Lang::En, true, true) => format!("from {}", day.format("%m-%d")),
            (Lang::En, true, false) => format!("from {day}"),
        }
    }

    /// How many photos a visit has: "照片 2" / "1 photo", "2 photos".
    pub fn photo_count(self, n: usize) -> String {
        match (self, n) {
            (Lang::Zh, n) => format!("照片 {n}"),
            (Lang::En, 1) => "1 photo".into(),
            (Lang::En, n) => format!("{n} photos"),
        }
    }

    /// A requirement's overdue window in full, for the household's detail:
    /// "逾期：2026年1–2月未入户" / "OVERDUE: no home visit in Jan–Feb 2026".
    pub fn missed_text(self, w: &crate::client::MissedWindow, today: NaiveDate) -> String {
        let window = self.window(w, today, false);
        match (self, w.kind) {
            (Lang::Zh, VisitKind::Home) => format!("逾期：{window}未入户"),
            (Lang::Zh, VisitKind::Phone) => format!("逾期：{window}未通话"),
            (Lang::En, VisitKind::Home) => format!("OVERDUE: no home visit in {window}"),
            (Lang::En, VisitKind::Phone) => format!("OVERDUE: no phone call in {window}"),
        }
    }

    /// A household row's mark for visits the town office returned for correction
    /// (a count when more than one); empty when there are none.
    pub fn to_correct_mark(self, n: usize) -> String {
        self.to_correct_marks(n)
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    /// The forms of the to-correct mark, fullest first (`✎待更正`, `✎更正`, `✎`), with
    /// the count when more than one; none when there is nothing to correct.
    pub fn to_correct_marks(self, n: usize) -> Vec<String> {
        let count = if n > 1 { n.to_string() } else { String::new() };
        let words: &[&str] = match self {
            Lang::Zh => &["待更正", "更正", ""],
            Lang::En => &["to fix ", "fix ", ""],
        };
        Self::mark_forms('✎', words, n, &count)
    }

    /// A household row's mark for visits the server said do not count for attendance
    /// (a count when more than one); empty when there are none.
    pub fn not_counted_mark(self, n: usize) -> String {
        self.not_counted_marks(n)
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    /// The forms of the not-counted mark, fullest first (`⚠不计入`, `⚠不计`, `⚠`), with
    /// the count when more than one; none when every visit counts.
    pub fn not_counted_marks(self, n: usize) -> Vec<String> {
        let count = if n > 1 { n.to_string() } else { String::new() };
        let words: &[&str] = match self {
            Lang::Zh => &["不计入", "不计", ""],
            Lang::En => &["not counted ", "uncounted ", ""],
        };
        Self::mark_forms('⚠', words, n, &count)
    }

    /// A mark's forms: `sign`, each of `words`, then `count` (an English word keeps its
    /// space before a count only).
    pub(super) fn mark_forms(sign: char, words: &[&str], n: usize, count: &str) -> Vec<String> {
        if n == 0 {
            return Vec::new();
        }
        words
            .iter()
            .map(|w| {
                let w = if count.is_empty() { w.trim_end() } else { w };
                format!("{sign}{w}{count}")
            })
            .collect()
    }

    /// The household detail's line on the visits the server does not count.
    pub fn not_counted_text(self, n: usize) -> String {
        match self {
            Lang::Zh => format!("⚠ {n} 条走访不计入考勤，不算本期完成：按 h 查看原因并更正"),
            Lang::En => {
                format!("⚠ {n} visit(s) do not count for attendance: h shows why, amend them")
            }
        }
    }

    /// The household detail's line on the visits returned for correction.
    pub fn to_correct_text(self, n: usize) -> String {
        match self {
            Lang::Zh => format!("✎ {n} 条走访被乡镇退回待更正：按 h 查看审核意见，a 更正"),
            Lang::En => {
                format!("✎ {n} visit(s) returned by the town office: h shows the review, a amends")
            }
        }
    }
}
