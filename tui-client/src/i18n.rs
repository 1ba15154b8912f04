//! Interface texts: Chinese by default (helpers are Chinese cadres), English with
//! `--lang en`. Plain data, shared by the terminal UI and the headless commands.

use bangfu_shared::VisitKind;
use bangfu_shared::visit::{FamilyChangeKind, Occasion, PolicyArea};
use chrono::{Datelike, NaiveDate};

use crate::flags::Flag;
use crate::store::SyncState;
use crate::sync::{SyncPhase, SyncProgress, SyncReport};

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

/// Every text the interface shows.
#[derive(Debug)]
pub struct Texts {
    pub app_title: &'static str,
    pub households: &'static str,
    pub head: &'static str,
    pub village: &'static str,
    pub last_home: &'static str,
    pub last_phone: &'static str,
    pub next_due: &'static str,
    pub overdue: &'static str,
    pub done: &'static str,
    /// [`Self::done`] where the list is narrow: `已完成`, `done`.
    pub done_short: &'static str,
    /// The next-due column of a household the helper's pairing holds no more window
    /// of (it ends before the current ones do).
    pub nothing_due: &'static str,
    /// [`Texts::nothing_due`] in a narrow list, leaving room for a coming exit's mark.
    pub nothing_due_short: &'static str,
    pub not_paired: &'static str,
    pub never: &'static str,
    pub no_households: &'static str,
    /// The list when every pairing here has ended (they are listed apart, below).
    pub no_current_households: &'static str,
    pub help_list: &'static str,
    pub detail: &'static str,
    pub members: &'static str,
    pub cause: &'static str,
    pub measures: &'static str,
    pub address: &'static str,
    pub phone: &'static str,
    pub helpers: &'static str,
    pub history: &'static str,
    pub help_detail: &'static str,
    pub new_visit: &'static str,
    pub amend_visit: &'static str,
    pub kind: &'static str,
    pub time: &'static str,
    pub policies: &'static str,
    pub problems: &'static str,
    pub help_actions: &'static str,
    pub support_actions: &'static str,
    pub deliveries: &'static str,
    pub family_changes: &'static str,
    pub notes: &'static str,
    pub reason: &'static str,
    pub photos: &'static str,
    /// The photo panel of a form without photos.
    pub no_photo: &'static str,
    pub household_signature: &'static str,
    /// The history list's signature column: `Household signature` would be cut.
    pub signature_column: &'static str,
    pub sig_pad: &'static str,
    pub sig_card: &'static str,
    pub sig_witness: &'static str,
    pub witness_name: &'static str,
    pub witness_role: &'static str,
    pub witness_reason: &'static str,
    pub signed: &'static str,
    pub not_signed: &'static str,
    pub hint_list: &'static str,
    pub hint_delivery: &'static str,
    pub hint_family: &'static str,
    pub help_form_text: &'static str,
    pub help_form_choice: &'static str,
    /// The help line on the visit kind (1–5 toggle policies only on their own field).
    pub help_form_kind: &'static str,
    pub help_form_photos: &'static str,
    pub help_form_signature: &'static str,
    pub draft_saved: &'static str,
    pub record_signed: &'static str,
    pub stays_draft: &'static str,
    pub pad_title: &'static str,
    pub help_pad: &'static str,
    pub pad_empty: &'static str,
    /// [`Texts::pad_empty`] on the witness's pad.
    pub pad_empty_witness: &'static str,
    pub chooser_title: &'static str,
    pub help_chooser: &'static str,
    /// Before what the user typed, as a filter on names.
    pub chooser_filter: &'static str,
    /// Before what the user typed, as a path to open.
    pub chooser_go: &'static str,
    pub chooser_no_match: &'static str,
    pub chooser_not_found: &'static str,
    pub visit_history: &'static str,
    pub help_history: &'static str,
    pub sync_local: &'static str,
    pub sync_done: &'static str,
    pub sync_uploading: &'static str,
    pub sync_awaiting: &'static str,
    pub sync_rejected: &'static str,
    pub sync_conflict: &'static str,
    pub sync_running: &'static str,
    pub unsynced: &'static str,
    pub sync_failed: &'static str,
    /// A run the server's ended session stopped: the next one goes on after a login.
    pub sync_failed_login: &'static str,
    pub voided: &'static str,
    pub amended: &'static str,
    /// A draft that amends a signed visit, not yet signed, beside its kind in the drafts
    /// list (every row there is a draft): `电话（更正）`.
    pub amending: &'static str,
    pub void_prompt: &'static str,
    pub help_void: &'static str,
    pub drafts: &'static str,
    pub help_drafts: &'static str,
    pub no_drafts: &'static str,
    pub login_title: &'static str,
    pub server: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub enroll_code: &'static str,
    pub help_login: &'static str,
    pub logging_in: &'static str,
    pub too_small: &'static str,
    pub offline_note: &'static str,
    /// In place of [`Texts::offline_note`] once the device knows its key was revoked.
    pub device_revoked: &'static str,
    pub yuan: &'static str,
    pub needs_household_signature: &'static str,
    pub colon: &'static str,
    pub photos_required: &'static str,
    /// The pad's title when the witness signs in the household's stead.
    pub pad_title_witness: &'static str,
    /// How to type a visit time.
    pub hint_time: &'static str,
    /// A photo already on another visit; `{}` is that visit's MM-DD.
    pub photo_reused: &'static str,
    /// A signature (or witness's mark) image already on another visit; `{}` is MM-DD.
    pub signature_reused: &'static str,
    /// Before the warnings when signing (first, so a narrow status line keeps the
    /// key): a second Ctrl+S signs all the same.
    pub sign_again_anyway: &'static str,
    /// Beside an amendment's lapsed household signature.
    pub resign_short: &'static str,
    /// Before the list of changed attested fields.
    pub resign_needed: &'static str,
    pub resign_needed_end: &'static str,
    /// An amendment's witness was renamed or replaced: the old mark is not theirs.
    pub signer_changed: &'static str,
    /// The same, short, beside 未签 on the form.
    pub signer_changed_short: &'static str,
    /// Before the town office's review note in the amendment form.
    pub review_note_label: &'static str,
    /// Before a visit time that lies in the future.
    pub future_time: &'static str,
    /// Before the reason a draft save failed (the form stays open).
    pub draft_not_saved: &'static str,
    pub again_esc_discards: &'static str,
    pub again_quit_discards: &'static str,
    pub changes_discarded: &'static str,
    pub sign_failed: &'static str,
    /// Asked before a draft of another day is continued; `{}` is its MM-DD.
    pub resume_question: &'static str,
    pub resume_choices: &'static str,
    /// The section (and mark) of households whose pairing ended.
    pub pairing_ended: &'static str,
    /// Before the date the device found a household's pairing ended.
    pub pairing_ended_since: &'static str,
    /// After the first day a household was no longer paired (from the server's pairing
    /// history): "2026-03-10起不再结对" rather than "结对结束于 2026-03-10", which beside
    /// the period's last day (`至 2026-03-09`) read as a second, different end (QA s23a F3).
    pub pairing_ended_on: &'static str,
    /// A pairing that never began: the change of helper was withdrawn (QA s32c W10).
    pub pairing_withdrawn: &'static str,
    /// How to reach an ended household's visits and drafts.
    pub pairing_ended_hint: &'static str,
    /// The hint where the whole one does not fit (QA s31c T10: cut mid-word).
    pub pairing_ended_hint_short: &'static str,
    /// The households help line of an account that fills in no attendance sheet.
    pub help_list_no_sheet: &'static str,
    /// The void dialog's title (nothing is void yet while it is open).
    pub void_title: &'static str,
    /// Before the reason a void needs.
    pub void_reason: &'static str,
    /// Asked before a draft is thrown away; then what is lost, and the keys.
    pub discard_question: &'static str,
    pub discard_warning: &'static str,
    pub discard_choices: &'static str,
    pub discard_done: &'static str,
    pub discard_kept: &'static str,
    /// Until the first sync: the visits recorded elsewhere are not on the device.
    pub history_not_pulled: &'static str,
    /// In place of "never" in a last-visit column until the first sync.
    pub not_pulled_short: &'static str,
    /// The file chooser in a folder with nothing to list.
    pub chooser_empty: &'static str,
}

