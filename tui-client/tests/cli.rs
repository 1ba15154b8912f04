//! The headless commands, run as the real `bangfu` binary against a logged-in store:
//! record a home visit with two photos and a phone call, "restart" (every command is a
//! new process) and find both with their photos; amend, void, refuse bad photos.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod common;

use std::path::Path;
use std::process::{Command, Output};

use bangfu_client::Limits;
use common::*;
use serde_json::Value;

fn bangfu(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bangfu"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn headless_story() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    runtime().block_on(login(&data, Limits::default()));
    let a = write_jpeg(&dir.path().join("a.jpg"), 1200, 900);
    let b = write_jpeg(&dir.path().join("b.jpg"), 900, 1200);
    let card = write_jpeg(&dir.path().join("card.jpg"), 600, 400);
    let s = |p: &Path| p.to_str().unwrap().to_string();

    let home = json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "new",
            "--household",
            "1",
            "--kind",
            "home",
            "--at",
            "2026-03-10 09:30",
            "--policy",
            "education",
            "--policy",
            "医疗",
            "--policy",
            "教育",
            "--problem",
            "屋顶漏雨",
            "--help-action",
            "联系危房改造",
            "--support",
            "介绍务工",
            "--deliver",
            "月饼:88:中秋",
            "--deliver",
            "大米:150",
            "--family-change",
            "birth:张小宝",
            "--notes",
            "一切正常",
            "--photo",
            &s(&a),
            "--photo",
            &s(&b),
            "--household-signature",
            &s(&card),
        ],
    ));
    assert_eq!(home["status"], "signed");
    // A policy given twice (by code and by its Chinese name) is explained once.
    assert_eq!(
        home["record"]["record"]["visit"]["policies"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{home}"
    );
    let home_id = home["record"]["record"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        home["record"]["record"]["visit"]["at"],
        "2026-03-10T01:30:00Z"
    );
    assert_eq!(
        home["record"]["record"]["visit"]["household_signature"]["method"],
        "paper_card"
    );

    let call = json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "new",
            "--household",
            "2",
            "--kind",
            "phone",
            "--problem",
            "药费",
        ],
    ));
    assert_eq!(call["record"]["record"]["seq"], 2);

    // A home visit with no household signature stays a draft: exit code 2.
    let draft = bangfu(
        &data,
        &[
            "--json",
            "visit",
            "new",
            "--household",
            "3",
            "--kind",
            "home",
            "--notes",
            "没人在家",
        ],
    );
    assert_eq!(draft.status.code(), Some(2));
    let d: Value = serde_json::from_slice(&draft.stdout).unwrap();
    assert_eq!(d["status"], "draft");
    let drafts = json(&bangfu(&data, &["--json", "drafts"]));
    assert_eq!(drafts.as_array().unwrap().len(), 1);

    // New processes find both visits, with their photos on disk.
    let list = json(&bangfu(&data, &["--json", "visit", "list"]));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let h = list
        .iter()
        .find(|v| v["visit_id"] == home_id.as_str())
        .unwrap();
    assert_eq!(h["sync_state"], "local");
    let photos = h["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 2);
    for p in photos {
        assert!(Path::new(p["path"].as_str().unwrap()).is_file());
    }

    // Amend (only the given fields change) and void.
    let amended = json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "amend",
            &home_id,
            "--problem",
            "屋顶漏雨已修",
            "--reason",
            "更新进展",
        ],
    ));
    let v = &amended["record"]["record"];
    assert_eq!(v["record_type"], "amendment");
    assert_eq!(v["target_id"], home_id.as_str());
    assert_eq!(v["visit"]["problems"][0], "屋顶漏雨已修");
    assert_eq!(
        v["visit"]["photos"].as_array().unwrap().len(),
        2,
        "photos carried over"
    );
    assert_eq!(v["visit"]["notes"], "一切正常");
    // An amendment that changes nothing is not signed (QA s21b F4).
    let unchanged = bangfu(&data, &["visit", "amend", &home_id, "--reason", "无变化"]);
    assert_eq!(unchanged.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unchanged.stderr).contains("没有改动"),
        "{}",
        String::from_utf8_lossy(&unchanged.stderr)
    );
    // A photo given to an amendment is added, as in the TUI's form, and the change is
    // said; `--replace-photos` replaces them (QA s21b F11).
    let c = write_jpeg(&dir.path().join("c.jpg"), 800, 600);
    let added = bangfu(
        &data,
        &[
            "--json",
            "visit",
            "amend",
            &home_id,
            "--photo",
            &s(&c),
            "--reason",
            "补拍",
        ],
    );
    assert!(
        String::from_utf8_lossy(&added.stderr).contains("照片 2 → 3 张"),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let added: Value = serde_json::from_slice(&added.stdout).unwrap();
    assert_eq!(
        added["record"]["record"]["visit"]["photos"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let replaced = json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "amend",
            &home_id,
            "--photo",
            &s(&c),
            "--replace-photos",
            "--reason",
            "只留一张",
        ],
    ));
    let photos = replaced["record"]["record"]["visit"]["photos"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(photos.len(), 1);
    let call_id = call["record"]["record"]["id"].as_str().unwrap();
    let voided = json(&bangfu(
        &data,
        &["--json", "visit", "void", call_id, "--reason", "打错电话"],
    ));
    assert_eq!(voided["record"]["record"]["record_type"], "void");

    let households = json(&bangfu(&data, &["--json", "households"]));
    let h1 = households
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == 1)
        .unwrap();
    assert_eq!(h1["last_home_visit"], "2026-03-10T01:30:00Z");
    let h2 = households
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == 2)
        .unwrap();
    assert!(
        h2["last_phone_call"].is_null(),
        "the voided call no longer counts"
    );

    let report = json(&bangfu(&data, &["--json", "verify"]));
    assert_eq!(report["integrity"], "ok");
    assert_eq!(report["records"], 6, "two visits, three amendments, a void");

    // Refusals are clear and attach nothing.
    let txt = dir.path().join("readme.txt");
    std::fs::write(&txt, "hello").unwrap();
    let out = bangfu(
        &data,
        &[
            "visit",
            "new",
            "--household",
            "2",
            "--kind",
            "phone",
            "--photo",
            &s(&txt),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a readable image"));
    let out = bangfu(
        &data,
        &[
            "--max-photo-mb",
            "0",
            "visit",
            "new",
            "--household",
            "2",
            "--kind",
            "phone",
            "--photo",
            &s(&a),
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("photo limit"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bangfu(
        &data,
        &[
            "visit",
            "new",
            "--household",
            "2",
            "--kind",
            "phone",
            "--deliver",
            "米:abc",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an amount in yuan"));
    assert_eq!(json(&bangfu(&data, &["--json", "verify"]))["records"], 6);
}

/// `visit amend` without a reason (or with a blank one) is refused, in Chinese like the
/// TUI's, and signs nothing: the town office reads the reason beside the change.
#[test]
fn an_amendment_needs_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    runtime().block_on(login(&data, Limits::default()));
    let call = json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "new",
            "--household",
            "2",
            "--kind",
            "phone",
            "--at",
            "2026-03-10 09:30",
            "--problem",
            "药费负担重",
        ],
    ));
    let id = call["record"]["record"]["id"].as_str().unwrap().to_string();
    for reason in [None, Some("  ")] {
        let mut args = vec!["visit", "amend", &id, "--problem", "已报销"];
        if let Some(r) = reason {
            args.extend(["--reason", r]);
        }
        let out = bangfu(&data, &args);
        assert_eq!(out.status.code(), Some(1), "{reason:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("bangfu: 更正原因：更正须填写原因（为何更正）"),
            "{err}"
        );
        let en = bangfu(&data, &[&["--lang", "en"], &args[..]].concat());
        let err = String::from_utf8_lossy(&en.stderr);
        assert!(err.contains("an amendment needs a reason"), "{err}");
    }
    assert_eq!(json(&bangfu(&data, &["--json", "verify"]))["records"], 1);
    let amended = json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "amend",
            &id,
            "--problem",
            "已报销",
            "--reason",
            "更新进展",
        ],
    ));
    assert_eq!(amended["record"]["record"]["record_type"], "amendment");
}

