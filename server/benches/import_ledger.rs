//! Ledger import benchmark: a generated 100,000-household ledger (CSV and XLSX) imported
//! into a fresh SQLite file (and PostgreSQL when BENCH_DATABASE_URL is set), then
//! re-imported (a no-op). Prints households/s and the process's peak memory.
//!
//! `cargo bench -p bangfu-server --bench import_ledger` (optionally `-- 20000` for size).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark: a panic is the failure report"
)]

use bangfu_server::demo::town_ledger;
use bangfu_server::ledger::{self, ExportFormat, ImportOptions};
use bangfu_server::services::{Caller, jurisdictions, policy};
use bangfu_shared::{JurisdictionLevel, PolicyPreset};
use chrono::NaiveDate;
use std::time::Instant;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

async fn run(label: &str, url: &str, bytes: &[u8], households: usize) {
    let db = bangfu_server::db::connect_and_migrate(url)
        .await
        .expect("database");
    let (county, _) = jurisdictions::ensure(&db, JurisdictionLevel::County, "基准县", None)
        .await
        .unwrap();
    let from = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    policy::set(
        &db,
        &Caller::system(),
        county,
        None,
        from,
        &PolicyPreset::Laizhou2018.policy(),
    )
    .await
    .unwrap();
    let opts = ImportOptions {
        dry_run: false,
        county_id: Some(county),
        effective_from: from,
        filed_on: from,
        reason: None,
        retroactive: false,
    };

    let parse_start = Instant::now();
    let parsed = ledger::read::parse(bytes, &[]).expect("valid ledger");
    let parse_s = parse_start.elapsed().as_secs_f64();
    drop(parsed);

    let start = Instant::now();
    let report = ledger::import(&db, &Caller::system(), bytes, &opts)
        .await
        .expect("import");
    let first_s = start.elapsed().as_secs_f64();
    assert_eq!(report.households_created, households);

    let start = Instant::now();
    let again = ledger::import(&db, &Caller::system(), bytes, &opts)
        .await
        .expect("re-import");
    let again_s = start.elapsed().as_secs_f64();
    assert!(again.is_noop());
    println!(
        "{label:<16} file {:>6.1} MiB | parse+validate {:>6.2} s ({:>8.0} rows/s) | import {:>6.2} s ({:>7.0} households/s) | re-import (no-op) {:>6.2} s ({:>7.0}/s) | peak RSS so far {:>6.0} MiB",
        bytes.len() as f64 / 1048576.0,
        parse_s,
        households as f64 / parse_s,
        first_s,
        households as f64 / first_s,
        again_s,
        households as f64 / again_s,
        peak_rss_mib()
    );
    db.close().await.ok();
}

fn main() {
    if std::env::var("BANGFU_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("BANGFU_LOG"))
            .try_init();
    }
    let households: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = town_ledger(0, households, 42);
    let csv = ledger::export::write(&rows, ExportFormat::Csv).unwrap();
    let xlsx = ledger::export::write(&rows, ExportFormat::Xlsx).unwrap();
    drop(rows);
    println!(
        "ledger import benchmark: {households} households, baseline peak RSS {:.0} MiB",
        peak_rss_mib()
    );
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("csv", &csv), ("xlsx", &xlsx)] {
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join(format!("{name}.db")).display()
        );
        rt.block_on(run(&format!("sqlite/{name}"), &url, bytes, households));
    }
    if let Ok(base) = std::env::var("BENCH_DATABASE_URL") {
        rt.block_on(run("postgres/csv", &base, &csv, households));
    }
}
