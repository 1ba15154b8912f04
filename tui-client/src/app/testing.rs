//! Fixtures for the interface's unit tests: an [`App`] over a real store in a temporary
//! directory, logged in as `Client::login` would leave it (no server), its clock fixed.
//! The same shape as the crate's `tests/common`, kept small.

use std::sync::Arc;

use bangfu_shared::api::{
    HelperRef, HouseholdDetail, HouseholdSummary, Me, Member, PairingDto, Place, Snapshot,
};
use bangfu_shared::{HouseholdStatus, JurisdictionLevel, PairingRole, PolicyPreset, Role};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use super::{Action, App, Clock};
use crate::i18n::Lang;
use crate::signing::DeviceKey;
use crate::store::Identity;
use crate::{Client, DataDir, Limits};

pub const HELPER_ID: i64 = 1001;

/// "Now": 2026-03-15 10:00 in UTC+8.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 15, 2, 0, 0)
        .single()
        .expect("a valid time")
}

fn helper() -> HelperRef {
    HelperRef {
        id: HELPER_ID,
        name: "刘帮扶".into(),
        unit_position: "县农业局 科员".into(),
        phone: "13800000000".into(),
    }
}

fn place(id: i64, level: JurisdictionLevel, name: &str) -> Place {
    Place {
        id,
        level,
        name: name.into(),
    }
}

/// A household paired with the helper as first helper since 2025-01-01.
pub fn household(id: i64, head: &str, village: &str) -> HouseholdDetail {
    HouseholdDetail {
        summary: HouseholdSummary {
            id,
            head_name: head.into(),
            town: place(10, JurisdictionLevel::Town, "东山镇"),
            village: place(100 + id, JurisdictionLevel::Village, village),
            address: format!("{village}{id}号院，村委会向东第三户，门前有一棵老槐树"),
            phone: "13900000000".into(),
            size: Some(2),
            status: HouseholdStatus::Identified,
            exit_on: None,
            cause: "因病；缺劳动力；子女上学负担重；住房年久失修".into(),
            measures: "产业扶持；医疗救助；教育资助；危房改造；公益岗位".into(),
            first_helper: Some(helper()),
            second_helper: None,
        },
        members: vec![
            Member {
                name: head.into(),
                relation: "户主".into(),
                birth_year: Some(1960),
            },
            Member {
                name: format!("{head}之妻"),
                relation: "配偶".into(),
                birth_year: Some(1962),
            },
        ],
        pairings: vec![PairingDto {
            id: id * 10,
            household_id: id,
            helper: helper(),
            role: PairingRole::First,
            valid_from: NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date"),
            valid_to: None,
            filed_on: NaiveDate::from_ymd_opt(2024, 10, 1).expect("a date"),
            reason: None,
            short_notice: false,
            ended_by_exit: false,
            end_known_on: None,
            start_known_on: None,
        }],
    }
}

fn snapshot(role: Role) -> Snapshot {
    Snapshot {
        me: Me {
            account_id: 7,
            username: "13800000000".into(),
            role,
            scope: None,
            helper: Some(helper()),
        },
        households: vec![household(1, "张三", "东村"), household(2, "李四", "西村")],
        policy: PolicyPreset::Laizhou2018.policy(),
        evidence_history: Vec::new(),
        exit_cuts_history: Vec::new(),
        visits_history: Vec::new(),
        server_time: now(),
    }
}

/// The app and the temporary directory it lives in (removed on drop).
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub app: App,
}

/// A freshly logged-in first helper's app at 80×24.
pub fn fixture(lang: Lang) -> Fixture {
    fixture_as(lang, Role::FirstHelper)
}

/// A freshly logged-in app of an account with `role`, at 80×24.
pub fn fixture_as(lang: Lang, role: Role) -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let rt = Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime"),
    );
    let data = DataDir::new(dir.path().join("data"));
    let client = rt.block_on(async {
        let client = Client::open(data.clone(), Limits::default())
            .await
            .expect("the store opens");
        let (key, _) = DeviceKey::load_or_create(&data.key_path()).expect("a device key");
        let identity = Identity {
            server: "http://127.0.0.1:9".into(),
            username: "13800000000".into(),
            account_id: 7,
            role,
            helper: Some(helper()),
            device_id: 42,
            public_key: key.public_key_base64(),
            token: "secret-token".into(),
            token_expires_at: now(),
            logged_in_at: now(),
        };
        client
            .install_login(&identity, &snapshot(role))
            .await
            .expect("the login is saved");
        client
    });
    let mut app = App::new(client, rt, lang, Clock::Fixed(now()), (80, 24));
    app.last_dir = dir.path().to_path_buf();
    app.sync_options.retry = crate::sync::RetryPolicy::once();
    Fixture { dir, app }
}

/// Types `text` as key presses.
pub fn keys(app: &mut App, text: &str) {
    for c in text.chars() {
        app.update(Action::Char(c));
    }
}

/// The app rendered at `width × height`, as text.
pub fn screen(app: &App, width: u16, height: u16) -> String {
    crate::ui::screen_text(app, width, height)
}

/// Stores a pulled attendance sheet of `quarter` (`2026Q1`) with one row, as a second
/// helper's sync would.
pub fn save_sheet(app: &App, quarter: &str) {
    use bangfu_shared::report::{AttendanceSheet, SheetRow};
    let sheet = AttendanceSheet {
        quarter: quarter.parse().expect("a quarter"),
        second_helper: helper(),
        town: None,
        rows: vec![SheetRow {
            seq: 1,
            household_id: 1,
            head_name: "张三".into(),
            village: "东村".into(),
            first_helper: None,
            records: vec![],
            windows: vec![],
            own_records: vec![],
            own_windows: vec![],
            remark: None,
            exit_on: None,
            exit_days: Vec::new(),
        }],
        policy_source: String::new(),
        rule: String::new(),
        submitted_version: None,
        submitted_at: None,
        submission_id: None,
        reviewed_rows_match: None,
        rows_frozen: None,
    };
    app.runtime()
        .block_on(app.client().store().save_sheet(&sheet))
        .expect("the sheet is stored");
}

/// Signs a phone call to household 1 at [`now`]; its visit id.
pub fn phone_call(app: &App) -> uuid::Uuid {
    let mut body = bangfu_shared::visit::VisitBody::new(bangfu_shared::VisitKind::Phone, now());
    body.problems = vec!["屋顶漏雨".into()];
    app.runtime()
        .block_on(app.client().record_visit(1, body, None, None, now()))
        .expect("the call is signed")
        .record
        .id
}
