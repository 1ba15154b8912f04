//! A household leaves pairing while a helper's device holds its visits: the real field
//! client against a real server. After the town office's exit, the device's next sync
//! sets the household apart as no longer paired, keeps its history, and a correction of
//! an earlier visit still reaches the server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use bangfu_server::db_test;
use bangfu_server::entities::visit_fact;
use bangfu_shared::visit::VisitBody;
use bangfu_shared::{Role, VisitKind};
use bangfu_tests::scenario::HELPER;
use bangfu_tests::{FIXTURE, TestDb, World, client_logged_in, enroll_directly, office, quick_sync};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

async fn exit_then_correct(t: &TestDb) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    w.import_ok(&county, "", FIXTURE.as_bytes().to_vec()).await;
    enroll_directly(t, &w, HELPER).await;
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = client_logged_in(&w, dir.path(), HELPER, "测试终端").await;
    let now = chrono::Utc::now;
    let mine = c.households(now()).await.unwrap();
    let h = mine[0].detail.summary.id;
    let mut body = VisitBody::new(VisitKind::Phone, now());
    body.notes = Some("电话了解近况".into());
    let call = c
        .record_visit(h, body, None, None, now())
        .await
        .unwrap()
        .record
        .id;
    c.sync(&quick_sync(3), &|_| {}).await.unwrap();

    // The town's households leave pairing from today.
    let today = bangfu_tests::china_today();
    let (status, done) = w
        .post_json(
            Some(&county),
            &format!("/households/{h}/exit"),
            &serde_json::json!({ "effective_from": today, "reason": "脱贫退出" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");

    c.sync(&quick_sync(3), &|_| {}).await.unwrap();
    let current = c.households(now()).await.unwrap();
    assert!(current.iter().all(|x| x.detail.summary.id != h));
    let ended = c.ended_households().await.unwrap();
    let gone = ended
        .iter()
        .find(|x| x.detail.summary.id == h)
        .expect("kept on the device as no longer paired");
    assert_eq!(
        gone.detail.summary.head_name,
        mine[0].detail.summary.head_name
    );

    // A visit recorded by mistake is still withdrawn after the exit, and the server
    // applies it.
    c.void_visit(call, "重复录入", now()).await.unwrap();
    let report = c.sync(&quick_sync(3), &|_| {}).await.unwrap();
    assert!(report.rejected.is_empty(), "{report:?}");
    let fact = visit_fact::Entity::find()
        .filter(visit_fact::Column::RecordId.eq(call.to_string()))
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert!(fact.voided, "the void reached the server");
}
db_test!(
    a_device_keeps_a_household_that_left_pairing_and_its_corrections_sync,
    exit_then_correct
);
