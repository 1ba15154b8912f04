//! Sync end to end: every record and photo reaches the server exactly once, verified,
//! over cut connections, duplicates, reordering and concurrency.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::db_test;
use bangfu_shared::sync::{AckStatus, PushResponse};
use bangfu_shared::visit::{RecordType, SignedRecord, VisitBody, sha256_hex};
use bangfu_shared::{Role, VisitKind};
use bangfu_tests::field::{
    Device, cutting_proxy, jpeg, png, tus_answer, tus_create, tus_create_with, tus_offset,
    tus_patch, tus_resume, upload,
};
use bangfu_tests::scenario::Field;
use bangfu_tests::{TestDb, World, enroll_directly, office, send_json};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, TransactionTrait};
use serde_json::json;

/// The fixture ledger plus one other town; 黄志强 (first helper of 田晓东) with a device.
async fn field(t: &TestDb) -> Field {
    field_with(t, |_| {}).await
}

/// As [`field`], on a server with adjusted settings.
async fn field_with(t: &TestDb, adjust: impl FnOnce(&mut bangfu_server::Settings)) -> Field {
    Field::two_towns(t, adjust).await
}

async fn record_count(t: &TestDb) -> u64 {
    bangfu_server::entities::record::Entity::find()
        .count(&t.db)
        .await
        .unwrap()
}

async fn exactly_once(t: &TestDb) {
    let mut f = field(t).await;
    let (photo, sig) = (jpeg(60, 1), png(1));
    let visit = f.device.home_visit(f.household, &photo, &sig);
    let call = f.device.phone_call(f.household);
    let void = f.device.sign(
        f.household,
        RecordType::Void,
        None,
        Some(call.record.id),
        Some("误录"),
    );
    let batch = vec![visit.clone(), call.clone(), void.clone()];

    let first = f.push(&batch).await;
    let statuses: Vec<&str> = first
        .acks
        .iter()
        .map(|a| {
            serde_json::to_value(a.status)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
                .leak() as &str
        })
        .collect();
    assert_eq!(statuses, ["awaiting_photos", "accepted", "accepted"]);
    let mut missing = first.acks[0].missing_blobs.clone();
    missing.sort();
    let mut want = vec![sha256_hex(&photo), sha256_hex(&sig)];
    want.sort();
    assert_eq!(missing, want);

    // The same batch again: same answers, nothing stored twice.
    let again = f.push(&batch).await;
    assert_eq!(again.acks, first.acks);
    assert_eq!(record_count(t).await, 3);

    // Photos arrive; the visit completes.
    assert_eq!(
        upload(&f.w.http, &f.origin, &f.token, &photo).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        upload(&f.w.http, &f.origin, &f.token, &sig).await,
        StatusCode::NO_CONTENT
    );
    let after = f.push(&batch[..1]).await;
    assert_eq!(
        serde_json::to_value(after.acks[0].status).unwrap(),
        "accepted"
    );
    let (status, bytes) =
        f.w.get_bytes(&f.token, &format!("/blobs/{}", sha256_hex(&photo)))
            .await;
    assert_eq!(
        (status, bytes),
        (StatusCode::OK, photo.clone()),
        "the photo is byte-identical"
    );

    // Out of order: records 6, 5, 4 of the chain arrive before nothing is missing.
    let later: Vec<SignedRecord> = (0..3).map(|_| f.device.phone_call(f.household)).collect();
    let reversed: Vec<SignedRecord> = later.iter().rev().cloned().collect();
    let acks = f.push(&reversed[..2]).await;
    assert!(acks.acks.iter().all(|a| a.flags.is_empty()), "{acks:?}");
    f.push(&reversed[2..]).await;
    assert_eq!(record_count(t).await, 6);
    let county = f.w.login("county").await;
    let (_, anomalies) = f.w.get(Some(&county), "/sync/anomalies").await;
    assert_eq!(
        anomalies.as_array().unwrap().len(),
        0,
        "no gaps once all arrived: {anomalies}"
    );

    // The pull feed returns each record once, with its final state, then nothing.
    let (_, pull) = f.w.get(Some(&f.token), "/sync/pull?cursor=0").await;
    assert_eq!(pull["records"].as_array().unwrap().len(), 6);
    assert!(
        pull["households"].as_array().is_some_and(|h| h.len() == 1),
        "first pull carries the ledger"
    );
    let cursor = pull["cursor"].as_i64().unwrap();
    let (_, next) =
        f.w.get(Some(&f.token), &format!("/sync/pull?cursor={cursor}"))
            .await;
    assert_eq!(next["records"].as_array().unwrap().len(), 0);
    assert!(next.get("households").is_none());
}
db_test!(records_are_stored_exactly_once_in_any_order, exactly_once);

