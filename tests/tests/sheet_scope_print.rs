//! A frozen version of a second helper's sheet printed by an office that sees only part
//! of its rows. 孔玉梅 supervises three households of 东城镇 and one of 西港镇 and signs
//! the whole sheet (four rows) with her device key; each town office prints version 1
//! with its own households only. The device signature covers the four rows, not the
//! printed part, so the part says so in its title ("本单位可见部分，共4户中的K户；设备
//! 签名针对全表") and its signature block shows the signature as the whole sheet's, never
//! as "设备签名：…" of the rows printed. The county office, which sees every row, prints
//! the version as signed. PDF and spreadsheet, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use std::path::Path;
use std::process::Command;

use bangfu_server::db_test;
use bangfu_shared::Role;
use bangfu_shared::report::{AttendanceSheet, Quarter, SheetSubmission};
use bangfu_tests::field::Device;
use bangfu_tests::{TestDb, World, enroll_directly, office};
use ed25519_dalek::Signer;
use reqwest::StatusCode;

const HEADER: &str = "序号,贫困户姓名,家庭地址(镇街、村),致贫原因,帮扶措施,联系方式,第一帮扶责任人姓名,工作单位及职务,联系方式,第二帮扶责任人姓名,工作单位及职务,联系方式";
/// 东城镇: three households, 孔玉梅 their second helper.
const DONGCHENG: [&str; 3] = [
    "1,田晓东,东城镇河口村,因学,就业帮扶,13967929081,黄志强,市教育局 科员,15907579383,孔玉梅,村委会主任,18893287921",
    "2,曾淑珍,东城镇河口村,因病,医疗救助,17681453840,周雪梅,市教育局 副科长,18146100330,孔玉梅,村委会主任,18893287921",
    "3,叶秀兰,东城镇李家村,缺技术,产业帮扶,15451450612,曹秀兰,市交通局 副科长,13077283783,孔玉梅,村委会主任,18893287921",
];
/// 西港镇: one household, 孔玉梅 its second helper too.
const XIGANG: &str = "1,吴海生,西港镇东村,因病,医疗救助,13800000001,郑明,市水利局 科员,13800000002,孔玉梅,村委会主任,18893287921";
/// 孔玉梅.
const SECOND: &str = "18893287921";
const Q: &str = "2026Q1";

fn ledger(rows: &[&str]) -> Vec<u8> {
    format!("{HEADER}\r\n{}\r\n", rows.join("\r\n")).into_bytes()
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The text of a PDF (pdftotext), without the spaces and line breaks it puts into cells.
fn pdf_text(dir: &Path, name: &str, bytes: &[u8]) -> String {
    assert!(bytes.starts_with(b"%PDF-"), "{name}: not a PDF");
    std::fs::create_dir_all(dir).unwrap();
    let pdf = dir.join(format!("{name}.pdf"));
    std::fs::write(&pdf, bytes).unwrap();
    run("pdftotext", &["-layout", pdf.to_str().unwrap(), "-"])
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Cell A1 of a spreadsheet: the sheet's title.
fn xlsx_title(bytes: Vec<u8>) -> String {
    use calamine::Reader;
    let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    range.get((0, 0)).unwrap().to_string()
}

async fn get_bytes(w: &World, token: &str, path: &str) -> Vec<u8> {
    let (status, bytes) = w.get_bytes(token, path).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&bytes)
    );
    bytes
}

