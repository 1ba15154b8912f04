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
use bangfu_shared::Role;
use bangfu_shared::sync::{AckStatus, PushResponse};
use bangfu_shared::visit::sha256_hex;
use bangfu_tests::field::{Device, cutting_proxy_paced, jpeg, png};
use bangfu_tests::{FIXTURE, TestDb, World, enroll_directly, office};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// A first helper signed in with a registered device, and one of their households.
struct Helper {
    w: World,
    token: String,
    origin: String,
    device: Device,
    household: i64,
}

/// The fixture ledger; 黄志强 (first helper of 田晓东) signed in with a device.
async fn helper(t: &TestDb, adjust: impl FnOnce(&mut bangfu_server::Settings)) -> Helper {
    let w = World::with(t, adjust).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    w.import_ok(&county, "", FIXTURE.as_bytes().to_vec()).await;
    enroll_directly(t, &w, "15907579383").await;
    let token = w.login("15907579383").await;
    let helper_id = w.get(Some(&token), "/me").await.1["helper"]["id"]
        .as_i64()
        .unwrap();
    let household = w.get(Some(&token), "/households").await.1["items"][0]["id"]
        .as_i64()
        .unwrap();
    let device = Device::register(&w.http, &w.server.base, &token, helper_id).await;
    let origin = format!("http://{}", w.server.addr);
    Helper {
        w,
        token,
        origin,
        device,
        household,
    }
}

/// `tests/tus-js`, with its modules installed (`npm ci`, once per test process).
fn tus_js() -> &'static Path {
    static READY: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let ready = READY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tus-js");
        if dir.join("node_modules/tus-js-client/package.json").exists() {
            return Ok(dir);
        }
        let out = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("npm (Node.js) is needed for this test: {e}"))?;
        if out.status.success() {
            Ok(dir)
        } else {
            Err(format!(
                "npm ci in {} failed: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    match ready {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

/// Runs one upload with tus-js-client (see `upload.cjs` for `args`) and returns what the
/// client reported: `{"ok":true,"url":…,"retries":n}` or `{"ok":false,"status":…}`.
/// A client still running after two minutes is killed and the test fails (tus-js-client
/// has no timeout of its own: a server that never answers would hang it).
async fn tus_js_upload(args: Value) -> Value {
    use std::process::{Command, Stdio};
    let dir = tus_js();
    let run = move || {
        let mut child = Command::new("node")
            .arg(dir.join("upload.cjs"))
            .arg(args.to_string())
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let mut killed = false;
        while child.try_wait()?.is_none() {
            if std::time::Instant::now() > deadline {
                child.kill()?;
                killed = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.wait_with_output().map(|out| (out, killed))
    };
    let (out, killed) = tokio::task::spawn_blocking(run)
        .await
        .unwrap()
        .expect("node (Node.js 18 or later) is needed for this test");
    assert!(
        !killed,
        "tus-js-client was still running after 120 s: killed"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "tus-js-client said nothing readable ({e}): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `bytes` written to a file in the test's directory, as a photo waits on a phone.
fn on_disk(t: &TestDb, name: &str, bytes: &[u8]) -> PathBuf {
    let path = t.dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The upload options every test gives the client.
fn args(h: &Helper, endpoint_origin: &str, file: &Path, sha256: &str) -> Value {
    json!({
        "endpoint": format!("{endpoint_origin}/api/v1/files"),
        "token": h.token,
        "file": file,
        "sha256": sha256,
    })
}

/// Asserts the server serves `bytes` under their SHA-256.
async fn assert_stored(h: &Helper, bytes: &[u8], what: &str) {
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
    let mut h = helper(t, |_| {}).await;
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
    let h = helper(t, |_| {}).await;
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
async fn refusal(t: &TestDb, h: &Helper, bytes: &[u8], sha256: &str) -> Value {
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
    let h = helper(t, |s| s.max_upload_bytes = 150 * 1024).await;
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
