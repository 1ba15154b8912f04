//! A ledger file with a clerk's mistake in it is refused over HTTP with where the mistake
//! is and what to do, and nothing of it is written: bytes not in the file's encoding (by
//! row and column), a header laid out wrongly (what was expected, what was found, said
//! once), a 序号 written twice in one town (both rows named). And the byte order mark:
//! a file imports the same with or without it. Every test runs on SQLite and, with
//! TEST_DATABASE_URL, on PostgreSQL.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::db_test;
use bangfu_shared::Role;
use bangfu_tests::{FIXTURE, TestDb, World, office, with_bom};
use reqwest::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::Value;

async fn county_token(t: &TestDb, w: &World) -> String {
    office(t, w, "county", Role::CountyOffice, w.county_id).await;
    w.login("county").await
}

/// Households, helpers, pairings and accounts stored.
async fn counts(t: &TestDb) -> [u64; 4] {
    use bangfu_server::entities::{account, helper, household, pairing};
    [
        household::Entity::find().count(&t.db).await.unwrap(),
        helper::Entity::find().count(&t.db).await.unwrap(),
        pairing::Entity::find().count(&t.db).await.unwrap(),
        account::Entity::find().count(&t.db).await.unwrap(),
    ]
}

/// A line of the fixture made into other bytes.
type LineEdit = dyn Fn(&str) -> Vec<u8>;

