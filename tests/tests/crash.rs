//! The server is killed with SIGKILL in the middle of a push and restarted: afterwards it
//! holds exactly the records that were created, each once.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::db_test;
use bangfu_shared::Role;
use bangfu_shared::sync::{AckStatus, PushResponse};
use bangfu_tests::field::Device;
use bangfu_tests::{FIXTURE, ServerProcess, TestDb, World, enroll_directly, free_port, office};
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
use serde_json::json;

async fn killed_mid_push(t: &TestDb) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    w.import_ok(&county, "", FIXTURE.as_bytes().to_vec()).await;
    enroll_directly(t, &w, "15907579383").await;
    let token = w.login("15907579383").await;
    let (_, me) = w.get(Some(&token), "/me").await;
    let (_, mine) = w.get(Some(&token), "/households").await;
    let household = mine["items"][0]["id"].as_i64().unwrap();
    let mut device = Device::register(
        &w.http,
        &w.server.base,
        &token,
        me["helper"]["id"].as_i64().unwrap(),
    )
    .await;
    let batches: Vec<Vec<_>> = (0..4)
        .map(|_| (0..200).map(|_| device.phone_call(household)).collect())
        .collect();
    w.server_stop().await;

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
        let resp: PushResponse = http
            .post(format!("{}/sync/push", server.base))
            .bearer_auth(&token)
            .json(&json!({ "records": batch }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            resp.acks.iter().all(|a| a.status == AckStatus::Accepted),
            "{:?}",
            resp.acks.iter().find(|a| a.status != AckStatus::Accepted)
        );
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
