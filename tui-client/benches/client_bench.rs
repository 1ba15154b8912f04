//! Client benchmark (prints figures; not a timed test). Run once in release:
//!
//! ```text
//! cargo bench -p bangfu-client --bench client_bench
//! ```
//!
//! 1. Start to first screen with 10,000 local records: open and check the store, load
//!    the households with last contacts and what is due, render the list at 80×24.
//! 2. Saving a home visit with two 4000×3000 photos: decode, downscale to 1600 px,
//!    re-encode, hash, store, sign, commit.
//!
//! Each measurement runs in a fresh child process so its peak memory (VmHWM from
//! /proc/self/status) is its own, not the fixture builder's.

#![allow(clippy::expect_used)] // a benchmark stops on a broken fixture

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use bangfu_client::app::{App, Clock};
use bangfu_client::i18n::Lang;
use bangfu_client::signing::DeviceKey;
use bangfu_client::store::Identity;
use bangfu_client::{Client, DataDir, Limits, ui};
use bangfu_shared::VisitKind;
use bangfu_shared::visit::{
    FORMAT_VERSION, HouseholdSignature, RecordEnvelope, RecordType, VisitBody, ZERO_HASH,
};
use bangfu_shared::{PairingRole, Role};
use chrono::Duration;
use common::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const RECORDS: usize = 10_000;
const HOUSEHOLDS: i64 = 50;

fn peak_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    match std::env::var("BANGFU_BENCH_PHASE").ok().as_deref() {
        Some("start") => phase_start(Path::new(
            &std::env::var("BANGFU_BENCH_DIR").unwrap_or_default(),
        )),
        Some("save") => phase_save(Path::new(
            &std::env::var("BANGFU_BENCH_DIR").unwrap_or_default(),
        )),
        _ => parent(),
    }
}

fn parent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let t = Instant::now();
    build_fixture(dir.path());
    println!(
        "fixture: {RECORDS} signed records over {HOUSEHOLDS} households built in {:.2?}",
        t.elapsed()
    );
    let t = Instant::now();
    write_jpeg(&dir.path().join("p1.jpg"), 4000, 3000);
    write_jpeg(&dir.path().join("p2.jpg"), 4000, 3000);
    let sizes: Vec<u64> = ["p1.jpg", "p2.jpg"]
        .iter()
        .map(|p| {
            std::fs::metadata(dir.path().join(p))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .collect();
    println!(
        "fixture: two 4000×3000 JPEGs ({} and {} KB) written in {:.2?}",
        sizes[0] / 1024,
        sizes[1] / 1024,
        t.elapsed()
    );
    let exe = std::env::current_exe().expect("current exe");
    for phase in ["start", "start", "start", "save", "save", "save"] {
        let out = Command::new(&exe)
            .env("BANGFU_BENCH_PHASE", phase)
            .env("BANGFU_BENCH_DIR", dir.path())
            .output()
            .expect("child");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
            std::process::exit(1);
        }
    }
}

