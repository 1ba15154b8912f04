//! The second helper's quarterly attendance sheets (附件3) on the device: the sheet as
//! last pulled per quarter, the remarks being written (a draft per row, kept across
//! restarts), and signed submissions waiting for the next sync with the server's answer.
//! A signed submission is never edited (a trigger enforces it); a new one is a new row.

use std::collections::HashMap;

use bangfu_shared::report::{AttendanceSheet, Quarter, SheetSubmission};
use bangfu_shared::visit::utc_seconds;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult};
use serde::{Deserialize, Serialize};

use super::queries::{corrupt, parse_json, to_json};
use super::{Store, stmt};
use crate::error::Result;

/// Where a signed submission stands with the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SubmissionState {
    /// Signed on the device; the next sync sends it.
    Pending,
    /// The server froze it as this version.
    Submitted { version: i32 },
    /// The server refused it, with its reason.
    Rejected { reason: String },
}

/// A signed submission as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredSubmission {
    pub id: i64,
    pub submission: SheetSubmission,
    pub state: SubmissionState,
    pub created_at: DateTime<Utc>,
    /// Sent at least once (the answer may have been lost).
    pub attempted: bool,
}

/// What `sheet_submissions.remarks_json` holds: the signed content beyond quarter,
/// device and id. A submission signed with the digest of the rows reviewed is stored as
/// `{"remarks": [...], "rows_sha256": "…"}` in the same column (signed content, so it
/// falls under the same no-edit trigger); one signed without (older rows) is the bare
/// remarks array.
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
enum SignedContent {
    Remarks(Vec<(i64, String)>),
    Reviewed {
        remarks: Vec<(i64, String)>,
        rows_sha256: String,
    },
}

impl SignedContent {
    fn of(sub: &SheetSubmission) -> SignedContent {
        match &sub.rows_sha256 {
            Some(digest) => SignedContent::Reviewed {
                remarks: sub.remarks.clone(),
                rows_sha256: digest.clone(),
            },
            None => SignedContent::Remarks(sub.remarks.clone()),
        }
    }

    fn into_parts(self) -> (Vec<(i64, String)>, Option<String>) {
        match self {
            SignedContent::Reviewed {
                remarks,
                rows_sha256,
            } => (remarks, Some(rows_sha256)),
            SignedContent::Remarks(remarks) => (remarks, None),
        }
    }
}

const SUB_COLS: &str = "id, quarter, device_id, remarks_json, signature, state, version, reason, created_at, attempted_at, submission_id";

fn submission_from_row(r: &QueryResult) -> Result<StoredSubmission> {
    let quarter: String = r.try_get_by_index(1)?;
    let state: String = r.try_get_by_index(5)?;
    let version: Option<i32> = r.try_get_by_index(6)?;
    let reason: Option<String> = r.try_get_by_index(7)?;
    let created: String = r.try_get_by_index(8)?;
    let attempted: Option<String> = r.try_get_by_index(9)?;
    let (remarks, rows_sha256) =
        parse_json::<SignedContent>(&r.try_get_by_index::<String>(3)?)?.into_parts();
    let state = match (state.as_str(), version) {
        ("pending", _) => SubmissionState::Pending,
        ("submitted", Some(version)) => SubmissionState::Submitted { version },
        ("rejected", _) => SubmissionState::Rejected {
            reason: reason.unwrap_or_default(),
        },
        (s, _) => return Err(corrupt(format!("unknown submission state `{s}`"))),
    };
    Ok(StoredSubmission {
        id: r.try_get_by_index(0)?,
        submission: SheetSubmission {
            quarter: quarter.parse().map_err(corrupt)?,
            device_id: r.try_get_by_index(2)?,
            remarks,
            signature: r.try_get_by_index(4)?,
            submission_id: r
                .try_get_by_index::<Option<String>>(10)?
                .map(|id| id.parse().map_err(corrupt))
                .transpose()?,
            rows_sha256,
        },
        state,
        created_at: super::queries::parse_time(&created)?,
        attempted: attempted.is_some(),
    })
}