static ZH: Texts = Texts {
    app_title: "帮扶 · 结对帮扶走访",
    households: "我的帮扶户",
    head: "户主",
    village: "村",
    last_home: "上次入户",
    last_phone: "上次电话",
    next_due: "下次应访",
    overdue: "逾期",
    done: "本期已完成",
    done_short: "已完成",
    nothing_due: "无应访",
    nothing_due_short: "无应访",
    not_paired: "未结对",
    never: "从未",
    no_households: "本机没有帮扶户。请先联网登录以下载。",
    no_current_households: "目前没有结对中的帮扶户（已结束的结对见下方）。如有新的结对，同步（按 s）后即可看到。",
    help_list: "n 新走访  s 同步  q 退出  h 走访记录  d 草稿  a 考勤表  Enter 详情  ↑↓ 选择",
    detail: "帮扶户详情",
    members: "家庭成员",
    cause: "致贫原因",
    measures: "帮扶措施",
    address: "地址",
    phone: "电话",
    helpers: "帮扶责任人",
    history: "走访记录",
    help_detail: "n 新走访  h 走访记录  s 同步  Esc 返回  q 退出",
    new_visit: "新走访（帮扶实录）",
    amend_visit: "更正走访",
    kind: "方式",
    time: "时间",
    policies: "宣讲政策",
    problems: "发现问题",
    help_actions: "帮",
    support_actions: "扶",
    deliveries: "送",
    family_changes: "家庭变化",
    notes: "备注",
    reason: "更正原因",
    photos: "照片",
    no_photo: "尚无照片",
    household_signature: "农户签字",
    signature_column: "农户签字",
    sig_pad: "签字板",
    sig_card: "纸质卡照片",
    sig_witness: "见证人/村公证人",
    witness_name: "见证人姓名",
    witness_role: "见证人身份",
    witness_reason: "不能签字原因",
    signed: "已签",
    not_signed: "未签",
    hint_list: "多项用 ; 分隔",
    hint_delivery: "物品:金额(元):节日 如 月饼:88:中秋",
    hint_family: "类型:姓名 如 出生:张小宝",
    help_form_text: "Tab/↑↓ 切换  输入文字  Ctrl+S 签名完成  Esc 保存草稿返回",
    help_form_choice: "Tab/↑↓ 切换  空格/←→ 选择  Ctrl+S 签名完成  Esc 返回  1-5 勾选政策",
    help_form_kind: "Tab/↑↓ 切换  空格/←→ 选择  Ctrl+S 签名完成  Esc 返回",
    help_form_photos: "Tab/↑↓ 切换  Enter 添加照片  Ctrl+S 签名完成  Esc 返回  x 移除  ←→ 查看",
    // The keys a task needs come before Esc and q, which every screen has: a narrow
    // terminal cuts the line's end (QA s32c W6).
    help_form_signature: "Tab/↑↓ 切换  Enter 签字/选照片  空格 切换方式  Ctrl+S 签名完成  Esc 返回",
    draft_saved: "草稿已保存",
    record_signed: "已签名保存（仅本地，待同步）",
    stays_draft: "未签名，保留为草稿：",
    pad_title: "农户签字板：按住鼠标（或触屏）书写",
    help_pad: "鼠标拖动书写  u 撤销  c 清除  Enter 确认  Esc 取消",
    pad_empty: "签字板上没有签字（或只有一两笔）：请农户先签字",
    pad_empty_witness: "签字板上没有签字（或只有一两笔）：请见证人先签字",
    chooser_title: "选择照片文件",
    help_chooser: "Enter 打开/选定  Esc 取消  打字筛选或输入/路径  Backspace 上级  ↑↓ 选择",
    chooser_filter: "筛选：",
    chooser_go: "前往：",
    chooser_no_match: "没有名称含此文字的文件",
    chooser_not_found: "找不到文件或目录：",
    visit_history: "走访记录",
    help_history: "a 更正  v 作废  s 同步  Esc 返回  q 退出  ↑↓ 选择",
    sync_local: "仅本地",
    sync_done: "已同步",
    sync_uploading: "上传中",
    sync_awaiting: "待传照片",
    sync_rejected: "被拒",
    sync_conflict: "冲突",
    sync_running: "正在同步…",
    unsynced: "待同步",
    sync_failed: "同步中断，下次同步将继续：",
    sync_failed_login: "同步中断：",
    voided: "已作废",
    amended: "已更正",
    amending: "更正",
    void_prompt: "作废原因：",
    help_void: "输入原因  Enter 签名作废  Esc 取消",
    drafts: "草稿",
    help_drafts: "Enter 继续填写  x 丢弃  Esc 返回  ↑↓ 选择",
    no_drafts: "没有草稿",
    login_title: "首次登录（需要联网）",
    server: "服务器",
    username: "用户名（手机号）",
    password: "密码",
    enroll_code: "激活码（首次）",
    help_login: "Tab 切换  Enter 登录  Esc 退出",
    logging_in: "正在登录…",
    too_small: "窗口太小，请放大到至少 60×16（Ctrl+C 退出）",
    offline_note: "离线可用",
    device_revoked: "本机已停用（设备密钥被乡镇扶贫办停用）",
    yuan: "元",
    needs_household_signature: "入户走访须先由农户（或见证人）签字，才能由帮扶人签名完成",
    colon: "：",
    photos_required: "本县政策：入户走访至少需要照片张数",
    pad_title_witness: "见证人签字板：按住鼠标（或触屏）书写",
    hint_time: "如 2026-03-01 08:30（北京时间）",
    photo_reused: "⚠ 此照片已用于 {} 的另一次走访，服务器不会重复计数，请换一张",
    signature_reused: "⚠ 此签字图片已用于 {} 的另一次走访：签字须在本次走访时当场签，请重新签字",
    sign_again_anyway: "再按 Ctrl+S 仍签名：",
    resign_short: "内容已改须重签",
    resign_needed: "更正改动了农户签字确认的内容：",
    resign_needed_end: "。须农户重新签字（或见证人重新确认）",
    signer_changed: "见证人已更换：原签字是原见证人的，请新见证人在签字板上重新签字",
    signer_changed_short: "见证人已更换，须重新签字",
    review_note_label: "乡镇审核意见：",
    future_time: "走访时间晚于当前时间，请改正：",
    draft_not_saved: "草稿未保存：",
    again_esc_discards: "。再按 Esc 放弃本次修改并返回",
    again_quit_discards: "。再按 Ctrl+C 放弃修改并退出",
    changes_discarded: "未保存的修改已放弃",
    sign_failed: "未签名：",
    resume_question: "继续 {} 的草稿？",
    resume_choices: "y 继续  n 新建  Esc 取消",
    pairing_ended: "已结束结对",
    pairing_ended_since: "本机获知于",
    pairing_ended_on: "起不再结对",
    pairing_withdrawn: "结对未曾生效（已撤回）",
    pairing_ended_hint: "其走访记录（h）可更正、作废，草稿（d）可在结对期内签名",
    pairing_ended_hint_short: "走访记录（h）可更正、作废",
    help_list_no_sheet: "n 新走访  s 同步  q 退出  h 走访记录  d 草稿  Enter 详情  ↑↓ 选择",
    void_title: "作废走访",
    void_reason: "作废原因",
    discard_question: "丢弃这份草稿？",
    discard_warning: "丢弃后无法恢复，其中的农户签字也一并删除。",
    discard_choices: "y 丢弃  其他键 保留",
    discard_done: "草稿已丢弃",
    discard_kept: "草稿已保留",
    history_not_pulled: "尚未同步：按 s 取回走访记录（上次走访、逾期以同步后为准）",
    not_pulled_short: "未同步",
    chooser_empty: "此文件夹没有照片",
};

