//! The server is killed with SIGKILL in the middle of a push, or of a stream of photo
//! uploads, and restarted: afterwards it holds exactly the records that were created,
//! each once, and every photo it had acknowledged, byte-identical.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::db_test;
use bangfu_shared::sync::{Ack, AckStatus, PushResponse};
use bangfu_shared::visit::{SignedRecord, sha256_hex};
use bangfu_tests::field::{Device, jpeg, png, tus_answer, tus_create_with, upload};
use bangfu_tests::scenario::Field;
use bangfu_tests::{ServerProcess, TestDb, free_port, send_json};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
use serde_json::json;
use std::collections::HashSet;

/// A helper with a registered device and one of their households, the in-process
/// server stopped (the tests start the real binary on the same data).
async fn helper_in_the_field(t: &TestDb) -> (String, Device, i64) {
    let f = Field::new(t).await;
    f.w.server_stop().await;
    (f.token, f.device, f.household)
}

async fn killed_mid_push(t: &TestDb) {
    let (token, mut device, household) = helper_in_the_field(t).await;
    let batches: Vec<Vec<_>> = (0..4)
        .map(|_| (0..200).map(|_| device.phone_call(household)).collect())
        .collect();

    let port = free_port();
    let server = ServerProcess::start(&t.url, t.dir(), port).await;
    let http = reqwest::Client::new();
    let pushes: Vec<_> = batches
        .iter()
        .map(|b| {
            let req = http
                .post(format!("{}/sync/push", server.base))
                .bearer_auth(&token)
                .json(&json!({ "records": b }));
            tokio::spawn(async move { req.send().await.map(|r| r.status()) })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    server.kill();
    let mut cut = 0;
    for p in pushes {
        if !matches!(p.await.unwrap(), Ok(s) if s.is_success()) {
            cut += 1;
        }
    }
    eprintln!("{cut} of 4 pushes were cut by the SIGKILL");

    let server = ServerProcess::start(&t.url, t.dir(), port).await;
    for batch in &batches {
        all_accepted(&push(&http, &server.base, &token, batch).await);
    }
    server.kill();
    assert_eq!(
        bangfu_server::entities::record::Entity::find()
            .count(&t.db)
            .await
            .unwrap(),
        800
    );
    if t.db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        let row =
            t.db.query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "PRAGMA integrity_check",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get_by_index::<String>(0).unwrap(), "ok");
    }
}
db_test!(
    a_server_killed_mid_push_loses_and_duplicates_nothing,
    killed_mid_push
);

fn all_accepted(acks: &[Ack]) {
    assert!(
        acks.iter().all(|a| a.status == AckStatus::Accepted),
        "{:?}",
        acks.iter().find(|a| a.status != AckStatus::Accepted)
    );
}

/// Pushes `records`; their acks.
async fn push(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    records: &[SignedRecord],
) -> Vec<Ack> {
    let resp: PushResponse = send_json(
        http.post(format!("{base}/sync/push"))
            .bearer_auth(token)
            .json(&json!({ "records": records })),
    )
    .await;
    resp.acks
}

