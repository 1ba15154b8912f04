//! The reports as PDF for printing: fetched from the API over the demo county, rendered to
//! PNG with poppler's pdftoppm (A4 landscape, something drawn) and read back with
//! pdftotext (the Chinese headers of 附件3 and of the town and county reports). Needs
//! poppler-utils and a CJK font (fonts-wqy-microhei) installed.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use std::path::Path;
use std::process::Command;

use bangfu_server::report_files::{Cell, Table};
use bangfu_server::{db_test, demo, report_pdf};
use bangfu_shared::report::AttendanceSheet;
use bangfu_tests::{TestDb, TestServer, login_at, test_settings};
use reqwest::StatusCode;

fn run(tool: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {tool} ({e}): install it with `apt-get install poppler-utils`")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What a PDF looks like: its text, page count, and page 1 as an image.
struct Checked {
    text: String,
    pages: usize,
}

/// Writes the PDF, renders page 1 at 50 dpi and checks it is landscape and not blank;
/// returns the text and the page count.
fn check_pdf(dir: &Path, name: &str, bytes: &[u8]) -> Checked {
    assert!(bytes.starts_with(b"%PDF-"), "{name}: not a PDF");
    std::fs::create_dir_all(dir).unwrap();
    let pdf = dir.join(format!("{name}.pdf"));
    std::fs::write(&pdf, bytes).unwrap();
    let pdf_s = pdf.to_str().unwrap();
    let prefix = dir.join(name);
    run(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "50",
            "-f",
            "1",
            "-l",
            "1",
            pdf_s,
            prefix.to_str().unwrap(),
        ],
    );
    let png = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let f = p.file_name().unwrap().to_string_lossy().to_string();
            f.starts_with(&format!("{name}-")) && f.ends_with(".png")
        })
        .unwrap_or_else(|| panic!("{name}: pdftoppm wrote no PNG"));
    let img = image::open(&png).unwrap().to_luma8();
    // A4 landscape at 50 dpi: 585 × 413 pixels.
    assert!(
        img.width() > img.height() && (580..=590).contains(&img.width()),
        "{name}: {}×{}",
        img.width(),
        img.height()
    );
    let ink = img.pixels().filter(|p| p.0[0] < 160).count();
    let share = ink as f64 / f64::from(img.width() * img.height());
    assert!(
        (0.005..0.5).contains(&share),
        "{name}: {ink} dark pixels ({:.1}%)",
        share * 100.0
    );
    let text = String::from_utf8(run("pdftotext", &["-layout", pdf_s, "-"]).stdout).unwrap();
    let info = String::from_utf8(run("pdfinfo", &[pdf_s]).stdout).unwrap();
    let pages = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        info.contains("842 x 595") || info.contains("841.89 x 595.28"),
        "{name}: not A4 landscape: {info}"
    );
    let fonts = String::from_utf8(run("pdffonts", &[pdf_s]).stdout).unwrap();
    assert!(
        fonts.lines().skip(2).all(|l| l.contains(" yes ")),
        "{name}: every font embedded: {fonts}"
    );
    Checked { text, pages }
}

/// Text with the spaces and line breaks pdftotext puts into table cells removed.
fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

async fn get(
    http: &reqwest::Client,
    server: &TestServer,
    token: &str,
    path: &str,
) -> reqwest::Response {
    let resp = http
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp
}

async fn get_pdf(http: &reqwest::Client, server: &TestServer, token: &str, path: &str) -> Vec<u8> {
    let resp = get(http, server, token, path).await;
    let header = |h: &str| {
        resp.headers()
            .get(h)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "application/pdf", "{path}");
    assert!(
        header("content-disposition").ends_with(".pdf\""),
        "{path}: {}",
        header("content-disposition")
    );
    resp.bytes().await.unwrap().to_vec()
}

