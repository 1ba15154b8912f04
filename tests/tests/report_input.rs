//! What the attendance sheet endpoints take and give back when the input is odd: remarks a
//! frozen version must not hold (too long, two for one household, for a household not
//! on the sheet) are refused naming the household; a remark stored before the limit
//! still prints as a spreadsheet; a first helper, who keeps no sheet, is told so; and a
//! PDF the server has no font for is the server's setup problem, not the client's.

#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use bangfu_server::db_test;
use bangfu_server::entities::attendance_sheet;
use bangfu_server::report_pdf::{FONT_CANDIDATES, FONT_ENV};
use bangfu_server::services::reports::MAX_SHEET_REMARK_CHARS;
use bangfu_shared::report::{AttendanceSheet, Quarter, SheetSubmission};
use bangfu_tests::TestDb;
use bangfu_tests::field::Device;
use bangfu_tests::scenario::Field;
use ed25519_dalek::Signer;
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
use serde_json::Value;

fn quarter() -> Quarter {
    Quarter::of(bangfu_server::services::today())
}

/// A submission of `remarks` signed by `device`.
fn signed(device: &Device, remarks: Vec<(i64, String)>) -> Value {
    signed_as(device, quarter(), remarks, uuid::Uuid::now_v7(), None)
}

/// A submission signed by `device`, every field chosen.
fn signed_as(
    device: &Device,
    quarter: Quarter,
    remarks: Vec<(i64, String)>,
    id: uuid::Uuid,
    rows_sha256: Option<&str>,
) -> Value {
    let mut sub = SheetSubmission {
        quarter,
        device_id: device.device_id,
        remarks,
        signature: String::new(),
        submission_id: Some(id),
        rows_sha256: rows_sha256.map(str::to_string),
    };
    sub.signature = hex::encode(device.key.sign(&sub.signing_bytes()).to_bytes());
    serde_json::to_value(&sub).unwrap()
}

