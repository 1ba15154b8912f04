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

/// A copy of the database does not give away the pending codes: each is stored salted
/// and slow (argon2id), never as a fast digest of the code; a code issued by an earlier
/// version (plain SHA-256) still works until it expires.
async fn codes_are_stored_slow_and_salted(t: &TestDb) {
    use bangfu_server::entities::account;
    use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
    let (w, token) = imported(t).await;
    let (status, codes) = w
        .post_json(Some(&token), "/enrollment/codes?format=json", &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{codes}");
    let printed = codes.as_array().unwrap();
    let account_of = |phone: String| async move {
        account::Entity::find()
            .filter(account::Column::Username.eq(phone))
            .one(&t.db)
            .await
            .unwrap()
            .unwrap()
    };
    let (first, second) = (&printed[0], &printed[1]);
    let a = account_of(first["phone"].as_str().unwrap().to_string()).await;
    let b = account_of(second["phone"].as_str().unwrap().to_string()).await;
    let (ha, hb) = (
        a.enrollment_code_hash.clone().unwrap(),
        b.enrollment_code_hash.clone().unwrap(),
    );
    assert!(
        ha.starts_with("$argon2id$") && hb.starts_with("$argon2id$"),
        "{ha}"
    );
    let code = first["code"].as_str().unwrap();
    let plain =
        bangfu_server::services::auth::digest(&bangfu_server::services::auth::normalize_code(code));
    assert!(!ha.contains(&plain), "no fast digest of the code is stored");
    assert_eq!(
        enroll(&w, a.username.as_str(), "ZZZZZ-ZZZZZ").await,
        StatusCode::UNAUTHORIZED
    );
    // Typed by hand: lower case and without the dash.
    let typed = code.replace('-', "").to_lowercase();
    assert_eq!(enroll(&w, &a.username, &typed).await, StatusCode::OK);

    // A code printed by the previous version, stored as its SHA-256.
    let legacy = "ABCDE-23456";
    let mut active = b.into_active_model();
    active.enrollment_code_hash = Set(Some(bangfu_server::services::auth::digest("ABCDE23456")));
    let b = active.update(&t.db).await.unwrap();
    assert_eq!(enroll(&w, &b.username, legacy).await, StatusCode::OK);
}
db_test!(
    enrollment_codes_are_stored_slow_and_salted,
    codes_are_stored_slow_and_salted
);