/// A home visit `visit new` kept as a draft (no signature) is finished headlessly with
/// `drafts sign`, or thrown away with `drafts discard`; a device without a screen is
/// no longer stuck with it.
#[test]
fn a_draft_is_signed_or_discarded_without_the_interface() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    runtime().block_on(login(&data, Limits::default()));
    let photo = write_jpeg(&dir.path().join("p.jpg"), 640, 480);
    let card = write_jpeg(&dir.path().join("card.jpg"), 600, 400);
    let (photo, card) = (
        photo.to_str().unwrap().to_string(),
        card.to_str().unwrap().to_string(),
    );
    let draft = |at: &str| {
        let out = bangfu(
            &data,
            &[
                "--json",
                "visit",
                "new",
                "--household",
                "1",
                "--kind",
                "home",
                "--at",
                at,
                "--photo",
                &photo,
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["draft_id"].as_str().unwrap().to_string()
    };
    let id = draft("2026-03-10 09:30");
    // Without a signature it is still refused, and kept.
    let out = bangfu(&data, &["drafts", "sign", &id]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("签字"), "{err}");
    let signed = json(&bangfu(
        &data,
        &[
            "--json",
            "drafts",
            "sign",
            &id,
            "--household-signature",
            &card,
        ],
    ));
    assert_eq!(signed["record"]["record"]["record_type"], "visit");
    assert_eq!(
        signed["record"]["record"]["visit"]["household_signature"]["method"], "paper_card",
        "{signed}"
    );
    assert_eq!(
        json(&bangfu(&data, &["--json", "drafts"])),
        Value::Array(vec![])
    );
    assert_eq!(json(&bangfu(&data, &["--json", "verify"]))["records"], 1);

    let other = draft("2026-03-11 09:30");
    let out = bangfu(&data, &["drafts", "discard", &other]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("已丢弃草稿 {other}")
    );
    assert_eq!(
        json(&bangfu(&data, &["--json", "drafts"])),
        Value::Array(vec![])
    );
    let out = bangfu(&data, &["drafts", "discard", &other]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("本机没有此草稿"), "{err}");
    assert_eq!(json(&bangfu(&data, &["--json", "verify"]))["records"], 1);
}

/// `visit new --photo` refuses a photo cut short, and a real picture with too many
/// pixels by its size, each in Chinese; nothing is signed.
#[test]
fn a_photo_cut_short_or_too_large_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    runtime().block_on(login(&data, Limits::default()));
    let whole = std::fs::read(write_jpeg(&dir.path().join("whole.jpg"), 800, 600)).unwrap();
    let half = dir.path().join("half.jpg");
    std::fs::write(&half, &whole[..whole.len() / 2]).unwrap();
    // A 30000×20000 frame header: the size is refused before anything is decoded.
    let mut big = whole.clone();
    let sof = big.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    big[sof + 5..sof + 9].copy_from_slice(&[0x4E, 0x20, 0x75, 0x30]);
    let bigdim = dir.path().join("bigdim.jpg");
    std::fs::write(&bigdim, &big).unwrap();
    let card = write_jpeg(&dir.path().join("card.jpg"), 600, 400);
    let attach = |photo: &Path, lang: &str| {
        let out = bangfu(
            &data,
            &[
                "--lang",
                lang,
                "visit",
                "new",
                "--household",
                "1",
                "--kind",
                "home",
                "--at",
                "2026-03-10 09:30",
                "--photo",
                photo.to_str().unwrap(),
                "--household-signature",
                card.to_str().unwrap(),
            ],
        );
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = attach(&half, "zh");
    assert!(
        err.starts_with("bangfu: 照片文件不完整或已损坏（可能仍在复制中），未添加：")
            && err.contains("half.jpg"),
        "{err}"
    );
    let err = attach(&bigdim, "zh");
    assert!(
        err.starts_with("bangfu: 照片 30000×20000 像素，太大（上限 12000 万像素），未添加："),
        "{err}"
    );
    let err = attach(&bigdim, "en");
    assert!(
        err.starts_with("bangfu: 30000×20000 pixels is too large for a photo"),
        "{err}"
    );
    assert_eq!(json(&bangfu(&data, &["--json", "verify"]))["records"], 0);
}

#[test]
fn not_logged_in_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = bangfu(dir.path(), &["households"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bangfu login"));
    let out = bangfu(
        dir.path(),
        &["login", "--server", "http://127.0.0.1:9", "--username", "u"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-stdin"));
}

#[test]
fn visit_list_shows_sync_states_and_sync_without_network_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = runtime();
    let client = rt.block_on(login(&data, Limits::default()));
    let call = |h: &str| {
        let v = json(&bangfu(
            &data,
            &[
                "--json",
                "visit",
                "new",
                "--household",
                h,
                "--kind",
                "phone",
            ],
        ));
        v["record"]["record"]["id"].as_str().unwrap().to_string()
    };
    let (refused, waiting) = (call("1"), call("2"));
    rt.block_on(async {
        use sea_orm::ConnectionTrait as _;
        let db = client.store().connection();
        db.execute_unprepared(&format!(
            "UPDATE records SET sync_state = 'rejected', sync_reason = 'household 1 has never been paired with this helper' WHERE id = '{refused}'"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "UPDATE records SET sync_state = 'awaiting_photos' WHERE id = '{waiting}'"
        ))
        .await
    })
    .unwrap();

    let out = bangfu(&data, &["visit", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(id))
            .unwrap()
            .to_string()
    };
    assert!(
        line(&refused).ends_with("被拒：household 1 has never been paired with this helper"),
        "{text}"
    );
    assert!(line(&waiting).ends_with("待传照片"), "{text}");
    let list = json(&bangfu(&data, &["--json", "visit", "list"]));
    let v = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["visit_id"] == refused.as_str())
        .unwrap();
    assert_eq!(v["sync_state"], "rejected");
    assert!(
        v["sync_reason"]
            .as_str()
            .unwrap()
            .contains("never been paired")
    );

    // No server behind the saved URL: a clear network error, exit code 1, no change.
    let out = bangfu(&data, &["sync", "--attempts", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("network") && err.contains("127.0.0.1:9"),
        "{err}"
    );
    // And what stands on the device, so the helper knows nothing went (QA s25c F5).
    assert!(
        err.contains("同步未完成：本机已同步 0，待同步 1（其中待传照片 1），被拒 1"),
        "{err}"
    );
    let list = json(&bangfu(&data, &["--json", "visit", "list"]));
    let states: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["sync_state"].as_str().unwrap())
        .collect();
    let mut states = states;
    states.sort();
    assert_eq!(states, ["awaiting_photos", "rejected"]);
}

/// A second helper's quarter end without the terminal interface: show the pulled sheet,
/// write a remark, see it, sign and queue the submission; bad quarters and households
/// are refused with a reason.
#[test]
fn headless_attendance_sheet() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    runtime().block_on(async {
        let client = login(&data, Limits::default()).await;
        become_second_helper_with_sheet(&client).await;
        client.store().clone().close().await.unwrap();
    });

    let shown = json(&bangfu(&data, &["--json", "sheet", "show"]));
    assert_eq!(shown["quarter"], "2026Q1", "the newest pulled quarter");
    assert_eq!(shown["state"], Value::Null, "never submitted");
    assert_eq!(shown["rows"].as_array().unwrap().len(), 2);
    assert_eq!(shown["rows"][0]["head_name"], "张三");
    assert_eq!(shown["rows"][0]["first_helper"], "黄志强");
    assert_eq!(shown["rows"][0]["own_visits"], "1月已走访；2月未走访");
    // The rule the windows were judged by, as the printed sheet says it (QA s24b F6).
    assert_eq!(shown["rule"], bangfu_shared::report::WINDOW_RULE_ZH);

    let remark = json(&bangfu(
        &data,
        &[
            "--json",
            "sheet",
            "remark",
            "--quarter",
            "2026Q1",
            "--household",
            "2",
            "  未见记录 ",
        ],
    ));
    assert_eq!(remark["remark"], "未见记录");
    let text = bangfu(&data, &["sheet", "show", "--quarter", "2026Q1"]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    for s in [
        "考勤表 2026Q1",
        "未提交",
        "序号",
        "贫困户姓名",
        "备注",
        "李四",
        "未见记录",
        "01-10入户",
        "第二帮扶责任人走访",
        "\t1月已走访；2月未走访\t",
        "考勤规则：考勤按自然月",
    ] {
        assert!(text.contains(s), "{s} missing:\n{text}");
    }

    let refused = bangfu(
        &data,
        &[
            "sheet",
            "remark",
            "--quarter",
            "2026Q1",
            "--household",
            "99",
            "x",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("row of the attendance sheet"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // By the 序号 the printed sheet shows (QA s29b J6).
    let by_row = json(&bangfu(
        &data,
        &[
            "--json",
            "sheet",
            "remark",
            "--quarter",
            "2026Q1",
            "--row",
            "1",
            "已核实",
        ],
    ));
    assert_eq!(by_row["household_id"], shown["rows"][0]["household_id"]);
    let cleared = bangfu(
        &data,
        &["sheet", "remark", "--quarter", "2026Q1", "--row", "1", ""],
    );
    assert!(cleared.status.success());
    let no_row = bangfu(
        &data,
        &["sheet", "remark", "--quarter", "2026Q1", "--row", "9", "x"],
    );
    assert!(!no_row.status.success());
    assert!(
        String::from_utf8_lossy(&no_row.stderr).contains("没有序号9"),
        "{}",
        String::from_utf8_lossy(&no_row.stderr)
    );
    let absent = bangfu(&data, &["sheet", "show", "--quarter", "2025Q4"]);
    assert!(!absent.status.success());
    assert!(String::from_utf8_lossy(&absent.stderr).contains("attendance sheet"));
    let malformed = bangfu(&data, &["sheet", "show", "--quarter", "2026Q5"]);
    assert!(!malformed.status.success());

    let queued = json(&bangfu(
        &data,
        &["--json", "sheet", "submit", "--quarter", "2026Q1"],
    ));
    assert_eq!(queued["state"]["state"], "pending");
    assert_eq!(queued["submission"]["remarks"][0][1], "未见记录");
    let after = json(&bangfu(&data, &["--json", "sheet", "show"]));
    assert_eq!(after["state"]["state"], "pending", "{after}");
    let text = String::from_utf8(bangfu(&data, &["sheet", "show"]).stdout).unwrap();
    assert!(text.contains("待提交"), "{text}");
    // The same sheet again is refused: it would be a duplicate version.
    let again = bangfu(&data, &["sheet", "submit", "--quarter", "2026Q1"]);
    assert_eq!(again.status.code(), Some(1));
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("与已签名待同步的提交相同，无需重新提交"),
        "{said}"
    );
    // A remark written after the submission is said, and then submitted.
    let remark = ["sheet", "remark", "--quarter", "2026Q1", "--household", "1"];
    let saved = bangfu(&data, &[&remark[..], &["已核实"]].concat());
    assert!(saved.status.success());
    assert_eq!(
        String::from_utf8_lossy(&saved.stdout).trim(),
        "备注已保存 2026Q1 · 1：已核实",
        "full-width punctuation"
    );
    let text = String::from_utf8(bangfu(&data, &["sheet", "show"]).stdout).unwrap();
    assert!(
        text.contains("待提交 · 有未提交的修改（bangfu sheet submit --quarter 2026Q1 重新提交）"),
        "{text}"
    );
    let shown = json(&bangfu(&data, &["--json", "sheet", "show"]));
    assert_eq!(shown["unsubmitted_changes"], true);
    let again = bangfu(&data, &["sheet", "submit", "--quarter", "2026Q1"]);
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(
        said.contains("考勤表 2026Q1：已签名，待同步提交（2 条备注）"),
        "{said}"
    );
    let shown = json(&bangfu(&data, &["--json", "sheet", "show"]));
    assert_eq!(shown["unsubmitted_changes"], false);

    let long = "字".repeat(bangfu_shared::report::MAX_SHEET_REMARK_CHARS + 1);
    let too_long = bangfu(
        &data,
        &[
            "sheet",
            "remark",
            "--quarter",
            "2026Q1",
            "--household",
            "2",
            &long,
        ],
    );
    assert!(!too_long.status.success());
    let said = String::from_utf8_lossy(&too_long.stderr);
    assert!(
        said.contains("备注：备注有 501 字"),
        "the field is named in Chinese: {said}"
    );
}

/// `bangfu sheet show` says what the server found of the last submitted version: a
/// version frozen on rows that changed after the review warns and names the command that
/// signs a new version; one frozen on the rows reviewed says so; one the server could not
/// check says nothing. JSON carries the raw `reviewed_rows_match`.
#[test]
fn headless_sheet_shows_the_review_check_of_the_submitted_version() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let set = |matched: Option<bool>| {
        runtime().block_on(async {
            // The first time a second helper logs in and pulls the sheet; then the
            // sheet as a later sync stores it.
            let client = if matched.is_none() {
                let client = login(&data, Limits::default()).await;
                become_second_helper_with_sheet(&client).await;
                client
            } else {
                bangfu_client::Client::open(bangfu_client::DataDir::new(&data), Limits::default())
                    .await
                    .unwrap()
            };
            let q = "2026Q1".parse().unwrap();
            let mut sheet = client.store().sheet(q).await.unwrap().unwrap();
            sheet.submitted_version = Some(1);
            sheet.reviewed_rows_match = matched;
            client.store().save_sheet(&sheet).await.unwrap();
            client.store().clone().close().await.unwrap();
        })
    };
    let show = || {
        let out = bangfu(&data, &["sheet", "show", "--quarter", "2026Q1"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    set(None);
    let text = show();
    assert!(text.contains("已提交第1版"), "{text}");
    assert!(!text.contains("审阅") && !text.contains('⚠'), "{text}");
    let shown = json(&bangfu(&data, &["--json", "sheet", "show"]));
    assert_eq!(shown["submitted_version"], 1);
    assert_eq!(shown["reviewed_rows_match"], Value::Null, "{shown}");

    set(Some(false));
    let text = show();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1], "⚠ 第1版冻结的数据与您审阅时不同（审阅后有变化）：请核对后重新签名提交",
        "{text}"
    );
    assert_eq!(
        lines[2],
        "→ 运行 bangfu sheet submit --quarter 2026Q1 重新签名提交（提交为新版本，原版本保留）",
        "{text}"
    );
    let shown = json(&bangfu(&data, &["--json", "sheet", "show"]));
    assert_eq!(shown["reviewed_rows_match"], false, "{shown}");

    // Signed again: the warning says the new version waits for the sync.
    json(&bangfu(
        &data,
        &["--json", "sheet", "submit", "--quarter", "2026Q1"],
    ));
    let text = show();
    assert!(text.contains("待提交"), "{text}");
    assert!(
        text.contains(
            "⚠ 第1版冻结的数据与您审阅时不同（审阅后有变化）：已重新签名，待同步提交新版本"
        ) && !text.contains("请核对后")
            && !text.contains("→ 运行"),
        "{text}"
    );

    set(Some(true));
    let text = show();
    assert_eq!(
        text.lines().nth(1),
        Some("第1版已按您审阅的数据冻结"),
        "{text}"
    );
    assert!(!text.contains('⚠'), "{text}");
    let shown = json(&bangfu(&data, &["--json", "sheet", "show"]));
    assert_eq!(shown["reviewed_rows_match"], true, "{shown}");
    let en = bangfu(&data, &["--lang", "en", "sheet", "show"]);
    let en = String::from_utf8(en.stdout).unwrap();
    assert!(
        en.contains("Version 1 was frozen on the rows you reviewed"),
        "{en}"
    );
}

#[test]
fn the_same_photo_given_twice_is_one_photo() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    runtime().block_on(login(&data, Limits::default()));
    let a = write_jpeg(&dir.path().join("a.jpg"), 640, 480);
    let a = a.to_str().unwrap();
    let call = json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "new",
            "--household",
            "2",
            "--kind",
            "phone",
            "--at",
            "2026-03-10 09:30",
            "--photo",
            a,
            "--photo",
            a,
        ],
    ));
    assert_eq!(call["status"], "signed");
    assert_eq!(
        call["record"]["record"]["visit"]["photos"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "one picture counts as one photo"
    );
}

/// `visit list` says the server's flags in Chinese with what to do; `--json` carries
/// the raw codes, a code this version does not know included.
#[test]
fn visit_list_shows_the_servers_flags() {
    use bangfu_shared::sync::{Ack, AckStatus};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = runtime();
    let client = rt.block_on(login(&data, Limits::default()));
    let signed = json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "new",
            "--household",
            "1",
            "--kind",
            "phone",
            "--at",
            "2026-03-10 09:30",
        ],
    ));
    let id: uuid::Uuid = signed["record"]["record"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    rt.block_on(client.store().apply_acks(&[Ack {
        id,
        status: AckStatus::Accepted,
        reason: None,
        reason_code: None,
        missing_blobs: vec![],
        flags: vec![
            "dated_after_signing".into(),
            "sent_by_a_newer_server".into(),
        ],
    }]))
    .unwrap();
    rt.block_on(client.store().clone().close()).unwrap();

    let out = bangfu(&data, &["visit", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("已同步  ⚠ 时间晚于签名时间，不计入考勤：请更正时间")
            && text.contains("⚠ 服务器标记：sent_by_a_newer_server"),
        "{text}"
    );
    let list = json(&bangfu(&data, &["--json", "visit", "list"]));
    assert_eq!(
        list[0]["flags"],
        serde_json::json!(["dated_after_signing", "sent_by_a_newer_server"])
    );
}

/// `bangfu households --json` lists the households whose pairing ended too, saying so,
/// with the real end and the pairing periods; nothing is due for them.
#[test]
fn households_json_lists_ended_households() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut listed = default_households();
    listed[2].pairings[0].valid_to = chrono::NaiveDate::from_ymd_opt(2026, 3, 10);
    called_then_listed(&data, listed);
    let households = json(&bangfu(&data, &["--json", "households"]));
    let list = households.as_array().unwrap();
    assert_eq!(list.len(), 3, "{households}");
    let find = |id: i64| list.iter().find(|h| h["id"] == id).unwrap();
    assert_eq!(find(1)["ended"], false);
    let ended = find(3);
    assert_eq!(ended["ended"], true, "{ended}");
    assert_eq!(ended["pairing_ended_on"], "2026-03-10");
    assert_eq!(
        ended["pairing_periods"],
        serde_json::json!([{"from": "2025-01-01", "to": "2026-03-09"}])
    );
    assert!(ended["role"].is_null() && ended["next_due"].is_null());
    // The call after the end does not count, and the list says where it is (QA s23a F13).
    assert_eq!(ended["not_counted"], 1, "{ended}");
    let text = bangfu(&data, &["households"]);
    let out = String::from_utf8_lossy(&text.stdout);
    let line = out.lines().find(|l| l.contains("王五")).unwrap_or_default();
    assert!(
        line.contains("2026-03-10") && line.contains("⚠不计入"),
        "{out}"
    );
}

