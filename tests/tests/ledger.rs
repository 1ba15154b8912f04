//! The pairing ledger end to end: import from the official layout, idempotent re-import,
//! all-or-nothing on errors, dry runs, history on a change of helper, and lossless export.
//! Every test runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::db_test;
use bangfu_server::demo::town_ledger;
use bangfu_server::ledger::ExportFormat;
use bangfu_server::ledger::export::write;
use bangfu_shared::Role;
use bangfu_tests::{FIXTURE, TestDb, World, office, with_bom};
use calamine::Reader;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};

async fn county_token(t: &TestDb, w: &World) -> String {
    office(t, w, "county", Role::CountyOffice, w.county_id).await;
    w.login("county").await
}

async fn counts(t: &TestDb) -> (u64, u64, u64, u64) {
    use bangfu_server::entities::{account, helper, household, pairing};
    (
        household::Entity::find().count(&t.db).await.unwrap(),
        helper::Entity::find().count(&t.db).await.unwrap(),
        pairing::Entity::find().count(&t.db).await.unwrap(),
        account::Entity::find().count(&t.db).await.unwrap(),
    )
}

async fn fixture_round_trip(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    let report = w
        .import_ok(
            &token,
            "?effective_from=2026-01-01&filed_on=2025-10-01",
            FIXTURE.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(report["rows"], 20);
    assert_eq!(report["households_created"], 20);
    assert_eq!(
        report["helpers_created"], 24,
        "20 first helpers + 4 second helpers: {report}"
    );
    assert_eq!(report["pairings_started"], 40);
    assert_eq!(report["accounts_created"], 24);
    assert_eq!(report["towns_created"], 1);
    assert_eq!(report["villages_created"], 6);
    let before = counts(t).await;

    // Re-importing the same file is a no-op.
    let again = w
        .import_ok(
            &token,
            "?effective_from=2026-02-01",
            FIXTURE.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(again["households_unchanged"], 20, "{again}");
    for field in [
        "households_created",
        "households_updated",
        "helpers_created",
        "pairings_started",
        "pairings_ended",
        "accounts_created",
    ] {
        assert_eq!(again[field], 0, "{field}: {again}");
    }
    assert_eq!(counts(t).await, before);

    // Export reproduces the official file byte for byte (plus the BOM for Excel).
    let (_, page) = w.get(Some(&token), "/households?per_page=1").await;
    let town_id = page["items"][0]["town"]["id"].as_i64().unwrap();
    let (status, csv) = w
        .get_bytes(&token, &format!("/ledger/export?town={town_id}&format=csv"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        csv,
        with_bom(FIXTURE),
        "export differs:\n{}",
        String::from_utf8_lossy(&csv)
    );

    // XLSX export opens with the Chinese headers, and importing it changes nothing.
    let (status, xlsx) = w
        .get_bytes(
            &token,
            &format!("/ledger/export?town={town_id}&format=xlsx"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut book =
        calamine::open_workbook_auto_from_rs(std::io::Cursor::new(xlsx.clone())).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    let header: Vec<String> = range
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(header, bangfu_shared::ledger::LEDGER_HEADERS.to_vec());
    assert_eq!(range.height(), 21);
    let via_xlsx = w.import_ok(&token, "", xlsx).await;
    assert_eq!(via_xlsx["households_unchanged"], 20, "{via_xlsx}");
    assert_eq!(counts(t).await, before);
    let (_, csv_again) = w
        .get_bytes(&token, &format!("/ledger/export?town={town_id}&format=csv"))
        .await;
    assert_eq!(csv_again, csv);
}
db_test!(
    fixture_imports_reimports_and_round_trips,
    fixture_round_trip
);

async fn three_bad_rows(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    let mut lines: Vec<String> = FIXTURE.lines().map(str::to_string).collect();
    lines[2] = lines[2].replace("17681453840", "1768145384"); // row 3: household phone too short
    lines[9] = lines[9].replace("蒋国庆", ""); // row 10: no head of household
    lines[16] = lines[16].replace(",因病,", ",,"); // row 17: no cause
    let (status, body) = w
        .post_bytes(&token, "/ledger/import", lines.join("\r\n").into_bytes())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "invalid_ledger");
    let details = body["details"].as_array().unwrap();
    let where_: Vec<(i64, &str)> = details
        .iter()
        .map(|d| (d["row"].as_i64().unwrap(), d["column"].as_str().unwrap()))
        .collect();
    assert_eq!(
        where_,
        vec![(3, "联系方式"), (10, "贫困户姓名"), (17, "致贫原因")],
        "{body}"
    );
    assert!(
        details[0]["reason"]
            .as_str()
            .unwrap()
            .contains("1768145384")
    );
    assert_eq!(
        counts(t).await,
        (0, 0, 0, 2),
        "nothing imported (only the admin and county accounts exist)"
    );
}
db_test!(
    a_file_with_three_bad_rows_imports_nothing_and_names_all_three,
    three_bad_rows
);

async fn dry_run(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    let report = w
        .import_ok(&token, "?dry_run=true", FIXTURE.as_bytes().to_vec())
        .await;
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["households_created"], 20);
    assert_eq!(counts(t).await, (0, 0, 0, 2));
}
db_test!(a_dry_run_reports_and_changes_nothing, dry_run);

/// `reason` as a URL query value.
fn query_value(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

async fn change_of_helper(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    w.import_ok(
        &token,
        "?effective_from=2025-01-01&filed_on=2024-10-01",
        FIXTURE.as_bytes().to_vec(),
    )
    .await;
    // Row 2's household (田晓东) gets a new first helper.
    let changed = FIXTURE.replacen(
        "黄志强,市住建局 主任科员,15907579383",
        "陈新华,市农业局 科员,13800138000",
        1,
    );

    // One month's notice and no reason: DOMAIN says keep it and flag it, never refuse.
    let report = w
        .import_ok(
            &token,
            "?effective_from=2025-03-01&filed_on=2025-02-01",
            changed.clone().into_bytes(),
        )
        .await;
    assert_eq!(report["pairings_ended"], 1, "{report}");
    assert_eq!(report["pairings_started"], 1);
    assert_eq!(report["short_notice"], 1);
    assert_eq!(report["helpers_created"], 1);
    assert!(report["errors"].as_array().unwrap().is_empty(), "{report}");
    let flagged = report["notices"].as_array().unwrap();
    assert_eq!(
        flagged.len(),
        1,
        "the short-notice change is listed: {report}"
    );
    assert_eq!(flagged[0]["row"], 2);
    assert_eq!(flagged[0]["column"], "第一帮扶责任人姓名");
    assert!(
        flagged[0]["reason"].as_str().unwrap().contains("2个月"),
        "{report}"
    );

    let (_, page) = w
        .get(Some(&token), "/households?q=%E7%94%B0%E6%99%93%E4%B8%9C")
        .await;
    let id = page["items"][0]["id"].as_i64().unwrap();
    let (status, detail) = w.get(Some(&token), &format!("/households/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let firsts: Vec<&serde_json::Value> = detail["pairings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["role"] == "first")
        .collect();
    assert_eq!(firsts.len(), 2, "history kept: {detail}");
    assert_eq!(firsts[0]["helper"]["name"], "陈新华");
    assert_eq!(firsts[0]["valid_from"], "2025-03-01");
    assert_eq!(firsts[0]["short_notice"], true);
    assert!(firsts[0]["reason"].is_null(), "{detail}");
    assert_eq!(firsts[1]["helper"]["name"], "黄志强");
    assert_eq!(firsts[1]["valid_to"], "2025-03-01");
    assert_eq!(firsts[1]["valid_from"], "2025-01-01");
}
db_test!(
    a_change_of_helper_ends_the_old_pairing_and_keeps_history,
    change_of_helper
);

async fn reason_only_on_changes(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    w.import_ok(
        &token,
        "?effective_from=2025-01-01&filed_on=2024-10-01",
        FIXTURE.as_bytes().to_vec(),
    )
    .await;
    // Row 2 changes first helper (filed in time); a new household joins.
    let mut file = FIXTURE.replacen(
        "黄志强,市住建局 主任科员,15907579383",
        "陈新华,市农业局 科员,13800138000",
        1,
    );
    file.push_str("21,高长青,东城镇东城三村,因病,医疗救助,13312345678,邓振华,市农业局 科员,13800138001,邓明,村委会主任,18600000001\r\n");
    let query = format!(
        "?effective_from=2025-06-01&filed_on=2025-03-01&reason={}",
        query_value("原帮扶人调动")
    );
    let report = w.import_ok(&token, &query, file.into_bytes()).await;
    assert_eq!(report["short_notice"], 0, "{report}");
    assert_eq!(report["pairings_started"], 3, "{report}");
    assert!(report["errors"].as_array().unwrap().is_empty(), "{report}");

    use bangfu_server::entities::pairing;
    use sea_orm::{ColumnTrait, QueryFilter};
    let started = pairing::Entity::find()
        .filter(pairing::Column::ValidFrom.eq(chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()))
        .all(&t.db)
        .await
        .unwrap();
    assert_eq!(started.len(), 3);
    let with_reason: Vec<_> = started.iter().filter(|p| p.reason.is_some()).collect();
    assert_eq!(
        with_reason.len(),
        1,
        "only the changed pairing: {started:?}"
    );
    assert_eq!(with_reason[0].reason.as_deref(), Some("原帮扶人调动"));
    assert_eq!(with_reason[0].role, "first");
}
db_test!(
    the_reason_is_written_only_on_the_pairings_an_import_changed,
    reason_only_on_changes
);

async fn retroactive_dates(t: &TestDb) {
    let w = World::new(t).await;
    let county = county_token(t, &w).await;
    w.import_ok(
        &county,
        "?effective_from=2025-01-01&filed_on=2024-10-01",
        FIXTURE.as_bytes().to_vec(),
    )
    .await;
    let (_, page) = w.get(Some(&county), "/households?per_page=1").await;
    let town_id = page["items"][0]["town"]["id"].as_i64().unwrap();
    office(t, &w, "town", Role::TownOffice, town_id).await;
    let town = w.login("town").await;
    let changed = FIXTURE.replacen(
        "黄志强,市住建局 主任科员,15907579383",
        "陈新华,市农业局 科员,13800138000",
        1,
    );
    let today = bangfu_tests::china_today();

    // A town office cannot move a change back into a quarter already reported.
    let (status, body) = w
        .post_bytes(
            &town,
            "/ledger/import?effective_from=2025-02-01&filed_on=2024-11-01",
            changed.clone().into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"].as_array().unwrap().len(), 1, "{body}");
    assert!(
        body["details"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("本季度"),
        "{body}"
    );

    // Nor can anyone file a change in the future.
    let tomorrow = today + chrono::Duration::days(1);
    let (status, body) = w
        .post_bytes(
            &county,
            &format!("/ledger/import?effective_from={today}&filed_on={tomorrow}"),
            changed.clone().into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["details"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("报备日期"),
        "{body}"
    );

    // The county office may, and re-importing the unchanged file is fine for the town.
    w.import_ok(
        &county,
        "?effective_from=2025-02-01&filed_on=2024-11-01",
        changed.clone().into_bytes(),
    )
    .await;
    let again = w
        .import_ok(&town, "?effective_from=2025-02-01", changed.into_bytes())
        .await;
    assert_eq!(again["pairings_started"], 0, "{again}");
}
db_test!(
    retroactive_changes_need_the_county_office_and_filing_dates_are_not_in_the_future,
    retroactive_dates
);

async fn helpers_by_phone(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;

    // Another county's file names 黄志强's phone for someone else.
    let other = bangfu_tests::county(t, "另一县").await;
    office(t, &w, "other", Role::CountyOffice, other).await;
    let other_token = w.login("other").await;
    let before = counts(t).await;
    let file = "序号,贫困户姓名,家庭地址(镇街、村),致贫原因,帮扶措施,联系方式,第一帮扶责任人姓名,工作单位及职务,联系方式,第二帮扶责任人姓名,工作单位及职务,联系方式\r\n\
                1,高长青,西港镇前进村,因病,医疗救助,13312345678,王芳,县农业局 科员,15907579383,邓振华,村委会主任,18600000001\r\n";
    let (status, body) = w
        .post_bytes(&other_token, "/ledger/import", file.as_bytes().to_vec())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let details = body["details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{body}");
    assert_eq!(details[0]["row"], 2);
    assert_eq!(details[0]["column"], "第一帮扶责任人姓名");
    assert!(
        details[0]["reason"].as_str().unwrap().contains("其他县"),
        "{body}"
    );
    assert!(
        !body.to_string().contains("黄志强"),
        "no other county's names: {body}"
    );

    // In the same county, another name on a stored phone is refused, not a rename.
    let renamed = FIXTURE.replacen("黄志强", "黄志刚", 1);
    let (status, body) = w
        .post_bytes(&token, "/ledger/import", renamed.into_bytes())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"][0]["row"], 2);
    assert!(
        body["details"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("已登记为「黄志强」"),
        "{body}"
    );

    // The same name with a full-width space in it is the same person.
    let spaced = FIXTURE.replacen("黄志强", "黄\u{3000}志强", 1);
    let report = w.import_ok(&token, "", spaced.into_bytes()).await;
    assert_eq!(report["helpers_updated"], 0, "{report}");
    assert_eq!(counts(t).await, before, "nothing renamed or added");
}
db_test!(
    a_helper_phone_is_never_taken_over_by_another_name_or_county,
    helpers_by_phone
);

async fn helper_limits(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    // A second file (another town) pairs row 2's first helper with another household: 一帮一 is broken.
    let other = "序号,贫困户姓名,家庭地址(镇街、村),致贫原因,帮扶措施,联系方式,第一帮扶责任人姓名,工作单位及职务,联系方式,第二帮扶责任人姓名,工作单位及职务,联系方式\r\n\
                 1,高长青,西港镇前进村,因病,医疗救助,13312345678,黄志强,市住建局 主任科员,15907579383,邓振华,村委会主任,18600000001\r\n";
    let (status, body) = w
        .post_bytes(&token, "/ledger/import", other.as_bytes().to_vec())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"][0]["column"], "第一帮扶责任人姓名");
    assert!(
        body["details"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("最多结对1户"),
        "{body}"
    );
    assert_eq!(
        counts(t).await.0,
        20,
        "the refused file left nothing behind"
    );
}
db_test!(helper_limits_count_across_files, helper_limits);

async fn thousand_households(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    let rows = town_ledger(0, 1000, 7);
    for format in [ExportFormat::Csv, ExportFormat::Xlsx] {
        let bytes = write(&rows, format).unwrap();
        let report = w.import_ok(&token, "", bytes.clone()).await;
        let created = report["households_created"].as_u64().unwrap();
        let unchanged = report["households_unchanged"].as_u64().unwrap();
        assert_eq!(created + unchanged, 1000, "{report}");
        let again = w.import_ok(&token, "", bytes).await;
        assert_eq!(again["households_unchanged"], 1000, "{again}");
        assert_eq!(again["pairings_started"], 0);
    }
    assert_eq!(counts(t).await, (1000, 1200, 2000, 1202));
    let (_, page) = w.get(Some(&token), "/households?page=3&per_page=100").await;
    assert_eq!(page["total"], 1000);
    assert_eq!(page["items"].as_array().unwrap().len(), 100);
    assert_eq!(page["items"][0]["head_name"], rows[200].head_name);
}
db_test!(
    a_thousand_households_import_from_csv_and_xlsx,
    thousand_households
);

async fn audit_is_append_only(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    let n = bangfu_server::entities::audit::Entity::find()
        .count(&t.db)
        .await
        .unwrap();
    assert!(
        n > 40,
        "every household, helper and pairing is audited: {n}"
    );
    assert!(
        t.db.execute_unprepared("UPDATE audit_log SET action = 'x'")
            .await
            .is_err()
    );
    assert!(
        t.db.execute_unprepared("DELETE FROM audit_log")
            .await
            .is_err()
    );
    assert_eq!(
        bangfu_server::entities::audit::Entity::find()
            .count(&t.db)
            .await
            .unwrap(),
        n
    );
}
db_test!(
    the_audit_log_refuses_updates_and_deletes,
    audit_is_append_only
);

db_test!(
    imports_of_one_file_at_the_same_time_create_its_households_once,
    concurrent_imports
);
async fn concurrent_imports(t: &TestDb) {
    // Three offices' clicks on the same new file at once: one set of households.
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    let tries: Vec<_> = (0..3)
        .map(|_| {
            spawn_import(
                &w.http,
                w.server.url("/ledger/import"),
                &token,
                FIXTURE.into(),
            )
        })
        .collect();
    for attempt in tries {
        let (status, report) = attempt.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{report}");
    }
    let once = counts(t).await;
    let households = FIXTURE.lines().count() as u64 - 1;
    assert_eq!(once.0, households, "no household created twice");
}

db_test!(
    pushes_wait_for_an_import_and_both_go_through,
    import_beside_pushes
);
async fn import_beside_pushes(t: &TestDb) {
    // A large import while a helper's device pushes.
    let mut f = bangfu_tests::scenario::Field::new(t).await;
    let big = write(&town_ledger(1, 400, 5), ExportFormat::Csv).unwrap();
    let import = spawn_import(&f.w.http, f.w.server.url("/ledger/import"), &f.county, big);
    for _ in 0..20 {
        let call = f.device.phone_call(f.household);
        let acks = f.push(&[call]).await.acks;
        assert_eq!(
            acks[0].status,
            bangfu_shared::sync::AckStatus::Accepted,
            "{acks:?}"
        );
    }
    let (status, report) = import.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{report}");
}

/// An import sent on its own task; its status and body.
fn spawn_import(
    http: &reqwest::Client,
    url: String,
    token: &str,
    body: Vec<u8>,
) -> tokio::task::JoinHandle<(StatusCode, String)> {
    let (http, token) = (http.clone(), token.to_string());
    tokio::spawn(async move {
        let resp = http
            .post(url)
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    })
}

db_test!(
    households_stored_as_typed_before_normalising_still_match,
    stored_as_typed
);
/// Before cells were normalised, names and phones were stored as typed ("田 晓东",
/// full-width digits). The same spreadsheet imported now matches those households
/// instead of creating them again, and rewrites them the normalised way.
async fn stored_as_typed(t: &TestDb) {
    use bangfu_server::entities::household;
    use sea_orm::{ActiveModelTrait, ColumnTrait, IntoActiveModel, QueryFilter, Set};
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    let before = counts(t).await;
    let h = household::Entity::find()
        .filter(household::Column::HeadName.eq("田晓东"))
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    let id = h.id;
    let mut typed = h.into_active_model();
    typed.head_name = Set("田 晓东".into());
    typed.phone = Set("１３９６７９２９０８１".into());
    typed.update(&t.db).await.unwrap();

    let report = w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    assert_eq!(report["households_created"], 0, "{report}");
    assert_eq!(counts(t).await, before);
    let h = household::Entity::find_by_id(id)
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (h.head_name.as_str(), h.phone.as_str()),
        ("田晓东", "13967929081")
    );
}

db_test!(
    a_change_filed_for_a_later_day_imports_again_unchanged,
    scheduled_change_again
);
/// A change of helper filed for a day two months ahead leaves the household with two
/// pairings holding today (the old until that day, the new from it). The same file
/// imported again changes nothing.
async fn scheduled_change_again(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    let changed = FIXTURE.replacen(
        "黄志强,市住建局 主任科员,15907579383",
        "邓新华,市住建局 科员,13700000007",
        1,
    );
    assert_ne!(changed, FIXTURE);
    let today = bangfu_tests::china_today();
    let later = today + chrono::Duration::days(70);
    let query = format!("?effective_from={later}&filed_on={today}");
    let first = w
        .import_ok(&token, &query, changed.clone().into_bytes())
        .await;
    assert_eq!(first["pairings_started"], 1, "{first}");
    let before = counts(t).await;
    let again = w.import_ok(&token, "", changed.into_bytes()).await;
    assert_eq!(
        (&again["pairings_started"], &again["pairings_ended"]),
        (&serde_json::json!(0), &serde_json::json!(0)),
        "{again}"
    );
    assert_eq!(counts(t).await, before);
}