/// The fixture as bytes, each line `i` (0-based, the header being 0) of `edits` made by
/// its function.
fn fixture_with(edits: &[(usize, &LineEdit)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, line) in FIXTURE.lines().enumerate() {
        match edits.iter().find(|(at, _)| *at == i) {
            Some((_, edit)) => out.extend(edit(line)),
            None => out.extend_from_slice(line.as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// `line` with `name` replaced by `bytes`.
fn with_bytes_for(line: &str, name: &str, bytes: &[u8]) -> Vec<u8> {
    let (before, after) = line.split_once(name).unwrap();
    [before.as_bytes(), bytes, after.as_bytes()].concat()
}

/// The refusal's details as (row, column, reason).
fn details(body: &Value) -> Vec<(i64, String, String)> {
    body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["row"].as_i64().unwrap(),
                d["column"].as_str().unwrap().to_string(),
                d["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Imports `body`, expecting the 422 of an invalid ledger.
async fn refused(w: &World, token: &str, body: Vec<u8>) -> Vec<(i64, String, String)> {
    let (status, body) = w.post_bytes(token, "/ledger/import", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "invalid_ledger", "{body}");
    details(&body)
}

async fn encoding_errors(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    let before = counts(t).await;

    // Line 5: a stray byte in 龚玉兰's name (龚 in UTF-8, then 0xFF). Line 9: 陆春梅
    // pasted from a GBK file (her name's GBK bytes), and her first helper renamed, which
    // must not be written.
    let bytes = fixture_with(&[
        (4, &|l| with_bytes_for(l, "龚玉兰", b"\xE9\xBE\x9A\xFF")),
        (8, &|l| {
            let l = l.replace("史凤英", "史凤霞");
            with_bytes_for(&l, "陆春梅", b"\xC2\xBD\xB4\xBA\xC3\xB7")
        }),
    ]);
    let found = refused(&w, &token, bytes).await;
    let at: Vec<(i64, &str)> = found.iter().map(|(r, c, _)| (*r, c.as_str())).collect();
    assert_eq!(at, [(5, "贫困户姓名"), (9, "贫困户姓名")], "{found:?}");
    assert!(found[0].2.contains("UTF-8编码中无效的字节"), "{found:?}");
    assert!(
        found[1].2.contains("按GBK编码读作「陆春梅」"),
        "the clerk is shown the name: {found:?}"
    );
    assert_eq!(counts(t).await, before, "nothing written");
}
db_test!(
    bytes_not_in_the_files_encoding_are_refused_by_row_and_column_and_nothing_is_written,
    encoding_errors
);

async fn layout_errors(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    let edited = |f: &dyn Fn(usize, &mut Vec<&str>)| -> Vec<u8> {
        FIXTURE
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let mut cells: Vec<&str> = l.split(',').collect();
                f(i, &mut cells);
                cells.join(",")
            })
            .collect::<Vec<_>>()
            .join("\r\n")
            .into_bytes()
    };

    // 贫困户姓名 left out: one error saying so, not one per later column and data row.
    let found = refused(
        &w,
        &token,
        edited(&|_, c| {
            c.remove(1);
        }),
    )
    .await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!((found[0].0, found[0].1.as_str()), (1, "贫困户姓名"));
    assert!(
        found[0].2.starts_with(
            "应为「贫困户姓名」，实为「家庭地址(镇街、村)」：缺少「贫困户姓名」这一列"
        ),
        "{found:?}"
    );
    assert!(found[1].2.contains("其下各行未逐格检查"), "{found:?}");

    // The two helpers' name columns swapped.
    let found = refused(&w, &token, edited(&|_, c| c.swap(6, 9))).await;
    let at: Vec<(i64, &str)> = found.iter().map(|(r, c, _)| (*r, c.as_str())).collect();
    assert_eq!(
        at[..2],
        [(1, "第一帮扶责任人姓名"), (1, "第二帮扶责任人姓名")],
        "{found:?}"
    );
    assert!(found[0].2.contains("两列的位置颠倒了"), "{found:?}");

    // An ID column inserted after the name.
    let found = refused(
        &w,
        &token,
        edited(&|i, c| {
            c.insert(
                2,
                if i == 0 {
                    "身份证号码"
                } else {
                    "370683199001011234"
                },
            )
        }),
    )
    .await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].2.contains("多出了一列「身份证号码」"), "{found:?}");
    assert_eq!(counts(t).await, [0, 0, 0, 2], "nothing written");
}
db_test!(
    a_wrong_header_says_what_was_expected_and_found_once,
    layout_errors
);

async fn serial_twice(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    let found = refused(
        &w,
        &token,
        FIXTURE.replacen("\n12,", "\n5,", 1).into_bytes(),
    )
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0, found[0].1.as_str()), (13, "序号"));
    assert!(found[0].2.starts_with("序号5与第6行重复"), "{found:?}");
    assert_eq!(counts(t).await, [0, 0, 0, 2], "nothing written");

    // A county's file numbers each town's households from 1: accepted.
    let xigang = [
        "1,吴海生,西港镇东村,因病,医疗救助,13800000001,郑明,市水利局 科员,13800000002,冯丽,村委会主任,13800000003",
        "2,钱进,西港镇东村,因学,教育资助,13800000004,王强,市水利局 科员,13800000005,冯丽,村委会主任,13800000003",
    ];
    let county_file = format!("{FIXTURE}\r\n{}\r\n", xigang.join("\r\n"));
    let report = w.import_ok(&token, "", county_file.into_bytes()).await;
    assert_eq!(report["households_created"], 22, "{report}");
}
db_test!(
    a_serial_number_twice_in_one_town_is_refused_naming_both_rows,
    serial_twice
);

async fn bom_or_not(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    let created = w.import_ok(&token, "", with_bom(FIXTURE)).await;
    assert_eq!(created["households_created"], 20, "{created}");
    let again = w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    assert_eq!(again["households_unchanged"], 20, "{again}");

    // The export starts with a BOM and imports again as it is.
    let (_, page) = w.get(Some(&token), "/households?per_page=1").await;
    let town = page["items"][0]["town"]["id"].as_i64().unwrap();
    let (status, csv) = w
        .get_bytes(&token, &format!("/ledger/export?town={town}&format=csv"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        csv.starts_with(b"\xEF\xBB\xBF\xE5\xBA\x8F"),
        "BOM, then 序号"
    );
    let again = w.import_ok(&token, "", csv).await;
    assert_eq!(again["households_unchanged"], 20, "{again}");

    // A title row after the BOM, and a quoted first header cell, read the same.
    let titled = format!("镇(街)：东城镇\r\n\"序号\"{}", &FIXTURE["序号".len()..]);
    let again = w.import_ok(&token, "", with_bom(&titled)).await;
    assert_eq!(again["households_unchanged"], 20, "{again}");
}
db_test!(a_ledger_imports_the_same_with_or_without_a_bom, bom_or_not);
