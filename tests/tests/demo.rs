//! The demo county a newcomer gets from `bangfu-server demo`.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::db_test;
use bangfu_server::demo;
use bangfu_tests::{TestDb, login_at, send_json, test_settings};
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
    // Past quarters are filled in: records were pushed, most count, some do not.
    use bangfu_server::entities::{record, visit_fact};
    let records = record::Entity::find().count(&t.db).await.unwrap();
    assert!(records > 500, "{records}");
    let facts = visit_fact::Entity::find().all(&t.db).await.unwrap();
    assert!(
        facts.iter().any(|f| f.photo_count == 0 && f.kind == "home"),
        "a home visit without a photo"
    );
    assert!(
        facts
            .iter()
            .all(|f| f.photos_complete || f.photo_count == 0),
        "every uploaded photo arrived"
    );
    // Seeding again (a restart) changes nothing and still prints the logins.
    assert_eq!(demo::seed(&t.db, &settings).await.unwrap().len(), 6);
    assert_eq!(household::Entity::find().count(&t.db).await.unwrap(), 120);
    // The printed logins work.
    let server = bangfu_tests::TestServer::start(t.server_pool().await, settings);
    let resp = reqwest::Client::new()
        .post(server.url("/auth/login"))
        .json(&serde_json::json!({ "username": logins[4].username, "password": demo::PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    // The county report of the last past quarter has every town with windows judged.
    let token = login_at(&server, "county", demo::PASSWORD).await;
    let report: serde_json::Value = send_json(
        reqwest::Client::new()
            .get(server.url("/reports/county?quarter=2026Q3"))
            .bearer_auth(&token),
    )
    .await;
    let towns = report["towns"].as_array().unwrap();
    assert_eq!(towns.len(), 2, "{report}");
    for town in towns {
        let rate = town["rate"].as_f64().unwrap();
        assert!(
            town["required_windows"].as_u64().unwrap() > 100 && rate > 0.5 && rate < 1.0,
            "{town}"
        );
    }
    // The same report from the server's command line.
    let out = std::process::Command::new(bangfu_tests::server_binary())
        .args(["--database-url", &t.url, "--data-dir"])
        .arg(t.dir())
        .args([
            "--log",
            "warn",
            "report",
            "county",
            "--county",
            demo::COUNTY,
            "--quarter",
            "2026Q3",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(
        csv.contains("排名,镇街,户数,应考勤周期数,到位周期数,到位率"),
        "{csv}"
    );
    assert!(csv.contains("东城镇") && csv.contains("西港镇"));
}
db_test!(the_demo_county_is_complete_and_seeds_once, demo_county);

/// QA s30c N5: a demo county left half-made by a run that stopped (its visits never
/// written) is not taken for done: the next run says what to do.
async fn half_made(t: &TestDb) {
    let settings = test_settings(&t.url, t.dir());
    let level = bangfu_shared::JurisdictionLevel::County;
    bangfu_server::services::jurisdictions::ensure(&t.db, level, demo::COUNTY, None)
        .await
        .unwrap();
    let err = demo::seed(&t.db, &settings).await.unwrap_err().to_string();
    assert!(
        err.contains("half-made") && err.contains("run demo again"),
        "{err}"
    );
}
db_test!(a_half_made_demo_is_not_taken_for_done, half_made);