/// The office's gap list is per device: each run of missing numbers once, on the device
/// it belongs to, however the devices' numbers interleave, and a town that is not the
/// helper's sees none of them.
async fn gaps_per_device(t: &TestDb) {
    let mut f = field(t).await;
    let mut spare = Device::register(&f.w, &f.token, f.device.helper_id).await;
    // The main device holds 3, 4 and 7; the spare holds 1, 2 and 5.
    f.device.seq = 2;
    let mut records = vec![f.device.phone_call(f.household)];
    records.push(f.device.phone_call(f.household));
    f.device.seq = 6;
    records.push(f.device.phone_call(f.household));
    for _ in 0..2 {
        records.push(spare.phone_call(f.household));
    }
    spare.seq = 4;
    records.push(spare.phone_call(f.household));
    f.push(&records).await;

    let gaps = |list: &serde_json::Value| -> Vec<(i64, i64, i64)> {
        let mut v: Vec<(i64, i64, i64)> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == "gap")
            .map(|a| {
                let n = |k: &str| a[k].as_i64().unwrap();
                (n("device_id"), n("seq"), n("seq_to"))
            })
            .collect();
        v.sort();
        v
    };
    let (main, other) = (f.device.device_id, spare.device_id);
    let mut want = vec![(main, 1, 2), (main, 5, 6), (other, 3, 4)];
    want.sort();
    let (_, all) = f.w.get(Some(&f.county), "/sync/anomalies").await;
    assert_eq!(gaps(&all), want, "{all}");

    let (_, mine) = f.w.get(Some(&f.token), "/households").await;
    let town = mine["items"][0]["town"]["id"].as_i64().unwrap();
    let (_, own) =
        f.w.get(Some(&f.county), &format!("/sync/anomalies?town={town}"))
            .await;
    assert_eq!(gaps(&own), want, "{own}");
    let (_, all_households) = f.w.get(Some(&f.county), "/households?per_page=100").await;
    let other_town = all_households["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == f.other_town().household)
        .unwrap()["town"]["id"]
        .as_i64()
        .unwrap();
    let (status, theirs) =
        f.w.get(
            Some(&f.county),
            &format!("/sync/anomalies?town={other_town}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    assert_eq!(theirs, json!([]), "another town sees none of these gaps");
}
db_test!(gaps_are_found_per_device_and_per_town, gaps_per_device);

/// A ledger import run beside the server holds SQLite's write lock (here another
/// connection's open transaction). A push meanwhile waits for the lock instead of
/// failing, and the server's one HTTP worker goes on answering reads while it waits:
/// the import commits only after a read was answered, so a worker stalled by the wait
/// would answer neither (the push would fail after the busy timeout). Then the push is
/// stored, once, beside the import's change. PostgreSQL locks rows, not the database.
async fn beside_an_import(t: &TestDb) {
    if t.backend != bangfu_server::testing::Backend::Sqlite {
        return;
    }
    let mut f = field_with(t, |s| s.workers = 1).await;
    let call = f.device.phone_call(f.household);
    let other = bangfu_server::db::connect(&t.url).await.unwrap();
    let import = other.begin().await.unwrap();
    import
        .execute_unprepared("CREATE TABLE beside_import (x INTEGER)")
        .await
        .unwrap();
    let (acks, ()) = tokio::join!(f.push(std::slice::from_ref(&call)), async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (status, households) = f.w.get(Some(&f.token), "/households").await;
        assert_eq!(status, StatusCode::OK, "{households}");
        import.commit().await.unwrap();
    });
    assert_eq!(acks.acks[0].status, AckStatus::Accepted, "{acks:?}");
    assert_eq!(record_count(t).await, 1);
    let again = f.push(std::slice::from_ref(&call)).await;
    assert_eq!(
        again.acks, acks.acks,
        "the same acknowledgement, nothing twice"
    );
    assert_eq!(record_count(t).await, 1);
    // The import's change is kept too.
    other
        .execute_unprepared("SELECT x FROM beside_import")
        .await
        .unwrap();
    other.close().await.ok();
}
db_test!(
    a_push_waits_out_an_import_beside_the_server,
    beside_an_import
);

async fn refused(t: &TestDb) {
    let mut f = field(t).await;
    // Altered after signing: the notes change, the signature no longer matches.
    let mut altered = f.device.phone_call(f.household);
    if let Some(v) = altered.record.visit.as_mut() {
        v.notes = Some("改过的内容".into());
    }
    // A household of another town.
    let foreign = f.device.phone_call(f.other_town().household);
    // A record signed by a key that is not registered.
    let mut stranger = Device {
        device_id: 999_999,
        ..Device::register(&f.w, &f.token, f.device.helper_id).await
    };
    let unregistered = stranger.phone_call(f.household);
    let resp = f
        .push(&[altered.clone(), foreign.clone(), unregistered])
        .await;
    let reasons: Vec<String> = resp
        .acks
        .iter()
        .map(|a| a.reason.clone().unwrap_or_default())
        .collect();
    assert!(
        resp.acks
            .iter()
            .all(|a| serde_json::to_value(a.status).unwrap() == "rejected"),
        "{resp:?}"
    );
    assert!(reasons[0].contains("signature"), "{reasons:?}");
    assert!(reasons[1].contains("never been paired"), "{reasons:?}");
    assert!(reasons[2].contains("not registered"), "{reasons:?}");
    assert_eq!(record_count(t).await, 0);

    // A different record under an existing id is a conflict and never overwrites.
    let good = f.device.phone_call(f.household);
    f.push(std::slice::from_ref(&good)).await;
    let mut impostor = f.device.phone_call(f.household);
    impostor.record.id = good.record.id;
    let resp = f.push(&[impostor]).await;
    assert!(
        resp.acks[0].status == bangfu_shared::sync::AckStatus::Rejected
            || resp.acks[0].status == bangfu_shared::sync::AckStatus::Conflict
    );
    let resigned = Device::resign(&mut f.device, good.clone());
    let resp = f.push(&[resigned]).await;
    assert_eq!(
        resp.acks[0].status,
        bangfu_shared::sync::AckStatus::Conflict,
        "{resp:?}"
    );
    assert_eq!(record_count(t).await, 1);

    // The pull feed shows the helper only their stored record.
    let (_, pull) = f.w.get(Some(&f.token), "/sync/pull").await;
    assert_eq!(
        pull["records"][0]["signed"]["record"]["id"],
        good.record.id.to_string()
    );

    // One altered record among good ones (their signatures are checked as a batch):
    // only it is refused.
    let first = f.device.phone_call(f.household);
    let mut forged = f.device.phone_call(f.household);
    forged.record.household_id = f.other_town().household;
    let last = f.device.phone_call(f.household);
    let resp = f.push(&[first, forged.clone(), last]).await;
    let statuses: Vec<_> = resp.acks.iter().map(|a| a.status).collect();
    use bangfu_shared::sync::AckStatus::{Accepted, Rejected};
    assert_eq!(statuses, [Accepted, Rejected, Accepted], "{resp:?}");
    assert!(
        resp.acks[1]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("signature"),
        "{resp:?}"
    );
    assert_eq!(record_count(t).await, 3);

    // The office reads each refused number of the helper's own device as refused, with
    // the reason, and its gap says so; a record naming a device not the account's
    // leaves nothing on that device (QA s25a F4).
    let county = f.w.login("county").await;
    let (_, anomalies) = f.w.get(Some(&county), "/sync/anomalies").await;
    let list = anomalies.as_array().unwrap();
    let device = altered.record.device_id;
    for (r, code) in [
        (&altered, "signature_mismatch"),
        (&foreign, "household_never_paired"),
        (&forged, "signature_mismatch"),
    ] {
        let seq = r.record.seq;
        let refused: Vec<&serde_json::Value> = list
            .iter()
            .filter(|a| a["kind"] == "refused" && a["seq"] == seq)
            .collect();
        assert_eq!(refused.len(), 1, "{anomalies}");
        assert_eq!(refused[0]["device_id"], device, "{anomalies}");
        let detail = refused[0]["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("record {seq} of this device was refused ({code})")),
            "{detail}"
        );
        let gap = list
            .iter()
            .find(|a| {
                a["kind"] == "gap"
                    && a["seq"].as_i64().unwrap() <= seq
                    && a["seq_to"].as_i64().unwrap() >= seq
            })
            .unwrap_or_else(|| panic!("no gap at {seq}: {anomalies}"));
        assert!(
            gap["detail"]
                .as_str()
                .unwrap()
                .contains("the server refused"),
            "{gap}"
        );
    }
    assert!(
        list.iter().all(|a| a["device_id"] != 999_999),
        "{anomalies}"
    );
    // The list to print says the same in Chinese, naming the helper (a printout cannot
    // look up an id), with no English; a format it does not know is refused.
    let resp =
        f.w.http
            .get(f.w.server.url("/sync/anomalies?format=csv"))
            .bearer_auth(&county)
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let csv = resp.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "\u{feff}乡镇,帮扶责任人,联系电话,设备,类型,记录序号,贫困户,说明,发现时间(北京时间)"
    );
    assert_eq!(lines.len(), list.len() + 1, "{csv}");
    let altered_line = lines
        .iter()
        .find(|l| l.contains(&format!(",记录被拒收,{},", altered.record.seq)))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(
        // With the town, by which a county office hands the lines out (QA s29c K15).
        altered_line.starts_with(&format!(
            "东城镇,黄志强,{},",
            bangfu_tests::scenario::HELPER
        )) && altered_line.contains("签名不符"),
        "{altered_line}"
    );
    assert!(
        csv.contains("条被服务器拒收（见“记录被拒收”）"),
        "the gaps say some of theirs were refused: {csv}"
    );
    assert!(!csv.contains("device") && !csv.contains("refused"), "{csv}");
    let (status, body) = f.w.get(Some(&county), "/sync/anomalies?format=xlsx").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
db_test!(forged_foreign_and_conflicting_records_are_refused, refused);

async fn photo_checks(t: &TestDb) {
    let f = field(t).await;
    let (http, origin, token) = (&f.w.http, f.origin.as_str(), f.token.as_str());
    let photo = jpeg(40, 2);
    // Bytes that do not match the declared hash.
    let (status, url) = tus_create(http, origin, token, photo.len(), &"ab".repeat(32)).await;
    assert_eq!(status, StatusCode::CREATED);
    let resp = tus_patch(http, &url.unwrap(), token, 0, photo.clone())
        .await
        .unwrap();
    refused_as_invalid(resp, "not the declared").await;
    // Not an image, though the hash is right.
    let text = b"this is not a photo".to_vec();
    let (_, url) = tus_create(http, origin, token, text.len(), &sha256_hex(&text)).await;
    let resp = tus_patch(http, &url.unwrap(), token, 0, text)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Truncated JPEG: header fine, data cut.
    let cut = photo[..photo.len() / 2].to_vec();
    let (_, url) = tus_create(http, origin, token, cut.len(), &sha256_hex(&cut)).await;
    assert_eq!(
        tus_patch(http, &url.unwrap(), token, 0, cut)
            .await
            .unwrap()
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // A PNG of a few bytes that declares 15000 × 15000 pixels (225 MB decoded): refused
    // from its header, before any pixel memory is taken.
    let bomb = png_declaring(15_000, 15_000);
    let (_, url) = tus_create(http, origin, token, bomb.len(), &sha256_hex(&bomb)).await;
    let resp = tus_patch(http, &url.unwrap(), token, 0, bomb)
        .await
        .unwrap();
    refused_as_invalid(resp, "too large to check").await;
    // A JPEG whose frame header declares 8000 × 8000 pixels (64 megapixels, over the
    // documented 48): refused by the structural walk, which decodes no pixel.
    let big = jpeg_declaring(8_000, 8_000);
    let (_, url) = tus_create(http, origin, token, big.len(), &sha256_hex(&big)).await;
    let resp = tus_patch(http, &url.unwrap(), token, 0, big).await.unwrap();
    refused_as_invalid(resp, "8000×8000 pixels").await;
    assert_eq!(
        bangfu_server::entities::blob::Entity::find()
            .count(&t.db)
            .await
            .unwrap(),
        0,
        "nothing refused is kept"
    );
    // Too large for the limit; no tus version; a chunk whose checksum is wrong.
    let (status, _) = tus_create(http, origin, token, 21 * 1024 * 1024, &"cd".repeat(32)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let resp = http
        .post(format!("{origin}/api/v1/files"))
        .bearer_auth(token)
        .header("Upload-Length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PRECONDITION_FAILED);
    let (_, url) = tus_create(http, origin, token, photo.len(), &sha256_hex(&photo)).await;
    let url = url.unwrap();
    let resp = http
        .patch(&url)
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Upload-Checksum", "sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .header("Content-Type", "application/offset+octet-stream")
        .body(photo[..1000].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 460);
    assert_eq!(
        tus_offset(http, &url, token).await,
        0,
        "the bad chunk was dropped"
    );
    // Wrong offset is a conflict; the right one completes.
    assert_eq!(
        tus_patch(http, &url, token, 5, photo[5..].to_vec())
            .await
            .unwrap()
            .status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        tus_patch(http, &url, token, 0, photo.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    // Nothing sent at the end once complete (a retry of a lost answer): done, as tusd
    // answers it (QA s31a S1). Bytes sent again once complete: a conflict that says
    // so, not an offset puzzle.
    let len = photo.len() as u64;
    let resp = tus_patch(http, &url, token, len, Vec::new()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(resp.headers()["upload-offset"], len.to_string().as_str());
    // Its checksum is held to the empty chunk, as on an unfinished upload (QA s31c T9).
    let resp = http
        .patch(&url)
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", len.to_string())
        .header("Upload-Checksum", "sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .header("Content-Type", "application/offset+octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 460);
    let resp = tus_patch(http, &url, token, 0, photo.clone())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let body: serde_json::Value = resp.json().await.unwrap();
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("upload is complete"), "{body}");
    let resp = http
        .request(reqwest::Method::OPTIONS, format!("{origin}/api/v1/files"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["tus-version"], "1.0.0");
    assert!(
        resp.headers()["tus-extension"]
            .to_str()
            .unwrap()
            .contains("checksum")
    );
}
db_test!(
    photos_are_refused_unless_their_bytes_match_and_decode,
    photo_checks
);

/// Asserts a 422 whose message gives `reason`.
async fn refused_as_invalid(resp: reqwest::Response, reason: &str) {
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = resp.json().await.unwrap();
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(reason), "{body}");
}

/// A real small JPEG whose frame header is rewritten to declare `width` × `height`: well
/// formed marker by marker, so only a dimension check refuses it.
fn jpeg_declaring(width: u16, height: u16) -> Vec<u8> {
    let mut out = jpeg(2, 21);
    let sof = out.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    out[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    out[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    out
}

/// A well-formed PNG header of a `width` × `height` greyscale image, with one short
/// compressed row of data: what a decompression bomb looks like to a decoder's first
/// look.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut png = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n'];
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale, no interlace
    chunk(&mut png, b"IHDR", &ihdr);
    // zlib: a header, then a stored block of 16 zero bytes (the start of the first row).
    let mut idat = vec![0x78, 0x01, 0x00, 16, 0, !16, 0xFF];
    idat.extend_from_slice(&[0u8; 16]);
    chunk(&mut png, b"IDAT", &idat);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// Push bodies are checked like any JSON body, whichever thread parses them (large ones
/// are parsed off the HTTP workers): a full batch of 500 records with long notes (over
/// the 1 MiB of other bodies) is accepted whole; malformed JSON, a wrong type (named by
/// its place), a missing content type and a body over the push limit get clear errors.
async fn push_bodies(t: &TestDb) {
    let mut f = field(t).await;
    let long_notes = "走访中了解到家中老人腿脚不便，".repeat(50);
    let records: Vec<SignedRecord> = (0..500)
        .map(|_| {
            let mut v = VisitBody::new(VisitKind::Phone, chrono::Utc::now());
            v.notes = Some(long_notes.clone());
            f.device
                .sign(f.household, RecordType::Visit, Some(v), None, None)
        })
        .collect();
    let body = serde_json::to_vec(&json!({ "records": records })).unwrap();
    assert!(
        body.len() > 1024 * 1024,
        "larger than other bodies may be: {}",
        body.len()
    );
    let send = |body: Vec<u8>, content_type: Option<&'static str>| {
        let mut req =
            f.w.http
                .post(f.w.server.url("/sync/push"))
                .bearer_auth(&f.token)
                .body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    let resp = send(body.clone(), Some("application/json")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let acks: PushResponse = resp.json().await.unwrap();
    assert_eq!(acks.acks.len(), 500);
    assert!(acks.acks.iter().all(|a| a.status == AckStatus::Accepted));
    assert_eq!(record_count(t).await, 500);

    let mut broken = body.clone();
    broken.truncate(body.len() - 10);
    let wrong_type = {
        let text = String::from_utf8(body.clone()).unwrap();
        text.replacen("\"seq\":", "\"seq\":\"one\",\"x\":", 1)
            .into_bytes()
    };
    // A record whose id itself does not parse cannot be answered alone.
    let no_id = {
        let text = String::from_utf8(body.clone()).unwrap();
        text.replacen("\"id\":\"", "\"id\":5,\"y\":\"", 1)
            .into_bytes()
    };
    for (bytes, ct, status, code) in [
        (
            broken,
            Some("application/json"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            no_id.clone(),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            body.clone(),
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            vec![b' '; bangfu_server::http::handlers::MAX_PUSH_BYTES + 1],
            Some("application/json"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ] {
        let resp = send(bytes, ct).await.unwrap();
        assert_eq!(resp.status(), status);
        let answer: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(answer["error"], code, "{answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let resp = send(no_id, Some("application/json")).await.unwrap();
    let answer: serde_json::Value = resp.json().await.unwrap();
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("invalid JSON body at `records[0].record.id`: invalid type: integer"),
        "the wrong type is named by its place: {answer}"
    );
    // A record of the wrong type that names its id is refused alone, saying where; the
    // batch's other records are answered as ever (QA s25a F3).
    let resp = send(wrong_type, Some("application/json")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let acks: PushResponse = resp.json().await.unwrap();
    assert_eq!(acks.acks.len(), 500);
    assert_eq!(acks.acks[0].id, records[0].record.id);
    assert_eq!(acks.acks[0].status, AckStatus::Rejected);
    assert_eq!(acks.acks[0].reason_code.as_deref(), Some("invalid_record"));
    let reason = acks.acks[0].reason.as_deref().unwrap_or_default();
    // Its place as the whole body's refusals name it, in JSON's words, with no line
    // and column of a text the client never sent (QA s31a S7).
    assert_eq!(
        reason,
        "the record does not parse at `records[0].record.seq`: invalid type: string \"one\", \
         expected a whole number",
        "{reason}"
    );
    assert!(
        acks.acks[1..]
            .iter()
            .all(|a| a.status == AckStatus::Accepted)
    );
    assert_eq!(record_count(t).await, 500, "nothing more was stored");
}

/// QA s25a F3: a record another client built wrongly (an enum value this server does not
/// know) is refused on its own, in its place, and the records around it are stored.
async fn unparsed_alone(t: &TestDb) {
    let mut f = field(t).await;
    let household = f.household;
    let [first, odd, last] = std::array::from_fn(|_| f.device.phone_call(household));
    let mut odd = serde_json::to_value(&odd).unwrap();
    // A value of 100,000 characters: quoted in the reason only in part (QA s25d F3).
    odd["record"]["visit"]["kind"] = json!(format!("teleport{}", "x".repeat(100_000)));
    let body = json!({ "records": [first, odd, last] });
    let (status, answer) = f.w.post_json(Some(&f.token), "/sync/push", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let acks = answer["acks"].as_array().unwrap();
    assert_eq!(acks.len(), 3, "{answer}");
    assert_eq!(acks[0]["status"], "accepted", "{answer}");
    assert_eq!(acks[1]["status"], "rejected", "{answer}");
    assert_eq!(acks[1]["id"], odd["record"]["id"], "{answer}");
    assert_eq!(acks[1]["reason_code"], "invalid_record", "{answer}");
    let reason = acks[1]["reason"].as_str().unwrap();
    assert!(
        reason.contains("`records[1].record.visit.kind`: unknown variant `teleportxxx")
            && reason.chars().count() < 400,
        "{reason}"
    );
    assert_eq!(acks[2]["status"], "accepted", "{answer}");
    assert_eq!(record_count(t).await, 2);
}
db_test!(
    a_record_that_does_not_parse_is_refused_alone_in_its_batch,
    unparsed_alone
);
db_test!(
    push_bodies_are_checked_whichever_thread_parses_them,
    push_bodies
);

/// A record stored as awaiting a photo while that photo is being recorded: whichever
/// commits first, the record ends complete. The test holds a push's place (the write
/// gate on SQLite, the change counter's row lock on PostgreSQL) while the photo arrives,
/// then stores the waiting record: the upload must wait and then find it.
async fn photo_meets_waiting_record(t: &TestDb) {
    use bangfu_server::entities::{record, record_blob};
    use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, QueryFilter};
    let mut f = field(t).await;
    let photo = jpeg(40, 77);
    let sha = sha256_hex(&photo);
    let signed = f.device.home_visit(f.household, &photo, &png(77));
    let env = signed.record.clone();
    let account = f.w.get(Some(&f.token), "/me").await.1["account_id"]
        .as_i64()
        .unwrap_or_default();

    let (gate, txn) = bangfu_server::db::begin_write(&t.db).await.unwrap();
    let backend = txn.get_database_backend();
    txn.execute_raw(bangfu_server::services::push_reads::counter_lock(backend))
        .await
        .unwrap();
    let (http, origin, token) = (f.w.http.clone(), f.origin.clone(), f.token.clone());
    let (len, sha2) = (photo.len(), sha.clone());
    let upload = tokio::spawn(async move {
        tus_create_with(&http, &origin, &token, len, &sha2, photo)
            .await
            .map(|r| r.status())
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    record::Entity::insert(record::ActiveModel {
        id: Set(env.id.to_string()),
        change_seq: Set(1_000_000),
        device_id: Set(env.device_id),
        device_seq: Set(env.seq),
        prev_sha256: Set(env.prev_sha256.clone()),
        record_sha256: Set("ab".repeat(32)),
        author_helper_id: Set(env.author_helper_id),
        account_id: Set(account),
        household_id: Set(env.household_id),
        record_type: Set("visit".into()),
        target_id: Set(None),
        visit_kind: Set(Some("home".into())),
        visit_at: Set(env.visit.as_ref().map(|v| v.at)),
        created_at_device: Set(env.created_at),
        received_at: Set(env.created_at),
        status: Set("awaiting_photos".into()),
        flags: Set(String::new()),
        body: Set(serde_json::to_string(&signed).unwrap()),
        review: Set(None),
        ..Default::default()
    })
    .exec_without_returning(&txn)
    .await
    .unwrap();
    record_blob::Entity::insert(record_blob::ActiveModel {
        record_id: Set(env.id.to_string()),
        sha256: Set(sha.clone()),
        ..Default::default()
    })
    .exec_without_returning(&txn)
    .await
    .unwrap();
    txn.commit().await.unwrap();
    drop(gate);
    assert_eq!(upload.await.unwrap().unwrap(), StatusCode::CREATED);
    let stored = record::Entity::find()
        .filter(record::Column::Id.eq(env.id.to_string()))
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.status, "accepted",
        "the photo's arrival completed it"
    );
}
db_test!(
    a_photo_arriving_during_a_push_completes_its_record,
    photo_meets_waiting_record
);

async fn resume_after_cut(t: &TestDb) {
    let f = field(t).await;
    let photo = jpeg(300, 3);
    let proxy = cutting_proxy(f.w.server.addr, 120 * 1024).await;
    let via_proxy = format!("http://{proxy}");
    let path = f
        .create_upload(&photo)
        .await
        .trim_start_matches(&f.origin)
        .to_string();
    let fresh = reqwest::Client::new();
    let result = tus_patch(
        &fresh,
        &format!("{via_proxy}{path}"),
        &f.token,
        0,
        photo.clone(),
    )
    .await;
    assert!(
        result.is_err() || !result.unwrap().status().is_success(),
        "the cut PATCH does not succeed"
    );
    let url = format!("{}{path}", f.origin);
    let mut offset = 0;
    for _ in 0..50 {
        offset = tus_offset(&f.w.http, &url, &f.token).await;
        if offset > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        offset > 0 && offset < photo.len() as u64,
        "the server kept the bytes before the cut: {offset}"
    );
    assert_eq!(
        tus_resume(&f.w.http, &url, &f.token, &photo).await,
        StatusCode::NO_CONTENT
    );
    let (status, stored) =
        f.w.get_bytes(&f.token, &format!("/blobs/{}", sha256_hex(&photo)))
            .await;
    assert_eq!(
        (status, stored == photo),
        (StatusCode::OK, true),
        "resumed upload is byte-identical"
    );
}
db_test!(
    an_upload_cut_mid_photo_resumes_from_the_server_offset,
    resume_after_cut
);

/// tus creation-with-upload: a photo sent whole with its creation is stored in one
/// request; a part sent with it resumes by PATCH; a creation cut mid-body is found again
/// by the file's hash and continues from the server's offset; bad bytes keep nothing.
async fn creation_with_upload(t: &TestDb) {
    let mut f = field(t).await;
    let (http, origin, token) = (f.w.http.clone(), f.origin.clone(), f.token.clone());
    let blobs = || async {
        bangfu_server::entities::blob::Entity::find()
            .count(&t.db)
            .await
            .unwrap()
    };
    let resp = http
        .request(reqwest::Method::OPTIONS, format!("{origin}/api/v1/files"))
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["tus-extension"]
            .to_str()
            .unwrap()
            .contains("creation-with-upload")
    );

    // Whole: one request, and the visit naming it is accepted at once.
    let (photo, sig) = (jpeg(80, 11), png(11));
    for file in [&photo, &sig] {
        let resp = tus_create_with(
            &http,
            &origin,
            &token,
            file.len(),
            &sha256_hex(file),
            file.to_vec(),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(tus_answer(&resp, &origin).0, Some(file.len() as u64));
    }
    let visit = f.device.home_visit(f.household, &photo, &sig);
    let acks = f.push(&[visit]).await;
    assert_eq!(
        serde_json::to_value(acks.acks[0].status).unwrap(),
        "accepted",
        "{acks:?}"
    );
    let (status, stored) =
        f.w.get_bytes(&token, &format!("/blobs/{}", sha256_hex(&photo)))
            .await;
    assert_eq!((status, stored == photo), (StatusCode::OK, true));

    // Part of a file with the creation, the rest by PATCH.
    let big = jpeg(120, 12);
    let resp = tus_create_with(
        &http,
        &origin,
        &token,
        big.len(),
        &sha256_hex(&big),
        big[..50_000].to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (offset, url) = tus_answer(&resp, &origin);
    let url = url.unwrap();
    assert_eq!(offset, Some(50_000));
    assert_eq!(tus_offset(&http, &url, &token).await, 50_000);
    let resp = tus_patch(&http, &url, &token, 50_000, big[50_000..].to_vec())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (_, stored) =
        f.w.get_bytes(&token, &format!("/blobs/{}", sha256_hex(&big)))
            .await;
    assert!(stored == big, "byte-identical");

    // Cut mid-body: the server keeps what arrived; creating again finds that upload.
    let cut = jpeg(300, 13);
    let proxy = cutting_proxy(f.w.server.addr, 120 * 1024).await;
    let result = tus_create_with(
        &reqwest::Client::new(),
        &format!("http://{proxy}"),
        &token,
        cut.len(),
        &sha256_hex(&cut),
        cut.clone(),
    )
    .await;
    assert!(
        result.is_err() || !result.unwrap().status().is_success(),
        "the cut creation does not succeed"
    );
    let mut held = 0;
    for _ in 0..50 {
        let (status, url) = tus_create(&http, &origin, &token, cut.len(), &sha256_hex(&cut)).await;
        assert_eq!(status, StatusCode::CREATED);
        held = tus_offset(&http, &url.clone().unwrap(), &token).await;
        if held > 0 {
            assert_eq!(
                tus_resume(&http, &url.unwrap(), &token, &cut).await,
                StatusCode::NO_CONTENT
            );
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(held > 0 && held < cut.len() as u64, "resumed from {held}");
    let (_, stored) =
        f.w.get_bytes(&token, &format!("/blobs/{}", sha256_hex(&cut)))
            .await;
    assert!(stored == cut, "the resumed file is byte-identical");

    // Bytes that are not the declared file, or not an image: refused, nothing kept.
    let before = blobs().await;
    let other = jpeg(30, 14);
    let resp = tus_create_with(
        &http,
        &origin,
        &token,
        other.len(),
        &"ef".repeat(32),
        other.clone(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = b"not a photo at all".to_vec();
    let resp = tus_create_with(
        &http,
        &origin,
        &token,
        text.len(),
        &sha256_hex(&text),
        text.clone(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Sent whole with its creation, a JPEG declaring 30000 × 30000 pixels is refused
    // as it would be in pieces.
    let huge = jpeg_declaring(30_000, 30_000);
    let resp = tus_create_with(
        &http,
        &origin,
        &token,
        huge.len(),
        &sha256_hex(&huge),
        huge.clone(),
    )
    .await
    .unwrap();
    refused_as_invalid(resp, "30000×30000 pixels").await;
    let resp = tus_create_with(
        &http,
        &origin,
        &token,
        10,
        &sha256_hex(&other),
        other.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "a body past Upload-Length"
    );
    assert_eq!(blobs().await, before, "nothing refused is kept");
}
db_test!(
    a_photo_sent_with_its_creation_is_stored_in_one_request,
    creation_with_upload
);

async fn review_queue(t: &TestDb) {
    let mut f = field(t).await;
    let v_at = chrono::Utc::now();
    let mut v = bangfu_shared::visit::VisitBody::new(bangfu_shared::VisitKind::Phone, v_at);
    v.family_changes.push(bangfu_shared::visit::FamilyChange {
        kind: bangfu_shared::visit::FamilyChangeKind::Birth,
        name: "田小宝".into(),
    });
    let rec = f
        .device
        .sign(f.household, RecordType::Visit, Some(v), None, None);
    f.push(&[rec]).await;
    let (_, before) =
        f.w.get(Some(&f.token), &format!("/households/{}", f.household))
            .await;
    assert_eq!(
        before["members"].as_array().unwrap().len(),
        0,
        "nothing from the field changes the ledger by itself"
    );
    let county = f.w.login("county").await;
    let (_, queue) = f.w.get(Some(&county), "/review/family-changes").await;
    assert_eq!(queue.as_array().unwrap().len(), 1);
    // What the office judges by: whose household, which visit, which helper.
    assert_eq!(queue[0]["head_name"], "田晓东", "{queue}");
    assert_eq!(queue[0]["helper_name"], "黄志强", "{queue}");
    let at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(queue[0]["visit_at"].clone()).unwrap();
    assert_eq!(at.timestamp(), v_at.timestamp(), "{queue}");
    let id = queue[0]["id"].as_i64().unwrap();
    let (status, _) =
        f.w.post_json(
            Some(&f.token),
            &format!("/review/family-changes/{id}"),
            &json!({ "accept": true }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "helpers do not review");
    let (status, body) =
        f.w.post_json(
            Some(&county),
            &format!("/review/family-changes/{id}"),
            &json!({ "accept": true, "note": "长".repeat(501) }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("note"), "{body}");
    let (status, decided) =
        f.w.post_json(
            Some(&county),
            &format!("/review/family-changes/{id}"),
            &json!({ "accept": true, "note": "已核实" }),
        )
        .await;
    assert_eq!(
        (status, decided["status"].as_str()),
        (StatusCode::OK, Some("accepted"))
    );
    assert_eq!(decided["head_name"], "田晓东", "{decided}");
    let (_, after) =
        f.w.get(Some(&f.token), &format!("/households/{}", f.household))
            .await;
    // The ledger named no members: the head is one, so the birth makes two (QA s29b J3).
    assert_eq!(after["members"][0]["name"], "田晓东");
    assert_eq!(after["members"][0]["relation"], "户主");
    assert_eq!(after["members"][1]["name"], "田小宝");
    assert_eq!(after["size"], 2, "{after}");
    let (status, _) =
        f.w.post_json(
            Some(&county),
            &format!("/review/family-changes/{id}"),
            &json!({ "accept": false }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "decided once");
    // The accepted change reaches the helper's next pull as a ledger update.
    let (_, pull) = f.w.get(Some(&f.token), "/sync/pull?cursor=0").await;
    assert_eq!(pull["households"][0]["members"][1]["name"], "田小宝");
    // And with its record, the decision and its note (QA s29b J4).
    assert_eq!(
        pull["records"][0]["family_changes"],
        json!([{ "kind": "birth", "name": "田小宝", "status": "accepted", "note": "已核实" }]),
        "{pull}"
    );
    // A rejection reaches the helper too, at the next pull from where they were.
    let cursor = pull["cursor"].as_i64().unwrap();
    use bangfu_shared::visit::FamilyChangeKind::Death;
    let (_, ids) = report_changes(&mut f, &county, &[(Death, "田老汉")]).await;
    let (_, mid) =
        f.w.get(Some(&f.token), &format!("/sync/pull?cursor={cursor}"))
            .await;
    let cursor = mid["cursor"].as_i64().unwrap();
    let (status, _) =
        f.w.post_json(
            Some(&county),
            &format!("/review/family-changes/{}", ids[0]),
            &json!({ "accept": false, "note": "户籍无此人，请核实" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) =
        f.w.get(Some(&f.token), &format!("/sync/pull?cursor={cursor}"))
            .await;
    assert_eq!(
        after["records"][0]["family_changes"][0]["status"], "rejected",
        "{after}"
    );
    assert_eq!(
        after["records"][0]["family_changes"][0]["note"],
        "户籍无此人，请核实"
    );
    changes_that_would_do_nothing_are_refused(&mut f, &county).await;
    changes_of_a_voided_visit_are_withdrawn(&mut f, &county).await;
}
db_test!(family_changes_wait_for_the_town_office, review_queue);

/// QA s32d X3: a correction of a visit repeats its family changes; those the office
/// already decided are decided once and not queued again (accepting one again removed a
/// member twice), while one still pending, or one the correction adds, is queued.
async fn corrected_changes(t: &TestDb) {
    use bangfu_shared::visit::FamilyChange;
    use bangfu_shared::visit::FamilyChangeKind::{Birth, Death, MoveIn, MoveOut};
    let mut f = field(t).await;
    let county = f.w.login("county").await;
    let (visit, ids) = report_changes(
        &mut f,
        &county,
        &[(Birth, "田小宝"), (Death, "田老汉"), (MoveOut, "田晓东")],
    )
    .await;
    for (id, accept) in [(ids[0], true), (ids[1], false)] {
        let (status, body) =
            f.w.post_json(
                Some(&county),
                &format!("/review/family-changes/{id}"),
                &json!({ "accept": accept }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let mut v =
        bangfu_shared::visit::VisitBody::new(bangfu_shared::VisitKind::Phone, chrono::Utc::now());
    v.notes = Some("补充说明".into());
    for (kind, name) in [
        (Birth, "田小宝"),
        (Death, "田老汉"),
        (MoveOut, "田晓东"),
        (MoveIn, "田新人"),
    ] {
        v.family_changes.push(FamilyChange {
            kind,
            name: name.into(),
        });
    }
    let amendment = f.device.sign(
        f.household,
        RecordType::Amendment,
        Some(v),
        Some(visit),
        Some("补充说明"),
    );
    let acks = f.push(&[amendment]).await;
    assert_eq!(acks.acks[0].status, AckStatus::Accepted, "{acks:?}");
    let (_, queue) = f.w.get(Some(&county), "/review/family-changes").await;
    let pending: Vec<&str> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // The one still pending when the visit was corrected is the correction's to decide
    // now (the visit's own is withdrawn), with the one it adds.
    assert_eq!(pending, ["田晓东", "田新人"], "{queue}");
    let (_, household) =
        f.w.get(Some(&f.token), &format!("/households/{}", f.household))
            .await;
    let babies = household["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "田小宝")
        .count();
    assert_eq!(babies, 1, "{household}");
}
db_test!(
    a_corrected_visit_does_not_queue_its_decided_changes_again,
    corrected_changes
);

/// Corrects visit `visit` with a phone call proposing `changes`; returns the queue.
async fn correct_changes(
    f: &mut Field,
    county: &str,
    visit: uuid::Uuid,
    changes: &[(bangfu_shared::visit::FamilyChangeKind, &str)],
) -> serde_json::Value {
    let mut v =
        bangfu_shared::visit::VisitBody::new(bangfu_shared::VisitKind::Phone, chrono::Utc::now());
    for (kind, name) in changes {
        v.family_changes.push(bangfu_shared::visit::FamilyChange {
            kind: *kind,
            name: (*name).into(),
        });
    }
    let amendment = f.device.sign(
        f.household,
        RecordType::Amendment,
        Some(v),
        Some(visit),
        Some("名字写错"),
    );
    let acks = f.push(&[amendment]).await;
    assert_eq!(acks.acks[0].status, AckStatus::Accepted, "{acks:?}");
    f.w.get(Some(county), "/review/family-changes").await.1
}

/// QA s33c C1: a correction that renames a change the office accepted (a misspelt baby)
/// is queued naming the change it replaces, and accepting it renames the member instead
/// of adding a second child; a departure recorded for the wrong member gives that member
/// back when its correction is accepted.
async fn replaced_changes(t: &TestDb) {
    use bangfu_shared::visit::FamilyChangeKind::{Birth, Death, MarriageIn};
    let mut f = field(t).await;
    let county = f.w.login("county").await;
    let (visit, ids) = report_changes(
        &mut f,
        &county,
        &[(Birth, "朱小宝"), (MarriageIn, "李秀英")],
    )
    .await;
    for id in &ids {
        accept_change(&f, &county, *id).await;
    }
    let queue = correct_changes(
        &mut f,
        &county,
        visit,
        &[(Birth, "朱晓宝"), (MarriageIn, "李秀英")],
    )
    .await;
    assert_eq!(queue.as_array().unwrap().len(), 1, "{queue}");
    assert_eq!(queue[0]["name"], "朱晓宝", "{queue}");
    assert_eq!(
        queue[0]["replaces"],
        json!({ "id": ids[0], "name": "朱小宝" }),
        "{queue}"
    );
    let before = member_list(&f).await.len();
    accept_change(&f, &county, queue[0]["id"].as_i64().unwrap()).await;
    let after = member_list(&f).await;
    assert_eq!(after.len(), before, "{after:?}");
    assert!(
        after.contains(&("朱晓宝".into(), "子女".into())),
        "{after:?}"
    );
    assert!(!after.iter().any(|(n, _)| n == "朱小宝"), "{after:?}");

    // The wrong member recorded as dead, then the record corrected.
    let (visit, ids) = report_changes(&mut f, &county, &[(Death, "李秀英")]).await;
    accept_change(&f, &county, ids[0]).await;
    let queue = correct_changes(&mut f, &county, visit, &[(Death, "朱晓宝")]).await;
    assert_eq!(queue[0]["replaces"]["name"], "李秀英", "{queue}");
    accept_change(&f, &county, queue[0]["id"].as_i64().unwrap()).await;
    let now = member_list(&f).await;
    assert!(
        now.iter().any(|(n, _)| n == "李秀英"),
        "given back: {now:?}"
    );
    assert!(!now.iter().any(|(n, _)| n == "朱晓宝"), "{now:?}");
}

async fn accept_change(f: &Field, county: &str, id: i64) {
    let path = format!("/review/family-changes/{id}");
    let (status, body) =
        f.w.post_json(Some(county), &path, &json!({ "accept": true }))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The household's members as (name, relation).
async fn member_list(f: &Field) -> Vec<(String, String)> {
    let (_, detail) =
        f.w.get(Some(&f.token), &format!("/households/{}", f.household))
            .await;
    detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap().to_string();
            (text("name"), text("relation"))
        })
        .collect()
}
db_test!(
    a_correction_renaming_an_accepted_change_replaces_it,
    replaced_changes
);

/// QA s32d X4: the death of the head of household is not accepted without naming the
/// new head; the change stays pending meanwhile. QA s33c C2: the new head is named from
/// the members at the accept (a correction of the head's name to another member's is
/// refused: it listed that member twice), the one who left is gone, and the audit log
/// names the change, not the people.
async fn head_leaves(t: &TestDb) {
    use bangfu_shared::visit::FamilyChangeKind::{Death, MarriageIn};
    let mut f = field(t).await;
    let county = f.w.login("county").await;
    let (_, married) = report_changes(&mut f, &county, &[(MarriageIn, "李秀英")]).await;
    accept_change(&f, &county, married[0]).await;
    let (_, ids) = report_changes(&mut f, &county, &[(Death, "田晓东")]).await;
    let (status, body) =
        f.w.post_json(
            Some(&county),
            &format!("/review/family-changes/{}", ids[0]),
            &json!({ "accept": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, household) =
        f.w.get(Some(&f.token), &format!("/households/{}", f.household))
            .await;
    let members = household["members"].as_array().unwrap().clone();
    let spouse = members
        .iter()
        .find(|m| m["name"] != "田晓东")
        .and_then(|m| m["name"].as_str())
        .unwrap()
        .to_string();
    let says = body["message"].as_str().unwrap();
    assert!(
        says.contains("new_head") && says.contains(&spouse),
        "{body}"
    );
    let (_, queue) = f.w.get(Some(&county), "/review/family-changes").await;
    assert_eq!(queue[0]["status"], "pending", "{queue}");
    assert_eq!(household["head_name"], "田晓东", "{household}");

    // A correction is for a misspelt head, not for naming another member head.
    let h = f.household;
    let (status, body) =
        f.w.patch_json(
            Some(&county),
            &format!("/households/{h}"),
            &json!({ "head_name": spouse, "reason": "户主去世" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("new_head"),
        "{body}"
    );
    let accept = |new_head: &str| {
        let path = format!("/review/family-changes/{}", ids[0]);
        let body = json!({ "accept": true, "new_head": new_head });
        let (w, county) = (&f.w, &county);
        async move { w.post_json(Some(county), &path, &body).await }
    };
    for stranger in ["不存在的人", "田晓东"] {
        let (status, body) = accept(stranger).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{stranger}: {body}"
        );
    }
    let (status, body) = accept(&spouse).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, after) = f.w.get(Some(&f.token), &format!("/households/{h}")).await;
    assert_eq!(after["head_name"], json!(spouse), "{after}");
    assert_eq!(
        after["members"],
        json!([{ "name": spouse, "relation": "户主" }]),
        "the one who died is gone, the spouse heads it: {after}"
    );
    // The one who died is not brought back as head by a correction (QA s33d S1).
    let (status, body) =
        f.w.patch_json(
            Some(&county),
            &format!("/households/{h}"),
            &json!({ "head_name": "田晓东", "reason": "改回" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("left the household"),
        "{body}"
    );
    let (_, log) =
        f.w.get(Some(&county), "/audit?action=household.new_head")
            .await;
    let entry = &log.as_array().unwrap()[0];
    assert_eq!(entry["detail"]["field_change"], ids[0], "{log}");
    assert!(!log.to_string().contains("田晓东"), "no names: {log}");
}

/// A household from a ledger lists only its head: when the head dies, the new head the
/// office names is listed as the head. When the one member left dies, no one heads it:
/// the death is accepted without a new head (QA s33d S4).
async fn head_of_a_ledger_household(t: &TestDb) {
    use bangfu_shared::visit::FamilyChangeKind::Death;
    let mut f = field(t).await;
    let county = f.w.login("county").await;
    let (_, ids) = report_changes(&mut f, &county, &[(Death, "田晓东")]).await;
    let path = format!("/review/family-changes/{}", ids[0]);
    let (status, body) =
        f.w.post_json(
            Some(&county),
            &path,
            &json!({ "accept": true, "new_head": "李秀英" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        member_list(&f).await,
        [("李秀英".to_string(), "户主".to_string())]
    );
    let (_, ids) = report_changes(&mut f, &county, &[(Death, "李秀英")]).await;
    accept_change(&f, &county, ids[0]).await;
    assert_eq!(member_list(&f).await, []);
}
db_test!(
    a_ledger_households_new_head_is_listed_when_the_head_dies,
    head_of_a_ledger_household
);

/// `new_head` belongs to a change that takes the head out: with another it is refused,
/// and the change stays pending.
async fn new_head_only_when_the_head_leaves(t: &TestDb) {
    use bangfu_shared::visit::FamilyChangeKind::Birth;
    let mut f = field(t).await;
    let county = f.w.login("county").await;
    let (_, ids) = report_changes(&mut f, &county, &[(Birth, "田新宝")]).await;
    let (status, body) =
        f.w.post_json(
            Some(&county),
            &format!("/review/family-changes/{}", ids[0]),
            &json!({ "accept": true, "new_head": "田新宝" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, queue) = f.w.get(Some(&county), "/review/family-changes").await;
    assert_eq!(queue[0]["status"], "pending", "{queue}");
}
db_test!(
    a_new_head_is_named_only_for_a_change_that_takes_the_head_out,
    new_head_only_when_the_head_leaves
);
db_test!(
    the_head_of_households_death_waits_for_a_new_head,
    head_leaves
);

/// QA s33d S9: a visit voided after the office accepted its family change is on the
/// office's list of things to check, in Chinese, naming the change; the members keep it
/// until the office acts.
async fn voided_after_accepting(t: &TestDb) {
    use bangfu_shared::visit::FamilyChangeKind::Birth;
    let mut f = field(t).await;
    let county = f.w.login("county").await;
    let (visit, ids) = report_changes(&mut f, &county, &[(Birth, "田小宝")]).await;
    accept_change(&f, &county, ids[0]).await;
    let (_, before) = f.w.get(Some(&county), "/sync/anomalies").await;
    let flagged = |list: &serde_json::Value| {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == "voided_with_changes")
            .count()
    };
    assert_eq!(flagged(&before), 0, "{before}");
    let void = f.device.sign(
        f.household,
        RecordType::Void,
        None,
        Some(visit),
        Some("录错户"),
    );
    let acks = f.push(&[void]).await;
    assert_eq!(acks.acks[0].status, AckStatus::Accepted, "{acks:?}");
    let (_, after) = f.w.get(Some(&county), "/sync/anomalies").await;
    assert_eq!(flagged(&after), 1, "{after}");
    let (status, csv) = f.w.get_bytes(&county, "/sync/anomalies?format=csv").await;
    assert_eq!(status, StatusCode::OK);
    let csv = String::from_utf8(csv).unwrap();
    assert!(
        csv.contains("已采纳家庭变化的走访被作废") && csv.contains("出生 田小宝"),
        "{csv}"
    );
    assert!(member_list(&f).await.iter().any(|(n, _)| n == "田小宝"));
}
db_test!(
    a_visit_voided_after_its_change_was_accepted_is_flagged,
    voided_after_accepting
);

/// Signs and pushes a phone call reporting `changes`; returns its id and the ids of the
/// changes as queued.
async fn report_changes(
    f: &mut Field,
    county: &str,
    changes: &[(bangfu_shared::visit::FamilyChangeKind, &str)],
) -> (uuid::Uuid, Vec<i64>) {
    let mut v =
        bangfu_shared::visit::VisitBody::new(bangfu_shared::VisitKind::Phone, chrono::Utc::now());
    for (kind, name) in changes {
        v.family_changes.push(bangfu_shared::visit::FamilyChange {
            kind: *kind,
            name: (*name).into(),
        });
    }
    let rec = f
        .device
        .sign(f.household, RecordType::Visit, Some(v), None, None);
    let id = rec.record.id;
    f.push(&[rec]).await;
    let (_, queue) =
        f.w.get(Some(county), "/review/family-changes?status=all")
            .await;
    let ids = queue
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["record_id"] == id.to_string())
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    (id, ids)
}

/// A newcomer already listed, or a leaver who is not a member, is refused by name: the
/// household's members stay as they were.
async fn changes_that_would_do_nothing_are_refused(f: &mut Field, county: &str) {
    use bangfu_shared::visit::FamilyChangeKind::{Birth, Death};
    let (_, ids) = report_changes(f, county, &[(Birth, "田小宝"), (Death, "不存在的人")]).await;
    for (id, says) in ids.iter().zip(["already a member", "not a member"]) {
        let (status, body) =
            f.w.post_json(
                Some(county),
                &format!("/review/family-changes/{id}"),
                &json!({ "accept": true }),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(body["message"].as_str().unwrap().contains(says), "{body}");
    }
    let (_, h) =
        f.w.get(Some(&f.token), &format!("/households/{}", f.household))
            .await;
    assert_eq!(h["members"].as_array().unwrap().len(), 2, "{h}");
}

/// A visit its helper voids takes its family changes out of the queue: they are
/// listed as withdrawn and cannot be accepted into the ledger.
async fn changes_of_a_voided_visit_are_withdrawn(f: &mut Field, county: &str) {
    use bangfu_shared::visit::FamilyChangeKind::MoveIn;
    let (visit, ids) = report_changes(f, county, &[(MoveIn, "张三")]).await;
    let void = f.device.sign(
        f.household,
        RecordType::Void,
        None,
        Some(visit),
        Some("写错了"),
    );
    f.push(&[void]).await;
    let (_, pending) = f.w.get(Some(county), "/review/family-changes").await;
    assert!(
        pending
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["record_id"] != visit.to_string()),
        "{pending}"
    );
    let (_, withdrawn) =
        f.w.get(Some(county), "/review/family-changes?status=withdrawn")
            .await;
    assert_eq!(withdrawn[0]["id"], ids[0], "{withdrawn}");
    let (status, body) =
        f.w.post_json(
            Some(county),
            &format!("/review/family-changes/{}", ids[0]),
            &json!({ "accept": true, "note": "同意迁入" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("voided"),
        "{body}"
    );
    // The refused decision left no note: the helper withdrew it, no office decided it
    // (QA s30a L1).
    let (_, withdrawn) =
        f.w.get(Some(county), "/review/family-changes?status=withdrawn")
            .await;
    assert_eq!(withdrawn[0]["status"], "withdrawn", "{withdrawn}");
    assert!(withdrawn[0]["note"].is_null(), "{withdrawn}");
    let (_, h) =
        f.w.get(Some(&f.token), &format!("/households/{}", f.household))
            .await;
    assert_eq!(
        h["members"].as_array().unwrap().len(),
        2,
        "张三 never joined: {h}"
    );
}

async fn fifty_clients(t: &TestDb) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    let rows = bangfu_server::demo::town_ledger(0, 50, 11);
    w.import_ok(
        &county,
        "",
        bangfu_server::ledger::export::write(&rows, bangfu_server::ledger::ExportFormat::Csv)
            .unwrap(),
    )
    .await;
    let origin = format!("http://{}", w.server.addr);
    let mut jobs = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        enroll_directly(t, &w, &row.first.phone).await;
        let token = w.login(&row.first.phone).await;
        let (http, base, origin) = (
            reqwest::Client::new(),
            w.server.base.clone(),
            origin.clone(),
        );
        jobs.push(tokio::spawn(async move {
            let me: serde_json::Value =
                send_json(http.get(format!("{base}/me")).bearer_auth(&token)).await;
            let list: serde_json::Value =
                send_json(http.get(format!("{base}/households")).bearer_auth(&token)).await;
            let household = list["items"][0]["id"].as_i64().unwrap();
            let mut device =
                Device::register_today(&http, &base, &token, me["helper"]["id"].as_i64().unwrap())
                    .await;
            let (photo, sig) = (jpeg(20, i as u8), png(i as u8));
            let records = vec![
                device.home_visit(household, &photo, &sig),
                device.phone_call(household),
                device.phone_call(household),
            ];
            let push = |records: Vec<SignedRecord>| {
                let (http, base, token) = (http.clone(), base.clone(), token.clone());
                async move {
                    http.post(format!("{base}/sync/push"))
                        .bearer_auth(&token)
                        .json(&json!({ "records": records }))
                        .send()
                        .await
                        .unwrap()
                        .status()
                }
            };
            assert_eq!(push(records.clone()).await, StatusCode::OK);
            assert_eq!(
                upload(&http, &origin, &token, &photo).await,
                StatusCode::NO_CONTENT
            );
            assert_eq!(
                upload(&http, &origin, &token, &sig).await,
                StatusCode::NO_CONTENT
            );
            assert_eq!(push(records).await, StatusCode::OK);
            photo
        }));
    }
    let mut photos = Vec::new();
    for j in jobs {
        photos.push(j.await.unwrap());
    }
    use bangfu_server::entities::record;
    use sea_orm::{ColumnTrait, QueryFilter};
    assert_eq!(record_count(t).await, 150);
    let accepted = record::Entity::find()
        .filter(record::Column::Status.eq("accepted"))
        .count(&t.db)
        .await
        .unwrap();
    assert_eq!(
        accepted, 150,
        "every record complete once its photos arrived"
    );
    let admin = w.login("admin").await;
    for photo in photos.iter().step_by(10) {
        let (status, bytes) = w
            .get_bytes(&admin, &format!("/blobs/{}", sha256_hex(photo)))
            .await;
        assert_eq!((status, &bytes), (StatusCode::OK, photo));
    }
    // The change cursor is dense and unique: every record has its own position.
    let seqs: std::collections::BTreeSet<i64> = record::Entity::find()
        .all(&t.db)
        .await
        .unwrap()
        .iter()
        .map(|r| r.change_seq)
        .collect();
    assert_eq!(seqs.len(), 150);
}
db_test!(fifty_clients_sync_concurrently, fifty_clients);

/// A copy of a record with a broken signature, between two good copies in one batch, is
/// refused on its own; the good copies share the stored record's answer (a client that
/// keeps the last answer for an id must not mark a stored record rejected).
async fn forged_copy_between(t: &TestDb) {
    let mut f = field(t).await;
    let call = f.device.phone_call(f.household);
    let mut forged = call.clone();
    forged.signature = "00".repeat(64);
    let acks = f.push(&[call.clone(), forged, call.clone()]).await.acks;
    let statuses: Vec<AckStatus> = acks.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        vec![
            AckStatus::Accepted,
            AckStatus::Rejected,
            AckStatus::Accepted
        ],
        "{acks:?}"
    );
    assert_eq!(record_count(t).await, 1);
    // A signature in uppercase hex verifies, and is kept in the canonical lowercase.
    let mut upper = f.device.phone_call(f.household);
    let lower = upper.signature.clone();
    upper.signature = upper.signature.to_uppercase();
    assert_eq!(
        f.push(&[upper.clone()]).await.acks[0].status,
        AckStatus::Accepted
    );
    let (_, pull) = f.w.get(Some(&f.token), "/sync/pull?cursor=0").await;
    let pulled: bangfu_shared::sync::PullResponse = serde_json::from_value(pull).unwrap();
    let kept = pulled
        .records
        .iter()
        .find(|r| r.signed.record.id == upper.record.id)
        .unwrap();
    assert_eq!(kept.signed.signature, lower);
    // Another method on the push route is answered in JSON, as every other error.
    let (status, body) = f.w.get(Some(&f.token), "/sync/push").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"], "method_not_allowed", "{body}");
}
db_test!(
    a_forged_copy_in_a_batch_does_not_change_the_good_copies_answer,
    forged_copy_between
);

/// Another connection holding SQLite's write lock (until the transaction is dropped or
/// rolled back), so the server's writes wait past their busy timeout.
async fn hold_write_lock(
    t: &TestDb,
) -> (sea_orm::DatabaseConnection, sea_orm::DatabaseTransaction) {
    hold_lock(t, "CREATE TABLE holds_the_lock (x INTEGER)").await
}

/// Another connection with an open transaction that ran `sql` (and holds what it took).
async fn hold_lock(
    t: &TestDb,
    sql: &str,
) -> (sea_orm::DatabaseConnection, sea_orm::DatabaseTransaction) {
    let other = bangfu_server::db::connect(&t.url).await.unwrap();
    let holder = other.begin().await.unwrap();
    holder.execute_unprepared(sql).await.unwrap();
    (other, holder)
}

/// The last PATCH of an upload answered 503 because the database stayed busy (another
/// connection holding SQLite's write lock past the busy timeout) loses nothing: the
/// upload holds every byte, and the next HEAD finishes it, as the protocol says.
async fn last_patch_busy(t: &TestDb) {
    if t.backend != bangfu_server::testing::Backend::Sqlite {
        return;
    }
    let f = field(t).await;
    let photo = jpeg(30, 21);
    let (status, url) = tus_create(
        &f.w.http,
        &f.origin,
        &f.token,
        photo.len(),
        &sha256_hex(&photo),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let url = url.unwrap();
    let first = tus_patch(&f.w.http, &url, &f.token, 0, photo[..1000].to_vec())
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::NO_CONTENT);

    let (other, holder) = hold_write_lock(t).await;
    let last = tus_patch(&f.w.http, &url, &f.token, 1000, photo[1000..].to_vec())
        .await
        .unwrap();
    assert_eq!(last.status(), StatusCode::SERVICE_UNAVAILABLE);
    holder.rollback().await.unwrap();
    other.close().await.ok();

    assert_eq!(
        tus_offset(&f.w.http, &url, &f.token).await,
        photo.len() as u64,
        "the next HEAD finishes the upload"
    );
    let (status, bytes) =
        f.w.get_bytes(&f.token, &format!("/blobs/{}", sha256_hex(&photo)))
            .await;
    assert_eq!((status, bytes), (StatusCode::OK, photo));
}
db_test!(
    an_upload_whose_last_patch_found_the_database_busy_is_finished_by_head,
    last_patch_busy
);

/// QA s26b F8: on PostgreSQL a push waiting on a lock another session holds (an
/// operator's open transaction) is answered 503 `busy` once the busy timeout passes, not
/// held for as long as the lock lasts; the same push goes through once it is released.
async fn postgres_lock_busy(t: &TestDb) {
    if t.backend != bangfu_server::testing::Backend::Postgres {
        return;
    }
    let mut f = field(t).await;
    let call = f.device.phone_call(f.household);
    let (other, holder) = hold_lock(t, "LOCK TABLE records IN ACCESS EXCLUSIVE MODE").await;
    let started = std::time::Instant::now();
    let resp =
        f.w.http
            .post(format!("{}/sync/push", f.w.server.base))
            .bearer_auth(&f.token)
            .json(&json!({ "records": [call] }))
            .send()
            .await
            .unwrap();
    let waited = started.elapsed();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "busy", "{body}");
    eprintln!("a push behind a held lock was answered 503 after {waited:?}");
    holder.rollback().await.unwrap();
    other.close().await.ok();
    let acks = f.push(std::slice::from_ref(&call)).await.acks;
    assert_eq!(acks[0].status, AckStatus::Accepted, "{acks:?}");
}
db_test!(
    a_push_behind_a_postgresql_lock_is_answered_busy,
    postgres_lock_busy
);

/// A file sent whole with its creation that cannot be recorded (the database busy: 503)
/// leaves nothing behind: no row names it, so no sweep would ever find its bytes; the
/// client sends the creation again, and that one is stored.
async fn creation_busy(t: &TestDb) {
    if t.backend != bangfu_server::testing::Backend::Sqlite {
        return;
    }
    let f = field(t).await;
    // A PNG this small is decoded in full before it is recorded.
    let picture = bangfu_tests::field::png(33);
    let uploads = f.w.settings.data_dir.join("files").join("uploads");
    let (other, holder) = hold_write_lock(t).await;
    let sha = sha256_hex(&picture);
    let create = || async {
        bangfu_tests::field::tus_create_with(
            &f.w.http,
            &f.origin,
            &f.token,
            picture.len(),
            &sha,
            picture.clone(),
        )
        .await
        .unwrap()
        .status()
    };
    assert_eq!(create().await, StatusCode::SERVICE_UNAVAILABLE);
    holder.rollback().await.unwrap();
    other.close().await.ok();
    let left: Vec<_> = std::fs::read_dir(&uploads)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "no bytes without a row: {left:?}");

    assert_eq!(create().await, StatusCode::CREATED);
    let (status, bytes) = f.w.get_bytes(&f.token, &format!("/blobs/{sha}")).await;
    assert_eq!((status, bytes), (StatusCode::OK, picture));
}
db_test!(
    a_whole_creation_that_found_the_database_busy_leaves_no_bytes,
    creation_busy
);
