//! Attendance reconciliation and the quarterly reports, against hand-computed
//! expectations: one town, three households, five helpers, 2026Q1, every kind of visit
//! that must not count, under both policy presets, on SQLite and PostgreSQL.
//!
//! Households (all paired from 2025-10-01; second helper S = 孔玉梅 for all three):
//! - H1 田晓东 (河口村): first helper A 黄志强 (市教育局)
//! - H2 曾淑珍 (河口村): first helper B 周雪梅 (市教育局)
//! - H3 叶秀兰 (李家村): first helper C 曹秀兰 until 2026-02-15, then D 余立新
//!
//! Visits (2026):
//! - A→H1: Jan 10 home (photo p1, drawn signature) counts; Jan 10 home again (p2) same
//!   day → counts once; Jan 20 phone counts; Feb 5 phone voided; Mar 3 phone counts.
//! - B→H2: Jan 5 phone with the device clock days ahead → flagged; Jan 15 home with a
//!   witness and no photo (laizhou needs one; xigang not); Feb 6 phone counts; Feb 12 home
//!   reusing p1 → photo used by another visit; Mar 7 phone counts.
//! - C→H3: Jan 8 phone, amended to Jan 9 (the amendment counts, the original not).
//! - D→H3: Feb 10 home before D's pairing began → not paired then; Mar 9 phone counts.
//! - S: H1 Jan 12 home counts; H1 Mar 2 home whose photo never arrives; H2 Feb 14 home counts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use bangfu_server::db_test;
use bangfu_shared::report::{AttendanceSheet, CountyReport, SheetSubmission, TownReport};
use bangfu_shared::visit::{
    HouseholdSignature, PhotoRef, RecordType, SignedRecord, VisitBody, sha256_hex,
};
use bangfu_shared::{PolicyPreset, Role, VisitKind};
use bangfu_tests::field::{Device, jpeg, png, upload};
use bangfu_tests::{TestDb, World, enroll_directly, office};
use chrono::{NaiveDate, TimeZone, Utc};
use ed25519_dalek::Signer;
use reqwest::StatusCode;
use serde_json::json;

const HEADER: &str = "序号,贫困户姓名,家庭地址(镇街、村),致贫原因,帮扶措施,联系方式,第一帮扶责任人姓名,工作单位及职务,联系方式,第二帮扶责任人姓名,工作单位及职务,联系方式";
const ROWS: [&str; 3] = [
    "1,田晓东,东城镇河口村,因学,就业帮扶,13967929081,黄志强,市教育局 科员,15907579383,孔玉梅,村委会主任,18893287921",
    "2,曾淑珍,东城镇河口村,因病,医疗救助,17681453840,周雪梅,市教育局 副科长,18146100330,孔玉梅,村委会主任,18893287921",
    "3,叶秀兰,东城镇李家村,缺技术,产业帮扶,15451450612,曹秀兰,市交通局 副科长,13077283783,孔玉梅,村委会主任,18893287921",
];
const D_ROW: &str = "3,叶秀兰,东城镇李家村,缺技术,产业帮扶,15451450612,余立新,市交通局 科员,13023740954,孔玉梅,村委会主任,18893287921";

fn ledger(rows: &[&str]) -> Vec<u8> {
    format!("{HEADER}\r\n{}\r\n", rows.join("\r\n")).into_bytes()
}

fn noon(m: u32, d: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, m, d, 4, 0, 0).unwrap()
}

struct Helper {
    token: String,
    device: Device,
}

struct Town {
    w: World,
    county: String,
    h: [i64; 3],
    a: Helper,
    b: Helper,
    c: Helper,
    d: Helper,
    s: Helper,
    s_id: i64,
    town_id: i64,
    p: [Vec<u8>; 6],
}

async fn helper(t: &TestDb, w: &World, phone: &str) -> (Helper, i64) {
    enroll_directly(t, w, phone).await;
    let token = w.login(phone).await;
    let (_, me) = w.get(Some(&token), "/me").await;
    let id = me["helper"]["id"].as_i64().unwrap();
    let device = Device::register(&w.http, &w.server.base, &token, id).await;
    (Helper { token, device }, id)
}