/// The images in a data directory's content store (photos and signatures).
fn stored_images(data: &Path) -> usize {
    let Ok(dirs) = std::fs::read_dir(data.join("photos")) else {
        return 0;
    };
    dirs.flatten()
        .filter_map(|d| std::fs::read_dir(d.path()).ok())
        .map(|files| files.count())
        .sum()
}

/// QA s33a S4: a visit refused for a time in the future stores none of its photos.
#[test]
fn a_visit_in_the_future_stores_no_photo() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = runtime();
    rt.block_on(login(&data, Limits::default()));
    let photo = write_jpeg(&dir.path().join("a.jpg"), 640, 480);
    let card = write_png(&dir.path().join("card.png"), 300, 120);
    let later = (chrono::Utc::now() + chrono::Duration::days(1))
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let out = bangfu(
        &data,
        &[
            "visit",
            "new",
            "--household",
            "1",
            "--kind",
            "home",
            "--at",
            &later,
            "--photo",
            photo.to_str().unwrap(),
            "--household-signature",
            card.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("走访时间晚于当前时间"), "{err}");
    assert_eq!(stored_images(&data), 0, "nothing was stored");
}

/// QA s33a S6, s33d S2: a visit refused after some of its photos were stored (here: its
/// second file is not an image; on a phone, the disk filled up) leaves none of them
/// behind; a photo a signed visit carries stays.
#[test]
fn a_refused_visit_leaves_no_photo_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = runtime();
    rt.block_on(login(&data, Limits::default()));
    let kept = write_jpeg(&dir.path().join("kept.jpg"), 640, 480);
    let card = write_png(&dir.path().join("card.png"), 300, 120);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let home = |photos: &[&Path]| {
        let mut args = vec![
            "visit".to_string(),
            "new".into(),
            "--household".into(),
            "1".into(),
            "--kind".into(),
            "home".into(),
            "--at".into(),
            "2026-03-10 09:30".into(),
            "--household-signature".into(),
            s(&card),
        ];
        for p in photos {
            args.extend(["--photo".into(), s(p)]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bangfu(&data, &args)
    };
    assert!(home(&[&kept]).status.success());
    assert_eq!(stored_images(&data), 2, "a photo and the card");
    let fresh = write_jpeg(&dir.path().join("fresh.jpg"), 800, 600);
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a photo").unwrap();
    let refused = home(&[&kept, &fresh, &text]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("不是可读的图片"), "{err}");
    assert_eq!(
        stored_images(&data),
        2,
        "the refused visit's new photo is gone, the signed visit's stays: {err}"
    );
}

/// `--witness` on a new home visit needs the witness's mark, `--witness-signature FILE`:
/// without it the command is refused naming the flag and stores nothing; with it the
/// record's witness `image_sha256` is the stored image of that file. An amendment keeps
/// the mark of the same witness and asks a new witness for theirs.
#[test]
fn a_witness_signs_with_an_image_of_their_signature() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = runtime();
    let client = rt.block_on(login(&data, Limits::default()));
    let photo = write_jpeg(&dir.path().join("a.jpg"), 640, 480);
    let mark = write_png(&dir.path().join("witness.png"), 300, 120);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let witness = [
        "--witness",
        "王五",
        "--witness-role",
        "村公证人",
        "--witness-reason",
        "户主不识字",
    ];
    let home = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "visit",
            "new",
            "--household",
            "1",
            "--kind",
            "home",
            "--at",
            "2026-03-10 09:30",
        ];
        args.extend_from_slice(extra);
        bangfu(&data, &args)
    };

    let mut args = witness.to_vec();
    let photo_arg = s(&photo);
    args.extend(["--photo", &photo_arg]);
    let refused = home(&args);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--witness-signature"), "{err}");
    // A mark with no witness named is no one's.
    let mark_arg = s(&mark);
    let refused = home(&["--photo", &photo_arg, "--witness-signature", &mark_arg]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--witness-role"), "{err}");
    assert_eq!(json(&bangfu(&data, &["--json", "verify"]))["records"], 0);
    assert_eq!(
        json(&bangfu(&data, &["--json", "drafts"])),
        serde_json::json!([])
    );
    assert_eq!(
        stored_images(&data),
        0,
        "a refused command attaches nothing"
    );

    let mark_arg = s(&mark);
    let mut args = witness.to_vec();
    args.extend(["--witness-signature", &mark_arg]);
    let signed = json(&home(&args));
    assert_eq!(signed["status"], "signed");
    let sig = &signed["record"]["record"]["visit"]["household_signature"];
    assert_eq!(sig["method"], "witness");
    assert_eq!(sig["name"], "王五");
    let hash = sig["image_sha256"].as_str().unwrap().to_string();
    // The file's stored hash: the same import the household's signature image takes.
    let stored = rt.block_on(client.attach_card_photo(&mark)).unwrap();
    assert_eq!(hash, stored);
    assert!(client.photos().verify(&hash));
    assert_eq!(
        json(&bangfu(&data, &["--json", "verify"]))["integrity"],
        "ok"
    );
    let id = signed["record"]["record"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Amending the same witness's words keeps their mark.
    let amended = json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "amend",
            &id,
            "--witness",
            "王五",
            "--witness-role",
            "村公证人",
            "--witness-reason",
            "户主行动不便",
            "--reason",
            "更正原因",
        ],
    ));
    let sig = &amended["record"]["record"]["visit"]["household_signature"];
    assert_eq!(sig["reason"], "户主行动不便");
    assert_eq!(sig["image_sha256"], hash.as_str());

    // The same name in another role is not the same witness: their mark is not kept.
    let refused = bangfu(
        &data,
        &[
            "visit",
            "amend",
            &id,
            "--witness",
            "王五",
            "--witness-role",
            "村干部",
            "--witness-reason",
            "户主不识字",
            "--reason",
            "改身份",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--witness-signature"));

    // Another witness has not signed: refused, naming the flag; with their file, signed.
    let other = [
        "--json",
        "visit",
        "amend",
        &id,
        "--witness",
        "赵六",
        "--witness-role",
        "见证人",
        "--witness-reason",
        "户主不识字",
        "--reason",
        "换见证人",
    ];
    let refused = bangfu(&data, &other);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--witness-signature"), "{err}");
    let card = write_jpeg(&dir.path().join("zhao.jpg"), 400, 200);
    let card_arg = s(&card);
    let mut args = other.to_vec();
    args.extend(["--witness-signature", &card_arg]);
    let amended = json(&bangfu(&data, &args));
    let sig = &amended["record"]["record"]["visit"]["household_signature"];
    assert_eq!(sig["name"], "赵六");
    let zhao = sig["image_sha256"].as_str().unwrap();
    assert_ne!(zhao, hash);
    assert_eq!(zhao, rt.block_on(client.attach_card_photo(&card)).unwrap());

    // The mark alone re-signs for the visit's own witness, whose words are kept (QA
    // s28a F9: the name, role and reason had to be typed again, exactly).
    let again = write_jpeg(&dir.path().join("zhao2.jpg"), 420, 200);
    let again_arg = s(&again);
    let resigned = json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "amend",
            &id,
            "--witness-signature",
            &again_arg,
            "--reason",
            "补见证人签字",
        ],
    ));
    let sig = &resigned["record"]["record"]["visit"]["household_signature"];
    assert_eq!(
        (&sig["name"], &sig["role"], &sig["reason"]),
        (
            &Value::from("赵六"),
            &Value::from("见证人"),
            &Value::from("户主不识字")
        )
    );
    assert_eq!(
        sig["image_sha256"].as_str().unwrap(),
        rt.block_on(client.attach_card_photo(&again)).unwrap()
    );
}