fn build_fixture(dir: &Path) {
    let rt = runtime();
    rt.block_on(async {
        let data = DataDir::new(dir.join("data"));
        let client = Client::open(data.clone(), Limits::default())
            .await
            .expect("open");
        let (key, _) = DeviceKey::load_or_create(&data.key_path()).expect("key");
        let households = (1..=HOUSEHOLDS)
            .map(|id| {
                household(
                    id,
                    &format!("户主{id:03}"),
                    &format!("村{:02}", id % 12),
                    if id % 10 == 0 {
                        PairingRole::Second
                    } else {
                        PairingRole::First
                    },
                )
            })
            .collect();
        let identity = Identity {
            server: "http://127.0.0.1:9".into(),
            username: "13800000000".into(),
            account_id: 7,
            role: Role::FirstHelper,
            helper: Some(bangfu_shared::api::HelperRef {
                id: HELPER_ID,
                name: "刘帮扶".into(),
                unit_position: "县农业局".into(),
                phone: "13800000000".into(),
            }),
            device_id: DEVICE_ID,
            public_key: key.public_key_base64(),
            token: "t".into(),
            token_expires_at: now(),
            logged_in_at: now(),
        };
        client
            .install_login(&identity, &snapshot(households))
            .await
            .expect("login");
        let mut prev = ZERO_HASH.to_string();
        let mut batch = Vec::with_capacity(RECORDS);
        for i in 0..RECORDS {
            let at = now() - Duration::hours((RECORDS - i) as i64 * 3);
            let home = i % 3 == 0;
            let mut body = VisitBody::new(
                if home {
                    VisitKind::Home
                } else {
                    VisitKind::Phone
                },
                at,
            );
            body.problems = vec![format!("问题 {i}")];
            body.help = vec!["协助办理医保".into()];
            if home {
                body.household_signature = Some(HouseholdSignature::Witness {
                    name: "村医".into(),
                    role: "村公证人".into(),
                    reason: "户主外出".into(),
                    image_sha256: None,
                });
            }
            let env = RecordEnvelope {
                v: FORMAT_VERSION,
                id: uuid::Uuid::now_v7(),
                record_type: RecordType::Visit,
                device_id: DEVICE_ID,
                seq: i as i64 + 1,
                prev_sha256: prev.clone(),
                author_helper_id: HELPER_ID,
                household_id: (i as i64 % HOUSEHOLDS) + 1,
                created_at: at,
                visit: Some(body),
                target_id: None,
                reason: None,
            };
            prev = env.record_sha256().expect("hash");
            batch.push(key.sign(env).expect("sign"));
        }
        client.store().import_records(&batch).await.expect("import");
        client.store().clone().close().await.expect("close");
    });
}

fn phase_start(dir: &Path) {
    let t = Instant::now();
    let rt = std::sync::Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
    );
    let client = rt
        .block_on(Client::open(
            DataDir::new(dir.join("data")),
            Limits::default(),
        ))
        .expect("open");
    let app = App::new(client, rt.clone(), Lang::Zh, Clock::Fixed(now()), (80, 24));
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    terminal.draw(|f| ui::render(&app, f)).expect("draw");
    let elapsed = t.elapsed();
    let records = rt
        .block_on(app.client().store().record_count())
        .unwrap_or(0);
    assert!(ui::buffer_text(terminal.backend().buffer()).contains("户主001"));
    println!(
        "start → first screen ({records} records, {} households): {:>8.1} ms   peak RSS {:>6} KB",
        app.households.len(),
        elapsed.as_secs_f64() * 1000.0,
        peak_kb()
    );
}

fn phase_save(dir: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = Client::open(DataDir::new(dir.join("data")), Limits::default()).await.expect("open");
        let t = Instant::now();
        let p1 = client.attach_photo(&dir.join("p1.jpg")).await.expect("photo 1");
        let t1 = t.elapsed();
        let p2 = client.attach_photo(&dir.join("p2.jpg")).await.expect("photo 2");
        let t2 = t.elapsed();
        let mut body = VisitBody::new(VisitKind::Home, now());
        body.photos = vec![p1.clone(), p2];
        body.household_signature = Some(HouseholdSignature::Witness { name: "村医".into(), role: "村公证人".into(), reason: "户主外出".into(), image_sha256: None });
        client.record_visit(1, body, None, None, now()).await.expect("record");
        let total = t.elapsed();
        println!(
            "save visit + 2×4000×3000 photos: {:>8.1} ms (photo 1 {:.1} ms, photo 2 {:.1} ms, sign+commit {:.1} ms; stored {}×{} {} KB)   peak RSS {:>6} KB",
            total.as_secs_f64() * 1000.0,
            t1.as_secs_f64() * 1000.0,
            (t2 - t1).as_secs_f64() * 1000.0,
            (total - t2).as_secs_f64() * 1000.0,
            p1.width,
            p1.height,
            p1.bytes / 1024,
            peak_kb()
        );
    });
}