async fn town(t: &TestDb, preset: PolicyPreset) -> Town {
    let w = World::new(t).await;
    if preset == PolicyPreset::Xigang2019 {
        let from = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        bangfu_server::services::policy::set(
            &t.db,
            &bangfu_server::services::Caller::system(),
            w.county_id,
            None,
            from,
            &preset.policy(),
        )
        .await
        .unwrap();
    }
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    w.import_ok(
        &county,
        "?effective_from=2025-10-01&filed_on=2025-07-01",
        ledger(&ROWS),
    )
    .await;
    w.import_ok(
        &county,
        "?effective_from=2026-02-15&filed_on=2025-12-15",
        ledger(&[ROWS[0], ROWS[1], D_ROW]),
    )
    .await;
    let (_, page) = w.get(Some(&county), "/households").await;
    let id_of = |name: &str| {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["head_name"] == name)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let h = [id_of("田晓东"), id_of("曾淑珍"), id_of("叶秀兰")];
    let town_id = page["items"][0]["town"]["id"].as_i64().unwrap();
    office(t, &w, "dongcheng", Role::TownOffice, town_id).await;
    let (a, _) = helper(t, &w, "15907579383").await;
    let (b, _) = helper(t, &w, "18146100330").await;
    let (c, _) = helper(t, &w, "13077283783").await;
    let (d, _) = helper(t, &w, "13023740954").await;
    let (s, s_id) = helper(t, &w, "18893287921").await;
    let p = [
        jpeg(20, 1),
        jpeg(20, 2),
        jpeg(20, 3),
        jpeg(20, 4),
        jpeg(20, 5),
        jpeg(20, 6),
    ];
    Town {
        w,
        county,
        h,
        a,
        b,
        c,
        d,
        s,
        s_id,
        town_id,
        p,
    }
}

fn visit(
    kind: VisitKind,
    at: chrono::DateTime<Utc>,
    photos: &[&[u8]],
    signature: Option<HouseholdSignature>,
) -> VisitBody {
    let mut v = VisitBody::new(kind, at);
    v.photos = photos
        .iter()
        .map(|p| PhotoRef {
            sha256: sha256_hex(p),
            bytes: p.len() as u64,
            width: 100,
            height: 90,
        })
        .collect();
    v.household_signature = signature;
    v
}

fn witness() -> Option<HouseholdSignature> {
    Some(HouseholdSignature::Witness {
        name: "王见证".into(),
        role: "村公证人".into(),
        reason: "户主不识字".into(),
        image_sha256: None,
    })
}

