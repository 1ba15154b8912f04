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
    /// The family changes this record proposed that the town office has decided, with
    /// its note: the helper learns a rejection and why, instead of proposing it again at
    /// every visit (QA s29b J4). Absent while none is decided, and from older servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub family_changes: Vec<DecidedChange>,
}

/// A family change a helper proposed, as the town office decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecidedChange {
    /// The change's kind code (`birth`, `death`, … as [`crate::visit::FamilyChangeKind`]).
    pub kind: String,
    pub name: String,
    /// `accepted`, `rejected` or `withdrawn` (its visit was voided or corrected).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl DecidedChange {
    /// `家庭变化「死亡：田老汉」未通过：户籍无此人，请核实`.
    pub fn text_zh(&self) -> String {
        let kind = self
            .kind
            .parse::<crate::visit::FamilyChangeKind>()
            .map_or(self.kind.as_str(), |k| k.label_zh());
        let status = match self.status.as_str() {
            "accepted" => "已采纳",
            "rejected" => "未通过",
            "withdrawn" => "已撤回",
            other => other,
        };
        // A withdrawn change was decided by no one: a note stored with one by an older
        // server came from an office's refused click, not a reason (QA s30a L1).
        let note = self
            .note
            .as_deref()
            .filter(|_| self.status != "withdrawn")
            .filter(|n| !n.trim().is_empty())
            .map(|n| format!("：{}", n.trim()))
            .unwrap_or_default();
        format!("家庭变化「{kind}：{}」{status}{note}", self.name)
    }
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
    /// For a flagged visit (`entered_late`, `photo_reused`): its household and date, so
    /// the office finds it. Absent for the device's own anomalies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit_date: Option<chrono::NaiveDate>,
}

impl DeviceAnomaly {
    /// The kind as the town office reads it (the code itself when this version does not
    /// know it, so a newer server's kind is never dropped).
    pub fn kind_zh(&self) -> &str {
        match self.kind.as_str() {
            "gap" => "记录缺失",
            "refused" => "记录被拒收",
            "chain_break" => "设备记录链断裂",
            "seq_reused" => "设备序号重复",
            "clock_ahead" => "设备时间超前",
            "clock_behind" | "clock_went_back" => "设备时间倒退",
            "entered_late" => "补录",
            "photo_reused" => "照片重复使用",
            "voided_with_changes" => "已采纳家庭变化的走访被作废",
            other => other,
        }
    }

    /// The device's sequence numbers concerned: `5`, or `5~7` for a gap of several.
    pub fn seq_text(&self) -> String {
        match self.seq_to.filter(|&to| to != self.seq) {
            Some(to) => format!("{}~{to}", self.seq),
            None => self.seq.to_string(),
        }
    }

