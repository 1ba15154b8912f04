//! Report benchmark (issue 5): a synthetic county of 10,000 households (20 towns) with a
//! year of visits (~26 per household: ~260,000 visit facts) on SQLite; then, when
//! BENCH_DATABASE_URL points at PostgreSQL, a province-sized quarter (default 500,000
//! households, ~3.3 million facts). Prints the time for one second helper's sheet, one
//! town report and the county report, and the process's peak memory.
//!
//! `cargo bench -p bangfu-server --bench reports [-- HOUSEHOLDS [PROVINCE_HOUSEHOLDS]]`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark: a panic is the failure report"
)]

use bangfu_server::entities::{pairing, visit_fact};
use bangfu_server::ledger::{self, ExportFormat, ImportOptions};
use bangfu_server::services::{Caller, jurisdictions, policy, reports};
use bangfu_shared::ledger::{HelperEntry, LedgerRow};
use bangfu_shared::report::Quarter;
use bangfu_shared::{JurisdictionLevel, PolicyPreset};
use chrono::{Datelike, NaiveDate, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
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

/// Towns of 500 households, 10 villages each, a second helper per 5 households.
fn county_rows(households: usize, town_offset: usize) -> Vec<Vec<LedgerRow>> {
    let per_town = 500;
    (0..households.div_ceil(per_town))
        .map(|t| {
            let town = format!("基准{}镇", t + town_offset);
            (0..per_town.min(households - t * per_town))
                .map(|i| {
                    let g = (t + town_offset) * per_town + i;
                    let helper = |prefix: u64, n: usize, name: &str, unit: &str| HelperEntry {
                        name: name.to_string(),
                        unit_position: unit.to_string(),
                        phone: format!("1{prefix}{n:09}"),
                    };
                    LedgerRow {
                        line: i + 2,
                        seq: (i + 1) as u32,
                        head_name: format!("户主{g}"),
                        town: town.clone(),
                        village: format!("{}村", i % 10 + 1),
                        cause: "因病".into(),
                        measures: "医疗救助".into(),
                        phone: format!("17{g:09}"),
                        first: helper(
                            9,
                            g,
                            &format!("帮扶人{g}"),
                            &format!("市第{}局 科员", g % 37),
                        ),
                        second: helper(8, g / 5, &format!("村干部{}", g / 5), "村委会主任"),
                    }
                })
                .collect()
        })
        .collect()
}

/// Deterministic pseudo-random numbers.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// A year (or the months given) of visit facts for every pairing: monthly calls and
/// 2-monthly home visits by first helpers, monthly home visits by second helpers, with misses.
async fn facts(
    db: &DatabaseConnection,
    county: i64,
    months: std::ops::RangeInclusive<u32>,
    year: i32,
) -> usize {
    let homes: Vec<i64> = bangfu_server::entities::household::Entity::find()
        .filter(bangfu_server::entities::household::Column::CountyId.eq(county))
        .all(db)
        .await
        .unwrap()
        .iter()
        .map(|h| h.id)
        .collect();
    let mut pairs = Vec::new();
    for chunk in homes.chunks(1000) {
        pairs.extend(
            pairing::Entity::find()
                .filter(pairing::Column::HouseholdId.is_in(chunk.to_vec()))
                .all(db)
                .await
                .unwrap(),
        );
    }
    let mut rng = Lcg(7);
    let now = Utc::now();
    let mut batch = Vec::new();
    let mut total = 0;
    for p in &pairs {
        for m in months.clone() {
            let mut plan = Vec::new();
            if p.role == "first" {
                plan.push(("phone", 90));
                if m % 2 == 0 {
                    plan.push(("home", 90));
                }
            } else {
                plan.push(("home", 85));
            }
            for (kind, pct) in plan {
                if rng.next(100) >= pct {
                    continue;
                }
                let date = NaiveDate::from_ymd_opt(year, m, 1 + rng.next(28) as u32).unwrap();
                let id = uuid::Uuid::now_v7().to_string();
                batch.push(visit_fact::ActiveModel {
                    record_id: Set(id.clone()),
                    original_id: Set(id),
                    household_id: Set(p.household_id),
                    helper_id: Set(p.helper_id),
                    kind: Set(kind.into()),
                    visit_date: Set(date),
                    year: Set(date.year()),
                    month: Set(date.month() as i32),
                    photo_count: Set(i32::from(kind == "home")),
                    photos_complete: Set(true),
                    household_signed: Set(true),
                    witness_ok: Set(true),
                    clock_flag: Set(rng.next(200) == 0),
                    photo_reused: Set(false),
                    voided: Set(rng.next(150) == 0),
                    superseded: Set(false),
                    received_at: Set(now),
                });
                if batch.len() == 1000 {
                    total += batch.len();
                    visit_fact::Entity::insert_many(std::mem::take(&mut batch))
                        .exec_without_returning(db)
                        .await
                        .unwrap();
                }
            }
        }
    }
    total += batch.len();
    if !batch.is_empty() {
        visit_fact::Entity::insert_many(batch)
            .exec_without_returning(db)
            .await
            .unwrap();
    }
    total
}

async fn setup(
    url: &str,
    households: usize,
    months: std::ops::RangeInclusive<u32>,
) -> (DatabaseConnection, i64, usize) {
    let db = bangfu_server::db::connect_and_migrate(url)
        .await
        .expect("database");
    let (county, _) = jurisdictions::ensure(&db, JurisdictionLevel::County, "基准县", None)
        .await
        .unwrap();
    let from = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
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
    let start = Instant::now();
    for town in county_rows(households, 0) {
        let bytes = ledger::export::write(&town, ExportFormat::Csv).unwrap();
        let opts = ImportOptions {
            dry_run: false,
            county_id: Some(county),
            effective_from: from,
            filed_on: from,
            reason: None,
        };
        ledger::import(&db, &Caller::system(), &bytes, &opts)
            .await
            .unwrap();
    }
    let import_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let n = facts(&db, county, months, 2026).await;
    println!(
        "  setup: {households} households imported in {import_s:.1} s; {n} visit facts generated in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    (db, county, n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn measure(label: &str, db: &DatabaseConnection, county: i64, q: Quarter) {
    let admin = Caller::system();
    let towns = jurisdictions::children(db, county).await.unwrap();
    let town = towns[towns.len() / 2].id;
    let second: i64 = pairing::Entity::find()
        .filter(pairing::Column::Role.eq("second"))
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .helper_id;
    let mut t_sheet = Vec::new();
    let mut t_town = Vec::new();
    let mut t_county = Vec::new();
    for _ in 0..3 {
        let s = Instant::now();
        let sheet = reports::sheet(db, &admin, second, q).await.unwrap();
        t_sheet.push(s.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(sheet.rows.len(), 5);
        let s = Instant::now();
        reports::town_report(db, &admin, Some(town), q)
            .await
            .unwrap();
        t_town.push(s.elapsed().as_secs_f64() * 1000.0);
        let s = Instant::now();
        let c = reports::county_report(db, &admin, Some(county), q)
            .await
            .unwrap();
        t_county.push(s.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(c.towns.len(), towns.len());
    }
    println!(
        "{label:<28} sheet {:>8.1} ms | town report {:>8.1} ms | county report {:>9.1} ms (median of 3) | peak RSS so far {:>6.0} MiB",
        median(t_sheet),
        median(t_town),
        median(t_county),
        peak_rss_mib()
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let county = args.first().copied().unwrap_or(10_000);
    let province = args.get(1).copied().unwrap_or(500_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let q: Quarter = "2026Q3".parse().unwrap();
    println!(
        "report benchmark: county of {county} households with a year of visits (SQLite), quarter {q}"
    );
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("reports.db").display()
    );
    rt.block_on(async {
        let (db, id, _) = setup(&url, county, 1..=12).await;
        measure("sqlite county", &db, id, q).await;
    });
    if let Ok(pg) = std::env::var("BENCH_DATABASE_URL") {
        println!(
            "province-sized quarter: {province} households, one quarter of visits (PostgreSQL)"
        );
        rt.block_on(async {
            let (db, id, _) = setup(&pg, province, 7..=9).await;
            measure("postgres province", &db, id, q).await;
        });
    }
}
