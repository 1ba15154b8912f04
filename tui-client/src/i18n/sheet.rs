//! The attendance-sheet screen's texts and the server's check of a submitted version.

use super::*;

/// Texts of the attendance-sheet screen (考勤表, issue 5).
#[derive(Debug)]
pub struct SheetTexts {
    pub title: &'static str,
    pub seq: &'static str,
    pub head: &'static str,
    pub village: &'static str,
    pub first_helper: &'static str,
    pub records: &'static str,
    /// The second helper's own visits (附件3's 第二帮扶责任人走访).
    pub own_visits: &'static str,
    pub remark: &'static str,
    pub no_sheet: &'static str,
    /// A remark was being typed when the client stopped: `e` takes it up again.
    pub remark_typing: &'static str,
    /// Said when the sheet opens on the ended quarter that still asks for a submission.
    pub opened_ended: &'static str,
    /// For a first helper's account: the sheet is not theirs to fill in.
    pub no_sheet_first: &'static str,
    pub help: &'static str,
    /// The sheet screen's help line for a first helper (nothing to edit or sign).
    pub help_first: &'static str,
    /// The sheet screen's help line while the arrow keys scroll the row's summary.
    pub help_summary: &'static str,
    /// In the summary's title when it is longer than its pane and Tab would scroll it.
    pub summary_scroll_hint: &'static str,
    pub help_remark: &'static str,
    pub remark_prompt: &'static str,
    pub confirm_title: &'static str,
    pub confirm: &'static str,
    pub help_confirm: &'static str,
    pub queued: &'static str,
    /// How many remarks a submitted sheet carries (`{}`: the count).
    pub remarks: &'static str,
    pub saved: &'static str,
    pub never: &'static str,
    pub pending: &'static str,
    pub submitted: &'static str,
    pub rejected: &'static str,
    /// Beside the state: remarks written after the last submission (TUI: the key).
    pub unsubmitted: &'static str,
    /// The same for `sheet show`; `{}` is the quarter.
    pub unsubmitted_cli: &'static str,
    /// Beside the state: the rows changed since the last submission was signed (TUI:
    /// the key); said instead of `unsubmitted` (submitting again sends the remarks too).
    pub data_changed: &'static str,
    /// The same for `sheet show`; `{}` is the quarter.
    pub data_changed_cli: &'static str,
}

pub(super) static SHEET_ZH: SheetTexts = SheetTexts {
    title: "考勤表",
    seq: "序号",
    head: "贫困户姓名",
    village: "村",
    first_helper: "第一帮扶责任人",
    records: "帮扶记录",
    own_visits: "第二帮扶责任人走访",
    remark: "备注",
    no_sheet: "没有考勤表：第二帮扶责任人联网同步后可离线查看（界面按 s，命令行 bangfu sync）。",
    remark_typing: "有未保存完的备注：按 e 接着写（Esc 放弃）",
    opened_ended: "上季度考勤表尚待提交，先打开它；按 → 看本季度",
    no_sheet_first: "考勤表由第二帮扶责任人填报，本账号无需填报。",
    help: "e/Enter 备注  S 签名提交  Tab 详情  ←→ 季度  s 同步  Esc 返回  q 退出  ↑↓ 选择",
    help_summary: "↑↓ PgUp/PgDn Home/End 滚动详情  Tab 返回表格  Esc 返回  q 退出",
    summary_scroll_hint: "Tab 滚动 ",
    help_first: "Esc 返回  q 退出",
    help_remark: "输入备注  Enter 保存  Esc 取消",
    remark_prompt: "备注：",
    confirm_title: "签名提交",
    confirm: "用本机密钥签名并提交（下次同步时送达乡镇）？提交后冻结，再次提交为新版本。",
    help_confirm: "y 签名提交  其他键 取消",
    queued: "已签名，待同步提交",
    remarks: "{} 条备注",
    saved: "备注已保存",
    never: "未提交",
    pending: "待提交",
    submitted: "已提交第{}版",
    rejected: "被拒：",
    unsubmitted: "有未提交的修改（按 S 重新提交）",
    unsubmitted_cli: "有未提交的修改（bangfu sheet submit --quarter {} 重新提交）",
    data_changed: "数据已变化，需重新提交（按 S）",
    data_changed_cli: "数据已变化，需重新提交（bangfu sheet submit --quarter {}）",
};

pub(super) static SHEET_EN: SheetTexts = SheetTexts {
    title: "Attendance sheet",
    seq: "No.",
    head: "Household",
    village: "Village",
    first_helper: "First helper",
    records: "Assistance record",
    own_visits: "Your own visits",
    remark: "Remark",
    no_sheet: "No attendance sheet: a second helper's sync with network brings it for offline review (s here, bangfu sync on the command line).",
    remark_typing: "a remark was left half-typed: e goes on with it (Esc drops it)",
    opened_ended: "last quarter's sheet still waits to be submitted, so it opens first; → shows this quarter",
    no_sheet_first: "No attendance sheet for this account: the second helper fills it in; a first helper need not.",
    help: "e/Enter remark  S sign & submit  Tab summary  ←→ quarter  s sync  Esc back  q quit  ↑↓ select",
    help_summary: "↑↓ PgUp/PgDn Home/End scroll the summary  Tab back to the rows  Esc back  q quit",
    summary_scroll_hint: "Tab scrolls ",
    help_first: "Esc back  q quit",
    help_remark: "type the remark  Enter save  Esc cancel",
    remark_prompt: "Remark: ",
    confirm_title: "Sign and submit",
    confirm: "Sign with this device's key and submit (delivered at the next sync)? A submitted sheet is frozen; submitting again makes a new version.",
    help_confirm: "y sign & submit  any other key cancels",
    queued: "signed; it is submitted at the next sync",
    remarks: "{} remarks",
    saved: "remark saved",
    never: "not submitted",
    pending: "to be submitted",
    submitted: "submitted, version {}",
    rejected: "REJECTED: ",
    unsubmitted: "changes not submitted (S submits again)",
    unsubmitted_cli: "changes not submitted (bangfu sheet submit --quarter {} submits again)",
    data_changed: "data changed since: S to resubmit",
    data_changed_cli: "the data changed since, submit again (bangfu sheet submit --quarter {})",
};

