//! The second helper's quarter-end flow (issue 5), offline: review the attendance sheet
//! (附件3) pulled by the last sync, write a remark per row (kept as a draft), sign the
//! remarks and the digest of the rows reviewed with the device key and queue the
//! submission; the next sync submits it and stores the version the server froze, or its
//! refusal. A submitted sheet is frozen; a resubmission is a new version. A version
//! frozen on rows other than those reviewed says so (`reviewed_rows_match: false`).

use std::collections::HashMap;

use bangfu_shared::Role;
use bangfu_shared::report::{AttendanceSheet, Quarter, SheetRow, SheetSubmission};
use serde::Serialize;

use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::store::{StoredSubmission, SubmissionState};

/// Why a first helper's device refuses to remark on or submit a sheet (the words the
/// interface matches to say it in the helper's language).
pub const SECOND_HELPER_ONLY: &str =
    "only a second helper fills in and submits an attendance sheet";

/// A pulled sheet with the remarks as the helper has written them and its submissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SheetView {
    pub sheet: AttendanceSheet,
    /// Remark per household: the draft written on the device, else the server's.
    pub remarks: HashMap<i64, String>,
    /// Signed submissions of this quarter, oldest first.
    pub submissions: Vec<StoredSubmission>,
}

/// The server's check of a submitted version against the rows its helper reviewed
/// ([`AttendanceSheet::reviewed_rows_match`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewCheck {
    /// The version froze the rows the helper reviewed and signed.
    Matched { version: i32 },
    /// The rows changed between the helper's review and the submission (a visit voided
    /// or synced meanwhile): the signed remarks sit on verdicts the helper never saw, and
    /// signing again on the rows now shown makes a new version.
    Changed { version: i32 },
}

impl SheetView {
    pub fn quarter(&self) -> Quarter {
        self.sheet.quarter
    }

