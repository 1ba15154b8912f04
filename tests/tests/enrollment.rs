//! Enrollment codes end to end: issuing them never loses the codes already printed by
//! accident. Every test runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::db_test;
use bangfu_shared::Role;
use bangfu_tests::{FIXTURE, TestDb, World, office};
use reqwest::StatusCode;
use serde_json::json;

/// A county office that has imported the fixture (24 helpers, none enrolled).
async fn imported(t: &TestDb) -> (World, String) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let token = w.login("county").await;
    w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    (w, token)
}

async fn enroll(w: &World, phone: &str, code: &str) -> StatusCode {
    let body = json!({ "username": phone, "code": code, "new_password": "a good password" });
    w.post_json(None, "/auth/enroll", &body).await.0
}

async fn bad_format_changes_nothing(t: &TestDb) {
    let (w, token) = imported(t).await;
    let (status, codes) = w
        .post_json(Some(&token), "/enrollment/codes?format=json", &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{codes}");
    let printed = codes.as_array().unwrap().clone();
    assert!(!printed.is_empty(), "{codes}");

    // A mistyped format is refused before any code is replaced.
    let (status, body) = w
        .post_json(Some(&token), "/enrollment/codes?format=xlsx", &json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Every printed code still works.
    for c in printed.iter().take(3) {
        let phone = c["phone"].as_str().unwrap();
        let code = c["code"].as_str().unwrap();
        assert_eq!(enroll(&w, phone, code).await, StatusCode::OK, "{phone}");
    }
}
db_test!(
    a_bad_format_issues_no_codes_and_keeps_the_printed_ones,
    bad_format_changes_nothing
);
