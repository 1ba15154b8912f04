//! The rates the town and county reports give in JSON: `null` where nothing was required
//! (the files print —), never 1.0; and a quarter that has not begun is refused, not
//! answered as data. On SQLite and, with TEST_DATABASE_URL, on PostgreSQL.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::db_test;
use bangfu_shared::Role;
use bangfu_shared::report::Quarter;
use bangfu_tests::{FIXTURE, TestDb, World, china_today, office};
use reqwest::StatusCode;
use serde_json::Value;

/// Every rate of a report's areas and total, with what was required.
fn rates(report: &Value, areas: &str) -> Vec<(u64, Value)> {
    let mut out: Vec<(u64, Value)> = report[areas]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["required_windows"].as_u64().unwrap(), a["rate"].clone()))
        .collect();
    out.push((
        report["total"]["required_windows"].as_u64().unwrap(),
        report["total"]["rate"].clone(),
    ));
    out
}

db_test!(
    nothing_required_is_no_rate_and_future_quarters_are_refused,
    rates_and_quarters
);
async fn rates_and_quarters(t: &TestDb) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let token = w.login("county").await;
    // Paired from today: no window of this quarter is covered in full yet, so nothing is
    // required of anyone.
    let today = china_today();
    let report = w
        .import_ok(
            &token,
            &format!("?effective_from={today}&filed_on={today}"),
            FIXTURE.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(report["households_created"], 20, "{report}");
    let q = Quarter::of(today);

    let (status, county) = w
        .get(Some(&token), &format!("/reports/county?quarter={q}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{county}");
    let towns = county["towns"].as_array().unwrap();
    assert_eq!(towns.len(), 1, "{county}");
    assert!(towns[0]["households"].as_u64().unwrap() > 0, "{county}");
    assert!(towns[0].get("rank").is_none(), "unranked: {county}");
    let town_id = towns[0]["place_id"].as_i64().unwrap();
    let (status, town) = w
        .get(
            Some(&token),
            &format!("/reports/town?town={town_id}&quarter={q}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{town}");
    for (report, areas) in [(&county, "towns"), (&town, "villages")] {
        let got = rates(report, areas);
        assert!(got.len() > 1, "{report}");
        for (required, rate) in got {
            assert_eq!(required, 0, "{report}");
            assert_eq!(rate, Value::Null, "nothing required is no rate: {report}");
        }
    }
    // The files say — as before.
    let (status, csv) = w
        .get_bytes(
            &token,
            &format!("/reports/town?town={town_id}&quarter={q}&format=csv"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.contains('—'), "{csv}");
    assert!(!csv.contains("100.0%"), "{csv}");

    // A quarter that has not begun: 422 naming it, in JSON and in files.
    let next = Quarter::of(q.end().succ_opt().unwrap());
    for (path, quarter) in [
        (format!("/reports/county?quarter={next}"), next),
        (
            "/reports/county?quarter=2035Q1&format=csv".to_string(),
            "2035Q1".parse().unwrap(),
        ),
        (format!("/reports/town?town={town_id}&quarter={next}"), next),
        (
            format!("/reports/town?town={town_id}&quarter={next}&format=xlsx"),
            next,
        ),
    ] {
        let (status, body) = w.get(Some(&token), &path).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{quarter} has not begun")),
            "{path}: {body}"
        );
    }
}