/// A stand-in for the server's sync endpoints on 127.0.0.1:0: push accepts every record
/// and flags it with the codes its visit's first problem lists (`flag:clock_ahead`);
/// pull sends back the records whose first problem is `review:NOTE` with the town
/// office's review note NOTE. Serves until the test process ends; returns the base URL.
fn flagging_server() -> String {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut reviewed: Vec<Value> = Vec::new();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let answer = if request.starts_with("POST /api/v1/sync/push") {
                let push: Value = serde_json::from_slice(&body).unwrap();
                for r in push["records"].as_array().unwrap() {
                    if let Some(note) = r["record"]["visit"]["problems"][0]
                        .as_str()
                        .and_then(|p| p.strip_prefix("review:"))
                    {
                        reviewed.push(serde_json::json!({
                            "signed": r, "status": "accepted", "missing_blobs": [],
                            "flags": [], "received_at": "2026-03-10T02:00:00Z",
                            "review": note,
                        }));
                    }
                }
                let acks: Vec<Value> = push["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        let record = &r["record"];
                        let flags: Vec<&str> = record["visit"]["problems"][0]
                            .as_str()
                            .and_then(|p| p.strip_prefix("flag:"))
                            .map(|f| f.split(',').collect())
                            .unwrap_or_default();
                        let refused = record["visit"]["problems"][0]
                            .as_str()
                            .and_then(|p| p.strip_prefix("reject:"));
                        match refused {
                            Some(why) => serde_json::json!({
                                "id": record["id"], "status": "rejected", "reason": why,
                                "missing_blobs": [], "flags": [],
                            }),
                            None => serde_json::json!({
                                "id": record["id"], "status": "accepted", "reason": null,
                                "missing_blobs": [], "flags": flags,
                            }),
                        }
                    })
                    .collect();
                serde_json::json!({ "acks": acks })
            } else {
                serde_json::json!({ "records": reviewed, "cursor": 0, "more": false })
            };
            let answer = answer.to_string();
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            )
            .unwrap();
        }
    });
    url
}