fn now() -> String {
    utc_seconds::format(&Utc::now())
}

impl Store {
    /// Stores the sheet as the server sent it, replacing the quarter's earlier copy.
    pub async fn save_sheet(&self, sheet: &AttendanceSheet) -> Result<()> {
        let sql = "INSERT INTO sheets (quarter, sheet_json, pulled_at) VALUES (?, ?, ?) \
                   ON CONFLICT (quarter) DO UPDATE SET sheet_json = excluded.sheet_json, pulled_at = excluded.pulled_at";
        self.db
            .execute_raw(stmt(
                sql,
                [
                    sheet.quarter.to_string().into(),
                    to_json(sheet)?.into(),
                    now().into(),
                ],
            ))
            .await?;
        Ok(())
    }

    /// Every pulled sheet, the newest quarter first.
    pub async fn sheets(&self) -> Result<Vec<AttendanceSheet>> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT sheet_json FROM sheets ORDER BY quarter DESC",
                [],
            ))
            .await?;
        rows.iter()
            .map(|r| parse_json(&r.try_get_by_index::<String>(0)?))
            .collect()
    }

    /// The pulled sheet of `quarter`, if any.
    pub async fn sheet(&self, quarter: Quarter) -> Result<Option<AttendanceSheet>> {
        let row = self
            .db
            .query_one_raw(stmt(
                "SELECT sheet_json FROM sheets WHERE quarter = ?",
                [quarter.to_string().into()],
            ))
            .await?;
        row.map(|r| parse_json(&r.try_get_by_index::<String>(0)?))
            .transpose()
    }

    /// Keeps `remark` as the draft remark of a row (an empty one clears it to "").
    pub async fn set_sheet_remark(
        &self,
        quarter: Quarter,
        household_id: i64,
        remark: &str,
    ) -> Result<()> {
        let sql = "INSERT INTO sheet_remarks (quarter, household_id, remark, updated_at) VALUES (?, ?, ?, ?) \
                   ON CONFLICT (quarter, household_id) DO UPDATE SET remark = excluded.remark, updated_at = excluded.updated_at";
        self.db
            .execute_raw(stmt(
                sql,
                [
                    quarter.to_string().into(),
                    household_id.into(),
                    remark.into(),
                    now().into(),
                ],
            ))
            .await?;
        Ok(())
    }

    /// The draft remarks of a quarter's sheet, by household.
    pub async fn sheet_remarks(&self, quarter: Quarter) -> Result<HashMap<i64, String>> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT household_id, remark FROM sheet_remarks WHERE quarter = ?",
                [quarter.to_string().into()],
            ))
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get_by_index(0)?, r.try_get_by_index(1)?)))
            .collect()
    }

    /// Stores a signed submission for the next sync; returns its local id.
    pub async fn queue_submission(&self, sub: &SheetSubmission) -> Result<i64> {
        let sql = "INSERT INTO sheet_submissions (quarter, device_id, remarks_json, signature, state, created_at, submission_id) \
                   VALUES (?, ?, ?, ?, 'pending', ?, ?) RETURNING id";
        let row = self
            .db
            .query_one_raw(stmt(
                sql,
                [
                    sub.quarter.to_string().into(),
                    sub.device_id.into(),
                    to_json(&SignedContent::of(sub))?.into(),
                    sub.signature.clone().into(),
                    now().into(),
                    sub.submission_id.map(|id| id.to_string()).into(),
                ],
            ))
            .await?
            .ok_or_else(|| corrupt("the submission was not stored"))?;
        Ok(row.try_get_by_index(0)?)
    }

    /// Submissions not sent yet, oldest first.
    pub async fn pending_submissions(&self) -> Result<Vec<StoredSubmission>> {
        let sql =
            format!("SELECT {SUB_COLS} FROM sheet_submissions WHERE state = 'pending' ORDER BY id");
        let rows = self.db.query_all_raw(stmt(&sql, [])).await?;
        rows.iter().map(submission_from_row).collect()
    }

    /// A quarter's submissions, oldest first.
    pub async fn submissions(&self, quarter: Quarter) -> Result<Vec<StoredSubmission>> {
        let sql = format!("SELECT {SUB_COLS} FROM sheet_submissions WHERE quarter = ? ORDER BY id");
        let rows = self
            .db
            .query_all_raw(stmt(&sql, [quarter.to_string().into()]))
            .await?;
        rows.iter().map(submission_from_row).collect()
    }

    /// Notes that a submission is about to be sent (before the request goes out).
    pub async fn mark_submission_attempted(&self, id: i64) -> Result<()> {
        self.db
            .execute_raw(stmt(
                "UPDATE sheet_submissions SET attempted_at = COALESCE(attempted_at, ?) WHERE id = ?",
                [now().into(), id.into()],
            ))
            .await?;
        Ok(())
    }

    /// Records the server's answer to a submission: the version it froze, or its refusal.
    pub async fn answer_submission(&self, id: i64, state: &SubmissionState) -> Result<()> {
        let (code, version, reason) = match state {
            SubmissionState::Pending => ("pending", None, None),
            SubmissionState::Submitted { version } => ("submitted", Some(*version), None),
            SubmissionState::Rejected { reason } => ("rejected", None, Some(reason.clone())),
        };
        let sql = "UPDATE sheet_submissions SET state = ?, version = ?, reason = ?, answered_at = ? WHERE id = ?";
        self.db
            .execute_raw(stmt(
                sql,
                [
                    code.into(),
                    version.into(),
                    reason.into(),
                    now().into(),
                    id.into(),
                ],
            ))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn submissions_keep_their_signed_content_and_record_the_answer() {
        let dir = std::env::temp_dir().join(format!("bangfu-sheets-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("store.sqlite3")).await.unwrap();
        let q: Quarter = "2026Q1".parse().unwrap();
        store.set_sheet_remark(q, 3, "a").await.unwrap();
        store.set_sheet_remark(q, 3, "b").await.unwrap();
        assert_eq!(
            store.sheet_remarks(q).await.unwrap(),
            HashMap::from([(3, "b".to_string())])
        );
        let sub = SheetSubmission {
            quarter: q,
            device_id: 9,
            remarks: vec![(3, "b".into())],
            signature: "ab".repeat(64),
            submission_id: Some(uuid::Uuid::now_v7()),
            rows_sha256: Some("cd".repeat(32)),
        };
        let id = store.queue_submission(&sub).await.unwrap();
        let pending = store.pending_submissions().await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].submission, sub, "the reviewed digest is kept");
        // One signed before the digest existed is the bare remarks, and reads back so.
        let older = SheetSubmission {
            rows_sha256: None,
            submission_id: None,
            ..sub.clone()
        };
        let older_id = store.queue_submission(&older).await.unwrap();
        let stored: String = store
            .db
            .query_one_raw(stmt(
                "SELECT remarks_json FROM sheet_submissions WHERE id = ?",
                [older_id.into()],
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        assert_eq!(stored, r#"[[3,"b"]]"#);
        let pending = store.pending_submissions().await.unwrap();
        assert_eq!(pending[1].submission, older);
        store
            .answer_submission(older_id, &SubmissionState::Rejected { reason: "x".into() })
            .await
            .unwrap();
        assert_eq!(pending[0].state, SubmissionState::Pending);
        // The signed content cannot change.
        let edit = store
            .db
            .execute_raw(stmt(
                "UPDATE sheet_submissions SET remarks_json = '[]' WHERE id = ?",
                [id.into()],
            ))
            .await;
        assert!(edit.is_err());
        store
            .answer_submission(id, &SubmissionState::Submitted { version: 1 })
            .await
            .unwrap();
        assert!(store.pending_submissions().await.unwrap().is_empty());
        assert_eq!(
            store.submissions(q).await.unwrap()[0].state,
            SubmissionState::Submitted { version: 1 }
        );
        store.close().await.unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }
}
