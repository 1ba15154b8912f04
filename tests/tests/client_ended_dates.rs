//! A household leaves pairing and the helper's device learns the real end date: the
//! server keeps a household whose pairing with the helper ended in the helper's device
//! list for a quarter, with its pairing history, so the device goes by the office's
//! `valid_to` rather than by the day it noticed. Real field client, real server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use bangfu_client::ClientError;
use bangfu_client::draft::VisitDraft;
use bangfu_client::i18n::Lang;
use bangfu_server::db_test;
use bangfu_server::entities::{pairing, visit_fact};
use bangfu_shared::visit::VisitBody;
use bangfu_shared::{Role, VisitKind};
use bangfu_tests::scenario::{Field, HELPER};
use bangfu_tests::{
    FIXTURE, TestDb, World, china_today as today, client_logged_in, enroll_directly, office,
    quick_sync,
};
use reqwest::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

/// Noon (China) of `day`, in UTC.
fn noon(day: chrono::NaiveDate) -> chrono::DateTime<chrono::Utc> {
    day.and_hms_opt(4, 0, 0).unwrap().and_utc()
}

async fn exit_today(w: &World, county: &str, h: i64) {
    let (status, done) = w
        .post_json(
            Some(county),
            &format!("/households/{h}/exit"),
            &json!({ "effective_from": today(), "reason": "脱贫退出" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
}

/// The ids of the households in a snapshot or pull answer.
fn ids(households: &Value) -> Vec<i64> {
    households
        .as_array()
        .expect("a household list")
        .iter()
        .map(|h| h["id"].as_i64().unwrap())
        .collect()
}

async fn device_learns_the_real_end(t: &TestDb) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    // The pairings began two months ago (a county office may date a ledger back).
    let began = today() - chrono::Duration::days(60);
    let query = format!("?effective_from={began}&filed_on=2020-01-01");
    w.import_ok(&county, &query, FIXTURE.as_bytes().to_vec())
        .await;
    enroll_directly(t, &w, HELPER).await;
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = client_logged_in(&w, dir.path(), HELPER, "测试终端").await;
    let now = chrono::Utc::now;
    let mine = c.households(now()).await.unwrap();
    let h = mine[0].detail.summary.id;
    let yesterday = today().pred_opt().unwrap();
    let since = mine[0]
        .detail
        .pairings
        .iter()
        .map(|p| p.valid_from)
        .min()
        .unwrap();
    assert!(since < yesterday, "the fixture pairing began before");

    // A draft the helper starts today, before syncing.
    let mut draft = VisitDraft::new(h, VisitKind::Phone, now());
    draft.problems = "电话回访".into();
    c.save_draft(&draft).await.unwrap();

    // The office ends the household's pairings from today; the device syncs later.
    exit_today(&w, &county, h).await;
    c.sync(&quick_sync(3), &|_| {}).await.unwrap();

    let current = c.households(now()).await.unwrap();
    assert!(current.iter().all(|x| x.detail.summary.id != h));
    let ended = c.ended_households().await.unwrap();
    let gone = ended
        .iter()
        .find(|x| x.detail.summary.id == h)
        .expect("the device shows the household as ended");
    assert_eq!(gone.ended_on, Some(today()), "the real end date");
    assert_eq!(gone.unpaired_since, today());
    assert_eq!(
        gone.periods.last().map(|(_, to)| *to),
        Some(yesterday),
        "the pairing's last day is the day before the exit"
    );
    assert_eq!(
        gone.shown_end(Lang::Zh),
        format!("{}起不再结对", today()),
        "shown as the real end, not as the day the device noticed"
    );

    // The draft, dated on the end day, is refused with the usual message and kept.
    let err = c.complete_draft(&draft, now()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::OutsidePairing { household_id, .. } if household_id == h),
        "{err:?}"
    );
    let zh = Lang::Zh.error(&err);
    assert!(
        zh.contains("户已结束结对") && zh.contains(&yesterday.to_string()),
        "{zh}"
    );
    assert_eq!(c.drafts().await.unwrap().len(), 1, "the draft is kept");
    let on_the_day = c
        .record_visit(
            h,
            VisitBody::new(VisitKind::Phone, now()),
            None,
            None,
            now(),
        )
        .await;
    assert!(
        matches!(on_the_day, Err(ClientError::OutsidePairing { .. })),
        "{on_the_day:?}"
    );

    // A call of yesterday, within the pairing, signs and reaches the server.
    let mut body = VisitBody::new(VisitKind::Phone, noon(yesterday));
    body.notes = Some("电话了解近况".into());
    let call = c
        .record_visit(h, body, None, None, now())
        .await
        .expect("a visit within the pairing is signed")
        .record
        .id;
    let report = c.sync(&quick_sync(3), &|_| {}).await.unwrap();
    assert!(report.rejected.is_empty(), "{report:?}");
    let fact = visit_fact::Entity::find()
        .filter(visit_fact::Column::RecordId.eq(call.to_string()))
        .one(&t.db)
        .await
        .unwrap();
    assert!(fact.is_some(), "the visit reached the server");

    // Still ended after another sync (the server lists it, the device keeps the date).
    c.sync(&quick_sync(3), &|_| {}).await.unwrap();
    let again = c.ended_households().await.unwrap();
    let gone = again.iter().find(|x| x.detail.summary.id == h).unwrap();
    assert_eq!(gone.ended_on, Some(today()));
}
db_test!(
    a_device_learns_the_real_end_of_a_pairing_and_refuses_visits_after_it,
    device_learns_the_real_end
);

async fn recently_ended_for_a_quarter(t: &TestDb) {
    let f = Field::new(t).await;
    let h = f.household;
    let (_, me) = f.w.get(Some(&f.token), "/me").await;
    let helper_id = me["helper"]["id"].as_i64().unwrap();

    // Another helper of the county, never paired with the household.
    let other = "18146100330";
    enroll_directly(t, &f.w, other).await;
    let other = f.w.login(other).await;
    let (_, other_me) = f.w.get(Some(&other), "/me").await;
    let other_id = other_me["helper"]["id"].as_i64().unwrap();
    let (_, detail) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    assert!(
        detail["pairings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["helper"]["id"] != other_id),
        "{detail}"
    );

    exit_today(&f.w, &f.county, h).await;

    // The helper's device list still has it, with the real end; nothing else widens.
    let (status, snap) = f.w.get(Some(&f.token), "/me/snapshot").await;
    assert_eq!(status, StatusCode::OK, "{snap}");
    assert!(ids(&snap["households"]).contains(&h), "{snap}");
    let listed = snap["households"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == h)
        .unwrap();
    assert!(
        listed["pairings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["helper"]["id"] == helper_id)
            .all(|p| p["valid_to"] == json!(today())),
        "{listed}"
    );
    let (_, pull) = f.w.get(Some(&f.token), "/sync/pull?cursor=0").await;
    assert!(ids(&pull["households"]).contains(&h), "{pull}");
    // The household itself reads as the device lists it (its second helper still signs
    // the quarter's sheet with it); the list of current households leaves it out.
    let (status, _) = f.w.get(Some(&f.token), &format!("/households/{h}")).await;
    assert_eq!(status, StatusCode::OK, "read as the device lists it");
    let (_, list) = f.w.get(Some(&f.token), "/households").await;
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["id"] != h),
        "{list}"
    );

    // Another helper never sees it.
    let (status, _) = f.w.get(Some(&other), &format!("/households/{h}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, snap) = f.w.get(Some(&other), "/me/snapshot").await;
    assert!(!ids(&snap["households"]).contains(&h), "{snap}");
    let (_, pull) = f.w.get(Some(&other), "/sync/pull?cursor=0").await;
    assert!(!ids(&pull["households"]).contains(&h), "{pull}");

    // Ended 91 days ago: still listed; 92 days ago: a quarter has passed, gone.
    let set_end = |days: i64| {
        let db = &t.db;
        async move {
            pairing::Entity::update_many()
                .col_expr(
                    pairing::Column::ValidTo,
                    Expr::value(Some(today() - chrono::Duration::days(days))),
                )
                .filter(pairing::Column::HouseholdId.eq(h))
                .filter(pairing::Column::HelperId.eq(helper_id))
                .exec(db)
                .await
                .unwrap();
        }
    };
    set_end(91).await;
    let (_, snap) = f.w.get(Some(&f.token), "/me/snapshot").await;
    assert!(ids(&snap["households"]).contains(&h), "{snap}");
    set_end(92).await;
    let (_, snap) = f.w.get(Some(&f.token), "/me/snapshot").await;
    assert!(!ids(&snap["households"]).contains(&h), "{snap}");
    let (_, pull) = f.w.get(Some(&f.token), "/sync/pull?cursor=0").await;
    assert!(!ids(&pull["households"]).contains(&h), "{pull}");
    let (status, _) = f.w.get(Some(&f.token), &format!("/households/{h}")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a quarter after, no longer read"
    );
}
db_test!(
    a_helper_sees_an_ended_household_for_a_quarter_and_no_other_helper_does,
    recently_ended_for_a_quarter
);

/// QA s25b F1: a first helper replaced on a household keeps it on their list for a
/// quarter, but reads neither their successor (name, phone, pairing) nor the visits the
/// successor made after them; the successor and the office read everything.
async fn replaced_helper_reads_no_successor(t: &TestDb) {
    use bangfu_tests::field::Device;
    let f = Field::new(t).await;
    let h = f.household;
    let successor = "19099990000";
    pairing::Entity::update_many()
        .col_expr(
            pairing::Column::ValidFrom,
            Expr::value(today() - chrono::Duration::days(60)),
        )
        .filter(pairing::Column::HouseholdId.eq(h))
        .exec(&t.db)
        .await
        .unwrap();
    let handed_over = FIXTURE.replacen(
        "黄志强,市住建局 主任科员,15907579383",
        "韩新来,市统计局 科员,19099990000",
        1,
    );
    f.w.import_ok(
        &f.county,
        &format!("?effective_from={}&filed_on=2020-01-01", today()),
        handed_over.into_bytes(),
    )
    .await;
    enroll_directly(t, &f.w, successor).await;
    let token = f.w.login(successor).await;
    let (_, me) = f.w.get(Some(&token), "/me").await;
    let successor_id = me["helper"]["id"].as_i64().unwrap();
    let mut device = Device::register(&f.w, &token, successor_id).await;
    let call = device.phone_call(h);
    let (status, acks) =
        f.w.post_json(Some(&token), "/sync/push", &json!({ "records": [call] }))
            .await;
    assert_eq!(status, StatusCode::OK, "{acks}");
    assert_eq!(acks["acks"][0]["status"], "accepted", "{acks}");

    let shows_successor = |v: &Value| v.to_string().contains(successor);
    let (status, detail) = f.w.get(Some(&f.token), &format!("/households/{h}")).await;
    assert_eq!(status, StatusCode::OK, "still on the former helper's list");
    assert!(!shows_successor(&detail), "{detail}");
    assert!(detail["first_helper"].is_null(), "{detail}");
    let (_, snap) = f.w.get(Some(&f.token), "/me/snapshot").await;
    assert!(!shows_successor(&snap), "{snap}");
    let q = bangfu_shared::report::Quarter::of(today());
    let drill = format!("/reports/records?household={h}&quarter={q}");
    let (status, lines) = f.w.get(Some(&f.token), &drill).await;
    assert_eq!(status, StatusCode::OK, "{lines}");
    assert!(
        lines
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["helper_id"] != successor_id),
        "{lines}"
    );
    // The successor and the office read the handover and the visit.
    let (_, detail) = f.w.get(Some(&token), &format!("/households/{h}")).await;
    assert!(shows_successor(&detail), "{detail}");
    for reader in [&token, &f.county] {
        let (_, lines) = f.w.get(Some(reader), &drill).await;
        assert!(
            lines
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["helper_id"] == successor_id),
            "{lines}"
        );
    }
}
db_test!(
    a_replaced_helper_reads_neither_the_successor_nor_their_visits,
    replaced_helper_reads_no_successor
);
