//! Report benchmark (issue 5): a synthetic county of 10,000 households (20 towns) with a
//! year of visits (~26 per household: ~260,000 visit facts) on SQLite; then, when
//! BENCH_DATABASE_URL points at PostgreSQL, a province-sized quarter (default 500,000
//! households in 1,000 towns, ~4 million facts). Prints the setup rates, the time for one
//! second helper's sheet, one town report and the county report, and the peak memory
//! (VmHWM) while the reports ran. Times are medians of 3 runs (`BENCH_RUNS=N` for more),
//! wall clock and the process's CPU time.
//!
//! `cargo bench -p bangfu-server --bench reports [-- HOUSEHOLDS [PROVINCE_HOUSEHOLDS]]`
//!
//! The province goes into a fresh schema that is dropped at the end; set `BENCH_SCHEMA`
//! to keep it, and to reuse it (no import, no fact generation) when it already holds one.
//! Likewise `BENCH_SQLITE=FILE` keeps the county's SQLite database in FILE and reuses it
//! when it exists, and `BENCH_REPORTS_OUT=DIR` writes the JSON of the sheet, town and
//! county reports measured there, so a change can be checked to leave them byte for byte
//! the same (record ids are random: compare reports of the same kept database).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark: a panic is the failure report"
)]

use bangfu_server::entities::{household, pairing, visit_fact};
use bangfu_server::ledger::{self, ExportFormat, ImportOptions};
use bangfu_server::services::{Caller, jurisdictions, policy, reports};
use bangfu_shared::ledger::{HelperEntry, LedgerRow};
use bangfu_shared::report::Quarter;
use bangfu_shared::{JurisdictionLevel, PolicyPreset};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use std::time::Instant;

/// Households per town.
const PER_TOWN: usize = 500;
/// Columns of `visit_facts`: a multi-row insert binds this many values per row.
const FACT_COLUMNS: usize = 17;

fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// CPU time of every thread of the process so far, in ms (the sum of each task's
/// `schedstat` run time). The machine may be shared: wall time then includes waiting for
/// a core, CPU time hardly does, so the benchmark prints both.
fn cpu_ms() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    let ns: u64 = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e6
}

/// Runs `f`, pushing its wall and CPU time (ms) to `times`.
async fn timed<T>(times: &mut Times, f: impl std::future::Future<Output = T>) -> T {
    let (wall, cpu) = (Instant::now(), cpu_ms());
    let out = f.await;
    times.wall.push(wall.elapsed().as_secs_f64() * 1000.0);
    times.cpu.push(cpu_ms() - cpu);
    out
}

/// Wall and CPU times of repeated runs, in ms.
#[derive(Default)]
struct Times {
    wall: Vec<f64>,
    cpu: Vec<f64>,
}

impl std::fmt::Display for Times {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (wall, cpu) = (median(self.wall.clone()), median(self.cpu.clone()));
        write!(f, "{wall:>7.1} ms (cpu {cpu:>6.1})")
    }
}