static EN: Texts = Texts {
    app_title: "Bangfu · paired assistance visits",
    households: "My households",
    head: "Head",
    village: "Village",
    last_home: "Last home",
    last_phone: "Last call",
    next_due: "Next due",
    overdue: "OVERDUE",
    done: "done this period",
    done_short: "done",
    nothing_due: "nothing due",
    nothing_due_short: "none due",
    not_paired: "not paired",
    never: "never",
    no_households: "No households on this device. Log in once with network to download them.",
    no_current_households: "No current households (ended pairings are listed below). A new pairing shows after a sync (press s).",
    help_list: "n new visit  s sync  q quit  h history  d drafts  a sheet  Enter detail  ↑↓ select",
    detail: "Household",
    members: "Members",
    cause: "Cause of poverty",
    measures: "Measures",
    address: "Address",
    phone: "Phone",
    helpers: "Helpers",
    history: "Visit history",
    help_detail: "n new visit  h history  s sync  Esc back  q quit",
    new_visit: "New visit record",
    amend_visit: "Amend visit",
    kind: "Kind",
    time: "Time",
    policies: "Policies explained",
    problems: "Problems found",
    help_actions: "Help (帮)",
    support_actions: "Support (扶)",
    deliveries: "Delivered (送)",
    family_changes: "Family changes",
    notes: "Notes",
    reason: "Reason for amendment",
    photos: "Photos",
    no_photo: "no photo yet",
    household_signature: "Household signature",
    signature_column: "Signature",
    sig_pad: "signature pad",
    sig_card: "photo of signed card",
    sig_witness: "witness / notary",
    witness_name: "Witness name",
    witness_role: "Witness role",
    witness_reason: "Why household can't sign",
    signed: "signed",
    not_signed: "not signed",
    hint_list: "separate entries with ;",
    hint_delivery: "ITEM:YUAN:OCCASION e.g. mooncakes:88:zhongqiu",
    hint_family: "KIND:NAME e.g. birth:Zhang Xiaobao",
    help_form_text: "Tab/↑↓ move  type text  Ctrl+S sign & finish  Esc save draft & back",
    help_form_choice: "Tab/↑↓ move  Space/←→ choose  Ctrl+S sign  Esc back  1-5 toggle policy",
    help_form_kind: "Tab/↑↓ move  Space/←→ choose  Ctrl+S sign  Esc back",
    help_form_photos: "Tab/↑↓ move  Enter add photo  Ctrl+S sign  Esc back  x remove  ←→ browse",
    help_form_signature: "Tab/↑↓ move  Enter sign/choose photo  Space method  Ctrl+S sign  Esc back",
    draft_saved: "draft saved",
    record_signed: "signed and saved (local only, awaiting sync)",
    stays_draft: "not signed, kept as a draft: ",
    pad_title: "Household signature pad: draw with the mouse or touch",
    help_pad: "drag to draw  u undo  c clear  Enter accept  Esc cancel",
    pad_empty: "nothing signed on the pad (or a dot or two): the household must sign first",
    pad_empty_witness: "nothing signed on the pad (or a dot or two): the witness must sign first",
    chooser_title: "Choose a photo file",
    help_chooser: "Enter open/choose  Esc cancel  type: filter or /path  Backspace up  ↑↓ select",
    chooser_filter: "filter: ",
    chooser_go: "go to: ",
    chooser_no_match: "no file name contains this",
    chooser_not_found: "no such file or directory: ",
    visit_history: "Visit history",
    help_history: "a amend  v void  s sync  Esc back  q quit  ↑↓ select",
    sync_local: "local only",
    sync_done: "synced",
    sync_uploading: "uploading",
    sync_awaiting: "awaiting photos",
    sync_rejected: "REJECTED",
    sync_conflict: "CONFLICT",
    sync_running: "a sync is running",
    unsynced: "unsynced",
    sync_failed: "sync stopped; the next sync resumes: ",
    sync_failed_login: "sync stopped: ",
    voided: "VOID",
    amended: "amended",
    amending: "amendment",
    void_prompt: "Reason to void: ",
    help_void: "type the reason  Enter sign void  Esc cancel",
    drafts: "Drafts",
    help_drafts: "Enter continue  x discard  Esc back  ↑↓ select",
    no_drafts: "no drafts",
    login_title: "First login (needs network)",
    server: "Server",
    username: "Username (phone)",
    password: "Password",
    enroll_code: "Enrollment code (first time)",
    help_login: "Tab move  Enter log in  Esc quit",
    logging_in: "logging in…",
    too_small: "Window too small: enlarge to at least 60×16 (Ctrl+C quits)",
    offline_note: "works offline",
    device_revoked: "device revoked by the town office",
    yuan: "yuan",
    needs_household_signature: "a home visit needs the household's signature (or a witness) before you sign it",
    colon: ": ",
    photos_required: "county policy: photos a home visit needs to count",
    pad_title_witness: "Witness signature pad: draw with the mouse or touch",
    hint_time: "YYYY-MM-DD HH:MM (UTC+8)",
    photo_reused: "⚠ this photo is already on the visit of {}: the server will not count it twice; use another",
    signature_reused: "⚠ this signature image is already on the visit of {}: a signature is made at each visit; sign again",
    sign_again_anyway: "Ctrl+S again signs all the same: ",
    resign_short: "content changed: sign again",
    resign_needed: "the amendment changes what the household signed: ",
    resign_needed_end: "; the household must sign again (or the witness confirm again)",
    signer_changed: "the witness changed: the signature carried over is the former witness's; the new witness must sign on the pad",
    signer_changed_short: "witness changed: sign again",
    review_note_label: "town office review: ",
    future_time: "the visit time is in the future, correct it: ",
    draft_not_saved: "draft NOT saved: ",
    again_esc_discards: "; press Esc again to discard the changes",
    again_quit_discards: "; press Ctrl+C again to quit without them",
    changes_discarded: "unsaved changes discarded",
    sign_failed: "not signed: ",
    resume_question: "Continue the draft of {}?",
    resume_choices: "y continue  n new form  Esc cancel",
    pairing_ended: "Pairing ended",
    pairing_ended_since: "known since",
    pairing_ended_on: "unpaired from",
    pairing_withdrawn: "the pairing never began (withdrawn)",
    pairing_ended_hint: "their visits (h) can be amended or voided, drafts (d) signed if dated within the pairing",
    pairing_ended_hint_short: "visits (h): amend or void; drafts (d): sign",
    help_list_no_sheet: "n new visit  s sync  q quit  h history  d drafts  Enter detail  ↑↓ select",
    void_title: "Void visit",
    void_reason: "Reason to void",
    discard_question: "Discard this draft?",
    discard_warning: "It cannot be undone; the household's signature in it goes too.",
    discard_choices: "y discard  any other key keeps it",
    discard_done: "draft discarded",
    discard_kept: "draft kept",
    history_not_pulled: "not synced yet: press s to fetch the visit history (last visits and overdue are known after it)",
    not_pulled_short: "not synced",
    chooser_empty: "no photos in this folder",
};

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
            E::Store(err) => format!("本机数据库出错：{err}"),
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

// ---------------------------------------------------------------------------------------
// Why the server refused a record: by its stable code (`Ack::reason_code`), in the
// helper's language. Kept in a block of its own.

impl Lang {
    /// Why the server refused a record, for the helper: what happened and what to do,
    /// by the server's `code`. A code this version does not know, or none (a server
    /// from before codes), is shown by the server's own words, `reason`; English shows
    /// those words whenever there are some (they say more: which device, which
    /// household).
    pub fn refusal(self, code: Option<&str>, reason: Option<&str>) -> String {
        use bangfu_shared::sync::reason_code as c;
        let reason = reason.filter(|r| !r.is_empty());
        let text = match (self, code) {
            (Lang::En, _) if reason.is_some() => None,
            (Lang::Zh, Some(c::INVALID_RECORD)) => {
                Some("记录格式不合规，服务器拒收：请更新本应用，仍被拒请联系乡镇扶贫办")
            }
            (Lang::Zh, Some(c::DEVICE_NOT_REGISTERED)) => Some(
                "签名此记录的设备未登记在当前账号下（或已停用），服务器拒收：请用原账号登录，或联系乡镇扶贫办",
            ),
            (Lang::Zh, Some(c::AUTHOR_NOT_HELPER)) => Some(
                "记录的帮扶责任人不是当前登录的账号，服务器拒收：请用录入此记录的账号登录后同步",
            ),
            (Lang::Zh, Some(c::BAD_SIGNATURE_ENCODING)) => Some(
                "记录的签名已损坏，服务器拒收：请运行 bangfu verify 检查本机数据，需要时重新录入此次走访",
            ),
            (Lang::Zh, Some(c::SIGNATURE_MISMATCH)) => Some(
                "记录签名后被改动，服务器拒收：请运行 bangfu verify 检查本机数据，需要时重新录入此次走访",
            ),
            (Lang::Zh, Some(c::HOUSEHOLD_NEVER_PAIRED)) => Some(
                "您从未与该户结对，服务器拒收：如结对有误，请乡镇扶贫办更正后重新同步（bangfu sync --retry-rejected）",
            ),
            (Lang::Zh, Some(c::TARGET_NOT_A_VISIT)) => Some(
                "只能更正或作废原始走访（不能针对更正记录），服务器拒收：请在走访记录中对原走访重新操作",
            ),
            (Lang::Zh, Some(c::TARGET_OTHER_HELPER)) => {
                Some("只能更正或作废本人录入的走访，服务器拒收：如该走访有误，请告知其录入人")
            }
            (Lang::Zh, Some(c::TARGET_OTHER_HOUSEHOLD)) => {
                Some("更正或作废的户与原走访的户不同，服务器拒收：请在该户的走访记录中重新操作")
            }
            (Lang::Zh, Some(c::CONFLICT)) => {
                Some("服务器已有同一编号的另一条记录，未覆盖本机记录：请联系乡镇扶贫办核查")
            }
            (Lang::Zh, Some(c::NOT_PROCESSED)) => {
                Some("服务器未处理此记录：请重新同步（bangfu sync --retry-rejected）")
            }
            _ => None,
        };
        match (text, reason, code) {
            (Some(t), _, _) => t.to_string(),
            (None, Some(r), _) => r.to_string(),
            (None, None, Some(code)) => code.to_string(),
            (None, None, None) => String::new(),
        }
    }
}

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