/// After `bangfu sync`, the visits the server flagged as not counting (clock_ahead,
/// dated_after_signing) are counted with what to do, only when there are some; an
/// amendment settles one.
#[test]
fn sync_says_how_many_visits_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    runtime().block_on(login(&data, Limits::default()));
    let server = flagging_server();
    let call = |household: &str, problem: &str| {
        let v = json(&bangfu(
            &data,
            &[
                "--json",
                "visit",
                "new",
                "--household",
                household,
                "--kind",
                "phone",
                "--at",
                "2026-03-10 09:30",
                "--problem",
                problem,
            ],
        ));
        v["record"]["record"]["id"].as_str().unwrap().to_string()
    };
    let sync = || {
        let out = bangfu(&data, &["sync", "--attempts", "1", "--server", &server]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };

    call("1", "flag:entered_late");
    let text = sync();
    assert!(text.contains("同步完成：已同步 1"), "{text}");
    assert!(!text.contains("不计入"), "a late entry counts:\n{text}");

    let early = call("2", "flag:clock_ahead");
    call("3", "flag:dated_after_signing,entered_late");
    let text = sync();
    assert!(
        text.contains("⚠ 2 条走访不计入考勤，请查看原因并更正"),
        "{text}"
    );
    let report = json(&bangfu(
        &data,
        &["--json", "sync", "--attempts", "1", "--server", &server],
    ));
    assert_eq!(report["not_counted"], 2, "{report}");

    // A visit flagged for the device's clock may be signed again as it stands, once the
    // clock is set right: there is nothing else to correct (QA s26d F6).
    let again = json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "amend",
            &early,
            "--reason",
            "校准时钟后重签",
        ],
    ));
    assert_eq!(
        again["record"]["record"]["record_type"], "amendment",
        "{again}"
    );

    // Corrected: the amendment settles the original's flag.
    json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "amend",
            &early,
            "--problem",
            "已核实",
            "--reason",
            "校准时钟",
        ],
    ));
    let text = sync();
    assert!(
        text.contains("⚠ 1 条走访不计入考勤，请查看原因并更正"),
        "{text}"
    );

    // A refused record is named under the count that says it (被拒 1), not under the
    // warning about another visit (QA s22a F5).
    let refused = call("1", "reject:household 1 is not yours");
    let out = bangfu(&data, &["sync", "--attempts", "1", "--server", &server]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("被拒 1"), "{text}");
    assert!(
        lines[1].contains(&refused) && lines[1].contains("household 1 is not yours"),
        "{text}"
    );
    assert!(lines[2].starts_with("⚠ 1 条走访不计入考勤"), "{text}");
}