async fn partial_print(t: &TestDb) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    let query = "?effective_from=2025-10-01&filed_on=2025-07-01&retroactive=true";
    w.import_ok(&county, query, ledger(&DONGCHENG)).await;
    w.import_ok(&county, query, ledger(&[XIGANG])).await;
    let (_, all) = w.get(Some(&county), "/households?per_page=100").await;
    let town_of = |head: &str| {
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["head_name"] == head)
            .unwrap()["town"]["id"]
            .as_i64()
            .unwrap()
    };
    office(t, &w, "dongcheng", Role::TownOffice, town_of("田晓东")).await;
    office(t, &w, "xigang", Role::TownOffice, town_of("吴海生")).await;

    // 孔玉梅 reviews her whole sheet and signs it, the digest of its four rows with it.
    enroll_directly(t, &w, SECOND).await;
    let token = w.login(SECOND).await;
    let (_, me) = w.get(Some(&token), "/me").await;
    let helper_id = me["helper"]["id"].as_i64().unwrap();
    let device = Device::register(&w, &token, helper_id).await;
    let quarter: Quarter = Q.parse().unwrap();
    let (status, body) = w
        .get(Some(&token), &format!("/reports/attendance?quarter={Q}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let reviewed: AttendanceSheet = serde_json::from_value(body).unwrap();
    assert_eq!(reviewed.rows.len(), 4, "both towns on her sheet");
    assert!(
        reviewed.town.is_none(),
        "two towns: the header names neither"
    );
    let (_, dongcheng_view) = w
        .get(
            Some(&w.login("dongcheng").await),
            &format!("/reports/attendance?second_helper={helper_id}&quarter={Q}"),
        )
        .await;
    assert_eq!(
        dongcheng_view["town"]["name"], "东城镇",
        "a town office's share is its own town's: {dongcheng_view}"
    );
    let remark_on = reviewed.rows[0].household_id;
    let mut sub = SheetSubmission {
        quarter,
        device_id: device.device_id,
        remarks: vec![(remark_on, "已核对".into())],
        signature: String::new(),
        submission_id: Some(uuid::Uuid::now_v7()),
        rows_sha256: Some(reviewed.rows_sha256()),
    };
    sub.signature = hex::encode(device.key.sign(&sub.signing_bytes()).to_bytes());
    let (status, v1) = w
        .post_json(
            Some(&token),
            "/reports/attendance/submit",
            &serde_json::to_value(&sub).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!(v1["submitted_version"], 1);
    assert_eq!(v1["reviewed_rows_match"], true);
    let sig16 = &sub.signature[..16];
    let path = |format: &str| {
        format!(
            "/reports/attendance?second_helper={helper_id}&quarter={Q}&version=1&format={format}"
        )
    };
    let dir = t.dir().join("scope-print");

    // Each town office prints its part of version 1.
    for (login, shown, heads) in [
        ("dongcheng", 3, vec!["田晓东", "曾淑珍", "叶秀兰"]),
        ("xigang", 1, vec!["吴海生"]),
    ] {
        let office = w.login(login).await;
        let (status, json) = w.get(Some(&office), &path("json")).await;
        assert_eq!(status, StatusCode::OK, "{login}: {json}");
        assert_eq!(json["rows"].as_array().unwrap().len(), shown, "{login}");
        assert_eq!(
            json["rows_frozen"], 4,
            "{login}: the JSON says it is a part"
        );

        let part = format!("（本单位可见部分，共4户中的{shown}户；设备签名针对全表）");
        let pdf = pdf_text(&dir, login, &get_bytes(&w, &office, &path("pdf")).await);
        for want in [
            format!("第1版{part}"),
            format!("提交版本：1（本单位可见部分，共4户中的{shown}户）"),
            format!("全表设备签名（针对全部4户，不单独证明本表所列{shown}户）：{sig16}…"),
        ] {
            assert!(pdf.contains(&want), "{login}: no {want} in {pdf}");
        }
        assert!(
            !pdf.contains(&format!("设备签名：{sig16}")),
            "{login}: the signature is not presented as the part's: {pdf}"
        );
        for head in &heads {
            assert!(pdf.contains(head), "{login}: no {head} in {pdf}");
        }
        for other in ["田晓东", "曾淑珍", "叶秀兰", "吴海生"] {
            if !heads.contains(&other) {
                assert!(!pdf.contains(other), "{login}: {other} is not its own");
            }
        }

        let title = xlsx_title(get_bytes(&w, &office, &path("xlsx")).await);
        assert!(title.ends_with(&format!("第1版{part}")), "{login}: {title}");
        // A CSV is bare data (no title, no version, no signature): nothing to qualify.
    }

    // The county office sees all four rows: the version as signed, with its signature.
    let (_, json) = w.get(Some(&county), &path("json")).await;
    assert_eq!(json["rows"].as_array().unwrap().len(), 4);
    assert!(json.get("rows_frozen").is_none(), "{json}");
    let pdf = pdf_text(&dir, "county", &get_bytes(&w, &county, &path("pdf")).await);
    assert!(pdf.contains(&format!("设备签名：{sig16}…")), "{pdf}");
    assert!(pdf.contains("提交版本：1"), "{pdf}");
    assert!(
        !pdf.contains("本单位可见部分") && !pdf.contains("全表设备签名"),
        "{pdf}"
    );
    let title = xlsx_title(get_bytes(&w, &county, &path("xlsx")).await);
    assert!(title.ends_with("第1版"), "{title}");

    // So does 孔玉梅 herself.
    let own = format!("/reports/attendance?quarter={Q}&version=1&format=pdf");
    let pdf = pdf_text(&dir, "own", &get_bytes(&w, &token, &own).await);
    assert!(pdf.contains(&format!("设备签名：{sig16}…")), "{pdf}");
    assert!(!pdf.contains("本单位可见部分"), "{pdf}");
}

db_test!(
    a_frozen_sheet_printed_in_part_says_the_signature_covers_the_whole,
    partial_print
);
