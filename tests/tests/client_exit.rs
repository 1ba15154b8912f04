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

/// The fixture ledger imported by a county office (its token), and the helper's
/// client logged in (its store in `dir`).
async fn field(t: &TestDb, dir: &std::path::Path) -> (World, String, bangfu_client::Client) {
    field_paired(t, dir, "").await
}

/// [`field`] with the ledger imported by `query` (when its pairings begin).
async fn field_paired(
    t: &TestDb,
    dir: &std::path::Path,
    query: &str,
) -> (World, String, bangfu_client::Client) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    w.import_ok(&county, query, FIXTURE.as_bytes().to_vec())
        .await;
    enroll_directly(t, &w, HELPER).await;
    let (c, _) = client_logged_in(&w, dir, HELPER, "测试终端").await;
    (w, county, c)
}

/// The county office takes household `h` out of pairing from `day`.
async fn exit_on(w: &World, county: &str, h: i64, day: chrono::NaiveDate) {
    let (status, done) = w
        .post_json(
            Some(county),
            &format!("/households/{h}/exit"),
            &serde_json::json!({ "effective_from": day, "reason": "脱贫退出" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
}

async fn exit_then_correct(t: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let (w, county, c) = field(t, dir.path()).await;
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
    exit_on(&w, &county, h, today).await;

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

/// QA s22e F3: a visit signed offline on the day the household left pairing (the
/// device had not heard of the exit yet) is synced, but the server does not count it
/// (走访时未与该户结对; `attendance` tests that judgement). Once the sync brings the
/// exit, the device says so too: the visit carries the not-counted flag, the sync
/// reports it, and it is not the household's last call.
async fn offline_visit_after_exit(t: &TestDb) {
    use bangfu_client::flags::Flag;
    let dir = tempfile::tempdir().unwrap();
    let (w, county, c) = field(t, dir.path()).await;
    let now = chrono::Utc::now;
    let h = c.households(now()).await.unwrap()[0].detail.summary.id;
    c.sync(&quick_sync(3), &|_| {}).await.unwrap();
    exit_on(&w, &county, h, bangfu_tests::china_today()).await;

    let mut body = VisitBody::new(VisitKind::Phone, now());
    body.notes = Some("电话了解近况".into());
    let call = c
        .record_visit(h, body, None, None, now())
        .await
        .expect("the device does not know of the exit yet")
        .record
        .id;
    let report = c.sync(&quick_sync(3), &|_| {}).await.unwrap();
    assert!(report.rejected.is_empty(), "{report:?}");
    assert_eq!(report.not_counted, 1, "{report:?}");
    let visits = c.visits(Some(h), 10).await.unwrap();
    let visit = visits.iter().find(|v| v.visit_id == call).unwrap();
    assert_eq!(visit.sync, bangfu_client::store::SyncState::Synced);
    assert_eq!(visit.flags, [Flag::OutsidePairing]);
    let contacts = c
        .store()
        .last_contacts(now() + chrono::Duration::hours(1), &[])
        .await
        .unwrap();
    assert!(!contacts.contains_key(&h), "{contacts:?}");

    let fact = visit_fact::Entity::find()
        .filter(visit_fact::Column::RecordId.eq(call.to_string()))
        .one(&t.db)
        .await
        .unwrap();
    assert!(fact.is_some(), "stored on the server, once");
}
db_test!(
    a_visit_signed_offline_after_an_exit_shows_as_not_counted,
    offline_visit_after_exit
);

/// QA H1/s20b H3 on the device: in a county whose policy judges the part of a window
/// before the household's exit (`exit_cuts`), the helper's list has the windows the exit
/// cuts due by the day before it, as the server will judge them; the pairing the server
/// sends says the exit ended it.
async fn due_before_exit(t: &TestDb) {
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().unwrap();
    let (w, county, c) = field(t, dir.path()).await;
    let h = c.households(chrono::Utc::now()).await.unwrap()[0]
        .detail
        .summary
        .id;
    let today = bangfu_tests::china_today();
    let mut policy = bangfu_shared::PolicyPreset::Laizhou2018.policy();
    policy.exit_cuts.min_days_held = 15;
    bangfu_server::services::policy::backfill(
        &t.db,
        &bangfu_server::services::Caller::system(),
        w.county_id,
        None,
        today,
        &policy,
    )
    .await
    .unwrap();
    exit_on(&w, &county, h, today).await;
    // As if paired since 2026 and the exit filed for 2027-03-20 (an exit is dated today
    // at the earliest; the device is judged below on 2027-03-05).
    for sql in [
        format!(
            "UPDATE pairings SET valid_from = '2026-01-01', valid_to = '2027-03-20' WHERE household_id = {h}"
        ),
        format!(
            "UPDATE household_exits SET effective_from = '2027-03-20' WHERE household_id = {h}"
        ),
    ] {
        t.db.execute_unprepared(&sql).await.unwrap();
    }
    c.sync(&quick_sync(3), &|_| {}).await.unwrap();
    let on = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2027, 3, 5, 4, 0, 0).unwrap();
    let list = c.households(on).await.unwrap();
    let row = list
        .iter()
        .find(|x| x.detail.summary.id == h)
        .unwrap_or_else(|| panic!("still paired on 03-05"));
    assert!(
        row.detail.pairings.iter().all(|p| p.ended_by_exit),
        "{:?}",
        row.detail.pairings
    );
    let due: Vec<(VisitKind, chrono::NaiveDate)> =
        row.due.iter().map(|d| (d.kind, d.due_by)).collect();
    let by = chrono::NaiveDate::from_ymd_opt(2027, 3, 19).unwrap();
    // The March–April home window and March's call window, held 19 days before the exit.
    assert_eq!(due, [(VisitKind::Home, by), (VisitKind::Phone, by)]);
}
db_test!(
    a_window_the_exit_cuts_is_due_before_the_exit_where_the_county_judges_it,
    due_before_exit
);

/// QA s23b F2: a change of helper dated before today takes the outgoing helper's
/// visits since its day out of the count; the import's report says how many, rather
/// than the sheet showing it later.
async fn change_dated_back_over_visits(t: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let (w, county, c) = field_paired(
        t,
        dir.path(),
        "?effective_from=2025-01-01&filed_on=2024-10-01",
    )
    .await;
    let now = chrono::Utc::now;
    let h = c
        .households(now())
        .await
        .unwrap()
        .into_iter()
        .find(|x| x.detail.summary.head_name == "田晓东")
        .unwrap()
        .detail
        .summary
        .id;
    let mut body = VisitBody::new(VisitKind::Phone, now());
    body.notes = Some("电话了解近况".into());
    c.record_visit(h, body.clone(), None, None, now())
        .await
        .unwrap();
    // A second call the same day never counted: the notice counts contacts (QA s23d F6).
    body.notes = Some("再次电话确认".into());
    c.record_visit(h, body, None, None, now()).await.unwrap();
    c.sync(&quick_sync(3), &|_| {}).await.unwrap();

    let changed = bangfu_tests::FIXTURE.replacen(
        "黄志强,市住建局 主任科员,15907579383",
        "陈新华,市农业局 科员,13800138000",
        1,
    );
    let yesterday = bangfu_tests::china_today() - chrono::Duration::days(1);
    let report = w
        .import_ok(
            &county,
            &format!("?effective_from={yesterday}&filed_on={yesterday}&retroactive=true"),
            changed.into_bytes(),
        )
        .await;
    assert_eq!(report["pairings_ended"], 1, "{report}");
    assert!(
        report["notices"].to_string().contains(&format!(
            "原帮扶责任人在生效日期{yesterday}及以后已记录的1次走访"
        )),
        "{report}"
    );
    // And whom the month's call it cut is left to (QA s23b F4): no one, by default.
    let (start, end) = bangfu_shared::policy::window_of(yesterday, 1);
    let cut = format!(
        "第一帮扶责任人电话（{}~{}）：1户原、新帮扶责任人均不负责（不考核）",
        start.format("%m-%d"),
        end.format("%m-%d")
    );
    assert_eq!(
        report["notices"].to_string().contains(&cut),
        start != yesterday,
        "{report}"
    );
}
db_test!(
    a_change_dated_back_over_recorded_visits_says_they_no_longer_count,
    change_dated_back_over_visits
);
