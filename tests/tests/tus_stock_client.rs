//! A stock tus client uploads to the server (issue 4: "a stock tus client must be able to
//! upload to the server"). The client is tus-js-client, the tus project's own, pinned in
//! `tests/tus-js` and driven by `tests/tus-js/upload.cjs` through its public options only:
//! the endpoint, a bearer header, the `sha256` metadata the protocol asks for, a chunk
//! size, creation-with-upload, retries. Nothing of Bangfu's client code is involved.
//!
//! Needs Node.js (18 or later) and npm: when `tests/tus-js/node_modules` is missing, the
//! first test runs `npm ci` there (`.ci/run` does it beforehand).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use bangfu_server::db_test;
use bangfu_server::entities::{blob, record};
use bangfu_shared::sync::{AckStatus, PushResponse};
use bangfu_shared::visit::sha256_hex;
use bangfu_tests::TestDb;
use bangfu_tests::field::{cutting_proxy_paced, jpeg, png};
use bangfu_tests::scenario::Field;
use bangfu_tests::stock_client::tus_js_upload;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// `bytes` written to a file in the test's directory, as a photo waits on a phone.
fn on_disk(t: &TestDb, name: &str, bytes: &[u8]) -> PathBuf {
    let path = t.dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The upload options every test gives the client.
fn args(h: &Field, endpoint_origin: &str, file: &Path, sha256: &str) -> Value {
    json!({
        "endpoint": format!("{endpoint_origin}/api/v1/files"),
        "token": h.token,
        "file": file,
        "sha256": sha256,
    })
}

/// Asserts the server serves `bytes` under their SHA-256.
async fn assert_stored(h: &Field, bytes: &[u8], what: &str) {
    let (status, stored) =
        h.w.get_bytes(&h.token, &format!("/blobs/{}", sha256_hex(bytes)))
            .await;
    assert_eq!(
        (status, stored == bytes),
        (StatusCode::OK, true),
        "{what}: stored byte-identical"
    );
}

/// A home visit pushed before its files is stored awaiting them; tus-js-client then
/// uploads the photo in 64 KiB PATCHes and the signature image with its creation, and
/// the record is complete.
async fn completes_a_waiting_record(t: &TestDb) {
    let mut h = Field::new(t).await;
    let (photo, signature) = (jpeg(200, 11), png(11));
    let visit = h.device.home_visit(h.household, &photo, &signature);
    let resp =
        h.w.http
            .post(h.w.server.url("/sync/push"))
            .bearer_auth(&h.token)
            .json(&json!({ "records": [visit] }))
            .send()
            .await
            .unwrap();
    let acks: PushResponse = resp.json().await.unwrap();
    let mut missing = acks.acks[0].missing_blobs.clone();
    missing.sort();
    let mut files = vec![sha256_hex(&photo), sha256_hex(&signature)];
    files.sort();
    assert_eq!(
        (acks.acks[0].status, missing),
        (AckStatus::AwaitingPhotos, files),
        "stored, waiting for both files"
    );

    let photo_file = on_disk(t, "photo.jpg", &photo);
    let mut chunked = args(&h, &h.origin, &photo_file, &sha256_hex(&photo));
    chunked["chunkSize"] = json!(64 * 1024);
    let done = tus_js_upload(chunked).await;
    assert_eq!(done["ok"], json!(true), "photo in 64 KiB PATCHes: {done}");
    let url = done["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/api/v1/files/", h.origin)),
        "the client resolved the Location path against the server: {url}"
    );

    let sig_file = on_disk(t, "signature.png", &signature);
    let mut whole = args(&h, &h.origin, &sig_file, &sha256_hex(&signature));
    whole["withCreation"] = json!(true);
    let done = tus_js_upload(whole).await;
    assert_eq!(
        done["ok"],
        json!(true),
        "signature with its creation: {done}"
    );

    assert_stored(&h, &photo, "photo").await;
    assert_stored(&h, &signature, "signature image").await;
    let stored = record::Entity::find()
        .filter(record::Column::Id.eq(visit.record.id.to_string()))
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, "accepted", "the files completed the record");
}
db_test!(
    a_stock_tus_client_uploads_the_files_a_record_waits_for,
    completes_a_waiting_record
);