/// Four clients stream photos (each sent whole with its creation) when the server is
/// killed. After the restart every photo it had acknowledged is held, byte-identical,
/// and completes its record at once; the others are sent again and complete theirs.
async fn killed_mid_photos(t: &TestDb) {
    let (token, mut device, household) = helper_in_the_field(t).await;
    let signature = png(3);
    let photos: Vec<Vec<u8>> = (0..160u8).map(|i| jpeg(40, i)).collect();
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let server = ServerProcess::start(&t.url, t.dir(), port).await;
    let http = reqwest::Client::new();
    assert_eq!(
        upload(&http, &origin, &token, &signature).await,
        StatusCode::NO_CONTENT
    );
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let senders: Vec<_> = photos
        .chunks(40)
        .map(|chunk| {
            let (http, origin, token) = (http.clone(), origin.clone(), token.clone());
            let taken = taken.clone();
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for photo in chunk {
                    let sha = sha256_hex(&photo);
                    let Ok(resp) =
                        tus_create_with(&http, &origin, &token, photo.len(), &sha, photo.clone())
                            .await
                    else {
                        break;
                    };
                    let whole = tus_answer(&resp, &origin).0 == Some(photo.len() as u64);
                    if resp.status() != StatusCode::CREATED || !whole {
                        break;
                    }
                    acknowledged.push(sha);
                    taken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                acknowledged
            })
        })
        .collect();
    // Killed once a few photos are in, while the four streams are still going.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while taken.load(std::sync::atomic::Ordering::SeqCst) < 12
        && !senders.iter().all(|s| s.is_finished())
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    server.kill();
    let mut acknowledged = HashSet::new();
    for s in senders {
        acknowledged.extend(s.await.unwrap());
    }
    eprintln!(
        "{} of 160 photos acknowledged before the SIGKILL",
        acknowledged.len()
    );
    assert!(
        (12..160).contains(&acknowledged.len()),
        "the kill came mid-stream, after some photos were in"
    );

    let server = ServerProcess::start(&t.url, t.dir(), port).await;
    let records: Vec<SignedRecord> = photos
        .iter()
        .map(|p| device.home_visit(household, p, &signature))
        .collect();
    let acks = push(&http, &server.base, &token, &records).await;
    let mut missing = Vec::new();
    for (photo, ack) in photos.iter().zip(&acks) {
        let held = ack.status == AckStatus::Accepted;
        if acknowledged.contains(&sha256_hex(photo)) {
            assert!(
                held,
                "an acknowledged photo is held after the kill: {ack:?}"
            );
        }
        if !held {
            assert_eq!(ack.status, AckStatus::AwaitingPhotos, "{ack:?}");
            missing.push(photo);
        }
    }
    for photo in &missing {
        assert_eq!(
            upload(&http, &origin, &token, photo).await,
            StatusCode::NO_CONTENT
        );
    }
    all_accepted(&push(&http, &server.base, &token, &records).await);
    for photo in &photos {
        let stored = http
            .get(format!("{}/blobs/{}", server.base, sha256_hex(photo)))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(stored == photo.as_slice(), "a photo came back altered");
    }
    server.kill();
    assert_eq!(
        bangfu_server::entities::blob::Entity::find()
            .count(&t.db)
            .await
            .unwrap(),
        161,
        "every photo and the signature, each once"
    );
    assert_eq!(
        bangfu_server::entities::record::Entity::find()
            .count(&t.db)
            .await
            .unwrap(),
        160
    );
}
db_test!(
    a_server_killed_mid_photos_keeps_every_acknowledged_one,
    killed_mid_photos
);

db_test!(
    a_migration_cut_short_leaves_nothing_the_next_start_trips_over,
    migration_cut_short
);
/// QA s26b F14: a migration that fails part-way (a full disk; here a table in the way
/// of its second table) leaves none of its work behind, so once the cause is gone the
/// next start applies it whole. Before, SQLite kept its first table and every start
/// after failed with "table household_exits already exists".
async fn migration_cut_short(t: &TestDb) {
    use bangfu_migrations::{Migrator, MigratorTrait};
    // Down to before `household_exits` (the seventh migration).
    let after_six = Migrator::migrations().len() as u32 - 6;
    Migrator::down(&t.db, Some(after_six)).await.unwrap();
    t.db.execute_unprepared("CREATE TABLE household_exit_pairings (in_the_way INTEGER)")
        .await
        .unwrap();
    assert!(Migrator::up(&t.db, None).await.is_err());
    t.db.execute_unprepared("DROP TABLE household_exit_pairings")
        .await
        .unwrap();
    Migrator::up(&t.db, None).await.unwrap();
    assert!(
        Migrator::get_pending_migrations(&t.db)
            .await
            .unwrap()
            .is_empty()
    );
    t.db.execute_unprepared("SELECT COUNT(*) FROM household_exits")
        .await
        .unwrap();
}