/// A sync that brings a town office's review note says how many visits were returned
/// for correction, once (the next sync, with the same note, says nothing), and the
/// visit list shows the note.
#[test]
fn sync_says_how_many_visits_the_town_office_returned() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    runtime().block_on(login(&data, Limits::default()));
    let server = flagging_server();
    let call = |problem: &str| {
        let v = json(&bangfu(
            &data,
            &[
                "--json",
                "visit",
                "new",
                "--household",
                "1",
                "--kind",
                "phone",
                "--at",
                "2026-03-10 09:30",
                "--problem",
                problem,
            ],
        ));
        v["record"]["record"]["id"].as_str().unwrap().to_string()
    };
    let sync = |lang: &str| {
        let out = bangfu(
            &data,
            &[
                "--lang",
                lang,
                "sync",
                "--attempts",
                "1",
                "--server",
                &server,
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    call("药费负担重");
    let text = sync("zh");
    assert!(!text.contains("退回"), "no note, nothing said:\n{text}");

    let returned = call("review:照片与农户家不符，请核实");
    let text = sync("zh");
    assert!(
        text.contains("✎ 1 条走访被乡镇退回，请更正（bangfu visit list 查看）"),
        "{text}"
    );
    let list = String::from_utf8_lossy(&bangfu(&data, &["visit", "list"]).stdout).to_string();
    assert!(
        list.contains("乡镇审核意见：照片与农户家不符，请核实"),
        "{list}"
    );
    // The household list marks the household until the visit is amended.
    let households = |args: &[&str]| {
        let out = bangfu(&data, args);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let text = households(&["households"]);
    let line = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.contains(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line(&text, "张三").contains("✎待更正"), "{text}");
    assert!(!line(&text, "李四").contains("待更正"), "{text}");
    let listed = json(&bangfu(&data, &["--json", "households"]));
    assert_eq!(listed[0]["to_correct"], 1, "{listed}");
    json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "amend",
            &returned,
            "--problem",
            "已核实，照片为农户家门口",
            "--reason",
            "补充说明",
        ],
    ));
    let text = households(&["households"]);
    assert!(!text.contains("待更正"), "{text}");
    // The same note again is no news.
    let text = sync("en");
    assert!(!text.contains("returned"), "{text}");
    call("review:签字看不清");
    let text = sync("en");
    assert!(
        text.contains("1 visit was returned by the town office"),
        "{text}"
    );
    let report = json(&bangfu(
        &data,
        &["--json", "sync", "--attempts", "1", "--server", &server],
    ));
    assert_eq!(report["returned_for_correction"], 0, "{report}");
}