impl Lang {
    /// The attendance-sheet screen's texts.
    pub fn sheet(self) -> &'static SheetTexts {
        match self {
            Lang::Zh => &SHEET_ZH,
            Lang::En => &SHEET_EN,
        }
    }

    /// The warning before a sheet of a quarter still running is submitted, `None` once
    /// it has ended. Why: the second helper reports at quarter end (seed 001 §四(二));
    /// submitted earlier, the windows still open are frozen as they stand, and every
    /// visit after is late against that version, which must be submitted again (QA
    /// s32c W3).
    pub fn sheet_early(
        self,
        quarter: bangfu_shared::report::Quarter,
        today: NaiveDate,
    ) -> Option<String> {
        let end = quarter.end();
        (today <= end).then(|| match self {
            Lang::Zh => format!(
                "本季度尚未结束（至{}），仍有周期进行中：现在提交，之后的走访会标为迟报，需再次提交。",
                end.format("%-m月%-d日")
            ),
            Lang::En => format!(
                "The quarter runs to {end}: windows are still open. Submitted now, visits after \
                 it are marked late and the sheet must be submitted again."
            ),
        })
    }

    /// A sheet's submission state: 未提交 / 待提交 / 已提交第N版 / 被拒：原因.
    pub fn sheet_state(self, state: Option<&crate::store::SubmissionState>) -> String {
        use crate::store::SubmissionState;
        let t = self.sheet();
        match state {
            None => t.never.to_string(),
            Some(SubmissionState::Pending) => t.pending.to_string(),
            Some(SubmissionState::Submitted { version }) => {
                t.submitted.replace("{}", &version.to_string())
            }
            Some(SubmissionState::Rejected { reason }) => match self {
                Lang::Zh => format!("{}{}", t.rejected, sheet_refusal_zh(reason)),
                Lang::En => format!("{}{reason}", t.rejected),
            },
        }
    }
}

/// The server's refusal of a sheet submission, in Chinese where its words are known: a
/// remark the helper cannot see the fault of (an invisible character) must be said so
/// they can type it again (QA s30c N1); anything else keeps the server's words.
pub(super) fn sheet_refusal_zh(reason: &str) -> String {
    if reason.contains("control character") || reason.contains("line break or tab") {
        "备注含有换行或不可见的控制字符（多从文档复制而来）：请重新输入该备注后再提交".into()
    } else if reason.contains("fit a line of the printed sheet") {
        "备注过长，超出考勤表一行：请改短后再提交".into()
    } else {
        reason.to_string()
    }
}

// ---------------------------------------------------------------------------------------
// The attendance sheet: the server's check of the last submitted version against the rows
// its helper reviewed (`reviewed_rows_match`). Kept in a block of its own.

impl Lang {
    /// The line the sheet shows under its title on the server's check of the last
    /// submitted version: "第N版已按您审阅的数据冻结", or a warning that the rows changed
    /// after the review that asks to check and sign again, or, once that new signing is
    /// queued (`resigned`), says it waits for the sync.
    pub fn sheet_review_check(self, check: crate::sheets::ReviewCheck, resigned: bool) -> String {
        use crate::sheets::ReviewCheck;
        match (self, check) {
            (Lang::Zh, ReviewCheck::Matched { version }) => {
                format!("第{version}版已按您审阅的数据冻结")
            }
            (Lang::En, ReviewCheck::Matched { version }) => {
                format!("Version {version} was frozen on the rows you reviewed")
            }
            (Lang::Zh, ReviewCheck::Changed { version }) if resigned => format!(
                "⚠ 第{version}版冻结的数据与您审阅时不同（审阅后有变化）：已重新签名，待同步提交新版本"
            ),
            (Lang::Zh, ReviewCheck::Changed { version }) => {
                format!(
                    "⚠ 第{version}版冻结的数据与您审阅时不同（审阅后有变化）：请核对后重新签名提交"
                )
            }
            (Lang::En, ReviewCheck::Changed { version }) if resigned => format!(
                "⚠ Version {version} changed after your review; signed again, sent at the next sync"
            ),
            (Lang::En, ReviewCheck::Changed { version }) => format!(
                "⚠ Version {version} changed after your review: check the rows and sign again"
            ),
        }
    }

    /// How to sign again on the sheet screen, under the warning.
    pub fn sheet_resign_key(self) -> &'static str {
        match self {
            Lang::Zh => "→ 按 S 重新签名提交（提交为新版本，原版本保留）",
            Lang::En => "→ press S to sign again (submitted as a new version; the old one stays)",
        }
    }

    /// How to sign again from the command line, under the warning.
    pub fn sheet_resign_command(self, quarter: bangfu_shared::report::Quarter) -> String {
        match self {
            Lang::Zh => format!(
                "→ 运行 bangfu sheet submit --quarter {quarter} 重新签名提交（提交为新版本，原版本保留）"
            ),
            Lang::En => format!(
                "→ run bangfu sheet submit --quarter {quarter} to sign again (submitted as a new version; the old one stays)"
            ),
        }
    }
}
