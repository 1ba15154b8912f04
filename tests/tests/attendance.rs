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

/// Stores `policy` as the county's from `from` (any day: a test sets the rules of a
/// quarter already recorded).
async fn set_policy(t: &TestDb, town: &Town, policy: bangfu_shared::Policy, from: NaiveDate) {
    bangfu_server::services::policy::backfill(
        &t.db,
        &bangfu_server::services::Caller::system(),
        town.w.county_id,
        None,
        from,
        &policy,
    )
    .await
    .unwrap();
}

async fn helper(t: &TestDb, w: &World, phone: &str) -> (Helper, i64) {
    enroll_directly(t, w, phone).await;
    let token = w.login(phone).await;
    let (_, me) = w.get(Some(&token), "/me").await;
    let id = me["helper"]["id"].as_i64().unwrap();
    let device = Device::register(w, &token, id).await;
    (Helper { token, device }, id)
}

async fn town(t: &TestDb, preset: PolicyPreset) -> Town {
    let w = World::new(t).await;
    if preset == PolicyPreset::Xigang2019 {
        let from = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        bangfu_server::services::policy::backfill(
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
        "?effective_from=2025-10-01&filed_on=2025-07-01&retroactive=true",
        ledger(&ROWS),
    )
    .await;
    w.import_ok(
        &county,
        "?effective_from=2026-02-15&filed_on=2025-12-15&retroactive=true",
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

/// The witness's mark drawn on visit `n`'s pad: a drawn mark is never the same bytes
/// twice (the same image on two visits reads as a copy, 照片已用于其他走访).
fn mark(n: u8) -> Vec<u8> {
    png(200 + n)
}

/// A witness who signed visit `n` with [`mark`]`(n)`, which its helper uploads.
fn witness(n: u8) -> Option<HouseholdSignature> {
    Some(HouseholdSignature::Witness {
        name: "王见证".into(),
        role: "村公证人".into(),
        reason: "户主不识字".into(),
        image_sha256: Some(sha256_hex(&mark(n))),
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
    // A → H1, signed as the visits happen (a device's clock does not go back).
    let a = &mut t.a.device;
    let mut recs = vec![
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
                witness(1),
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
    ];
    let call_feb5 = a.sign(
        h1,
        RecordType::Visit,
        Some(visit(phone, noon(2, 5), &[], None)),
        None,
        None,
    );
    recs.push(call_feb5.clone());
    recs.push(a.sign_at(
        h1,
        RecordType::Void,
        None,
        Some(call_feb5.record.id),
        Some("误录"),
        noon(2, 5) + chrono::Duration::hours(1),
    ));
    recs.push(a.sign(
        h1,
        RecordType::Visit,
        Some(visit(phone, noon(3, 3), &[], None)),
        None,
        None,
    ));
    push(w, &t.a, &recs).await;
    // B → H2
    let b = &mut t.b.device;
    let recs = vec![
        b.sign(
            h2,
            RecordType::Visit,
            Some(visit(home, noon(1, 15), &[], witness(2))),
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
            Some(visit(home, noon(2, 12), &[&t.p[0]], witness(3))),
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
        // Last: its clock days ahead, the device signs nothing after it.
        b.sign_at(
            h2,
            RecordType::Visit,
            Some(visit(phone, noon(1, 5), &[], None)),
            None,
            None,
            Utc::now() + chrono::Duration::days(3),
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
            Some(visit(home, noon(2, 10), &[&t.p[2]], witness(4))),
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
            Some(visit(home, noon(1, 12), &[&t.p[4]], witness(5))),
            None,
            None,
        ),
        s.sign(
            h2,
            RecordType::Visit,
            Some(visit(home, noon(2, 14), &[&t.p[5]], witness(6))),
            None,
            None,
        ),
        s.sign(
            h1,
            RecordType::Visit,
            Some(visit(home, noon(3, 2), &[&t.p[3]], witness(7))),
            None,
            None,
        ),
    ];
    push(w, &t.s, &recs).await;
    let origin = format!("http://{}", w.server.addr);
    let marks = |ns: &[u8]| ns.iter().map(|&n| mark(n)).collect::<Vec<_>>();
    let sent = [
        (&t.a.token, vec![t.p[0].clone(), t.p[1].clone(), sig]),
        (&t.a.token, marks(&[1])),
        (&t.b.token, marks(&[2, 3])),
        (&t.d.token, vec![t.p[2].clone()]),
        (&t.d.token, marks(&[4])),
        (&t.s.token, vec![t.p[4].clone(), t.p[5].clone()]),
        (&t.s.token, marks(&[5, 6, 7])),
    ];
    for (token, files) in sent {
        for bytes in files {
            assert_eq!(
                upload(&w.http, &origin, token, &bytes).await,
                StatusCode::NO_CONTENT
            );
        }
    }
}

async fn sheet(t: &Town, token: &str) -> AttendanceSheet {
    sheet_in(t, token, "2026Q1").await
}

/// The second helper's sheet of `quarter`, as `token` reads it.
async fn sheet_in(t: &Town, token: &str, quarter: &str) -> AttendanceSheet {
    let (status, body) =
        t.w.get(
            Some(token),
            &format!(
                "/reports/attendance?second_helper={}&quarter={quarter}",
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
                "01-05电话(不计:设备时间异常)；01-15入户(不计:缺少照片)；02-06电话；02-12入户(不计:照片或签字图片已用于其他走访)；03-07电话｜01-01~02-28入户未到位；01-01~01-31电话未到位；02-01~02-28电话到位；03-01~03-31电话到位"
            ),
            (
                "叶秀兰",
                "李家村",
                "余立新",
                "曹秀兰：01-09电话；余立新：02-10入户(不计:走访时未与该户结对)；03-09电话｜\
                 无人负责：01-01~02-28入户不考核（期间结对变动）；曹秀兰：01-01~01-31电话到位；\
                 无人负责：02-01~02-28电话不考核（期间结对变动）；余立新：03-01~03-31电话到位"
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
    assert!((r.total.rate.unwrap() - 9.0 / 19.0).abs() < 1e-9);
    assert_eq!(r.misses.len(), 10);
    // Sanctions count missed home visits only (seed 001 §四(四)): 周雪梅's Jan–Feb home
    // window; her missed January call and 黄志强's missed February call do not count.
    let esc: Vec<(String, u32)> = r
        .escalations
        .iter()
        .map(|e| (e.helper.name.clone(), e.misses_this_year))
        .collect();
    assert_eq!(esc, vec![("周雪梅".to_string(), 1)]);
    assert_eq!(r.escalations[0].action, "通报派出单位，约谈");
    assert!(r.unit_escalations.is_empty(), "市教育局: 1 person-time");
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
    assert!(c.unit_escalations.is_empty());
    assert_eq!(c.escalations, r.escalations);

    // A later policy change does not rejudge a past quarter.
    let from = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
    set_policy(t, &town, PolicyPreset::Xigang2019.policy(), from).await;
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
        "?effective_from=2025-10-01&filed_on=2025-07-01&retroactive=true",
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
            "01-05电话(不计:设备时间异常)；01-15入户；02-06电话；02-12入户(不计:照片或签字图片已用于其他走访)；03-07电话｜01-01~03-31入户到位；01-01~01-31电话未到位；02-01~02-28电话到位；03-01~03-31电话到位",
            "曹秀兰：01-09电话；余立新：02-10入户(不计:走访时未与该户结对)；03-09电话｜\
             无人负责：01-01~03-31入户不考核（期间结对变动）；曹秀兰：01-01~01-31电话到位；\
             无人负责：02-01~02-28电话不考核（期间结对变动）；余立新：03-01~03-31电话到位",
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
    // Each missed one call, and calls are not sanctioned: listed, no escalation.
    let missed: Vec<(&str, VisitKind)> = r
        .misses
        .iter()
        .map(|m| (m.helper.name.as_str(), m.kind))
        .collect();
    assert_eq!(
        missed,
        [("周雪梅", VisitKind::Phone), ("黄志强", VisitKind::Phone)]
    );
    assert!(r.escalations.is_empty(), "{:?}", r.escalations);
    assert!(r.unit_escalations.is_empty());
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
        rows_sha256: None,
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
    let r = town_report(t).await;
    assert!(!r.sheets[0].changed_since, "version 1 is today's data");
    push(w, &t.a, &[late]).await;
    // The town office sees that version 1 no longer matches (QA s21 F11).
    let r = town_report(t).await;
    assert_eq!(
        (r.sheets[0].version, r.sheets[0].changed_since),
        (Some(1), true)
    );
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
    assert!(!r.sheets[0].changed_since, "version 2 has the late call");

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
    // The note goes to the helper's device: held to the rules of record texts.
    for (reason, says) in [
        ("照片模糊\u{0}".to_string(), "U+0000"),
        ("长".repeat(1001), "over the limit of 1000"),
    ] {
        let (status, body) = w
            .post_json(
                Some(&town_office),
                &format!("/records/{id}/review"),
                &json!({ "reason": reason }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["message"].as_str().unwrap().contains(says), "{body}");
    }
    let (status, _) = w
        .post_json(
            Some(&town_office),
            &format!("/records/{id}/review"),
            &json!({ "reason": "照片模糊，请补拍" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The county's audit log says whose visit was returned and why.
    let (_, log) = w
        .get(Some(&t.county), "/audit?action=record.has_issues")
        .await;
    let detail = &log[0]["detail"];
    assert_eq!(detail["record"], id, "{log}");
    assert_eq!(detail["household_id"], t.h[0], "{log}");
    assert_eq!(detail["reason"], "照片模糊，请补拍", "{log}");
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
        Some(visit(VisitKind::Home, noon(1, 10), &[&t.p[0]], witness(8))),
        Some(original),
        Some("补充说明"),
    );
    let first_fix = fix.record.id.to_string();
    push(w, &t.a, &[fix]).await;
    let origin = format!("http://{}", w.server.addr);
    assert_eq!(
        upload(&w.http, &origin, &t.a.token, &mark(8)).await,
        StatusCode::NO_CONTENT
    );
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
    // Corrected once more: the original and the first correction are not marked, and
    // the answer names the newest record, not the one between (QA s32d X5, s33c C3).
    let again = t.a.device.sign(
        t.h[0],
        RecordType::Amendment,
        Some(visit(VisitKind::Home, noon(1, 10), &[&t.p[0]], witness(8))),
        Some(original),
        Some("再次更正"),
    );
    let newest = again.record.id.to_string();
    push(w, &t.a, &[again]).await;
    for superseded in [id, &first_fix] {
        let (status, body) = w
            .post_json(
                Some(&town_office),
                &format!("/records/{superseded}/review"),
                &json!({ "reason": "再看看" }),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let says = body["message"].as_str().unwrap();
        assert!(
            says.contains("newest record") && says.contains(&newest),
            "{body}"
        );
    }
    withdrawn_mark(t, &town_office, id).await;
}

/// QA s32d X5: a mark given by mistake is withdrawn with a reason; the helper's pull no
/// longer carries it, the drill-down keeps both steps, and there is nothing to withdraw
/// twice.
async fn withdrawn_mark(t: &Town, town_office: &str, marked_before: &str) {
    let w = &t.w;
    let drill_of = || async {
        w.get(
            Some(town_office),
            &format!("/reports/records?household={}&quarter=2026Q1", t.h[0]),
        )
        .await
        .1
    };
    let mut marked = None;
    for line in drill_of().await.as_array().unwrap() {
        let id = line["record_id"].as_str().unwrap().to_string();
        if id == marked_before {
            continue;
        }
        let path = format!("/records/{id}/review");
        let (status, _) = w
            .post_json(Some(town_office), &path, &json!({ "reason": "请补充" }))
            .await;
        if status == StatusCode::NO_CONTENT {
            marked = Some(id);
            break;
        }
    }
    let id = marked.expect("a record to mark");
    let cancel = format!("/records/{id}/review/cancel");
    let (status, body) = w
        .post_json(Some(town_office), &cancel, &json!({ "reason": "点错了" }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, pull) = w.get(Some(&t.a.token), "/sync/pull?cursor=0").await;
    let pulled = pull["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["signed"]["record"]["id"] == id.as_str())
        .unwrap();
    assert!(pulled["review"].is_null(), "{pulled}");
    let drill = drill_of().await;
    let line = drill
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["record_id"] == id.as_str())
        .unwrap();
    let states: Vec<&str> = line["review"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert_eq!(states, ["has_issues", "withdrawn"], "{line}");
    let (status, _) = w
        .post_json(Some(town_office), &cancel, &json!({ "reason": "点错了" }))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "nothing left to withdraw");
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
    let (title, rest) = text.split_once("\r\n").unwrap();
    assert!(
        title.starts_with('\u{feff}')
            && title.contains("2026年第一季度")
            && title.contains("当前数据"),
        "the sheet's title names its quarter and edition: {title}"
    );
    assert!(
        rest.starts_with(
            "序号,贫困户姓名,家庭地址(村),第一帮扶责任人姓名,工作单位及职务,联系方式,帮扶记录"
        ),
        "{text}"
    );
    for (path, sheets) in [
        (
            format!(
                "/reports/attendance?second_helper={}&quarter=2026Q1&format=xlsx",
                t.s_id
            ),
            2,
        ),
        (
            format!(
                "/reports/town?town={}&quarter=2026Q1&format=xlsx",
                t.town_id
            ),
            8,
        ),
        ("/reports/county?quarter=2026Q1&format=xlsx".to_string(), 4),
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
        // Counts and rates are numbers an office can sum and sort, not text.
        let first_row: Vec<&calamine::Data> = range.rows().nth(2).unwrap().iter().collect();
        let numbers = first_row
            .iter()
            .filter(|c| matches!(c, calamine::Data::Float(_)))
            .count();
        let want = if header.iter().any(|h| h == "到位率") {
            4
        } else {
            1
        };
        assert!(numbers >= want, "{path}: {first_row:?}");
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
    // The printed version 2 (PDF) shows the submission and its device signature.
    let (status, pdf) = w
        .get_bytes(
            &t.county,
            &format!(
                "/reports/attendance?second_helper={}&quarter=2026Q1&format=pdf&version=2",
                t.s_id
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = pdf_text(&pdf);
    for needle in ["贫困户姓名", "帮扶记录", "提交版本：2", "设备签名"] {
        assert!(
            text.contains(needle),
            "{needle} not in the sheet PDF: {text}"
        );
    }
}

/// The text of a PDF, whitespace removed (pdftotext breaks table cells into lines).
fn pdf_text(pdf: &[u8]) -> String {
    assert!(pdf.starts_with(b"%PDF-"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sheet.pdf");
    std::fs::write(&path, pdf).unwrap();
    let text = std::process::Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (apt-get install poppler-utils)");
    String::from_utf8_lossy(&text.stdout)
        .split_whitespace()
        .collect::<String>()
}

/// Seed 001 §四(四) sanctions missed home visits (未按要求入户帮扶), not missed calls: the
/// calls stay in the miss list and the rates and lead to no escalation, in the town and
/// the county report alike.
async fn phone_misses(t: &TestDb) {
    let mut town = town(t, PolicyPreset::Laizhou2018).await;
    record_quarter(&mut town).await;
    let r = town_report(&town).await;
    let first_misses: Vec<(&str, VisitKind, u32)> = r
        .misses
        .iter()
        .filter(|m| m.role == bangfu_shared::PairingRole::First)
        .map(|m| {
            (
                m.helper.name.as_str(),
                m.kind,
                chrono::Datelike::month(&m.start),
            )
        })
        .collect();
    assert_eq!(
        first_misses,
        [
            ("周雪梅", VisitKind::Phone, 1),
            ("周雪梅", VisitKind::Home, 1),
            ("黄志强", VisitKind::Phone, 2),
        ]
    );
    let esc: Vec<(&str, u32)> = r
        .escalations
        .iter()
        .map(|e| (e.helper.name.as_str(), e.misses_this_year))
        .collect();
    assert_eq!(esc, [("周雪梅", 1)], "only the missed home visit counts");
    assert!(r.unit_escalations.is_empty(), "{:?}", r.unit_escalations);
    let c = county_report(&town).await;
    assert_eq!(c.escalations, r.escalations);
    assert!(c.unit_escalations.is_empty());
}
db_test!(missed_calls_are_listed_but_not_sanctioned, phone_misses);

/// QA s27a F2, F3: county and town reports and ledger exports run in the office-read
/// slots (half the cores): offices asking at once all get their report, one after
/// another, and the field's pushes keep the other cores.
async fn office_reads_take_turns(t: &TestDb) {
    use bangfu_server::services::cpu_slots::CpuSlots;
    let mut town = town(t, PolicyPreset::Laizhou2018).await;
    record_quarter(&mut town).await;
    let alone = county_report(&town).await;
    let town_path = format!("/reports/town?town={}&quarter=2026Q1", town.town_id);
    let (county, towns, csv, xlsx) = tokio::join!(
        county_report(&town),
        town.w.get(Some(&town.county), &town_path),
        town.w
            .get_bytes(&town.county, "/reports/county?quarter=2026Q1&format=csv"),
        town.w.get_bytes(&town.county, "/ledger/export?format=xlsx"),
    );
    assert_eq!(county, alone);
    assert_eq!(towns.0, StatusCode::OK, "{}", towns.1);
    assert_eq!((csv.0, xlsx.0), (StatusCode::OK, StatusCode::OK));
    let slots = (std::thread::available_parallelism().unwrap().get() / 2).max(1);
    let peak = CpuSlots::office_reads().peak();
    assert!((1..=slots).contains(&peak), "{peak} at once, {slots} slots");

    // With every slot taken, a request refused at once (a quarter not begun, a town out
    // of scope) is answered so, not queued behind the reports and then told "busy" (QA
    // s28a F7).
    let mut held = Vec::new();
    for _ in 0..slots {
        held.push(CpuSlots::office_reads().hold().await.unwrap());
    }
    let (status, body) = town
        .w
        .get(
            Some(&town.county),
            &format!("/reports/town?town={}&quarter=2099Q1", town.town_id),
        )
        .await;
    let (county_status, county_body) = town
        .w
        .get(Some(&town.county), "/reports/county?quarter=2099Q1")
        .await;
    drop(held);
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        county_status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{county_body}"
    );
}
db_test!(
    office_reads_take_turns_in_their_slots,
    office_reads_take_turns
);

/// QA s26a F4: a witness named without a drawn mark is a name the helper typed, not a
/// signature (双签字, seed 001 §四(三)): the visit does not count where the policy asks
/// for both signatures, and says why. A witness with a mark counts. The migration that
/// brought this rule judges the records stored before it the same way, and only those.
async fn unmarked_witness(t: &TestDb) {
    use bangfu_migrations::m20261207_000010_recount_unmarked_witnesses::Migration as Recount;
    use bangfu_migrations::{MigrationTrait, SchemaManager};
    let mut town = town(t, PolicyPreset::Laizhou2018).await;
    let unmarked = Some(HouseholdSignature::Witness {
        name: "王见证".into(),
        role: "村公证人".into(),
        reason: "户主不识字".into(),
        image_sha256: None,
    });
    let h1 = town.h[0];
    let recs = [
        (noon(1, 10), &town.p[0], unmarked),
        (noon(2, 10), &town.p[1], witness(1)),
    ]
    .map(|(at, photo, signature)| {
        let body = visit(VisitKind::Home, at, &[photo], signature);
        town.a
            .device
            .sign(h1, RecordType::Visit, Some(body), None, None)
    });
    push(&town.w, &town.a, &recs).await;
    let origin = format!("http://{}", town.w.server.addr);
    for bytes in [&town.p[0], &town.p[1], &mark(1)] {
        assert_eq!(
            upload(&town.w.http, &origin, &town.a.token, bytes).await,
            StatusCode::NO_CONTENT
        );
    }
    let homes = |s: AttendanceSheet| -> Vec<(String, Option<String>)> {
        assert_eq!(s.rows[0].head_name, "田晓东");
        s.rows[0]
            .records
            .iter()
            .filter(|r| r.kind == VisitKind::Home)
            .map(|r| (r.date.format("%m-%d").to_string(), r.reason.clone()))
            .collect()
    };
    let judged = |unmarked: Option<&str>| {
        vec![
            ("01-10".to_string(), unmarked.map(str::to_string)),
            ("02-10".to_string(), None),
        ]
    };
    let not_signed = Some("缺少户主或见证人签字");
    assert_eq!(homes(sheet(&town, &town.s.token).await), judged(not_signed));
    // The facts as a server before the rule stored them, and the migration's own run.
    // That migration alone, whatever came after it.
    Recount.down(&SchemaManager::new(&t.db)).await.unwrap();
    assert_eq!(homes(sheet(&town, &town.s.token).await), judged(None));
    Recount.up(&SchemaManager::new(&t.db)).await.unwrap();
    assert_eq!(homes(sheet(&town, &town.s.token).await), judged(not_signed));
}
db_test!(
    a_witness_named_without_a_mark_is_no_signature,
    unmarked_witness
);

/// The sanction ladder is the county's policy (`sanctions`): a county that also
/// sanctions calls gets the seed's ladder over them, the second step a public criticism
/// by the unit; a higher unit threshold spares the unit.
async fn policy_ladder(t: &TestDb) {
    let mut town = town(t, PolicyPreset::Laizhou2018).await;
    record_quarter(&mut town).await;
    let set = |p: bangfu_shared::Policy, from: NaiveDate| set_policy(t, &town, p, from);
    let mut calls_too = PolicyPreset::Laizhou2018.policy();
    calls_too.sanctions.counted_kinds = vec![VisitKind::Home, VisitKind::Phone];
    set(
        calls_too.clone(),
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
    )
    .await;
    let r = town_report(&town).await;
    let esc: Vec<(&str, u32, &str)> = r
        .escalations
        .iter()
        .map(|e| {
            (
                e.helper.name.as_str(),
                e.misses_this_year,
                e.action.as_str(),
            )
        })
        .collect();
    assert_eq!(
        esc,
        [
            (
                "周雪梅",
                2,
                "由其工作单位对其公开通报批评，取消本年度评先评优资格"
            ),
            ("黄志强", 1, "通报派出单位，约谈"),
        ]
    );
    let units: Vec<(&str, u32)> = r
        .unit_escalations
        .iter()
        .map(|u| (u.unit.as_str(), u.person_times))
        .collect();
    assert_eq!(units, [("市教育局", 3)]);
    let c = county_report(&town).await;
    assert_eq!(
        (&c.escalations, &c.unit_escalations),
        (&r.escalations, &r.unit_escalations)
    );

    // Thresholds are read on the quarter's last day; the windows keep their policy.
    let mut lenient = calls_too;
    lenient.sanctions.unit_at = 4;
    set(lenient, NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()).await;
    let r = town_report(&town).await;
    assert_eq!(r.escalations.len(), 2);
    assert!(r.unit_escalations.is_empty(), "3 person-times, 4 needed");
    assert_eq!(r.unit_at, 4);
    assert_eq!(county_report(&town).await.unit_at, 4);
    unit_title_in_every_format(&town, 4).await;
}
db_test!(the_sanction_ladder_is_a_policy_setting, policy_ladder);

/// The unit sanctions' title names `unit_at` in the town and county reports' CSV, XLSX
/// (a sheet's name and first cell) and PDF; the town's says it counts the town only
/// (QA s26a F5).
async fn unit_title_in_every_format(t: &Town, unit_at: u32) {
    use calamine::Reader;
    for (report, scope) in [
        (
            format!("/reports/town?town={}&quarter=2026Q1", t.town_id),
            "本镇范围内",
        ),
        ("/reports/county?quarter=2026Q1".to_string(), ""),
    ] {
        let title = format!("派出单位问责（{scope}本年度累计{unit_at}人次以上）");
        let title = title.as_str();
        let get = |format: &'static str| {
            let path = format!("{report}&format={format}");
            async move {
                let (status, bytes) = t.w.get_bytes(&t.county, &path).await;
                assert_eq!(status, StatusCode::OK, "{path}");
                bytes
            }
        };
        let csv = String::from_utf8(get("csv").await).unwrap();
        assert!(csv.contains(title), "{report}: {csv}");
        assert!(!csv.contains("3人次以上"), "{report}: {csv}");
        // A sanctioned helper by name, unit and phone: two of one name are told apart.
        assert!(
            csv.contains("帮扶责任人,工作单位,联系方式,本年未到位次数,处理")
                && csv.contains("周雪梅,市教育局,18146100330,2,"),
            "{report}: {csv}"
        );
        let xlsx = get("xlsx").await;
        let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(xlsx)).unwrap();
        let sheet = book
            .sheet_names()
            .into_iter()
            .find(|n| n.contains("派出单位问责"))
            .unwrap();
        assert!(sheet.contains("4人次以上"), "{report}: sheet {sheet}");
        let range = book.worksheet_range(&sheet).unwrap();
        assert_eq!(range.get_value((0, 0)).unwrap().to_string(), title);
        let pdf = pdf_text(&get("pdf").await);
        assert!(pdf.contains(title), "{report}: {pdf}");
    }
}

/// A policy version may not be dated into a quarter that has ended (it would rejudge a
/// quarter that may already be reported), by the API or the command line; from the
/// current quarter's first day it is stored.
async fn backdated_policy(t: &TestDb) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    let today = bangfu_tests::china_today();
    let quarter_start = bangfu_shared::report::Quarter::of(today).start();
    let ended = quarter_start.pred_opt().unwrap();
    let (_, before) = w.get(Some(&county), "/policies").await;
    let (status, body) = w
        .post_json(
            Some(&county),
            "/policies",
            &json!({ "valid_from": ended, "preset": "xigang-2019" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("valid_from") && message.contains("quarter that has ended"),
        "{body}"
    );
    let (_, after) = w.get(Some(&county), "/policies").await;
    assert_eq!(before, after, "nothing stored");

    let out = std::process::Command::new(bangfu_tests::server_binary())
        .args(["--database-url", &t.url, "--data-dir"])
        .arg(t.dir())
        .args(["--log", "warn", "policy", "set", "--county", "莱州市"])
        .args(["--preset", "xigang-2019", "--from", &ended.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("quarter that has ended"), "{stderr}");
    let (_, after) = w.get(Some(&county), "/policies").await;
    assert_eq!(before, after, "nothing stored");

    let (status, body) = w
        .post_json(
            Some(&county),
            "/policies",
            &json!({ "valid_from": quarter_start, "preset": "xigang-2019" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    policy_notices(t, &w, &county, quarter_start, today).await;
}

/// What a version does beyond its text is said when it is set (s21c N2, N5): dated back
/// it rejudges visits and windows already past (ended ones named when it reaches before
/// this month); a second version of one day replaces the first; a town's override no
/// longer follows the county, and a county version does not reach such a town.
async fn policy_notices(
    t: &TestDb,
    w: &World,
    county: &str,
    quarter_start: NaiveDate,
    today: NaiveDate,
) {
    let notices = |body: &serde_json::Value| -> String {
        body["notices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (_, body) = w.get(Some(county), "/policies").await;
    let first = body.as_array().unwrap().last().unwrap().clone();
    assert_eq!(first["valid_from"], json!(quarter_start), "{body}");
    let post = |valid_from: NaiveDate, town: Option<i64>| {
        let body = json!({ "valid_from": valid_from, "town": town, "preset": "laizhou-2018" });
        async move {
            let (status, body) = w.post_json(Some(county), "/policies", &body).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            assert!(body["id"].as_i64().is_some(), "the version itself: {body}");
            notices(&body)
        }
    };
    let month = bangfu_shared::policy::window_of(today, 1).0;
    let again = post(quarter_start, None).await;
    assert!(
        again.contains(&format!("{quarter_start}已有同级政策版本")),
        "{again}"
    );
    assert_eq!(
        again.contains(&format!("生效日期{quarter_start}早于今天")),
        quarter_start < today,
        "{again}"
    );
    assert_eq!(
        again.contains("已结束的考勤周期可能改判"),
        quarter_start < month,
        "{again}"
    );
    let tomorrow = today.succ_opt().unwrap();
    assert_eq!(
        post(tomorrow, None).await,
        "",
        "a plain version says nothing"
    );

    let (town, _) = bangfu_server::services::jurisdictions::ensure(
        &t.db,
        bangfu_shared::JurisdictionLevel::Town,
        "城南镇",
        Some(w.county_id),
    )
    .await
    .unwrap();
    let own = post(tomorrow, Some(town)).await;
    assert!(
        own.contains(&format!("本乡镇自{tomorrow}起按本乡镇的政策判定")),
        "{own}"
    );
    let later = tomorrow.succ_opt().unwrap();
    assert_eq!(
        post(later, Some(town)).await,
        "",
        "the town already has its own"
    );
    let county_wide = post(later, None).await;
    assert!(
        county_wide.contains("以下乡镇有本乡镇的政策")
            && county_wide.contains("问责标准除外")
            && county_wide.contains(&format!("城南镇（{later}起）")),
        "{county_wide}"
    );
    // A town's own sanction thresholds are not used: the office is told (QA s23b F6).
    let mut own_ladder = bangfu_shared::PolicyPreset::Laizhou2018.policy();
    own_ladder.sanctions.unit_at = 20;
    let body =
        json!({ "valid_from": later.succ_opt().unwrap(), "town": town, "policy": own_ladder });
    let (status, body) = w.post_json(Some(county), "/policies", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        notices(&body).contains("本版本的问责标准（sanctions）不适用"),
        "{body}"
    );

    let out = std::process::Command::new(bangfu_tests::server_binary())
        .args(["--database-url", &t.url, "--data-dir"])
        .arg(t.dir())
        .args(["--log", "warn", "policy", "set", "--county", "莱州市"])
        .args(["--preset", "xigang-2019", "--from", &later.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("注意：{later}已有同级政策版本")) && stderr.contains("城南镇"),
        "{stderr}"
    );
}
db_test!(
    a_policy_is_not_dated_into_an_ended_quarter,
    backdated_policy
);

/// A sheet printed or exported is what its label says: after a submission the live
/// sheet is "当前数据" (current data), with no device signature, even when visits
/// arrived since; `version=N` gives version N as frozen, with its signature.
async fn printed_versions(t: &TestDb) {
    use calamine::Reader;
    let mut town = town(t, PolicyPreset::Laizhou2018).await;
    record_quarter(&mut town).await;
    let w = &town.w;
    let sub = submission(&town, vec![(town.h[2], "李家村一户无人入户".into())]);
    let (status, v1) = w
        .post_json(
            Some(&town.s.token),
            "/reports/attendance/submit",
            &serde_json::to_value(&sub).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    let late = town.a.device.sign(
        town.h[0],
        RecordType::Visit,
        Some(visit(VisitKind::Phone, noon(3, 25), &[], None)),
        None,
        None,
    );
    let late_id = late.record.id.to_string();
    push(w, &town.a, &[late]).await;
    let base = format!(
        "/reports/attendance?second_helper={}&quarter=2026Q1",
        town.s_id
    );
    let get = |query: &'static str| {
        let path = format!("{base}{query}");
        let token = town.county.clone();
        async move {
            let (status, bytes) = w.get_bytes(&token, &path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            bytes
        }
    };

    // The live sheet: current data, naming the submission but not claiming it.
    let live = pdf_text(&get("&format=pdf").await);
    assert!(live.contains("当前数据（第1版已于"), "{live}");
    assert!(live.contains("03-25电话(迟报)"), "{live}");
    // The drill-down marks it late as the sheet does (QA s22c F8), and only it.
    let (_, lines) = w
        .get(
            Some(&town.county),
            &format!("/reports/records?household={}&quarter=2026Q1", town.h[0]),
        )
        .await;
    let late_flags: Vec<(bool, bool)> = lines
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["record_id"] == late_id, l["late"] == true))
        .collect();
    assert!(late_flags.contains(&(true, true)), "{lines}");
    assert!(late_flags.iter().all(|(is, late)| is == late), "{lines}");
    // What the mark means is printed with the rule (QA s22b F9).
    let csv = String::from_utf8(get("&format=csv").await).unwrap();
    assert!(
        csv.contains("标记说明：(迟报) 上次报送考勤表后才收到的记录"),
        "{csv}"
    );
    for not in ["提交版本", "设备签名", "（第1版）"] {
        assert!(!live.contains(not), "{not} in the live sheet: {live}");
    }
    // Version 1 as frozen: without the late call, with its signature.
    let frozen = pdf_text(&get("&format=pdf&version=1").await);
    for want in [
        "第1版".to_string(),
        "提交版本：1".to_string(),
        format!("设备签名：{}…", &sub.signature[..16]),
        "李家村一户无人入户".to_string(),
    ] {
        assert!(frozen.contains(&want), "{want} not in version 1: {frozen}");
    }
    assert!(
        !frozen.contains("03-25"),
        "version 1 was frozen before the call"
    );
    assert!(!frozen.contains("当前数据"), "{frozen}");

    // The same in a spreadsheet: the title says which, the cells are that data.
    let title_and_cell = |bytes: Vec<u8>| {
        let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
        let range = book.worksheet_range_at(0).unwrap().unwrap();
        let rows: Vec<Vec<String>> = range
            .rows()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        (rows[0][0].clone(), rows[2][6].clone())
    };
    let (title, cell) = title_and_cell(get("&format=xlsx").await);
    assert!(title.contains("当前数据（第1版已于"), "{title}");
    assert!(cell.contains("03-25"), "{cell}");
    let (title, cell) = title_and_cell(get("&format=xlsx&version=1").await);
    assert!(
        title.ends_with("第1版") && !title.contains("当前数据"),
        "{title}"
    );
    assert!(!cell.contains("03-25"), "{cell}");

    // As JSON, version 1 is the frozen body; an unknown version is not found.
    let (_, versions) = w
        .get(
            Some(&town.county),
            &format!(
                "{}&version=1",
                base.replace("attendance?", "attendance/versions?")
            ),
        )
        .await;
    let (status, one) = w
        .get(Some(&town.county), &format!("{base}&version=1"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(versions.as_array().unwrap().len(), 1);
    assert_eq!(one, versions[0]);
    assert_eq!(one, v1);
    let (status, _) = w
        .get(Some(&town.county), &format!("{base}&version=9"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A first helper's id has no sheet; the answer says sheets are second helpers'.
    let (_, me) = w.get(Some(&town.a.token), "/me").await;
    let first = me["helper"]["id"].as_i64().unwrap();
    let (status, body) = w
        .get(
            Some(&town.county),
            &format!("/reports/attendance?second_helper={first}&quarter=2026Q1"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("kept by second helpers"), "{message}");
    // An id no helper has reads the same: the answer tells no one which ids exist
    // elsewhere (QA s25b F4).
    let (status, none) = w
        .get(
            Some(&town.county),
            "/reports/attendance?second_helper=987654&quarter=2026Q1",
        )
        .await;
    assert_eq!((status, &none), (StatusCode::NOT_FOUND, &body));

    // A signature is looked up only for the body it signed (the command line prints so).
    let system = bangfu_server::services::Caller::system();
    let now = bangfu_server::services::reports::sheet(
        &t.db,
        &system,
        town.s_id,
        "2026Q1".parse().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(now.submitted_version, Some(1), "the live sheet names it");
    assert_eq!(
        bangfu_server::report_pdf::sheet_signature(&t.db, &now)
            .await
            .unwrap(),
        None
    );
    let frozen: AttendanceSheet = serde_json::from_value(v1).unwrap();
    assert_eq!(
        bangfu_server::report_pdf::sheet_signature(&t.db, &frozen)
            .await
            .unwrap(),
        Some(sub.signature.clone())
    );

    // The command line prints the same editions (QA s24a F6): today's data unsigned,
    // `--version 1` as frozen, signed.
    let cli_pdf = |version: Option<&str>| {
        let mut cmd = std::process::Command::new(bangfu_tests::server_binary());
        cmd.args(["--database-url", &t.url, "--data-dir"])
            .arg(t.dir())
            .args(["--log", "warn", "report", "attendance"])
            .args(["--second-helper", "18893287921", "--quarter", "2026Q1"])
            .args(["--format", "pdf"]);
        if let Some(v) = version {
            cmd.args(["--version", v]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        pdf_text(&out.stdout)
    };
    let live = cli_pdf(None);
    assert!(
        live.contains("当前数据（第1版已于") && !live.contains("设备签名"),
        "{live}"
    );
    let v1 = cli_pdf(Some("1"));
    assert!(
        v1.contains(&format!("设备签名：{}…", &sub.signature[..16])) && !v1.contains("03-25"),
        "{v1}"
    );
}
db_test!(a_printed_sheet_is_the_version_it_names, printed_versions);

/// The first-helper pairing of `household` that holds today.
async fn current_first_pairing(
    t: &TestDb,
    household: i64,
) -> bangfu_server::entities::pairing::Model {
    use bangfu_server::entities::pairing;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    pairing::Entity::find()
        .filter(pairing::Column::HouseholdId.eq(household))
        .filter(pairing::Column::Role.eq("first"))
        .filter(pairing::Column::ValidTo.is_null())
        .one(&t.db)
        .await
        .unwrap()
        .unwrap()
}

/// The windows a row judges, each by its month, kind and the helper it is judged for.
fn whose(row: &bangfu_shared::report::SheetRow) -> Vec<(u32, VisitKind, String)> {
    row.windows
        .iter()
        .filter(|w| w.required)
        .map(|w| {
            (
                chrono::Datelike::month(&w.start),
                w.kind,
                w.helper.as_ref().unwrap().name.clone(),
            )
        })
        .collect()
}

/// A household whose first helper changed mid-quarter (H3: 曹秀兰 until Feb 15, then
/// 余立新): each window on the sheet names its helper, and the row's first helper is
/// one paired during the quarter.
async fn helper_change(t: &TestDb) {
    use sea_orm::{ActiveModelTrait, Set};
    let mut town = town(t, PolicyPreset::Laizhou2018).await;
    record_quarter(&mut town).await;
    let s = sheet(&town, &town.s.token).await;
    let row = &s.rows[2];
    assert_eq!(row.head_name, "叶秀兰");
    assert_eq!(row.first_helper.as_ref().unwrap().name, "余立新");
    let whose = whose(row);
    assert_eq!(
        whose,
        [
            (1, VisitKind::Phone, "曹秀兰".to_string()),
            (3, VisitKind::Phone, "余立新".to_string()),
        ]
    );
    let text = row.record_text();
    assert!(text.contains("曹秀兰：01-01~01-31电话到位"), "{text}");
    assert!(
        !s.rows[0].record_text().contains('：'),
        "one helper all quarter: no names"
    );

    // 余立新's pairing ends on Mar 1 with no successor: in Q2 the household has no
    // first helper, and the sheet does not name one whose pairing ended before it.
    use bangfu_server::entities::pairing;
    let d = current_first_pairing(t, town.h[2]).await;
    let mut ended: pairing::ActiveModel = d.into();
    ended.valid_to = Set(Some(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()));
    ended.update(&t.db).await.unwrap();
    let (status, body) = town
        .w
        .get(Some(&town.s.token), "/reports/attendance?quarter=2026Q2")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let q2: AttendanceSheet = serde_json::from_value(body).unwrap();
    let row = q2.rows.iter().find(|r| r.head_name == "叶秀兰").unwrap();
    assert_eq!(row.first_helper, None, "no first helper in Q2");
    let h1 = q2.rows.iter().find(|r| r.head_name == "田晓东").unwrap();
    assert_eq!(h1.first_helper.as_ref().unwrap().name, "黄志强");
}
db_test!(a_sheet_names_whose_each_window_is, helper_change);

/// QA s26a F3: a change of helper imported dated back holds the new helper to no
/// window that had ended by the day the change was filed. 余立新 took 叶秀兰 over from
/// 曹秀兰 on Feb 15; filed on Apr 2 (after the quarter), March's call window, which his
/// pairing covers whole, is no one's: the sheet does not name him for it, the town
/// report lists it with the reason, and the household's pairing says when it was filed,
/// for the field client to judge the same.
async fn change_filed_late(t: &TestDb) {
    use bangfu_server::entities::pairing;
    use sea_orm::{ActiveModelTrait, Set};
    let mut town = town(t, PolicyPreset::Laizhou2018).await;
    record_quarter(&mut town).await;
    let filed = NaiveDate::from_ymd_opt(2026, 4, 2).unwrap();
    let d = current_first_pairing(t, town.h[2]).await;
    let d_id = d.id;
    let mut late: pairing::ActiveModel = d.into();
    late.filed_on = Set(filed);
    late.update(&t.db).await.unwrap();
    let s = sheet(&town, &town.s.token).await;
    let row = &s.rows[2];
    assert_eq!(row.head_name, "叶秀兰");
    let whose = whose(row);
    assert_eq!(whose, [(1, VisitKind::Phone, "曹秀兰".to_string())]);
    // The sheet gives the town report's reason, not that the pairing missed part of the
    // window (QA s28a F5).
    let text = row.record_text();
    assert!(
        text.contains("03-01~03-31电话不考核（结对变动2026-04-02才报备）"),
        "{text}"
    );
    let r = town_report(&town).await;
    let march: Vec<String> = r
        .unowned_windows
        .iter()
        .filter(|w| w.household_id == town.h[2] && w.start.to_string() == "2026-03-01")
        .map(|w| w.cause_zh())
        .collect();
    assert_eq!(march, ["结对变动2026-04-02才报备，晚于周期结束"]);
    let (status, detail) = town
        .w
        .get(Some(&town.county), &format!("/households/{}", town.h[2]))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let known: Vec<(i64, Option<&str>)> = detail["pairings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["role"] == "first")
        .map(|p| (p["id"].as_i64().unwrap(), p["start_known_on"].as_str()))
        .collect();
    assert!(known.contains(&(d_id, Some("2026-04-02"))), "{known:?}");
    assert!(
        known
            .iter()
            .filter(|(id, _)| *id != d_id)
            .all(|(_, k)| k.is_none()),
        "the first helpers before him were filed before they began: {known:?}"
    );
}
db_test!(
    a_change_dated_back_holds_the_new_helper_to_no_window_ended_before_it_was_filed,
    change_filed_late
);

/// A window no pairing covered in full (H3's helper changed on Feb 15, inside the
/// Jan–Feb home window and the February call window) is judged for no one, and the town
/// report lists it with the helpers paired during it.
async fn unowned(t: &TestDb) {
    let mut town = town(t, PolicyPreset::Laizhou2018).await;
    record_quarter(&mut town).await;
    // 曹秀兰 calls 叶秀兰 on Feb 3, while still her helper: the February call window,
    // no one's, was made all the same, and the list says so (QA s26a F5).
    let call = town.c.device.sign(
        town.h[2],
        RecordType::Visit,
        Some(visit(VisitKind::Phone, noon(2, 3), &[], None)),
        None,
        None,
    );
    push(&town.w, &town.c, &[call]).await;
    let r = town_report(&town).await;
    let contacts: Vec<String> = r.unowned_windows.iter().map(|u| u.contacts_zh()).collect();
    assert_eq!(contacts, ["未走访", "已走访1次"]);
    let listed: Vec<(&str, &str, VisitKind, String, Vec<&str>)> = r
        .unowned_windows
        .iter()
        .map(|u| {
            (
                u.head_name.as_str(),
                u.village.as_str(),
                u.kind,
                format!("{}~{}", u.start, u.end),
                u.helpers.iter().map(|h| h.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                "叶秀兰",
                "李家村",
                VisitKind::Home,
                "2026-01-01~2026-02-28".to_string(),
                vec!["曹秀兰", "余立新"]
            ),
            (
                "叶秀兰",
                "李家村",
                VisitKind::Phone,
                "2026-02-01~2026-02-28".to_string(),
                vec!["曹秀兰", "余立新"]
            ),
        ]
    );
    assert!(
        r.unowned_windows
            .iter()
            .all(|u| u.role == bangfu_shared::PairingRole::First
                && u.helper_changed
                && u.cause_zh() == "期间结对变动")
    );
    let (status, csv) = town
        .w
        .get_bytes(
            &town.county,
            &format!(
                "/reports/town?town={}&quarter=2026Q1&format=csv",
                town.town_id
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.contains("无人负责的窗口"), "{csv}");
    assert!(
        csv.contains(
            "叶秀兰,李家村,第一帮扶责任人,入户,2026-01-01至2026-02-28,曹秀兰、余立新,未走访,期间结对变动"
        ),
        "{csv}"
    );
}
db_test!(windows_judged_for_no_one_are_listed, unowned);

/// A policy changed mid-quarter judges the visits made under it: each line of the sheet
/// and of the drill-down by the policy in force on its visit date, not by the one of the
/// quarter's first day.
async fn lines_by_visit_date(t: &TestDb) {
    let mut town = town(t, PolicyPreset::Laizhou2018).await;
    record_quarter(&mut town).await;
    // From March 1 the county asks no photo of a home visit.
    let mut no_photo = PolicyPreset::Laizhou2018.policy();
    no_photo.evidence.min_photos = 0;
    bangfu_server::services::policy::backfill(
        &t.db,
        &bangfu_server::services::Caller::system(),
        town.w.county_id,
        None,
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        &no_photo,
    )
    .await
    .unwrap();
    // 周雪梅 visits H2 on March 20 with a witness and no photo (on a new device: her
    // first one's clock ran days ahead, and anything it signed now would read as its
    // clock going back).
    let helper_id = town.b.device.helper_id;
    town.b.device = Device::register(&town.w, &town.b.token, helper_id).await;
    let march = town.b.device.sign(
        town.h[1],
        RecordType::Visit,
        Some(visit(VisitKind::Home, noon(3, 20), &[], witness(9))),
        None,
        None,
    );
    push(&town.w, &town.b, &[march]).await;
    let origin = format!("http://{}", town.w.server.addr);
    assert_eq!(
        upload(&town.w.http, &origin, &town.b.token, &mark(9)).await,
        StatusCode::NO_CONTENT
    );
    let homes =
        |lines: Vec<(NaiveDate, VisitKind, Option<String>)>| -> Vec<(String, Option<String>)> {
            lines
                .into_iter()
                .filter(|(_, kind, _)| *kind == VisitKind::Home)
                .map(|(date, _, reason)| (date.format("%m-%d").to_string(), reason))
                .collect()
        };
    let expected = vec![
        ("01-15".to_string(), Some("缺少照片".to_string())),
        (
            "02-12".to_string(),
            Some("照片或签字图片已用于其他走访".to_string()),
        ),
        ("03-20".to_string(), None),
    ];
    let s = sheet(&town, &town.s.token).await;
    assert_eq!(s.rows[1].head_name, "曾淑珍");
    let lines = s.rows[1]
        .records
        .iter()
        .map(|r| (r.date, r.kind, r.reason.clone()))
        .collect();
    assert_eq!(homes(lines), expected);
    let (status, drill) = town
        .w
        .get(
            Some(&town.county),
            &format!("/reports/records?household={}&quarter=2026Q1", town.h[1]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{drill}");
    let lines = drill
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["helper_id"] != town.s_id)
        .map(|l| {
            (
                l["date"].as_str().unwrap().parse().unwrap(),
                l["kind"].as_str().unwrap().parse().unwrap(),
                l["reason"].as_str().map(String::from),
            )
        })
        .collect();
    assert_eq!(homes(lines), expected);

    // The March–April window is judged in the second quarter: its sheet and drill-down
    // list the March visit that met it as its evidence, and none of March's calls (their
    // windows ended in the first quarter) (QA s23b F1).
    let q2 = sheet_in(&town, &town.s.token, "2026Q2").await;
    let row = &q2.rows[1];
    let shown: Vec<(String, VisitKind)> = row
        .records
        .iter()
        .map(|r| (r.date.format("%m-%d").to_string(), r.kind))
        .collect();
    assert_eq!(shown, [("03-20".to_string(), VisitKind::Home)]);
    assert!(
        row.record_text()
            .starts_with("03-20入户｜03-01~04-30入户到位"),
        "{}",
        row.record_text()
    );
    let (status, drill) = town
        .w
        .get(
            Some(&town.county),
            &format!("/reports/records?household={}&quarter=2026Q2", town.h[1]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{drill}");
    let dates: Vec<(&str, &str)> = drill
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["date"].as_str().unwrap(), l["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(dates, [("2026-03-20", "home")]);
}
db_test!(
    record_lines_are_judged_by_the_policy_of_their_day,
    lines_by_visit_date
);

/// What a home visit must carry is the evidence in force on its date, in its window too:
/// a window whose rule changed in its middle counts a visit its sheet line says counts,
/// and not one its line says does not (QA s28a F14: the window went by its first day's
/// rule, so a visit printed as counting left it unmet).
async fn windows_by_visit_evidence(t: &TestDb) {
    let mut town = town(t, PolicyPreset::Laizhou2018).await;
    // From 02-10 no photo is asked; from 04-10 two are.
    for (photos, (m, d)) in [(0, (2, 10)), (2, (4, 10))] {
        let mut p = PolicyPreset::Laizhou2018.policy();
        p.evidence.min_photos = photos;
        set_policy(t, &town, p, NaiveDate::from_ymd_opt(2026, m, d).unwrap()).await;
    }
    // 黄志强 visits 田晓东 on 02-20 with no photo and on 04-20 with one, a witness's mark
    // on each.
    let h1 = town.h[0];
    let a = &mut town.a.device;
    let recs = vec![
        a.sign(
            h1,
            RecordType::Visit,
            Some(visit(VisitKind::Home, noon(2, 20), &[], witness(21))),
            None,
            None,
        ),
        a.sign(
            h1,
            RecordType::Visit,
            Some(visit(
                VisitKind::Home,
                noon(4, 20),
                &[&town.p[0]],
                witness(22),
            )),
            None,
            None,
        ),
    ];
    push(&town.w, &town.a, &recs).await;
    let origin = format!("http://{}", town.w.server.addr);
    for file in [mark(21), mark(22), town.p[0].clone()] {
        assert_eq!(
            upload(&town.w.http, &origin, &town.a.token, &file).await,
            StatusCode::NO_CONTENT
        );
    }
    for (quarter, start, day, counts, met) in [
        ("2026Q1", "2026-01-01", "2026-02-20", true, true),
        ("2026Q2", "2026-03-01", "2026-04-20", false, false),
    ] {
        let sheet = sheet_in(&town, &town.s.token, quarter).await;
        let row = sheet.rows.iter().find(|r| r.household_id == h1).unwrap();
        let line = row
            .records
            .iter()
            .find(|r| r.kind == VisitKind::Home && r.date.to_string() == day)
            .unwrap();
        assert_eq!(
            line.reason.is_none(),
            counts,
            "{quarter}: {:?}",
            line.reason
        );
        let window = row
            .windows
            .iter()
            .find(|w| w.kind == VisitKind::Home && w.start.to_string() == start)
            .unwrap();
        assert_eq!(
            (window.count, window.met),
            (u32::from(counts), met),
            "{quarter}: {window:?}"
        );
    }
}
db_test!(
    a_window_counts_a_visit_by_the_evidence_of_its_day,
    windows_by_visit_evidence
);

/// A household added to the ledger after a quarter is not one of that quarter's
/// households: the quarter's town and county reports do not change when the ledger
/// grows, and do not list it as unvisited or rank its village.
async fn later_households(t: &TestDb) {
    let t = town(t, PolicyPreset::Laizhou2018).await;
    let before = town_report(&t).await;
    let county_before = county_report(&t).await;
    const NEW: &str = "4,马新户,东城镇新建村,因病,医疗救助,13800138000,林新来,市农业局 科员,13911112222,孔玉梅,村委会主任,18893287921";
    t.w.import_ok(
        &t.county,
        "?effective_from=2026-06-01&filed_on=2026-05-01&retroactive=true",
        ledger(&[ROWS[0], ROWS[1], D_ROW, NEW]),
    )
    .await;
    let after = town_report(&t).await;
    assert_eq!(rates(&after), rates(&before));
    assert!(
        after.no_home_visit.iter().all(|h| h.head_name != "马新户"),
        "{:?}",
        after.no_home_visit
    );
    assert_eq!(after.no_home_visit, before.no_home_visit);
    let county_after = county_report(&t).await;
    assert_eq!(county_after.total, county_before.total);
    assert_eq!(county_after.towns, county_before.towns);
}
db_test!(
    a_household_added_after_a_quarter_is_not_counted_in_its_reports,
    later_households
);

/// QA H1: H1 (田晓东) exits on Feb 20, inside the first helper's Jan–Feb home window and
/// the February windows. By default those are judged for no one (listed as cut by the
/// exit); a county whose policy sets `exit_cuts.min_days_held` judges a window the
/// pairing held from its first day for that many days before the exit. A change of
/// helper (H3 on Feb 15) is judged alike (QA s23b F4): the outgoing helper owes a window
/// held long enough, and the sheet names the windows left to no one (s23b F5).
async fn exit_cuts(t: &TestDb) {
    use bangfu_shared::PairingRole::{First, Second};
    use sea_orm::ConnectionTrait;
    let mut town = town(t, PolicyPreset::Laizhou2018).await;
    record_quarter(&mut town).await;
    let h1 = town.h[0];
    // Filed today (the earliest an exit may be dated), then set back to Feb 20 as if it
    // had been filed then.
    let (status, body) = town
        .w
        .post_json(
            Some(&town.county),
            &format!("/households/{h1}/exit"),
            &json!({ "effective_from": bangfu_tests::china_today(), "reason": "脱贫退出" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let exit_day = NaiveDate::from_ymd_opt(2026, 2, 20).unwrap();
    // Filed on Feb 1 (a cut window is owed only for an end filed in time), and H3's
    // change of helper recorded on Feb 1 too, before its Feb 15.
    let h3 = town.h[2];
    for sql in [
        format!(
            "UPDATE household_exits SET effective_from = '{exit_day}', \
             filed_at = '2026-02-01 02:00:00+00:00' WHERE household_id = {h1}"
        ),
        format!("UPDATE pairings SET valid_to = '{exit_day}' WHERE household_id = {h1}"),
        format!(
            "UPDATE pairings SET created_at = '2026-02-01 02:00:00+00:00' \
             WHERE household_id = {h3} AND valid_from = '2026-02-15'"
        ),
    ] {
        t.db.execute_unprepared(&sql).await.unwrap();
    }
    let (_, detail) = town
        .w
        .get(Some(&town.county), &format!("/households/{h1}"))
        .await;
    let pairings = detail["pairings"].as_array().unwrap();
    assert!(
        pairings.iter().all(|p| p["ended_by_exit"] == true),
        "the device learns the exit ended them: {detail}"
    );
    let (_, h2) = town
        .w
        .get(Some(&town.county), &format!("/households/{}", town.h[1]))
        .await;
    assert!(
        h2["pairings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["ended_by_exit"] == false),
        "{h2}"
    );

    type Window = (bangfu_shared::PairingRole, VisitKind, u32);
    let of = |r: &TownReport, name: &str| -> (Vec<Window>, Vec<Window>) {
        let month = |d: &NaiveDate| chrono::Datelike::month(d);
        let mut misses: Vec<Window> = r
            .misses
            .iter()
            .filter(|m| m.head_name == name)
            .map(|m| (m.role, m.kind, month(&m.start)))
            .collect();
        let mut unowned: Vec<Window> = r
            .unowned_windows
            .iter()
            .filter(|u| u.head_name == name)
            .map(|u| (u.role, u.kind, month(&u.start)))
            .collect();
        misses.sort();
        unowned.sort();
        (misses, unowned)
    };
    let h3_unowned = vec![(First, VisitKind::Home, 1), (First, VisitKind::Phone, 2)];

    // The default: the three windows the exit cut are no one's, marked with the exit.
    let r = town_report(&town).await;
    let cut = vec![
        (First, VisitKind::Home, 1),
        (First, VisitKind::Phone, 2),
        (Second, VisitKind::Home, 2),
    ];
    assert_eq!(of(&r, "田晓东"), (vec![], cut.clone()));
    assert!(
        r.unowned_windows
            .iter()
            .filter(|u| u.head_name == "田晓东")
            .all(|u| u.exit_on == Some(exit_day) && !u.helper_changed),
        "{:?}",
        r.unowned_windows
    );
    assert_eq!(of(&r, "叶秀兰").1, h3_unowned);
    assert!(!r.rule.contains("例外"), "{}", r.rule);

    // 25 days from January: the Jan–Feb home window (held 50 days) is 黄志强's, and
    // met by his Jan 10 visit; February (19 days) is still no one's.
    let set = |days: u32, from: NaiveDate| {
        let mut p = PolicyPreset::Laizhou2018.policy();
        p.exit_cuts.min_days_held = days;
        set_policy(t, &town, p, from)
    };
    set(25, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).await;
    let r = town_report(&town).await;
    assert_eq!(of(&r, "田晓东"), (vec![], cut[1..].to_vec()));
    let s = sheet(&town, &town.s.token).await;
    let row = s.rows.iter().find(|r| r.household_id == h1).unwrap();
    let home = row
        .windows
        .iter()
        .find(|w| w.kind == VisitKind::Home && w.required)
        .unwrap_or_else(|| panic!("{row:?}"));
    assert_eq!(
        (home.start, home.count, home.met),
        (NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), 1, true)
    );
    assert!(s.rule.contains("满25天"), "{}", s.rule);
    // The change on Feb 15 cut 曹秀兰's Jan–Feb home window after 45 days: hers, due by
    // Feb 14 and missed (her only contact was a call); February's call (14 days) is
    // no one's, and the sheet says so rather than dropping it.
    // (孔玉梅, the second helper, made no home visit to 叶秀兰 all quarter.)
    let h3_owed = vec![
        (First, VisitKind::Home, 1),
        (Second, VisitKind::Home, 1),
        (Second, VisitKind::Home, 2),
        (Second, VisitKind::Home, 3),
    ];
    assert_eq!(
        of(&r, "叶秀兰"),
        (h3_owed.clone(), h3_unowned[1..].to_vec())
    );
    let h3_row = s.rows.iter().find(|r| r.head_name == "叶秀兰").unwrap();
    let text = h3_row.record_text();
    assert!(
        text.contains("曹秀兰：01-01~02-14入户未到位（02-15起结对变动）")
            && text.contains("02-01~02-28电话不考核（期间结对变动）"),
        "{text}"
    );
    assert_eq!(
        text.matches("不考核").count(),
        1,
        "once, not per pairing: {text}"
    );
    // The town report's miss says the same: not that 叶秀兰 left the programme (QA s24b
    // F10).
    let miss = r
        .misses
        .iter()
        .find(|m| m.head_name == "叶秀兰" && m.role == First)
        .unwrap_or_else(|| panic!("{:?}", r.misses));
    assert_eq!(
        miss.period_zh(),
        "2026-01-01至2026-02-14（2026-02-15起结对变动）"
    );

    // 15 days from February: the February windows are owed too, and missed (黄志强's
    // Feb 5 call was voided; 孔玉梅 made no home visit in February).
    set(15, NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()).await;
    let r = town_report(&town).await;
    assert_eq!(
        of(&r, "田晓东"),
        (
            vec![(First, VisitKind::Phone, 2), (Second, VisitKind::Home, 2)],
            vec![]
        )
    );
    assert_eq!(
        of(&r, "叶秀兰"),
        (h3_owed, h3_unowned[1..].to_vec()),
        "a change of helper as an exit: Jan–Feb by the 25-day version, February's call \
         (14 days) by the 15-day one"
    );
    // January's windows were judged by the 25-day version, February's and March's by
    // the 15-day one: the rule names both.
    assert!(r.rule.contains("满15天或25天"), "{}", r.rule);
    let s = sheet(&town, &town.s.token).await;
    let row = s.rows.iter().find(|r| r.household_id == h1).unwrap();
    let text = row.record_text();
    assert!(
        text.contains("02-01~02-19电话未到位（02-20起退出帮扶）"),
        "{text}"
    );
    let c = county_report(&town).await;
    assert_eq!(c.rule, r.rule);
    // An exit filed on its own day left no day to visit knowing the windows were due
    // early: they are no one's again, whatever the rule (QA s24a F7).
    t.db.execute_unprepared(&format!(
        "UPDATE household_exits SET filed_at = '2026-02-20 02:00:00+00:00' WHERE household_id = {h1}"
    ))
    .await
    .unwrap();
    let late = town_report(&town).await;
    assert_eq!(of(&late, "田晓东"), (vec![], cut.clone()));
    // The device learns each version's rule with its first day, to judge each window by
    // the one in force when it began, as above (QA s24b F8).
    let (status, snap) = town.w.get(Some(&town.s.token), "/me/snapshot").await;
    assert_eq!(status, StatusCode::OK, "{snap}");
    let steps: Vec<(String, u64)> = snap["exit_cuts_history"]
        .as_array()
        .unwrap_or_else(|| panic!("{snap}"))
        .iter()
        .map(|s| {
            (
                s["from"].as_str().unwrap_or_default().to_string(),
                s["exit_cuts"]["min_days_held"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        steps[steps.len().saturating_sub(2)..],
        [
            ("2026-01-01".to_string(), 25),
            ("2026-02-01".to_string(), 15)
        ],
        "{snap}"
    );
}
db_test!(a_county_may_judge_the_windows_an_exit_cuts, exit_cuts);

/// After a change of second helper in the quarter, each first-helper window is on one
/// sheet: the one of the second helper who supervised the household on its last day
/// (QA s22c F1). The windows before the change are not signed for by the new helper,
/// nor those after it by the old one, and the two sheets hold every window once.
async fn second_helper_change(t: &TestDb) {
    let town = town(t, PolicyPreset::Laizhou2018).await;
    let w = &town.w;
    let moved = ROWS[0].replace(
        "孔玉梅,村委会主任,18893287921",
        "韩新乙,村委会委员,18900000002",
    );
    w.import_ok(
        &town.county,
        "?effective_from=2026-03-01&filed_on=2025-12-20&retroactive=true",
        ledger(&[&moved, ROWS[1], D_ROW]),
    )
    .await;
    let (_, detail) = w
        .get(Some(&town.county), &format!("/households/{}", town.h[0]))
        .await;
    let new_id = detail["pairings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["role"] == "second" && p["valid_from"] == "2026-03-01")
        .unwrap_or_else(|| panic!("{detail}"))["helper"]["id"]
        .as_i64()
        .unwrap();
    let row_of_h0 = |helper: i64| {
        let path = format!("/reports/attendance?second_helper={helper}&quarter=2026Q1");
        let token = town.county.clone();
        let h0 = town.h[0];
        async move {
            let (status, body) = w.get(Some(&token), &path).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let sheet: AttendanceSheet = serde_json::from_value(body).unwrap();
            sheet
                .rows
                .into_iter()
                .find(|r| r.household_id == h0)
                .unwrap()
        }
    };
    let (old, new) = (row_of_h0(town.s_id).await, row_of_h0(new_id).await);
    // Both name 黄志强, the first helper throughout.
    for r in [&old, &new] {
        assert_eq!(r.first_helper.as_ref().unwrap().name, "黄志强");
    }
    // A later change of first helper (03-15) shows on the new second helper's sheet;
    // the old one, who supervised until 03-01, still names the first helper he had
    // (QA s22e F6).
    let changed = moved.replace(
        "黄志强,市教育局 科员,15907579383",
        "刘新一,市教育局 科员,13900000031",
    );
    assert_ne!(changed, moved);
    w.import_ok(
        &town.county,
        "?effective_from=2026-03-15&filed_on=2025-12-20&retroactive=true",
        ledger(&[&changed, ROWS[1], D_ROW]),
    )
    .await;
    assert_eq!(
        row_of_h0(town.s_id).await.first_helper.unwrap().name,
        "黄志强"
    );
    assert_eq!(row_of_h0(new_id).await.first_helper.unwrap().name, "刘新一");
    let march = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let spans = |r: &bangfu_shared::report::SheetRow| -> Vec<(NaiveDate, NaiveDate, VisitKind)> {
        r.windows.iter().map(|w| (w.start, w.end, w.kind)).collect()
    };
    assert!(
        old.windows.iter().all(|w| w.end < march),
        "the old helper's sheet ends with their supervision: {:?}",
        spans(&old)
    );
    assert!(
        !new.windows.is_empty() && new.windows.iter().all(|w| w.end >= march),
        "the new helper's starts with theirs: {:?}",
        spans(&new)
    );
    // Together: Jan–Feb home, and the January, February and March calls, once each.
    let mut all = spans(&old);
    all.extend(spans(&new));
    all.sort();
    let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    assert_eq!(
        all,
        vec![
            (day(1, 1), day(1, 31), VisitKind::Phone),
            (day(1, 1), day(2, 28), VisitKind::Home),
            (day(2, 1), day(2, 28), VisitKind::Phone),
            (day(3, 1), day(3, 31), VisitKind::Phone),
        ]
    );
}
db_test!(
    a_change_of_second_helper_splits_the_windows_between_their_sheets,
    second_helper_change
);

/// A version taking effect inside a window that changes how often a home visit is asked
/// (every two months under laizhou-2018, every quarter under xigang-2019 from 1 February)
/// leaves no stretch without a home window: the new cadence's Jan–Mar window is judged,
/// by the version in force on its last day, beside the old cadence's Jan–Feb window
/// (judged by its first day's). By first days alone, neither the Jan–Mar window (begun
/// under laizhou) nor the Mar–Apr one (begun under xigang) was anyone's (QA s26a F1).
async fn cadence_change(t: &TestDb) {
    let town = town(t, PolicyPreset::Laizhou2018).await;
    let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    set_policy(t, &town, PolicyPreset::Xigang2019.policy(), day(2, 1)).await;
    let s = sheet(&town, &town.s.token).await;
    assert_eq!(
        s.policy_source, "laizhou-2018、xigang-2019",
        "both judged Q1"
    );
    for row in &s.rows {
        // (叶秀兰's windows are listed once for each of her two helpers.)
        let mut home: Vec<(NaiveDate, NaiveDate)> = row
            .windows
            .iter()
            .filter(|w| w.role == bangfu_shared::PairingRole::First && w.kind == VisitKind::Home)
            .map(|w| (w.start, w.end))
            .collect();
        home.dedup();
        assert_eq!(
            home,
            [(day(1, 1), day(2, 28)), (day(1, 1), day(3, 31))],
            "household {}",
            row.household_id
        );
    }
    // The second helper's monthly home visits end with laizhou: January's is asked,
    // February's (begun under xigang, which asks none) is not.
    let own: Vec<NaiveDate> = s.rows[0].own_windows.iter().map(|w| w.start).collect();
    assert_eq!(own, [day(1, 1)], "{:?}", s.rows[0].own_windows);
    // A device is sent the visits of each version, to judge past windows by them as
    // the sheet does (QA s26d F4).
    let (status, snap) = town.w.get(Some(&town.a.token), "/me/snapshot").await;
    assert_eq!(status, StatusCode::OK, "{snap}");
    let history: Vec<bangfu_shared::policy::VisitsSince> =
        serde_json::from_value(snap["visits_history"].clone()).unwrap();
    let steps: Vec<(NaiveDate, Vec<bangfu_shared::policy::VisitRequirement>)> = history
        .into_iter()
        .filter(|s| s.from >= day(1, 1))
        .map(|s| (s.from, s.visits))
        .collect();
    assert_eq!(
        steps,
        [(day(2, 1), PolicyPreset::Xigang2019.policy().visits)],
        "the step of 02-01 (and those before, from the policy's start)"
    );
}
db_test!(
    a_change_of_cadence_leaves_no_stretch_without_a_home_window,
    cadence_change
);

/// QA s29b J1: a county's first import, dated from the day its pairings really began
/// (a quarter ago) and filed today, does not charge its helpers with the windows that
/// ended before the filing, which no one could record: the import says so, the windows
/// are listed as no one's, and no helper or unit is up for sanctions.
async fn first_import_dated_back(t: &TestDb) {
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    let report = w
        .import_ok(&county, "?effective_from=2026-07-01", ledger(&ROWS))
        .await;
    let notices = report["notices"].to_string();
    assert!(
        notices.contains("首次结对的帮扶责任人不对其负责") && notices.contains("无人负责"),
        "{notices}"
    );
    let (status, body) = w.get(Some(&county), "/reports/county?quarter=2026Q3").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let q3: CountyReport = serde_json::from_value(body).unwrap();
    assert!(
        q3.escalations.is_empty() && q3.unit_escalations.is_empty(),
        "{q3:?}"
    );
    assert_eq!(q3.total.required_windows, 0, "{:?}", q3.total);
    let town = q3.towns[0].place_id;
    let (status, body) = w
        .get(
            Some(&county),
            &format!("/reports/town?town={town}&quarter=2026Q3"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let q3: TownReport = serde_json::from_value(body).unwrap();
    let today = bangfu_tests::china_today();
    assert!(!q3.unowned_windows.is_empty());
    assert!(
        q3.unowned_windows
            .iter()
            .all(|u| u.change_filed_on == Some(today)),
        "{:?}",
        q3.unowned_windows
    );
    // Said as a first pairing filed late, not a change of helper (QA s29c K11).
    let cause = q3.unowned_windows[0].cause_zh();
    assert_eq!(cause, format!("首次结对{today}才报备，晚于周期结束"));
    assert!(q3.misses.is_empty(), "{:?}", q3.misses);
}
db_test!(
    a_first_import_dated_back_charges_no_one_with_windows_ended_before_it,
    first_import_dated_back
);

/// QA s29b J19: a change of helper filed for tomorrow does not put tomorrow's helper on
/// today's sheet: the row names the helper in charge today.
async fn tomorrows_helper(t: &TestDb) {
    use chrono::Datelike;
    let w = World::new(t).await;
    office(t, &w, "county", Role::CountyOffice, w.county_id).await;
    let county = w.login("county").await;
    w.import_ok(&county, "", ledger(&ROWS)).await;
    let tomorrow = bangfu_tests::china_today().succ_opt().unwrap();
    let today = bangfu_tests::china_today();
    if tomorrow.month0() / 3 != today.month0() / 3 {
        return; // the change would fall in the next quarter's sheet
    }
    w.import_ok(
        &county,
        &format!("?effective_from={tomorrow}&reason=工作调动"),
        ledger(&[ROWS[0], ROWS[1], D_ROW]),
    )
    .await;
    let (_, page) = w.get(Some(&county), "/households?q=叶秀兰").await;
    let second = page["items"][0]["second_helper"]["id"].as_i64().unwrap();
    let quarter = format!("{}Q{}", today.year(), today.month0() / 3 + 1);
    let (status, body) = w
        .get(
            Some(&county),
            &format!("/reports/attendance?second_helper={second}&quarter={quarter}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sheet: AttendanceSheet = serde_json::from_value(body).unwrap();
    let row = sheet.rows.iter().find(|r| r.head_name == "叶秀兰").unwrap();
    assert_eq!(row.first_helper.as_ref().unwrap().name, "曹秀兰", "{row:?}");
}
db_test!(
    a_sheet_names_the_helper_in_charge_today_not_tomorrows,
    tomorrows_helper
);
