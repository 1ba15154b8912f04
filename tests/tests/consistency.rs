//! What the server stores stays consistent under concurrency and interruption: a policy
//! version appears together with the ledger mark that sends it to devices; two reviewers
//! deciding at once cannot apply a family change twice or lose one; an upload holding
//! every byte is always finished before a tus client is told it is done; a malformed
//! `Upload-Checksum` is refused as such, not answered as a mismatch to retry.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use bangfu_server::db_test;
use bangfu_shared::sync::AckStatus;
use bangfu_shared::visit::{
    FamilyChange, FamilyChangeKind, RecordType, SignedRecord, VisitBody, sha256_hex,
};
use bangfu_tests::field::{jpeg, png, tus_offset, upload};
use bangfu_tests::scenario::Field;
use bangfu_tests::stock_client::tus_js_upload;
use bangfu_tests::{FIXTURE, TestDb};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use std::time::Duration;

/// Holds a write transaction that has taken the change counter, as a push in progress
/// does (the write gate on SQLite, the counter's row lock on PostgreSQL): writes that
/// start meanwhile wait for it.
async fn hold_writes(t: &TestDb) -> (bangfu_server::db::WriteGuard, bangfu_server::db::WriteTxn) {
    let (gate, txn) = bangfu_server::db::begin_write(&t.db).await.unwrap();
    let backend = txn.get_database_backend();
    txn.execute_raw(bangfu_server::services::push_reads::counter_lock(backend))
        .await
        .unwrap();
    (gate, txn)
}

/// Lets requests started meanwhile reach the point where they wait for held writes.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

/// A request made while writes are held must not wait for them (it would hang the test).
async fn promptly<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .unwrap_or_else(|_| panic!("{what} waited for the held writes"))
}

/// Pulls from `cursor` until the server has nothing more; returns the last answer.
async fn pull_all(f: &Field, mut cursor: i64) -> Value {
    loop {
        let (status, page) =
            f.w.get(Some(&f.token), &format!("/sync/pull?cursor={cursor}"))
                .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        cursor = page["cursor"].as_i64().unwrap();
        if page["more"] != json!(true) {
            return page;
        }
    }
}

// ---- 1. A policy version and its ledger mark ----

/// A county office stores a new policy while a push holds the change counter: until it
/// is stored, neither the version nor a ledger change is visible (a device's cursor
/// cannot pass the mark), and the device's next pull from its old cursor brings it.
async fn policy_arrives_with_its_mark(t: &TestDb) {
    let f = Field::new(t).await;
    let before = pull_all(&f, 0).await;
    let cursor = before["cursor"].as_i64().unwrap();
    let (_, versions) = f.w.get(Some(&f.county), "/policies").await;
    let stored_before = versions.as_array().unwrap().len();

    let held = hold_writes(t).await;
    // Today: a version may not be dated into a quarter that has ended.
    let valid_from = bangfu_tests::china_today();
    let (http, url, county) = (
        f.w.http.clone(),
        f.w.server.url("/policies"),
        f.county.clone(),
    );
    let create = tokio::spawn(async move {
        let resp = http
            .post(url)
            .bearer_auth(county)
            .json(&json!({ "valid_from": valid_from, "preset": "xigang-2019" }))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    });
    settle().await;
    let (_, versions) = promptly("listing policies", f.w.get(Some(&f.county), "/policies")).await;
    assert_eq!(
        versions.as_array().unwrap().len(),
        stored_before,
        "no version is visible before its ledger mark"
    );
    let (_, meanwhile) = promptly(
        "pulling",
        f.w.get(Some(&f.token), &format!("/sync/pull?cursor={cursor}")),
    )
    .await;
    assert_eq!(meanwhile["policy"], Value::Null, "nothing changed yet");
    assert_eq!(meanwhile["cursor"].as_i64(), Some(cursor));

    let (gate, txn) = held;
    txn.commit().await.unwrap();
    drop(gate);
    let (status, created) = create.await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let after = pull_all(&f, cursor).await;
    assert_eq!(
        after["policy"], created["policy"],
        "the device's next pull brings the new policy"
    );
    let (_, versions) = f.w.get(Some(&f.county), "/policies").await;
    assert_eq!(versions.as_array().unwrap().len(), stored_before + 1);
}
db_test!(
    a_new_policy_reaches_devices_with_its_ledger_mark,
    policy_arrives_with_its_mark
);

