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
    let said = super::sheet_refusal_zh("an entry of remarks holds the control character U+000B");
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
    let unknown =
        zh("untrusted certificate at https://a.example: invalid peer certificate: UnknownIssuer");
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
    let mut long =
        bangfu_shared::visit::VisitBody::new(bangfu_shared::VisitKind::Phone, chrono::Utc::now());
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

/// QA s33a S3, S5: a full disk, the server's or the device's, is said in words a helper
/// can act on, not as a bare HTTP 503 or SQLite's English.
#[test]
fn a_full_disk_is_said_so() {
    let server = super::errors::server_error_zh(
        503,
        "storage_unavailable",
        "the server cannot write to its storage just now (full or not writable)",
    );
    assert!(server.starts_with("服务器存储空间已满"), "{server}");
    let full = ClientError::Io {
        path: "photos/2c/2c10".into(),
        error: std::io::Error::from(std::io::ErrorKind::StorageFull),
    };
    assert!(Lang::Zh.error(&full).starts_with("本机存储空间已满"));
    let store = ClientError::Store(sea_orm::DbErr::Custom(
        "Execution Error: error returned from database: (code: 13) database or disk is full".into(),
    ));
    assert!(Lang::Zh.error(&store).starts_with("本机存储空间已满"));
    let other = ClientError::Store(sea_orm::DbErr::Custom("locked".into()));
    assert!(Lang::Zh.error(&other).starts_with("本机数据库出错"));
}

/// QA s33d S3: a store from a newer client is said as such, in Chinese, not as corrupt.
#[test]
fn a_store_from_a_newer_client_asks_for_an_update() {
    let said = Lang::Zh.error(&ClientError::NewerStore {
        found: 10,
        known: 9,
    });
    assert!(
        said.contains("更新版本") && said.contains("请升级本程序"),
        "{said}"
    );
    assert!(
        !said.contains("无法读取") && !said.contains("schema"),
        "{said}"
    );
}