/// Peak resident memory since the last reset (VmHWM).
fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// Resets VmHWM to the current RSS (Linux: `5` to clear_refs), so the next peak is the
/// reports', not the setup's; false where the kernel does not allow it.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Town `t` (counting from `town_offset`): 10 villages, a second helper per 5 households.
fn town_rows(t: usize, households: usize, town_offset: usize) -> Vec<LedgerRow> {
    let town = format!("基准{}镇", t + town_offset);
    (0..PER_TOWN.min(households - t * PER_TOWN))
        .map(|i| {
            let g = (t + town_offset) * PER_TOWN + i;
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

/// The visit facts of one pairing over `months`: monthly calls and 2-monthly home visits
/// by first helpers, monthly home visits by second helpers, with misses, voids and clock
/// flags.
fn pairing_facts(
    p: &(i64, i64, String),
    months: std::ops::RangeInclusive<u32>,
    year: i32,
    rng: &mut Lcg,
    now: DateTime<Utc>,
    out: &mut Vec<visit_fact::ActiveModel>,
) {
    let (household_id, helper_id, role) = p;
    for m in months {
        let mut plan = Vec::new();
        if role == "first" {
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
            out.push(visit_fact::ActiveModel {
                record_id: Set(id.clone()),
                original_id: Set(id),
                household_id: Set(*household_id),
                helper_id: Set(*helper_id),
                kind: Set(kind.into()),
                visit_date: Set(date),
                year: Set(i64::from(date.year())),
                month: Set(i64::from(date.month())),
                photo_count: Set(i64::from(kind == "home")),
                photos_complete: Set(true),
                household_signed: Set(true),
                witness_ok: Set(true),
                clock_flag: Set(rng.next(200) == 0),
                photo_reused: Set(false),
                voided: Set(rng.next(150) == 0),
                superseded: Set(false),
                received_at: Set(now),
            });
        }
    }
}

/// Visit facts for every pairing of the county, written in one transaction with
/// multi-row inserts as large as the backend's bind limit allows. Pairings are read a
/// page at a time so the generator's memory stays flat.
async fn facts(
    db: &DatabaseConnection,
    county: i64,
    months: std::ops::RangeInclusive<u32>,
    year: i32,
) -> usize {
    let limit = if bangfu_server::db::is_postgres(db) {
        65_535
    } else {
        32_766
    };
    let per_insert = limit / FACT_COLUMNS;
    let homes = Query::select()
        .column(household::Column::Id)
        .from(household::Entity)
        .and_where(household::Column::CountyId.eq(county))
        .to_owned();
    let txn = db.begin().await.unwrap();
    let mut rng = Lcg(7);
    let now = Utc::now();
    let mut batch = Vec::with_capacity(per_insert);
    let (mut total, mut after) = (0, 0);
    loop {
        let page: Vec<(i64, i64, i64, String)> = pairing::Entity::find()
            .select_only()
            .columns([
                pairing::Column::Id,
                pairing::Column::HouseholdId,
                pairing::Column::HelperId,
                pairing::Column::Role,
            ])
            .filter(pairing::Column::HouseholdId.in_subquery(homes.clone()))
            .filter(pairing::Column::Id.gt(after))
            .order_by_asc(pairing::Column::Id)
            .limit(50_000)
            .into_tuple()
            .all(&txn)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.0;
        for (_, household_id, helper_id, role) in page {
            let p = (household_id, helper_id, role);
            pairing_facts(&p, months.clone(), year, &mut rng, now, &mut batch);
            while batch.len() >= per_insert {
                let rest = batch.split_off(per_insert);
                total += batch.len();
                visit_fact::Entity::insert_many(std::mem::replace(&mut batch, rest))
                    .exec_without_returning(&txn)
                    .await
                    .unwrap();
            }
        }
    }
    total += batch.len();
    if !batch.is_empty() {
        visit_fact::Entity::insert_many(batch)
            .exec_without_returning(&txn)
            .await
            .unwrap();
    }
    txn.commit().await.unwrap();
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
    let existing = household::Entity::find()
        .filter(household::Column::CountyId.eq(county))
        .count(&db)
        .await
        .unwrap();
    if existing > 0 {
        let n = visit_fact::Entity::find().count(&db).await.unwrap() as usize;
        println!("  reusing {existing} households and {n} visit facts");
        return (db, county, n);
    }
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
    let postgres = bangfu_server::db::is_postgres(&db);
    let start = Instant::now();
    for t in 0..households.div_ceil(PER_TOWN) {
        let bytes = ledger::export::write(&town_rows(t, households, 0), ExportFormat::Csv).unwrap();
        let opts = ImportOptions {
            dry_run: false,
            county_id: Some(county),
            effective_from: from,
            filed_on: from,
            reason: None,
            // A year of history, town by town: every town after the first is added to a
            // county already paired, dated back (refused without it since s32 U1).
            retroactive: true,
        };
        ledger::import(&db, &Caller::system(), &bytes, &opts)
            .await
            .unwrap();
        if postgres && t % 20 == 19 {
            analyze(&db).await;
        }
    }
    let import_s = start.elapsed().as_secs_f64();
    println!(
        "  ledger import: {households} households in {import_s:.1} s ({:.0} households/s)",
        households as f64 / import_s
    );
    let start = Instant::now();
    let n = facts(&db, county, months, 2026).await;
    let facts_s = start.elapsed().as_secs_f64();
    println!(
        "  visit facts: {n} written in {facts_s:.1} s ({:.0} rows/s)",
        n as f64 / facts_s
    );
    if postgres {
        analyze(&db).await;
    }
    (db, county, n)
}

/// Refreshes PostgreSQL's planner statistics, as autovacuum does while tables grow. A
/// server with autovacuum off keeps the statistics of the empty tables, and the planner
/// then scans whole tables for lookups an index answers (imports slowed to a few hundred
/// households a second).
async fn analyze(db: &DatabaseConnection) {
    db.execute_unprepared("ANALYZE").await.unwrap();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Writes a report's JSON to `BENCH_REPORTS_OUT/{name}.json` when that is set.
fn write_report(name: &str, report: &impl serde::Serialize) {
    let Ok(dir) = std::env::var("BENCH_REPORTS_OUT") else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    let path = std::path::Path::new(&dir).join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(report).unwrap()).unwrap();
}

async fn measure(label: &str, db: &DatabaseConnection, county: i64, q: Quarter) {
    let admin = Caller::system();
    let towns = jurisdictions::children(db, county).await.unwrap();
    let town = towns[towns.len() / 2].id;
    let second: i64 = pairing::Entity::find()
        .filter(pairing::Column::Role.eq("second"))
        .order_by_asc(pairing::Column::Id)
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .helper_id;
    let reset = reset_peak_rss();
    let before = status_mib("VmRSS:");
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let mut t_sheet = Times::default();
    let mut t_town = Times::default();
    let mut t_county = Times::default();
    for run in 0..runs {
        let sheet = timed(&mut t_sheet, reports::sheet(db, &admin, second, q))
            .await
            .unwrap();
        assert_eq!(sheet.rows.len(), 5);
        let t = timed(&mut t_town, reports::town_report(db, &admin, Some(town), q))
            .await
            .unwrap();
        let c = timed(
            &mut t_county,
            reports::county_report(db, &admin, Some(county), q),
        )
        .await
        .unwrap();
        assert_eq!(c.towns.len(), towns.len());
        if run == 0 {
            let name = label.replace(' ', "-");
            write_report(&format!("{name}-sheet"), &sheet);
            write_report(&format!("{name}-town"), &t);
            write_report(&format!("{name}-county"), &c);
        }
    }
    println!(
        "{label:<20} sheet {t_sheet} | town report {t_town} | county report {t_county} (medians of {runs})"
    );
    files(label, db, &admin, (town, county), q).await;
    if reset {
        println!(
            "{:<20} peak RSS while reporting {:>6.0} MiB (RSS before {:.0} MiB)",
            "",
            peak_rss_mib(),
            before
        );
    } else {
        println!(
            "{:<20} peak RSS of the process {:>6.0} MiB",
            "",
            peak_rss_mib()
        );
    }
}

/// The town and county reports as the offices download them: each format's rendering
/// alone, after the report is computed (PDF shaping and layout was the slow one: QA
/// s33e S1).
async fn files(
    label: &str,
    db: &DatabaseConnection,
    admin: &Caller,
    (town, county): (i64, i64),
    q: Quarter,
) {
    use bangfu_server::{report_files, report_pdf};
    let t = reports::town_report(db, admin, Some(town), q)
        .await
        .unwrap();
    let c = reports::county_report(db, admin, Some(county), q)
        .await
        .unwrap();
    let mut line = String::new();
    for (what, tables) in [
        ("town", report_files::town_tables(&t)),
        ("county", report_files::county_tables(&c)),
    ] {
        for format in ["csv", "xlsx", "pdf"] {
            let started = std::time::Instant::now();
            let bytes = match format {
                "csv" => report_files::to_csv(&tables),
                "xlsx" => report_files::to_xlsx(&tables),
                _ => report_pdf::to_pdf(&tables, None),
            };
            let ms = started.elapsed().as_secs_f64() * 1e3;
            match bytes {
                Ok(b) => line += &format!(" {what} {format} {ms:.0} ms ({} KiB) |", b.len() / 1024),
                Err(e) => line += &format!(" {what} {format}: {e} |"),
            }
        }
    }
    println!("{label:<20} files:{}", line.trim_end_matches(" |"));
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
    let file = std::env::var("BENCH_SQLITE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("reports.db"));
    let url = format!("sqlite://{}?mode=rwc", file.display());
    rt.block_on(async {
        let (db, id, _) = setup(&url, county, 1..=12).await;
        measure("sqlite county", &db, id, q).await;
    });
    if let Ok(pg) = std::env::var("BENCH_DATABASE_URL") {
        println!(
            "province-sized quarter: {province} households, one quarter of visits (PostgreSQL)"
        );
        rt.block_on(async {
            let schema = PgSchema::open(&pg).await;
            let (db, id, _) = setup(&schema.url, province, 7..=9).await;
            measure("postgres province", &db, id, q).await;
            db.close().await.unwrap();
            schema.close().await;
        });
    }
}

/// The PostgreSQL schema the province lives in: `BENCH_SCHEMA` (kept, and reused when it
/// already holds the province), or a fresh one dropped at the end.
struct PgSchema {
    base: String,
    name: String,
    keep: bool,
    url: String,
}

impl PgSchema {
    async fn open(base: &str) -> PgSchema {
        let (name, keep) = match std::env::var("BENCH_SCHEMA") {
            Ok(name) => (name, true),
            Err(_) => (format!("bench_reports_{}", std::process::id()), false),
        };
        let admin = sea_orm::Database::connect(base).await.unwrap();
        admin
            .execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS {name}"))
            .await
            .unwrap();
        admin.close().await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        PgSchema {
            base: base.to_string(),
            name,
            keep,
            url,
        }
    }

    async fn close(self) {
        if self.keep {
            println!("  kept schema {} (BENCH_SCHEMA)", self.name);
            return;
        }
        let admin = sea_orm::Database::connect(&self.base).await.unwrap();
        admin
            .execute_unprepared(&format!("DROP SCHEMA {} CASCADE", self.name))
            .await
            .unwrap();
    }
}
