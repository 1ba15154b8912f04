//! Issue 5 item 4 end to end with the real client: a second helper pulls the quarterly
//! attendance sheet (附件3) by sync, the server goes away, the helper writes a remark
//! and signs the submission offline, and the sync with a server back (over the same
//! database) submits it: the county office then sees version 1 with the remark.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_client::store::SubmissionState;
use bangfu_client::sync::RetryPolicy;
use bangfu_client::{Client, ClientError, DataDir, Limits, SyncOptions};
use bangfu_server::db_test;
use bangfu_shared::Role;
use bangfu_shared::report::{AttendanceSheet, Quarter};
use bangfu_tests::{
    FIXTURE, PASSWORD, TestDb, TestServer, World, client_logged_in, enroll_directly, login_at,
    office, quick_sync, send_json,
};

/// 孔玉梅, second helper of rows 1–5 of the fixture ledger.
const SECOND: &str = "18893287921";

/// [`quick_sync`] towards `server` (the one remembered at login when `None`).
fn quick(server: Option<String>) -> SyncOptions {
    SyncOptions {
        server,
        ..quick_sync(4)
    }
}

async fn quarter_end_offline(t: &TestDb) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    w.import_ok(
        &county,
        "?effective_from=2025-10-01&filed_on=2025-07-01&retroactive=true",
        FIXTURE.as_bytes().to_vec(),
    )
    .await;
    enroll_directly(t, &w, SECOND).await;

    // An office account records nothing in the field: the client refuses it at login,
    // saying so, and leaves no key or login behind.
    let office_data = t.dir().join("client").join("office");
    std::fs::create_dir_all(&office_data).unwrap();
    let office_client = Client::open(DataDir::new(&office_data), Limits::default())
        .await
        .unwrap();
    let refused = office_client
        .login(&bangfu_client::LoginParams {
            server: format!("http://{}", w.server.addr),
            username: "county".into(),
            password: PASSWORD.into(),
            enroll_code: None,
            device_label: "乡镇电脑".into(),
        })
        .await
        .unwrap_err();
    assert!(
        bangfu_client::i18n::Lang::Zh
            .error(&refused)
            .contains("供第一、第二帮扶责任人"),
        "{refused}"
    );
    assert!(office_client.identity().await.is_err(), "no login is kept");
    {
        use bangfu_server::entities::auth_token;
        use sea_orm::{EntityTrait, QueryOrder};
        let newest = auth_token::Entity::find()
            .order_by_desc(auth_token::Column::Id)
            .one(&t.db)
            .await
            .unwrap()
            .unwrap();
        assert!(
            newest.revoked_at.is_some(),
            "the session the refused login opened is closed"
        );
    }
    assert!(
        !DataDir::new(&office_data).key_path().exists(),
        "no key is made"
    );

    let data = t.dir().join("client").join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (client, _) = client_logged_in(&w, &data, SECOND, "第二帮扶人终端").await;
    let me = client.identity().await.unwrap();
    assert_eq!(me.role, Role::SecondHelper);
    let helper_id = me.helper.as_ref().unwrap().id;

    // A first helper's device refuses to remark or submit, saying whose sheet it is.
    enroll_directly(t, &w, bangfu_tests::scenario::HELPER).await;
    let first_data = t.dir().join("client").join("first");
    std::fs::create_dir_all(&first_data).unwrap();
    let (first, _) = client_logged_in(
        &w,
        &first_data,
        bangfu_tests::scenario::HELPER,
        "第一帮扶人终端",
    )
    .await;
    let q = Quarter::of(bangfu_client::client::today(chrono::Utc::now()));
    for e in [
        first.set_sheet_remark(q, 1, "x").await.unwrap_err(),
        first.submit_sheet(q).await.unwrap_err(),
    ] {
        assert!(
            bangfu_client::i18n::Lang::Zh
                .error(&e)
                .contains("第二帮扶责任人"),
            "{e}"
        );
    }

    // Sync with the network: this and the previous quarter's sheets come down.
    let report = client.sync(&quick(None), &|_| {}).await.unwrap();
    assert_eq!(report.sheets_pulled, 2, "{report:?}");
    let quarter = Quarter::of(bangfu_client::client::today(chrono::Utc::now()));
    let sheets = client.sheets().await.unwrap();
    assert_eq!(sheets.len(), 2);
    assert_eq!(sheets[0].quarter(), quarter, "newest first");
    let view = client.sheet(quarter).await.unwrap();
    assert!(view.sheet.rows.len() >= 5, "{}", view.sheet.rows.len());
    assert_eq!(view.sheet.second_helper.id, helper_id);
    assert_eq!(view.state(), None, "never submitted");
    assert!(!view.sheet.rows[0].record_text().is_empty());

    // A device whose clock runs ahead into the next quarter: the server refuses that
    // sheet with a code of its own (not a sheet of 进行中 windows passing for one with
    // nothing missed), and the sync passes over it quietly.
    let next = Quarter::of(quarter.end().succ_opt().unwrap());
    let second = login_at(&w.server, SECOND, PASSWORD).await;
    let (status, body) = w
        .get(
            Some(&second),
            &format!("/reports/attendance?quarter={next}"),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "quarter_not_begun", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("has not begun"),
        "{body}"
    );
    let ahead = SyncOptions {
        sheet_quarters: vec![next, quarter],
        ..quick(None)
    };
    let report = client.sync(&ahead, &|_| {}).await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.sheets_pulled, 1, "{report:?}");

    // No network from here on.
    w.server_stop().await;
    let row = view.sheet.rows[0].household_id;
    client
        .set_sheet_remark(quarter, row, "  已核实，走访到位  ")
        .await
        .unwrap();
    // A remark for a household not on the sheet is refused.
    assert!(client.set_sheet_remark(quarter, -1, "x").await.is_err());
    // So is one longer than the printed sheet holds, on the device, before any sync.
    let max = bangfu_shared::report::MAX_SHEET_REMARK_CHARS;
    let e = client
        .set_sheet_remark(quarter, row, &"长".repeat(max + 1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains(&format!("{}", max + 1)), "{e}");
    assert!(
        bangfu_client::i18n::Lang::Zh
            .error(&e)
            .contains("最多 500 字"),
        "{}",
        bangfu_client::i18n::Lang::Zh.error(&e)
    );
    // The draft survives a restart.
    client.store().clone().close().await.unwrap();
    drop(client);
    let client = Client::open(DataDir::new(&data), Limits::default())
        .await
        .unwrap();
    let view = client.sheet(quarter).await.unwrap();
    assert_eq!(view.remark(&view.sheet.rows[0]), "已核实，走访到位");
    let queued = client.submit_sheet(quarter).await.unwrap();
    assert_eq!(queued.state, SubmissionState::Pending);
    assert_eq!(
        queued.submission.remarks,
        vec![(row, "已核实，走访到位".to_string())]
    );
    assert_eq!(
        client.sheet(quarter).await.unwrap().state(),
        Some(SubmissionState::Pending)
    );
    // A sync without network fails and keeps the submission waiting.
    let offline = SyncOptions {
        retry: RetryPolicy::once(),
        ..quick(None)
    };
    let err = client.sync(&offline, &|_| {}).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(client.store().pending_submissions().await.unwrap().len(), 1);

    // A server is back over the same database: the sync submits it.
    let server = TestServer::start(t.server_pool().await, w.settings.clone());
    let back = quick(Some(format!("http://{}", server.addr)));
    let report = client.sync(&back, &|_| {}).await.unwrap();
    assert_eq!(report.sheets_submitted, vec![(quarter, 1)], "{report:?}");
    assert!(report.sheets_rejected.is_empty());
    assert!(
        client
            .store()
            .pending_submissions()
            .await
            .unwrap()
            .is_empty()
    );
    let view = client.sheet(quarter).await.unwrap();
    assert_eq!(
        view.state(),
        Some(SubmissionState::Submitted { version: 1 })
    );
    assert_eq!(view.sheet.submitted_version, Some(1));

    // A second sync sends nothing again.
    let again = client.sync(&back, &|_| {}).await.unwrap();
    assert!(again.sheets_submitted.is_empty(), "{again:?}");

    // Signing the sheet the server froze, unchanged, is refused on the device: it would
    // only be a duplicate version for the town office to reconcile.
    let same = client.submit_sheet(quarter).await.unwrap_err();
    assert!(
        matches!(same, ClientError::SheetUnchanged { version: Some(1) }),
        "{same:?}"
    );
    assert_eq!(
        bangfu_client::i18n::Lang::Zh.error(&same),
        "与第1版相同，无需重新提交"
    );
    // A remark changed after the submission is said, and signing it is a new
    // submission. A sync killed after the server froze it but before the answer was
    // stored leaves it pending on the device, marked as sent; the next sync sends it
    // again and the server answers with the version it froze instead of freezing a third.
    client
        .set_sheet_remark(quarter, row, "已核实，走访到位，已回访")
        .await
        .unwrap();
    assert!(client.sheet(quarter).await.unwrap().unsubmitted_changes());
    let lost = client.submit_sheet(quarter).await.unwrap();
    assert!(!client.sheet(quarter).await.unwrap().unsubmitted_changes());
    assert_ne!(
        lost.submission.submission_id, queued.submission.submission_id,
        "each signing has its own id"
    );
    let helper_token = login_at(&server, SECOND, PASSWORD).await;
    let frozen: AttendanceSheet = send_json(
        reqwest::Client::new()
            .post(server.url("/reports/attendance/submit"))
            .bearer_auth(&helper_token)
            .json(&lost.submission),
    )
    .await;
    assert_eq!(frozen.submitted_version, Some(2));
    client
        .store()
        .mark_submission_attempted(lost.id)
        .await
        .unwrap();
    let report = client.sync(&back, &|_| {}).await.unwrap();
    assert_eq!(report.sheets_submitted, vec![(quarter, 2)], "{report:?}");
    assert!(
        client
            .store()
            .pending_submissions()
            .await
            .unwrap()
            .is_empty()
    );

    // A resubmission with another remark is a new version.
    let second_row = view.sheet.rows[1].household_id;
    client
        .set_sheet_remark(quarter, second_row, "电话未接通，已补访")
        .await
        .unwrap();
    client.submit_sheet(quarter).await.unwrap();
    let report = client.sync(&back, &|_| {}).await.unwrap();
    assert_eq!(report.sheets_submitted, vec![(quarter, 3)], "{report:?}");
    assert_eq!(
        client.sheet(quarter).await.unwrap().state(),
        Some(SubmissionState::Submitted { version: 3 })
    );

    let county = login_at(&server, "county", PASSWORD).await;
    let versions: Vec<AttendanceSheet> = send_json(
        reqwest::Client::new()
            .get(server.url(&format!(
                "/reports/attendance/versions?second_helper={helper_id}&quarter={quarter}"
            )))
            .bearer_auth(&county),
    )
    .await;
    assert_eq!(versions.len(), 3, "the lost answer did not make a version");
    let remark_of = |v: &AttendanceSheet, h: i64| {
        v.rows
            .iter()
            .find(|r| r.household_id == h)
            .unwrap()
            .remark
            .clone()
    };
    let first = &versions[0];
    assert_eq!(first.submitted_version, Some(1));
    assert_eq!(remark_of(first, row).as_deref(), Some("已核实，走访到位"));
    assert_eq!(
        first.rows.iter().filter(|r| r.remark.is_some()).count(),
        1,
        "version 1 carries the one remark"
    );
    let second = &versions[2];
    assert_eq!(second.submitted_version, Some(3));
    assert_eq!(
        remark_of(second, row).as_deref(),
        Some("已核实，走访到位，已回访")
    );
    assert_eq!(
        remark_of(second, second_row).as_deref(),
        Some("电话未接通，已补访")
    );
}

db_test!(
    a_second_helper_submits_the_sheet_offline_then_on_sync,
    quarter_end_offline
);
