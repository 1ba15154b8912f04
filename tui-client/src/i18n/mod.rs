//! Interface texts: Chinese by default (helpers are Chinese cadres), English with
//! `--lang en`. Plain data, shared by the terminal UI and the headless commands.

use bangfu_shared::VisitKind;
use bangfu_shared::visit::{FamilyChangeKind, Occasion, PolicyArea};
use chrono::{Datelike, NaiveDate};

use crate::flags::Flag;
use crate::store::SyncState;
use crate::sync::{SyncPhase, SyncProgress, SyncReport};

mod after_sync;
mod cli;
mod errors;
mod marks;
mod problems;
mod refusals;
mod sheet;
#[cfg(test)]
mod tests;
mod texts;

pub use cli::VisitLine;
use errors::*;
use problems::*;
pub use sheet::SheetTexts;
use sheet::*;
pub use texts::Texts;
use texts::{EN, ZH};

/// The interface language.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "zh" | "zh-cn" | "cn" | "中文" => Ok(Lang::Zh),
            "en" | "english" => Ok(Lang::En),
            other => Err(format!("unknown language `{other}` (zh, en)")),
        }
    }
}

/// A free text refused ([`bangfu_shared::visit::TextError`]), in Chinese, naming the
/// field as the form does.
fn text_problem_zh(t: &bangfu_shared::visit::TextError) -> String {
    use bangfu_shared::visit::TextError as T;
    let field = |what: &str| match what {
        "notes" => "备注".to_string(),
        "problems" => "发现的问题".to_string(),
        "help" => "帮（帮助事项）".to_string(),
        "support" => "扶（扶持措施）".to_string(),
        "deliveries" => "送（物品名称）".to_string(),
        "family_changes" => "家庭变化（姓名）".to_string(),
        "witness" => "见证人信息".to_string(),
        "reason" => "原因".to_string(),
        other => other.to_string(),
    };
    match t {
        T::TooLong { what, count, max } => {
            format!("{}过长（{count} 字，上限 {max} 字）", field(what))
        }
        T::ControlCharacter { what, code } => {
            format!(
                "{}含有不可见的控制字符 U+{code:04X}，请删去后再保存",
                field(what)
            )
        }
    }
}

