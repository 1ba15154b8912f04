//! Why the server refused a record, by its stable code, in the helper's language.

use super::*;

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
