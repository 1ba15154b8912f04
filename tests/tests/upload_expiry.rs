//! Unfinished uploads expire (tus expiration): answers say when, and the sweep discards
//! the stale ones with their bytes, sparing finished, recent and busy ones.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::entities::{account, upload};
use bangfu_server::services::{upload_expiry, uploads};
use bangfu_server::{AppState, Settings, db_test};
use bangfu_shared::Role;
use bangfu_shared::visit::sha256_hex;
use bangfu_tests::field::jpeg;
use bangfu_tests::{TestDb, World, office};
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};

db_test!(unfinished_uploads_say_when_they_expire, expiry_headers);

async fn expiry_headers(t: &TestDb) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let token = w.login("county").await;
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