impl Lang {
    /// The texts of this language.
    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }

    /// A visit kind's name.
    pub fn kind(self, k: VisitKind) -> &'static str {
        match (self, k) {
            (Lang::Zh, k) => k.label_zh(),
            (Lang::En, VisitKind::Home) => "home visit",
            (Lang::En, VisitKind::Phone) => "phone call",
        }
    }

    /// A policy area's name.
    /// A visit kind in a narrow list's column: "call 03-31" rather than "phone call".
    pub fn kind_short(self, k: VisitKind) -> &'static str {
        match (self, k) {
            (Lang::Zh, k) => k.label_zh(),
            (Lang::En, VisitKind::Home) => "home",
            (Lang::En, VisitKind::Phone) => "call",
        }
    }

    pub fn policy(self, p: PolicyArea) -> &'static str {
        if self == Lang::Zh {
            p.label_zh()
        } else {
            p.label_en()
        }
    }

    /// A policy's name where the whole names do not fit a line (the form at 80
    /// columns in English); the Chinese names are short already.
    pub fn policy_short(self, p: PolicyArea) -> &'static str {
        match (self, p) {
            (Lang::Zh, p) => p.label_zh(),
            (Lang::En, PolicyArea::Education) => "edu",
            (Lang::En, PolicyArea::Medical) => "med",
            (Lang::En, PolicyArea::Housing) => "house",
            (Lang::En, PolicyArea::Finance) => "fin",
            (Lang::En, PolicyArea::SocialSecurity) => "soc",
        }
    }

    /// An occasion's name.
    pub fn occasion(self, o: Occasion) -> &'static str {
        if self == Lang::Zh {
            o.label_zh()
        } else {
            o.label_en()
        }
    }

    /// The warning for a new visit dated in a quarter that has already ended
    /// ([`crate::client::closed_quarter`]).
    pub fn closed_quarter(self, day: NaiveDate, q: bangfu_shared::report::Quarter) -> String {
        match self {
            Lang::Zh => format!(
                "⚠ 走访日期 {day} 在已结束的{}年第{}季度，请核对日期",
                q.year, q.q
            ),
            Lang::En => format!(
                "⚠ the visit date {day} is in {q}, a quarter that has ended: check the date"
            ),
        }
    }

    /// The warning for an image already on another visit (a photo, or a signature),
    /// naming that visit's MM-DD.
    pub fn reused(self, r: &crate::client::ReusedImage) -> String {
        let t = self.texts();
        let day = r.at.with_timezone(&crate::config::local_offset());
        let text = if r.signature {
            t.signature_reused
        } else {
            t.photo_reused
        };
        text.replace("{}", &day.format("%m-%d").to_string())
    }

    /// An error in the helper's language. English is the errors' own text; Chinese puts
    /// the reason first and any long path last, so a narrow status line keeps the reason.
    pub fn error(self, e: &crate::error::ClientError) -> String {
        use crate::error::ClientError as E;
        use bangfu_shared::visit::VisitError;
        let t = self.texts();
        match e {
            E::Visit(VisitError::MissingHouseholdSignature) => {
                t.needs_household_signature.to_string()
            }
            E::ResignNeeded(fields) => {
                let names: Vec<&str> = fields.iter().map(|f| self.field_name(f)).collect();
                let sep = if self == Lang::Zh { "、" } else { ", " };
                format!(
                    "{}{}{}",
                    t.resign_needed,
                    names.join(sep),
                    t.resign_needed_end
                )
            }
            E::SignerChanged => t.signer_changed.to_string(),
            E::FutureTime { at } => {
                format!("{}{}", t.future_time, crate::draft::format_local(*at))
            }
            // The only reason a field can miss is a void's (QA s23a F10: "Reason for
            // amendment: a void needs a reason").
            E::Field {
                problem: crate::error::FieldProblem::VoidReasonMissing,
                ..
            } if self == Lang::En => format!("{}: a void needs a reason", t.void_reason),
            // A field by its label on the form, not its code (QA s22b F7).
            E::Field { field, problem } if self == Lang::En => {
                let name = self.field_name(field);
                let name = if name.is_empty() { *field } else { name };
                format!("{name}: {problem}")
            }
            other if self == Lang::En => other.to_string(),
            // A full phone, said so: the raw SQLite or OS words gave a helper nothing to
            // act on (QA s33a S5).
            E::Store(err) if disk_full(&err.to_string()) => DISK_FULL_ZH.to_string(),
            E::Store(err) => format!("本机数据库出错：{err}"),
            E::Io { error, .. } if error.kind() == std::io::ErrorKind::StorageFull => {
                DISK_FULL_ZH.to_string()
            }
            E::Io { path, error } => {
                let what = match error.kind() {
                    std::io::ErrorKind::NotFound => "找不到文件".to_string(),
                    std::io::ErrorKind::PermissionDenied => "没有读写权限".to_string(),
                    _ => format!("读写文件失败（{}）", short_detail(&error.to_string())),
                };
                format!("{what}：{}", path.display())
            }
            // The decoder's English says nothing a helper can act on: what to choose does.
            E::NotAnImage { path, .. } => {
                format!(
                    "不是可读的图片（请选 JPEG 或 PNG 照片），未添加：{}",
                    path.display()
                )
            }
            E::PhotoTooSmall {
                path,
                width,
                height,
                min,
            } => format!(
                "照片太小（{width}×{height}，每边至少 {min} 像素），未添加：{}",
                path.display()
            ),
            E::PhotoDamaged { path, .. } => format!(
                "照片文件不完整或已损坏（可能仍在复制中），未添加：{}",
                path.display()
            ),
            E::PhotoTooManyPixels {
                path,
                width,
                height,
                max_pixels,
            } => format!(
                "照片 {width}×{height} 像素，太大（上限 {} 万像素），未添加：{}",
                max_pixels / 10_000,
                path.display()
            ),
            E::PhotoTooLarge {
                path,
                size_mb,
                limit_mb,
            } => format!(
                "照片 {size_mb:.1} MB，超过 {limit_mb:.0} MB 上限，未添加：{}",
                path.display()
            ),
            E::Visit(v) => self.visit_error(v),
            // The only reason a field can miss is a void's.
            E::Field {
                problem: crate::error::FieldProblem::VoidReasonMissing,
                ..
            } => format!("{}：作废须填写原因", t.void_reason),
            E::Field { field, problem } => {
                let name = self.field_name(field);
                let name = if name.is_empty() { *field } else { name };
                format!("{name}：{}", self.field_problem(problem))
            }
            E::ImageMissing(hash) => {
                format!(
                    "本机图片 {}… 缺失或已损坏（与签名时不符）：请去掉它重新添加照片（命令行更正用 --replace-photos），或作废此次走访",
                    &hash[..12.min(hash.len())]
                )
            }
            E::Server {
                status,
                code,
                message,
            } => server_error_zh(*status, code, message),
            E::Network(m) => network_error_zh(m),
            E::NotLoggedIn => "本机尚未登录：请先联网登录（bangfu login，或在界面中登录）".into(),
            E::NotAHelper => "此账号不是帮扶责任人账号，不能记录走访".into(),
            E::SheetUnchanged { version: Some(v) } => format!("与第{v}版相同，无需重新提交"),
            E::SheetUnchanged { version: None } => {
                "与已签名待同步的提交相同，无需重新提交".into()
            }
            E::SyncRunning => "本机已有一个同步正在进行（另一个 bangfu sync 或界面中的同步），请等它结束".into(),
            E::NotFound { what, id } => {
                let what = match *what {
                    "household" => "帮扶户",
                    "visit" => "走访记录",
                    "draft" => "草稿",
                    "attendance sheet" => "考勤表（请先联网同步取回）",
                    "row of the attendance sheet" => "考勤表中的这一户",
                    other => other,
                };
                format!("本机没有此{what}：{id}")
            }
            E::Refused(m) if m == crate::sheets::SECOND_HELPER_ONLY => {
                "考勤表由第二帮扶责任人填报和报送，本账号无需填报".into()
            }
            E::Refused(m) if m == crate::client::HELPERS_ONLY => {
                "本终端供第一、第二帮扶责任人录入走访和填报考勤表；扶贫办和管理员账号请使用服务器的报表和审核功能".into()
            }
            E::AmendmentReasonMissing => format!("{}：更正须填写原因（为何更正）", t.reason),
            E::Refused(m) if m.ends_with("was voided and cannot be amended") => {
                "此走访已作废，不能更正".into()
            }
            E::Refused(m) if m.ends_with("is already void") => "此走访已作废".into(),
            E::Refused(m) if m.contains("to another household") => {
                "更正不能把走访改到另一户：请作废后在该户重新录入".into()
            }
            E::Refused(m) => format!("不允许：{}", short_detail(m)),
            E::OutsidePairing {
                head_name,
                day,
                periods,
                ..
            } => format!(
                "{head_name}户已结束结对：走访日期 {day} 不在您的结对期（{}）内，不能签名：请更正走访日期",
                crate::error::format_periods(periods, " 至 ", "、")
            ),
            E::NotPairedOn {
                head_name,
                day,
                periods,
                ..
            } => format!(
                "走访日期 {day} 不在您与{head_name}户的结对期（{}）内，不能签名：请更正走访日期",
                crate::error::format_open_periods(periods, Lang::Zh)
            ),
            E::Key { path, reason } => format!("设备密钥出错（{reason}）：{}", path.display()),
            E::Corrupt(m) => format!("本机数据无法读取：{m}"),
            E::NewerStore { found, known } => format!(
                "本机数据由更新版本的 bangfu 写入（第{found}版，本程序只认到第{known}版）：请升级本程序；数据未改动"
            ),
            E::SessionExpired => "服务器不再接受本机的登录：请重新登录（本机数据不会丢失）".into(),
            E::DeviceRevoked => REVOKED_ZH.into(),
            E::DeviceForked => FORKED_ZH.into(),
        }
    }

    fn visit_error(self, e: &bangfu_shared::visit::VisitError) -> String {
        use bangfu_shared::visit::VisitError as V;
        match e {
            V::MissingHouseholdSignature => self.texts().needs_household_signature.to_string(),
            V::BadAmount(s) => format!("“{s}”不是金额（元），如 50 或 12.50"),
            V::UnknownCode { kind, value, known } => {
                use bangfu_shared::visit::{FamilyChangeKind, Occasion, PolicyArea};
                // The choices in the words the helper types (出生, 中秋), not the codes.
                let (kind, labels): (&str, Vec<&str>) = match *kind {
                    "occasion" => ("节日", Occasion::ALL.iter().map(|o| o.label_zh()).collect()),
                    "family change" => (
                        "家庭变化类型",
                        FamilyChangeKind::ALL.iter().map(|k| k.label_zh()).collect(),
                    ),
                    "policy" => (
                        "政策",
                        PolicyArea::ALL.iter().map(|p| p.label_zh()).collect(),
                    ),
                    other => (other, vec![known.as_str()]),
                };
                format!("不认识的{kind}“{value}”（可用：{}）", labels.join("、"))
            }
            V::Invalid(m) => match list_bound_zh(m) {
                Some(zh) => zh,
                None => format!("记录不合规：{m}"),
            },
            V::Text(t) => text_problem_zh(t),
            V::NotCanonical(m) => format!("记录无法规范化：{m}"),
            V::OutOfYears {
                what,
                china,
                first,
                last,
            } => {
                let what = if *what == "the visit time" {
                    "走访时间"
                } else {
                    "签名时间"
                };
                format!("{what} {china} 不在{first}年至{last}年之间，请更正")
            }
        }
    }

    fn field_problem(self, p: &crate::error::FieldProblem) -> String {
        use crate::error::FieldProblem as P;
        match p {
            P::NotATime(s) => format!("“{s}”不是时间，请写成 2026-03-01 08:30"),
            P::DeliveryFormat(s) => {
                format!("“{s}”格式不对，请写成 物品:金额 或 物品:金额:节日，如 月饼:88:中秋")
            }
            P::ItemMissing(s) => format!("“{s}”缺少物品名称"),
            P::FamilyFormat(s) => format!("“{s}”格式不对，请写成 类型:姓名，如 出生:张小宝"),
            P::NameMissing(s) => format!("“{s}”缺少姓名"),
            P::Rule(v) => self.visit_error(v),
            P::VoidReasonMissing => "作废须填写原因".into(),
            P::RemarkTooLong(n) => format!(
                "备注有 {n} 字，最多 {} 字（须印在考勤表一行内）",
                bangfu_shared::report::MAX_SHEET_REMARK_CHARS
            ),
            P::NotAUrl(s) => format!("“{s}”不是 http:// 网址"),
        }
    }

    /// A form field's label by its code (as errors name fields), or the code itself.
    pub fn field_name(self, code: &str) -> &'static str {
        let t = self.texts();
        match code {
            "kind" => t.kind,
            "at" => t.time,
            "deliveries" => t.deliveries,
            "family_changes" => t.family_changes,
            "reason" => t.reason,
            "policies" => t.policies,
            "photos" => t.photos,
            "server" => t.server,
            "remark" => self.sheet().remark,
            _ => "",
        }
    }

    /// A family change's name.
    pub fn family(self, f: FamilyChangeKind) -> &'static str {
        if self == Lang::Zh {
            f.label_zh()
        } else {
            f.label_en()
        }
    }

    /// A record's sync state.
    pub fn sync_state(self, s: SyncState) -> &'static str {
        let t = self.texts();
        match s {
            SyncState::Local => t.sync_local,
            SyncState::Uploading => t.sync_uploading,
            SyncState::AwaitingPhotos => t.sync_awaiting,
            SyncState::Synced => t.sync_done,
            SyncState::Rejected => t.sync_rejected,
            SyncState::Conflict => t.sync_conflict,
        }
    }

    /// A server flag in a few words, for a list's state column.
    pub fn flag_short(self, f: &Flag) -> String {
        let zh = self == Lang::Zh;
        match (f, zh) {
            (Flag::ClockAhead, true) => "时钟超前·不计入".into(),
            (Flag::ClockBehind, true) => "时钟拨慢·不计入".into(),
            (Flag::DatedAfterSigning, true) => "时间晚于签名·不计入".into(),
            (Flag::EnteredLate, true) => "补录".into(),
            (Flag::ChainBreak, true) => "记录链断裂".into(),
            (Flag::SeqReused, true) => "序号重复".into(),
            (Flag::ClockWentBack, true) => "时间倒退".into(),
            (Flag::PhotoReused, true) => "照片或签字已用于其他走访·不计入".into(),
            (Flag::MissingEvidence, true) => "照片或签字不足·不计入".into(),
            (Flag::OutsidePairing, true) => "走访时未结对·不计入".into(),
            (Flag::ClockAhead, false) => "clock ahead: not counted".into(),
            (Flag::ClockBehind, false) => "clock set back: not counted".into(),
            (Flag::DatedAfterSigning, false) => "dated after signing: not counted".into(),
            (Flag::EnteredLate, false) => "entered late".into(),
            (Flag::ChainBreak, false) => "chain break".into(),
            (Flag::SeqReused, false) => "sequence reused".into(),
            (Flag::ClockWentBack, false) => "clock went back".into(),
            (Flag::PhotoReused, false) => {
                "photo or signature used by another visit: not counted".into()
            }
            (Flag::MissingEvidence, false) => "too few photos or signatures: not counted".into(),
            (Flag::OutsidePairing, false) => "not paired on that day: not counted".into(),
            (Flag::Other(code), _) => code.clone(),
        }
    }

    /// A visit not yet sent whose images are missing or altered on this device: it can
    /// never be sent as it is.
    pub fn damaged_images(self, count: usize) -> String {
        match self {
            Lang::Zh => format!(
                "{count}张图片（照片或签字）在本机缺失或已损坏，无法上传，此次走访不计入考勤：请恢复原文件，或作废此次走访后重新记录"
            ),
            Lang::En => format!(
                "{count} image(s) missing or altered on this device: it cannot be sent and does not count; \
                 restore the files, or void this visit and record it again"
            ),
        }
    }

    /// Marks in the history's state column: a town office's note to answer (✎), an
    /// image that can never be sent (⚠).
    pub fn history_marks(self, review_pending: bool, damaged: bool) -> String {
        let mut out = String::new();
        if review_pending {
            out.push_str(match self {
                Lang::Zh => "✎待改",
                Lang::En => "✎fix",
            });
        }
        if damaged {
            out.push_str(match self {
                Lang::Zh => "⚠图损",
                Lang::En => "⚠image",
            });
        }
        out
    }

    /// The town office's review note on a visit, with what it asks of the helper: to
    /// correct the visit (an amendment), or that the correction was sent.
    pub fn review_text(self, r: &crate::store::ReviewNote) -> String {
        self.review_text_for(r, false)
    }

    /// [`Self::review_text`]; for a `voided` visit (which cannot be amended), that it
    /// is voided instead.
    pub fn review_text_for(self, r: &crate::store::ReviewNote, voided: bool) -> String {
        if voided {
            return match self {
                Lang::Zh => format!("乡镇审核意见：{}（此走访已作废）", r.note),
                Lang::En => format!("town office review: {} (this visit is voided)", r.note),
            };
        }
        match (self == Lang::Zh, r.amended_since) {
            (true, false) => format!("乡镇审核意见：{}（请更正此次走访）", r.note),
            (true, true) => format!("乡镇审核意见：{}（已更正）", r.note),
            (false, false) => format!("town office review: {} (correct this visit)", r.note),
            (false, true) => format!("town office review: {} (corrected)", r.note),
        }
    }

    /// What a home visit lacks, part by part, with what to do: the words of
    /// [`Flag::MissingEvidence`] where the visit is at hand (QA s28a F8: a witness
    /// without a mark was told to take more photos).
    pub fn shortfall_text(self, parts: &[crate::client::Shortfall]) -> String {
        use crate::client::Shortfall as S;
        let zh = self == Lang::Zh;
        let said: Vec<String> = parts
            .iter()
            .map(|p| match (p, zh) {
                (S::Photos { have, need }, true) => {
                    format!("照片{have}张，本县政策要求至少{need}张，请补拍照片")
                }
                (S::Signature { witness_unmarked: true }, true) => {
                    "见证人未在签字板上签字（只填姓名不算签字），请让见证人补签（visit amend 记录号 --witness-signature 签字图片）"
                        .into()
                }
                (S::Signature { witness_unmarked: false }, true) => {
                    "缺少户主签字，请户主（或见证人）补签".into()
                }
                (S::Photos { have, need }, false) => {
                    format!("{have} photo(s), the county's policy asks at least {need}: take the photos")
                }
                (S::Signature { witness_unmarked: true }, false) => {
                    "the witness has not signed on the pad (a typed name is no signature): have them sign (visit amend ID --witness-signature IMAGE)"
                        .into()
                }
                (S::Signature { witness_unmarked: false }, false) => {
                    "the household's signature is missing: have the household (or a witness) sign".into()
                }
            })
            .collect();
        if zh {
            format!("不计入考勤：{}，然后更正此次走访", said.join("；"))
        } else {
            format!("not counted: {}, then amend this visit", said.join("; "))
        }
    }

    /// A server flag in full: what it means for the visit and, where the helper can
    /// do something, what to do. An unknown flag is shown by its code.
    pub fn flag_text(self, f: &Flag) -> String {
        let zh = self == Lang::Zh;
        match (f, zh) {
            (Flag::ClockAhead, true) => {
                "本机时钟快于服务器，不计入考勤：请校准本机时间后更正此次走访".into()
            }
            (Flag::ClockBehind, true) => {
                "签名时本机时钟慢于实际（早于本机登录时间），不计入考勤：请校准本机时间后更正此次走访".into()
            }
            (Flag::DatedAfterSigning, true) => {
                "时间晚于签名时间，不计入考勤：请更正时间".into()
            }
            (Flag::EnteredLate, true) => {
                "签名晚于走访日期超过规定天数（补录）：乡镇可见为补录".into()
            }
            (Flag::ChainBreak, true) => {
                "记录它的终端记录链不连续：乡镇扶贫办可见此异常，请在那台终端上运行 bangfu verify 检查".into()
            }
            (Flag::SeqReused, true) => {
                "记录它的终端记录序号重复：乡镇扶贫办可见此异常，请在那台终端上运行 bangfu verify 检查".into()
            }
            (Flag::ClockWentBack, true) => {
                "签名时间早于本机上一条记录（本机时钟曾被调回）：乡镇扶贫办可见此标记，请校准本机时间".into()
            }
            (Flag::PhotoReused, true) => {
                "照片或签字图片已用于其他走访，不计入考勤：请补拍本次走访的照片、当场重新签字，并更正此次走访".into()
            }
            (Flag::MissingEvidence, true) => {
                "照片张数或签字不符合本县政策对入户走访的要求，不计入考勤：请补拍照片（或补签）后更正此次走访".into()
            }
            (Flag::OutsidePairing, true) => {
                "走访日期不在您与该户的结对期内（结对已结束或尚未开始），不计入考勤：如日期有误请更正，否则请联系乡镇扶贫办核对结对记录".into()
            }
            (Flag::Other(code), true) => format!("服务器标记：{code}"),
            (Flag::ClockAhead, false) => {
                "the device clock was ahead of the server's: not counted; set the clock right, then amend this visit".into()
            }
            (Flag::ClockBehind, false) => {
                "the device clock was set back when it signed (before this device logged in): not counted; set the clock right, then amend this visit".into()
            }
            (Flag::DatedAfterSigning, false) => {
                "the visit time is after the record was signed: not counted until amended; correct the time".into()
            }
            (Flag::EnteredLate, false) => {
                "signed long after the visit date (entered late): the town office sees it was entered late".into()
            }
            (Flag::ChainBreak, false) => {
                "the record chain of the device that made it does not link up: the town office sees it; run `bangfu verify` on that device".into()
            }
            (Flag::SeqReused, false) => {
                "the device that made it reused a record number: the town office sees it; run `bangfu verify` on that device".into()
            }
            (Flag::ClockWentBack, false) => {
                "signed, by this device's clock, before the device's record before it (the clock was set back): the town office sees this mark; set the clock right".into()
            }
            (Flag::PhotoReused, false) => {
                "a photo or signature image of this visit was already used by another visit: not counted; amend this visit with its own photo and a fresh signature".into()
            }
            (Flag::MissingEvidence, false) => {
                "fewer photos or signatures than the county's policy asks of a home visit: not counted; take the photos (or signature) and amend this visit".into()
            }
            (Flag::OutsidePairing, false) => {
                "the visit is dated outside your pairing with this household (it had ended or not begun): not counted; amend the date if it is wrong, otherwise ask the town office to check the pairing".into()
            }
            (Flag::Other(code), false) => format!("server flag: {code}"),
        }
    }

    /// A visit's sync state with its flags in a few words: `已同步 · 时间晚于签名·不计入`.
    pub fn visit_state(self, s: SyncState, flags: &[Flag]) -> String {
        let mut out = self.sync_state(s).to_string();
        for f in flags {
            out.push_str(" · ⚠");
            out.push_str(&self.flag_short(f));
        }
        out
    }

    /// A visit's state for a narrow column: the sync state, then `⚠不计入` when a flag
    /// keeps the visit out of the count, else `⚠` and the first flag's name (the
    /// selected visit's lines say each flag in full).
    /// `narrow`: the history's narrow layout, where a synced visit's mark stands alone
    /// (a flag comes from the server, so it says the visit is synced anyway).
    pub fn visit_state_short(self, s: SyncState, flags: &[Flag], narrow: bool) -> String {
        let state = self.sync_state(s);
        let mark = if flags.iter().any(Flag::stops_counting) {
            Some(match self {
                Lang::Zh => "不计入".to_string(),
                Lang::En => "not counted".to_string(),
            })
        } else {
            flags.first().map(|f| self.flag_short(f))
        };
        // English words are long: on a synced visit the mark says enough.
        match mark {
            Some(m) if s == SyncState::Synced && (narrow || self == Lang::En) => format!("⚠{m}"),
            Some(m) if self == Lang::Zh => format!("{state}⚠{m}"),
            Some(m) => format!("{state} ⚠{m}"),
            None => state.to_string(),
        }
    }

    /// The progress line of a running sync: step, records and bytes.
    pub fn sync_progress(self, p: &SyncProgress) -> String {
        let mb = |b: u64| b as f64 / 1_048_576.0;
        let zh = self == Lang::Zh;
        let phase = match (p.phase, zh) {
            (SyncPhase::Pushing, true) => "上传记录",
            (SyncPhase::Uploading, true) => "上传照片",
            (SyncPhase::Confirming, true) => "确认",
            (SyncPhase::Pulling, true) => "下载更新",
            (SyncPhase::Downloading, true) => "下载照片",
            (SyncPhase::Done, true) => "完成",
            (SyncPhase::Pushing, false) => "sending records",
            (SyncPhase::Uploading, false) => "sending photos",
            (SyncPhase::Confirming, false) => "confirming",
            (SyncPhase::Pulling, false) => "receiving updates",
            (SyncPhase::Downloading, false) => "receiving photos",
            (SyncPhase::Done, false) => "done",
        };
        let (records, photos) = if zh {
            ("记录", "照片")
        } else {
            ("records", "photos")
        };
        // The unit follows the total: a signature of a few KB does not read "0.0 MB".
        let kb = |b: u64| b.div_ceil(1024);
        let bytes = if p.bytes_total >= 1_048_576 {
            format!("{:.1}/{:.1} MB", mb(p.bytes_done), mb(p.bytes_total))
        } else {
            format!("{}/{} KB", kb(p.bytes_done), kb(p.bytes_total))
        };
        // A count with nothing to count is left out: `照片 0/0 KB` on a download step
        // read as "no photos" (QA s32c W1).
        let mut out = phase.to_string();
        if p.records_total > 0 {
            out.push_str(&format!(
                " · {records} {}/{}",
                p.records_done, p.records_total
            ));
        }
        if p.bytes_total > 0 {
            out.push_str(&format!(" · {photos} {bytes}"));
        }
        if p.files_total > 0 {
            out.push_str(&format!(" · ↓ {}/{}", p.files_done, p.files_total));
            // Bytes as they arrive: a photo on a weak link takes minutes (QA s31b R4).
            if p.bytes_received >= 1_048_576 {
                out.push_str(&format!(" {:.1} MB", mb(p.bytes_received)));
            } else if p.bytes_received > 0 {
                out.push_str(&format!(" {} KB", kb(p.bytes_received)));
            }
        }
        if p.retry.is_some() {
            out.push_str(if zh { " · 重试中" } else { " · retrying" });
        }
        out
    }

    /// One line on how a finished sync went.
    /// What a sync did with the attendance sheets: each submitted version, each refusal.
    pub fn sync_sheet_results(self, r: &SyncReport) -> Vec<String> {
        let submitted = r.sheets_submitted.iter().map(|(q, v)| match self {
            Lang::Zh => format!("考勤表 {q} 已提交第{v}版"),
            Lang::En => format!("sheet {q} submitted, version {v}"),
        });
        let rejected = r.sheets_rejected.iter().map(|(q, reason)| match self {
            Lang::Zh => format!("考勤表 {q} 被拒：{}", sheet_refusal_zh(reason)),
            Lang::En => format!("sheet {q} REJECTED: {reason}"),
        });
        submitted.chain(rejected).collect()
    }

    pub fn sync_summary(self, r: &SyncReport) -> String {
        self.sync_summary_with(r, true, true)
    }

    /// [`Self::sync_summary`] without the first problem, for a report that lists every
    /// problem on lines of its own (`bangfu sync`), so none is said twice.
    pub fn sync_summary_without_problems(self, r: &SyncReport) -> String {
        self.sync_summary_with(r, true, false)
    }

    /// [`Self::sync_summary`] without the sheets' results (said apart, first, on the
    /// TUI's sheet screen).
    pub fn sync_summary_without_sheets(self, r: &SyncReport) -> String {
        self.sync_summary_with(r, false, true)
    }

    fn sync_summary_with(self, r: &SyncReport, sheets: bool, problem: bool) -> String {
        let refused = (r.rejected.len() + r.conflicts.len()) as u64;
        // "Done" only when nothing is left (QA s31b R8: a run leaving a photo unsent, exit
        // 3, began 同步完成).
        let mut out = match (self, r.complete()) {
            (Lang::Zh, true) => format!(
                "同步完成：已同步 {}，待传照片 {}，被拒 {}，收到 {}",
                r.synced, r.awaiting_photos, refused, r.imported
            ),
            (Lang::Zh, false) => format!(
                "同步结束，仍有未完成：已同步 {}，待传照片 {}，被拒 {}，收到 {}",
                r.synced, r.awaiting_photos, refused, r.imported
            ),
            (Lang::En, true) => format!(
                "sync done: {} synced, {} awaiting photos, {} refused, {} received",
                r.synced, r.awaiting_photos, refused, r.imported
            ),
            (Lang::En, false) => format!(
                "sync ended with work left: {} synced, {} awaiting photos, {} refused, {} received",
                r.synced, r.awaiting_photos, refused, r.imported
            ),
        };
        // Records whose photos no longer need sending (their visit voided or amended
        // since): said, so "5 of 7" does not read as two records lost (QA s29b J12).
        if r.counts.awaiting_superseded > 0 {
            let n = r.counts.awaiting_superseded;
            out.push_str(&match self {
                Lang::Zh => format!(" · 另有{n}条记录所属走访已作废或已更正，其照片无需上传"),
                Lang::En => format!(
                    " · {n} records belong to visits since voided or amended: their photos need not be sent"
                ),
            });
        }
        if r.asked_again > 0 {
            out.push_str(&match self {
                Lang::Zh => format!(
                    " · 服务器缺少本机已同步的{}条记录或其照片（数据可能已从备份恢复），已重新发送",
                    r.asked_again
                ),
                Lang::En => format!(
                    " · {} records (or their photos) this device had synced were missing on the server (restored from a backup?) and were sent again",
                    r.asked_again
                ),
            });
        }
        for sheet in self.sync_sheet_results(r).into_iter().filter(|_| sheets) {
            out.push_str(" · ");
            out.push_str(&sheet);
        }
        if let Some(p) = r.problems.first().filter(|_| problem) {
            out.push_str(" · ");
            out.push_str(&self.problem(p));
        }
        out
    }
}

/// What a helper is told when the device's storage is full.
const DISK_FULL_ZH: &str =
    "本机存储空间已满：请删除不用的照片或应用腾出空间后再试（已保存的记录不受影响）";

/// Whether a database error is SQLite's "database or disk is full" (SQLITE_FULL, 13).
fn disk_full(text: &str) -> bool {
    text.contains("database or disk is full") || text.contains("(code: 13)")
}
