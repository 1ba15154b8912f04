//! What a second helper's signature on the quarterly sheet (附件3) covers: the rows they
//! reviewed, not only their remarks. The real client pulls the sheet and signs it with
//! the digest of the rows on the device; a first helper's call voided on the server in
//! between makes the version the server freezes differ from what was reviewed, and the
//! version says so (`reviewed_rows_match: false`, and "冻结的数据与责任人审阅时不同" when printed);
//! signed on the sheet as it stands, the version matches; a device from before the
//! digest (a `bangfu-sheet-v2` submission) is frozen with no verdict on it.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_client::store::SubmissionState;
use bangfu_server::db_test;
use bangfu_shared::Role;
use bangfu_shared::report::{AttendanceSheet, CHANGED_SINCE_REVIEW_ZH, Quarter, SheetSubmission};
use bangfu_shared::sync::AckStatus;
use bangfu_shared::visit::RecordType;
use bangfu_tests::field::Device;
use bangfu_tests::scenario::HELPER;
use bangfu_tests::{FIXTURE, TestDb, World, client_logged_in, enroll_directly, office, quick_sync};
use ed25519_dalek::Signer;
use reqwest::StatusCode;
use serde_json::json;

/// 孔玉梅, second helper of rows 1–5 of the fixture ledger (黄志强's 田晓东 among them).
const SECOND: &str = "18893287921";

