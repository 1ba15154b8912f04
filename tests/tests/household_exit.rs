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
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.to_string().contains("reason"), "{body}");
    // Not dated back: the windows already ended keep their verdict (a miss is not
    // erased by an exit and a rejoin); and not over a year ahead.
    for (day, says) in [
        (from - chrono::Duration::days(1), "before today"),
        (from + chrono::Duration::days(400), "more than a year ahead"),
        // A calendar year, not 366 days (QA s26c F7).
        (
            bangfu_tests::china_today()
                .checked_add_months(chrono::Months::new(12))
                .unwrap()
                .succ_opt()
                .unwrap(),
            "more than a year ahead",
        ),
    ] {
        let (status, body) = exit(
            &f,
            &dongcheng,
            h,
            json!({ "effective_from": day, "reason": "脱贫退出" }),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["message"].as_str().unwrap().contains(says), "{body}");
    }
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
    assert_eq!(done["exit_on"], json!(from), "{done}");
    let (status, exited) =
        f.w.get(Some(&dongcheng), "/households?status=exited&per_page=500")
            .await;
    assert_eq!(status, StatusCode::OK, "{exited}");
    let ids: Vec<&Value> = exited["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["id"])
        .collect();
    assert_eq!(
        ids,
        [&json!(h)],
        "the one household out of pairing: {exited}"
    );
    let (status, body) = f.w.get(Some(&dongcheng), "/households?status=gone").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("status"),
        "{body}"
    );
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
    // Moved to today, it is out of pairing now, though the exit it moved is still to
    // come: the lists by status say so too.
    let was = detail["status"].as_str().unwrap();
    for (status, listed) in [("exited", true), (was, false)] {
        assert_eq!(
            listed_as(&f, &dongcheng, status, h).await,
            listed,
            "{status}"
        );
    }

    let (status, _) = rejoin(f.token.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a helper may not");
    // On its first day the exit is withdrawn instead (s32d X6): a rejoin would end the
    // pairings for good, where the cancel gives them back.
    let (status, body) = rejoin(dongcheng.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("exit/cancel"),
        "{body}"
    );
    let (_, still) = f.w.get(Some(&dongcheng), &format!("/households/{h}")).await;
    assert_eq!(still["status"], "exited", "nothing changed: {still}");
    t.exit_a_day_old(h).await;
    let (status, back) = rejoin(dongcheng.clone()).await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["status"], "returned");
    assert!(back.get("exit_on").is_none(), "no exit stands: {back}");
    // The return is on record with the exits it ended (the one in effect and the one it
    // moved earlier), in the household's history and the town's list alike.
    let (_, history) =
        f.w.get(Some(&dongcheng), &format!("/households/{h}/exits"))
            .await;
    let (_, town_list) = f.w.get(Some(&dongcheng), "/exits").await;
    for exits in [&history, &town_list] {
        let exits = exits.as_array().unwrap();
        assert_eq!(exits.len(), 2, "{exits:?}");
        for e in exits {
            assert_eq!(e["rejoined_by"], "dongcheng", "{e}");
            assert_eq!(e["rejoin_reason"], "因病返贫", "{e}");
            assert!(e["rejoined_at"].is_string(), "{e}");
            assert!(e["cancelled_at"].is_null(), "{e}");
        }
    }

    // Paired again from before its return, an import would rewrite the pairings its
    // exit ended (QA s21c N4): refused, whoever imports.
    let yesterday = today() - chrono::Duration::days(1);
    let (status, body) =
        f.w.post_bytes(
            &f.county,
            &format!("/ledger/import?effective_from={yesterday}&filed_on=2020-01-01"),
            FIXTURE.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("返贫日"), "{body}");
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

    // Leaving again from a later day: it stays 返贫 until then. The exit the return
    // ended (its day still to come) does not make it read as 新识别 meanwhile.
    let again = today() + chrono::Duration::days(20);
    let (status, body) = exit(
        &f,
        &dongcheng,
        h,
        json!({ "effective_from": again, "reason": "稳定脱贫" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "returned", "{body}");
    assert_eq!(body["exit_on"], json!(again), "{body}");
    for (status, listed) in [("returned", true), ("identified", false), ("exited", false)] {
        assert_eq!(
            listed_as(&f, &dongcheng, status, h).await,
            listed,
            "{status}"
        );
    }
}

/// Whether `/households?status=` lists the household for the office.
async fn listed_as(f: &Field, token: &str, status: &str, household: i64) -> bool {
    let (code, page) =
        f.w.get(
            Some(token),
            &format!("/households?status={status}&per_page=500"),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == household)
}

async fn cancel(f: &Field, token: &str, household: i64, reason: &str) -> (StatusCode, Value) {
    f.w.post_json(
        Some(token),
        &format!("/households/{household}/exit/cancel"),
        &json!({ "reason": reason }),
    )
    .await
}

/// The pairings' ends and reasons, by pairing id, as the household's detail shows them.
fn pairing_ends(detail: &Value) -> Vec<(i64, Value, Value)> {
    let mut ends: Vec<(i64, Value, Value)> = detail["pairings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_i64().unwrap(),
                p["valid_to"].clone(),
                p["reason"].clone(),
            )
        })
        .collect();
    ends.sort_by_key(|e| e.0);
    ends
}