/// Every connection through the proxy dies after 120 KiB (carried at ~2 MB/s, as a link
/// carries bytes over time); a 300 KiB photo still arrives,
/// sent as one PATCH after its creation, or whole with its creation as the field client
/// sends photos. After a cut PATCH tus-js-client asks the server's offset (HEAD); after
/// a cut creation it has no upload URL and creates again, and the server answers with
/// the upload of that file it already holds bytes of. Either way only the rest is sent:
/// starting over would never get past the cut.
async fn resumes_through_cut_links(t: &TestDb) {
    let h = Field::new(t).await;
    let pace = std::time::Duration::from_millis(4);
    let proxy = cutting_proxy_paced(h.w.server.addr, 120 * 1024, pace).await;
    for (seed, with_creation) in [(12, false), (16, true)] {
        let photo = jpeg(300, seed);
        let file = on_disk(t, "photo.jpg", &photo);
        let mut through_proxy = args(&h, &format!("http://{proxy}"), &file, &sha256_hex(&photo));
        through_proxy["retries"] = json!(20);
        through_proxy["withCreation"] = json!(with_creation);
        let done = tus_js_upload(through_proxy).await;
        let how = if with_creation {
            "with its creation"
        } else {
            "by PATCH"
        };
        assert_eq!(
            done["ok"],
            json!(true),
            "{how}, through a link cut every 120 KiB: {done}"
        );
        assert!(
            done["retries"].as_u64().unwrap() >= 2,
            "{how}: it took at least three connections: {done}"
        );
        assert_stored(&h, &photo, how).await;
    }
    assert_eq!(
        blob::Entity::find().all(&t.db).await.unwrap().len(),
        2,
        "each stored once"
    );
}
db_test!(
    a_stock_tus_client_resumes_from_the_server_offset_after_cuts,
    resumes_through_cut_links
);

/// Uploads `bytes` declaring `sha256`, retries allowed, and returns the client's report
/// of a refusal: a 4xx it takes as final (a 5xx it would retry).
async fn refusal(t: &TestDb, h: &Field, bytes: &[u8], sha256: &str) -> Value {
    let file = on_disk(t, "refused.jpg", bytes);
    let mut upload = args(h, &h.origin, &file, sha256);
    upload["retries"] = json!(5);
    let refused = tus_js_upload(upload).await;
    assert_eq!(
        (&refused["ok"], &refused["retries"]),
        (&json!(false), &json!(0)),
        "refused at once, not retried: {refused}"
    );
    refused
}

/// What the server refuses, a stock client reports as refused and does not retry:
/// bytes that are not the declared file (422, the upload is gone), and a file over the
/// size limit (413 at creation).
async fn refusals_reach_the_client(t: &TestDb) {
    let h = Field::with(t, |s| s.max_upload_bytes = 150 * 1024).await;
    let (photo, other) = (jpeg(100, 13), jpeg(100, 14));
    let refused = refusal(t, &h, &photo, &sha256_hex(&other)).await;
    assert_eq!(
        refused["status"],
        json!(422),
        "bytes not matching the declared SHA-256: {refused}"
    );
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("not the declared"),
        "the client has the server's reason: {refused}"
    );
    for bytes in [&photo, &other] {
        let (status, _) =
            h.w.get_bytes(&h.token, &format!("/blobs/{}", sha256_hex(bytes)))
                .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "nothing stored");
    }

    let big = jpeg(200, 15);
    let refused = refusal(t, &h, &big, &sha256_hex(&big)).await;
    assert_eq!(
        refused["status"],
        json!(413),
        "a file over the server's limit: {refused}"
    );
    assert!(
        blob::Entity::find().all(&t.db).await.unwrap().is_empty(),
        "nothing stored"
    );
}
db_test!(
    a_stock_tus_client_is_told_what_the_server_refuses,
    refusals_reach_the_client
);
