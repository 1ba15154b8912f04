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

/// The id of a town by name.
async fn town_id(t: &TestDb, name: &str) -> i64 {
    use bangfu_server::entities::jurisdiction;
    use sea_orm::{ColumnTrait, QueryFilter};
    jurisdiction::Entity::find()
        .filter(jurisdiction::Column::Name.eq(name))
        .filter(jurisdiction::Column::Level.eq("town"))
        .one(&t.db)
        .await
        .unwrap()
        .unwrap()
        .id
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
            "?effective_from=2026-01-01&filed_on=2025-10-01&retroactive=true",
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

/// QA s33c C4: a workbook's text is held whole while it is read, so ledger files take an
/// office read's slot (as reports and exports do): while other offices' reports hold
/// every slot, an import waits its turn, and goes ahead when one is free.
async fn file_waits_for_a_slot(t: &TestDb) {
    use bangfu_server::services::cpu_slots::CpuSlots;
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    // The SQLite and PostgreSQL runs take turns: each holds every slot.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    let slots = CpuSlots::office_reads();
    let mut held = Vec::new();
    for _ in 0..slots.size() {
        held.push(slots.hold().await.unwrap());
    }
    let import = w.post_bytes(
        &token,
        "/ledger/import?dry_run=true",
        FIXTURE.as_bytes().to_vec(),
    );
    tokio::pin!(import);
    let waited = tokio::time::timeout(std::time::Duration::from_millis(500), &mut import).await;
    assert!(waited.is_err(), "answered while every slot was held");
    drop(held);
    let (status, report) = import.await;
    assert_eq!(status, StatusCode::OK, "{report}");
}
db_test!(
    a_ledger_file_waits_for_an_office_reads_slot,
    file_waits_for_a_slot
);

/// QA s24a F1: the towns one import creates are created in the order the file first
/// names them, so their ids (and the export's order) do not change from run to run.
async fn towns_in_file_order(t: &TestDb) {
    use bangfu_server::entities::jurisdiction;
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    let mut lines: Vec<String> = FIXTURE.lines().map(str::to_string).collect();
    for (line, town) in lines
        .iter_mut()
        .skip(1)
        .zip(["南河镇", "北山镇", "中和街道"])
    {
        *line = line.replacen("东城镇", town, 1);
    }
    let report = w
        .import_ok(
            &token,
            "?effective_from=2026-01-01&filed_on=2025-10-01&retroactive=true",
            (lines.join("\n") + "\n").into_bytes(),
        )
        .await;
    assert_eq!(report["towns_created"], 4, "{report}");
    let names: Vec<String> = jurisdiction::Entity::find()
        .filter(jurisdiction::Column::Level.eq("town"))
        .order_by_asc(jurisdiction::Column::Id)
        .all(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.name)
        .collect();
    assert_eq!(names, ["南河镇", "北山镇", "中和街道", "东城镇"]);
}
db_test!(
    the_towns_an_import_creates_take_ids_in_file_order,
    towns_in_file_order
);

/// `reason` as a URL query value.
fn query_value(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

async fn change_of_helper(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    w.import_ok(
        &token,
        "?effective_from=2025-01-01&filed_on=2024-10-01&retroactive=true",
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
            "?effective_from=2025-03-01&filed_on=2025-02-01&retroactive=true",
            changed.clone().into_bytes(),
        )
        .await;
    assert_eq!(report["pairings_ended"], 1, "{report}");
    assert_eq!(report["pairings_started"], 1);
    assert_eq!(report["short_notice"], 1);
    assert_eq!(report["helpers_created"], 1);
    assert!(report["errors"].as_array().unwrap().is_empty(), "{report}");
    // The change is dated back (the county office may): that is a notice of its own.
    let notices = report["notices"].as_array().unwrap();
    let (flagged, dated_back): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) =
        notices.iter().partition(|n| n["row"] != 0);
    assert_eq!(dated_back.len(), 1, "{report}");
    assert!(
        dated_back[0]["reason"]
            .as_str()
            .unwrap()
            .contains("早于本月")
    );
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
        "?effective_from=2025-01-01&filed_on=2024-10-01&retroactive=true",
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
        "?effective_from=2025-06-01&filed_on=2025-03-01&retroactive=true&reason={}",
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
        "?effective_from=2025-01-01&filed_on=2024-10-01&retroactive=true",
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

    // The county office may, once it confirms that the ended quarters are judged again
    // (QA s23b F7), and re-importing the unchanged file is fine for the town.
    let (status, body) = w
        .post_bytes(
            &county,
            "/ledger/import?effective_from=2025-02-01&filed_on=2024-11-01",
            changed.clone().into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let reason = body["details"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("早于本季度")
            && reason.contains("新帮扶责任人要对其生效日起的周期负责")
            && reason.contains("retroactive=true"),
        "{body}"
    );
    w.import_ok(
        &county,
        "?effective_from=2025-02-01&filed_on=2024-11-01&retroactive=true",
        changed.clone().into_bytes(),
    )
    .await;
    let again = w
        .import_ok(&town, "?effective_from=2025-02-01", changed.into_bytes())
        .await;
    assert_eq!(again["pairings_started"], 0, "{again}");

    // Within the current quarter too, a town office may not date a change before this
    // month: the windows already ended would change hands, the old helper's misses
    // erased or charged to a helper who could not have visited (QA s21 F8).
    let month = bangfu_shared::policy::window_of(today, 1).0;
    let back = month - chrono::Duration::days(1);
    let with = |name: &str| {
        FIXTURE.replacen(
            "黄志强,市住建局 主任科员,15907579383",
            &format!("{name},市农业局 科员,1380013800{}", name.chars().count()),
            1,
        )
    };
    let query =
        |day: chrono::NaiveDate| format!("/ledger/import?effective_from={day}&filed_on={day}");
    let (status, body) = w
        .post_bytes(&town, &query(back), with("周新华").into_bytes())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let reason = body["details"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("须由县（市）扶贫办导入"), "{body}");
    // The county office may, told what it changes (confirming it when the day falls
    // in the quarter before).
    let confirm = if back < bangfu_shared::report::Quarter::of(today).start() {
        "&retroactive=true"
    } else {
        ""
    };
    let (status, body) = w
        .post_bytes(
            &county,
            &format!("{}{confirm}", query(back)),
            with("周新华").into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["notices"].to_string().contains("早于本月"), "{body}");
    // From this month's first day, the town office may.
    let (status, body) = w
        .post_bytes(&town, &query(month), with("吴新华新").into_bytes())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body["notices"].to_string().contains("早于本月"), "{body}");
}
db_test!(
    retroactive_changes_need_the_county_office_and_filing_dates_are_not_in_the_future,
    retroactive_dates
);

/// QA s32a U1: a county's first ledger may be dated back (no quarter of it was
/// reported), but a household added later, paired from a day in an ended quarter and
/// filed then, would charge its helper with reported windows: refused unless confirmed,
/// as a change of helper dated there is.
async fn added_back(t: &TestDb) {
    let w = World::new(t).await;
    let county = county_token(t, &w).await;
    w.import_ok(
        &county,
        "?effective_from=2025-01-01&filed_on=2024-10-01",
        FIXTURE.as_bytes().to_vec(),
    )
    .await;
    let header = FIXTURE.lines().next().unwrap();
    let added = format!(
        "{header}\n90,李四山,东城镇东城李家村,因病,医疗救助,13967921004,韩梅,市民政局 科员,13900000014,孙丽,镇干部,18800000002\n"
    );
    let before = counts(t).await;
    let back = "/ledger/import?effective_from=2025-02-01&filed_on=2025-01-15";
    let (status, body) = w
        .post_bytes(&county, back, added.clone().into_bytes())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let reason = body["details"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("新增户")
            && reason.contains("已结束季度")
            && reason.contains("retroactive=true"),
        "{body}"
    );
    assert_eq!(counts(t).await, before, "nothing was imported");
    // Filed today, the ended quarter still gains the households (QA s32d X1).
    let (status, body) = w
        .post_bytes(
            &county,
            "/ledger/import?effective_from=2025-02-01",
            added.clone().into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("户数"), "{body}");
    assert_eq!(counts(t).await, before, "nothing was imported");
    // Confirmed, it is imported.
    let done = w
        .import_ok(
            &county,
            &format!("{}&retroactive=true", &back["/ledger/import".len()..]),
            added.into_bytes(),
        )
        .await;
    assert_eq!(done["pairings_started"], 2, "{done}");
}
db_test!(
    a_household_added_back_into_an_ended_quarter_needs_confirming,
    added_back
);

/// QA s28a F4: a change of helper filed after windows it dates back over had ended tells
/// the county office that those windows are no one's, each with how many households,
/// rather than that the new helper answers for every window from the effective day.
async fn filed_late_notice(t: &TestDb) {
    let w = World::new(t).await;
    let county = county_token(t, &w).await;
    w.import_ok(
        &county,
        "?effective_from=2024-01-01&filed_on=2023-12-01&retroactive=true",
        FIXTURE.as_bytes().to_vec(),
    )
    .await;
    // 田晓东's first helper changes from the first day of the month before last, filed
    // today: that month's and last month's call windows (monthly under laizhou-2018)
    // ended before anyone told the new helper.
    let today = bangfu_tests::china_today();
    let this_month = bangfu_shared::policy::window_of(today, 1).0;
    let on = this_month - chrono::Months::new(2);
    let changed = FIXTURE.replacen(
        "黄志强,市住建局 主任科员,15907579383",
        "周新华,市农业局 科员,13800138004",
        1,
    );
    let report = w
        .import_ok(
            &county,
            &format!("?effective_from={on}&filed_on={today}&retroactive=true"),
            changed.into_bytes(),
        )
        .await;
    let notices: Vec<&str> = report["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["reason"].as_str().unwrap())
        .collect();
    let late = notices
        .iter()
        .find(|n| n.starts_with(&format!("报备日期{today}晚于以下考勤周期结束")))
        .unwrap_or_else(|| panic!("{notices:?}"));
    for start in [on, on + chrono::Months::new(1)] {
        let (from, to) = bangfu_shared::policy::window_of(start, 1);
        let phone = format!(
            "第一帮扶责任人电话（{}~{}）：1户",
            from.format("%m-%d"),
            to.format("%m-%d")
        );
        assert!(late.contains(&phone), "{late}");
    }
    assert!(
        !late.contains(&format!("（{}~", this_month.format("%m-%d"))),
        "this month's windows have not ended: {late}"
    );
    assert!(
        notices
            .iter()
            .any(|n| n.contains(&format!("但{today}报备前已结束的周期除外（无人负责）"))),
        "{notices:?}"
    );
}
db_test!(
    a_change_filed_after_windows_ended_says_they_are_no_ones,
    filed_late_notice
);

async fn helpers_by_phone(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;

    // Another county's file names 黄志强's phone for someone else.
    let other = bangfu_tests::county(t, "另一县").await;
    office(t, &w, "other", Role::CountyOffice, other).await;
    let other_token = w.login("other").await;
    office(
        t,
        &w,
        "dongcheng",
        Role::TownOffice,
        town_id(t, "东城镇").await,
    )
    .await;
    let town_token = w.login("dongcheng").await;
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
        details[0]["reason"]
            .as_str()
            .unwrap()
            .contains("已在别处登记"),
        "{body}"
    );
    assert!(
        !body.to_string().contains("黄志强") && !body.to_string().contains("其他县"),
        "neither another county's names nor that it is another county's: {body}"
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

    // A town office is told the stored name of its own town's helper (its household
    // list names them anyway)...
    let renamed = FIXTURE.replacen("黄志强", "黄志刚", 1);
    let (status, body) = w
        .post_bytes(&town_token, "/ledger/import", renamed.into_bytes())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"][0]["row"], 2);
    assert!(
        body["details"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("已登记为「黄志强」，此处为「黄志刚」"),
        "{body}"
    );
    // ...not another town's helper's: that is the county office's to see.
    let xigang = "序号,贫困户姓名,家庭地址(镇街、村),致贫原因,帮扶措施,联系方式,第一帮扶责任人姓名,工作单位及职务,联系方式,第二帮扶责任人姓名,工作单位及职务,联系方式\r\n\
                  1,高长青,西港镇前进村,因病,医疗救助,13312345678,王芳,县农业局 科员,13312340099,邓振华,村委会主任,18600000001\r\n";
    assert_eq!(counts(t).await, before, "the refused files wrote nothing");
    w.import_ok(&token, "", xigang.as_bytes().to_vec()).await;
    let before = counts(t).await;
    let borrowed = FIXTURE.replacen("15907579383", "13312340099", 1);
    let (status, body) = w
        .post_bytes(&town_token, "/ledger/import", borrowed.into_bytes())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["details"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("县（市）扶贫办"),
        "{body}"
    );
    assert!(!body.to_string().contains("王芳"), "{body}");

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
    // The same file with row 3 given row 2's first helper: both rows are named as this
    // file's, none as a pairing outside it (QA s30b M2).
    let mut lines: Vec<String> = FIXTURE.lines().map(str::to_string).collect();
    let first_helper: Vec<String> = lines[1]
        .split(',')
        .skip(6)
        .take(3)
        .map(String::from)
        .collect();
    let mut cells: Vec<String> = lines[2].split(',').map(String::from).collect();
    cells.splice(6..9, first_helper);
    lines[2] = cells.join(",");
    let file = lines.join("\r\n").into_bytes();
    let tomorrow = bangfu_tests::china_today().succ_opt().unwrap();
    let query = format!("/ledger/import?dry_run=true&effective_from={tomorrow}");
    let (status, body) = w.post_bytes(&token, &query, file).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let reason = body["details"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("（本文件第2、3行）"), "{body}");
    assert!(!reason.contains("本文件以外"), "{body}");
}
db_test!(helper_limits_count_across_files, helper_limits);

/// A 序号 another household of the town keeps is refused, naming that household, and
/// nothing is imported; a file that renumbers the households it lists may swap their
/// numbers (QA s22c F2).
async fn stored_seqs(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    let header = FIXTURE.lines().next().unwrap();
    let new_household = "3,新户甲,东城镇东城河口村,因病,医疗救助,13900000009,黄新,市住建局 科员,13900000010,孔新,村委会委员,13900000011";
    let (status, body) = w
        .post_bytes(
            &token,
            "/ledger/import?dry_run=true",
            format!("{header}\r\n{new_household}\r\n").into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"][0]["column"], "序号", "{body}");
    let reason = body["details"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("序号3已是本镇街另一户（叶秀兰）的序号"),
        "{reason}"
    );
    assert_eq!(counts(t).await.0, 20, "nothing imported");
    // Rows 1 and 2 swap numbers: each frees the number the other takes.
    let rows: Vec<String> = FIXTURE
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_once(',') {
            Some(("1", rest)) => format!("2,{rest}"),
            Some(("2", rest)) => format!("1,{rest}"),
            _ => l.to_string(),
        })
        .collect();
    let report = w
        .import_ok(
            &token,
            "",
            format!("{header}\r\n{}\r\n", rows.join("\r\n")).into_bytes(),
        )
        .await;
    assert_eq!(report["households_updated"], 2, "{report}");
    let (_, export) = w.get_bytes(&token, "/ledger/export?format=csv").await;
    let export = String::from_utf8(export).unwrap();
    assert!(
        export.contains("\n1,曾淑珍,") && export.contains("\n2,田晓东,"),
        "{export}"
    );
}
db_test!(a_seq_another_household_keeps_is_refused, stored_seqs);

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

/// The ledger header line.
const HEADER: &str = "序号,贫困户姓名,家庭地址(镇街、村),致贫原因,帮扶措施,联系方式,第一帮扶责任人姓名,工作单位及职务,联系方式,第二帮扶责任人姓名,工作单位及职务,联系方式";

/// A town office cannot take over another town's helper through its ledger: naming them
/// (as first or second helper, with the right name) is refused for that row, nothing
/// about them changes, and the county office's import may still do it.
async fn town_office_cannot_take_over(t: &TestDb) {
    let w = World::new(t).await;
    let county = county_token(t, &w).await;
    w.import_ok(&county, "", FIXTURE.as_bytes().to_vec()).await;
    let rows = town_ledger(1, 5, 9);
    w.import_ok(&county, "", write(&rows, ExportFormat::Csv).unwrap())
        .await;
    let xigang = town_id(t, &rows[0].town).await;
    office(t, &w, "xigang", Role::TownOffice, xigang).await;
    let town = w.login("xigang").await;
    let helper_of = |phone: &'static str| async move {
        use bangfu_server::entities::{account, helper};
        use sea_orm::{ColumnTrait, QueryFilter};
        let h = helper::Entity::find()
            .filter(helper::Column::Phone.eq(phone))
            .one(&t.db)
            .await
            .unwrap()
            .unwrap();
        let a = account::Entity::find()
            .filter(account::Column::Username.eq(phone))
            .one(&t.db)
            .await
            .unwrap()
            .unwrap();
        (h.unit_position, a.role)
    };
    let before = (counts(t).await, helper_of("15907579383").await);
    assert_eq!(before.1.1, "first_helper");

    // 黄志强 (东城镇's first helper of 田晓东) as second helper of a new 西港镇 household,
    // in a new unit; and 周雪梅 as a first helper.
    let village = format!("{}{}", rows[0].town, rows[0].village);
    let file = format!(
        "{HEADER}\r\n\
         91,新农户甲,{village},因病,医疗救助,13312340001,张新,镇政府 科员,13700000001,黄志强,某局 局长,15907579383\r\n\
         92,新农户乙,{village},因病,医疗救助,13312340002,周雪梅,市教育局 副科长,18146100330,李新,镇政府 科员,13700000002\r\n"
    );
    let (status, body) = w
        .post_bytes(&town, "/ledger/import", file.clone().into_bytes())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let details = body["details"].as_array().unwrap();
    let where_: Vec<(i64, &str)> = details
        .iter()
        .map(|d| (d["row"].as_i64().unwrap(), d["column"].as_str().unwrap()))
        .collect();
    assert_eq!(
        where_,
        vec![(2, "第二帮扶责任人姓名"), (3, "第一帮扶责任人姓名")],
        "{body}"
    );
    for d in details {
        assert!(
            d["reason"]
                .as_str()
                .unwrap()
                .contains("请由县（市）扶贫办导入此行"),
            "{body}"
        );
    }
    assert_eq!(
        (counts(t).await, helper_of("15907579383").await),
        before,
        "no unit rewritten, no second-helper role, nothing imported"
    );

    // The county office may (周雪梅's row aside: she is 一帮一 already).
    let first_row: String = file.lines().take(2).map(|l| format!("{l}\r\n")).collect();
    let report = w.import_ok(&county, "", first_row.into_bytes()).await;
    assert_eq!(report["households_created"], 1, "{report}");
    assert_eq!(
        helper_of("15907579383").await,
        ("某局 局长".to_string(), "second_helper".to_string())
    );
}
db_test!(
    a_town_office_cannot_take_over_another_towns_helper,
    town_office_cannot_take_over
);

/// The place of each error in a 422 answer: (row, column index, reason).
fn error_places(body: &serde_json::Value) -> Vec<(i64, i64, String)> {
    body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["row"].as_i64().unwrap(),
                d["column_index"].as_i64().unwrap(),
                d["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The number of towns and villages stored.
async fn places(t: &TestDb) -> u64 {
    use bangfu_server::entities::jurisdiction;
    jurisdiction::Entity::find().count(&t.db).await.unwrap()
}

/// A town office's file with a row of another town and rows of its own that break rules
/// only the database can check (a helper over 一帮一, a stored helper's phone under
/// another name, a phone that is another account's login) is answered once, with every
/// error: the other town's row does not hide the others until it is fixed. Nothing is
/// written, in a dry run or not.
async fn every_stage_in_one_answer(t: &TestDb) {
    let w = World::new(t).await;
    let county = county_token(t, &w).await;
    w.import_ok(&county, "", FIXTURE.as_bytes().to_vec()).await;
    let rows = town_ledger(1, 5, 9);
    w.import_ok(&county, "", write(&rows, ExportFormat::Csv).unwrap())
        .await;
    let dongcheng = town_id(t, "东城镇").await;
    office(t, &w, "dongcheng", Role::TownOffice, dongcheng).await;
    // An office whose login happens to be a phone number.
    office(t, &w, "13700000077", Role::TownOffice, dongcheng).await;
    let town = w.login("dongcheng").await;
    let before = (counts(t).await, places(t).await);
    let other = format!("{}{}", rows[0].town, rows[0].village);
    let file = format!(
        "{HEADER}\r\n\
         91,新农户甲,{other},因病,医疗救助,13312340001,张新,镇政府 科员,13700000001,李新,镇政府 科员,13700000002\r\n\
         92,新农户乙,东城镇东城河口村,因病,医疗救助,13312340002,周雪梅,市教育局 副科长,18146100330,赵一,镇政府 科员,13700000011\r\n\
         93,新农户丙,东城镇东城河口村,因病,医疗救助,13312340003,黄志刚,市住建局 主任科员,15907579383,赵二,镇政府 科员,13700000012\r\n\
         94,新农户丁,东城镇东城李家村,因病,医疗救助,13312340004,赵三,镇政府 科员,13700000077,赵四,镇政府 科员,13700000013\r\n\
         95,新农户戊,东城镇东城新村,因病,医疗救助,13312340005,赵五,镇政府 科员,13700000014,赵六,镇政府 科员,13700000015\r\n"
    );
    for query in ["?dry_run=true", ""] {
        let (status, body) = w
            .post_bytes(
                &town,
                &format!("/ledger/import{query}"),
                file.clone().into_bytes(),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let errors = error_places(&body);
        let where_: Vec<(i64, i64)> = errors.iter().map(|(r, c, _)| (*r, *c)).collect();
        // Address (3), first helper's name (7), first helper's phone (9).
        assert_eq!(where_, vec![(2, 3), (3, 7), (4, 7), (5, 9)], "{body}");
        for (row, part) in [
            (0, "本账号只能导入「东城镇」"),
            (1, "最多结对1户"),
            (2, "已登记为「黄志强」，此处为「黄志刚」"),
            (3, "手机号13700000077已被其他账号使用"),
        ] {
            assert!(errors[row].2.contains(part), "{part}: {body}");
        }
        assert_eq!(
            (counts(t).await, places(t).await),
            before,
            "{query}: no household, helper, pairing, account or village written"
        );
    }
}
db_test!(
    a_town_offices_import_reports_the_errors_of_every_stage_at_once,
    every_stage_in_one_answer
);

/// A file with a row whose cell is invalid (a household phone too short) and rows that
/// break rules only the database can check (a stored helper's phone under another name,
/// a helper over 一帮一, a phone that is an office's login) is answered once, with every
/// error and its row: the invalid row does not hide the others until it is fixed. The
/// invalid row is left out of the database checks, so its own helper (a stored phone
/// under another name) gets no follow-on error. Nothing is written, dry run or not.
async fn cell_and_database_errors_at_once(t: &TestDb) {
    let w = World::new(t).await;
    let county = county_token(t, &w).await;
    w.import_ok(&county, "", FIXTURE.as_bytes().to_vec()).await;
    let dongcheng = town_id(t, "东城镇").await;
    office(t, &w, "13700000077", Role::TownOffice, dongcheng).await;
    let before = (counts(t).await, places(t).await);
    let file = format!(
        "{HEADER}\r\n\
         91,新农户甲,东城镇东城河口村,因病,医疗救助,1331234,黄志刚,市住建局 主任科员,15907579383,李新,镇政府 科员,13700000002\r\n\
         92,新农户乙,东城镇东城河口村,因病,医疗救助,13312340002,黄志刚,市住建局 主任科员,15907579383,赵一,镇政府 科员,13700000011\r\n\
         93,新农户丙,东城镇东城李家村,因病,医疗救助,13312340003,周雪梅,市教育局 副科长,18146100330,赵二,镇政府 科员,13700000012\r\n\
         94,新农户丁,东城镇东城新村,因病,医疗救助,13312340004,赵三,镇政府 科员,13700000077,赵四,镇政府 科员,13700000013\r\n"
    );
    for query in ["?dry_run=true", ""] {
        let (status, body) = w
            .post_bytes(
                &county,
                &format!("/ledger/import{query}"),
                file.clone().into_bytes(),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let errors = error_places(&body);
        let where_: Vec<(i64, i64)> = errors.iter().map(|(r, c, _)| (*r, *c)).collect();
        // Household phone (6), first helper's name (7) twice, first helper's phone (9).
        assert_eq!(where_, vec![(2, 6), (3, 7), (4, 7), (5, 9)], "{body}");
        for (row, part) in [
            (0, "「1331234」不是有效的电话号码"),
            (1, "电话15907579383已登记为「黄志强」"),
            (2, "最多结对1户"),
            (3, "手机号13700000077已被其他账号使用"),
        ] {
            assert!(errors[row].2.contains(part), "{part}: {body}");
        }
        assert_eq!(
            (counts(t).await, places(t).await),
            before,
            "{query}: no household, helper, pairing, account or village written"
        );
    }
}
db_test!(
    a_file_with_an_invalid_cell_and_database_rule_errors_lists_them_all_at_once,
    cell_and_database_errors_at_once
);

/// A row of a town the county does not have, in a town office's file, gets its one
/// error: its village is not created, and its helpers (one over 一帮一, one a stored
/// phone under another name) are not looked at, nor do they hold up the other rows.
async fn unknown_town_no_cascade(t: &TestDb) {
    let w = World::new(t).await;
    let county = county_token(t, &w).await;
    w.import_ok(&county, "", FIXTURE.as_bytes().to_vec()).await;
    office(
        t,
        &w,
        "dongcheng",
        Role::TownOffice,
        town_id(t, "东城镇").await,
    )
    .await;
    let town = w.login("dongcheng").await;
    let before = (counts(t).await, places(t).await);
    let file = format!(
        "{HEADER}\r\n\
         91,新农户甲,南山镇南山村,因病,医疗救助,13312340001,周雪梅,市教育局 副科长,18146100330,黄志刚,村委会主任,15907579383\r\n\
         92,新农户乙,东城镇东城河口村,因病,医疗救助,13312340002,赵一,镇政府 科员,13700000011,赵二,镇政府 科员,13700000012\r\n"
    );
    let (status, body) = w
        .post_bytes(&town, "/ledger/import", file.into_bytes())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let errors = error_places(&body);
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!((errors[0].0, errors[0].1), (2, 3), "{body}");
    assert!(errors[0].2.contains("南山镇"), "{body}");
    assert_eq!((counts(t).await, places(t).await), before);

    // The same file from the county office creates the town: then the row's helpers
    // are checked, and both refused in one answer.
    let file = format!(
        "{HEADER}\r\n\
         91,新农户甲,南山镇南山村,因病,医疗救助,13312340001,周雪梅,市教育局 副科长,18146100330,黄志刚,村委会主任,15907579383\r\n"
    );
    let (status, body) = w
        .post_bytes(&county, "/ledger/import", file.into_bytes())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let where_: Vec<(i64, i64)> = error_places(&body)
        .iter()
        .map(|(r, c, _)| (*r, *c))
        .collect();
    assert_eq!(where_, vec![(2, 7), (2, 10)], "{body}");
    assert_eq!((counts(t).await, places(t).await), before);
}
db_test!(
    a_row_of_an_unknown_town_gets_one_error_and_no_follow_on_errors,
    unknown_town_no_cascade
);

/// An import's dates that cannot be meant are refused, both in one answer naming the
/// parameters, the dates given and the latest allowed: a filing after today, pairings
/// starting more than a year and a day ahead. Nothing is written; the latest allowed
/// day itself is accepted.
async fn far_dates(t: &TestDb) {
    let w = World::new(t).await;
    let county = county_token(t, &w).await;
    let today = bangfu_tests::china_today();
    let latest = today + chrono::Duration::days(366);
    let too_far = latest + chrono::Duration::days(1);
    let tomorrow = today + chrono::Duration::days(1);
    let before = (counts(t).await, places(t).await);
    for dry_run in [true, false] {
        let (status, body) = w
            .post_bytes(
                &county,
                &format!(
                    "/ledger/import?effective_from={too_far}&filed_on={tomorrow}&dry_run={dry_run}"
                ),
                FIXTURE.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let reasons: Vec<String> = error_places(&body).into_iter().map(|e| e.2).collect();
        assert_eq!(reasons.len(), 2, "{body}");
        let named = |parts: &[&str]| reasons.iter().any(|r| parts.iter().all(|p| r.contains(p)));
        assert!(
            named(&["effective_from", &too_far.to_string(), &latest.to_string()]),
            "{body}"
        );
        assert!(
            named(&["filed_on", &tomorrow.to_string(), &today.to_string()]),
            "{body}"
        );
        assert_eq!(
            (counts(t).await, places(t).await),
            before,
            "dry run {dry_run}"
        );
    }
    // A file that cannot be read at all still gets the dates' errors in its answer.
    let headless: String = FIXTURE.lines().skip(1).collect::<Vec<_>>().join("\r\n");
    let (status, body) = w
        .post_bytes(
            &county,
            &format!("/ledger/import?effective_from={too_far}"),
            headless.into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let reasons: Vec<String> = error_places(&body).into_iter().map(|e| e.2).collect();
    assert_eq!(reasons.len(), 2, "the file's error and the date's: {body}");
    assert!(
        reasons.iter().any(|r| r.contains("effective_from")),
        "{body}"
    );
    let report = w
        .import_ok(
            &county,
            &format!("?effective_from={latest}&filed_on={today}"),
            FIXTURE.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(report["pairings_started"], 40, "{report}");
}
db_test!(
    an_import_refuses_a_filing_after_today_and_pairings_more_than_a_year_ahead,
    far_dates
);

/// Spreadsheets built to exhaust the server are refused by sheet with a 422, and the
/// server goes on serving: a 2 KB file with text in A1 and XFD1048576 once made calamine
/// allocate the whole sheet and aborted the process; a merged region written backwards
/// (`D1:A1`) panicked.
async fn hostile_spreadsheets(t: &TestDb) {
    use bangfu_server::ledger::handmade_xlsx::workbook;
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    let mut cells: Vec<(String, String)> = Vec::new();
    for (r, line) in FIXTURE.lines().enumerate() {
        for (c, text) in line.split(',').enumerate() {
            cells.push((
                format!("{}{}", char::from(b'A' + c as u8), r + 1),
                text.into(),
            ));
        }
    }
    let mut cells: Vec<(&str, &str)> = cells
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let plain = workbook("台账", &cells, &[], None);
    cells.push(("XFD1048576", "x"));
    let far = workbook("台账", &cells, &[], Some("A1:XFD1048576"));
    cells.pop();
    let backwards = workbook("台账", &cells, &["D1:A1"], None);

    // A zip that is no workbook (a Word document renamed .xlsx) is said so in Chinese,
    // not in the reader's English (QA s30b M3).
    let not_a_book = bangfu_server::ledger::handmade_xlsx::zip_stored(&[(
        "docProps/app.xml",
        b"<Properties/>".as_slice(),
    )]);
    let (status, body) = w.post_bytes(&token, "/ledger/import", not_a_book).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let reason = body["details"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("文件不是XLSX"), "{body}");
    assert!(!reason.contains("Cannot detect"), "{body}");
    let (status, body) = w.post_bytes(&token, "/ledger/import", far).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["details"][0]["sheet"], "台账", "{body}");
    assert!(
        body["details"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("工作表过大"),
        "{body}"
    );
    let (status, body) = w.post_bytes(&token, "/ledger/import", backwards).await;
    match status {
        // calamine panics on it with overflow checks (debug builds): caught and refused.
        StatusCode::UNPROCESSABLE_ENTITY => assert!(
            body["details"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("文件结构有误"),
            "{body}"
        ),
        // Without them the region is read between its corners.
        StatusCode::OK => assert_eq!(body["households_created"], 20, "{body}"),
        other => panic!("{other}: {body}"),
    }
    let report = w.import_ok(&token, "?dry_run=true", plain).await;
    assert_eq!(report["rows"], 20, "the server still imports: {report}");
}
db_test!(
    a_hostile_spreadsheet_is_refused_and_the_server_survives,
    hostile_spreadsheets
);

/// A cell that would run as a formula is exported with a leading `'` (CSV and XLSX),
/// and importing the export changes nothing.
async fn formulas_are_exported_inert(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    let evil = "=HYPERLINK(\"http://x.example\",\"点此\")";
    let quoted = FIXTURE
        .replacen(",因学,", &format!(",\"{}\",", evil.replace('"', "\"\"")), 1)
        // Stored as `'-已有引号` (the import takes one quote off): exported with two.
        .replacen(",就业帮扶、医疗救助,", ",''-已有引号,", 1);
    w.import_ok(&token, "", quoted.into_bytes()).await;
    let before = counts(t).await;
    let xd = town_id(t, "东城镇").await;
    let (status, csv) = w
        .get_bytes(&token, &format!("/ledger/export?town={xd}&format=csv"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(csv.clone()).unwrap();
    assert!(
        text.contains("\"'=HYPERLINK(\"\"http://x.example\"\",\"\"点此\"\")\""),
        "{text}"
    );
    assert!(text.contains(",''-已有引号,"), "{text}");
    assert!(!text.contains(",=HYPERLINK"), "{text}");
    let (_, xlsx) = w
        .get_bytes(&token, &format!("/ledger/export?town={xd}&format=xlsx"))
        .await;
    for file in [csv.clone(), xlsx] {
        let again = w.import_ok(&token, "", file).await;
        assert_eq!(again["households_unchanged"], 20, "{again}");
        assert_eq!(again["households_updated"], 0, "{again}");
    }
    assert_eq!(counts(t).await, before);
    let (_, csv_again) = w
        .get_bytes(&token, &format!("/ledger/export?town={xd}&format=csv"))
        .await;
    assert_eq!(csv_again, csv, "the round trip is lossless");
}
db_test!(
    formulas_are_exported_inert_and_reimport_unchanged,
    formulas_are_exported_inert
);

/// The audit log names each pairing an import starts, once, and no other.
async fn pairing_audit(t: &TestDb) {
    use bangfu_server::entities::{audit, pairing};
    use sea_orm::{ColumnTrait, QueryFilter};
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    let mut started: Vec<i64> = audit::Entity::find()
        .filter(audit::Column::Action.eq("pairing.start"))
        .all(&t.db)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|a| a.entity_id)
        .collect();
    started.sort_unstable();
    let mut pairings: Vec<i64> = pairing::Entity::find()
        .all(&t.db)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    pairings.sort_unstable();
    assert!(!pairings.is_empty());
    assert_eq!(started, pairings);
}
db_test!(an_import_audits_each_pairing_it_starts_once, pairing_audit);

/// A ledger sent as a browser form (`curl -F file=@…`) is refused with how to send it,
/// not read as a file whose rows are the form's boundaries; `--data-binary`'s default
/// label is fine.
async fn form_upload(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    let boundary = "------------------------abc123";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"ledger.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{FIXTURE}\r\n--{boundary}--\r\n"
    );
    let resp = w
        .http
        .post(w.server.url("/ledger/import?dry_run=true"))
        .bearer_auth(&token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("--data-binary"),
        "{v}"
    );
    let resp = w
        .http
        .post(w.server.url("/ledger/import?dry_run=true"))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(FIXTURE.as_bytes().to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
db_test!(
    a_ledger_sent_as_a_form_is_refused_with_how_to_send_it,
    form_upload
);

/// QA s29b J10: an import names the towns and villages it creates, dry run included, so
/// a misspelt address (东成镇 for 东城镇) is caught before it becomes a town.
async fn created_places_named(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    let first = w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    assert!(
        first["notices"].to_string().contains("新建镇街「东城镇」"),
        "{first}"
    );
    // A new household whose address has a typo, with new helpers: nothing else stops it.
    let typo = format!(
        "{}\r\n21,马新户,东成镇东城河口村,因病,医疗救助,13800138000,林新来,市农业局 科员,13911112222,王新,村委会主任,13911113333\r\n",
        FIXTURE.trim_end()
    );
    for dry in ["?dry_run=true", ""] {
        let (_, report) = w
            .post_bytes(
                &token,
                &format!("/ledger/import{dry}"),
                typo.clone().into_bytes(),
            )
            .await;
        let text = report.to_string();
        assert!(
            text.contains("新建镇街「东成镇」") && text.contains("村「东成镇东城河口村」"),
            "{dry}: {report}"
        );
    }
}
db_test!(an_import_names_the_places_it_creates, created_places_named);

/// QA s29b J15: a helper mistyped in the first import cannot be changed the same day;
/// the refusal names the option that does it (a later effective day).
async fn same_day_change(t: &TestDb) {
    let w = World::new(t).await;
    let token = county_token(t, &w).await;
    w.import_ok(&token, "", FIXTURE.as_bytes().to_vec()).await;
    let changed = FIXTURE.replacen(
        "黄志强,市住建局 主任科员,15907579383",
        "林新来,市农业局 科员,13911112222",
        1,
    );
    let (status, report) = w
        .post_bytes(&token, "/ledger/import?dry_run=true", changed.into_bytes())
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{report}");
    let tomorrow = bangfu_tests::china_today().succ_opt().unwrap();
    assert!(
        report
            .to_string()
            .contains(&format!("请以生效日期{tomorrow}或以后导入")),
        "{report}"
    );
}
db_test!(
    a_change_on_the_pairings_first_day_is_told_how,
    same_day_change
);
