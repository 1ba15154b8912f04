//! The headless commands' report lines (not `--json`), in the helper's language.

use super::*;

// The headless commands' report lines (not `--json`): in the helper's language, as the
// interface. Kept in a block of their own.

impl Lang {
    /// `bangfu login` done.
    pub fn cli_logged_in(self, device_id: i64, key_created: bool, households: usize) -> String {
        match (self, key_created) {
            (Lang::Zh, true) => {
                format!("已登录：设备 {device_id}（新建密钥），已下载 {households} 户")
            }
            (Lang::Zh, false) => {
                format!("已登录：设备 {device_id}（沿用本机密钥），已下载 {households} 户")
            }
            (Lang::En, created) => format!(
                "logged in: device {device_id} ({} key), {households} households downloaded",
                if created { "new" } else { "existing" }
            ),
        }
    }

    /// One line of `bangfu visit list` after the visit id: the household, the time, the
    /// kind, the photos, whether it was voided or amended, and the sync state (with the
    /// refusal, if any). The English line is the one scripts have read since the start.
    pub fn cli_visit_line(self, v: &VisitLine<'_>) -> String {
        let VisitLine {
            household,
            at,
            kind,
            photos,
            voided,
            amended,
            sync,
            why,
        } = v;
        let mut sync_text = self.sync_state(*sync).to_string();
        if sync.is_refused() && !why.is_empty() {
            sync_text.push_str(if self == Lang::Zh { "：" } else { ": " });
            sync_text.push_str(why);
        }
        let state = match (self, voided, amended) {
            (Lang::Zh, true, _) => "已作废",
            (Lang::Zh, false, true) => "已更正",
            (Lang::Zh, false, false) => "      ",
            (Lang::En, true, _) => "VOID",
            (Lang::En, false, true) => "amended",
            (Lang::En, false, false) => "",
        };
        match self {
            Lang::Zh => {
                let kind = kind.map_or("", |k| self.kind(k));
                format!("户 {household:>6}  {at}  {kind:<2}  {photos} 张照片  {state}  {sync_text}")
            }
            Lang::En => {
                let kind = kind.map_or("", VisitKind::code);
                let photos = self.photo_count(*photos);
                format!(
                    "household {household:>6}  {at}  {kind:<5}  {photos}  {state:<7}  {sync_text}"
                )
            }
        }
    }

    /// A visit or amendment signed by `bangfu visit new|amend`.
    pub fn cli_signed(
        self,
        record_type: bangfu_shared::visit::RecordType,
        id: uuid::Uuid,
        seq: i64,
    ) -> String {
        use bangfu_shared::visit::RecordType as R;
        match self {
            Lang::Zh => {
                let what = match record_type {
                    R::Visit => "走访",
                    R::Amendment => "更正",
                    R::Void => "作废",
                };
                format!("已签名{what} {id}（序号 {seq}，仅本地，待同步）")
            }
            Lang::En => format!("signed {} {id} (seq {seq}, local only)", record_type.code()),
        }
    }

    /// A visit voided by `bangfu visit void`.
    pub fn cli_voided(self, visit: uuid::Uuid, record: uuid::Uuid) -> String {
        match self {
            Lang::Zh => format!("已作废 {visit}（作废记录 {record}，仅本地，待同步）"),
            Lang::En => format!("voided {visit} with record {record} (local only)"),
        }
    }

    /// Typing or pasting past a form field's limit of `limit` characters.
    pub fn field_full(self, limit: usize) -> String {
        match self {
            Lang::Zh => format!("此栏最多 {limit} 字：多出的部分未输入"),
            Lang::En => {
                format!("this field takes at most {limit} characters: the rest was not typed")
            }
        }
    }

