//! Errors in Chinese: the server's refusals by code, network and certificate trouble.

use super::*;

/// At most a few words of English detail after a Chinese message: the helper acts on
/// the Chinese; the detail is for whoever they call.
pub(super) fn short_detail(text: &str) -> String {
    pub(super) const MAX: usize = 48;
    let text = text.trim();
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}…")
}

/// The server's address in a network error (`cannot reach URL: …`, as the API client
/// words it).
pub(super) fn unreachable_host(message: &str) -> Option<&str> {
    message
        .strip_prefix("cannot reach ")
        .or_else(|| message.strip_prefix("no answer from "))
        .and_then(|rest| rest.split_once(": "))
        .map(|(host, _)| host)
}

/// The server's address in a network error of a connection that broke off
/// (`connection to URL broke off: …`).
pub(super) fn broken_host(message: &str) -> Option<&str> {
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
pub(super) fn certificate_dates_zh(why: &str, host: &str) -> Option<String> {
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
pub(super) fn network_error_zh(message: &str) -> String {
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
pub(super) const FORKED_ZH: &str = "本机不再签名新记录：请用新的数据目录重新登录（bangfu login --data-dir 新目录）。原因：服务器上有本机密钥签名、本机却没有的记录（数据目录可能是从备份恢复或复制来的），再签会使序号重复。已签名的记录仍可照常同步";
pub(super) const REVOKED_ZH: &str = "本机的设备密钥已被乡镇扶贫办停用（曾报失），用它签名的记录都会被拒收：请用新的数据目录（--data-dir）重新登录；本机尚未同步的走访需重新录入";

/// A server's refusal in Chinese by its stable code; the server's English words only as
/// a short detail, for a code without words of its own here.
pub(super) fn server_error_zh(status: u16, code: &str, message: &str) -> String {
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
        // The server's disk is full or read-only: the helper tells someone who can act
        // (QA s33a S3: it read as a bare HTTP 503).
        "storage_unavailable" => {
            "服务器存储空间已满或不可写：本机记录已保存，不会丢失；请告知乡镇扶贫办（服务器管理员），稍后再同步"
                .into()
        }
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
pub(super) fn forbidden_zh(message: &str) -> String {
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
pub(super) fn forbidden_action_zh(what: &str) -> &'static str {
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
