//! The report files offices open in Excel: the second helper's sheet (附件3) numbers the
//! rows it lists 1..n, whatever their 序号 in the ledger, and every CSV the server
//! writes starts with a UTF-8 BOM, which Excel on Chinese Windows needs to read UTF-8.
//! Every test runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::db_test;
use bangfu_server::entities::helper;
use bangfu_shared::Role;
use bangfu_shared::report::Quarter;
use bangfu_tests::{FIXTURE, TestDb, World, office};
use calamine::Reader;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The fixture imported by a county office: its token and 阎淑珍's id, the second helper
/// of the households of 序号 6–10.
async fn imported(t: &TestDb, w: &World) -> (String, i64) {
    office(t, w, "county", Role::CountyOffice, w.county_id).await;
    let token = w.login("county").await;
    w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    let second = helper::Entity::find()
        .filter(helper::Column::Phone.eq("18011084364"))
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    (token, second.id)
}

async fn sheet_numbers_its_rows(t: &TestDb) {
    let w = World::new(t).await;
    let (token, second) = imported(t, &w).await;
    let q = Quarter::of(bangfu_server::services::today());
    let path = format!("/reports/attendance?second_helper={second}&quarter={q}");
    let (_, json) = w.get(Some(&token), &path).await;
    let seqs: Vec<u64> = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [6, 7, 8, 9, 10], "the JSON keeps the ledger's 序号");

    let (status, csv) = w.get_bytes(&token, &format!("{path}&format=csv")).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(csv).unwrap();
    let numbers: Vec<&str> = text
        .lines()
        .skip(2)
        .take_while(|l| *l != "\"\"")
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(numbers, ["1", "2", "3", "4", "5"], "{text}");
    assert!(
        text.contains("\r\n\"\"\r\n考勤规则\r\n"),
        "the rule follows: {text}"
    );

    let (status, xlsx) = w.get_bytes(&token, &format!("{path}&format=xlsx")).await;
    assert_eq!(status, StatusCode::OK);
    let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(xlsx)).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    let column_a: Vec<String> = range.rows().skip(2).map(|r| r[0].to_string()).collect();
    assert_eq!(column_a, ["1", "2", "3", "4", "5"]);
}
db_test!(
    the_attendance_sheet_numbers_its_own_rows_not_the_ledgers,
    sheet_numbers_its_rows
);

async fn csv_with_bom(t: &TestDb) {
    let w = World::new(t).await;
    let (token, second) = imported(t, &w).await;
    let (_, page) = w.get(Some(&token), "/households?per_page=1").await;
    let town = page["items"][0]["town"]["id"].as_i64().unwrap();
    let q = Quarter::of(bangfu_server::services::today());
    for path in [
        format!("/ledger/export?town={town}&format=csv"),
        format!("/reports/attendance?second_helper={second}&quarter={q}&format=csv"),
        format!("/reports/town?town={town}&quarter={q}&format=csv"),
        format!("/reports/county?quarter={q}&format=csv"),
    ] {
        let (status, bytes) = w.get_bytes(&token, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(bytes.starts_with(BOM), "{path}");
        assert!(!bytes[BOM.len()..].starts_with(BOM), "one BOM: {path}");
    }
}
db_test!(every_csv_export_starts_with_a_bom, csv_with_bom);