/// A command line that does not parse says so (in Chinese first) and exits 64, never
/// the 2 that means "kept as a draft"; `--help` is not an error.
#[test]
fn a_mistyped_command_line_is_a_usage_error_not_a_draft() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let wrong = bangfu(&data, &["visit", "new", "--household", "十二"]);
    assert_eq!(wrong.status.code(), Some(64));
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(said.starts_with("命令行有误"), "{said}");
    assert!(said.contains("--household"), "names the argument: {said}");
    let english = bangfu(&data, &["--lang", "EN", "visit", "nothing"]);
    assert_eq!(english.status.code(), Some(64));
    assert!(!String::from_utf8_lossy(&english.stderr).contains("命令行有误"));
    // A file name that is not UTF-8 (a GBK name, say) beside the mistake changes nothing.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        let gbk = std::ffi::OsStr::from_bytes(b"\xd5\xd5\xc6\xac.jpg");
        let out = Command::new(env!("CARGO_BIN_EXE_bangfu"))
            .arg("--data-dir")
            .arg(&data)
            .args(["visit", "new", "--household", "x", "--photo"])
            .arg(gbk)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{out:?}");
    }
    let help = bangfu(&data, &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("sync"));
}

/// A signature image already on another visit of the device (any household) is warned
/// about like a reused photo, when signing and for a draft listed by `drafts`.
#[test]
fn a_signature_image_already_on_another_visit_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    runtime().block_on(login(&data, Limits::default()));
    let card = write_jpeg(&dir.path().join("card.jpg"), 600, 400);
    let photo = write_jpeg(&dir.path().join("p.jpg"), 640, 480);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (card, photo) = (s(&card), s(&photo));
    let visit = |household: &str, at: &str, extra: &[&str]| {
        let mut args = vec![
            "visit",
            "new",
            "--household",
            household,
            "--kind",
            "home",
            "--at",
            at,
        ];
        args.extend_from_slice(extra);
        bangfu(&data, &args)
    };
    let first = visit("1", "2026-03-10 09:30", &["--household-signature", &card]);
    assert!(first.status.success());
    assert!(!String::from_utf8_lossy(&first.stderr).contains("已用于"));
    let second = visit("2", "2026-03-11 09:30", &["--household-signature", &card]);
    assert!(second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("⚠ 此签字图片已用于 03-10 的另一次走访"),
        "{err}"
    );
    let witness = visit(
        "2",
        "2026-03-12 09:30",
        &[
            "--witness",
            "王五",
            "--witness-role",
            "村公证人",
            "--witness-reason",
            "户主不识字",
            "--witness-signature",
            &card,
        ],
    );
    assert!(String::from_utf8_lossy(&witness.stderr).contains("此签字图片已用于 03-10"));

    // A draft (no signature) whose photo another visit takes afterwards: `drafts` says so.
    let draft = visit("1", "2026-03-13 09:30", &["--photo", &photo]);
    assert_eq!(draft.status.code(), Some(2));
    let taken = visit(
        "2",
        "2026-03-14 09:30",
        &["--photo", &photo, "--household-signature", &card],
    );
    assert!(taken.status.success());
    let listed = bangfu(&data, &["drafts"]);
    let out = String::from_utf8_lossy(&listed.stdout);
    assert!(out.contains("⚠ 此照片已用于 03-14 的另一次走访"), "{out}");
}

/// A stand-in server on 127.0.0.1:0 that refuses every request with `status` and the
/// JSON error body `{"error": code, "message": message}`. Returns the base URL.
fn refusing_server(status: &'static str, code: &'static str, message: &'static str) -> String {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
            }
            let body = serde_json::json!({ "error": code, "message": message }).to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// The server's `forbidden` is said in Chinese; its English words stay out of the
/// message and come on the "详情" line under it, as for every other error.
#[test]
fn a_forbidden_answer_is_said_in_chinese_with_the_english_as_detail() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    runtime().block_on(login(&data, Limits::default()));
    let server = refusing_server(
        "403 Forbidden",
        "forbidden",
        "only a helper's device pushes records",
    );
    let out = bangfu(&data, &["sync", "--attempts", "1", "--server", &server]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_ne!(out.status.code(), Some(0), "{err}");
    let mut lines = err.lines().filter(|l| l.starts_with("bangfu: "));
    let said = lines.next().unwrap_or_default();
    assert!(said.contains("只有帮扶责任人的终端能同步走访记录"), "{err}");
    assert!(
        !said.contains("helper's device"),
        "no English in the message: {err}"
    );
    assert!(
        err.contains("（详情：") && err.contains("only a helper's device pushes records"),
        "the server's words as the detail: {err}"
    );
}

/// M2: `bangfu --json households` gives a coming exit's day (`exit_on`), and no date
/// due runs past the last paired day; the text list says when it leaves.
#[test]
fn households_json_gives_the_exit_day_and_no_due_date_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = runtime();
    let client = rt.block_on(login(&data, Limits::default()));
    // The binary judges on the real date: the exit is 10 days from it.
    let exit = bangfu_client::client::today(chrono::Utc::now()) + chrono::Days::new(10);
    let mut listed = default_households();
    listed[0].summary.exit_on = Some(exit);
    listed[0].pairings[0].valid_to = Some(exit);
    rt.block_on(async {
        let identity = client.identity().await.unwrap();
        client
            .install_login(&identity, &snapshot(listed))
            .await
            .unwrap();
    });
    let households = json(&bangfu(&data, &["--json", "households"]));
    let list = households.as_array().unwrap();
    let find = |id: i64| list.iter().find(|h| h["id"] == id).unwrap();
    let leaving = find(1);
    assert_eq!(leaving["exit_on"], exit.to_string(), "{leaving}");
    assert!(find(2)["exit_on"].is_null());
    for due in leaving["due"].as_array().unwrap() {
        let by: chrono::NaiveDate = serde_json::from_value(due["due_by"].clone()).unwrap();
        assert!(by < exit, "{leaving}");
    }
    let text = bangfu(&data, &["households"]);
    let text = String::from_utf8_lossy(&text.stdout);
    // The year is said only when the exit falls in another year than today's (L4).
    let today = bangfu_client::client::today(chrono::Utc::now());
    let day = if chrono::Datelike::year(&exit) == chrono::Datelike::year(&today) {
        exit.format("%-m月%-d日")
    } else {
        exit.format("%Y年%-m月%-d日")
    };
    assert!(text.contains(&format!("将于{day}退出")), "{text}");
}

/// M4: a household whose pairing with the helper begins on a later day (an import
/// dated ahead) gives `pairing_from` in `--json` and says from when in the text list,
/// instead of 未结对; a visit dated before that day is refused with the pairing open
/// (`… 起`), not ending today.
#[test]
fn a_pairing_that_begins_later_says_from_when() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = runtime();
    let client = rt.block_on(login(&data, Limits::default()));
    let today = bangfu_client::client::today(chrono::Utc::now());
    let from = today + chrono::Days::new(10);
    let mut listed = default_households();
    listed[1].pairings[0].valid_from = from;
    rt.block_on(async {
        let identity = client.identity().await.unwrap();
        client
            .install_login(&identity, &snapshot(listed))
            .await
            .unwrap();
    });
    let households = json(&bangfu(&data, &["--json", "households"]));
    let list = households.as_array().unwrap();
    let find = |id: i64| list.iter().find(|h| h["id"] == id).unwrap();
    assert_eq!(find(2)["pairing_from"], from.to_string(), "{households}");
    assert!(find(2)["role"].is_null());
    assert!(find(1)["pairing_from"].is_null());
    let text = bangfu(&data, &["households"]);
    let text = String::from_utf8_lossy(&text.stdout);
    let want = bangfu_client::i18n::Lang::Zh.pairing_from(from, today, false);
    assert!(text.contains(&want) && !text.contains("未结对"), "{text}");
    let en = bangfu(&data, &["--lang", "en", "households"]);
    let en = String::from_utf8_lossy(&en.stdout);
    assert!(en.contains(&format!("paired from {from}")), "{en}");

    let refused = bangfu(
        &data,
        &[
            "visit",
            "new",
            "--household",
            "2",
            "--kind",
            "phone",
            "--at",
            &format!("{today} 00:01"),
        ],
    );
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(err.contains(&format!("（{from} 起）")), "{err}");
}