    /// The remark shown for a row.
    pub fn remark(&self, row: &SheetRow) -> &str {
        self.remarks
            .get(&row.household_id)
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The latest submission's state; with none, the version the server last froze.
    pub fn state(&self) -> Option<SubmissionState> {
        match self.submissions.last() {
            Some(s) => Some(s.state.clone()),
            None => self
                .sheet
                .submitted_version
                .map(|version| SubmissionState::Submitted { version }),
        }
    }

    /// What the server found of the last submitted version: frozen on the rows the helper
    /// reviewed, or on rows that changed since (`reviewed_rows_match`, carried by the
    /// live sheet pulled after the submission). None when the sheet was never submitted
    /// or the version was signed without a digest of its rows.
    pub fn review_check(&self) -> Option<ReviewCheck> {
        let version = self.sheet.submitted_version?;
        Some(match self.sheet.reviewed_rows_match? {
            true => ReviewCheck::Matched { version },
            false => ReviewCheck::Changed { version },
        })
    }

    /// Whether the latest signing waits for the next sync: after a version that changed
    /// since the review, it is the new version the helper signed on the rows now shown.
    pub fn resigned(&self) -> bool {
        matches!(
            self.submissions.last().map(|s| &s.state),
            Some(SubmissionState::Pending)
        )
    }

    /// The latest submission not refused by the server: the one queued, or the version
    /// frozen, that the remarks on the device are measured against.
    fn last_live_submission(&self) -> Option<&StoredSubmission> {
        self.submissions
            .iter()
            .rev()
            .find(|s| !matches!(s.state, SubmissionState::Rejected { .. }))
    }

    /// Whether remarks were written since the last submission (queued or frozen): the
    /// header then says so, or the helper believes the town office has them. A sheet
    /// known submitted only from the server (another install) is measured against the
    /// remarks the server sent with its rows.
    pub fn unsubmitted_changes(&self) -> bool {
        let current = self.remarks_to_submit();
        match self.last_live_submission() {
            Some(s) => s.submission.remarks != current,
            None if self.sheet.submitted_version.is_some() => {
                let server: Vec<(i64, String)> = self
                    .sheet
                    .rows
                    .iter()
                    .filter_map(|r| {
                        let remark = r.remark.as_deref().unwrap_or_default().trim();
                        (!remark.is_empty()).then(|| (r.household_id, remark.to_string()))
                    })
                    .collect();
                server != current
            }
            None => false,
        }
    }

    /// Whether the rows on the device (the sheet pulled last) differ from the rows the
    /// last submission (queued or frozen) was signed on: a visit voided, amended or
    /// synced since (by either helper). The version the town office holds no longer
    /// matches today's data, so the helper is told to submit again. False when the
    /// submission carries no digest of its rows (an older device, another install).
    pub fn data_changed(&self) -> bool {
        self.last_live_submission()
            .and_then(|s| s.submission.rows_sha256.as_deref())
            .is_some_and(|signed| signed != self.sheet.rows_sha256())
    }

    /// What the sheet's header says beside its state, if anything: that the data
    /// changed since the last submission (first), or that remarks did. `tui` picks the
    /// wording with the key, else the one with the command.
    pub fn changes_marker(&self, t: &crate::i18n::SheetTexts, tui: bool) -> Option<String> {
        let quarter = self.quarter().to_string();
        let (text, cli) = if self.data_changed() {
            (t.data_changed, t.data_changed_cli)
        } else if self.unsubmitted_changes() {
            (t.unsubmitted, t.unsubmitted_cli)
        } else {
            return None;
        };
        Some(if tui {
            text.to_string()
        } else {
            cli.replace("{}", &quarter)
        })
    }

    /// The remarks a submission sends: every row's non-empty remark, in row order.
    pub fn remarks_to_submit(&self) -> Vec<(i64, String)> {
        self.sheet
            .rows
            .iter()
            .filter_map(|r| {
                let remark = self.remark(r).trim();
                (!remark.is_empty()).then(|| (r.household_id, remark.to_string()))
            })
            .collect()
    }
}

/// Which of `sheets` (newest quarter first) a second helper opens on `today`: the newest,
/// unless it is a quarter still running and the one before it, ended, still asks for a
/// submission (never submitted, refused, or data or remarks changed since). In a
/// quarter's first days that report is what the screen is opened for; it opened on the
/// new, empty quarter, the ended one's 需重新提交 one key press away and unsaid (QA
/// s33d S6).
pub fn sheet_to_open(sheets: &[SheetView], today: chrono::NaiveDate) -> usize {
    let running = sheets.first().is_some_and(|s| s.quarter().end() >= today);
    let waiting = sheets.get(1).is_some_and(|s| s.awaits_submission(today));
    usize::from(running && waiting)
}

impl SheetView {
    /// Whether this sheet's quarter has ended and it still asks the helper to submit.
    pub fn awaits_submission(&self, today: chrono::NaiveDate) -> bool {
        let unsent = matches!(self.state(), None | Some(SubmissionState::Rejected { .. }));
        self.quarter().end() < today
            && (unsent || self.data_changed() || self.unsubmitted_changes())
    }
}

impl Client {
    /// Every pulled sheet with its remarks and submissions, the newest quarter first.
    pub async fn sheets(&self) -> Result<Vec<SheetView>> {
        let mut out = Vec::new();
        for sheet in self.store().sheets().await? {
            out.push(self.view(sheet).await?);
        }
        Ok(out)
    }

    /// The pulled sheet of `quarter`.
    pub async fn sheet(&self, quarter: Quarter) -> Result<SheetView> {
        let sheet = self
            .store()
            .sheet(quarter)
            .await?
            .ok_or_else(|| ClientError::NotFound {
                what: "attendance sheet",
                id: quarter.to_string(),
            })?;
        self.view(sheet).await
    }

    async fn view(&self, sheet: AttendanceSheet) -> Result<SheetView> {
        let mut remarks: HashMap<i64, String> = sheet
            .rows
            .iter()
            .filter_map(|r| Some((r.household_id, r.remark.clone()?)))
            .collect();
        remarks.extend(self.store().sheet_remarks(sheet.quarter).await?);
        let submissions = self.store().submissions(sheet.quarter).await?;
        Ok(SheetView {
            sheet,
            remarks,
            submissions,
        })
    }