async fn demo_pdfs(t: &TestDb) {
    let settings = test_settings(&t.url, t.dir());
    demo::seed(&t.db, &settings).await.unwrap();
    let server = TestServer::start(t.server_pool().await, settings);
    let http = reqwest::Client::new();
    let token = login_at(&server, "county", demo::PASSWORD).await;
    let page: serde_json::Value = get(&http, &server, &token, "/households")
        .await
        .json()
        .await
        .unwrap();
    let first = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["second_helper"]["id"].is_i64())
        .unwrap();
    let second = first["second_helper"]["id"].as_i64().unwrap();
    let town = first["town"]["id"].as_i64().unwrap();
    let dir = t.dir().join("pdf");

    // The second helper's sheet: 附件3.
    let sheet_path = format!("/reports/attendance?second_helper={second}&quarter=2026Q3");
    let bytes = get_pdf(&http, &server, &token, &format!("{sheet_path}&format=pdf")).await;
    eprintln!("sheet PDF: {} bytes", bytes.len());
    assert!(bytes.len() < 200_000, "the font is subset: {}", bytes.len());
    let sheet_pdf = check_pdf(&dir, "sheet", &bytes);
    let text = squeeze(&sheet_pdf.text);
    for want in [
        "附件3",
        "第一帮扶责任人帮扶工作考勤表",
        "序号",
        "贫困户姓名",
        "家庭地址(村)",
        "第一帮扶",
        "工作单位及职务",
        "联系方式",
        "帮扶记录",
        "注：此表由第二帮扶责任人负责填写汇总",
        "第1页共1页",
    ] {
        assert!(
            text.contains(want),
            "sheet: no {want} in {}",
            sheet_pdf.text
        );
    }
    // Every household of the sheet is in it, by name.
    let sheet: AttendanceSheet = get(&http, &server, &token, &sheet_path)
        .await
        .json()
        .await
        .unwrap();
    assert!(!sheet.rows.is_empty());
    for row in &sheet.rows {
        assert!(text.contains(&row.head_name), "sheet: no {}", row.head_name);
    }

    // The submitted version and its device signature under the sheet.
    let mut submitted = sheet.clone();
    submitted.submitted_version = Some(2);
    submitted.submitted_at = Some(chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap());
    let signature = "0123456789abcdef".repeat(8);
    let signed = report_pdf::sheet_pdf(&submitted, Some(&signature)).unwrap();
    let signed = squeeze(&check_pdf(&dir, "signed", &signed).text);
    for want in [
        format!("第二帮扶责任人：{}", sheet.second_helper.name),
        "提交版本：2".to_string(),
        "提交时间：2026-09-2122:13".to_string(),
        "设备签名：0123456789abcdef…".to_string(),
        format!("镇(街)：{}", sheet.town.as_ref().unwrap().name),
    ] {
        assert!(
            signed.contains(&want),
            "signed sheet: no {want} in {signed}"
        );
    }
    assert!(!signed.contains(&signature[..20]), "only 16 hex digits");
    // No signature for a lookup of a sheet never submitted.
    assert_eq!(
        report_pdf::sheet_signature(&t.db, &sheet).await.unwrap(),
        None
    );

    // The town report and the county report.
    let bytes = get_pdf(
        &http,
        &server,
        &token,
        &format!("/reports/town?town={town}&quarter=2026Q3&format=pdf"),
    )
    .await;
    eprintln!("town PDF: {} bytes", bytes.len());
    let town_pdf = check_pdf(&dir, "town", &bytes);
    let text = squeeze(&town_pdf.text);
    for want in [
        "帮扶工作到位率",
        "村(居)",
        "应考勤周期数",
        "到位率",
        "合计",
        "未到位明细",
    ] {
        assert!(text.contains(want), "town: no {want} in {}", town_pdf.text);
    }
    assert!(text.contains(&format!("共{}页", town_pdf.pages)));
    let bytes = get_pdf(
        &http,
        &server,
        &token,
        "/reports/county?quarter=2026Q3&format=pdf",
    )
    .await;
    eprintln!("county PDF: {} bytes", bytes.len());
    let county_pdf = check_pdf(&dir, "county", &bytes);
    let text = squeeze(&county_pdf.text);
    for want in [demo::COUNTY, "排名", "镇街", "到位率", "东城镇", "西港镇"] {
        assert!(
            text.contains(want),
            "county: no {want} in {}",
            county_pdf.text
        );
    }
    server.stop().await;
}
db_test!(reports_print_as_pdf, demo_pdfs);

/// A long table breaks across pages, with the header row again on each page.
#[test]
fn long_tables_repeat_their_header_on_every_page() {
    let headers: Vec<String> = bangfu_shared::report::SHEET_HEADERS
        .iter()
        .map(|h| h.to_string())
        .collect();
    let rows = (1..=60)
        .map(|i| {
            vec![
                i.to_string(),
                format!("户主{i}"),
                "东城河口村".into(),
                "黄志强".into(),
                "市教育局 科员".into(),
                "13967929081".into(),
                "07-03入户；07-20电话；08-05电话(不计:已作废)；09-12入户(不计:无照片)｜07-01~07-31电话到位；08-01~08-31电话到位；09-01~09-30电话未到位".repeat(if i == 7 { 30 } else { 1 }),
            ]
        })
        .map(|row: Vec<String>| row.into_iter().map(Cell::from).collect())
        .collect();
    let table = Table {
        title: "第一帮扶责任人帮扶工作考勤表 2026Q3 第二帮扶责任人：孔玉梅".into(),
        headers,
        rows,
    };
    let bytes = report_pdf::to_pdf(&[table], Some("第二帮扶责任人：孔玉梅")).unwrap();
    let dir = tempdir();
    let checked = check_pdf(&dir, "long", &bytes);
    assert!(checked.pages >= 3, "{} pages", checked.pages);
    let pages: Vec<&str> = checked.text.split('\u{c}').collect();
    for (i, page) in pages.iter().take(checked.pages).enumerate() {
        let page = squeeze(page);
        assert!(
            page.contains("序号") && page.contains("帮扶记录"),
            "page {}: no header row",
            i + 1
        );
        assert!(
            page.contains(&format!("第{}页共{}页", i + 1, checked.pages)),
            "page {}",
            i + 1
        );
    }
    let all = squeeze(&checked.text);
    assert!(all.contains("户主60") && all.contains("第二帮扶责任人：孔玉梅"));
    std::fs::remove_dir_all(&dir).ok();
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bangfu-pdf-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
