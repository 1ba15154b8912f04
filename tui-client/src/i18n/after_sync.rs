//! What a sync's report says after it: visits not counted, decisions, review notes.

use super::*;

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