/// A ledger file that changes the helper's household (a new measure): the device's next
/// pull from its old cursor brings the households again, with the change. A re-import
/// of the same file changes nothing, and the pull after it brings no households.
async fn import_reaches_devices(t: &TestDb) {
    let f = Field::new(t).await;
    let first = pull_all(&f, 0).await;
    let cursor = first["cursor"].as_i64().unwrap();
    let measures = |page: &Value| -> Vec<String> {
        page["households"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["measures"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(measures(&first), ["就业帮扶、危房改造"]);
    let header = FIXTURE.lines().next().unwrap();
    let row = FIXTURE.lines().find(|l| l.contains("田晓东")).unwrap();
    let file = format!(
        "{header}\r\n{}\r\n",
        row.replace("就业帮扶、危房改造", "就业帮扶、危房改造、产业帮扶")
    );
    let (status, report) =
        f.w.post_bytes(&f.county, "/ledger/import", file.clone().into_bytes())
            .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["households_updated"], 1, "{report}");
    let after = pull_all(&f, cursor).await;
    assert_eq!(
        measures(&after),
        ["就业帮扶、危房改造、产业帮扶"],
        "the change reaches the device"
    );
    let cursor = after["cursor"].as_i64().unwrap();
    let (status, _) =
        f.w.post_bytes(&f.county, "/ledger/import", file.into_bytes())
            .await;
    assert_eq!(status, StatusCode::OK);
    let again = pull_all(&f, cursor).await;
    assert_eq!(
        again["households"],
        Value::Null,
        "a no-op import changes nothing"
    );
}
db_test!(
    an_imported_ledger_change_reaches_devices_at_their_next_pull,
    import_reaches_devices
);

// ---- 2. Family changes decided at once ----

/// Accepts (or rejects) change `id` as the county office; returns the status.
async fn decide(f: &Field, id: i64, accept: bool) -> tokio::task::JoinHandle<(StatusCode, Value)> {
    let (http, url, county) = (
        f.w.http.clone(),
        f.w.server.url(&format!("/review/family-changes/{id}")),
        f.county.clone(),
    );
    tokio::spawn(async move {
        let resp = http
            .post(url)
            .bearer_auth(county)
            .json(&json!({ "accept": accept }))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    })
}

async fn members(f: &Field) -> Vec<String> {
    let (_, h) =
        f.w.get(Some(&f.token), &format!("/households/{}", f.household))
            .await;
    h["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

/// Two reviewers accepting one change at once: exactly one succeeds, the other is told
/// it was already decided, and the member joins once. Two different changes of one
/// household accepted at once both land.
async fn family_changes_decided_at_once(t: &TestDb) {
    let mut f = Field::new(t).await;
    let mut v = VisitBody::new(bangfu_shared::VisitKind::Phone, chrono::Utc::now());
    for (kind, name) in [
        (FamilyChangeKind::Birth, "田小宝"),
        (FamilyChangeKind::Birth, "田小贝"),
        (FamilyChangeKind::MoveIn, "王秀兰"),
    ] {
        v.family_changes.push(FamilyChange {
            kind,
            name: name.into(),
        });
    }
    let rec = f
        .device
        .sign(f.household, RecordType::Visit, Some(v), None, None);
    f.push(&[rec]).await;
    let (_, queue) = f.w.get(Some(&f.county), "/review/family-changes").await;
    let id_of = |name: &str| {
        queue
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (baby, twin, bride) = (id_of("田小宝"), id_of("田小贝"), id_of("王秀兰"));

    let (gate, txn) = hold_writes(t).await;
    let first = decide(&f, baby, true).await;
    let second = decide(&f, baby, true).await;
    settle().await;
    txn.commit().await.unwrap();
    drop(gate);
    let (a, b) = (first.await.unwrap(), second.await.unwrap());
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "one accept, one conflict: {a:?} {b:?}"
    );
    let refused = if a.0 == StatusCode::CONFLICT {
        &a.1
    } else {
        &b.1
    };
    assert_eq!(refused["error"], "conflict");
    assert!(
        refused["message"].as_str().unwrap().contains("already"),
        "{refused}"
    );
    // With the head, whom a ledger's household lists as its first member (QA s29b J3).
    assert_eq!(
        members(&f).await,
        ["田晓东", "田小宝"],
        "the child joined once"
    );

    let (gate, txn) = hold_writes(t).await;
    let one = decide(&f, twin, true).await;
    let other = decide(&f, bride, true).await;
    settle().await;
    txn.commit().await.unwrap();
    drop(gate);
    assert_eq!(one.await.unwrap().0, StatusCode::OK);
    assert_eq!(other.await.unwrap().0, StatusCode::OK);
    let mut now = members(&f).await;
    now.sort();
    let mut expected = ["田晓东", "田小宝", "田小贝", "王秀兰"];
    expected.sort();
    assert_eq!(now, expected, "both changes landed, none lost");
}
db_test!(
    family_changes_decided_at_once_apply_once_each,
    family_changes_decided_at_once
);

// ---- 3. An upload holding every byte ----

/// A field whose helper pushed a home visit before its files (stored awaiting them),
/// with its signature image uploaded; returns the field, the record and the photo still
/// missing.
async fn awaiting_photo(t: &TestDb, seed: u8) -> (Field, SignedRecord, Vec<u8>) {
    let mut f = Field::new(t).await;
    let (photo, signature) = (jpeg(60, seed), png(seed));
    let visit = f.device.home_visit(f.household, &photo, &signature);
    let ack = f.push(std::slice::from_ref(&visit)).await;
    assert_eq!(ack.acks[0].status, AckStatus::AwaitingPhotos);
    assert_eq!(
        upload(&f.w.http, &f.origin, &f.token, &signature).await,
        StatusCode::NO_CONTENT
    );
    (f, visit, photo)
}

/// Creates an upload of `photo` and puts all its bytes in the server's store without
/// finishing it: the state a crash between the last byte and the commit leaves (as a
/// busy image check does). Returns the upload's URL.
async fn held_unfinished(f: &Field, photo: &[u8]) -> String {
    let url = f.create_upload(photo).await;
    let id = url.rsplit('/').next().unwrap();
    let path = f.w.settings.data_dir.join("files").join("uploads").join(id);
    std::fs::write(path, photo).unwrap();
    url
}

/// The server serves `bytes` under their hash, and the record is accepted.
async fn assert_complete(f: &Field, visit: &SignedRecord, photo: &[u8]) {
    let (status, stored) =
        f.w.get_bytes(&f.token, &format!("/blobs/{}", sha256_hex(photo)))
            .await;
    assert_eq!((status, stored == photo), (StatusCode::OK, true), "stored");
    let ack = f.push(std::slice::from_ref(visit)).await;
    assert_eq!(
        (ack.acks[0].status, ack.acks[0].missing_blobs.len()),
        (AckStatus::Accepted, 0),
        "the waiting record was completed"
    );
}

/// `HEAD` of an upload holding every byte finishes it before reporting it done.
async fn head_finishes_a_held_upload(t: &TestDb) {
    let (f, visit, photo) = awaiting_photo(t, 31).await;
    let url = held_unfinished(&f, &photo).await;
    let resp =
        f.w.http
            .head(&url)
            .bearer_auth(&f.token)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["upload-offset"].to_str().unwrap(),
        photo.len().to_string()
    );
    assert!(
        resp.headers().get("upload-expires").is_none(),
        "a finished upload does not expire"
    );
    assert_complete(&f, &visit, &photo).await;
    assert_eq!(
        tus_offset(&f.w.http, &url, &f.token).await,
        photo.len() as u64,
        "asked again, still done"
    );
}
db_test!(
    an_upload_holding_every_byte_is_finished_by_head,
    head_finishes_a_held_upload
);

/// A photo download cut on a weak link resumes: `Range: bytes=N-` gets the rest (206),
/// a start past the end is 416 with the file's length, and any other range form gets the
/// whole file.
async fn downloads_resume(t: &TestDb) {
    let (f, _visit, photo) = awaiting_photo(t, 35).await;
    assert_eq!(
        upload(&f.w.http, &f.origin, &f.token, &photo).await,
        StatusCode::NO_CONTENT
    );
    let url = f.w.server.url(&format!("/blobs/{}", sha256_hex(&photo)));
    let get = |range: Option<String>| {
        let mut req = f.w.http.get(&url).bearer_auth(&f.token);
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        req.send()
    };
    let whole = get(None).await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.bytes().await.unwrap(), photo.as_slice());

    let len = photo.len();
    let rest = get(Some("bytes=1000-".into())).await.unwrap();
    assert_eq!(rest.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        rest.headers()["content-range"].to_str().unwrap(),
        format!("bytes 1000-{}/{len}", len - 1)
    );
    assert_eq!(rest.bytes().await.unwrap(), &photo[1000..]);

    let past = get(Some(format!("bytes={len}-"))).await.unwrap();
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        past.headers()["content-range"].to_str().unwrap(),
        format!("bytes */{len}")
    );
    let body: Value = past.json().await.unwrap();
    assert_eq!(body["error"], "range_not_satisfiable", "{body}");

    let other_form = get(Some("bytes=0-99".into())).await.unwrap();
    assert_eq!(other_form.status(), StatusCode::OK);
    assert_eq!(other_form.bytes().await.unwrap(), photo.as_slice());
}
db_test!(a_cut_photo_download_resumes_with_a_range, downloads_resume);

/// A device uploads every byte of a photo, the server dies before storing it, and the
/// device never asks about it again (lost, say). The restarted server's first upload
/// sweep stores it, and the record waiting for it is completed.
async fn a_restart_finishes_held_uploads(t: &TestDb) {
    let (f, visit, photo) = awaiting_photo(t, 33).await;
    held_unfinished(&f, &photo).await;
    f.w.server_stop().await;
    let server =
        bangfu_server::testing::TestServer::start(t.server_pool().await, f.w.settings.clone());
    let origin = format!("http://{}", server.addr);
    // Any creation after the start runs the sweep (another device's photo, say).
    let other = jpeg(20, 34);
    let (status, _) = bangfu_tests::field::tus_create(
        &f.w.http,
        &origin,
        &f.token,
        other.len(),
        &sha256_hex(&other),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let blob = server.url(&format!("/blobs/{}", sha256_hex(&photo)));
    let mut stored = None;
    for _ in 0..100 {
        let resp =
            f.w.http
                .get(&blob)
                .bearer_auth(&f.token)
                .send()
                .await
                .unwrap();
        if resp.status() == StatusCode::OK {
            stored = Some(resp.bytes().await.unwrap().to_vec());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        stored.as_deref(),
        Some(photo.as_slice()),
        "the held upload was stored"
    );
    let ack: bangfu_shared::sync::PushResponse =
        f.w.http
            .post(server.url("/sync/push"))
            .bearer_auth(&f.token)
            .json(&json!({ "records": [visit] }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        (ack.acks[0].status, ack.acks[0].missing_blobs.len()),
        (AckStatus::Accepted, 0),
        "the waiting record was completed"
    );
}
db_test!(
    a_restarted_server_stores_an_upload_that_held_every_byte,
    a_restart_finishes_held_uploads
);

/// tus-js-client, the tus project's own client, uploading a file the server holds every
/// byte of but never finished: its creation finds the upload, the server finishes it,
/// and the client is done with the file stored and the record accepted.
async fn stock_client_finishes_a_held_upload(t: &TestDb) {
    let (f, visit, photo) = awaiting_photo(t, 32).await;
    held_unfinished(&f, &photo).await;
    let file = t.dir().join("photo.jpg");
    std::fs::write(&file, &photo).unwrap();
    let done = tus_js_upload(json!({
        "endpoint": format!("{}/api/v1/files", f.origin),
        "token": f.token,
        "file": file,
        "sha256": sha256_hex(&photo),
        "withCreation": true,
    }))
    .await;
    assert_eq!(done["ok"], json!(true), "{done}");
    assert_complete(&f, &visit, &photo).await;
}
db_test!(
    a_stock_client_finds_a_held_upload_finished,
    stock_client_finishes_a_held_upload
);

/// A chunked PATCH whose connection breaks right after its last data byte (before the
/// body's terminator) delivered the whole file: it is stored without any further
/// request (here the test only reads the file, which finishes nothing).
async fn body_cut_after_its_last_byte(t: &TestDb) {
    use tokio::io::AsyncWriteExt;
    let (f, visit, photo) = awaiting_photo(t, 33).await;
    let path = f
        .create_upload(&photo)
        .await
        .trim_start_matches(&f.origin)
        .to_string();
    let mut conn = tokio::net::TcpStream::connect(f.w.server.addr)
        .await
        .unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n\
         Upload-Offset: 0\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        f.w.server.addr,
        f.token,
        photo.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&photo).await.unwrap();
    conn.write_all(b"\r\n").await.unwrap();
    conn.flush().await.unwrap();
    drop(conn);
    let blob = format!("/blobs/{}", sha256_hex(&photo));
    let mut stored = false;
    for _ in 0..100 {
        if f.w.get_bytes(&f.token, &blob).await.0 == StatusCode::OK {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stored, "the file that arrived whole was stored");
    assert_complete(&f, &visit, &photo).await;
}
db_test!(
    a_body_cut_after_its_last_byte_is_stored,
    body_cut_after_its_last_byte
);

// ---- 4. Malformed checksum headers ----

async fn patch_with(f: &Field, url: &str, checksum: &[u8], body: &[u8]) -> (StatusCode, Value) {
    let resp =
        f.w.http
            .patch(url)
            .bearer_auth(&f.token)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", "0")
            .header("Content-Type", "application/offset+octet-stream")
            .header(
                "Upload-Checksum",
                reqwest::header::HeaderValue::from_bytes(checksum).unwrap(),
            )
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A checksum header that cannot be a checksum is a 400 naming the header (a client
/// must fix it; 460 would have it resend the chunk forever), and the chunk is not
/// taken; a well-formed digest that does not match stays a 460.
async fn malformed_checksums_are_refused(t: &TestDb) {
    let f = Field::new(t).await;
    let photo = jpeg(20, 41);
    let url = f.create_upload(&photo).await;
    let malformed: [(&str, Vec<u8>); 5] = [
        ("not ASCII", "sha256 摘要".as_bytes().to_vec()),
        ("no digest", b"sha256 ".to_vec()),
        (
            "a sha1-sized digest for sha256",
            format!("sha256 {}", b64(&[7; 20])).into_bytes(),
        ),
        ("not base64", b"sha1 ***".to_vec()),
        (
            "an algorithm not offered",
            format!("md5 {}", b64(&[7; 16])).into_bytes(),
        ),
    ];
    for (what, header) in malformed {
        let (status, body) = patch_with(&f, &url, &header, &photo).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_eq!(body["error"], "bad_request", "{what}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("Upload-Checksum"),
            "{what}: the message names the header: {body}"
        );
        assert_eq!(
            tus_offset(&f.w.http, &url, &f.token).await,
            0,
            "{what}: not taken"
        );
    }
    let wrong = format!("sha256 {}", b64(&[7; 32]));
    let (status, body) = patch_with(&f, &url, wrong.as_bytes(), &photo).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (460, Some("checksum_mismatch")),
        "a well-formed digest that does not match: {body}"
    );
    assert_eq!(tus_offset(&f.w.http, &url, &f.token).await, 0);
    let right = format!("sha256 {}", b64(&hex::decode(sha256_hex(&photo)).unwrap()));
    let (status, _) = patch_with(&f, &url, right.as_bytes(), &photo).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "the right digest is taken");
}
db_test!(
    malformed_upload_checksums_are_bad_requests,
    malformed_checksums_are_refused
);

// ---- 5. Ledger writes beside a long import: no deadlock ----

/// Ends a write that holds rows as a ledger import (the county's row) or a household
/// exit (the household's row) does: draws the change number last, as they do, and
/// commits. On PostgreSQL a write that took the counter first and now waits for the
/// held rows would make this a deadlock, and one of the two would fail.
async fn draw_last_and_commit(
    (gate, txn): (bangfu_server::db::WriteGuard, bangfu_server::db::WriteTxn),
) {
    let backend = txn.get_database_backend();
    tokio::time::timeout(
        Duration::from_secs(10),
        txn.execute_raw(bangfu_server::services::push_reads::counter_lock(backend)),
    )
    .await
    .expect("the change counter is free: nobody holding it waits for the held rows")
    .expect("no deadlock");
    txn.commit().await.unwrap();
    drop(gate);
}

/// A county office sets a policy while an import holds the county's row: the policy
/// waits for the import (its insert needs the county), and only then draws its change
/// number, so the import can draw its own and finish. Both land.
async fn policy_beside_import(t: &TestDb) {
    use bangfu_server::entities::jurisdiction;
    use sea_orm::{EntityTrait, QuerySelect};
    let f = Field::new(t).await;
    let county_id = f.w.county_id;
    let held = bangfu_server::db::begin_write(&t.db).await.unwrap();
    jurisdiction::Entity::find_by_id(county_id)
        .lock_exclusive()
        .one(&held.1)
        .await
        .unwrap();
    let (http, url, county) = (
        f.w.http.clone(),
        f.w.server.url("/policies"),
        f.county.clone(),
    );
    // Today: a version may not be dated into a quarter that has ended.
    let valid_from = bangfu_tests::china_today();
    let create = tokio::spawn(async move {
        let resp = http
            .post(url)
            .bearer_auth(county)
            .json(&json!({ "valid_from": valid_from, "preset": "xigang-2019" }))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    });
    settle().await;
    draw_last_and_commit(held).await;
    let (status, body) = create.await.unwrap();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the policy landed after: {body}"
    );
}
db_test!(
    a_policy_set_beside_an_import_does_not_deadlock,
    policy_beside_import
);

/// A family change accepted while a household exit holds the household's row: the
/// decision waits for the row before it draws its change number. Both land.
async fn decision_beside_exit(t: &TestDb) {
    use bangfu_server::entities::household;
    use sea_orm::{EntityTrait, QuerySelect};
    let mut f = Field::new(t).await;
    let mut v = VisitBody::new(bangfu_shared::VisitKind::Phone, chrono::Utc::now());
    v.family_changes.push(FamilyChange {
        kind: FamilyChangeKind::Birth,
        name: "田小宝".into(),
    });
    let rec = f
        .device
        .sign(f.household, RecordType::Visit, Some(v), None, None);
    f.push(&[rec]).await;
    let (_, queue) = f.w.get(Some(&f.county), "/review/family-changes").await;
    let id = queue[0]["id"].as_i64().unwrap();

    let held = bangfu_server::db::begin_write(&t.db).await.unwrap();
    household::Entity::find_by_id(f.household)
        .lock_exclusive()
        .one(&held.1)
        .await
        .unwrap();
    let decision = decide(&f, id, true).await;
    settle().await;
    draw_last_and_commit(held).await;
    let (status, body) = decision.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(members(&f).await, ["田晓东", "田小宝"]);
}
db_test!(
    a_family_change_accepted_beside_a_household_exit_does_not_deadlock,
    decision_beside_exit
);
