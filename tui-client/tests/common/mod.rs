//! Test fixtures: a real client over a temporary data directory, logged in through the
//! same `install_login` the network login ends with, and real image files.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bangfu_client::signing::DeviceKey;
use bangfu_client::store::Identity;
use bangfu_client::{Client, DataDir, Limits};
use bangfu_shared::api::{
    HelperRef, HouseholdDetail, HouseholdSummary, Me, Member, PairingDto, Place, Snapshot,
};
use bangfu_shared::{HouseholdStatus, JurisdictionLevel, PairingRole, PolicyPreset, Role};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

pub const HELPER_ID: i64 = 1001;
pub const DEVICE_ID: i64 = 42;

/// "Now" in the tests: 2026-03-15 10:00 in UTC+8.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 15, 2, 0, 0).unwrap()
}

pub fn runtime() -> Arc<tokio::runtime::Runtime> {
    Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    )
}

fn place(id: i64, level: JurisdictionLevel, name: &str) -> Place {
    Place {
        id,
        level,
        name: name.into(),
    }
}

fn helper(id: i64, name: &str) -> HelperRef {
    HelperRef {
        id,
        name: name.into(),
        unit_position: "县农业局 科员".into(),
        phone: "13800000000".into(),
    }
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// A synthetic household paired with our helper in `role` since 2025-01-01.
pub fn household(id: i64, head: &str, village: &str, role: PairingRole) -> HouseholdDetail {
    let me = helper(HELPER_ID, "刘帮扶");
    HouseholdDetail {
        summary: HouseholdSummary {
            id,
            head_name: head.into(),
            town: place(10, JurisdictionLevel::Town, "东山镇"),
            village: place(100 + id, JurisdictionLevel::Village, village),
            address: format!("{village}{id}号"),
            phone: "13900000000".into(),
            size: Some(3),
            status: HouseholdStatus::Identified,
            exit_on: None,
            cause: "因病".into(),
            measures: "产业扶持；医疗救助".into(),
            first_helper: (role == PairingRole::First).then(|| me.clone()),
            second_helper: (role == PairingRole::Second).then(|| me.clone()),
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
            helper: me,
            role,
            valid_from: d(2025, 1, 1),
            valid_to: None,
            filed_on: d(2024, 10, 1),
            reason: None,
            short_notice: false,
            ended_by_exit: false,
            end_known_on: None,
            start_known_on: None,
        }],
    }
}

pub fn snapshot(households: Vec<HouseholdDetail>) -> Snapshot {
    Snapshot {
        me: Me {
            account_id: 7,
            username: "13800000000".into(),
            role: Role::FirstHelper,
            scope: None,
            helper: Some(helper(HELPER_ID, "刘帮扶")),
        },
        households,
        policy: PolicyPreset::Laizhou2018.policy(),
        evidence_history: Vec::new(),
        exit_cuts_history: Vec::new(),
        visits_history: Vec::new(),
        server_time: now(),
    }
}

pub fn default_households() -> Vec<HouseholdDetail> {
    vec![
        household(1, "张三", "东村", PairingRole::First),
        household(2, "李四", "西村", PairingRole::First),
        household(3, "王五", "南村", PairingRole::Second),
    ]
}

/// Logs a data directory in without a server: writes the device key and saves the
/// identity and snapshot as `Client::login` would.
pub async fn login(dir: &Path, limits: Limits) -> Client {
    let data = DataDir::new(dir);
    let client = Client::open(data.clone(), limits).await.unwrap();
    let (key, _) = DeviceKey::load_or_create(&data.key_path()).unwrap();
    let identity = Identity {
        server: "http://127.0.0.1:9".into(),
        username: "13800000000".into(),
        account_id: 7,
        role: Role::FirstHelper,
        helper: Some(helper(HELPER_ID, "刘帮扶")),
        device_id: DEVICE_ID,
        public_key: key.public_key_base64(),
        token: "secret-token".into(),
        token_expires_at: now(),
        logged_in_at: now(),
    };
    client
        .install_login(&identity, &snapshot(default_households()))
        .await
        .unwrap();
    client
}