    /// What the anomaly means, in Chinese, for the town office's printed list: built
    /// from the kind and numbers, with the times (China time) or the refusal's reason
    /// code that the English `detail` carries, so no English reaches the sheet.
    pub fn detail_zh(&self) -> String {
        let seq = self.seq;
        let times = china_times(&self.detail);
        let at = |i: usize| times.get(i).copied().unwrap_or("");
        match self.kind.as_str() {
            "gap" => {
                let missing = match self.seq_to.filter(|&to| to != seq) {
                    Some(to) => format!(
                        "该设备第{seq}~{to}条记录（共{}条）尚未收到",
                        i128::from(to) - i128::from(seq) + 1
                    ),
                    None => format!("该设备第{seq}条记录尚未收到"),
                };
                match refused_count(&self.detail) {
                    0 => format!("{missing}：可能是设备尚未同步，或记录已被删除"),
                    n => format!("{missing}，其中{n}条被服务器拒收（见“记录被拒收”）"),
                }
            }
            // A device the office revoked (reported lost) still sending: said as such,
            // the lost phone being in use (QA s32d X8).
            "refused" if self.detail.contains(" was revoked (reported lost) at ") => {
                let when = self
                    .detail
                    .split_once(" was revoked (reported lost) at ")
                    .and_then(|(_, rest)| rest.get(..16))
                    .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M").ok())
                    .map(|t| {
                        (t + chrono::Duration::hours(8))
                            .format("%Y-%m-%d %H:%M")
                            .to_string()
                    })
                    .unwrap_or_default();
                format!(
                    "该设备第{seq}条记录被服务器拒收：该设备已于{when}停用（曾报失），仍在签名上传，请核查该手机下落"
                )
            }
            "refused" => {
                let code = refusal_code(&self.detail);
                format!(
                    "该设备第{seq}条记录被服务器拒收：{}",
                    code.map_or("原因见接口返回的 detail", refusal_reason_zh)
                )
            }
            "chain_break" => format!(
                "该设备第{seq}条记录与相邻记录的摘要链不符：其间的记录可能被删除或改动，请核查"
            ),
            "seq_reused" => format!("该设备有多条记录使用第{seq}条的序号：请核查该设备"),
            "clock_ahead" => format!(
                "第{seq}条记录的设备时间{}超前于服务器收到时的时间{}：该走访经更正前不计入考勤",
                at(0),
                at(1)
            ),
            "clock_behind" => format!(
                "第{seq}条记录的设备时间{}早于该设备登记时间{}：设备时钟曾被调回，该走访经更正前不计入考勤",
                at(0),
                at(1)
            ),
            "clock_went_back" => format!(
                "第{seq}条记录的签名时间{}早于该设备上一条记录的{}：设备时钟曾被调回，请核查",
                at(0),
                at(1)
            ),
            "entered_late" => format!(
                "第{seq}条记录（{}的走访）在走访多日后才录入：补录本身不影响是否计入考勤，供核查",
                self.visit_date.map(|d| d.to_string()).unwrap_or_default()
            ),
            "photo_reused" => format!(
                "第{seq}条记录（{}的走访）的照片或签字图片已用于其他走访：不计入考勤，供核查",
                self.visit_date.map(|d| d.to_string()).unwrap_or_default()
            ),
            // QA s33d S9: the change accepted stays in the household's members.
            "voided_with_changes" => {
                let change = self.detail.split('`').nth(1).unwrap_or_default();
                format!(
                    "第{seq}条记录（{}的走访）已被帮扶责任人作废，但其家庭变化（{change}）已由乡镇采纳，家庭成员仍按此变化：请核实，需要时更正家庭成员",
                    self.visit_date.map(|d| d.to_string()).unwrap_or_default()
                )
            }
            _ => self.detail.clone(),
        }
    }
}

/// The China times (`YYYY-MM-DD HH:MM:SS`) an anomaly's English detail names, in order.
fn china_times(detail: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = detail.split(" (UTC+8)").collect();
    parts.pop();
    parts
        .into_iter()
        .filter_map(|p| p.get(p.len().saturating_sub(19)..))
        .filter(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").is_ok())
        .collect()
}

/// How many of a gap's numbers the server refused, as its detail says.
fn refused_count(detail: &str) -> usize {
    if detail.ends_with("the server refused it (see `refused`)") {
        return 1;
    }
    detail
        .rsplit_once("the server refused ")
        .and_then(|(_, rest)| rest.split_once(' '))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0)
}

/// The reason code in a `refused` anomaly's detail (`… was refused (code): …`).
fn refusal_code(detail: &str) -> Option<&str> {
    let rest = detail.split_once(" was refused (")?.1;
    rest.split_once("):").map(|(code, _)| code)
}

/// Why a record was refused, by its [`reason_code`], in the town office's words (the
/// code itself when this version does not know it).
pub fn refusal_reason_zh(code: &str) -> &str {
    match code {
        reason_code::INVALID_RECORD => "记录格式不合规",
        reason_code::DEVICE_NOT_REGISTERED => "签名设备未登记在该账号下或已停用",
        reason_code::AUTHOR_NOT_HELPER => "记录的帮扶责任人不是上传它的账号",
        reason_code::BAD_SIGNATURE_ENCODING => "签名已损坏",
        reason_code::SIGNATURE_MISMATCH => "签名不符：记录在签名后被改动，或由其他密钥签名",
        reason_code::HOUSEHOLD_NEVER_PAIRED => "该帮扶责任人从未与该户结对",
        reason_code::TARGET_NOT_A_VISIT => "更正或作废的对象不是原始走访",
        reason_code::TARGET_OTHER_HELPER => "更正或作废了他人录入的走访",
        reason_code::TARGET_OTHER_HOUSEHOLD => "更正或作废的户与原走访不同",
        reason_code::CONFLICT => "服务器已有同一编号的另一条记录",
        reason_code::NOT_PROCESSED => "服务器未处理",
        other => other,
    }
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
    /// For a change a visit's correction proposes in the place of one the office
    /// accepted on that visit (a misspelt baby's name corrected): the accepted change.
    /// Accepting this one renames the member (or, for a departure, gives the wrongly
    /// removed member back) instead of adding a second person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<ReplacedChange>,
}

