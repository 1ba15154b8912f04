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
    let body =
        json!({ "username": a.username, "code": "ZZZZZ-ZZZZZ", "new_password": "a good password" });
    let (status, refused) = w.post_json(None, "/auth/enroll", &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // In the enrollment's words, not a login's (QA s25a F11).
    assert_eq!(refused["error"], "invalid_credentials", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("enrollment code"),
        "{refused}"
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

/// A town office gets codes only for helpers all of whose households are its own: one
/// who also serves another town keeps the code the county office printed, which opens
/// households no town office can see.
async fn town_codes_stay_in_town(t: &TestDb) {
    use bangfu_server::demo::town_ledger;
    use bangfu_server::entities::jurisdiction;
    use bangfu_server::ledger::{ExportFormat, export::write};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let (w, county) = imported(t).await;
    let rows = town_ledger(1, 5, 9);
    // 黄志强 (东城镇's first helper of 田晓东) also becomes a second helper in 西港镇.
    let mut shared = rows.clone();
    for row in &mut shared[..5] {
        row.second.name = "黄志强".into();
        row.second.unit_position = "市住建局 主任科员".into();
        row.second.phone = "15907579383".into();
    }
    w.import_ok(&county, "", write(&shared, ExportFormat::Csv).unwrap())
        .await;
    let town_of = |name: String| async move {
        jurisdiction::Entity::find()
            .filter(jurisdiction::Column::Name.eq(name))
            .one(&t.db)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let xigang = town_of(rows[0].town.clone()).await;
    let dongcheng = town_of("东城镇".to_string()).await;
    let (status, from_county) = w
        .post_json(
            Some(&county),
            &format!("/enrollment/codes?format=json&town={dongcheng}"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{from_county}");
    let code_of = |codes: &serde_json::Value, phone: &str| {
        codes
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["phone"] == phone)
            .map(|c| c["code"].as_str().unwrap().to_string())
    };
    let printed = code_of(&from_county, "15907579383").unwrap(); // the county office may
    // Reprinting the other town's sheet leaves the code this town's sheet printed for
    // the helper they share (QA s29a I1: a town-wide sheet now remembers its town).
    let (status, xigang_sheet) = w
        .post_json(
            Some(&county),
            &format!("/enrollment/codes?format=json&town={xigang}&reissue=true"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{xigang_sheet}");
    assert_eq!(
        code_of(&xigang_sheet, "15907579383"),
        None,
        "{xigang_sheet}"
    );
    // A village named with a town it is not in is refused, not an empty sheet (I5).
    let dongcheng_village = jurisdiction::Entity::find()
        .filter(jurisdiction::Column::ParentId.eq(dongcheng))
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    let (status, body) = w
        .post_json(
            Some(&county),
            &format!(
                "/enrollment/codes?format=json&town={xigang}&village={}",
                dongcheng_village.id
            ),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("is not in town"),
        "{body}"
    );
    // A town that does not exist is 404, not an empty list of codes.
    let (status, body) = w
        .post_json(
            Some(&county),
            "/enrollment/codes?format=json&town=999999",
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    for (name, town, own) in [
        ("xigang", xigang, rows[0].first.phone.as_str()),
        ("dongcheng", dongcheng, "18893287921"),
    ] {
        office(t, &w, name, Role::TownOffice, town).await;
        let token = w.login(name).await;
        // 东城镇's helpers hold the county's codes: a reprint issues theirs again.
        let (status, codes) = w
            .post_json(
                Some(&token),
                "/enrollment/codes?format=json&reissue=true",
                &json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{codes}");
        assert!(code_of(&codes, own).is_some(), "{name}: {codes}");
        assert_eq!(code_of(&codes, "15907579383"), None, "{name}: {codes}");
        // Asked again, the sheet leaves out its own helpers, and counts only those: the
        // shared helper is the county office's to issue (QA s29a I7).
        let resp = w
            .http
            .post(w.server.url("/enrollment/codes"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let held: usize = resp.headers()["Bangfu-Codes-Held"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(held, codes.as_array().unwrap().len(), "{name}");
        let csv = resp.text().await.unwrap();
        assert!(!csv.contains("15907579383"), "{csv}");
    }
    // The code the county office printed was not cancelled.
    assert_eq!(enroll(&w, "15907579383", &printed).await, StatusCode::OK);
}
db_test!(
    a_town_office_gets_no_codes_for_helpers_shared_with_another_town,
    town_codes_stay_in_town
);

/// The printed sheet does not run a helper's name as a formula.
async fn code_sheet_is_inert(t: &TestDb) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let token = w.login("county").await;
    let file = FIXTURE.replacen("黄志强", "=1+2", 1);
    w.import_ok(&token, "", file.into_bytes()).await;
    let resp = w
        .http
        .post(w.server.url("/enrollment/codes"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let csv = resp.text().await.unwrap();
    assert!(csv.contains("\r\n'=1+2,15907579383,"), "{csv}");
}
db_test!(
    the_code_sheet_csv_does_not_run_formulas,
    code_sheet_is_inert
);

/// QA s27a F1: a request for more codes than one request issues
/// (`max_codes_per_request`) is refused before anything changes, naming the way out
/// (by village), so the printed codes keep working; a village's codes are issued.
async fn too_many_codes_for_one_request(t: &TestDb) {
    let w = World::with(t, |s| s.max_codes_per_request = 12).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let token = w.login("county").await;
    w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    let (status, page) = w.get(Some(&token), "/households").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    let town = items[0]["town"]["id"].as_i64().unwrap();
    let (status, codes) = w
        .post_json(
            Some(&token),
            &format!("/enrollment/codes?format=json&town={town}"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{codes}");
    let message = codes["message"].as_str().unwrap();
    assert!(
        message.contains("more than one request issues (12)")
            && message.contains("?village=")
            && message.contains("no code was changed"),
        "{message}"
    );
    // 河口村's households have fewer helpers than that.
    let hekou = items.iter().find(|h| h["head_name"] == "田晓东").unwrap()["village"]["id"]
        .as_i64()
        .unwrap();
    let (status, codes) = w
        .post_json(
            Some(&token),
            &format!("/enrollment/codes?format=json&village={hekou}"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{codes}");
    let issued = codes.as_array().unwrap();
    assert!(!issued.is_empty() && issued.len() <= 12, "{codes}");
    let c = &issued[0];
    let (phone, code) = (c["phone"].as_str().unwrap(), c["code"].as_str().unwrap());
    assert_eq!(enroll(&w, phone, code).await, StatusCode::OK, "{phone}");
}
db_test!(
    a_request_for_more_codes_than_one_issues_changes_nothing,
    too_many_codes_for_one_request
);

/// QA s28a F1, F2: codes issued village by village, as the refusal advises, put each
/// helper on exactly one village's sheet, so a helper whose households span villages
/// (孔玉梅, second helper in 河口村 and 李家村) keeps the code printed first; the
/// villages and their ids come from `GET /places`; a village too big for one request is
/// told of the command line only.
async fn village_by_village(t: &TestDb) {
    let w = World::with(t, |s| s.max_codes_per_request = 12).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let token = w.login("county").await;
    w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    let (status, places) = w.get(Some(&token), "/places").await;
    assert_eq!(status, StatusCode::OK, "{places}");
    let places = places.as_array().unwrap();
    assert_eq!(places[0]["level"], "town", "{places:?}");
    let town_households = places[0]["households"].as_u64().unwrap();
    let villages: Vec<(i64, u64)> = places
        .iter()
        .filter(|p| p["level"] == "village" && p["parent_id"] == places[0]["id"])
        .map(|p| (p["id"].as_i64().unwrap(), p["households"].as_u64().unwrap()))
        .collect();
    assert!(villages.len() > 1, "{places:?}");
    assert_eq!(
        villages.iter().map(|v| v.1).sum::<u64>(),
        town_households,
        "a town's households are its villages' households"
    );
    let issue_with = |village: i64, reissue: bool| {
        let w = &w;
        let token = &token;
        async move {
            let (status, codes) = w
                .post_json(
                    Some(token),
                    &format!("/enrollment/codes?format=json&village={village}&reissue={reissue}"),
                    &json!({}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{codes}");
            codes
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    let text = |k: &str| c[k].as_str().unwrap().to_string();
                    (text("phone"), text("code"))
                })
                .collect::<Vec<(String, String)>>()
        }
    };
    let issue = |village: i64| issue_with(village, false);
    let mut sheets = Vec::new();
    for &(village, _) in &villages {
        sheets.push(issue(village).await);
    }
    let second = "18893287921";
    let on_sheets: Vec<usize> = sheets
        .iter()
        .enumerate()
        .filter(|(_, s)| s.iter().any(|(phone, _)| phone == second))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(on_sheets.len(), 1, "孔玉梅 is on one village's sheet");
    // The other villages issued again leave her out, and her code good.
    let home = on_sheets[0];
    let code_of = |sheet: &[(String, String)]| {
        sheet
            .iter()
            .find(|(p, _)| p == second)
            .map(|(_, c)| c.clone())
    };
    let printed = code_of(&sheets[home]).unwrap();
    for (i, &(village, _)) in villages.iter().enumerate() {
        if i != home {
            assert_eq!(code_of(&issue(village).await), None, "she holds a code");
        }
    }
    // A village asked again says how many it left out for holding a code, so an empty
    // sheet does not read as "no one awaits a code" (QA s28c G2).
    let resp = w
        .http
        .post(w.server.url(&format!(
            "/enrollment/codes?format=csv&village={}",
            villages[home].0
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let held: u64 = resp.headers()["Bangfu-Codes-Held"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(held >= 1, "{held}");
    let csv = resp.text().await.unwrap();
    assert!(
        csv.contains(&format!("另有{held}名帮扶责任人已持有有效的激活码")),
        "{csv}"
    );
    // Another village's lost sheet reprinted takes back only the codes it printed
    // (QA s28c G1).
    for (i, &(village, _)) in villages.iter().enumerate() {
        if i != home {
            assert_eq!(
                code_of(&issue_with(village, true).await),
                None,
                "her code was printed on another sheet"
            );
        }
    }
    // A lost sheet reissued: the codes printed on it are cancelled, the new ones work;
    // so is a code of no known sheet (printed before codes remembered it, QA s28d H1).
    {
        use bangfu_server::entities::account;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        account::Entity::update_many()
            .col_expr(
                account::Column::EnrollmentPlaceId,
                Expr::value(Option::<i64>::None),
            )
            .filter(account::Column::Username.eq(second))
            .exec(&t.db)
            .await
            .unwrap();
    }
    let reissued = code_of(&issue_with(villages[home].0, true).await).unwrap();
    // With no code in force (expired, or a helper paired since), any of her villages
    // issues her one (QA s28b F1: by her first village alone, she was on no sheet).
    {
        use bangfu_server::entities::account;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        account::Entity::update_many()
            .col_expr(
                account::Column::EnrollmentExpiresAt,
                Expr::value(chrono::Utc::now() - chrono::Duration::days(1)),
            )
            .filter(account::Column::Username.eq(second))
            .exec(&t.db)
            .await
            .unwrap();
    }
    let mut fresh = None;
    for (i, &(village, _)) in villages.iter().enumerate() {
        if i != home && fresh.is_none() {
            fresh = code_of(&issue(village).await);
        }
    }
    let fresh = fresh.unwrap_or_else(|| panic!("another village of hers issues her a code"));
    assert_eq!(enroll(&w, second, &printed).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        enroll(&w, second, &reissued).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(enroll(&w, second, &fresh).await, StatusCode::OK);

    // A village with more pending helpers than one request issues is told of the
    // server's command line, not to split it by village.
    let refused = bangfu_server::services::enrollment::issue(
        &t.db,
        &bangfu_server::services::Caller::system(),
        &bangfu_server::Settings::default(),
        bangfu_server::services::enrollment::Within {
            town: None,
            village: Some(villages[home].0),
            helper: None,
            reissue: true,
            reset: false,
        },
        Some(0),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        refused.contains("bangfu-server enrollment-codes") && !refused.contains("?village="),
        "{refused}"
    );
}
db_test!(
    codes_issued_village_by_village_put_each_helper_on_one_sheet,
    village_by_village
);

/// The codes a request issued, by phone, and how many it left out for holding one.
async fn issue_codes(
    w: &World,
    token: &str,
    query: &str,
) -> (std::collections::BTreeMap<String, String>, usize) {
    let resp = w
        .http
        .post(
            w.server
                .url(&format!("/enrollment/codes?format=json&{query}")),
        )
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{query}");
    let held = resp.headers()["Bangfu-Codes-Held"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let codes: serde_json::Value = resp.json().await.unwrap();
    let codes = codes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap().to_string();
            (text("phone"), text("code"))
        })
        .collect();
    (codes, held)
}

/// QA s28d H2, H3: no request cancels a sheet already handed out unless it reprints
/// that sheet. A town-wide request after the village sheets leaves every helper holding
/// a code out (it voided all the village sheets); a town-wide reprint takes back only
/// what a town-wide sheet printed; one helper's lost slip is issued alone
/// (`?helper=ID`); a helper who moved villages has the code of the sheet they left
/// taken back by their new village's reprint (no reprint could before).
async fn no_request_cancels_another_sheet(t: &TestDb) {
    use std::collections::{BTreeMap, BTreeSet};
    let (w, token) = imported(t).await;
    let (status, page) = w.get(Some(&token), "/households?per_page=500").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    let town = items[0]["town"]["id"].as_i64().unwrap();
    let mut serves: BTreeMap<String, (i64, BTreeSet<i64>)> = BTreeMap::new();
    for h in items {
        let village = h["village"]["id"].as_i64().unwrap();
        for role in ["first_helper", "second_helper"] {
            let helper = &h[role];
            let phone = helper["phone"].as_str().unwrap().to_string();
            let id = helper["id"].as_i64().unwrap();
            serves
                .entry(phone)
                .or_insert((id, BTreeSet::new()))
                .1
                .insert(village);
        }
    }
    let villages: BTreeSet<i64> = serves.values().flat_map(|(_, v)| v.clone()).collect();
    // Every village's sheet: phone → (village of the sheet, code).
    let mut printed = BTreeMap::new();
    for &v in &villages {
        let (codes, _) = issue_codes(&w, &token, &format!("village={v}")).await;
        printed.extend(codes.into_iter().map(|(p, c)| (p, (v, c))));
    }
    assert_eq!(printed.len(), serves.len(), "every helper is on one sheet");

    // Asked town-wide, no code changes; the empty sheet says why.
    let (codes, held) = issue_codes(&w, &token, &format!("town={town}")).await;
    assert!(codes.is_empty(), "{codes:?}");
    assert_eq!(held, serves.len());
    let (codes, held) = issue_codes(&w, &token, &format!("town={town}&reissue=true")).await;
    assert!(
        codes.is_empty(),
        "the town-wide sheet printed none: {codes:?}"
    );
    // And says it left every helper out, on SQLite as on PostgreSQL (QA s29c K5).
    assert_eq!(held, serves.len());

    // One helper's lost slip.
    let (lost, (lost_id, _)) = serves.iter().next().unwrap();
    let (codes, held) = issue_codes(&w, &token, &format!("helper={lost_id}")).await;
    assert_eq!(codes.keys().collect::<Vec<_>>(), [lost], "{codes:?}");
    assert_eq!(held, 0);
    let slip = codes[lost].clone();

    // 孔玉梅 (河口村, 李家村) moved: her code is of a sheet of a village she left.
    let moved = "18893287921";
    let hers = &serves[moved].1;
    let left = *villages.iter().find(|v| !hers.contains(v)).unwrap();
    {
        use bangfu_server::entities::account;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        account::Entity::update_many()
            .col_expr(account::Column::EnrollmentPlaceId, Expr::value(left))
            .filter(account::Column::Username.eq(moved))
            .exec(&t.db)
            .await
            .unwrap();
    }
    let here = *hers.iter().next().unwrap();
    let (codes, _) = issue_codes(&w, &token, &format!("village={here}&reissue=true")).await;
    let reprinted = codes
        .get(moved)
        .unwrap_or_else(|| panic!("her new village's reprint takes her code back: {codes:?}"))
        .clone();

    assert_eq!(
        enroll(&w, lost, &printed[lost].1).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(enroll(&w, lost, &slip).await, StatusCode::OK);
    assert_eq!(
        enroll(&w, moved, &printed[moved].1).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(enroll(&w, moved, &reprinted).await, StatusCode::OK);
    // The other sheets' codes all still work.
    let others: Vec<_> = printed
        .iter()
        .filter(|(p, (v, _))| *v != here && *p != lost && p.as_str() != moved)
        .collect();
    assert!(!others.is_empty());
    for (phone, (_, code)) in others {
        assert_eq!(enroll(&w, phone, code).await, StatusCode::OK, "{phone}");
    }

    // One helper's code that cannot be issued says why.
    let (status, body) = w
        .post_json(
            Some(&token),
            &format!("/enrollment/codes?format=json&helper={lost_id}"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("already enrolled"),
        "{body}"
    );
    let (status, body) = w
        .post_json(
            Some(&token),
            "/enrollment/codes?format=json&helper=999999",
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Named with a village they are not paired in, a helper is not "not found" (I9).
    let (status, body) = w
        .post_json(
            Some(&token),
            &format!(
                "/enrollment/codes?format=json&helper={}&village={left}",
                serves[moved].0
            ),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("is not paired"),
        "{body}"
    );
}
db_test!(
    no_request_cancels_a_sheet_it_does_not_reprint,
    no_request_cancels_another_sheet
);

/// QA s29a I2: requests at the same moment (a double click, two clerks) give out each
/// code once: the later ones find the codes the first printed in force and leave those
/// helpers out, so no sheet handed out is void. PostgreSQL ran them side by side.
async fn simultaneous_requests(t: &TestDb) {
    let (w, token) = imported(t).await;
    let ask = || issue_codes(&w, &token, "");
    let (a, b, c) = tokio::join!(ask(), ask(), ask());
    let sheets = [a, b, c];
    let printed: Vec<(&String, &String)> = sheets.iter().flat_map(|(codes, _)| codes).collect();
    let phones: std::collections::BTreeSet<&String> = printed.iter().map(|(p, _)| *p).collect();
    assert_eq!(phones.len(), printed.len(), "each helper on one sheet");
    assert_eq!(printed.len(), 24, "every helper of the fixture has a code");
    for (_, held) in sheets.iter().filter(|(codes, _)| codes.is_empty()) {
        assert_eq!(*held, 24);
    }
    for (phone, code) in printed.iter().step_by(6) {
        assert_eq!(enroll(&w, phone, code).await, StatusCode::OK, "{phone}");
    }
}
db_test!(
    requests_at_the_same_moment_give_each_code_once,
    simultaneous_requests
);

/// QA s29a I3: the server's command line told to write the sheet where it cannot
/// changes no code (the codes would be in force and on no sheet); written where it can,
/// the sheet has every helper's code and is private to its owner.
#[test]
fn the_command_line_opens_the_sheet_before_issuing_codes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ledger = dir.path().join("ledger.csv");
    std::fs::write(&ledger, FIXTURE).unwrap();
    let run = |args: &[&std::ffi::OsStr]| bangfu_tests::server_command(&data, args);
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let (ok, err) = run(&[
        os("import-ledger"),
        ledger.as_os_str(),
        os("--county"),
        os("测试县"),
        os("--create-county"),
    ]);
    assert!(ok, "{err}");
    let nowhere = dir.path().join("no-such-dir").join("codes.csv");
    let (ok, err) = run(&[
        os("enrollment-codes"),
        os("--town"),
        os("东城镇"),
        os("--out"),
        nowhere.as_os_str(),
    ]);
    assert!(!ok && err.contains("cannot write"), "{err}");
    let sheet = dir.path().join("codes.csv");
    let (ok, err) = run(&[
        os("enrollment-codes"),
        os("--town"),
        os("东城镇"),
        os("--out"),
        sheet.as_os_str(),
    ]);
    assert!(ok, "{err}");
    let csv = std::fs::read_to_string(&sheet).unwrap();
    assert_eq!(csv.lines().count(), 25, "24 codes and the header: {csv}");
    let mode = std::fs::metadata(&sheet).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Asked again into the same file, the sheet handed out is kept, not emptied (QA
    // s29c K9).
    let printed = std::fs::read_to_string(&sheet).unwrap();
    let (ok, err) = run(&[
        os("enrollment-codes"),
        os("--town"),
        os("东城镇"),
        os("--out"),
        sheet.as_os_str(),
    ]);
    assert!(ok && err.contains("no new code"), "{err}");
    assert_eq!(std::fs::read_to_string(&sheet).unwrap(), printed);
    // Asked again, the command line leaves them out and names its own option.
    let again = dir.path().join("again.csv");
    let (ok, err) = run(&[
        os("enrollment-codes"),
        os("--town"),
        os("东城镇"),
        os("--out"),
        again.as_os_str(),
    ]);
    assert!(ok && err.contains("24 helper(s) holding a code"), "{err}");
    let csv = std::fs::read_to_string(&again).unwrap();
    assert!(
        csv.contains("另有24名") && csv.contains("--reissue"),
        "{csv}"
    );
    // A report written to a file is private too: names, phones and misses (QA s29b J17).
    use chrono::Datelike;
    let today = bangfu_tests::china_today();
    let quarter = format!("{}Q{}", today.year(), today.month0() / 3 + 1);
    let report = dir.path().join("town.csv");
    let (ok, err) = run(&[
        os("report"),
        os("town"),
        os("--town"),
        os("东城镇"),
        os("--quarter"),
        std::ffi::OsStr::new(&quarter),
        os("--format"),
        os("csv"),
        os("--out"),
        report.as_os_str(),
    ]);
    assert!(ok, "{err}");
    let mode = std::fs::metadata(&report).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