/// Writes a JPEG of `w × h` with a gradient (so it compresses like a photo, roughly).
pub fn write_jpeg(path: &Path, w: u32, h: u32) -> PathBuf {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 255 / w.max(1)) as u8,
            (y * 255 / h.max(1)) as u8,
            ((x ^ y) & 0xff) as u8,
        ])
    });
    img.save_with_format(path, image::ImageFormat::Jpeg)
        .unwrap();
    path.to_path_buf()
}

pub fn write_png(path: &Path, w: u32, h: u32) -> PathBuf {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    img.save_with_format(path, image::ImageFormat::Png).unwrap();
    path.to_path_buf()
}

/// Makes the logged-in account a second helper with a pulled sheet for 2026Q1: two
/// rows, one home visit on the first.
pub async fn become_second_helper_with_sheet(client: &Client) {
    use bangfu_shared::VisitKind;
    use bangfu_shared::report::{AttendanceSheet, RecordLine, SheetRow};
    let mut me = client.identity().await.unwrap();
    me.role = bangfu_shared::Role::SecondHelper;
    client
        .install_login(&me, &snapshot(default_households()))
        .await
        .unwrap();
    let sheet_helper = |id: i64, name: &str| HelperRef {
        id,
        name: name.into(),
        unit_position: "市教育局 科员".into(),
        phone: "13900000000".into(),
    };
    let row = |seq: u32, id: i64, head: &str, records: Vec<RecordLine>| SheetRow {
        seq,
        household_id: id,
        head_name: head.into(),
        village: "东村".into(),
        first_helper: Some(sheet_helper(50 + id, "黄志强")),
        records,
        windows: vec![],
        own_records: vec![],
        own_windows: vec![],
        remark: None,
        exit_on: None,
        exit_days: Vec::new(),
    };
    let visit = RecordLine {
        record_id: "r1".into(),
        household_id: 1,
        date: chrono::NaiveDate::from_ymd_opt(2026, 1, 10).unwrap(),
        kind: VisitKind::Home,
        helper_id: 51,
        counts: true,
        reason: None,
        photo_count: 1,
        late: false,
        flags: vec![],
    };
    // The second helper's own home visits to the first household: January met, February
    // missed (the 第二帮扶责任人走访 column).
    let own = |m: u32, met: bool| bangfu_shared::report::WindowResult {
        role: PairingRole::Second,
        kind: VisitKind::Home,
        start: NaiveDate::from_ymd_opt(2026, m, 1).unwrap(),
        end: bangfu_shared::policy::window_of(NaiveDate::from_ymd_opt(2026, m, 1).unwrap(), 1).1,
        count: u32::from(met),
        min_count: 1,
        required: true,
        met,
        open: false,
        helper: None,
        due_by: None,
        ended_by_change: false,
        change_filed_on: None,
        first_pairing: false,
    };
    let sheet = AttendanceSheet {
        quarter: "2026Q1".parse().unwrap(),
        second_helper: sheet_helper(HELPER_ID, "刘帮扶"),
        town: None,
        rows: vec![
            SheetRow {
                own_windows: vec![own(1, true), own(2, false)],
                ..row(6, 1, "张三", vec![visit])
            },
            row(7, 2, "李四", vec![]),
        ],
        policy_source: String::new(),
        rule: bangfu_shared::report::WINDOW_RULE_ZH.into(),
        submitted_version: None,
        submitted_at: None,
        submission_id: None,
        reviewed_rows_match: None,
        rows_frozen: None,
    };
    client.store().save_sheet(&sheet).await.unwrap();
}

/// The terminal app over a freshly logged-in store in a temporary directory (kept as
/// long as the fixture), its clock fixed at [`now`], sync failing at once.
#[cfg(feature = "tui")]
pub struct AppFixture {
    pub dir: tempfile::TempDir,
    pub app: bangfu_client::app::App,
}

#[cfg(feature = "tui")]
pub fn app_fixture(lang: bangfu_client::i18n::Lang) -> AppFixture {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let client = rt.block_on(login(&dir.path().join("data"), Limits::default()));
    let mut app = bangfu_client::app::App::new(
        client,
        rt,
        lang,
        bangfu_client::app::Clock::Fixed(now()),
        (80, 24),
    );
    app.last_dir = dir.path().to_path_buf();
    // The fixture's server does not exist: a sync fails at once instead of retrying.
    app.sync_options.retry = bangfu_client::sync::RetryPolicy::once();
    AppFixture { dir, app }
}