async fn remarks(t: &TestDb) {
    let f = Field::new(t).await;
    let w = &f.w;
    let (token, device) = f.second_helper(t).await;
    let q = quarter();
    let (status, body) = w
        .get(Some(&token), &format!("/reports/attendance?quarter={q}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sheet: AttendanceSheet = serde_json::from_value(body).unwrap();
    assert!(sheet.rows.len() >= 2, "{sheet:?}");
    let (a, b) = (sheet.rows[0].household_id, sheet.rows[1].household_id);
    let submit = |remarks: Vec<(i64, String)>| {
        let body = signed(&device, remarks);
        let token = token.clone();
        async move {
            w.post_json(Some(&token), "/reports/attendance/submit", &body)
                .await
        }
    };
    let refused = |(status, body): (StatusCode, Value), needle: String| {
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let code = if needle.contains("has not begun") {
            "quarter_not_begun"
        } else {
            "invalid"
        };
        assert_eq!(body["error"], code, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(&needle), "{needle} in {message}");
    };

    // Over the limit: refused, naming the household.
    let long = "长".repeat(MAX_SHEET_REMARK_CHARS + 1);
    refused(
        submit(vec![(a, "到位".into()), (b, long)]).await,
        format!("household {b} ("),
    );
    // Two remarks for one household: which one would the version keep?
    refused(
        submit(vec![(a, "一".into()), (a, "二".into())]).await,
        format!("household {a} ("),
    );
    // A control character would reach the CSV raw.
    refused(submit(vec![(a, "a\u{0}b".into())]).await, "U+0000".into());
    // A line break would split the row of every listing (QA s30a L5).
    refused(
        submit(vec![(a, "第一行\n第二行".into())]).await,
        "line break".into(),
    );
    refused(
        submit(vec![(a, "第一行\u{2028}第二行".into())]).await,
        "line break".into(),
    );
    // A household not on the sheet.
    refused(
        submit(vec![(a, "一".into()), (-7, "二".into())]).await,
        "household -7 is not on this sheet".into(),
    );
    let (status, _) = w
        .get(
            Some(&token),
            &format!("/reports/attendance/versions?quarter={q}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The list is JSON: a file format is refused, not answered in JSON regardless.
    let (status, body) = w
        .get(
            Some(&token),
            &format!("/reports/attendance/versions?quarter={q}&format=csv"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("version=N"),
        "{body}"
    );

    // Versions count from 1: 0 or below is a bad request, not a version not found.
    let (status, body) = w
        .get(
            Some(&token),
            &format!("/reports/attendance?quarter={q}&version=0"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("from 1"),
        "{body}"
    );

    // A quarter that has not begun has no sheet to report yet, nor records to drill into.
    let next = Quarter::of(q.end().succ_opt().unwrap());
    let (_, mine) = w.get(Some(&token), "/households?per_page=1").await;
    let household = mine["items"][0]["id"].as_i64().unwrap();
    let (status, body) = w
        .get(
            Some(&token),
            &format!("/reports/records?household={household}&quarter={next}"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("has not begun"),
        "{body}"
    );
    let send = |body: Value| {
        let token = token.clone();
        async move {
            w.post_json(Some(&token), "/reports/attendance/submit", &body)
                .await
        }
    };
    let id = uuid::Uuid::now_v7();
    refused(
        send(signed_as(&device, next, vec![], id, None)).await,
        format!("{next} has not begun"),
    );
    // A quarter before any of the helper's pairings has no sheet either.
    refused(
        send(signed_as(&device, q.previous(), vec![], id, None)).await,
        "supervised no household".into(),
    );
    // A digest that is no SHA-256 is the client's bug, not "changed after review".
    refused(
        send(signed_as(&device, q, vec![], id, Some("ZZ"))).await,
        "rows_sha256 must be the 64 hex digits".into(),
    );

    // At the limit it is taken.
    let at_limit = vec![(a, "长".repeat(MAX_SHEET_REMARK_CHARS))];
    let (status, v1) = send(signed_as(&device, q, at_limit.clone(), id, None)).await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!(v1["submitted_version"], 1);
    // Sent again, it is the same version; its id with other remarks, or another
    // reviewed digest, is a conflict, never a second version under one id.
    let (status, again) = send(signed_as(&device, q, at_limit, id, None)).await;
    assert_eq!(
        (status, &again["submitted_version"]),
        (StatusCode::CREATED, &v1["submitted_version"]),
        "{again}"
    );
    for other in [
        signed_as(&device, q, vec![(a, "改了".into())], id, None),
        signed_as(&device, q, vec![], id, Some(&"0".repeat(64))),
    ] {
        let (status, body) = send(other).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("new submission_id"),
            "{body}"
        );
    }

    // A version frozen before the limit with a remark longer than an Excel cell still
    // prints: the cell is cut with "…", the workbook is whole.
    let row = attendance_sheet::Entity::find()
        .one(&t.db)
        .await
        .unwrap()
        .unwrap();
    let mut frozen: AttendanceSheet = serde_json::from_str(&row.body).unwrap();
    let huge = format!("超长备注{}", "长".repeat(40_000));
    frozen
        .rows
        .iter_mut()
        .find(|r| r.household_id == a)
        .unwrap()
        .remark = Some(huge.clone());
    let mut stored = row.into_active_model();
    stored.body = Set(serde_json::to_string(&frozen).unwrap());
    stored.update(&t.db).await.unwrap();
    let path = format!(
        "/reports/attendance?second_helper={}&quarter={q}&version=1&format=xlsx",
        sheet.second_helper.id
    );
    let (status, bytes) = w.get_bytes(&f.county, &path).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    use calamine::Reader;
    let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    let cell = range
        .cells()
        .map(|(_, _, c)| c.to_string())
        .find(|c| c.starts_with("超长备注"))
        .unwrap();
    assert!(cell.ends_with('…'), "cut with an ellipsis");
    assert_eq!(cell.chars().count(), 32_767);
    assert!(huge.starts_with(cell.trim_end_matches('…')));
    // The CSV has no such limit and holds it whole.
    let (status, csv) = w
        .get_bytes(&f.county, &path.replace("format=xlsx", "format=csv"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(csv).unwrap().contains(&huge));
}
db_test!(
    remarks_a_version_cannot_hold_are_refused_naming_the_household,
    remarks
);

async fn first_helper(t: &TestDb) {
    let f = Field::new(t).await;
    let w = &f.w;
    let q = quarter();
    let (second_token, _) = f.second_helper(t).await;
    let (_, me) = w.get(Some(&second_token), "/me").await;
    let second = me["helper"]["id"].as_i64().unwrap();

    // 黄志强 is a first helper: he keeps no sheet, whatever he names.
    let (_, me) = w.get(Some(&f.token), "/me").await;
    let own = me["helper"]["id"].as_i64().unwrap();
    for path in [
        format!("/reports/attendance?quarter={q}"),
        format!("/reports/attendance/versions?quarter={q}"),
        format!("/reports/attendance?quarter={q}&format=xlsx"),
        format!("/reports/attendance?second_helper={own}&quarter={q}"),
        format!("/reports/attendance/versions?second_helper={own}&quarter={q}"),
        format!("/reports/attendance?second_helper={second}&quarter={q}"),
    ] {
        let (status, body) = w.get(Some(&f.token), &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["error"], "forbidden", "{path}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("a first helper account has none"),
            "{path}: {body}"
        );
    }

    // The second helper sees their own; an office names the helper, as before.
    let own_sheet = format!("/reports/attendance?quarter={q}");
    let (status, body) = w.get(Some(&second_token), &own_sheet).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["second_helper"]["id"], second);
    let (status, body) = w.get(Some(&f.county), &own_sheet).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let named = format!("/reports/attendance?second_helper={second}&quarter={q}");
    let (status, body) = w.get(Some(&f.county), &named).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
db_test!(a_first_helper_is_told_they_keep_no_sheet, first_helper);

/// Whether this server can find a Chinese font to print with.
fn font_installed() -> bool {
    std::env::var(FONT_ENV).is_ok_and(|v| !v.trim().is_empty())
        || FONT_CANDIDATES
            .iter()
            .any(|(p, _)| std::path::Path::new(p).is_file())
}

async fn pdf_font(t: &TestDb) {
    let f = Field::new(t).await;
    let w = &f.w;
    let (token, _) = f.second_helper(t).await;
    let path = format!("/reports/attendance?quarter={}&format=pdf", quarter());
    let resp = w
        .http
        .get(w.server.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    if font_installed() {
        assert_eq!(resp.status(), StatusCode::OK);
        return;
    }
    // No font: the server's setup, said as such, with what to install.
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "pdf_font_missing", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("apt-get install fonts-wqy-microhei"),
        "{body}"
    );
    // The spreadsheet needs no font and is unaffected.
    let (status, _) = w
        .get_bytes(&token, &path.replace("format=pdf", "format=xlsx"))
        .await;
    assert_eq!(status, StatusCode::OK);
}
db_test!(a_pdf_without_a_font_is_the_servers_setup_problem, pdf_font);