async fn push(w: &World, h: &Helper, records: &[SignedRecord]) {
    let resp = w
        .http
        .post(w.server.url("/sync/push"))
        .bearer_auth(&h.token)
        .json(&json!({ "records": records }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    for ack in body["acks"].as_array().unwrap() {
        assert!(
            ack["status"] == "accepted" || ack["status"] == "awaiting_photos",
            "{ack}"
        );
    }
}

/// Records every visit of the scenario.
async fn record_quarter(t: &mut Town) {
    let (w, [h1, h2, h3]) = (&t.w, t.h);
    let sig = png(9);
    let home = VisitKind::Home;
    let phone = VisitKind::Phone;
    // A → H1
    let a = &mut t.a.device;
    let call_feb5 = a.sign(
        h1,
        RecordType::Visit,
        Some(visit(phone, noon(2, 5), &[], None)),
        None,
        None,
    );
    let recs = vec![
        a.sign(
            h1,
            RecordType::Visit,
            Some(visit(
                home,
                noon(1, 10),
                &[&t.p[0]],
                Some(HouseholdSignature::Drawn {
                    image_sha256: sha256_hex(&sig),
                }),
            )),
            None,
            None,
        ),
        a.sign(
            h1,
            RecordType::Visit,
            Some(visit(
                home,
                noon(1, 10) + chrono::Duration::hours(2),
                &[&t.p[1]],
                witness(),
            )),
            None,
            None,
        ),
        a.sign(
            h1,
            RecordType::Visit,
            Some(visit(phone, noon(1, 20), &[], None)),
            None,
            None,
        ),
        call_feb5.clone(),
        a.sign(
            h1,
            RecordType::Void,
            None,
            Some(call_feb5.record.id),
            Some("误录"),
        ),
        a.sign(
            h1,
            RecordType::Visit,
            Some(visit(phone, noon(3, 3), &[], None)),
            None,
            None,
        ),
    ];
    push(w, &t.a, &recs).await;
    // B → H2
    let b = &mut t.b.device;
    let recs = vec![
        b.sign_at(
            h2,
            RecordType::Visit,
            Some(visit(phone, noon(1, 5), &[], None)),
            None,
            None,
            Utc::now() + chrono::Duration::days(3),
        ),
        b.sign(
            h2,
            RecordType::Visit,
            Some(visit(home, noon(1, 15), &[], witness())),
            None,
            None,
        ),
        b.sign(
            h2,
            RecordType::Visit,
            Some(visit(phone, noon(2, 6), &[], None)),
            None,
            None,
        ),
        b.sign(
            h2,
            RecordType::Visit,
            Some(visit(home, noon(2, 12), &[&t.p[0]], witness())),
            None,
            None,
        ),
        b.sign(
            h2,
            RecordType::Visit,
            Some(visit(phone, noon(3, 7), &[], None)),
            None,
            None,
        ),
    ];
    push(w, &t.b, &recs).await;
    // C → H3, amended
    let c = &mut t.c.device;
    let original = c.sign(
        h3,
        RecordType::Visit,
        Some(visit(phone, noon(1, 8), &[], None)),
        None,
        None,
    );
    let amended = c.sign(
        h3,
        RecordType::Amendment,
        Some(visit(phone, noon(1, 9), &[], None)),
        Some(original.record.id),
        Some("日期填错"),
    );
    push(w, &t.c, &[original, amended]).await;
    // D → H3
    let d = &mut t.d.device;
    let recs = vec![
        d.sign(
            h3,
            RecordType::Visit,
            Some(visit(home, noon(2, 10), &[&t.p[2]], witness())),
            None,
            None,
        ),
        d.sign(
            h3,
            RecordType::Visit,
            Some(visit(phone, noon(3, 9), &[], None)),
            None,
            None,
        ),
    ];
    push(w, &t.d, &recs).await;
    // S, the second helper
    let s = &mut t.s.device;
    let recs = vec![
        s.sign(
            h1,
            RecordType::Visit,
            Some(visit(home, noon(1, 12), &[&t.p[4]], witness())),
            None,
            None,
        ),
        s.sign(
            h1,
            RecordType::Visit,
            Some(visit(home, noon(3, 2), &[&t.p[3]], witness())),
            None,
            None,
        ),
        s.sign(
            h2,
            RecordType::Visit,
            Some(visit(home, noon(2, 14), &[&t.p[5]], witness())),
            None,
            None,
        ),
    ];
    push(w, &t.s, &recs).await;
    let origin = format!("http://{}", w.server.addr);
    for bytes in [&t.p[0], &t.p[1], &sig] {
        assert_eq!(
            upload(&w.http, &origin, &t.a.token, bytes).await,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(
        upload(&w.http, &origin, &t.d.token, &t.p[2]).await,
        StatusCode::NO_CONTENT
    );
    for bytes in [&t.p[4], &t.p[5]] {
        assert_eq!(
            upload(&w.http, &origin, &t.s.token, bytes).await,
            StatusCode::NO_CONTENT
        );
    }
}

async fn sheet(t: &Town, token: &str) -> AttendanceSheet {
    let (status, body) =
        t.w.get(
            Some(token),
            &format!(
                "/reports/attendance?second_helper={}&quarter=2026Q1",
                t.s_id
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

async fn town_report(t: &Town) -> TownReport {
    let (status, body) =
        t.w.get(
            Some(&t.county),
            &format!("/reports/town?town={}&quarter=2026Q1", t.town_id),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

async fn county_report(t: &Town) -> CountyReport {
    let (status, body) =
        t.w.get(Some(&t.county), "/reports/county?quarter=2026Q1")
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_value(body).unwrap()
}

/// (village, households, required, met) rows then the total.
fn rates(r: &TownReport) -> Vec<(String, u32, u32, u32)> {
    r.villages
        .iter()
        .chain([&r.total])
        .map(|v| {
            (
                v.name.clone(),
                v.households,
                v.required_windows,
                v.met_windows,
            )
        })
        .collect()
}

fn row(v: &str, h: u32, req: u32, met: u32) -> (String, u32, u32, u32) {
    (v.to_string(), h, req, met)
}

async fn laizhou(t: &TestDb) {
    let mut town = town(t, PolicyPreset::Laizhou2018).await;
    record_quarter(&mut town).await;
    let s = sheet(&town, &town.s.token).await;
    assert_eq!(s.policy_source, "laizhou-2018");
    let cells: Vec<(String, String, String, String)> = s
        .rows
        .iter()
        .map(|r| {
            (
                r.head_name.clone(),
                r.village.clone(),
                r.first_helper
                    .as_ref()
                    .map(|h| h.name.clone())
                    .unwrap_or_default(),
                r.record_text(),
            )
        })
        .collect();
    assert_eq!(
        cells,
        [
            (
                "田晓东",
                "河口村",
                "黄志强",
                "01-10入户；01-10入户(不计:同日重复走访，只计一次)；01-20电话；02-05电话(不计:已作废)；03-03电话｜01-01~02-28入户到位；01-01~01-31电话到位；02-01~02-28电话未到位；03-01~03-31电话到位"
            ),
            (
                "曾淑珍",
                "河口村",
                "周雪梅",
                "01-05电话(不计:设备时间异常)；01-15入户(不计:缺少照片)；02-06电话；02-12入户(不计:照片已用于其他走访)；03-07电话｜01-01~02-28入户未到位；01-01~01-31电话未到位；02-01~02-28电话到位；03-01~03-31电话到位"
            ),
            (
                "叶秀兰",
                "李家村",
                "余立新",
                "01-08电话(不计:已被更正记录取代)；01-09电话；02-10入户(不计:走访时未与该户结对)；03-09电话｜01-01~01-31电话到位；03-01~03-31电话到位"
            ),
        ]
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
    );
    // The second helper's own monthly visits: H1 Jan (Mar's photo never arrived), H2 Feb, H3 none.
    let own: Vec<Vec<(u32, bool)>> = s
        .rows
        .iter()
        .map(|r| {
            r.own_windows
                .iter()
                .map(|w| (chrono::Datelike::month(&w.start), w.met))
                .collect()
        })
        .collect();
    assert_eq!(
        own,
        vec![
            vec![(1, true), (2, false), (3, false)],
            vec![(1, false), (2, true), (3, false)],
            vec![(1, false), (2, false), (3, false)]
        ]
    );
    assert_eq!(
        s.rows[0].own_records[1].reason.as_deref(),
        Some("照片未上传完成")
    );

    let r = town_report(&town).await;
    // 河口村: H1 4 req/3 met + S 3/1; H2 4/2 + S 3/1 → 14/7. 李家村: H3 2/2 + S 3/0 → 5/2.
    assert_eq!(
        rates(&r),
        vec![
            row("李家村", 1, 5, 2),
            row("河口村", 2, 14, 7),
            row("东城镇", 3, 19, 9)
        ]
    );
    assert!((r.total.rate - 9.0 / 19.0).abs() < 1e-9);
    assert_eq!(r.misses.len(), 10);
    let esc: Vec<(String, u32)> = r
        .escalations
        .iter()
        .map(|e| (e.helper.name.clone(), e.misses_this_year))
        .collect();
    assert_eq!(
        esc,
        vec![("周雪梅".to_string(), 2), ("黄志强".to_string(), 1)]
    );
    assert_eq!(
        r.escalations[0].action,
        "单位内通报批评，取消本年度评先评优资格"
    );
    assert_eq!(r.escalations[1].action, "通报派出单位，约谈");
    assert_eq!(r.unit_escalations.len(), 1, "市教育局: 1 + 2 person-times");
    assert_eq!(
        (
            r.unit_escalations[0].unit.as_str(),
            r.unit_escalations[0].person_times
        ),
        ("市教育局", 3)
    );
    let none: Vec<&str> = r
        .no_home_visit
        .iter()
        .map(|h| h.head_name.as_str())
        .collect();
    assert_eq!(none, ["叶秀兰"]);
    assert_eq!(r.sheets.len(), 1);
    assert_eq!(r.sheets[0].version, None, "not yet submitted");

    let c = county_report(&town).await;
    assert_eq!(c.towns.len(), 1);
    assert_eq!(
        (
            c.towns[0].rank,
            c.towns[0].required_windows,
            c.towns[0].met_windows
        ),
        (Some(1), 19, 9)
    );
    assert_eq!(c.unit_escalations.len(), 1);

    // A later policy change does not rejudge a past quarter.
    let from = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
    bangfu_server::services::policy::set(
        &t.db,
        &bangfu_server::services::Caller::system(),
        town.w.county_id,
        None,
        from,
        &PolicyPreset::Xigang2019.policy(),
    )
    .await
    .unwrap();
    assert_eq!(rates(&town_report(&town).await), rates(&r));

    quarter_end_flow(&mut town).await;
    formats(&town).await;
}
db_test!(laizhou_2018_reports_match_hand_computed_cells, laizhou);

/// The current quarter, mid-way: a window that has not ended is "in progress" on the
/// sheet, and the town report neither counts it in the rates nor lists it as a miss (the
/// helper still has time). The windows that have ended are judged as always.
async fn open_windows(t: &TestDb) {
    let town = town(t, PolicyPreset::Laizhou2018).await;
    let today = bangfu_server::services::today();
    let q = bangfu_shared::report::Quarter::of(today);
    let (status, body) = town
        .w
        .get(
            Some(&town.s.token),
            &format!("/reports/attendance?quarter={q}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sheet: AttendanceSheet = serde_json::from_value(body).unwrap();
    let windows: Vec<_> = sheet
        .rows
        .iter()
        .flat_map(|r| r.windows.iter().chain(&r.own_windows))
        .filter(|w| w.required)
        .collect();
    assert!(
        windows.iter().any(|w| w.open),
        "the quarter's last month has not ended"
    );
    for w in &windows {
        assert_eq!(w.open, w.end >= today, "{w:?}");
    }
    // No visits were recorded: every ended window is missed, every open one in progress.
    let row = &sheet.rows[0];
    let text = row.record_text();
    for w in row.windows.iter().filter(|w| w.required) {
        let cell = format!(
            "{}~{}{}{}",
            w.start.format("%m-%d"),
            w.end.format("%m-%d"),
            w.kind.label_zh(),
            if w.open { "进行中" } else { "未到位" }
        );
        assert!(text.contains(&cell), "{cell} in {text}");
    }

    let (status, body) = town
        .w
        .get(
            Some(&town.county),
            &format!("/reports/town?town={}&quarter={q}", town.town_id),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report: TownReport = serde_json::from_value(body).unwrap();
    assert!(
        report.misses.iter().all(|m| m.end < today),
        "an open window is not a miss: {:?}",
        report.misses
    );
    let ended = windows
        .iter()
        .filter(|w| !w.open && w.end >= q.start())
        .count() as u32;
    assert_eq!(
        report.total.required_windows, ended,
        "only ended windows are required"
    );
    assert_eq!(report.total.met_windows, 0);
}
db_test!(
    windows_not_yet_ended_are_in_progress_not_misses,
    open_windows
);

/// A second helper who supervises households of two towns: in the frozen versions, each
/// town office sees its own households only (the county sees both).
async fn versions_by_scope(t: &TestDb) {
    let town = town(t, PolicyPreset::Laizhou2018).await;
    let w = &town.w;
    w.import_ok(
        &town.county,
        "?effective_from=2025-10-01&filed_on=2025-07-01",
        ledger(&["1,吴海生,西港镇东村,因病,医疗救助,13800000001,郑明,市水利局 科员,13800000002,孔玉梅,村委会主任,18893287921"]),
    )
    .await;
    let sub = submission(&town, vec![]);
    let (status, v1) = w
        .post_json(
            Some(&town.s.token),
            "/reports/attendance/submit",
            &serde_json::to_value(&sub).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!(v1["rows"].as_array().unwrap().len(), 4);
    let (_, all) = w.get(Some(&town.county), "/households?per_page=100").await;
    let xigang = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["head_name"] == "吴海生")
        .unwrap()["town"]["id"]
        .as_i64()
        .unwrap();
    office(t, w, "xigang", Role::TownOffice, xigang).await;
    let heads = |versions: &serde_json::Value| -> Vec<String> {
        let mut names: Vec<String> = versions[0]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["head_name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    let path = format!(
        "/reports/attendance/versions?second_helper={}&quarter=2026Q1",
        town.s_id
    );
    for (login, expected) in [
        ("dongcheng", vec!["叶秀兰", "曾淑珍", "田晓东"]),
        ("xigang", vec!["吴海生"]),
        ("county", vec!["吴海生", "叶秀兰", "曾淑珍", "田晓东"]),
    ] {
        let token = w.login(login).await;
        let (status, versions) = w.get(Some(&token), &path).await;
        assert_eq!(status, StatusCode::OK, "{login}: {versions}");
        let mut expected: Vec<String> = expected.into_iter().map(String::from).collect();
        expected.sort();
        assert_eq!(heads(&versions), expected, "{login}");
    }
}
db_test!(
    frozen_sheets_show_each_office_its_own_households,
    versions_by_scope
);

async fn xigang(t: &TestDb) {
    let mut town = town(t, PolicyPreset::Xigang2019).await;
    record_quarter(&mut town).await;
    let s = sheet(&town, &town.s.token).await;
    assert_eq!(s.policy_source, "xigang-2019");
    let texts: Vec<String> = s.rows.iter().map(|r| r.record_text()).collect();
    assert_eq!(
        texts,
        [
            "01-10入户；01-10入户(不计:同日重复走访，只计一次)；01-20电话；02-05电话(不计:已作废)；03-03电话｜01-01~03-31入户到位；01-01~01-31电话到位；02-01~02-28电话未到位；03-01~03-31电话到位",
            "01-05电话(不计:设备时间异常)；01-15入户；02-06电话；02-12入户(不计:照片已用于其他走访)；03-07电话｜01-01~03-31入户到位；01-01~01-31电话未到位；02-01~02-28电话到位；03-01~03-31电话到位",
            "01-08电话(不计:已被更正记录取代)；01-09电话；02-10入户(不计:走访时未与该户结对)；03-09电话｜01-01~01-31电话到位；03-01~03-31电话到位",
        ]
    );
    assert!(
        s.rows.iter().all(|r| r.own_windows.is_empty()),
        "xigang asks nothing of second helpers"
    );
    let r = town_report(&town).await;
    // H1 4/3, H2 4/3 → 河口村 8/6; H3 2/2 → 李家村 2/2.
    assert_eq!(
        rates(&r),
        vec![
            row("李家村", 1, 2, 2),
            row("河口村", 2, 8, 6),
            row("东城镇", 3, 10, 8)
        ]
    );
    let esc: Vec<(String, u32)> = r
        .escalations
        .iter()
        .map(|e| (e.helper.name.clone(), e.misses_this_year))
        .collect();
    assert_eq!(
        esc,
        vec![("周雪梅".to_string(), 1), ("黄志强".to_string(), 1)]
    );
    assert!(r.unit_escalations.is_empty(), "市教育局 has 2 person-times");
    let none: Vec<&str> = r
        .no_home_visit
        .iter()
        .map(|h| h.head_name.as_str())
        .collect();
    assert_eq!(none, ["叶秀兰"]);
}
db_test!(xigang_2019_reports_match_hand_computed_cells, xigang);

fn submission(t: &Town, remarks: Vec<(i64, String)>) -> SheetSubmission {
    let mut sub = SheetSubmission {
        quarter: "2026Q1".parse().unwrap(),
        device_id: t.s.device.device_id,
        remarks,
        signature: String::new(),
        submission_id: Some(uuid::Uuid::now_v7()),
    };
    sub.signature = hex::encode(t.s.device.key.sign(&sub.signing_bytes()).to_bytes());
    sub
}

/// The second helper submits; a late visit shows in the next version; feedback reaches the field.
async fn quarter_end_flow(t: &mut Town) {
    let w = &t.w;
    let mut forged = submission(t, vec![(t.h[2], "李家村一户无人入户".into())]);
    forged.remarks[0].1 = "改过".into();
    let (status, _) = w
        .post_json(
            Some(&t.s.token),
            "/reports/attendance/submit",
            &serde_json::to_value(&forged).unwrap(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a sheet altered after signing is refused"
    );
    let sub = submission(t, vec![(t.h[2], "李家村一户无人入户".into())]);
    let (status, v1) = w
        .post_json(
            Some(&t.s.token),
            "/reports/attendance/submit",
            &serde_json::to_value(&sub).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!(v1["submitted_version"], 1);
    let (status, _) = w
        .post_json(
            Some(&t.a.token),
            "/reports/attendance/submit",
            &serde_json::to_value(&sub).unwrap(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only the second helper submits"
    );
    // The answer was lost and the device sends the same submission again: the server
    // answers with the version it froze instead of freezing another.
    let (status, again) = w
        .post_json(
            Some(&t.s.token),
            "/reports/attendance/submit",
            &serde_json::to_value(&sub).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, v1, "the same frozen version 1");
    assert_eq!(
        sheet(t, &t.s.token).await.submission_id,
        sub.submission_id,
        "the live sheet names the submission that froze its last version"
    );

    // A visit that arrives after submission appears marked late, in the next version.
    let late = t.a.device.sign(
        t.h[0],
        RecordType::Visit,
        Some(visit(VisitKind::Phone, noon(3, 25), &[], None)),
        None,
        None,
    );
    push(w, &t.a, &[late]).await;
    let now = sheet(t, &t.s.token).await;
    let last = now.rows[0].records.last().unwrap();
    assert_eq!(
        (last.date, last.late),
        (NaiveDate::from_ymd_opt(2026, 3, 25).unwrap(), true)
    );
    assert_eq!(now.rows[2].remark.as_deref(), Some("李家村一户无人入户"));
    let (status, v2) = w
        .post_json(
            Some(&t.s.token),
            "/reports/attendance/submit",
            &serde_json::to_value(submission(t, vec![])).unwrap(),
        )
        .await;
    assert_eq!(
        (status, v2["submitted_version"].as_i64()),
        (StatusCode::CREATED, Some(2))
    );
    let (_, versions) = w
        .get(
            Some(&t.county),
            &format!(
                "/reports/attendance/versions?second_helper={}&quarter=2026Q1",
                t.s_id
            ),
        )
        .await;
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        versions[0]["rows"][0]["records"].as_array().unwrap().len(),
        5,
        "version 1 is frozen without the late call"
    );
    assert_eq!(
        versions[1]["rows"][0]["records"].as_array().unwrap().len(),
        6
    );
    let r = town_report(t).await;
    assert_eq!(r.sheets[0].version, Some(2));

    // Feedback: the town office marks a record, the helper sees why after a pull, amends it.
    let town_office = w.login("dongcheng").await;
    let (_, drill) = w
        .get(
            Some(&town_office),
            &format!("/reports/records?household={}&quarter=2026Q1", t.h[0]),
        )
        .await;
    let first = &drill.as_array().unwrap()[0];
    assert_eq!(
        first["photos"].as_array().unwrap().len(),
        2,
        "photo and drawn signature: {first}"
    );
    let (status, photo) = w
        .get_bytes(
            &town_office,
            &format!("/blobs/{}", first["photos"][0].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        (status, photo),
        (StatusCode::OK, t.p[0].clone()),
        "drill-down reaches the photo"
    );
    let id = first["record_id"].as_str().unwrap();
    let (status, _) = w
        .post_json(
            Some(&town_office),
            &format!("/records/{id}/review"),
            &json!({ "reason": "照片模糊，请补拍" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, pull) = w.get(Some(&t.a.token), "/sync/pull?cursor=0").await;
    let reviewed = pull["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["signed"]["record"]["id"] == id)
        .unwrap();
    assert_eq!(reviewed["review"], "照片模糊，请补拍");
    let original: uuid::Uuid = id.parse().unwrap();
    let fix = t.a.device.sign(
        t.h[0],
        RecordType::Amendment,
        Some(visit(VisitKind::Home, noon(1, 10), &[&t.p[0]], witness())),
        Some(original),
        Some("补充说明"),
    );
    push(w, &t.a, &[fix]).await;
    let (_, drill) = w
        .get(
            Some(&town_office),
            &format!("/reports/records?household={}&quarter=2026Q1", t.h[0]),
        )
        .await;
    let states: Vec<String> = drill[0]["review"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["has_issues", "resubmitted"]);
}

async fn formats(t: &Town) {
    use calamine::Reader;
    let w = &t.w;
    let (status, csv) = w
        .get_bytes(
            &t.county,
            &format!(
                "/reports/attendance?second_helper={}&quarter=2026Q1&format=csv",
                t.s_id
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(csv).unwrap();
    assert!(text.starts_with("\u{feff}序号,贫困户姓名,家庭地址(村),第一帮扶责任人姓名,工作单位及职务,联系方式,帮扶记录"), "{text}");
    for (path, sheets) in [
        (
            format!(
                "/reports/attendance?second_helper={}&quarter=2026Q1&format=xlsx",
                t.s_id
            ),
            1,
        ),
        (
            format!(
                "/reports/town?town={}&quarter=2026Q1&format=xlsx",
                t.town_id
            ),
            6,
        ),
        ("/reports/county?quarter=2026Q1&format=xlsx".to_string(), 3),
    ] {
        let (status, bytes) = w.get_bytes(&t.county, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(book.sheet_names().len(), sheets, "{path}");
        let range = book.worksheet_range_at(0).unwrap().unwrap();
        let header: Vec<String> = range
            .rows()
            .nth(1)
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert!(
            header.iter().any(|h| h == "到位率" || h == "帮扶记录"),
            "{path}: {header:?}"
        );
    }
    let (status, town_csv) = w
        .get_bytes(
            &t.county,
            &format!("/reports/town?town={}&quarter=2026Q1&format=csv", t.town_id),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8(town_csv)
            .unwrap()
            .contains("合计,3,19,9,47.4%")
    );
    // The printed sheet (PDF) shows the submission and its device signature.
    let (status, pdf) = w
        .get_bytes(
            &t.county,
            &format!(
                "/reports/attendance?second_helper={}&quarter=2026Q1&format=pdf",
                t.s_id
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(pdf.starts_with(b"%PDF-"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sheet.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let text = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (apt-get install poppler-utils)");
    let text = String::from_utf8_lossy(&text.stdout)
        .split_whitespace()
        .collect::<String>();
    for needle in ["贫困户姓名", "帮扶记录", "提交版本：2", "设备签名"] {
        assert!(
            text.contains(needle),
            "{needle} not in the sheet PDF: {text}"
        );
    }
}
