//! Unfinished uploads expire (tus expiration): answers say when, and the sweep discards
//! the stale ones with their bytes, sparing finished, recent and busy ones. Only a
//! helper's device opens uploads, and one account holds a bounded number unfinished.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::entities::{account, upload};
use bangfu_server::services::{upload_expiry, uploads};
use bangfu_server::{AppState, Settings, db_test};
use bangfu_shared::Role;
use bangfu_shared::visit::sha256_hex;
use bangfu_tests::field::{jpeg, tus_create, tus_create_with, tus_patch};
use bangfu_tests::scenario::Field;
use bangfu_tests::{TestDb, World, office};
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};

db_test!(unfinished_uploads_say_when_they_expire, expiry_headers);

async fn expiry_headers(t: &TestDb) {
    let f = Field::new(t).await;
    let (w, token) = (&f.w, f.token.clone());
    let files = w.server.url("/files");
    let options = w
        .http
        .request(reqwest::Method::OPTIONS, &files)
        .send()
        .await
        .unwrap();
    let extensions = options.headers()["tus-extension"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        extensions.split(',').any(|e| e == "expiration"),
        "{extensions}"
    );

    let photo = jpeg(40, 7);
    let sha = sha256_hex(&photo);
    let meta = format!(
        "sha256 {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &sha)
    );
    let created = w
        .http
        .post(&files)
        .bearer_auth(&token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", photo.len().to_string())
        .header("Upload-Metadata", meta)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let expires = expires_of(&created);
    assert!(
        expires.is_some(),
        "an unfinished upload says when it expires"
    );
    let expires = expires.unwrap();
    let days = (expires - Utc::now()).num_minutes() as f64 / 1440.0;
    assert!((29.9..=30.0).contains(&days), "expires in {days} days");

    let location = created.headers()["location"].to_str().unwrap().to_string();
    let url = format!("http://{}{location}", w.server.addr);
    let head = w
        .http
        .head(&url)
        .bearer_auth(&token)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        expires_of(&head),
        Some(expires),
        "HEAD gives the same expiry"
    );

    let done = w
        .http
        .patch(&url)
        .bearer_auth(&token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(photo)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert_eq!(expires_of(&done), None, "a finished upload does not expire");
}

fn expires_of(resp: &reqwest::Response) -> Option<DateTime<Utc>> {
    let value = resp.headers().get("upload-expires")?.to_str().ok()?;
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

db_test!(
    the_sweep_discards_stale_unfinished_uploads_with_their_bytes,
    sweep
);

async fn sweep(t: &TestDb) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let account_id = account::Entity::find()
        .filter(account::Column::Username.eq("county"))
        .one(&t.db)
        .await
        .unwrap()
        .unwrap()
        .id;
    let settings = Settings {
        data_dir: t.dir().join("sweep"),
        ..w.settings.clone()
    };
    let state = AppState::new(t.server_pool().await, settings.clone()).unwrap();
    let now = Utc::now();
    // Uploads 40 and 31 days old, 29 days old, and a finished one 40 days old.
    let stale = unfinished(&state, account_id, now - Duration::days(40), STALE).await;
    let busy = unfinished(&state, account_id, now - Duration::days(31), BUSY).await;
    let recent = unfinished(&state, account_id, now - Duration::days(29), RECENT).await;
    let finished = upload::Model {
        id: FINISHED.into(),
        sha256: None,
        length: 100,
        status: "complete".into(),
        account_id,
        created_at: now - Duration::days(40),
        completed_at: Some(now - Duration::days(40)),
    };
    finished.into_active_model().insert(&t.db).await.unwrap();

    let held = uploads::Busy::take(&state.busy_uploads, &busy).unwrap();
    let expire =
        || upload_expiry::expire(&state.db, &state.store, &state.busy_uploads, &settings, now);
    assert_eq!(expire().await.unwrap(), 1, "only the stale, idle one");
    assert_eq!(ids(t).await, [BUSY, FINISHED, RECENT]);
    let file = |id: &str| settings.data_dir.join("files").join("uploads").join(id);
    assert!(
        file(&recent).exists(),
        "the local store keeps partial bytes here"
    );
    assert!(!file(&stale).exists(), "its bytes went too");
    assert_eq!(state.store.upload_len(&recent).await.unwrap(), 1000);
    assert_eq!(state.store.upload_len(&busy).await.unwrap(), 1000);

    drop(held);
    assert_eq!(
        expire().await.unwrap(),
        1,
        "the busy one, once its PATCH ended"
    );
    assert_eq!(ids(t).await, [FINISHED, RECENT]);
    assert_eq!(expire().await.unwrap(), 0, "nothing left to discard");
}

// Upload ids are 32 hex digits; sorted as listed.
const STALE: &str = "00000000000000000000000000000001";
const BUSY: &str = "00000000000000000000000000000002";
const FINISHED: &str = "00000000000000000000000000000003";
const RECENT: &str = "00000000000000000000000000000004";

/// An unfinished upload created at `created` holding 1,000 bytes.
async fn unfinished(state: &AppState, account_id: i64, created: DateTime<Utc>, id: &str) -> String {
    upload::Model {
        id: id.into(),
        sha256: None,
        length: 5000,
        status: "partial".into(),
        account_id,
        created_at: created,
        completed_at: None,
    }
    .into_active_model()
    .insert(&state.db)
    .await
    .unwrap();
    let mut writer = state.store.append(id, 0).await.unwrap();
    writer.write(&[7u8; 1000]).await.unwrap();
    writer.finish().await.unwrap();
    id.to_string()
}

async fn ids(t: &TestDb) -> Vec<String> {
    let mut ids: Vec<String> = upload::Entity::find()
        .all(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_ids_sort_as_listed() {
    let mut listed = [STALE, BUSY, FINISHED, RECENT];
    listed.sort();
    assert_eq!(listed, [STALE, BUSY, FINISHED, RECENT]);
}

db_test!(
    an_account_holds_a_bounded_number_of_unfinished_uploads,
    bounded
);

/// Only a helper's device may open an upload, and an account holds at most
/// `max_unfinished_uploads` (32) unfinished at once, however many it asks for at the same
/// time (QA s23c F9: an office could upload, and one account could open any number, each
/// reserving a row and a file). The same file again is its own upload, not another; a
/// finished upload and an expired one free their place.
async fn bounded(t: &TestDb) {
    let f = Field::new(t).await;
    let files = f.w.server.url("/files");
    let create = |token: &str, sha: &str, len: usize| {
        f.w.http
            .post(&files)
            .bearer_auth(token)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", len.to_string())
            .header(
                "Upload-Metadata",
                format!(
                    "sha256 {}",
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sha)
                ),
            )
            .send()
    };
    let photo = jpeg(30, 3);
    let photo_sha = sha256_hex(&photo);
    let resp = create(&f.county, &photo_sha, photo.len()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "an office account");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "forbidden", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("only a helper's device uploads photos"),
        "{message}"
    );

    // One real photo, then 39 more files asked for at once: 32 in all are taken.
    let (status, photo_url) =
        tus_create(&f.w.http, &f.origin, &f.token, photo.len(), &photo_sha).await;
    assert_eq!(status, StatusCode::CREATED);
    let fake = |i: usize| format!("{i:064x}");
    let burst: Vec<_> = (1..40)
        .map(|i| {
            let (http, origin, token) = (f.w.http.clone(), f.origin.clone(), f.token.clone());
            tokio::spawn(
                async move { tus_create(&http, &origin, &token, 1000 + i, &fake(i)).await },
            )
        })
        .collect();
    let mut taken = Vec::new();
    let mut refused = 0;
    for (i, job) in (1..40).zip(burst) {
        match job.await.unwrap() {
            (StatusCode::CREATED, url) => taken.push((i, url.unwrap())),
            (StatusCode::TOO_MANY_REQUESTS, _) => refused += 1,
            (other, _) => panic!("file {i}: {other}"),
        }
    }
    assert_eq!((taken.len(), refused), (31, 8), "32 open in all");
    let resp = create(&f.token, &fake(40), 1040).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        resp.headers().get("retry-after").is_none(),
        "time alone frees none"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "too_many_uploads", "{body}");
    assert_eq!(
        body["details"],
        serde_json::json!({"open": 32, "limit": 32})
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("holds 32 unfinished uploads")
            && message.contains("finish one")
            && message.contains("expire (30 days after its creation)"),
        "{message}"
    );
    // Sent with its first bytes (creation-with-upload), it is refused before they are read.
    let other = jpeg(30, 4);
    let resp = tus_create_with(
        &f.w.http,
        &f.origin,
        &f.token,
        other.len(),
        &sha256_hex(&other),
        other.clone(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // The same file again is the upload it has, not another.
    let (i, url) = taken[0].clone();
    let (status, again) = tus_create(&f.w.http, &f.origin, &f.token, 1000 + i, &fake(i)).await;
    assert_eq!((status, again), (StatusCode::CREATED, Some(url)));

    // Finishing one frees its place: one more, and no other.
    let done = tus_patch(&f.w.http, &photo_url.unwrap(), &f.token, 0, photo)
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    let (status, _) = tus_create(&f.w.http, &f.origin, &f.token, 1041, &fake(41)).await;
    assert_eq!(status, StatusCode::CREATED, "the finished upload's place");
    let (status, _) = tus_create(&f.w.http, &f.origin, &f.token, 1042, &fake(42)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // An upload past its expiry frees its place at once, before the sweep discards it.
    let oldest = upload::Entity::find()
        .filter(upload::Column::Sha256.eq(fake(taken[1].0)))
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    let mut aged = oldest.into_active_model();
    aged.created_at = sea_orm::Set(Utc::now() - Duration::days(31));
    aged.update(&t.db).await.unwrap();
    let (status, _) = tus_create(&f.w.http, &f.origin, &f.token, 1042, &fake(42)).await;
    assert_eq!(status, StatusCode::CREATED, "the expired upload's place");
    let (status, _) = tus_create(&f.w.http, &f.origin, &f.token, 1043, &fake(43)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // And it is gone for its client too, sweep or not: no HEAD, no bytes (QA s24c F6).
    let expired_url = &taken[1].1;
    let head =
        f.w.http
            .head(expired_url)
            .bearer_auth(&f.token)
            .header("Tus-Resumable", "1.0.0")
            .send()
            .await
            .unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    let patch = tus_patch(&f.w.http, expired_url, &f.token, 0, vec![0u8; 16])
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::NOT_FOUND);
    // Nor is it handed back when its file is created again (QA s24d F6): that is a new
    // upload, refused here only because the account is at its limit.
    let (i, _) = taken[1];
    let again = tus_create(&f.w.http, &f.origin, &f.token, 1000 + i, &fake(i)).await;
    assert_eq!(again, (StatusCode::TOO_MANY_REQUESTS, None));
}