/// A device logged in, its data directory in a temporary directory kept while the
/// first is held.
fn logged_in() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    runtime().block_on(login(&data, Limits::default()));
    (dir, data)
}

/// A blank entry is none (QA s21b F3): `--problem ""` signs no empty problem, and on an
/// amendment clears the list.
#[test]
fn a_blank_entry_is_no_entry() {
    let (_dir, data) = logged_in();
    let call = json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "new",
            "--household",
            "2",
            "--kind",
            "phone",
            "--problem",
            "",
            "--problem",
            " 药费 ",
            "--deliver",
            "大米:50",
            "--support",
            "  ",
        ],
    ));
    let visit = &call["record"]["record"]["visit"];
    assert_eq!(visit["problems"], serde_json::json!(["药费"]), "{call}");
    assert_eq!(
        visit["deliveries"].as_array().map(Vec::len),
        Some(1),
        "{call}"
    );
    assert!(
        visit
            .get("support")
            .is_none_or(|s| s == &serde_json::json!([])),
        "{call}"
    );
    let id = call["record"]["record"]["id"].as_str().unwrap().to_string();
    let cleared = json(&bangfu(
        &data,
        &[
            "--json",
            "visit",
            "amend",
            &id,
            "--problem",
            "",
            "--deliver",
            "",
            "--reason",
            "问题已解决",
        ],
    ));
    for list in ["problems", "deliveries"] {
        let items = &cleared["record"]["record"]["visit"][list];
        assert!(
            items.is_null() || items == &serde_json::json!([]),
            "{list}: {cleared}"
        );
    }
}

/// A home visit short of the county's evidence is warned about before it is signed;
/// one without the household's signature is only kept as a draft, with no warning about
/// a visit that does not exist (QA s22d F2).
#[test]
fn the_evidence_warning_is_for_a_visit_signed_not_a_draft() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = runtime();
    let client = rt.block_on(login(&data, Limits::default()));
    let mut two_photos = bangfu_shared::PolicyPreset::Laizhou2018.policy().evidence;
    two_photos.min_photos = 2;
    rt.block_on(async {
        let identity = client.identity().await.unwrap();
        let mut snap = snapshot(default_households());
        snap.evidence_history = vec![bangfu_shared::policy::EvidenceSince {
            from: chrono::NaiveDate::from_ymd_opt(2018, 1, 1).unwrap(),
            evidence: two_photos,
        }];
        client.install_login(&identity, &snap).await.unwrap();
        client.store().clone().close().await.unwrap();
    });
    let photo = write_jpeg(&dir.path().join("a.jpg"), 1200, 900);
    let card = write_jpeg(&dir.path().join("card.jpg"), 600, 400);
    let visit = |extra: &[&str]| {
        let mut args = vec![
            "visit",
            "new",
            "--household",
            "1",
            "--kind",
            "home",
            "--at",
            "2026-03-10 09:30",
            "--photo",
            photo.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = bangfu(&data, &args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = visit(&[]);
    assert_eq!(code, Some(2), "kept as a draft: {err}");
    assert!(!err.contains("不计入考勤"), "{err}");
    let (code, err) = visit(&["--household-signature", card.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("不计入考勤"), "one photo of two: {err}");
}

/// QA s26d F8: a clock the last login or sync found wrong is said again when a visit is
/// recorded offline (what it signs would not count); a clock found right says nothing.
#[test]
fn recording_a_visit_repeats_a_clock_found_wrong() {
    let (_dir, data) = logged_in();
    let set = |offset: Option<i64>| {
        runtime().block_on(async {
            let c =
                bangfu_client::Client::open(bangfu_client::DataDir::new(&data), Limits::default())
                    .await
                    .unwrap();
            c.store().set_clock_offset(offset).await.unwrap();
        })
    };
    let call = |note: &str| {
        let mut args: Vec<&str> = "visit new --household 2 --kind phone --problem"
            .split(' ')
            .collect();
        args.push(note);
        bangfu(&data, &args)
    };
    set(Some(-(3 * 86_400)));
    let out = call("药费负担重");
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("⚠ 本机时间比服务器慢3天"), "{err}");
    set(None);
    let out = call("已报销");
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("本机时间"));
}

/// `bangfu` with `input` on its standard input.
fn bangfu_fed(data: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_bangfu"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// QA s32b V8: the one-time enrollment code may come on standard input, the line before
/// the password, out of `ps` and the shell's history; a missing one is said.
#[test]
fn an_enrollment_code_is_read_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "login",
        "--server",
        "http://127.0.0.1:9",
        "--username",
        "u",
        "--password-stdin",
        "--enroll-code",
        "-",
    ];
    let out = bangfu_fed(dir.path(), &args, "\nsecret-password\n");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("第一行没有激活码"), "{said}");
    // Both lines read: it gets as far as the server (none listens there).
    let out = bangfu_fed(dir.path(), &args, "T8KW6-FQP3E\nsecret-password\n");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !said.contains("激活码") && !said.contains("没有密码"),
        "{said}"
    );
    assert!(said.contains("连不上服务器"), "{said}");
}

/// QA s32d X7: a household whose pairing was withdrawn before it began is listed as
/// such, with no empty period before it.
#[test]
fn a_withdrawn_pairing_is_listed_as_never_begun() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut listed = default_households();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 10);
    listed[2].pairings[0].valid_from = day.unwrap();
    listed[2].pairings[0].valid_to = day;
    called_then_listed(&data, listed);
    let text = bangfu(&data, &["households"]);
    let out = String::from_utf8_lossy(&text.stdout);
    let line = out.lines().find(|l| l.contains("王五")).unwrap_or_default();
    assert!(line.contains("结对未曾生效（已撤回）"), "{out}");
    assert!(!line.contains("-（"), "{out}");
}

/// A device logged in at `data` that signed a call to household 3 on 2026-03-12 (before
/// it heard of any end), then got `listed` from the server.
fn called_then_listed(data: &Path, listed: Vec<bangfu_shared::api::HouseholdDetail>) {
    let rt = runtime();
    let client = rt.block_on(login(data, Limits::default()));
    rt.block_on(async {
        let at = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 12, 2, 0, 0).unwrap();
        let call = bangfu_shared::visit::VisitBody::new(bangfu_shared::VisitKind::Phone, at);
        client
            .record_visit(3, call, None, None, now())
            .await
            .unwrap();
        let identity = client.identity().await.unwrap();
        client
            .install_login(&identity, &snapshot(listed))
            .await
            .unwrap();
        client.store().clone().close().await.unwrap();
    });
}