/// The accepted family change a correction's change takes the place of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplacedChange {
    pub id: i64,
    pub name: String,
}

/// The town office's decision on a field change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldChangeDecision {
    pub accept: bool,
    pub note: Option<String>,
    /// When accepting a change that takes the head of household out (a death, a move or
    /// a marriage out): the member who heads the household from then on. The household
    /// is known by its head's name, so it cannot be left under the name of someone gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_head: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QA s30a L1: a withdrawn change shows no note, whatever an older server kept.
    /// QA s32d X8: a revoked device's refusal is said as such in the office's words,
    /// at China time.
    #[test]
    fn a_revoked_devices_refusal_says_it_was_revoked() {
        let a = DeviceAnomaly {
            device_id: 7,
            helper_id: 1,
            kind: "refused".into(),
            seq: 4,
            seq_to: None,
            detail: "record 4 of this device was refused (device_not_registered): device 7 was \
                     revoked (reported lost) at 2026-12-06 04:30 UTC: what it signs is refused"
                .into(),
            detected_at: chrono::Utc::now(),
            household_id: None,
            visit_date: None,
        };
        assert_eq!(
            a.detail_zh(),
            "该设备第4条记录被服务器拒收：该设备已于2026-12-06 12:30停用（曾报失），仍在签名上传，请核查该手机下落"
        );
    }

    #[test]
    fn a_withdrawn_change_carries_no_office_note() {
        let mut c = DecidedChange {
            kind: "birth".into(),
            name: "张小宝".into(),
            status: "rejected".into(),
            note: Some("出生证明未见".into()),
        };
        assert_eq!(c.text_zh(), "家庭变化「出生：张小宝」未通过：出生证明未见");
        c.status = "withdrawn".into();
        assert_eq!(c.text_zh(), "家庭变化「出生：张小宝」已撤回");
    }

    fn anomaly(kind: &str, seq: i64, seq_to: Option<i64>, detail: &str) -> DeviceAnomaly {
        DeviceAnomaly {
            device_id: 1,
            helper_id: 1,
            kind: kind.into(),
            seq,
            seq_to,
            detail: detail.into(),
            detected_at: Utc::now(),
            household_id: None,
            visit_date: None,
        }
    }

    /// The office's printed list says each anomaly in Chinese, keeping what the
    /// server's English detail told: the numbers, the times, the refusal's reason.
    #[test]
    fn anomalies_are_said_in_chinese_with_their_numbers_times_and_reasons() {
        let gap = anomaly(
            "gap",
            2,
            Some(4),
            "records 2 to 4 of this device (3) have not arrived: the server refused 2 of them (see `refused`)",
        );
        assert_eq!(gap.seq_text(), "2~4");
        assert_eq!(
            gap.detail_zh(),
            "该设备第2~4条记录（共3条）尚未收到，其中2条被服务器拒收（见“记录被拒收”）"
        );
        let one = anomaly(
            "gap",
            9,
            Some(9),
            "record 9 of this device has not arrived: the server refused it (see `refused`)",
        );
        assert_eq!(one.seq_text(), "9");
        assert!(
            one.detail_zh().contains("其中1条被服务器拒收"),
            "{}",
            one.detail_zh()
        );
        let refused = anomaly(
            "refused",
            3,
            None,
            "record 3 of this device was refused (signature_mismatch): the signature does not verify",
        );
        assert_eq!(refused.kind_zh(), "记录被拒收");
        assert!(
            refused
                .detail_zh()
                .contains("第3条记录被服务器拒收：签名不符"),
            "{}",
            refused.detail_zh()
        );
        let ahead = anomaly(
            "clock_ahead",
            5,
            None,
            "device time 2026-12-06 10:00:00 (UTC+8) is ahead of the server's 2026-12-05 09:00:00 (UTC+8)",
        );
        assert_eq!(
            ahead.detail_zh(),
            "第5条记录的设备时间2026-12-06 10:00:00超前于服务器收到时的时间2026-12-05 09:00:00：该走访经更正前不计入考勤"
        );
        let unknown = anomaly("from_a_newer_server", 1, None, "as the server says");
        assert_eq!(unknown.kind_zh(), "from_a_newer_server");
        assert_eq!(unknown.detail_zh(), "as the server says");
        assert!(!format!("{}{}", gap.detail_zh(), ahead.detail_zh()).contains("device"));
    }
}