db_test!(an_exit_filed_for_a_later_day_is_cancelled_exactly, cancels);
async fn cancels(t: &TestDb) {
    use sea_orm::ConnectionTrait;
    let f = Field::new(t).await;
    let h = f.household;
    let (_, before) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    office(
        t,
        &f.w,
        "dongcheng",
        Role::TownOffice,
        before["town"]["id"].as_i64().unwrap(),
    )
    .await;
    let dongcheng = f.w.login("dongcheng").await;
    let (_, first) = f.w.get(Some(&f.token), "/sync/pull?cursor=0").await;
    let cursor = first["cursor"].as_i64().unwrap();

    // Filed for next month, then moved earlier with another reason.
    let later = today() + chrono::Duration::days(30);
    let sooner = today() + chrono::Duration::days(10);
    for (day, reason) in [(later, "脱贫退出"), (sooner, "迁出本县")] {
        let (status, body) = exit(
            &f,
            &dongcheng,
            h,
            json!({ "effective_from": day, "reason": reason }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, moved) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    // Until its day the household is still paired and visited: it keeps its status,
    // and says when it leaves; the lists by status agree.
    assert_eq!(moved["status"], before["status"], "{moved}");
    assert_eq!(moved["exit_on"], json!(sooner), "{moved}");
    let listed = |body: &Value| {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == h)
    };
    let (status, as_exited) =
        f.w.get(Some(&dongcheng), "/households?status=exited&per_page=500")
            .await;
    assert_eq!(status, StatusCode::OK, "{as_exited}");
    assert!(!listed(&as_exited), "not yet 已脱贫: {as_exited}");
    let was = before["status"].as_str().unwrap();
    let (_, as_before) =
        f.w.get(
            Some(&dongcheng),
            &format!("/households?status={was}&per_page=500"),
        )
        .await;
    assert!(listed(&as_before), "still {was}: {as_before}");
    // Both exits are on record; the first says the second moved it, so a sample of
    // exits to re-check counts the household's exit once.
    let moved_by = |exits: &Value| -> Vec<(Value, Value)> {
        exits
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["effective_from"].clone(), e["moved_by"].clone()))
            .collect()
    };
    let (_, exits) =
        f.w.get(Some(&dongcheng), &format!("/households/{h}/exits"))
            .await;
    let newest = exits[0]["id"].clone();
    assert_eq!(
        moved_by(&exits),
        [(json!(sooner), Value::Null), (json!(later), newest)],
        "{exits}"
    );
    assert!(
        as_before["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == json!(was)),
        "{as_before}"
    );
    assert!(
        pairing_ends(&moved)
            .iter()
            .all(|(_, to, why)| *to == json!(sooner) && *why == json!("迁出本县")),
        "{moved}"
    );

    // Still paired until then, it stays on the ledger the town exports.
    let (status, csv) = f.w.get_bytes(&f.county, "/ledger/export?format=csv").await;
    assert_eq!(status, StatusCode::OK);
    let head = before["head_name"].as_str().unwrap();
    assert!(String::from_utf8_lossy(&csv).contains(head), "{head}");

    // Who may not, and what is not accepted; nothing changes.
    let (status, _) = cancel(&f, &f.token, h, "误报").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a helper may not");
    for blank in ["  ", "\u{200b}", "误\u{0}报"] {
        let (status, body) = cancel(&f, &dongcheng, h, blank).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{blank:?}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains("reason"),
            "{body}"
        );
    }

    // The move is withdrawn first: the exit from next month stands again, as filed.
    let (status, once) = cancel(&f, &dongcheng, h, "日期填错").await;
    assert_eq!(status, StatusCode::OK, "{once}");
    assert_eq!(once["status"], before["status"], "{once}");
    assert_eq!(once["exit_on"], json!(later), "{once}");
    assert!(
        pairing_ends(&once)
            .iter()
            .all(|(_, to, why)| *to == json!(later) && *why == json!("脱贫退出")),
        "{once}"
    );
    // Then the exit itself: every pairing and the status are as before it.
    let (status, twice) = cancel(&f, &dongcheng, h, "误报脱贫").await;
    assert_eq!(status, StatusCode::OK, "{twice}");
    assert_eq!(twice["status"], before["status"], "{twice}");
    assert!(twice.get("exit_on").is_none(), "no exit stands: {twice}");
    assert_eq!(pairing_ends(&twice), pairing_ends(&before));
    let (status, body) = cancel(&f, &dongcheng, h, "误报").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("no exit"),
        "{body}"
    );

    // Both exits stay on record, newest first, each with why it was withdrawn.
    let (status, exits) =
        f.w.get(Some(&dongcheng), &format!("/households/{h}/exits"))
            .await;
    assert_eq!(
        moved_by(&exits),
        [(json!(sooner), Value::Null), (json!(later), Value::Null)],
        "a cancelled move moves nothing: {exits}"
    );
    assert_eq!(status, StatusCode::OK, "{exits}");
    let exits = exits.as_array().unwrap();
    assert_eq!(exits.len(), 2, "{exits:?}");
    assert_eq!(exits[0]["effective_from"], json!(sooner));
    assert_eq!(exits[0]["cancel_reason"], "日期填错");
    assert_eq!(exits[1]["effective_from"], json!(later));
    assert_eq!(exits[1]["cancel_reason"], "误报脱贫");
    assert!(exits.iter().all(|e| e["cancelled_at"].is_string()));
    assert!(
        exits
            .iter()
            .all(|e| e["filed_by"] == "dongcheng" && e["cancelled_by"] == "dongcheng"),
        "{exits:?}"
    );

    // The county lists its exits across towns, to sample them for re-checking; a
    // helper may not, and a town outside the scope is not found.
    let (status, all) = f.w.get(Some(&f.county), "/exits").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let listed: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["household_id"] == h)
        .collect();
    assert_eq!(listed.len(), 2, "{all}");
    assert_eq!(listed[0]["head_name"], before["head_name"]);
    let town = before["town"]["id"].as_i64().unwrap();
    let (status, _) =
        f.w.get(Some(&dongcheng), &format!("/exits?town={town}"))
            .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = f.w.get(Some(&dongcheng), "/exits?town=999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = f.w.get(Some(&f.token), "/exits").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The helper reads their household's exits, when and why, without the office
    // accounts that filed and withdrew them.
    let (status, theirs) =
        f.w.get(Some(&f.token), &format!("/households/{h}/exits"))
            .await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    let theirs = theirs.as_array().unwrap();
    assert_eq!(theirs.len(), 2, "{theirs:?}");
    for e in theirs {
        assert!(
            e["reason"].is_string() && e["cancel_reason"].is_string(),
            "{e}"
        );
        assert!(
            e["filed_by"].is_null() && e["cancelled_by"].is_null(),
            "{e}"
        );
    }
    assert!(
        listed[0]["filed_by"].is_string(),
        "the county sees who: {all}"
    );
    let tomorrow = today() + chrono::Duration::days(1);
    let (_, none) =
        f.w.get(Some(&f.county), &format!("/exits?since={tomorrow}"))
            .await;
    assert_eq!(none, json!([]), "filed today, none since tomorrow");

    // The helper's device learns the pairing holds again.
    let (_, pull) =
        f.w.get(Some(&f.token), &format!("/sync/pull?cursor={cursor}"))
            .await;
    let mine = pull["households"]
        .as_array()
        .expect("the ledger changed")
        .iter()
        .find(|x| x["id"] == h)
        .unwrap_or_else(|| panic!("{pull}"));
    assert!(
        mine["pairings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["valid_to"].is_null()),
        "{mine}"
    );

    // On its first day an exit may still be withdrawn (no window has been judged
    // without the pairings yet).
    let (status, _) = exit(
        &f,
        &dongcheng,
        h,
        json!({ "effective_from": today(), "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = cancel(&f, &dongcheng, h, "录错户").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(pairing_ends(&body), pairing_ends(&before));

    // From its second day it is not: the household comes back by a rejoin. (The exit
    // is moved a day back in the database, as a day passing would.)
    let (status, _) = exit(
        &f,
        &dongcheng,
        h,
        json!({ "effective_from": today(), "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let yesterday = today() - chrono::Duration::days(1);
    t.db.execute_unprepared(&format!(
        "UPDATE household_exits SET effective_from = '{yesterday}' \
         WHERE household_id = {h} AND cancelled_at IS NULL"
    ))
    .await
    .unwrap();
    let (status, body) = cancel(&f, &dongcheng, h, "误报").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("rejoin"),
        "{body}"
    );
}

db_test!(
    an_exit_is_not_cancelled_over_the_pairing_limits,
    cancel_limits
);
async fn cancel_limits(t: &TestDb) {
    let f = Field::new(t).await;
    let h = f.household;
    // Filed for next month; the ledger then gives 黄志强 (一帮一) a new household from
    // that day, the slot the exit frees.
    let later = today() + chrono::Duration::days(30);
    let (status, body) = exit(
        &f,
        &f.county,
        h,
        json!({ "effective_from": later, "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let query = format!("/ledger/import?effective_from={later}&filed_on=2020-01-01");
    let (status, report) =
        f.w.post_bytes(&f.county, &query, ledger_with_new_household())
            .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    // Cancelling would pair him with two households: refused, and nothing changes.
    let (status, body) = cancel(&f, &f.county, h, "误报").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("over the policy's 1"),
        "{body}"
    );
    let (_, after) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    assert!(
        pairing_ends(&after)
            .iter()
            .all(|(_, to, _)| *to == json!(later)),
        "{after}"
    );
    let (_, exits) =
        f.w.get(Some(&f.county), &format!("/households/{h}/exits"))
            .await;
    assert!(exits[0]["cancelled_at"].is_null(), "{exits}");
}

db_test!(
    an_exit_of_a_household_brought_back_is_not_cancelled,
    cancel_after_rejoin
);
async fn cancel_after_rejoin(t: &TestDb) {
    let f = Field::new(t).await;
    let h = f.household;
    let (status, _) = exit(
        &f,
        &f.county,
        h,
        json!({ "effective_from": today(), "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    t.exit_a_day_old(h).await;
    let (status, back) =
        f.w.post_json(
            Some(&f.county),
            &format!("/households/{h}/rejoin"),
            &json!({ "reason": "因病返贫" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    let (status, body) = cancel(&f, &f.county, h, "误报").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("brought back"),
        "{body}"
    );
    // Brought back but not yet paired again, it has nothing an exit could end.
    let (status, body) = exit(
        &f,
        &f.county,
        h,
        json!({ "effective_from": today() + chrono::Duration::days(5), "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no pairing to end"),
        "{body}"
    );
}

db_test!(
    an_exit_whose_pairing_changed_since_is_not_cancelled_in_part,
    changed_since
);
async fn changed_since(t: &TestDb) {
    use sea_orm::ConnectionTrait;
    let f = Field::new(t).await;
    let h = f.household;
    let (_, before) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    let later = today() + chrono::Duration::days(30);
    let (status, filed) = exit(
        &f,
        &f.county,
        h,
        json!({ "effective_from": later, "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{filed}");
    // Something else (as a ledger import would) ends one of the pairings elsewhere.
    let ends = pairing_ends(&before);
    let moved = ends.last().unwrap().0;
    let day = today() + chrono::Duration::days(20);
    t.db.execute_unprepared(&format!(
        "UPDATE pairings SET valid_to = '{day}' WHERE id = {moved}"
    ))
    .await
    .unwrap();
    let (status, body) = cancel(&f, &f.county, h, "误报").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("pairing {moved} has changed")),
        "{body}"
    );
    // Nothing was cancelled in part: the other pairing still ends with the exit.
    let (_, after) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    assert_eq!(
        after["status"], before["status"],
        "still paired until {later}"
    );
    assert_eq!(after["exit_on"], json!(later), "{after}");
    for (id, to, _) in pairing_ends(&after) {
        let want = if id == moved {
            json!(day)
        } else {
            json!(later)
        };
        assert_eq!(to, want, "pairing {id}: {after}");
    }
    let (_, exits) =
        f.w.get(Some(&f.county), &format!("/households/{h}/exits"))
            .await;
    assert!(exits[0]["cancelled_at"].is_null(), "{exits}");
}

/// The windows of one household's row of the current quarter's sheet, as
/// (role side, kind, start, end, required).
fn row_windows(sheet: &Value, household: i64) -> Vec<(String, Value, Value, Value, Value)> {
    let row = sheet["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["household_id"] == household)
        .unwrap_or_else(|| panic!("{sheet}"));
    ["windows", "own_windows"]
        .iter()
        .flat_map(|side| {
            row[*side].as_array().unwrap().iter().map(move |w| {
                (
                    side.to_string(),
                    w["kind"].clone(),
                    w["start"].clone(),
                    w["end"].clone(),
                    w["required"].clone(),
                )
            })
        })
        .collect()
}

db_test!(
    a_household_whose_exit_is_withdrawn_on_its_day_keeps_its_windows,
    same_helpers
);
async fn same_helpers(t: &TestDb) {
    let f = Field::new(t).await;
    let h = f.household;
    let (_, detail) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    let second = detail["second_helper"]["id"].as_i64().unwrap();
    let town = detail["town"]["id"].as_i64().unwrap();
    let q = bangfu_shared::report::Quarter::of(today());
    let sheet = format!("/reports/attendance?second_helper={second}&quarter={q}");
    let (status, before) = f.w.get(Some(&f.county), &sheet).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    let town_path = format!("/reports/town?town={town}&quarter={q}");
    let unowned = |report: &Value| -> Vec<Value> {
        report["unowned_windows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["head_name"] == detail["head_name"])
            .map(|u| json!([u["kind"], u["start"], u["end"], u["role"]]))
            .collect()
    };
    let (_, town_before) = f.w.get(Some(&f.county), &town_path).await;

    // Taken out today, the office tries to bring it back the same day: it is pointed to
    // withdrawing the exit (s32d X6), which gives the helpers their pairings back.
    let (status, _) = exit(
        &f,
        &f.county,
        h,
        json!({ "effective_from": today(), "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        f.w.post_json(
            Some(&f.county),
            &format!("/households/{h}/rejoin"),
            &json!({ "reason": "因病返贫" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("exit/cancel"),
        "{body}"
    );
    let (status, body) = cancel(&f, &f.county, h, "误报").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The helpers held it without a gap: each window is still theirs, listed once.
    let (_, after) = f.w.get(Some(&f.county), &sheet).await;
    assert_eq!(row_windows(&after, h), row_windows(&before, h), "{after}");
    let (_, town_after) = f.w.get(Some(&f.county), &town_path).await;
    assert_eq!(unowned(&town_after), unowned(&town_before));
}

db_test!(
    the_second_helper_still_reads_the_evidence_of_a_household_on_the_sheet,
    evidence_after_exit
);
/// A household that left pairing stays on its second helper's sheet for the quarter, to
/// be signed: the second helper can still open it, its visits and their photos, as the
/// device still lists it. A helper never paired with it cannot, and one whose pairing
/// with it ended long ago cannot either (see the access tests).
async fn evidence_after_exit(t: &TestDb) {
    use bangfu_shared::report::Quarter;
    use bangfu_tests::field::{jpeg, png, upload};
    let mut f = Field::new(t).await;
    let h = f.household;
    let (photo, sig) = (jpeg(8, 41), png(42));
    for bytes in [&photo, &sig] {
        assert_eq!(
            upload(&f.w.http, &f.origin, &f.token, bytes).await,
            StatusCode::NO_CONTENT
        );
    }
    // Paired for a month already; the visit was yesterday (an exit is dated today at the
    // earliest, and its day is no longer paired).
    {
        use sea_orm::ConnectionTrait;
        t.db.execute_unprepared(&format!(
            "UPDATE pairings SET valid_from = '{}' WHERE household_id = {h}",
            today() - chrono::Duration::days(30)
        ))
        .await
        .unwrap();
    }
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    let visit = f.device.home_visit_at(h, &photo, &sig, yesterday);
    let pushed = f.push(&[visit]).await;
    assert_eq!(
        pushed.acks[0].status,
        bangfu_shared::sync::AckStatus::Accepted,
        "{pushed:?}"
    );
    let (second, _) = f.second_helper(t).await;
    let quarter = Quarter::of(today() - chrono::Duration::days(1));
    let drill = format!("/reports/records?household={h}&quarter={quarter}");
    let photo_path = format!("/blobs/{}", bangfu_shared::visit::sha256_hex(&photo));
    let reads = |token: String| {
        let (w, drill, photo_path) = (&f.w, drill.clone(), photo_path.clone());
        async move {
            let (detail, _) = w.get(Some(&token), &format!("/households/{h}")).await;
            let (records, body) = w.get(Some(&token), &drill).await;
            let (photo, _) = w.get_bytes(&token, &photo_path).await;
            (detail, records, photo, body)
        }
    };
    let (d, r, p, body) = reads(second.clone()).await;
    assert_eq!((d, r, p), (StatusCode::OK, StatusCode::OK, StatusCode::OK));
    assert_eq!(body.as_array().unwrap().len(), 1, "{body}");

    // A photo of a visit made before the second helper's pairing began is not theirs:
    // a helper who takes a household over does not read the visits before them.
    let (_, me) = f.w.get(Some(&second), "/me").await;
    let second_id = me["helper"]["id"].as_i64().unwrap();
    let set_from = |day: chrono::NaiveDate| {
        let db = &t.db;
        async move {
            use sea_orm::ConnectionTrait;
            db.execute_unprepared(&format!(
                "UPDATE pairings SET valid_from = '{day}' WHERE household_id = {h} \
                 AND helper_id = {second_id}"
            ))
            .await
            .unwrap();
        }
    };
    let (_, pairing) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    let since = pairing["pairings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["helper"]["id"] == second_id)
        .map(|p| p["valid_from"].as_str().unwrap().parse().unwrap())
        .unwrap();
    set_from(today()).await;
    let (status, _) = f.w.get_bytes(&second, &photo_path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "dated before the pairing");
    let (status, _) = f.w.get_bytes(&f.token, &photo_path).await;
    assert_eq!(status, StatusCode::OK, "its author still reads it");
    set_from(since).await;

    let (status, body) = exit(
        &f,
        &f.county,
        h,
        json!({ "effective_from": today(), "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, sheet) =
        f.w.get(
            Some(&second),
            &format!("/reports/attendance?quarter={quarter}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sheet}");
    assert!(
        sheet["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["household_id"] == h),
        "still on the sheet: {sheet}"
    );
    let (d, r, p, body) = reads(second.clone()).await;
    assert_eq!(
        (d, r, p),
        (StatusCode::OK, StatusCode::OK, StatusCode::OK),
        "the household, its visits and photos stay readable: {body}"
    );
    assert_eq!(body.as_array().unwrap().len(), 1, "{body}");
    // The town report lists the windows the exit cut as the household leaving, not as
    // a gap in its helpers.
    let (_, detail) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    let town_path = format!(
        "/reports/town?town={}&quarter={}",
        detail["town"]["id"],
        Quarter::of(today())
    );
    let (status, report) = f.w.get(Some(&f.county), &town_path).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let cut: Vec<&Value> = report["unowned_windows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["household_id"] == h)
        .collect();
    let day = |v: &Value| v.as_str().unwrap().parse::<chrono::NaiveDate>().unwrap();
    for u in &cut {
        // Cut by the exit, or by the pairing's start a month ago (not the exit's doing).
        let by_exit = day(&u["start"]) < today() && today() <= day(&u["end"]);
        let want = if by_exit { json!(today()) } else { Value::Null };
        assert_eq!(
            u.get("exit_on").cloned().unwrap_or(Value::Null),
            want,
            "{u}"
        );
    }
    if chrono::Datelike::day(&today()) > 1 {
        // This month's phone window began before the exit: cut by it.
        assert!(
            cut.iter().any(|u| u["exit_on"] == json!(today())),
            "{report}"
        );
        let (_, csv) =
            f.w.get_bytes(&f.county, &format!("{town_path}&format=csv"))
                .await;
        let csv = String::from_utf8(csv).unwrap();
        assert!(csv.contains(&format!("{}起退出帮扶", today())), "{csv}");
    }

    // A quarter before the second helper's pairing began is not theirs to read.
    let before = format!(
        "/reports/records?household={h}&quarter={}",
        Quarter::of(chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap())
    );
    let (status, body) = f.w.get(Some(&second), &before).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// The field with its household paired for the last 60 days, so an exit today cuts this
/// month's call window; `None` on a month's first day, when it cuts none of it.
async fn paired_sixty_days(t: &TestDb) -> Option<Field> {
    use sea_orm::ConnectionTrait;
    let today = today();
    if chrono::Datelike::day(&today) == 1 {
        return None;
    }
    let f = Field::new(t).await;
    t.db.execute_unprepared(&format!(
        "UPDATE pairings SET valid_from = '{}' WHERE household_id = {}",
        today - chrono::Duration::days(60),
        f.household
    ))
    .await
    .unwrap();
    Some(f)
}

db_test!(
    a_window_the_exit_cut_is_judged_from_the_exit_day_where_the_county_judges_it,
    judged_at_exit
);
/// QA s21 F1: in a county whose policy judges the part of a window before the exit
/// (`exit_cuts`), a window the exit cut is due by the day before the exit and judged
/// from the exit's day (no visit after it counts), not shown 进行中 until it ends; the
/// sheet names the part due and the exit, and every format prints the rule.
async fn judged_at_exit(t: &TestDb) {
    use sea_orm::ConnectionTrait;
    let Some(f) = paired_sixty_days(t).await else {
        return;
    };
    let h = f.household;
    let today = today();
    let mut policy = bangfu_shared::PolicyPreset::Laizhou2018.policy();
    policy.exit_cuts.min_days_held = 1;
    bangfu_server::services::policy::backfill(
        &t.db,
        &bangfu_server::services::Caller::system(),
        f.w.county_id,
        None,
        chrono::NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
        &policy,
    )
    .await
    .unwrap();
    let (status, body) = exit(
        &f,
        &f.county,
        h,
        json!({ "effective_from": today, "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, detail) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    // Filed for today, it left no day to visit knowing (QA s24a F7): the device hears
    // when it was filed, and the windows it cuts are no one's…
    let ends: Vec<&serde_json::Value> = detail["pairings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["end_known_on"])
        .collect();
    assert!(ends.iter().all(|k| **k == json!(today)), "{detail}");
    let month_start = bangfu_shared::policy::window_of(today, 1).0;
    let second = detail["pairings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "second")
        .and_then(|p| p["helper"]["id"].as_i64())
        .unwrap();
    let q = bangfu_shared::report::Quarter::of(today);
    let sheet = format!("/reports/attendance?second_helper={second}&quarter={q}");
    let (_, body) = f.w.get(Some(&f.county), &sheet).await;
    let this_months_call = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["household_id"] == h)
        .flat_map(|r| r["windows"].as_array().unwrap().iter())
        .find(|w| w["kind"] == "phone" && w["start"] == json!(month_start))
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(this_months_call["required"], false, "{this_months_call}");
    // …until it is dated as filed the day before (as if filed then).
    t.db.execute_unprepared(&format!(
        "UPDATE household_exits SET filed_at = '{} 02:00:00+00:00' WHERE household_id = {h}",
        today.pred_opt().unwrap()
    ))
    .await
    .unwrap();
    let (status, body) = f.w.get(Some(&f.county), &sheet).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let row = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["household_id"] == h)
        .unwrap_or_else(|| panic!("{body}"));
    let yesterday = today.pred_opt().unwrap();
    // This month's call window: held from its first day until the exit, due yesterday,
    // judged (not open) today, and missed.
    let phone = row["windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["kind"] == "phone" && w["start"] == json!(month_start))
        .unwrap_or_else(|| panic!("{row}"));
    assert_eq!(phone["required"], true, "{phone}");
    assert_eq!(phone["open"], false, "{phone}");
    assert_eq!(phone["met"], false, "{phone}");
    assert_eq!(phone["due_by"], json!(yesterday), "{phone}");
    assert!(body["rule"].as_str().unwrap().contains("满1天"), "{body}");
    let (_, csv) =
        f.w.get_bytes(&f.county, &format!("{sheet}&format=csv"))
            .await;
    let csv = String::from_utf8(csv).unwrap();
    let cut = format!(
        "{}~{}电话未到位（{}起退出帮扶）",
        month_start.format("%m-%d"),
        yesterday.format("%m-%d"),
        today.format("%m-%d")
    );
    assert!(csv.contains(&cut), "{cut} in {csv}");
    // The row says the household left, whatever the policy (QA s20b M5).
    let left = format!("｜{}起退出帮扶", today.format("%m-%d"));
    assert!(csv.contains(&left), "{left} in {csv}");
    assert!(csv.contains("考勤规则") && csv.contains("满1天"), "{csv}");
    // The town report counts it at once.
    let town = detail["town"]["id"].as_i64().unwrap();
    let (_, report) =
        f.w.get(
            Some(&f.county),
            &format!("/reports/town?town={town}&quarter={q}"),
        )
        .await;
    assert!(
        report["misses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["household_id"] == h
                && m["kind"] == "phone"
                && m["start"] == json!(month_start)
                && m["due_by"] == json!(yesterday)),
        "{report}"
    );
}

db_test!(
    a_window_cut_by_an_exit_a_return_ended_is_named_for_the_exit_on_the_sheet,
    cut_before_return
);
/// QA s24d F4: after an exit and a return (返贫) the sheet called a window the exit cut
/// `（结对未覆盖整个周期）` (it knew only standing exits) while the town report said
/// `…起退出帮扶`: both name the exit.
async fn cut_before_return(t: &TestDb) {
    // The exit is a day old when the household returns (on its first day it is
    // withdrawn instead): on a month's second day it cut none of this month's window.
    if chrono::Datelike::day(&today()) == 2 {
        return;
    }
    let Some(f) = paired_sixty_days(t).await else {
        return;
    };
    let h = f.household;
    let (_, detail) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    let (status, body) = exit(
        &f,
        &f.county,
        h,
        json!({ "effective_from": today(), "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let exit_day = t.exit_a_day_old(h).await;
    let (status, body) =
        f.w.post_json(
            Some(&f.county),
            &format!("/households/{h}/rejoin"),
            &json!({ "reason": "因病返贫" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = detail["second_helper"]["id"].as_i64().unwrap();
    let q = bangfu_shared::report::Quarter::of(exit_day);
    let (month_start, month_end) = bangfu_shared::policy::window_of(exit_day, 1);
    let (_, csv) =
        f.w.get_bytes(
            &f.county,
            &format!("/reports/attendance?second_helper={second}&quarter={q}&format=csv"),
        )
        .await;
    let csv = String::from_utf8(csv).unwrap();
    let head = detail["head_name"].as_str().unwrap();
    let row = csv
        .lines()
        .find(|l| l.contains(&format!(",{head},")))
        .unwrap_or_else(|| panic!("{head} in {csv}"));
    let named = format!(
        "{}~{}电话不考核（{}起退出帮扶）",
        month_start.format("%m-%d"),
        month_end.format("%m-%d"),
        exit_day.format("%m-%d")
    );
    assert!(row.contains(&named), "{named} in {row}");
    let before = format!(
        "{}~{}电话不考核（结对未覆盖整个周期）",
        month_start.format("%m-%d"),
        month_end.format("%m-%d"),
    );
    assert!(!row.contains(&before), "{row}");
    // The household is back: the row does not say it left.
    let left = format!("｜{}起退出帮扶", exit_day.format("%m-%d"));
    assert!(!row.contains(&left), "{row}");
    let town = detail["town"]["id"].as_i64().unwrap();
    let (_, report) =
        f.w.get(
            Some(&f.county),
            &format!("/reports/town?town={town}&quarter={q}"),
        )
        .await;
    let call = report["unowned_windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| {
            u["household_id"] == h && u["kind"] == "phone" && u["start"] == json!(month_start)
        })
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(call["exit_on"], json!(exit_day), "{call}");
}

/// A household holds its 序号 while it is on the ledger: an exit filed for a later day
/// keeps it until then; in effect it frees it for a new household; the household back
/// from an exit (返贫) and not yet paired holds none, so the town's own export still
/// imports (QA s22e F1, F2).
async fn numbers_on_the_ledger(t: &TestDb) {
    let f = Field::new(t).await;
    let h = f.household; // 田晓东, 序号1
    let header = FIXTURE.lines().next().unwrap();
    let newcomer = "1,接替户,东城镇东城河口村,因病,医疗救助,13900000021,接替帮,市住建局 科员,13900000022,接替二帮,村委会委员,13900000023";
    let file = format!("{header}\r\n{newcomer}\r\n").into_bytes();
    let later = today() + chrono::Duration::days(30);
    let (status, _) = exit(
        &f,
        &f.county,
        h,
        json!({ "effective_from": later, "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        f.w.post_bytes(&f.county, "/ledger/import?dry_run=true", file.clone())
            .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.to_string().contains("序号1已是本镇街另一户（田晓东）"),
        "still paired until {later}: {body}"
    );
    let from_then =
        format!("/ledger/import?dry_run=true&effective_from={later}&filed_on=2020-01-01");
    let (status, body) = f.w.post_bytes(&f.county, &from_then, file.clone()).await;
    assert_eq!(status, StatusCode::OK, "free from the exit's day: {body}");

    // The exit moved to today: the number is free now; then the household comes back.
    let (status, body) = cancel(&f, &f.county, h, "改为今日退出").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = exit(
        &f,
        &f.county,
        h,
        json!({ "effective_from": today(), "reason": "脱贫退出" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    f.w.import_ok(&f.county, "", file).await;
    t.exit_a_day_old(h).await;
    let (status, body) =
        f.w.post_json(
            Some(&f.county),
            &format!("/households/{h}/rejoin"),
            &json!({ "reason": "因病返贫" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, export) = f.w.get_bytes(&f.county, "/ledger/export?format=csv").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        f.w.post_bytes(&f.county, "/ledger/import?dry_run=true", export)
            .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the town's own export imports: {body}"
    );
}
db_test!(
    a_household_holds_its_number_while_it_is_on_the_ledger,
    numbers_on_the_ledger
);

/// A cancel sent while the exit it cancels is being filed waits for the filing and then
/// cancels it (QA s23c F10): it read the household before its transaction, so once the
/// exit was committed it judged it by the status from before the exit and answered 409
/// "the household was brought back (rejoin) since its exit" (on PostgreSQL, "no exit to
/// cancel" while the filing was still running). The test holds the database's write
/// lock (SQLite) and the household's row (PostgreSQL) while both requests arrive, the
/// exit first, then lets them run.
async fn cancel_during_filing(t: &TestDb) {
    use bangfu_server::entities::household;
    use sea_orm::{EntityTrait, QuerySelect};
    let f = Field::new(t).await;
    let h = f.household;
    let day = today() + chrono::Duration::days(10);
    let (gate, txn) = bangfu_server::db::begin_write(&t.db).await.unwrap();
    household::Entity::find_by_id(h)
        .lock_exclusive()
        .one(&txn)
        .await
        .unwrap()
        .unwrap();
    let post = |path: String, body: Value| {
        let (http, url, token) = (f.w.http.clone(), f.w.server.url(&path), f.county.clone());
        tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        })
    };
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(800));
    let filing = post(
        format!("/households/{h}/exit"),
        json!({ "effective_from": day, "reason": "脱贫退出" }),
    );
    pause().await;
    let cancelling = post(
        format!("/households/{h}/exit/cancel"),
        json!({ "reason": "误报" }),
    );
    pause().await;
    drop(txn);
    drop(gate);
    let (status, body) = filing.await.unwrap();
    assert_eq!(status, StatusCode::OK, "the exit: {body}");
    let (status, body) = cancelling.await.unwrap();
    assert_eq!(status, StatusCode::OK, "the cancel: {body}");
    assert_eq!(body["exit_on"], Value::Null, "{body}");
    let (_, exits) =
        f.w.get(Some(&f.county), &format!("/households/{h}/exits"))
            .await;
    let exits = exits.as_array().unwrap();
    assert_eq!(exits.len(), 1, "{exits:?}");
    assert!(!exits[0]["cancelled_at"].is_null(), "{exits:?}");

    // Cancelled twice: the second says the exit was already cancelled.
    let (status, body) = cancel(&f, &f.county, h, "重复提交").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("the exit from {day} was already cancelled")),
        "{message}"
    );
}
db_test!(
    a_cancel_sent_while_the_exit_is_filed_cancels_it,
    cancel_during_filing
);

/// QA s29b J23: an office corrects a household's head, phone or village; the household
/// keeps its 序号, pairings and visits, devices get the correction at their next pull,
/// the town's export imports again unchanged, and no one else may.
async fn corrections(t: &TestDb) {
    let f = Field::two_towns(t, |_| {}).await;
    let all = |token: String| {
        let w = &f.w;
        async move {
            let (_, page) = w.get(Some(&token), "/households?per_page=100").await;
            page["items"].as_array().unwrap().clone()
        }
    };
    let households = all(f.county.clone()).await;
    let by_name = |name: &str| {
        households
            .iter()
            .find(|h| h["head_name"] == name)
            .unwrap()
            .clone()
    };
    let (tian, ye) = (by_name("田晓东"), by_name("叶秀兰"));
    let id = tian["id"].as_i64().unwrap();
    let town = tian["town"]["id"].as_i64().unwrap();
    let other_town = households.iter().find(|h| h["town"]["id"] != town).unwrap()["town"]["id"]
        .as_i64()
        .unwrap();
    office(t, &f.w, "dongcheng", Role::TownOffice, town).await;
    office(t, &f.w, "xigang", Role::TownOffice, other_town).await;
    let (dongcheng, xigang) = (f.w.login("dongcheng").await, f.w.login("xigang").await);
    let path = format!("/households/{id}");
    let fix = json!({ "head_name": "田 晓冬", "reason": "户主姓名录错" });
    // A helper may not; another town's office does not find it.
    let (status, _) = f.w.patch_json(Some(&f.token), &path, &fix).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = f.w.patch_json(Some(&xigang), &path, &fix).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // What is wrong is named.
    for (body, needle) in [
        (json!({ "head_name": "田晓冬", "reason": " " }), "reason"),
        (json!({ "reason": "无" }), "nothing to correct"),
        (json!({ "phone": "12345", "reason": "换号" }), "phone"),
        // A line break is not dropped into a joined name (QA s30e Q4).
        (
            json!({ "head_name": "田晓\n冬", "reason": "录错" }),
            "line break",
        ),
        (
            json!({ "village_id": other_town, "reason": "搬迁" }),
            "not a village of the household's town",
        ),
    ] {
        let (status, answer) = f.w.patch_json(Some(&dongcheng), &path, &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(needle),
            "{answer}"
        );
    }
    // Two households of one village with one head and phone would be one to an import.
    let twin = json!({ "head_name": ye["head_name"], "phone": ye["phone"], "reason": "x" });
    let (status, answer) = f.w.patch_json(Some(&dongcheng), &path, &twin).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (_, before) = f.w.get(Some(&f.token), "/sync/pull?cursor=0").await;
    let cursor = before["cursor"].as_i64().unwrap();
    let (status, fixed) = f.w.patch_json(Some(&dongcheng), &path, &fix).await;
    assert_eq!(status, StatusCode::OK, "{fixed}");
    assert_eq!(
        fixed["head_name"], "田晓冬",
        "spaces out, as an import reads"
    );
    let (status, _) = f.w.patch_json(Some(&dongcheng), &path, &fix).await;
    assert_eq!(status, StatusCode::CONFLICT, "nothing left to change");
    // The helper's device gets it at the next pull.
    let (_, pulled) =
        f.w.get(Some(&f.token), &format!("/sync/pull?cursor={cursor}"))
            .await;
    let names: Vec<&str> = pulled["households"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["head_name"].as_str())
        .collect();
    assert!(names.contains(&"田晓冬"), "{pulled}");
    // The town's export imports again as it is: the same household, not a new one.
    let (_, csv) = f.w.get_bytes(&dongcheng, "/ledger/export?format=csv").await;
    let text = String::from_utf8_lossy(&csv).to_string();
    assert!(
        text.contains("\n1,田晓冬,东城镇东城河口村,"),
        "its 序号 kept: {text}"
    );
    let report = f.w.import_ok(&dongcheng, "?dry_run=true", csv).await;
    assert_eq!(report["households_created"], 0, "{report}");
    // The audit log says which fields and why, not the names.
    let (_, audit) =
        f.w.get(Some(&f.county), "/audit?action=household.correct")
            .await;
    let text = audit.to_string();
    assert!(
        text.contains("户主姓名录错") && text.contains("head_name"),
        "{text}"
    );
    assert!(!text.contains("田晓冬"), "{text}");
}
db_test!(
    an_office_corrects_a_household_without_making_a_new_one,
    corrections
);

/// The fixture ledger with 田晓东's first helper 黄志强 replaced by 邓新华.
fn ledger_with_new_first_helper() -> Vec<u8> {
    let changed = bangfu_tests::FIXTURE.replacen(
        "黄志强,市住建局 主任科员,15907579383",
        "邓新华,市住建局 科员,13700000007",
        1,
    );
    assert_ne!(changed, bangfu_tests::FIXTURE);
    changed.into_bytes()
}

/// The household's pairings as (helper's name, role, from, to), oldest first.
fn pairings_of(detail: &Value) -> Vec<(String, String, Value, Value)> {
    detail["pairings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["helper"]["name"].as_str().unwrap().to_string(),
                p["role"].as_str().unwrap().to_string(),
                p["valid_from"].clone(),
                p["valid_to"].clone(),
            )
        })
        .collect()
}

db_test!(
    a_change_of_helper_filed_for_a_later_day_is_withdrawn,
    change_withdrawn
);
/// QA s29b J15: a change of helper imported for a later day by mistake is withdrawn: the
/// old helper's pairing holds on, the filed one never holds, and importing the original
/// ledger again changes nothing. Refusals name what is wrong; the old helper is never
/// put over the policy's limit.
async fn change_withdrawn(t: &TestDb) {
    let f = Field::new(t).await;
    let h = f.household;
    let path = format!("/households/{h}/pairing-change/cancel");
    let withdraw = |token: String, body: Value| {
        let (w, path) = (&f.w, path.clone());
        async move { w.post_json(Some(&token), &path, &body).await }
    };
    // Nothing filed yet.
    let (status, body) = withdraw(f.county.clone(), json!({ "reason": "导错" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let later = today() + chrono::Duration::days(30);
    let query = format!("?effective_from={later}&filed_on={}", today());
    let report =
        f.w.import_ok(&f.county, &query, ledger_with_new_first_helper())
            .await;
    assert_eq!(report["pairings_started"], 1, "{report}");
    let (_, before) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    assert!(
        pairings_of(&before).contains(&(
            "邓新华".into(),
            "first".into(),
            json!(later),
            Value::Null
        )),
        "{before}"
    );
    // A helper may not; what is wrong is named; a role without a change has none.
    let (status, _) = withdraw(f.token.clone(), json!({ "reason": "导错" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A reason says something, on one line (QA s31c T6).
    for reason in [" ", "导\n错", "导\u{2028}错"] {
        let (status, body) = withdraw(f.county.clone(), json!({ "reason": reason })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("reason"),
            "{body}"
        );
    }
    let (status, body) = withdraw(
        f.county.clone(),
        json!({ "role": "second", "reason": "导错" }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // 黄志强 (一帮一) is given another household from that day: withdrawing would pair
    // him with two, so nothing changes.
    let freed = String::from_utf8(ledger_with_new_first_helper())
        .unwrap()
        .replacen(
            "周雪梅,市教育局 副科长,18146100330",
            "黄志强,市住建局 主任科员,15907579383",
            1,
        );
    let report = f.w.import_ok(&f.county, &query, freed.into_bytes()).await;
    assert_eq!(report["pairings_started"], 1, "{report}");
    let (status, body) = withdraw(f.county.clone(), json!({ "reason": "导错" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("over the policy's 1")
            && body["message"]
                .as_str()
                .unwrap()
                .contains("黄志强 (15907579383)"),
        "named as the office knows him: {body}"
    );
    let (_, unchanged) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    assert_eq!(pairings_of(&unchanged), pairings_of(&before));
}

db_test!(
    a_withdrawn_change_leaves_the_household_as_before,
    change_withdrawn_whole
);
async fn change_withdrawn_whole(t: &TestDb) {
    let f = Field::new(t).await;
    let h = f.household;
    let (_, original) = f.w.get(Some(&f.county), &format!("/households/{h}")).await;
    let later = today() + chrono::Duration::days(30);
    let query = format!("?effective_from={later}&filed_on={}", today());
    f.w.import_ok(&f.county, &query, ledger_with_new_first_helper())
        .await;
    let path = format!("/households/{h}/pairing-change/cancel");
    let (status, detail) =
        f.w.post_json(
            Some(&f.county),
            &path,
            &json!({ "role": "first", "reason": "导错了行" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let now = pairings_of(&detail);
    assert!(
        now.contains(&("邓新华".into(), "first".into(), json!(later), json!(later))),
        "the filed pairing never holds: {detail}"
    );
    let held: Vec<_> = now
        .iter()
        .filter(|p| p.3.is_null() || p.3 != p.2)
        .cloned()
        .collect();
    assert_eq!(held, pairings_of(&original), "as before the import");
    // Done once: asked again, nothing is filed.
    let (status, body) =
        f.w.post_json(Some(&f.county), &path, &json!({ "reason": "导错了行" }))
            .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // The original ledger imports again unchanged; the audit log says why.
    let report =
        f.w.import_ok(&f.county, "", bangfu_tests::FIXTURE.as_bytes().to_vec())
            .await;
    assert_eq!(
        (&report["pairings_started"], &report["pairings_ended"]),
        (&json!(0), &json!(0)),
        "{report}"
    );
    let (_, audit) =
        f.w.get(Some(&f.county), "/audit?action=pairing.change_cancel")
            .await;
    assert!(audit.to_string().contains("导错了行"), "{audit}");
}

db_test!(
    a_withdrawn_change_reaches_no_device_and_no_sheet,
    withdrawn_reaches_no_one
);
/// QA s31c T1, T2: a pairing withdrawn before its day never held: its helper's device
/// no longer lists the household nor reads it, and its second helper's sheet has no row
/// for it.
async fn withdrawn_reaches_no_one(t: &TestDb) {
    let f = Field::new(t).await;
    let h = f.household;
    let tomorrow = today() + chrono::Duration::days(1);
    let changed = String::from_utf8(ledger_with_new_first_helper())
        .unwrap()
        .replacen(
            "孔玉梅,村委会主任,18893287921",
            "钱新生,村委会委员,13700000008",
            1,
        );
    let query = format!("?effective_from={tomorrow}&filed_on={}", today());
    let report = f.w.import_ok(&f.county, &query, changed.into_bytes()).await;
    assert_eq!(report["pairings_started"], 2, "{report}");
    bangfu_tests::enroll_directly(t, &f.w, "13700000007").await;
    let first = f.w.login("13700000007").await;
    bangfu_tests::enroll_directly(t, &f.w, "13700000008").await;
    let second = f.w.login("13700000008").await;
    let (_, me) = f.w.get(Some(&second), "/me").await;
    let second_id = me["helper"]["id"].as_i64().unwrap();
    let listed = |token: String| {
        let w = &f.w;
        async move {
            let (_, snap) = w.get(Some(&token), "/me/snapshot").await;
            snap["households"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["id"] == h)
        }
    };
    // Filed from tomorrow: the new helpers' devices hold the household already.
    assert!(listed(first.clone()).await);
    let (status, _) = f.w.get(Some(&first), &format!("/households/{h}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, detail) =
        f.w.post_json(
            Some(&f.county),
            &format!("/households/{h}/pairing-change/cancel"),
            &json!({ "reason": "报错了人" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    for token in [first.clone(), second.clone()] {
        assert!(!listed(token.clone()).await, "withdrawn: not on the device");
        let (status, _) = f.w.get(Some(&token), &format!("/households/{h}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let q = bangfu_shared::report::Quarter::of(today());
    let (status, sheet) =
        f.w.get(
            Some(&f.county),
            &format!("/reports/attendance?second_helper={second_id}&quarter={q}"),
        )
        .await;
    // A sheet with no household supervised is none at all.
    assert_eq!(status, StatusCode::NOT_FOUND, "{sheet}");
}