    /// `bangfu visit amend` that changes nothing: no amendment is signed.
    pub fn cli_amend_unchanged(self) -> &'static str {
        match self {
            Lang::Zh => "没有改动：更正内容与当前记录相同，未签名更正",
            Lang::En => {
                "nothing changed: the amendment matches the visit as it stands; nothing signed"
            }
        }
    }

    /// How an amendment changed the visit's photos: `照片 2 → 3 张`.
    pub fn cli_photos_changed(self, before: usize, after: usize) -> String {
        match self {
            Lang::Zh => format!("照片 {before} → {after} 张"),
            Lang::En => format!("photos {before} → {after}"),
        }
    }

    /// A visit kept as a draft (exit code 2), and why.
    pub fn cli_kept_as_draft(self, id: uuid::Uuid, why: &str) -> String {
        match self {
            Lang::Zh => format!("未签名，保留为草稿 {id}：{why}"),
            Lang::En => format!("kept as draft {id}: {why}"),
        }
    }

    /// `bangfu drafts discard` done.
    /// `bangfu visit list` stopped at its limit with more to show.
    pub fn cli_visit_list_cut(self, limit: u64) -> String {
        let more = limit.saturating_mul(10).max(1000);
        match self {
            Lang::Zh => format!(
                "仅列出最近 {limit} 条走访，还有更早的：bangfu visit list --limit {more}（或 --household 只看一户）"
            ),
            Lang::En => format!(
                "only the latest {limit} visits are listed, there are more: bangfu visit list --limit {more} (or --household for one household)"
            ),
        }
    }

    pub fn cli_draft_discarded(self, id: uuid::Uuid) -> String {
        match self {
            Lang::Zh => format!("已丢弃草稿 {id}"),
            Lang::En => format!("draft {id} discarded"),
        }
    }

    /// `text` in parentheses of the language: full-width in Chinese.
    pub fn paren(self, text: &str) -> String {
        match self {
            Lang::Zh => format!("（{text}）"),
            Lang::En => format!("({text})"),
        }
    }

    /// `text` in parentheses after other text: full-width in Chinese, after a space in
    /// English (`… 2026-12-04 (unpaired from 2026-12-05)`).
    pub fn aside(self, text: &str) -> String {
        match self {
            Lang::Zh => format!("（{text}）"),
            Lang::En => format!(" ({text})"),
        }
    }

    /// Pairing periods as a list: `2018-01-01 至 2026-12-03、…` in Chinese.
    pub fn periods(self, periods: &[(NaiveDate, NaiveDate)]) -> String {
        match self {
            Lang::Zh => crate::error::format_periods(periods, " 至 ", "、"),
            Lang::En => crate::error::format_periods(periods, " to ", ", "),
        }
    }

    /// `bangfu verify`'s summary line.
    pub fn cli_verify(self, r: &crate::client::VerifyReport) -> String {
        let (records, problems) = (r.records, r.problems.len());
        // SQLite answers `ok`, or its own English findings.
        let integrity = match (self, r.integrity.as_str()) {
            (Lang::Zh, "ok") => "正常".to_string(),
            (Lang::Zh, other) => format!("异常（{other}）"),
            (Lang::En, other) => other.to_string(),
        };
        let others = r.other_devices_records;
        match self {
            Lang::Zh if others > 0 => format!(
                "数据库检查：{integrity}；本机记录 {records} 条已检查（另有其他终端的记录 {others} \
                 条，由服务器核验，需在各自终端上检查）；问题 {problems} 个"
            ),
            Lang::Zh => {
                format!("数据库检查：{integrity}；本机记录 {records} 条已检查；问题 {problems} 个")
            }
            Lang::En if others > 0 => format!(
                "integrity: {integrity}; {records} records of this device checked ({others} \
                 records of other devices, verified by the server, are checked on their own \
                 devices); {problems} problems"
            ),
            Lang::En => format!(
                "integrity: {integrity}; {records} records of this device checked; {problems} \
                 problems"
            ),
        }
    }

    /// `bangfu login` without `--password-stdin`.
    pub fn cli_password_stdin(self) -> &'static str {
        match self {
            Lang::Zh => "请加 --password-stdin，并从标准输入写入密码（密码不能写在命令行上）",
            Lang::En => "pass --password-stdin and write the password to standard input",
        }
    }

    /// A line of standard input that `login` or `password` reads is missing or empty:
    /// `what` is `current`, `new` or the login's password.
    /// `login --enroll-code -` with no code on standard input's first line.
    pub fn cli_enroll_code_line_missing(self) -> &'static str {
        match self {
            Lang::Zh => {
                "标准输入第一行没有激活码：用 --enroll-code - 时，请写两行，第一行激活码，第二行密码"
            }
            Lang::En => {
                "no enrollment code on the first line of standard input: with --enroll-code -, write two lines, the code then the password"
            }
        }
    }

    pub fn cli_password_line_missing(self, what: &str) -> String {
        let zh = match what {
            "current" => "第一行（当前密码）",
            "new" => "第二行（新密码）",
            _ => "密码",
        };
        match self {
            Lang::Zh => match what {
                "current" | "new" => {
                    format!("标准输入缺少{zh}：请写两行，第一行当前密码，第二行新密码；密码未修改")
                }
                _ => "标准输入没有密码（读到空行、只有空格，或文件结束）：请从标准输入写入密码"
                    .into(),
            },
            Lang::En => format!("standard input holds no {what} password (an empty line or none)"),
        }
    }

    /// `bangfu password` given the current password as the new one.
    pub fn cli_password_unchanged(self) -> &'static str {
        match self {
            Lang::Zh => "新密码与当前密码相同，密码未修改（其他设备的登录不受影响）",
            Lang::En => "the new password is the current one: nothing was changed",
        }
    }

    /// The server is reached over plain HTTP off this device: the password and the
    /// session cross the network unencrypted (accepted for a village LAN, but said).
    pub fn cli_sends_in_clear(self, server: &str) -> String {
        match self {
            Lang::Zh => format!(
                "⚠ {server} 未加密（http://）：密码和登录凭据以明文传输。仅在可信的内部网络使用，否则请改用 https://"
            ),
            Lang::En => format!(
                "⚠ {server} is not encrypted (http://): the password and session travel in clear. Use it only on a trusted network, otherwise use https://"
            ),
        }
    }

    /// `--witness` without `--witness-signature` where a mark is needed; `changed`: an
    /// amendment naming a witness who has not signed this visit.
    pub fn cli_witness_mark_missing(self, changed: bool) -> String {
        let (text, more) = match self {
            Lang::Zh => (
                "--witness 还须 --witness-signature 文件：见证人签字的图片（PNG 或 JPEG），见证人代农户签字",
                "（此见证人尚未在此走访上签字）",
            ),
            Lang::En => (
                "--witness needs --witness-signature FILE: an image (PNG or JPEG) of the witness's signature; the witness signs for the household",
                " (this witness has not signed this visit yet)",
            ),
        };
        if changed {
            format!("{text}{more}")
        } else {
            text.to_string()
        }
    }

    /// `--witness-signature` without `--witness` where no witness of the visit can sign:
    /// a new visit (name the witness), or an amendment of one without a witness.
    pub fn cli_witness_signature_alone(self, fresh: bool) -> &'static str {
        match (self, fresh) {
            (Lang::Zh, true) => {
                "--witness-signature 须与 --witness、--witness-role、--witness-reason 一起使用：写明见证人"
            }
            (Lang::Zh, false) => {
                "此走访没有见证人：单独的 --witness-signature 只能为原见证人补签；请同时写明 --witness、--witness-role、--witness-reason"
            }
            (Lang::En, true) => {
                "--witness-signature goes with --witness, --witness-role and --witness-reason: name the witness"
            }
            (Lang::En, false) => {
                "this visit has no witness: --witness-signature alone adds the mark of the visit's own witness; name one with --witness, --witness-role and --witness-reason"
            }
        }
    }

    /// Before the list, until the first sync has brought the account's history.
    pub fn cli_history_not_pulled(self) -> &'static str {
        match self {
            Lang::Zh => {
                "⚠ 尚未同步：本机还没有服务器上的走访记录，运行 bangfu sync 取回（上次走访、逾期以同步后为准）"
            }
            Lang::En => {
                "⚠ not synced yet: the visits on the server are not on this device; run bangfu sync (last visits and overdue are known after it)"
            }
        }
    }

    /// Where to see the visits that do not count, after `bangfu sync`'s warning.
    pub fn cli_see_visit_list(self) -> &'static str {
        match self {
            Lang::Zh => "（bangfu visit list 查看）",
            Lang::En => " (bangfu visit list)",
        }
    }

    /// A draft ready to sign, in `bangfu drafts`.
    pub fn cli_draft_ready(self) -> &'static str {
        match self {
            Lang::Zh => "可签名",
            Lang::En => "ready",
        }
    }

    /// The original English words of an error, on the line under the message:
    /// for whoever the helper calls (and scripts that look for them).
    pub fn cli_error_detail(self, original: &str) -> String {
        match self {
            Lang::Zh => format!("（详情：{original}）"),
            Lang::En => format!("(detail: {original})"),
        }
    }
}

/// What [`Lang::cli_visit_line`] shows of a visit.
pub struct VisitLine<'a> {
    pub household: i64,
    /// The visit's time as the helper reads it (China time).
    pub at: &'a str,
    pub kind: Option<VisitKind>,
    pub photos: usize,
    pub voided: bool,
    pub amended: bool,
    pub sync: SyncState,
    /// Why it was refused, in this language (empty when not refused or unknown).
    pub why: &'a str,
}
