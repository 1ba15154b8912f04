//! The demo county a newcomer gets from `bangfu-server demo`.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::db_test;
use bangfu_server::demo;
use bangfu_tests::{TestDb, test_settings};
use sea_orm::{EntityTrait, PaginatorTrait};

async fn demo_county(t: &TestDb) {
    let settings = test_settings(&t.url, t.dir());
    let logins = demo::seed(&t.db, &settings).await.unwrap();
    let roles: Vec<&str> = logins.iter().map(|l| l.role.code()).collect();
    assert_eq!(
        roles,
        [
            "admin",
            "county_office",
            "town_office",
            "town_office",
            "first_helper",
            "second_helper"
        ]
    );
    use bangfu_server::entities::{household, jurisdiction, pairing};
    assert_eq!(household::Entity::find().count(&t.db).await.unwrap(), 120);
    assert_eq!(pairing::Entity::find().count(&t.db).await.unwrap(), 240);
    assert_eq!(
        jurisdiction::Entity::find().count(&t.db).await.unwrap(),
        1 + 2 + 10
    );
    let sized = household::Entity::find().all(&t.db).await.unwrap();
    assert!(
        sized
            .iter()
            .all(|h| h.size.is_some_and(|s| s >= 1) && h.members.contains("户主"))
    );
    // Seeding again (a restart) changes nothing and still prints the logins.
    assert_eq!(demo::seed(&t.db, &settings).await.unwrap().len(), 6);
    assert_eq!(household::Entity::find().count(&t.db).await.unwrap(), 120);
    // The printed logins work.
    let server = bangfu_tests::TestServer::start(t.db.clone(), settings);
    let resp = reqwest::Client::new()
        .post(server.url("/auth/login"))
        .json(&serde_json::json!({ "username": logins[4].username, "password": demo::PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
}
db_test!(the_demo_county_is_complete_and_seeds_once, demo_county);