async fn push(w: &World, token: &str, records: &[bangfu_shared::visit::SignedRecord]) {
    let (status, body) = w
        .post_json(Some(token), "/sync/push", &json!({ "records": records }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let acks: bangfu_shared::sync::PushResponse = serde_json::from_value(body).unwrap();
    assert!(
        acks.acks.iter().all(|a| a.status == AckStatus::Accepted),
        "{acks:?}"
    );
}

/// Every frozen version of the helper's sheet, as the county office lists them.
async fn versions(w: &World, county: &str, helper_id: i64, q: Quarter) -> Vec<AttendanceSheet> {
    let path = format!("/reports/attendance/versions?second_helper={helper_id}&quarter={q}");
    let (status, body) = w.get(Some(county), &path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

/// The title of a frozen version printed as a spreadsheet (cell A1).
async fn print_title(w: &World, county: &str, helper_id: i64, q: Quarter, version: i32) -> String {
    use calamine::Reader;
    let path = format!(
        "/reports/attendance?second_helper={helper_id}&quarter={q}&version={version}&format=xlsx"
    );
    let (status, bytes) = w.get_bytes(county, &path).await;
    assert_eq!(status, StatusCode::OK);
    let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    range.get((0, 0)).unwrap().to_string()
}

async fn review_then_submit(t: &TestDb) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    w.import_ok(
        &county,
        "?effective_from=2025-10-01&filed_on=2025-07-01&retroactive=true",
        FIXTURE.as_bytes().to_vec(),
    )
    .await;

    // 黄志强 calls 田晓东 today, from a registered device.
    enroll_directly(t, &w, HELPER).await;
    let first = w.login(HELPER).await;
    let (_, me) = w.get(Some(&first), "/me").await;
    let first_id = me["helper"]["id"].as_i64().unwrap();
    let (_, mine) = w.get(Some(&first), "/households").await;
    let household = mine["items"][0]["id"].as_i64().unwrap();
    let mut phone = Device::register(&w, &first, first_id).await;
    let call = phone.phone_call(household);
    push(&w, &first, std::slice::from_ref(&call)).await;

    // 孔玉梅's device pulls the sheet: the call is on it.
    enroll_directly(t, &w, SECOND).await;
    let data = t.dir().join("second").join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (client, _) = client_logged_in(&w, &data, SECOND, "第二帮扶人终端").await;
    let helper_id = client.identity().await.unwrap().helper.unwrap().id;
    let sync = quick_sync(4);
    client.sync(&sync, &|_| {}).await.unwrap();
    let quarter = Quarter::of(bangfu_client::client::today(chrono::Utc::now()));
    let reviewed = client.sheet(quarter).await.unwrap();
    let row = reviewed
        .sheet
        .rows
        .iter()
        .find(|r| r.household_id == household)
        .unwrap();
    assert!(
        row.records
            .iter()
            .any(|r| r.record_id == call.record.id.to_string() && r.counts),
        "{row:?}"
    );

    // Meanwhile 黄志强 withdraws the call: the server's sheet is no longer the one on
    // 孔玉梅's device.
    let void = phone.sign(
        household,
        RecordType::Void,
        None,
        Some(call.record.id),
        Some("误录"),
    );
    push(&w, &first, &[void]).await;

    // 孔玉梅 writes a remark and signs the sheet she reviewed; the sync submits it. Her
    // remark is kept, and the version says its rows are not those she reviewed.
    client
        .set_sheet_remark(quarter, household, "电话回访到位")
        .await
        .unwrap();
    let signed = client.submit_sheet(quarter).await.unwrap();
    assert_eq!(
        signed.submission.rows_sha256.as_deref(),
        Some(reviewed.sheet.rows_sha256().as_str()),
        "the digest of the sheet on the device is signed"
    );
    assert!(
        signed
            .submission
            .signing_bytes()
            .starts_with(b"bangfu-sheet-v3\n")
    );
    let report = client.sync(&sync, &|_| {}).await.unwrap();
    assert_eq!(report.sheets_submitted, vec![(quarter, 1)], "{report:?}");

    let v = versions(&w, &county, helper_id, quarter).await;
    assert_eq!(v.len(), 1);
    assert_eq!(
        v[0].reviewed_rows_match,
        Some(false),
        "a call voided after the review changed the sheet"
    );
    let frozen_row = v[0]
        .rows
        .iter()
        .find(|r| r.household_id == household)
        .unwrap();
    assert_eq!(frozen_row.remark.as_deref(), Some("电话回访到位"));
    assert!(
        frozen_row
            .records
            .iter()
            .all(|r| r.record_id != call.record.id.to_string() || !r.counts),
        "the frozen version holds the sheet as it stands: {frozen_row:?}"
    );
    let printed = print_title(&w, &county, helper_id, quarter, 1).await;
    assert!(
        printed.ends_with(&format!("第1版（{CHANGED_SINCE_REVIEW_ZH}）")),
        "{printed}"
    );
    // The town office's 报送情况 asks for it again, as the device does (QA s23b F9).
    let (_, detail) = w
        .get(Some(&county), &format!("/households/{household}"))
        .await;
    let town_report = format!(
        "/reports/town?town={}&quarter={quarter}",
        detail["town"]["id"].as_i64().unwrap()
    );
    let status_of = |report: &serde_json::Value| {
        report["sheets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["second_helper"]["id"] == helper_id)
            .cloned()
            .unwrap()
    };
    let (_, report) = w.get(Some(&county), &town_report).await;
    assert_eq!(status_of(&report)["not_as_reviewed"], true, "{report}");
    let (status, csv) = w
        .get_bytes(&county, &format!("{town_report}&format=csv"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8_lossy(&csv).contains("审阅后数据有变化，需重新报送"),
        "{}",
        String::from_utf8_lossy(&csv)
    );

    // The device now holds the sheet as it stands; signed on it, version 2 matches.
    let view = client.sheet(quarter).await.unwrap();
    assert_eq!(
        view.state(),
        Some(SubmissionState::Submitted { version: 1 })
    );
    assert_eq!(view.sheet.reviewed_rows_match, Some(false));
    assert_ne!(view.sheet.rows_sha256(), reviewed.sheet.rows_sha256());
    client.submit_sheet(quarter).await.unwrap();
    let report = client.sync(&sync, &|_| {}).await.unwrap();
    assert_eq!(report.sheets_submitted, vec![(quarter, 2)], "{report:?}");
    let v = versions(&w, &county, helper_id, quarter).await;
    assert_eq!(v[1].submitted_version, Some(2));
    assert_eq!(v[1].reviewed_rows_match, Some(true));
    assert_eq!(
        v[0].reviewed_rows_match,
        Some(false),
        "version 1 stays as it was"
    );
    let printed = print_title(&w, &county, helper_id, quarter, 2).await;
    assert!(printed.ends_with("第2版"), "{printed}");
    let (_, report) = w.get(Some(&county), &town_report).await;
    assert!(
        status_of(&report).get("not_as_reviewed").is_none(),
        "{report}"
    );

    // A device from before the digest signs `bangfu-sheet-v2`: still taken, no verdict.
    let token = w.login(SECOND).await;
    let old = Device::register(&w, &token, helper_id).await;
    let mut sub = SheetSubmission {
        quarter,
        device_id: old.device_id,
        remarks: vec![(household, "旧版终端".into())],
        signature: String::new(),
        submission_id: Some(uuid::Uuid::now_v7()),
        rows_sha256: None,
    };
    assert!(sub.signing_bytes().starts_with(b"bangfu-sheet-v2\n"));
    sub.signature = hex::encode(old.key.sign(&sub.signing_bytes()).to_bytes());
    let (status, body) = w
        .post_json(
            Some(&token),
            "/reports/attendance/submit",
            &serde_json::to_value(&sub).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.get("reviewed_rows_match").is_none(), "{body}");
    let v = versions(&w, &county, helper_id, quarter).await;
    assert_eq!(v[2].submitted_version, Some(3));
    assert_eq!(v[2].reviewed_rows_match, None);

    // A digest that is not the one signed is refused like any altered submission.
    let mut forged = SheetSubmission {
        submission_id: Some(uuid::Uuid::now_v7()),
        rows_sha256: Some(view.sheet.rows_sha256()),
        ..sub.clone()
    };
    forged.signature = hex::encode(old.key.sign(&forged.signing_bytes()).to_bytes());
    forged.rows_sha256 = Some(reviewed.sheet.rows_sha256());
    let (status, _) = w
        .post_json(
            Some(&token),
            "/reports/attendance/submit",
            &serde_json::to_value(&forged).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

db_test!(
    a_sheet_signed_on_rows_that_changed_since_is_frozen_marked,
    review_then_submit
);