    /// Keeps `remark` as the draft remark of the household's row on the quarter's sheet.
    pub async fn set_sheet_remark(
        &self,
        quarter: Quarter,
        household_id: i64,
        remark: &str,
    ) -> Result<()> {
        if self.identity().await?.role != Role::SecondHelper {
            return Err(ClientError::Refused(SECOND_HELPER_ONLY.into()));
        }
        let remark = one_line(remark);
        let remark = remark.as_str();
        let chars = remark.chars().count();
        if chars > bangfu_shared::report::MAX_SHEET_REMARK_CHARS {
            return Err(ClientError::Field {
                field: "remark",
                problem: crate::error::FieldProblem::RemarkTooLong(chars),
            });
        }
        let view = self.sheet(quarter).await?;
        if !view
            .sheet
            .rows
            .iter()
            .any(|r| r.household_id == household_id)
        {
            return Err(ClientError::NotFound {
                what: "row of the attendance sheet",
                id: household_id.to_string(),
            });
        }
        self.store()
            .set_sheet_remark(quarter, household_id, remark)
            .await
    }

    /// Signs the quarter's remarks, with the digest of the rows on the device (the sheet
    /// the helper reviewed), with the device key and queues the submission for the next
    /// sync. Only a second helper submits.
    pub async fn submit_sheet(&self, quarter: Quarter) -> Result<StoredSubmission> {
        self.ensure_not_revoked().await?;
        let identity = self.identity().await?;
        if identity.role != Role::SecondHelper {
            return Err(ClientError::Refused(SECOND_HELPER_ONLY.into()));
        }
        let view = self.sheet(quarter).await?;
        // The same remarks on the same rows as the submission queued or frozen would
        // only make the town office reconcile a duplicate version (a double key press,
        // a script run twice).
        let rows_sha256 = view.sheet.rows_sha256();
        if let Some(last) = view.last_live_submission()
            && last.submission.remarks == view.remarks_to_submit()
            && last.submission.rows_sha256.as_deref() == Some(rows_sha256.as_str())
        {
            return Err(ClientError::SheetUnchanged {
                version: match last.state {
                    SubmissionState::Submitted { version } => Some(version),
                    _ => None,
                },
            });
        }
        let unsigned = SheetSubmission {
            quarter,
            device_id: identity.device_id,
            remarks: view.remarks_to_submit(),
            signature: String::new(),
            submission_id: Some(uuid::Uuid::now_v7()),
            // What the helper reviewed: the rows of the copy on the device. The server
            // marks the version it freezes if its rows are not these.
            rows_sha256: Some(rows_sha256),
        };
        let signed = self.device_key()?.sign_sheet(unsigned);
        let id = self.store().queue_submission(&signed).await?;
        self.store()
            .submissions(quarter)
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| ClientError::Corrupt("the queued submission vanished".into()))
    }
}

/// A remark as one line of the printed sheet: line breaks, tabs and every other control
/// character (a remark pasted from a document carries Word's U+000B soft break, or
/// U+2028) become one space each run, and direction overrides are dropped, so
/// `sheet show` keeps a row per line and the server, which refuses them all, takes the
/// signed submission (QA s30a L5, s30c N1).
pub fn one_line(remark: &str) -> String {
    remark
        .chars()
        .filter(|c| !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
        .collect::<String>()
        .split(|c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    /// QA s30a L5: a remark keeps to one line of the sheet.
    #[test]
    fn a_remark_is_folded_to_one_line() {
        assert_eq!(
            super::one_line(" 第一行\n第二行\t制表 \r\n"),
            "第一行 第二行 制表"
        );
        assert_eq!(super::one_line("已走访 两次"), "已走访 两次");
        // Word's soft break, form feed, NEL, the Unicode separators; overrides dropped.
        assert_eq!(
            super::one_line("x\u{b}y\u{c}z\u{85}a\u{2028}b\u{202E}c"),
            "x y z a bc"
        );
    }
}