static SHEET_ZH: SheetTexts = SheetTexts {
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

static SHEET_EN: SheetTexts = SheetTexts {
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
fn sheet_refusal_zh(reason: &str) -> String {
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

// ---------------------------------------------------------------------------------------
// After a sync: the visits the server flagged as not counting for attendance
// (`SyncReport::not_counted`). Kept in a block of its own.

impl Lang {
    /// How many visits do not count for attendance and must be corrected; `None` when
    /// there are none.
    pub fn sync_not_counted(self, n: u64) -> Option<String> {
        (n > 0).then(|| match self {
            Lang::Zh => format!("{n} 条走访不计入考勤，请查看原因并更正"),
            Lang::En if n == 1 => {
                "1 visit does not count for attendance: see why and amend it".to_string()
            }
            Lang::En => {
                format!("{n} visits do not count for attendance: see why and amend them")
            }
        })
    }
}

impl Lang {
    /// The town office's decisions on family changes a sync brought; `None` when none.
    pub fn sync_decisions(self, d: crate::store::DecisionsReceived) -> Option<String> {
        (d.total() > 0).then(|| match (self, d.rejected) {
            (Lang::Zh, 0) => format!("{} 项家庭变化已由乡镇审核采纳", d.total()),
            (Lang::Zh, n) => format!(
                "{} 项家庭变化已由乡镇审核（{n} 项未通过，见审核意见）",
                d.total()
            ),
            (Lang::En, 0) => format!("{} family change(s) accepted by the town office", d.total()),
            (Lang::En, n) => format!(
                "{} family change(s) decided by the town office ({n} not accepted: see the note)",
                d.total()
            ),
        })
    }

    /// How many visits a sync brought a town-office review note for, still to be
    /// corrected; `None` when there are none. Without it the note arrives silently.
    pub fn sync_returned(self, n: u64) -> Option<String> {
        (n > 0).then(|| match self {
            Lang::Zh => format!("{n} 条走访被乡镇退回，请更正"),
            Lang::En if n == 1 => "1 visit was returned by the town office: amend it".to_string(),
            Lang::En => format!("{n} visits were returned by the town office: amend them"),
        })
    }
}

impl Lang {
    /// The device's clock is `offset_secs` ahead of the server's (behind when negative),
    /// beyond the tolerance: what it signs would not count (QA s26c F2).
    pub fn clock_off(self, offset_secs: i64) -> String {
        // Measured to the second through a `Date` header and a round trip: rounded to
        // the minute, so three days read 3天, not 2天23小时59分钟 (QA s31b R8).
        let secs = (offset_secs.unsigned_abs() + 30) / 60 * 60;
        let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
        match self {
            Lang::Zh => {
                let mut amount = String::new();
                for (n, unit) in [(days, "天"), (hours, "小时"), (minutes, "分钟")] {
                    if n > 0 {
                        amount.push_str(&format!("{n}{unit}"));
                    }
                }
                let way = if offset_secs > 0 { "快" } else { "慢" };
                format!(
                    "本机时间比服务器{way}{amount}：请先校准本机日期和时间，否则所记走访不计入考勤，今天、本季度也会算错"
                )
            }
            Lang::En => {
                let mut amount = Vec::new();
                for (n, unit) in [(days, "d"), (hours, "h"), (minutes, "min")] {
                    if n > 0 {
                        amount.push(format!("{n} {unit}"));
                    }
                }
                let way = if offset_secs > 0 {
                    "ahead of"
                } else {
                    "behind"
                };
                format!(
                    "this device's clock is {} {way} the server's: set the date and time right first, or the visits recorded here will not count (and today and the current quarter read wrong)",
                    amount.join(" ")
                )
            }
        }
    }

    /// What stands on the device after a sync that stopped on an error (exit code 1):
    /// without it the helper sees only the error and cannot tell whether anything went
    /// (QA s25c F5). What reached the server stays there; the next sync goes on.
    /// `login_first` when the session ended: running sync again alone would stop the
    /// same way, so the next step named is the login (QA s31b R6).
    pub fn sync_stopped(self, c: &crate::store::SyncCounts, login_first: bool) -> String {
        let refused = c.rejected + c.conflict;
        let waiting = c.unsynced() - refused;
        let (again_zh, again_en) = if login_first {
            (
                "先运行 bangfu login 重新登录，再运行 bangfu sync 从中断处继续",
                "run bangfu login, then bangfu sync to go on",
            )
        } else {
            (
                "再次运行 bangfu sync 从中断处继续",
                "run bangfu sync again to go on",
            )
        };
        match self {
            Lang::Zh => format!(
                "同步未完成：本机已同步 {}，待同步 {waiting}（其中待传照片 {}），被拒 {refused}；\
                 已送达的不会重发，{again_zh}",
                c.synced, c.awaiting_photos
            ),
            Lang::En => format!(
                "sync not finished: {} synced on this device, {waiting} waiting ({} awaiting \
                 photos), {refused} refused; what reached the server stays there, {again_en}",
                c.synced, c.awaiting_photos
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// What the household list says of a household: the visit window it missed (逾期) and the
// visits the town office returned for correction (待更正). Kept in a block of its own.

const MONTHS_EN: [&str; 12] = [
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
    fn mark_forms(sign: char, words: &[&str], n: usize, count: &str) -> Vec<String> {
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

// ---------------------------------------------------------------------------------------
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

/// At most a few words of English detail after a Chinese message: the helper acts on
/// the Chinese; the detail is for whoever they call.
fn short_detail(text: &str) -> String {
    const MAX: usize = 48;
    let text = text.trim();
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}…")
}

/// The server's address in a network error (`cannot reach URL: …`, as the API client
/// words it).
fn unreachable_host(message: &str) -> Option<&str> {
    message
        .strip_prefix("cannot reach ")
        .or_else(|| message.strip_prefix("no answer from "))
        .and_then(|rest| rest.split_once(": "))
        .map(|(host, _)| host)
}

/// The server's address in a network error of a connection that broke off
/// (`connection to URL broke off: …`).
fn broken_host(message: &str) -> Option<&str> {
    message
        .strip_prefix("connection to ")
        .and_then(|rest| rest.split_once(" broke off"))
        .map(|(host, _)| host)
}

/// A certificate out of its dates, said with the dates (China time) the TLS verifier
/// gave: the certificate's and this device's. The verifier checks dates before it looks
/// for the issuer, so an expired certificate of an unknown authority reads as expired
/// too; with both dates the helper sees whether it is the device's clock (then fix it)
/// or the certificate (then only the county office can), instead of being told to check
/// a clock that is right (QA s28c G4).
fn certificate_dates_zh(why: &str, host: &str) -> Option<String> {
    let number_after = |label: &str| -> Option<i64> {
        let rest = &why[why.find(label)? + label.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let china = |secs: i64| {
        chrono::DateTime::from_timestamp(secs, 0).map(|t| {
            (t + chrono::Duration::hours(8))
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
    };
    let device = china(number_after("verification time ")?)?;
    let (what, then) = match number_after("not valid after ") {
        Some(after) => ("已于", format!("{}过期", china(after)?)),
        None => (
            "要到",
            format!("{}才生效", china(number_after("not valid before ")?)?),
        ),
    };
    Some(format!(
        "服务器的证书{what}{then}，未连接：{host}。本机时间为{device}（北京时间）：如本机日期时间有误，请改正后重试；\
         如无误，请告知县扶贫办更新服务器证书（如本县使用自己的证书，还请核对环境变量 {}）",
        crate::api::CA_FILE_VAR
    ))
}

/// A network failure in Chinese: what happened and what to do, without the HTTP
/// library's English; the server's address last, so a narrow status line keeps the
/// advice.
fn network_error_zh(message: &str) -> String {
    if let Some(rest) = message.strip_prefix(&format!("{}=", crate::api::CA_FILE_VAR)) {
        let (path, why) = rest.split_once(": ").unwrap_or((rest, ""));
        return format!(
            "证书文件无法使用，未连接：{path}（{}）。请检查环境变量 {} 所指的文件：应为县扶贫办提供的 PEM 证书文件",
            short_detail(why),
            crate::api::CA_FILE_VAR
        );
    }
    if let Some(rest) = message.strip_prefix("untrusted certificate at ") {
        let (host, why) = rest.split_once(": ").unwrap_or((rest, ""));
        let lower = why.to_ascii_lowercase();
        if lower.contains("not valid for name") || lower.contains("notvalidforname") {
            return format!(
                "服务器的证书不是为这个地址签发的，未连接：{host}。请核对服务器地址，应与县扶贫办提供的完全一致"
            );
        }
        if let Some(why) = why.strip_suffix(crate::api::CA_IN_USE) {
            let why = why.to_ascii_lowercase();
            let var = crate::api::CA_FILE_VAR;
            if why.contains("unknownissuer") {
                return format!(
                    "服务器的证书不是由环境变量 {var} 所指的证书文件签发的，未连接：{host}。请核对证书文件是否为县扶贫办提供的最新文件，以及服务器地址"
                );
            }
            // `openssl req -x509` makes a CA certificate by default (QA s29b J22).
            if why.contains("causedasendentity") {
                return format!(
                    "服务器把证书颁发机构（CA）的证书当作自己的证书使用，本机不予信任，未连接：{host}。请县扶贫办用其 CA 为服务器另行签发服务器证书"
                );
            }
            if !why.contains("expired") && !why.contains("not valid yet") {
                return format!(
                    "服务器的证书不受本机信任（已使用环境变量 {var} 所指的证书文件），未连接：{host}。请将详情告知县扶贫办"
                );
            }
        }
        if let Some(said) = certificate_dates_zh(why, host) {
            return said;
        }
        if lower.contains("expired")
            || lower.contains("notvalidyet")
            || lower.contains("not valid yet")
        {
            return format!(
                "服务器的证书已过期或尚未生效，未连接：{host}。请先核对本机的日期和时间；如无误，请告知县扶贫办更新服务器证书"
            );
        }
        return format!(
            "服务器的证书不受本机信任，未连接：{host}。请核对服务器地址；如本县使用自己的证书，\
             请向县扶贫办索取证书文件，并设置环境变量 {}=证书文件路径",
            crate::api::CA_FILE_VAR
        );
    }
    let lower = message.to_ascii_lowercase();
    if let Some((host, _)) = message
        .strip_prefix("upload to ")
        .and_then(|rest| rest.split_once(": timed out"))
    {
        return format!("网络太慢，照片上传超时：已传到服务器的部分会保留，下次同步接着传：{host}");
    }
    if lower.contains("timed out") || lower.contains("timeout") {
        return match unreachable_host(message) {
            Some(host) => format!("服务器无响应（等待超时），请稍后重试：{host}"),
            None => "服务器无响应（等待超时）：请稍后重试".into(),
        };
    }
    if lower.starts_with("download of") {
        return "照片下载中断：下次同步会接着下载".into();
    }
    if let Some(host) = broken_host(message) {
        return format!(
            "网络中断：与服务器的连接中途断开，请再同步一次（已完成的部分不会丢失）：{host}"
        );
    }
    match unreachable_host(message) {
        Some(host) => format!("网络不通：连不上服务器，请检查网络或服务器地址：{host}"),
        None => "网络中断：请检查网络后重试（已完成的部分不会丢失）".into(),
    }
}

/// A device whose key the town office revoked, said alike by the server's refusal at
/// login and by this device afterwards (QA s29c K2, s30a L2).
/// What to do first, then why: a status of three lines cut the action off at 60
/// columns (QA s32c W4).
const FORKED_ZH: &str = "本机不再签名新记录：请用新的数据目录重新登录（bangfu login --data-dir 新目录）。原因：服务器上有本机密钥签名、本机却没有的记录（数据目录可能是从备份恢复或复制来的），再签会使序号重复。已签名的记录仍可照常同步";
const REVOKED_ZH: &str = "本机的设备密钥已被乡镇扶贫办停用（曾报失），用它签名的记录都会被拒收：请用新的数据目录（--data-dir）重新登录；本机尚未同步的走访需重新录入";

/// A server's refusal in Chinese by its stable code; the server's English words only as
/// a short detail, for a code without words of its own here.
fn server_error_zh(status: u16, code: &str, message: &str) -> String {
    match code {
        // The server answers every login failure alike (wrong password, unknown phone,
        // wrong or expired enrollment code), so the words cover each case.
        // A password change whose current password is wrong: the caller is logged in.
        "invalid_credentials" if message.starts_with("current_password") => {
            "当前密码不对，密码未修改".into()
        }
        "invalid_credentials" => {
            "用户名、密码或激活码不对（首次登录须填写乡镇扶贫办发的激活码：--enroll-code，所填密码即成为您的密码；激活码只能用一次，已设过密码的请不加 --enroll-code 直接用密码登录；忘记密码，或激活码无效、已过期，请向乡镇扶贫办索取新码）"
                .into()
        }
        "enrollment_required" => {
            "首次登录须填写乡镇扶贫办发的激活码（--enroll-code），所填密码即成为您的密码".into()
        }
        "unauthenticated" => "登录已过期：请重新登录（本机数据不会丢失）".into(),
        // A phone found again after its town office revoked it (QA s29c K2).
        "device_revoked" => REVOKED_ZH.into(),
        "too_many_attempts" => "登录失败次数过多：请过 15 分钟再试".into(),
        "too_many_uploads" => {
            "本账号未完成的上传已达服务器上限：上传完成或过期后释放，下次同步再试".into()
        }
        "upload_in_progress" => "服务器仍在接收上一次的上传：稍候接着传（已收到的部分不会丢失）".into(),
        "conflict" if message.contains("another account") => {
            "本机密钥已登记给另一个账号：请用另一个 --data-dir（另一个数据目录）登录此账号".into()
        }
        "forbidden" => forbidden_zh(message),
        "busy" => "服务器正忙：请稍后重试".into(),
        // A redirect this device does not follow (QA s32b V4).
        "redirect" => {
            let to = message
                .split_once("pointing to ")
                .and_then(|(_, rest)| rest.split_once(": not followed"))
                .map_or("", |(to, _)| to);
            format!(
                "服务器要求改连另一个地址（{to}），本机没有跟随，登录信息和记录都未发往该地址。\
                 如这是服务器的新地址，请用 --server 设为该地址后重新登录；否则请告知乡镇扶贫办"
            )
        }
        "payload_too_large" => "文件太大，服务器拒收".into(),
        "invalid" if message.starts_with("new_password is the same") => {
            Lang::Zh.cli_password_unchanged().into()
        }
        "invalid" if message.starts_with("a password needs at least") => {
            let n: String = message.chars().filter(char::is_ascii_digit).collect();
            format!("密码太短：至少 {n} 位")
        }
        "bad_request" if message.ends_with(")") && message.contains("is too long") => {
            "用户名、密码或激活码太长".into()
        }
        "not_found" if !message.contains("route") => {
            format!("服务器上找不到（{}）", short_detail(message))
        }
        "unsupported_media_type" => "服务器不接受此文件格式".into(),
        "checksum_mismatch" | "range_not_satisfiable" => {
            "上传的文件与服务器收到的不符：下次同步会重新上传".into()
        }
        "unsupported_tus_version" => "服务器版本不同：请更新本应用".into(),
        crate::api::UNREADABLE => {
            "服务器的回答无法读取（服务器版本不同，或被代理改动）：请检查服务器地址，或更新本应用"
                .into()
        }
        _ if status == 404 && message.contains("route") => {
            "服务器地址不对（找不到接口，HTTP 404）：只填 http://主机:端口".into()
        }
        // The server's own timeout waiting for a request a stalled link never finished
        // sending (actix's bare 408): the network's fault, not a refusal (QA s22a F4).
        _ if status == 408 => {
            "网络太慢或中断：服务器等不到完整的请求（HTTP 408），请稍后再同步（已完成的部分不会丢失）"
                .into()
        }
        _ if status >= 500 => format!("服务器出错（HTTP {status}）：请稍后重试"),
        _ => format!("服务器拒绝（HTTP {status}）：{}", short_detail(message)),
    }
}

/// The server's refusal of an operation to this account (`forbidden`) in Chinese: the
/// server's known explanations said in the helper's words, any other as the plain
/// refusal. No English reaches the message; `bangfu` prints the server's words on the
/// "详情" line below it, as for every error.
fn forbidden_zh(message: &str) -> String {
    if message.contains("helper's device") {
        return "只有帮扶责任人的终端能同步走访记录：请用帮扶责任人账号登录".into();
    }
    if message.contains("attendance sheet") {
        return "考勤表由第二帮扶责任人填报和报送，本账号无需填报".into();
    }
    if message.contains("belongs to no county") {
        return "此账号不属于任何县市，无权进行此操作".into();
    }
    // `a ROLE account may not WHAT` (the server's role check).
    let role_check = message
        .strip_prefix("a ")
        .and_then(|rest| rest.split_once(" account may not "));
    match role_check {
        Some((role, what)) => {
            let who = role
                .parse::<bangfu_shared::Role>()
                .map_or("此", |r| r.label_zh());
            format!("{who}账号无权{}", forbidden_action_zh(what))
        }
        None => "此账号无权进行此操作".into(),
    }
}

/// What the server's role check says an account may not do, in Chinese ("进行此操作"
/// for an action this version does not know).
fn forbidden_action_zh(what: &str) -> &'static str {
    match what.trim_end_matches('.') {
        "read town reports" => "查看乡镇报表",
        "read county reports" => "查看县市报表",
        "review records" | "view sync anomalies and reviews" => "审核走访记录",
        "review field changes" => "审核家庭变化",
        "issue enrollment codes" => "发放激活码",
        "take a household out of pairing" => "让帮扶户退出结对",
        "bring a household back into pairing" => "让帮扶户恢复结对",
        "import a ledger" | "import" => "导入台账",
        "export the ledger" => "导出台账",
        "change the policy" => "修改考核政策",
        _ => "进行此操作",
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

// ---------------------------------------------------------------------------------------
// What a sync or `verify` found wrong ([`crate::problem::Problem`]), in the helper's
// language. Kept in a block of its own.

impl Lang {
    /// A problem of a sync or `verify` report, with what to do where the helper can do
    /// something. English is the problem's own text.
    pub fn problem(self, p: &crate::problem::Problem) -> String {
        use crate::problem::{Problem as P, join};
        if self == Lang::En {
            return p.to_string();
        }
        // A photo or the household's signature image: the hash does not say which.
        let img = |sha: &str| format!("图片 {}…", sha.get(..12).unwrap_or(sha));
        match p {
            P::ImageNotOnDevice { sha256 } => {
                format!(
                    "{}不在本机，无法上传：请作废此次走访后重新记录",
                    img(sha256)
                )
            }
            P::ImageUnreadable { sha256, detail } => {
                format!("{}读取失败（{detail}），下次同步再试", img(sha256))
            }
            P::ImageDamaged { sha256 } => format!(
                "{}在本机已损坏（与签名时不符），无法上传：请恢复原文件，或作废此次走访后重新记录",
                img(sha256)
            ),
            P::ImageRefused {
                sha256,
                reason,
                records,
            } => format!(
                "{}被服务器拒收：{reason}；记录 {} 仍待传照片，下次同步再试",
                img(sha256),
                join(records)
            ),
            P::UploadsDeferred { files, records, .. } => format!(
                "{files} 张图片未上传：本账号未完成的上传已达服务器上限（上传完成或过期后释放）；\
                 记录 {} 仍待传照片，下次同步再试",
                join(records)
            ),
            P::DownloadMismatch { sha256 } => {
                format!("从服务器下载的{}与其哈希不符，未保存", img(sha256))
            }
            P::DownloadNotImage { sha256, reason } => {
                format!("从服务器下载的{}无法读取（{reason}），未保存", img(sha256))
            }
            P::DownloadFailed { sha256, detail } => {
                format!("{}下载失败：{detail}", img(sha256))
            }
            P::RecordUnreadable { id, detail } => {
                format!("服务器发来的记录 {id} 无法读取（{detail}），已跳过")
            }
            P::RecordNewerFormat { id, .. } => {
                format!("服务器发来的记录 {id} 需新版本软件才能读取：已保留，升级后自动导入")
            }
            P::RecordNotStored { id, detail } => {
                format!("服务器发来的记录 {id} 无法保存到本机：{detail}")
            }
            P::RecordConflict { id } => {
                format!("记录 {id}：服务器上同一编号是另一条记录，本机记录未被覆盖")
            }
            P::SequenceTaken { id, device_id, seq } => format!(
                "服务器发来的记录 {id}：本机已有终端 {device_id} 的第 {seq} 号记录，与之不同，未导入"
            ),
            P::NotProcessed { id } => format!("记录 {id} 服务器未处理，下次同步重发"),
            P::SheetUnavailable { quarter, reason } => {
                format!("{quarter} 考勤表未能取得：{reason}")
            }
            P::SequenceGap { id, seq, expected } => {
                format!("记录 {id}：序号为 {seq}，应为 {expected}（记录链有缺口）")
            }
            P::ChainBroken { id } => format!("记录 {id}：与上一条记录的哈希链不相接"),
            P::ContentChanged { id } => format!("记录 {id}：内容与保存时的哈希不符（已被改动）"),
            P::BadSignature { id } => format!("记录 {id}：签名与本机密钥不符"),
            P::RecordImageDamaged { id, sha256 } => {
                format!("记录 {id}：{}缺失或已被改动", img(sha256))
            }
            P::NoVisitRow { id } => format!("记录 {id}：走访列表中没有这条走访"),
            P::Other { detail } => detail.clone(),
        }
    }
}

/// A visit list over its bound (`problems: at most 200 entries in a visit, got 201`,
/// from `bangfu_shared::visit`) in Chinese, naming the field by its label (QA s23d F5).
fn list_bound_zh(m: &str) -> Option<String> {
    let (field, rest) = m.split_once(": at most ")?;
    let (max, got) = rest.split_once(" entries in a visit, got ")?;
    let label = match field {
        "policies" => "宣讲政策",
        "problems" => "发现问题",
        "help" => "帮",
        "support" => "扶",
        "deliveries" => "送",
        "family_changes" => "家庭变化",
        "photos" => "照片",
        _ => return None,
    };
    Some(format!("{label}：一次走访最多 {max} 项，现有 {got} 项"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ClientError;

    /// A record with both clock flags is said not to count, and nothing beside it says
    /// it does (QA s26d F6): the mark of a clock gone back speaks of the mark only.
    /// QA s30c N1: a sheet refused for an invisible character is said in Chinese.
    #[test]
    fn a_forked_device_is_told_what_to_do_first() {
        let said = Lang::Zh.error(&ClientError::DeviceForked);
        assert!(
            said.starts_with(
                "本机不再签名新记录：请用新的数据目录重新登录（bangfu login --data-dir 新目录）"
            ),
            "{said}"
        );
    }

    #[test]
    fn a_sheet_is_warned_of_only_while_its_quarter_runs() {
        let q: bangfu_shared::report::Quarter = "2026Q4".parse().unwrap();
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        let early = Lang::Zh.sheet_early(q, day(12, 6)).unwrap();
        assert!(early.starts_with("本季度尚未结束（至12月31日）"), "{early}");
        assert!(Lang::Zh.sheet_early(q, day(12, 31)).is_some());
        assert_eq!(
            Lang::Zh.sheet_early(q, NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()),
            None
        );
    }

    #[test]
    fn a_sheet_refused_for_its_remark_is_said_in_chinese() {
        let said =
            super::sheet_refusal_zh("an entry of remarks holds the control character U+000B");
        assert!(
            said.contains("不可见的控制字符") && !said.contains("U+"),
            "{said}"
        );
        assert_eq!(super::sheet_refusal_zh("other words"), "other words");
    }

    #[test]
    fn clock_flags_do_not_contradict_each_other() {
        for lang in [Lang::Zh, Lang::En] {
            let back = lang.flag_text(&Flag::ClockWentBack);
            assert!(!back.contains("计入") && !back.contains("counts"), "{back}");
        }
        assert!(
            Lang::Zh
                .flag_text(&Flag::ClockBehind)
                .contains("不计入考勤")
        );
    }

    #[test]
    fn a_clock_off_says_which_way_and_by_how_much() {
        let year_slow = -(365 * 86_400 + 2 * 3_600);
        assert!(
            Lang::Zh
                .clock_off(year_slow)
                .starts_with("本机时间比服务器慢365天2小时：请先校准本机日期和时间"),
            "{}",
            Lang::Zh.clock_off(year_slow)
        );
        assert!(
            Lang::Zh
                .clock_off(15 * 60)
                .starts_with("本机时间比服务器快15分钟：")
        );
        assert!(
            Lang::En
                .clock_off(2 * 86_400)
                .starts_with("this device's clock is 2 d ahead of the server's")
        );
        // Measured a second short: still three days (QA s31b R8).
        assert!(
            Lang::Zh
                .clock_off(-(3 * 86_400 - 1))
                .starts_with("本机时间比服务器慢3天："),
            "{}",
            Lang::Zh.clock_off(-(3 * 86_400 - 1))
        );
    }

    #[test]
    fn a_refused_text_is_named_in_chinese() {
        use bangfu_shared::visit::{VisitError, check_text};
        let long = VisitError::from(check_text(&"长".repeat(5000), "notes", 4000).unwrap_err());
        assert_eq!(
            Lang::Zh.visit_error(&long),
            "备注过长（5000 字，上限 4000 字）"
        );
        let esc = VisitError::from(check_text("a\u{1b}b", "problems", 1000).unwrap_err());
        let zh = Lang::Zh.visit_error(&esc);
        assert!(
            zh.starts_with("发现的问题含有不可见的控制字符 U+001B"),
            "{zh}"
        );
        assert!(
            long.to_string().contains("over the limit of 4000"),
            "English as before"
        );
    }

    /// QA s28b F2, F3: a CA file that cannot be used, and an expired certificate, are
    /// said as what they are, not as a network that is down.
    #[test]
    fn certificate_troubles_are_not_network_troubles() {
        let zh = |m: &str| Lang::Zh.error(&ClientError::Network(m.into()));
        let bad = zh("BANGFU_CA_FILE=/x/ca.pem: No such file or directory (os error 2)");
        assert!(
            bad.contains("证书文件无法使用") && bad.contains("/x/ca.pem") && !bad.contains("网络"),
            "{bad}"
        );
        let expired =
            zh("untrusted certificate at https://a.example: invalid peer certificate: Expired");
        assert!(
            expired.contains("已过期") && expired.contains("日期和时间"),
            "{expired}"
        );
        // With the dates the verifier gives, both are said, so a right clock is seen to
        // be right (QA s28c G4): 2026-01-01 00:00 UTC expired, checked 2026-12-05 12:00.
        let dated = zh(
            "untrusted certificate at https://a.example: invalid peer certificate: \
             certificate expired: verification time 1796472000 (UNIX), but certificate is not \
             valid after 1767225600 (29246400 seconds ago)",
        );
        assert!(
            dated.contains("已于2026-01-01 08:00过期")
                && dated.contains("本机时间为2026-12-05 20:00")
                && dated.contains("更新服务器证书")
                && dated.contains("https://a.example"),
            "{dated}"
        );
        let early = zh(
            "untrusted certificate at https://a.example: invalid peer certificate: \
             certificate not valid yet: verification time 1767225600 (UNIX), but certificate is \
             not valid before 1796472000 (29246400 seconds in future)",
        );
        assert!(
            early.contains("要到2026-12-05 20:00才生效") && early.contains("本机时间为2026-01-01"),
            "{early}"
        );
        // A name that does not match, and a CA file set that did not sign the server,
        // are not told to set the CA file (QA s29a I8).
        let name = zh(
            "untrusted certificate at https://a.example: invalid peer certificate: \
             certificate not valid for name \"a.example\"; certificate is only valid for DnsName(\"b.example\")",
        );
        assert!(
            name.contains("不是为这个地址签发的") && !name.contains("BANGFU_CA_FILE"),
            "{name}"
        );
        let other_ca = zh(
            "untrusted certificate at https://a.example: invalid peer certificate: UnknownIssuer (trusting BANGFU_CA_FILE)",
        );
        assert!(
            other_ca.contains("不是由环境变量 BANGFU_CA_FILE 所指的证书文件签发的"),
            "{other_ca}"
        );
        let ca_as_leaf = zh(
            "untrusted certificate at https://a.example: invalid peer certificate: Other(OtherError(CaUsedAsEndEntity)) (trusting BANGFU_CA_FILE)",
        );
        assert!(ca_as_leaf.contains("另行签发服务器证书"), "{ca_as_leaf}");
        let unknown = zh(
            "untrusted certificate at https://a.example: invalid peer certificate: UnknownIssuer",
        );
        assert!(unknown.contains("不受本机信任"), "{unknown}");
    }

    /// QA s28a F10: a time out of the years is said in Chinese, in China time.
    #[test]
    fn a_time_out_of_the_years_is_said_in_china_time() {
        use bangfu_shared::visit::VisitBody;
        use chrono::TimeZone;
        let typed = chrono::Utc
            .with_ymd_and_hms(1999, 12, 31, 15, 59, 0)
            .unwrap();
        let err = VisitBody::new(bangfu_shared::VisitKind::Phone, typed)
            .validate()
            .unwrap_err();
        assert_eq!(
            Lang::Zh.visit_error(&err),
            "走访时间 1999-12-31 23:59:00 不在2000年至2100年之间，请更正"
        );
    }

    #[test]
    fn errors_reach_the_helper_in_chinese_with_the_reason_before_the_path() {
        let bad_time = crate::draft::parse_local_time("明天").unwrap_err();
        let zh = Lang::Zh.error(&bad_time);
        assert!(zh.starts_with("时间：") && zh.contains("不是时间"), "{zh}");
        let bad_delivery = crate::draft::parse_delivery("大米:很多").unwrap_err();
        assert!(Lang::Zh.error(&bad_delivery).contains("不是金额"));
        let void = ClientError::Field {
            field: "reason",
            problem: crate::error::FieldProblem::VoidReasonMissing,
        };
        assert_eq!(Lang::Zh.error(&void), "作废原因：作废须填写原因");
        assert_eq!(
            Lang::En.error(&void),
            "Reason to void: a void needs a reason"
        );
        // A list over its bound, in the helper's words (QA s23d F5).
        let mut long = bangfu_shared::visit::VisitBody::new(
            bangfu_shared::VisitKind::Phone,
            chrono::Utc::now(),
        );
        long.problems = vec!["缺水".into(); 201];
        let err = ClientError::Visit(long.validate().unwrap_err());
        assert_eq!(
            Lang::Zh.error(&err),
            "发现问题：一次走访最多 200 项，现有 201 项"
        );

        // The sheet commands' refusals, with no English left in them.
        let no_sheet = ClientError::NotFound {
            what: "attendance sheet",
            id: "2026Q1".into(),
        };
        assert_eq!(
            Lang::Zh.error(&no_sheet),
            "本机没有此考勤表（请先联网同步取回）：2026Q1"
        );
        let no_row = ClientError::NotFound {
            what: "row of the attendance sheet",
            id: "61".into(),
        };
        assert_eq!(Lang::Zh.error(&no_row), "本机没有此考勤表中的这一户：61");
        let first = ClientError::Refused(crate::sheets::SECOND_HELPER_ONLY.into());
        assert!(!Lang::Zh.error(&first).is_ascii());
        assert!(Lang::Zh.error(&first).contains("第二帮扶责任人"));

        let long = std::path::PathBuf::from(format!("/sdcard/{}/IMG_0001.txt", "DCIM/".repeat(20)));
        let e = ClientError::NotAnImage {
            path: long,
            reason: "format unknown".into(),
        };
        let zh = Lang::Zh.error(&e);
        assert!(zh.starts_with("不是可读的图片"), "{zh}");
        assert!(e.to_string().starts_with("not a readable image"), "{e}");
        // English stays the errors' own text.
        assert_eq!(Lang::En.error(&e), e.to_string());
        // A damaged image is not said to be missing, and the way out is named (QA
        // s22d F7).
        let e = ClientError::ImageMissing("e71df79ea185aa00".into());
        let zh = Lang::Zh.error(&e);
        assert!(
            zh.contains("缺失或已损坏") && zh.contains("--replace-photos"),
            "{zh}"
        );
        assert!(e.to_string().contains("damaged"), "{e}");
        // A form field by its label, not its code; what was typed, cut (QA s22b F7).
        let e = crate::draft::parse_family_change(&format!("{}x", "长".repeat(1000))).unwrap_err();
        let en = Lang::En.error(&e);
        assert!(en.starts_with("Family changes: `长长"), "{en}");
        assert!(en.chars().count() < 120, "{en}");
        assert!(Lang::Zh.error(&e).chars().count() < 120);
    }

    /// The window a requirement missed, by the policy's window length: the previous
    /// window of the one holding today, in full for the detail, short for a list row.
    #[test]
    fn a_missed_window_is_named_by_its_period() {
        use crate::client::MissedWindow;
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        let home = |months, today| MissedWindow::before(VisitKind::Home, months, today);
        let aug = d(2026, 8, 20);
        for (months, today, full, short, en) in [
            (3, d(2026, 10, 5), "2026年第3季度", "第3季度", "Q3 2026"),
            (3, d(2026, 2, 1), "2025年第4季度", "去年第4季度", "Q4 2025"),
            (1, aug, "2026年7月", "7月", "Jul 2026"),
            (2, aug, "2026年5–6月", "5–6月", "May–Jun 2026"),
            (
                2,
                d(2026, 1, 31),
                "2025年11–12月",
                "去年11–12月",
                "Nov–Dec 2025",
            ),
            (4, aug, "2026年1–4月", "1–4月", "Jan–Apr 2026"),
            (6, aug, "2026年上半年", "上半年", "H1 2026"),
            (6, d(2026, 3, 1), "2025年下半年", "去年下半年", "H2 2025"),
            (12, aug, "2025年", "去年", "2025"),
        ] {
            let w = home(months, today);
            assert_eq!(Lang::Zh.window(&w, today, false), full, "{months} {today}");
            assert_eq!(Lang::Zh.window(&w, today, true), short, "{months} {today}");
            assert_eq!(Lang::En.window(&w, today, false), en, "{months} {today}");
        }
        let q3 = home(3, d(2026, 10, 5));
        assert_eq!((q3.from, q3.to), (d(2026, 7, 1), d(2026, 9, 30)));
        assert_eq!(
            Lang::Zh.missed_text(&q3, d(2026, 10, 5)),
            "逾期：2026年第3季度未入户"
        );
        assert_eq!(
            Lang::Zh.overdue_mark(Some(&q3), d(2026, 10, 5), true),
            "!逾期 第3季度"
        );
        assert_eq!(
            Lang::Zh.overdue_mark(Some(&q3), d(2026, 10, 5), false),
            "!逾期"
        );
        assert_eq!(Lang::En.window(&home(12, aug), aug, true), "last year");
    }

    /// A `forbidden` answer is said in Chinese, the server's known explanations in the
    /// helper's words, and no English in the message (the CLI's "详情" line has it).
    #[test]
    fn a_forbidden_answer_is_chinese_without_the_servers_english() {
        let forbidden = |message: &str| ClientError::Server {
            status: 403,
            code: "forbidden".into(),
            message: message.into(),
        };
        for (message, said) in [
            (
                "only a helper's device pushes records",
                "只有帮扶责任人的终端能同步走访记录：请用帮扶责任人账号登录",
            ),
            (
                "attendance sheets are kept by second helpers: a first helper account has none \
                 (your visits appear on your households' second helper's sheet)",
                "考勤表由第二帮扶责任人填报和报送，本账号无需填报",
            ),
            (
                "a first_helper account may not review records",
                "第一帮扶责任人账号无权审核走访记录",
            ),
            (
                "a second_helper account may not launch rockets",
                "第二帮扶责任人账号无权进行此操作",
            ),
            ("a robot account may not read", "此账号无权进行此操作"),
            ("the moon is in the wrong phase", "此账号无权进行此操作"),
            ("", "此账号无权进行此操作"),
        ] {
            let zh = Lang::Zh.error(&forbidden(message));
            assert_eq!(zh, said, "{message}");
            assert!(!zh.chars().any(|c| c.is_ascii_alphabetic()), "{zh}");
        }
        // English keeps the server's words.
        let e = forbidden("a first_helper account may not review records");
        assert!(Lang::En.error(&e).contains("may not review records"));
    }

    fn server(status: u16, code: &str, message: &str) -> ClientError {
        ClientError::Server {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// Chinese lines use Chinese words and full-width punctuation: no `ok`, `:`, `( )`
    /// or `..` in them (L2).
    #[test]
    fn chinese_lines_carry_no_english_or_ascii_punctuation() {
        let report = crate::client::VerifyReport {
            integrity: "ok".into(),
            records: 3,
            other_devices_records: 0,
            problems: vec![],
        };
        assert_eq!(
            Lang::Zh.cli_verify(&report),
            "数据库检查：正常；本机记录 3 条已检查；问题 0 个"
        );
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let periods = Lang::Zh.periods(&[(d(1, 1), d(12, 3))]);
        assert_eq!(periods, "2026-01-01 至 2026-12-03");
        assert_eq!(Lang::Zh.paren("2 条备注"), "（2 条备注）");
    }

    /// L4: a coming exit in another year than today's says the year; within the year
    /// it does not. Every shorter form keeps the other year too.
    #[test]
    fn a_coming_exit_in_another_year_says_the_year() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        let today = d(2026, 12, 5);
        assert_eq!(
            Lang::Zh.ending_marks((d(2026, 12, 20), true), today)[0],
            "将于12月20日退出"
        );
        assert_eq!(
            Lang::Zh.ending_marks((d(2027, 1, 15), true), today),
            ["将于2027年1月15日退出", "2027年1月15日退出", "退2027/1/15"]
        );
        assert_eq!(
            Lang::Zh.ending_marks((d(2026, 12, 28), true), today),
            ["将于12月28日退出", "12月28日退出", "退12/28"]
        );
        assert_eq!(
            Lang::En.ending_marks((d(2027, 1, 15), true), today)[0],
            "leaves 2027-01-15"
        );
        // A handover to another helper is not an exit (QA s24b F11).
        assert_eq!(
            Lang::Zh.ending_marks((d(2026, 12, 28), false), today),
            ["将于12月28日交接", "12月28日交接", "交12/28"]
        );
        assert_eq!(
            Lang::En.ending_marks((d(2026, 12, 28), false), today),
            ["hands over 2026-12-28", "hands over 12-28", "to 12/28"]
        );
        assert_eq!(
            Lang::Zh.pairing_from(d(2026, 12, 29), today, false),
            "12月29日起结对"
        );
    }

    /// L6/L7: photos are counted with a space (and a singular in English), and an
    /// English aside keeps a space before its parenthesis.
    #[test]
    fn photo_counts_and_asides_read_as_words() {
        assert_eq!(Lang::Zh.photo_count(0), "照片 0");
        assert_eq!(Lang::En.photo_count(1), "1 photo");
        assert_eq!(Lang::En.photo_count(2), "2 photos");
        assert_eq!(
            Lang::En.aside("unpaired from 2026-12-05"),
            " (unpaired from 2026-12-05)"
        );
        assert_eq!(
            Lang::Zh.aside("2026-12-05起不再结对"),
            "（2026-12-05起不再结对）"
        );
        let open = [(
            NaiveDate::from_ymd_opt(2026, 12, 29).unwrap(),
            None::<NaiveDate>,
        )];
        assert_eq!(
            crate::error::format_open_periods(&open, Lang::Zh),
            "2026-12-29 起"
        );
        assert_eq!(
            crate::error::format_open_periods(&open, Lang::En),
            "from 2026-12-29"
        );
    }

    /// At 80 columns the TUI's sync failure line keeps its advice: the server's address,
    /// the least needed, comes last (L1).
    #[test]
    fn a_network_failure_keeps_its_advice_within_80_columns() {
        for message in [
            "cannot reach http://127.0.0.1:18082: error sending request for url (http://127.0.0.1:18082/api/v1/sync/push)",
            "no answer from http://127.0.0.1:18082: timed out (error sending request)",
        ] {
            let line = format!(
                "{}{}",
                Lang::Zh.texts().sync_failed,
                Lang::Zh.error(&ClientError::Network(message.into()))
            );
            let advice_end = line.find("：http").unwrap();
            let width = ratatui::text::Span::raw(&line[..advice_end]).width();
            assert!(width <= 80, "{width}: {line}");
        }
    }

    /// QA s31b R6: a sync stopped by an ended session names the login as the next step,
    /// not running sync again alone.
    #[test]
    fn a_sync_stopped_by_an_ended_session_says_log_in_first() {
        let counts = crate::store::SyncCounts::default();
        let ended = Lang::Zh.sync_stopped(&counts, true);
        assert!(ended.contains("先运行 bangfu login 重新登录"), "{ended}");
        let cut = Lang::Zh.sync_stopped(&counts, false);
        assert!(
            cut.contains("再次运行 bangfu sync") && !cut.contains("login"),
            "{cut}"
        );
    }

    /// The TUI's one status line says the first problem; `bangfu sync`, which lists
    /// every problem on a line of its own, leaves it out of the summary (QA s22a F5).
    #[test]
    fn the_command_line_summary_leaves_the_problems_to_their_own_lines() {
        let r = SyncReport {
            problems: vec![crate::problem::Problem::ImageDamaged {
                sha256: "71d9fe0fe49a".into(),
            }],
            ..SyncReport::default()
        };
        assert!(Lang::Zh.sync_summary(&r).contains("71d9fe0fe49a"));
        let counts = Lang::Zh.sync_summary_without_problems(&r);
        // With a problem left the run is not said done (QA s31b R8).
        assert!(
            counts.starts_with("同步结束，仍有未完成") && !counts.contains("71d9fe0fe49a"),
            "{counts}"
        );
        assert!(
            Lang::Zh
                .sync_summary(&SyncReport::default())
                .starts_with("同步完成")
        );
    }

    /// Records whose photos need no sending any more (their visit voided or amended)
    /// are said, so the count of synced records does not read as records lost (QA s29b
    /// J12).
    #[test]
    fn the_summary_accounts_for_records_whose_photos_are_moot() {
        let mut r = SyncReport {
            synced: 5,
            ..SyncReport::default()
        };
        r.counts.awaiting_superseded = 1;
        let said = Lang::Zh.sync_summary(&r);
        assert!(
            said.contains("另有1条记录所属走访已作废或已更正，其照片无需上传"),
            "{said}"
        );
    }

    /// The common failures reach the helper in Chinese, without the HTTP library's or
    /// the server's English cut off mid-word.
    #[test]
    fn common_failures_are_said_in_chinese() {
        let cases = [
            (
                ClientError::Network(
                    "cannot reach http://10.0.0.5:8080: error sending request for url (http://10.0.0.5:8080/api/v1/auth/login)".into(),
                ),
                "网络不通：连不上服务器，请检查网络或服务器地址：http://10.0.0.5:8080",
            ),
            (
                ClientError::Network(
                    "upload to http://10.0.0.5:8080: timed out (error sending request)".into(),
                ),
                "网络太慢，照片上传超时：已传到服务器的部分会保留，下次同步接着传：http://10.0.0.5:8080",
            ),
            (
                ClientError::Network("cannot reach http://10.0.0.5:8080: operation timed out".into()),
                "服务器无响应（等待超时），请稍后重试：http://10.0.0.5:8080",
            ),
            (
                server(
                    408,
                    "http_error",
                    "answered 408 Request Timeout with no explanation",
                ),
                "网络太慢或中断：服务器等不到完整的请求（HTTP 408），请稍后再同步（已完成的部分不会丢失）",
            ),
            (
                ClientError::Network(
                    "connection to http://10.0.0.5:8080 broke off: error decoding response body".into(),
                ),
                "网络中断：与服务器的连接中途断开，请再同步一次（已完成的部分不会丢失）：http://10.0.0.5:8080",
            ),
            (
                server(401, "invalid_credentials", "wrong username or password"),
                "用户名、密码或激活码不对（首次登录须填写乡镇扶贫办发的激活码：--enroll-code，所填密码即成为您的密码；激活码只能用一次，已设过密码的请不加 --enroll-code 直接用密码登录；忘记密码，或激活码无效、已过期，请向乡镇扶贫办索取新码）",
            ),
            (
                server(409, "device_revoked", "this device was revoked"),
                "本机的设备密钥已被乡镇扶贫办停用（曾报失），用它签名的记录都会被拒收：请用新的数据目录（--data-dir）重新登录；本机尚未同步的走访需重新录入",
            ),
            (
                server(422, "invalid", "a password needs at least 8 characters"),
                "密码太短：至少 8 位",
            ),
            (
                ClientError::Visit(
                    "生了"
                        .parse::<bangfu_shared::visit::FamilyChangeKind>()
                        .unwrap_err(),
                ),
                "不认识的家庭变化类型“生了”（可用：出生、迁入、婚入、死亡、迁出、婚出）",
            ),
            (
                server(409, "conflict", "this device key is registered to another account"),
                "本机密钥已登记给另一个账号：请用另一个 --data-dir（另一个数据目录）登录此账号",
            ),
            (ClientError::SessionExpired, "服务器不再接受本机的登录：请重新登录（本机数据不会丢失）"),
            (ClientError::DeviceRevoked, REVOKED_ZH),
            (
                server(404, "not_found", "route not found"),
                "服务器地址不对（找不到接口，HTTP 404）：只填 http://主机:端口",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(Lang::Zh.error(&e), want, "{e}");
        }
        let e = ClientError::NotAnImage {
            path: "/tmp/a.txt".into(),
            reason: "The image format could not be determined".into(),
        };
        let zh = Lang::Zh.error(&e);
        assert!(!zh.contains("format could"), "{zh}");
        // An unknown refusal keeps a short detail of the server's words.
        let long = "x".repeat(200);
        let zh = Lang::Zh.error(&server(422, "something_new", &long));
        assert!(
            zh.starts_with("服务器拒绝（HTTP 422）：") && zh.ends_with('…'),
            "{zh}"
        );
        assert!(zh.chars().count() < 80, "{zh}");
    }

    /// A void and an amendment each name their own reason.
    #[test]
    fn plain_http_is_said_with_what_to_do() {
        let zh = Lang::Zh.cli_sends_in_clear("http://10.0.0.5:8080");
        assert!(zh.contains("明文") && zh.contains("https://"), "{zh}");
        let en = Lang::En.cli_sends_in_clear("http://10.0.0.5:8080");
        assert!(en.contains("in clear") && en.contains("10.0.0.5"), "{en}");
    }

    #[test]
    fn a_missing_reason_names_the_void_or_the_amendment() {
        let amend = ClientError::AmendmentReasonMissing;
        assert_eq!(
            Lang::Zh.error(&amend),
            "更正原因：更正须填写原因（为何更正）"
        );
        assert!(Lang::En.error(&amend).contains("amendment needs a reason"));
    }
}
