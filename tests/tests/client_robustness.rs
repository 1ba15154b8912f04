//! One bad file does not block the sync: the real client against a real server, on
//! SQLite and PostgreSQL. A photo the server refuses (over its size limit) and an image
//! the server holds but no decoder can read (sent by another device of the helper) each
//! become one problem in the report; the other records still sync, the pull still runs,
//! the other images still download — and so again at the next sync.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use std::path::Path;

use bangfu_client::Client;
use bangfu_client::store::SyncState;
use bangfu_server::db_test;
use bangfu_shared::visit::{HouseholdSignature, VisitBody, sha256_hex};
use bangfu_shared::{Role, VisitKind};
use bangfu_tests::field::{Device, jpeg, png, upload};
use bangfu_tests::scenario::HELPER;
use bangfu_tests::{FIXTURE, TestDb, World, client_logged_in, enroll_directly, office, quick_sync};
use reqwest::StatusCode;
use serde_json::json;

/// The server's upload limit in this test.
const LIMIT: u64 = 150 * 1024;

/// A signed home visit with one photo of about `kib` KiB; its id and the photo's hash.
async fn home_visit(
    c: &Client,
    dir: &Path,
    household: i64,
    kib: usize,
    seed: u8,
) -> (uuid::Uuid, String) {
    let mut body = VisitBody::new(VisitKind::Home, chrono::Utc::now());
    body.problems.push("屋顶漏雨".into());
    let path = dir.join(format!("photo-{seed}.jpg"));
    std::fs::write(&path, jpeg(kib, seed)).unwrap();
    let photo = c.attach_photo(&path).await.unwrap();
    let sha = photo.sha256.clone();
    body.photos.push(photo);
    body.household_signature = Some(HouseholdSignature::Drawn {
        image_sha256: c.attach_signature_png(&png(seed)).await.unwrap(),
    });
    let signed = c
        .record_visit(household, body, None, None, chrono::Utc::now())
        .await
        .unwrap();
    (signed.record.id, sha)
}

async fn state_of(c: &Client, id: uuid::Uuid) -> SyncState {
    let device = c.identity().await.unwrap().device_id;
    c.store()
        .device_records(device)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.signed.record.id == id)
        .unwrap()
        .sync_state
}

async fn one_bad_file_does_not_block_the_sync(t: &TestDb) {
    // PNGs are not decoded by this server (only their signature is checked), so it
    // accepts an image whose header no decoder can read.
    let w = World::with(t, |s| {
        s.max_upload_bytes = LIMIT;
        s.full_decode_limit_bytes = 0;
    })
    .await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    w.import_ok(&county, "", FIXTURE.as_bytes().to_vec()).await;
    enroll_directly(t, &w, HELPER).await;
    let origin = format!("http://{}", w.server.addr);

    // The helper's other phone sends a visit whose signature image is broken.
    let token = w.login(HELPER).await;
    let (_, me) = w.get(Some(&token), "/me").await;
    let helper_id = me["helper"]["id"].as_i64().unwrap();
    let (_, mine) = w.get(Some(&token), "/households").await;
    let household = mine["items"][0]["id"].as_i64().unwrap();
    let mut other = Device::register(&w, &token, helper_id).await;
    let good = jpeg(20, 90);
    let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
    broken.extend(std::iter::repeat_n(0x42u8, 200));
    let record = other.home_visit(household, &good, &broken);
    let push = json!({ "records": [record] });
    let (status, acks) = w.post_json(Some(&token), "/sync/push", &push).await;
    assert_eq!(status, StatusCode::OK, "{acks}");
    for bytes in [&good, &broken] {
        assert_eq!(
            upload(&w.http, &origin, &token, bytes).await,
            StatusCode::NO_CONTENT
        );
    }
    let (_, acks) = w.post_json(Some(&token), "/sync/push", &push).await;
    assert_eq!(acks["acks"][0]["status"], "accepted", "{acks}");

    // This phone: a visit whose photo is over the server's limit, one that fits, a call.
    let dir = t.dir().join("clients");
    std::fs::create_dir_all(&dir).unwrap();
    let (c, _) = client_logged_in(&w, &dir.join("device"), HELPER, "测试终端").await;
    let (big, big_sha) = home_visit(&c, &dir, household, 400, 1).await;
    assert!(
        std::fs::metadata(c.photos().path_of(&big_sha))
            .unwrap()
            .len()
            > LIMIT,
        "the stored photo is over the server's limit"
    );
    let (small, _) = home_visit(&c, &dir, household, 20, 2).await;
    let mut call = VisitBody::new(VisitKind::Phone, chrono::Utc::now());
    call.notes = Some("电话了解近况".into());
    let call = c
        .record_visit(household, call, None, None, chrono::Utc::now())
        .await
        .unwrap()
        .record
        .id;

    for run in 1..=2 {
        let report = c
            .sync(&quick_sync(8), &|_| {})
            .await
            .unwrap_or_else(|e| panic!("run {run}: the sync ends with a report, not {e}"));
        assert!(!report.complete(), "run {run}: {report:?}");
        assert_eq!(report.problems.len(), 2, "run {run}: {:?}", report.problems);
        let texts: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
        let refused = texts
            .iter()
            .find(|p| p.contains(&big_sha))
            .unwrap_or_else(|| panic!("run {run}: {:?}", report.problems));
        assert!(
            refused.contains("HTTP 413")
                && refused.contains(&big.to_string())
                && refused.contains("awaiting photos"),
            "the helper sees which record waits and why: {refused}"
        );
        let unreadable = texts
            .iter()
            .find(|p| p.contains(&sha256_hex(&broken)))
            .unwrap_or_else(|| panic!("run {run}: {:?}", report.problems));
        assert!(
            unreadable.contains("not a readable JPEG or PNG"),
            "{unreadable}"
        );
        assert_eq!(
            state_of(&c, big).await,
            SyncState::AwaitingPhotos,
            "run {run}"
        );
        assert_eq!(state_of(&c, small).await, SyncState::Synced, "run {run}");
        assert_eq!(state_of(&c, call).await, SyncState::Synced, "run {run}");
        if run == 1 {
            assert_eq!(
                report.synced, 2,
                "the other records went through: {report:?}"
            );
            assert_eq!(report.imported, 1, "the pull ran: {report:?}");
            assert_eq!(
                report.files_downloaded, 1,
                "the readable image came: {report:?}"
            );
        }
    }
    assert!(
        c.photos().verify(&sha256_hex(&good)),
        "the other phone's photo is on this device"
    );
    assert!(!c.photos().path_of(&sha256_hex(&broken)).exists());
}
db_test!(
    one_refused_photo_and_one_unreadable_image_do_not_block_the_sync,
    one_bad_file_does_not_block_the_sync
);
