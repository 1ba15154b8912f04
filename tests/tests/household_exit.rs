//! A household leaves pairing (已脱贫, or removed from the ledger): the town office ends
//! its pairings from a date, its helpers' devices learn the end at their next pull, and the
//! next quarter's ledger may pair its helper with a new household without being refused
//! for the helper still counting as taken.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use bangfu_server::db_test;
use bangfu_shared::Role;
use bangfu_tests::scenario::Field;
use bangfu_tests::{FIXTURE, TestDb, china_today as today, office};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The fixture ledger with 田晓东's row replaced by a new household, paired with the same
/// first and second helpers.
fn ledger_with_new_household() -> Vec<u8> {
    FIXTURE
        .lines()
        .map(|l| {
            if l.starts_with("1,田晓东,") {
                "1,田新民,东城镇东城河口村,因病,医疗救助,13900000001,黄志强,市住建局 主任科员,15907579383,孔玉梅,村委会主任,18893287921".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        .into_bytes()
}

async fn exit(f: &Field, token: &str, household: i64, body: Value) -> (StatusCode, Value) {
    f.w.post_json(Some(token), &format!("/households/{household}/exit"), &body)
        .await
}

db_test!(a_household_leaves_pairing_from_a_date, leaves);
async fn leaves(t: &TestDb) {
    let f = Field::two_towns(t, |_| {}).await;
    let h = f.household;
    let (_, detail) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    let town = detail["town"]["id"].as_i64().unwrap();
    let (_, other) =
        f.w.get(
            Some(&f.county),
            &format!("/households/{}", f.other_town().household),
        )
        .await;
    office(t, &f.w, "dongcheng", Role::TownOffice, town).await;
    office(
        t,
        &f.w,
        "xigang",
        Role::TownOffice,
        other["town"]["id"].as_i64().unwrap(),
    )
    .await;
    let dongcheng = f.w.login("dongcheng").await;
    let xigang = f.w.login("xigang").await;
    let from = today();
    let good = json!({ "effective_from": from, "reason": "脱贫退出" });

    // Before: the next quarter's ledger pairing 黄志强 with a new household is refused,
    // because he is still taken by 田晓东.
    let query = format!("/ledger/import?effective_from={from}&filed_on=2020-01-01");
    let (status, refused) =
        f.w.post_bytes(&f.county, &query, ledger_with_new_household())
            .await;
    assert_ne!(status, StatusCode::OK, "{refused}");
    assert!(refused.to_string().contains("最多结对"), "{refused}");

    // Who may not, and what is not accepted.
    let (status, _) = exit(&f, &f.token, h, good.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a helper may not");
    let (status, _) = exit(&f, &xigang, h, good.clone()).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another town's office does not see it"
    );
    let (status, body) = exit(
        &f,
        &dongcheng,
        h,
        json!({ "effective_from": from, "reason": " " }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("reason"), "{body}");
    let last_year = from - chrono::Duration::days(400);
    let (status, body) = exit(
        &f,
        &dongcheng,
        h,
        json!({ "effective_from": last_year, "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("effective_from"), "{body}");
    let (_, still) = f.w.get(Some(&f.token), "/households").await;
    assert!(
        still["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == h),
        "nothing changed by the refused requests"
    );

    // The town office takes it out; the helper's next pull drops it.
    let (_, first) = f.w.get(Some(&f.token), "/sync/pull?cursor=0").await;
    let cursor = first["cursor"].as_i64().unwrap();
    let (status, done) = exit(&f, &dongcheng, h, good.clone()).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "exited");
    let pairings = done["pairings"].as_array().unwrap();
    assert!(
        pairings.iter().all(|p| p["valid_to"] == json!(from)),
        "every pairing ends on the date: {pairings:?}"
    );
    let (_, pull) =
        f.w.get(Some(&f.token), &format!("/sync/pull?cursor={cursor}"))
            .await;
    // The device learns the real end: the household comes (for a quarter) with its
    // pairings ended on the date, and the helper's own list no longer has it.
    let households = pull["households"].as_array().expect("the ledger changed");
    let ended = households
        .iter()
        .find(|x| x["id"] == h)
        .unwrap_or_else(|| panic!("{households:?}"));
    assert!(
        ended["pairings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["valid_to"] == json!(from)),
        "{ended}"
    );
    let (_, listed) = f.w.get(Some(&f.token), "/households").await;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["id"] != h),
        "{listed}"
    );
    let (status, _) = exit(&f, &dongcheng, h, good).await;
    assert_eq!(status, StatusCode::CONFLICT, "once only");

    // The town's unchanged spreadsheet, still listing the household, does not pair it
    // again: it is named in the report's notices.
    let unchanged = format!("/ledger/import?effective_from={from}&filed_on=2020-01-01");
    let (status, report) =
        f.w.post_bytes(&f.county, &unchanged, FIXTURE.as_bytes().to_vec())
            .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["pairings_started"], 0, "{report}");
    assert!(
        report["notices"].to_string().contains("已退出结对"),
        "{report}"
    );
    let (_, after) = f.w.get(Some(&f.token), "/households").await;
    assert!(
        after["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["id"] != h),
        "{after}"
    );

    // Now the same ledger imports: the helper is free for the new household.
    let (status, report) =
        f.w.post_bytes(&f.county, &query, ledger_with_new_household())
            .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let (_, mine) = f.w.get(Some(&f.token), "/households").await;
    let names: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["head_name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"田新民") && !names.contains(&"田晓东"),
        "{names:?}"
    );
}

db_test!(
    a_household_that_returns_is_paired_by_the_next_import,
    returns
);
async fn returns(t: &TestDb) {
    let f = Field::new(t).await;
    let h = f.household;
    let (_, detail) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    office(
        t,
        &f.w,
        "dongcheng",
        Role::TownOffice,
        detail["town"]["id"].as_i64().unwrap(),
    )
    .await;
    let dongcheng = f.w.login("dongcheng").await;
    let rejoin = |token: String| {
        let path = format!("/households/{h}/rejoin");
        let w = &f.w;
        async move {
            w.post_json(Some(&token), &path, &json!({ "reason": "因病返贫" }))
                .await
        }
    };
    let (status, _) = rejoin(dongcheng.clone()).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a paired household has not left"
    );
    // An exit set for next month cannot be undone by a rejoin before it takes effect;
    // the office moves it to today instead.
    let later = today() + chrono::Duration::days(30);
    let (status, _) = exit(
        &f,
        &dongcheng,
        h,
        json!({ "effective_from": later, "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = rejoin(dongcheng.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains(&later.to_string()), "{body}");
    // Moved later it is refused, and told so truly: the exit is filed, not done.
    let (status, body) = exit(
        &f,
        &dongcheng,
        h,
        json!({ "effective_from": later + chrono::Duration::days(1), "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("an exit from {later} is already filed")),
        "{body}"
    );
    let (status, _) = exit(
        &f,
        &dongcheng,
        h,
        json!({ "effective_from": today(), "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = rejoin(f.token.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a helper may not");
    let (status, back) = rejoin(dongcheng.clone()).await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["status"], "returned");

    // The town's spreadsheet still lists it: the next import pairs its helpers again.
    let (status, report) =
        f.w.post_bytes(&f.county, "/ledger/import", FIXTURE.as_bytes().to_vec())
            .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["pairings_started"], 2, "{report}");
    let (_, mine) = f.w.get(Some(&f.token), "/households").await;
    assert!(
        mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == h),
        "{mine}"
    );
}
