//! Sync benchmarks (issue 4, "Performance"): speed is printed, never asserted (only the
//! outcome is checked: every record accepted, every photo stored once).
//!
//! Against the real `bangfu-server` binary, built in release and run as a child process
//! on SQLite over loopback, three measurements:
//!
//! 1. the reference workload: submissions of one signed home visit plus its own unique
//!    ~100 KB JPEG (the photo whole with its tus creation, then the push of the
//!    record: two requests, as the field client sends them), from 4
//!    concurrent clients over keep-alive connections with TCP_NODELAY, empty store (the
//!    clients are lean HTTP/1.1 connections, [`LeanConn`]; `--reqwest` uses reqwest's);
//!    submissions/s, latency percentiles, the server's peak memory and CPU-seconds per
//!    1,000 submissions (SQLite runs inside the server process, so its CPU is included),
//!    and its context switches and I/O calls and bytes per submission (counts, which a
//!    loaded machine does not blur);
//!    and, before and after the server's run, the machine's floor for the same submissions (the
//!    same bytes over loopback, hashed and made durable, with none of the server's work:
//!    [`machine_floor`]), so the throughput also reads as a share of what this machine
//!    allows;
//! 2. records only: 100 devices push signed phone calls in batches of 500; records/s,
//!    and in the same run the rate of inserting the same rows into a fresh SQLite file
//!    with no server, as the machine's limit: the rows the server stores (each record
//!    and its `visit_facts` row), and, for comparison, the `records` rows alone;
//! 3. one large file (a real PNG of random pixels) through the resumable upload in
//!    8 MiB PATCHes streamed from disk; MB/s and the server's peak memory before/after.
//!
//! `cargo bench -p bangfu-tests --bench sync_bench` runs all three at full size;
//! `-- --quick` scales down (100 submissions, 10,000 records, 20 MB file); naming
//! `reference`, `records` or `upload` runs only those. `--clients N` sets the number of
//! concurrent clients (default 4) of both the reference and the records run;
//! `--submissions N`, `--records N` and `--upload-mb N` override the sizes.
//! `BANGFU_BENCH_DIR` chooses where the temporary server data go (default the system
//! temporary directory). `BANGFU_BENCH_SERVER=<path>` runs that server binary instead of
//! building one (for iterating; the reported figures come from the fresh build).
//! `BANGFU_BENCH_PERF=<dir>` records each timed phase of the server with `perf record -g`
//! into `<dir>/<run>.perf.data`, for `perf report`; with `BANGFU_BENCH_PERF_SWITCHES=1` as well,
//! it records where the server's threads block (`sched:sched_switch`) instead.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "benchmark: a failed setup or a refused request should stop it loudly"
)]

use bangfu_server::entities::{account, blob, pairing, record, visit_fact};
use bangfu_server::services::{Caller, auth, jurisdictions, policy};
use bangfu_shared::sync::{AckStatus, PushRequest, PushResponse};
use bangfu_shared::visit::{
    HouseholdSignature, PhotoRef, RecordType, SignedRecord, VisitBody, sha256_hex,
};
use bangfu_shared::{JurisdictionLevel, PolicyPreset, Role, VisitKind};
use bangfu_tests::field::Device;
use base64::Engine;
use chrono::NaiveDate;
use reqwest::StatusCode;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ColumnTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "bench-password";
/// The county office's account.
const OFFICE: &str = "county";
const ODK_SUBMISSIONS_PER_S: f64 = 76.0;
const ODK_CPU_S_PER_1000: f64 = 22.0;
const PATCH_CHUNK: usize = 8 * 1024 * 1024;

/// How big each run is.
#[derive(Debug, Clone)]
struct Scale {
    submissions: usize,
    photo_kib: usize,
    clients: usize,
    devices: usize,
    records: usize,
    batch: usize,
    upload_bytes: u64,
    /// The reference run's clients send through reqwest instead of [`LeanConn`].
    reqwest_clients: bool,
}

impl Scale {
    fn full() -> Scale {
        Scale {
            submissions: 1000,
            photo_kib: 100,
            clients: 4,
            devices: 100,
            records: 100_000,
            batch: 500,
            upload_bytes: 200_000_000,
            reqwest_clients: false,
        }
    }

    fn quick() -> Scale {
        Scale {
            submissions: 100,
            records: 10_000,
            upload_bytes: 20_000_000,
            ..Scale::full()
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; other flags and names are ours.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut scale = if args.iter().any(|a| a == "--quick") {
        Scale::quick()
    } else {
        Scale::full()
    };
    let flag = |name: &str| -> Option<u64> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|n| n.parse().ok())
    };
    if let Some(n) = flag("--clients") {
        scale.clients = n as usize;
    }
    if let Some(n) = flag("--submissions") {
        scale.submissions = n as usize;
    }
    if let Some(n) = flag("--records") {
        scale.records = n as usize;
    }
    if let Some(n) = flag("--upload-mb") {
        scale.upload_bytes = n * 1_000_000;
    }
    scale.reqwest_clients = args.iter().any(|a| a == "--reqwest");
    let names = ["reference", "records", "upload"];
    let chosen: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| args.iter().any(|a| a == n))
        .collect();
    let run = |name: &str| chosen.is_empty() || chosen.contains(&name);

    let bin = release_server_binary();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "bangfu sync benchmark ({}): release bangfu-server on SQLite over loopback, {} cores, \
         load average at start {}",
        if args.iter().any(|a| a == "--quick") {
            "quick"
        } else {
            "full"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!("server binary: {}", bin.display());
    runtime.block_on(async {
        tokio::spawn(clean_up_on_signal());
        if run("reference") {
            reference(&bin, &scale).await;
        }
        if run("records") {
            records_only(&bin, &scale).await;
        }
        if run("upload") {
            big_upload(&bin, &scale).await;
        }
    });
    println!("\nload average at end {}", load_average());
}

// ---------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------

/// Servers and scratch directories alive now, for [`clean_up_on_signal`].
static LIVE: Mutex<(Vec<u32>, Vec<PathBuf>)> = Mutex::new((Vec::new(), Vec::new()));

/// On SIGINT or SIGTERM (Ctrl-C, a timeout), kills the servers this bench started and
/// removes its scratch directories before exiting: destructors do not run on a signal.
async fn clean_up_on_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    let (pids, dirs) = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    eprintln!("sync_bench: interrupted; servers stopped, scratch removed");
    std::process::exit(130);
}

fn track<T: PartialEq>(
    list: impl FnOnce(&mut (Vec<u32>, Vec<PathBuf>)) -> &mut Vec<T>,
    item: T,
    add: bool,
) {
    if let Ok(mut live) = LIVE.lock() {
        let v = list(&mut live);
        if add {
            v.push(item);
        } else {
            v.retain(|x| *x != item);
        }
    }
}

/// Builds `bangfu-server` in release into the bench's own target directory.
fn release_server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("BANGFU_BENCH_SERVER") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("bench executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let target_dir = profile_dir.parent().expect("target dir");
    let started = Instant::now();
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "bangfu-server",
            "--bin",
            "bangfu-server",
        ])
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building bangfu-server failed");
    let bin = target_dir.join("release").join("bangfu-server");
    assert!(bin.exists(), "{} missing", bin.display());
    if started.elapsed() > Duration::from_secs(5) {
        println!(
            "(built the release server in {:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    bin
}

/// A `bangfu-server serve` child process; killed when dropped.
struct Server {
    child: std::process::Child,
    pid: u32,
    origin: String,
    base: String,
    log: PathBuf,
}

impl Server {
    async fn start(bin: &Path, data_dir: &Path, config: Option<&Path>) -> Server {
        let port = bangfu_tests::free_port();
        let mut cmd = std::process::Command::new(bin);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args([
                "--log",
                "warn",
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(data_dir.with_extension("log")).expect("server log"));
        let child = cmd.spawn().expect("spawn bangfu-server");
        let pid = child.id();
        track(|l| &mut l.0, pid, true);
        let origin = format!("http://127.0.0.1:{port}");
        let mut server = Server {
            child,
            pid,
            base: format!("{origin}/api/v1"),
            origin,
            log: data_dir.with_extension("log"),
        };
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = std::fs::read_to_string(&server.log).unwrap_or_default();
                panic!("bangfu-server exited early: {status}\n{log}");
            }
            if http
                .get(format!("{}/openapi.json", server.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("bangfu-server did not start on port {port}");
    }

    /// utime + stime of the server process, in clock ticks (all threads).
    fn cpu_ticks(&self) -> u64 {
        cpu_ticks_of(&format!("/proc/{}/stat", self.pid))
    }

    /// Context switches of the server's threads so far, by thread name: each thread
    /// hand-off (a query sent to SQLite's connection thread, a blocking file call) costs
    /// two, so the count per submission tracks the hops the figures pay for, with far
    /// less noise than time.
    fn context_switches(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return out;
        };
        for status in tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        {
            let field = |name: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .map(str::to_string)
                    .unwrap_or_default()
            };
            let name: String = field("Name:")
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
                .to_string();
            let n: u64 = ["voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"]
                .iter()
                .filter_map(|f| field(f).parse::<u64>().ok())
                .sum();
            *out.entry(name).or_default() += n;
        }
        out
    }

    /// The server's I/O counters so far (`/proc/<pid>/io`, every thread's, live or
    /// gone). Counts, not times: they move only when the work does, however fast or
    /// loaded the machine is, so they show what a change saved on a noisy day.
    fn io(&self) -> IoCounts {
        let text = std::fs::read_to_string(format!("/proc/{}/io", self.pid)).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        IoCounts {
            write_calls: field("syscw:"),
            storage_bytes: field("write_bytes:"),
        }
    }

    /// (VmHWM, VmRSS) in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        memory_of(&format!("/proc/{}/status", self.pid))
    }

    /// Resets the server's VmHWM to its current RSS (`clear_refs` 5, Linux >= 4.0), so the
    /// peak measured afterwards is the timed phase's and not, say, the logins' (each
    /// production argon2 verification takes 19 MiB). Returns whether the reset worked.
    fn reset_peak_memory(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }

    /// With `BANGFU_BENCH_PERF=<dir>`, starts `perf record` on the server.
    fn profile(&self, name: &str) -> Option<Profiler> {
        let dir = PathBuf::from(std::env::var_os("BANGFU_BENCH_PERF")?);
        std::fs::create_dir_all(&dir).ok()?;
        let out = dir.join(format!("{name}.perf.data"));
        // `BANGFU_BENCH_PERF_SWITCHES=1` records where threads block instead of CPU samples.
        let what: &[&str] = match std::env::var_os("BANGFU_BENCH_PERF_SWITCHES") {
            Some(_) => &["-e", "sched:sched_switch"],
            None => &["-F", "999"],
        };
        let child = std::process::Command::new("perf")
            .arg("record")
            .args(what)
            .args(["-g", "-p", &self.pid.to_string(), "-o"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        std::thread::sleep(Duration::from_millis(500));
        Some(Profiler { child, out })
    }

    /// Stops the server and prints how many errors it logged (its log goes to a file).
    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
        if let Some(first) = errors.first() {
            println!(
                "server log: {} error line(s), the first: {}",
                errors.len(),
                strip_ansi(first)
            );
        }
    }
}

/// A log line without its terminal colour codes.
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A running `perf record`; `finish` stops it (SIGINT, so it writes its file).
struct Profiler {
    child: std::process::Child,
    out: PathBuf,
}

impl Profiler {
    fn finish(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        println!("(perf profile of the server: {})", self.out.display());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        track(|l| &mut l.0, self.pid, false);
    }
}

/// Switches between two readings, by thread name (threads gone since are not counted).
fn switch_delta(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
) -> std::collections::BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(*before.get(k).unwrap_or(&0))))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// `total 65.5 (sqlx-sqlite-worker 40.1, tokio 12.0, …)`.
fn per_item(switches: &std::collections::BTreeMap<String, u64>, n: usize) -> String {
    let n = n.max(1) as f64;
    let total: u64 = switches.values().sum();
    let parts: Vec<String> = switches
        .iter()
        .map(|(k, v)| format!("{k} {:.1}", *v as f64 / n))
        .collect();
    format!("{:.1} ({})", total as f64 / n, parts.join(", "))
}

/// What the server asked of the kernel's write paths (see [`Server::io`]).
#[derive(Debug, Clone, Copy)]
struct IoCounts {
    /// write, pwrite and writev calls, to files and sockets alike (`syscw`).
    write_calls: u64,
    /// Bytes the server caused to be sent to storage: pages it dirtied and direct
    /// writes (`write_bytes`), whenever the kernel writes them out.
    storage_bytes: u64,
}

impl IoCounts {
    /// `57.1 write calls, 215.3 KB to storage` per item since `before`.
    fn per_item(self, before: IoCounts, n: usize) -> String {
        let n = n.max(1) as f64;
        format!(
            "{:.1} write calls (files and sockets), {:.1} KB to storage",
            self.write_calls.saturating_sub(before.write_calls) as f64 / n,
            self.storage_bytes.saturating_sub(before.storage_bytes) as f64 / n / 1000.0
        )
    }
}

fn cpu_ticks_of(stat_path: &str) -> u64 {
    let stat = std::fs::read_to_string(stat_path).expect("read /proc stat");
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("stat format") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn memory_of(status_path: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(status_path).expect("read /proc status");
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn self_cpu_ticks() -> u64 {
    cpu_ticks_of("/proc/self/stat")
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A scratch directory for one run, removed afterwards.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let base = std::env::var_os("BANGFU_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("bangfu-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        track(|l| &mut l.1, dir.clone(), true);
        Scratch(dir)
    }

    fn data_dir(&self) -> PathBuf {
        self.0.join("data")
    }

    fn sqlite_url(&self) -> String {
        sqlite_url(&self.data_dir())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        track(|l| &mut l.1, self.0.clone(), false);
    }
}

fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("bangfu.db").display())
}

// ---------------------------------------------------------------------------------------
// Seeding the database before the server starts
// ---------------------------------------------------------------------------------------

/// One imported helper with a password: the first helper of one household.
#[derive(Debug, Clone)]
struct Helper {
    phone: String,
    helper_id: i64,
    household_id: i64,
}

/// A county with the laizhou-2018 policy, a town of `households` households imported
/// from the demo ledger, and a password for each household's first helper.
async fn seed(url: &str, households: usize, ledger_seed: u64) -> Vec<Helper> {
    let db = bangfu_server::db::connect_and_migrate(url)
        .await
        .expect("migrate");
    let system = Caller::system();
    let (county_id, _) = jurisdictions::ensure(&db, JurisdictionLevel::County, "莱州市", None)
        .await
        .expect("county");
    let from = NaiveDate::from_ymd_opt(2018, 1, 1).expect("date");
    policy::set(
        &db,
        &system,
        county_id,
        None,
        from,
        &PolicyPreset::Laizhou2018.policy(),
    )
    .await
    .expect("policy");
    auth::add_user(
        &db,
        &bangfu_server::Settings::default(),
        &system,
        OFFICE,
        Role::CountyOffice,
        Some(county_id),
        PASSWORD,
    )
    .await
    .expect("county office account");
    let rows = bangfu_server::demo::town_ledger(0, households, ledger_seed);
    let csv = bangfu_server::ledger::export::write(&rows, bangfu_server::ledger::ExportFormat::Csv)
        .expect("ledger csv");
    bangfu_server::ledger::import(
        &db,
        &system,
        &csv,
        &bangfu_server::ledger::ImportOptions {
            dry_run: false,
            county_id: Some(county_id),
            effective_from: from,
            filed_on: from,
            reason: None,
            retroactive: false,
        },
    )
    .await
    .expect("import ledger");
    // One production-cost argon2 hash, shared by every helper (the salt repeats; this is a
    // benchmark). Logins verify it at production cost, before any timing.
    let hash = auth::hash_password(
        &bangfu_server::config::Argon2Settings::default(),
        PASSWORD.to_string(),
    )
    .await
    .expect("hash");
    let mut helpers = Vec::new();
    for row in &rows {
        let acct = account::Entity::find()
            .filter(account::Column::Username.eq(row.first.phone.as_str()))
            .one(&db)
            .await
            .expect("query account")
            .expect("helper account");
        let helper_id = acct.helper_id.expect("helper account has a helper");
        let mut active = acct.into_active_model();
        active.password_hash = Set(Some(hash.clone()));
        active.update(&db).await.expect("set password");
        let household_id = pairing::Entity::find()
            .filter(pairing::Column::HelperId.eq(helper_id))
            .order_by_asc(pairing::Column::Id)
            .one(&db)
            .await
            .expect("query pairing")
            .expect("pairing")
            .household_id;
        helpers.push(Helper {
            phone: row.first.phone.clone(),
            helper_id,
            household_id,
        });
    }
    db.close().await.expect("close");
    helpers
}

/// The county office's anomaly list over the pushed records, timed: every device's
/// numbers are read for gaps, so it is the office view that grows with the records.
async fn office_views(server: &Server, total: usize) {
    let http = client();
    let token = login(&http, &server.base, OFFICE).await;
    let mut times = Vec::new();
    let mut entries = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let resp = http
            .get(format!("{}/sync/anomalies", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("anomalies");
        assert_eq!(resp.status(), StatusCode::OK, "anomalies");
        let list: Vec<serde_json::Value> = resp.json().await.expect("anomalies json");
        times.push(t.elapsed());
        entries = list.len();
    }
    println!(
        "  the county office's anomaly list over {total} records: {} ms ({entries} entries)",
        times
            .iter()
            .map(|t| format!("{:.1}", ms(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// A keep-alive client with TCP_NODELAY, one per simulated client.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(300))
        .build()
        .expect("http client")
}

async fn login(http: &reqwest::Client, base: &str, username: &str) -> String {
    let resp = http
        .post(format!("{base}/auth/login"))
        .json(&serde_json::json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::OK, "login {username}");
    let body: serde_json::Value = resp.json().await.expect("login json");
    body["token"].as_str().expect("token").to_string()
}

/// One simulated device: its own HTTP client, token and registered key.
struct Client {
    http: reqwest::Client,
    token: String,
    device: Device,
    household_id: i64,
}

/// Logs in every helper and registers a device each, `parallel` at a time.
async fn clients(server: &Server, helpers: &[Helper], parallel: usize) -> Vec<Client> {
    let mut out: Vec<Option<Client>> = (0..helpers.len()).map(|_| None).collect();
    for (start, group) in helpers.chunks(parallel.max(1)).enumerate() {
        let mut set = tokio::task::JoinSet::new();
        for (k, h) in group.iter().cloned().enumerate() {
            let base = server.base.clone();
            set.spawn(async move {
                let http = client();
                let token = login(&http, &base, &h.phone).await;
                let device = Device::register_today(&http, &base, &token, h.helper_id).await;
                (
                    start * parallel.max(1) + k,
                    Client {
                        http,
                        token,
                        device,
                        household_id: h.household_id,
                    },
                )
            });
        }
        while let Some(done) = set.join_next().await {
            let (i, c) = done.expect("client setup");
            out[i] = Some(c);
        }
    }
    out.into_iter().map(|c| c.expect("client")).collect()
}

// ---------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mean(ds: &[Duration]) -> Duration {
    if ds.is_empty() {
        return Duration::ZERO;
    }
    ds.iter().sum::<Duration>() / ds.len() as u32
}

/// "p50 x ms, p95 y ms, p99 z ms, max w ms" of a sample.
fn spread(mut ds: Vec<Duration>) -> String {
    ds.sort();
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms (mean {:.1} ms, max {:.1} ms)",
        ms(percentile(&ds, 0.50)),
        ms(percentile(&ds, 0.95)),
        ms(percentile(&ds, 0.99)),
        ms(mean(&ds)),
        ms(ds.last().copied().unwrap_or_default())
    )
}

// ---------------------------------------------------------------------------------------
// 1. The reference workload
// ---------------------------------------------------------------------------------------

/// A real JPEG of random noise, about `kib` KiB, distinct for every `seed`. (The image
/// crate's default quality spends ~1.28 bytes on a noise pixel.)
fn noise_jpeg(kib: usize, seed: u64) -> (Vec<u8>, u32) {
    let side = ((kib * 1024) as f64 / 1.28).sqrt() as u32;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let img = image::RgbImage::from_fn(side, side, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let [a, b, c, ..] = state.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .expect("jpeg");
    (out, side)
}

/// Everything one submission sends, prepared before timing.
#[derive(Clone)]
struct Submission {
    photo: Vec<u8>,
    metadata: String,
    push_body: Vec<u8>,
}

/// A home visit that references only its photo: the household could not sign, a
/// witness did, without a drawn image. The workload is one record and one file per
/// submission, so the mark is left out; such a visit is stored but does not meet 双签字
/// in the reports, which the benchmark does not read.
fn home_visit(device: &mut Device, household_id: i64, photo: &[u8], side: u32) -> SignedRecord {
    let mut v = VisitBody::new(VisitKind::Home, chrono::Utc::now());
    v.problems.push("屋顶漏雨".into());
    v.help.push("联系村委会安排维修".into());
    v.notes = Some("入户走访，了解近况".into());
    v.photos.push(PhotoRef {
        sha256: sha256_hex(photo),
        bytes: photo.len() as u64,
        width: side,
        height: side,
    });
    v.household_signature = Some(HouseholdSignature::Witness {
        name: "王德明".into(),
        role: "村委会委员".into(),
        reason: "户主外出务工，家中老人不识字".into(),
        image_sha256: None,
    });
    device.sign(household_id, RecordType::Visit, Some(v), None, None)
}

/// Per-step times of one submission.
#[derive(Debug, Clone, Copy)]
struct SubmissionTimes {
    total: Duration,
    upload: Duration,
    push: Duration,
}

/// One submission as the field client sends it: the photo whole with its tus creation
/// (creation-with-upload), then the record.
async fn submit(
    http: &reqwest::Client,
    origin: &str,
    token: &str,
    s: Submission,
) -> SubmissionTimes {
    let t0 = Instant::now();
    let len = s.photo.len();
    let resp = http
        .post(format!("{origin}/api/v1/files"))
        .bearer_auth(token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", len.to_string())
        .header("Upload-Metadata", s.metadata)
        .header("Content-Type", "application/offset+octet-stream")
        .body(s.photo)
        .send()
        .await
        .expect("tus create with upload");
    let status = resp.status();
    let offset = resp
        .headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "tus create with upload: {text}"
    );
    assert_eq!(offset, Some(len.to_string()), "the whole photo was taken");
    let t1 = Instant::now();
    let resp = http
        .post(format!("{origin}/api/v1/sync/push"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(s.push_body)
        .send()
        .await
        .expect("push");
    assert_eq!(resp.status(), StatusCode::OK, "push");
    let acks: PushResponse = resp.json().await.expect("push json");
    accepted(&acks, [t0, t1])
}

/// Checks that the push's one record was accepted; the times of a submission that
/// began at `t0` and pushed at `t1`.
fn accepted(acks: &PushResponse, [t0, t1]: [Instant; 2]) -> SubmissionTimes {
    assert_eq!(
        acks.acks.first().map(|a| a.status),
        Some(AckStatus::Accepted),
        "{acks:?}"
    );
    let t2 = Instant::now();
    SubmissionTimes {
        total: t2 - t0,
        upload: t1 - t0,
        push: t2 - t1,
    }
}

/// One keep-alive HTTP/1.1 connection with TCP_NODELAY, as the reference run's load
/// generator: each request is written whole in one call and each answer read by its
/// `Content-Length`, with no pool, URL parsing or redirect handling around it, so the
/// clients take as little as they can of the two cores the server runs on (as `wrk`
/// does; reqwest's clients took ~0.13 CPU-s per 1,000 submissions, a tenth of the
/// machine at this rate). The server sees the same requests either way; `--reqwest`
/// runs the reference with reqwest's clients instead.
struct LeanConn {
    stream: tokio::net::TcpStream,
    host: String,
    buf: Vec<u8>,
}

/// An answer: status, the `Upload-Offset` header if any, the body.
struct LeanAnswer {
    status: u16,
    upload_offset: Option<u64>,
    body: Vec<u8>,
}

impl LeanConn {
    async fn connect(origin: &str) -> LeanConn {
        let host = origin.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&host)
            .await
            .expect("connect to the server");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        LeanConn {
            stream,
            host,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    async fn post(&mut self, path: &str, headers: &str, body: &[u8]) -> LeanAnswer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n{headers}\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.stream.write_all(&request).await.expect("send");
        self.buf.clear();
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = self.stream.read_buf(&mut self.buf).await.expect("read");
            assert!(n > 0, "the server closed the connection");
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).expect("head");
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let header = |name: &str| -> Option<u64> {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.trim().parse().ok())
        };
        let length = header("content-length").expect("Content-Length") as usize;
        let upload_offset = header("upload-offset");
        while self.buf.len() < head_end + length {
            let n = self.stream.read_buf(&mut self.buf).await.expect("read");
            assert!(n > 0, "the server closed the connection");
        }
        LeanAnswer {
            status,
            upload_offset,
            body: self.buf[head_end..head_end + length].to_vec(),
        }
    }
}

/// [`submit`] over a [`LeanConn`]: the same two requests, the same checks.
async fn submit_lean(conn: &mut LeanConn, token: &str, s: Submission) -> SubmissionTimes {
    let t0 = Instant::now();
    let len = s.photo.len();
    let headers = format!(
        "Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: {len}\r\n\
         Upload-Metadata: {}\r\nContent-Type: application/offset+octet-stream\r\n",
        s.metadata
    );
    let answer = conn.post("/api/v1/files", &headers, &s.photo).await;
    assert_eq!(
        answer.status,
        201,
        "tus create with upload: {}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(
        answer.upload_offset,
        Some(len as u64),
        "the whole photo was taken"
    );
    let t1 = Instant::now();
    let headers = format!("Authorization: Bearer {token}\r\nContent-Type: application/json\r\n");
    let answer = conn.post("/api/v1/sync/push", &headers, &s.push_body).await;
    assert_eq!(answer.status, 200, "push");
    let acks: PushResponse = serde_json::from_slice(&answer.body).expect("push json");
    accepted(&acks, [t0, t1])
}

async fn reference(bin: &Path, scale: &Scale) {
    let n = scale.submissions;
    let w = scale.clients.max(1);
    println!(
        "\n== 1. Reference workload: {n} submissions (signed home visit + its own ~{} KB JPEG), \
         {w} concurrent clients, keep-alive, TCP_NODELAY, empty store ==",
        scale.photo_kib
    );
    let scratch = Scratch::new("reference");
    let helpers = seed(&scratch.sqlite_url(), w, 0x5EED).await;
    let server = Server::start(bin, &scratch.data_dir(), None).await;
    let mut clients = clients(&server, &helpers, w).await;

    // Pre-generate every photo, record and request body.
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let photo_kib = scale.photo_kib;
    let photos: Vec<(Vec<u8>, u32)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| (i, noise_jpeg(photo_kib, i as u64 + 1)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, (Vec<u8>, u32))> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("photo thread"))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, p)| p).collect()
    });
    let sizes: Vec<usize> = photos.iter().map(|(p, _)| p.len()).collect();
    let mut distinct: Vec<String> = photos.iter().map(|(p, _)| sha256_hex(p)).collect();
    distinct.sort();
    distinct.dedup();
    let mut work: Vec<Vec<Submission>> = (0..w).map(|_| Vec::new()).collect();
    for (i, (photo, side)) in photos.into_iter().enumerate() {
        let c = &mut clients[i % w];
        let rec = home_visit(&mut c.device, c.household_id, &photo, side);
        let push_body = serde_json::to_vec(&PushRequest { records: vec![rec] }).expect("json");
        let metadata = format!(
            "sha256 {}",
            base64::engine::general_purpose::STANDARD.encode(sha256_hex(&photo))
        );
        work[i % w].push(Submission {
            photo,
            metadata,
            push_body,
        });
    }
    let photo_kb = sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64 / 1000.0;
    println!(
        "prepared: {} distinct JPEGs, mean {photo_kb:.1} KB (min {:.1}, max {:.1}), signed records \
         and request bodies, in {:.1} s (not timed)",
        distinct.len(),
        sizes.iter().min().copied().unwrap_or(0) as f64 / 1000.0,
        sizes.iter().max().copied().unwrap_or(0) as f64 / 1000.0,
        started.elapsed().as_secs_f64()
    );

    let floor = machine_floor(&work, &scratch.0.join("floor"));
    let work_after = work.clone(); // the client tasks take `work`
    println!(
        "clients: {}",
        if scale.reqwest_clients {
            "reqwest (--reqwest), one keep-alive client each"
        } else {
            "lean keep-alive HTTP/1.1 connections (LeanConn; --reqwest for reqwest's)"
        }
    );

    let ticks = clock_ticks_per_second();
    let (hwm_setup, _) = server.memory_kib();
    let reset = server.reset_peak_memory();
    let (_, rss_before) = server.memory_kib();
    let profiler = server.profile("reference");
    let cpu0 = server.cpu_ticks();
    let switches0 = server.context_switches();
    let io0 = server.io();
    let self0 = self_cpu_ticks();
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let lean = !scale.reqwest_clients;
    let mut conns = Vec::new();
    for _ in 0..clients.len() {
        conns.push(if lean {
            Some(LeanConn::connect(&server.origin).await)
        } else {
            None
        });
    }
    for ((c, subs), conn) in clients.iter().zip(work).zip(conns) {
        let (http, token, origin) = (c.http.clone(), c.token.clone(), server.origin.clone());
        set.spawn(async move {
            let mut times = Vec::with_capacity(subs.len());
            match conn {
                Some(mut conn) => {
                    for s in subs {
                        times.push(submit_lean(&mut conn, &token, s).await);
                    }
                }
                None => {
                    for s in subs {
                        times.push(submit(&http, &origin, &token, s).await);
                    }
                }
            }
            times
        });
    }
    let mut times: Vec<SubmissionTimes> = Vec::with_capacity(n);
    while let Some(done) = set.join_next().await {
        times.extend(done.expect("client task"));
    }
    let wall = t0.elapsed();
    let cpu = (server.cpu_ticks() - cpu0) as f64 / ticks;
    let switches = switch_delta(&switches0, &server.context_switches());
    let io = server.io().per_item(io0, n);
    let client_cpu = (self_cpu_ticks() - self0) as f64 / ticks;
    let (hwm, rss) = server.memory_kib();
    if let Some(p) = profiler {
        p.finish();
    }

    let rate = n as f64 / wall.as_secs_f64();
    let cpu_per_1000 = cpu * 1000.0 / n as f64;
    println!(
        "server context switches per submission: {}",
        per_item(&switches, n)
    );
    println!("server I/O per submission: {io} (the photo itself: {photo_kb:.1} KB)");
    println!(
        "throughput: {rate:.1} submissions/s ({n} in {:.2} s)",
        wall.as_secs_f64()
    );
    println!(
        "latency per submission: {}",
        spread(times.iter().map(|t| t.total).collect())
    );
    println!(
        "  photo (tus creation-with-upload): {}",
        spread(times.iter().map(|t| t.upload).collect())
    );
    println!(
        "  push record: {}",
        spread(times.iter().map(|t| t.push).collect())
    );
    println!(
        "server peak memory (VmHWM) during the run: {:.1} MiB (RSS {:.1} MiB at start, {:.1} MiB \
         at end; {})",
        mib(hwm),
        mib(rss_before),
        mib(rss),
        if reset {
            format!(
                "peak reset after setup, whose logins had reached {:.1} MiB",
                mib(hwm_setup)
            )
        } else {
            "could not reset the peak: it includes setup".to_string()
        }
    );
    println!(
        "server CPU (server + SQLite): {cpu:.2} CPU-s for {n} = {cpu_per_1000:.2} CPU-s per 1,000 \
         submissions (server busy {:.0}% of one core; bench clients used {client_cpu:.2} CPU-s)",
        cpu / wall.as_secs_f64() * 100.0
    );
    println!(
        "vs ODK Central ({ODK_SUBMISSIONS_PER_S:.0} submissions/s, {ODK_CPU_S_PER_1000:.0} CPU-s \
         per 1,000): {:.1}x its throughput (goal >= 25x), {:.1}x less CPU (goal >= 20x)",
        rate / ODK_SUBMISSIONS_PER_S,
        ODK_CPU_S_PER_1000 / cpu_per_1000.max(1e-9)
    );
    drop(clients);
    server.stop();
    // Again after the run: on a shared VM the machine's speed drifts within minutes, so
    // the share is of the mean of the two, and a wide gap between them flags a run
    // whose figures are not comparable with another's.
    let after = machine_floor(&work_after, &scratch.0.join("floor-after"));
    let mean_rate = (floor.rate + after.rate) / 2.0;
    println!(
        "machine floor, the same bytes with no HTTP, tus, database or signature check ({w} \
         loopback connections, each photo SHA-256-hashed, appended and fdatasynced, then each \
         record appended and fdatasynced), before / after the server's run: {:.1} / {:.1} \
         submissions/s at {:.2} / {:.2} CPU-s per 1,000 (both ends) -> the server reaches \
         {:.0}% of their mean; 25x ODK ({:.0}/s) would be {:.0}% of it",
        floor.rate,
        after.rate,
        floor.cpu_per_1000,
        after.cpu_per_1000,
        rate / mean_rate * 100.0,
        ODK_SUBMISSIONS_PER_S * 25.0,
        ODK_SUBMISSIONS_PER_S * 25.0 / mean_rate * 100.0
    );

    // Check the end state: every record accepted, every photo stored once.
    let db = bangfu_server::db::connect(&scratch.sqlite_url())
        .await
        .expect("reopen");
    let accepted = record::Entity::find()
        .filter(record::Column::Status.eq("accepted"))
        .count(&db)
        .await
        .expect("count");
    let blobs = blob::Entity::find().count(&db).await.expect("count");
    db.close().await.ok();
    println!("end state: {accepted} records accepted, {blobs} photos stored");
    assert_eq!((accepted, blobs), (n as u64, distinct.len() as u64));
}

/// What the machine itself allows for the reference workload.
struct Floor {
    rate: f64,
    cpu_per_1000: f64,
}

/// The least any server must do per submission, measured on this machine: move the
/// photo and the record over loopback TCP (one connection per client, TCP_NODELAY, a
/// one-byte answer to each), hash the photo, and make each durable with an append and
/// an `fdatasync` (photos to one file, records to another), on a thread per connection.
/// Nothing the real server adds is here (HTTP, tus, JSON, signatures, the database and
/// its write-ahead log), so its throughput reads as a share of the machine's limit, as
/// the records-only figure does for SQLite.
fn machine_floor(work: &[Vec<Submission>], dir: &Path) -> Floor {
    use std::net::{TcpListener, TcpStream};
    std::fs::create_dir_all(dir).expect("floor dir");
    let open = |name: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(name))
            .expect("floor file")
    };
    let (photos, records) = (open("photos"), open("records"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("floor listener");
    let addr = listener.local_addr().expect("floor addr");
    let ticks = clock_ticks_per_second();
    let cpu0 = self_cpu_ticks();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for subs in work {
            let conn = TcpStream::connect(addr).expect("floor connect");
            let (served, _) = listener.accept().expect("floor accept");
            let (photos, records) = (&photos, &records);
            s.spawn(move || floor_serve(served, photos, records));
            s.spawn(move || floor_client(conn, subs));
        }
    });
    let wall = t0.elapsed().as_secs_f64();
    let n: usize = work.iter().map(Vec::len).sum();
    let cpu = (self_cpu_ticks() - cpu0) as f64 / ticks;
    Floor {
        rate: n as f64 / wall,
        cpu_per_1000: cpu * 1000.0 / n.max(1) as f64,
    }
}

/// One client of [`machine_floor`]: each photo, then its record, each framed by its
/// length, waiting for the answer to each.
fn floor_client(mut conn: std::net::TcpStream, subs: &[Submission]) {
    conn.set_nodelay(true).expect("nodelay");
    let mut answer = [0u8; 1];
    for s in subs {
        for body in [&s.photo, &s.push_body] {
            conn.write_all(&(body.len() as u32).to_le_bytes())
                .and_then(|()| conn.write_all(body))
                .and_then(|()| conn.read_exact(&mut answer))
                .expect("floor round trip");
        }
    }
}

/// The serving end of [`machine_floor`]: frames alternate photo, record.
fn floor_serve(mut conn: std::net::TcpStream, photos: &std::fs::File, records: &std::fs::File) {
    conn.set_nodelay(true).expect("nodelay");
    let mut len = [0u8; 4];
    for turn in 0usize.. {
        if conn.read_exact(&mut len).is_err() {
            return; // the client is done
        }
        let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
        conn.read_exact(&mut body).expect("floor frame");
        let file = if turn % 2 == 0 {
            std::hint::black_box(sha256_hex(&body));
            photos
        } else {
            records
        };
        (&*file)
            .write_all(&body)
            .and_then(|()| file.sync_data())
            .and_then(|()| conn.write_all(&[1]))
            .expect("floor append");
    }
}

// ---------------------------------------------------------------------------------------
// 2. Records only, and the raw SQLite insert rate
// ---------------------------------------------------------------------------------------

async fn records_only(bin: &Path, scale: &Scale) {
    let (devices, total, batch) = (scale.devices, scale.records, scale.batch);
    let w = scale.clients.max(1);
    println!(
        "\n== 2. Records only: {devices} devices push {total} signed phone-call records in batches \
         of {batch}, {w} concurrent clients ==",
    );
    let scratch = Scratch::new("records");
    let started = Instant::now();
    let helpers = seed(&scratch.sqlite_url(), devices, 0xCAFE).await;
    let server = Server::start(bin, &scratch.data_dir(), None).await;
    let clients = clients(&server, &helpers, 4).await;
    println!(
        "setup: ledger of {devices} households imported, {devices} helpers logged in (production \
         argon2), {devices} devices registered, in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Sign every record and serialize every batch, spread over the cores.
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_device: Vec<usize> = (0..devices)
        .map(|i| total / devices + usize::from(i < total % devices))
        .collect();
    let mut clients = clients;
    let bodies: Vec<Vec<Vec<u8>>> = std::thread::scope(|s| {
        let chunk = clients.len().div_ceil(threads);
        let handles: Vec<_> = clients
            .chunks_mut(chunk.max(1))
            .zip(per_device.chunks(chunk.max(1)))
            .map(|(cs, counts)| {
                s.spawn(move || {
                    cs.iter_mut()
                        .zip(counts)
                        .map(|(c, &count)| {
                            let records: Vec<SignedRecord> = (0..count)
                                .map(|_| c.device.phone_call(c.household_id))
                                .collect();
                            records
                                .chunks(batch)
                                .map(|b| {
                                    serde_json::to_vec(&PushRequest {
                                        records: b.to_vec(),
                                    })
                                    .expect("json")
                                })
                                .collect::<Vec<_>>()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signing thread"))
            .collect()
    });
    let payload: usize = bodies.iter().flatten().map(Vec::len).sum();
    let pushes: usize = bodies.iter().map(Vec::len).sum();
    println!(
        "prepared: {total} records signed, {pushes} push bodies ({:.1} MB of JSON) in {:.1} s (not timed)",
        payload as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    // Each client takes the next device and pushes its batches in order.
    let queue: Arc<Mutex<VecDeque<DeviceBatches>>> =
        Arc::new(Mutex::new(bodies.into_iter().enumerate().collect()));
    let tokens: Arc<Vec<String>> = Arc::new(clients.iter().map(|c| c.token.clone()).collect());
    let ticks = clock_ticks_per_second();
    let reset = server.reset_peak_memory();
    let profiler = server.profile("records");
    let cpu0 = server.cpu_ticks();
    let io0 = server.io();
    let self0 = self_cpu_ticks();
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..w {
        let (queue, tokens, base) = (queue.clone(), tokens.clone(), server.base.clone());
        let http = client();
        set.spawn(async move {
            let mut out = PushLog::default();
            loop {
                let next = queue.lock().expect("queue").pop_front();
                let Some((device, batches)) = next else {
                    break;
                };
                for body in batches {
                    let t = Instant::now();
                    // A refused or failed push is sent again, as a device would: the same
                    // batch gets the same answers, so retrying is safe.
                    let mut attempt = 0u32;
                    let acks: PushResponse = loop {
                        let sent = http
                            .post(format!("{base}/sync/push"))
                            .bearer_auth(&tokens[device])
                            .header("Content-Type", "application/json")
                            .body(body.clone())
                            .send()
                            .await;
                        let failure = match sent {
                            Ok(resp) if resp.status() == StatusCode::OK => {
                                break resp.json().await.expect("push json");
                            }
                            Ok(resp) => {
                                let status = resp.status();
                                format!("{status} {}", resp.text().await.unwrap_or_default())
                            }
                            Err(e) => e.to_string(),
                        };
                        attempt += 1;
                        out.retries += 1;
                        if out.failures.is_empty() {
                            out.failures.push(failure.chars().take(200).collect());
                        }
                        assert!(attempt < 100, "push failed 100 times: {failure}");
                        tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
                    };
                    let ok = acks
                        .acks
                        .iter()
                        .filter(|a| a.status == AckStatus::Accepted && a.flags.is_empty())
                        .count();
                    out.accepted += ok;
                    out.latencies.push(t.elapsed());
                    out.done.push((t0.elapsed(), acks.acks.len()));
                }
            }
            out
        });
    }
    let mut log = PushLog::default();
    while let Some(done) = set.join_next().await {
        let l = done.expect("client task");
        log.latencies.extend(l.latencies);
        log.done.extend(l.done);
        log.accepted += l.accepted;
        log.retries += l.retries;
        log.failures.extend(l.failures);
    }
    let (times, accepted) = (log.latencies, log.accepted);
    let wall = t0.elapsed();
    let cpu = (server.cpu_ticks() - cpu0) as f64 / ticks;
    let io = server.io().per_item(io0, total);
    let client_cpu = (self_cpu_ticks() - self0) as f64 / ticks;
    let (hwm, _) = server.memory_kib();
    if let Some(p) = profiler {
        p.finish();
    }
    assert_eq!(accepted, total, "every record accepted without flags");
    let served_rate = total as f64 / wall.as_secs_f64();
    println!(
        "through the server: {served_rate:.0} records/s ({total} in {:.2} s), {:.2} CPU-s per \
         10,000 records (server + SQLite, busy {:.0}% of one core; clients {client_cpu:.2} \
         CPU-s), peak memory {:.1} MiB{}",
        wall.as_secs_f64(),
        cpu * 10_000.0 / total as f64,
        cpu / wall.as_secs_f64() * 100.0,
        mib(hwm),
        if reset { "" } else { " (including setup)" }
    );
    println!("  per push of {batch}: {}", spread(times));
    println!("  server I/O per record: {io}");
    if log.retries > 0 {
        println!(
            "  {} pushes failed and were sent again (after 0.2-3.2 s backoff); a failure: {}",
            log.retries,
            log.failures.first().map_or("", String::as_str)
        );
    }
    println!(
        "  records/s by tenth of the run (the table grows from 0 to {total} rows): {}",
        rate_by_tenth(log.done, total)
    );
    office_views(&server, total).await;
    drop(clients);
    server.stop();

    // The same rows, inserted into a fresh SQLite file with no server.
    let db = bangfu_server::db::connect(&scratch.sqlite_url())
        .await
        .expect("reopen");
    let stored = record::Entity::find()
        .order_by_asc(record::Column::SeqId)
        .all(&db)
        .await
        .expect("read records");
    let mut facts: std::collections::HashMap<String, visit_fact::ActiveModel> =
        visit_fact::Entity::find()
            .all(&db)
            .await
            .expect("read visit facts")
            .into_iter()
            .map(|f| (f.record_id.clone(), f.into_active_model().reset_all()))
            .collect();
    db.close().await.ok();
    assert_eq!(stored.len(), total);
    let fact_rows = facts.len();
    let rows: Vec<record::ActiveModel> = stored
        .into_iter()
        .map(|r| record::ActiveModel {
            seq_id: NotSet,
            id: Set(r.id),
            change_seq: Set(r.change_seq),
            device_id: Set(r.device_id),
            device_seq: Set(r.device_seq),
            prev_sha256: Set(r.prev_sha256),
            record_sha256: Set(r.record_sha256),
            author_helper_id: Set(r.author_helper_id),
            account_id: Set(r.account_id),
            household_id: Set(r.household_id),
            record_type: Set(r.record_type),
            target_id: Set(r.target_id),
            visit_kind: Set(r.visit_kind),
            visit_at: Set(r.visit_at),
            created_at_device: Set(r.created_at_device),
            received_at: Set(r.received_at),
            status: Set(r.status),
            flags: Set(r.flags),
            body: Set(r.body),
            review: Set(r.review),
        })
        .collect();
    // Per 500 records, each record's visit-facts row: the rows the server stores for them.
    let fact_chunks: Vec<Vec<visit_fact::ActiveModel>> = rows
        .chunks(500)
        .map(|chunk| {
            chunk
                .iter()
                .filter_map(|r| match &r.id {
                    sea_orm::ActiveValue::Set(id) => facts.remove(id),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let records_only = raw_rate(&scratch.0.join("raw"), &rows, None).await;
    let with_facts = raw_rate(&scratch.0.join("raw-facts"), &rows, Some(&fact_chunks)).await;
    println!(
        "raw SQLite, no server (sea-orm insert_many, 500 records per transaction, WAL, \
         synchronous=NORMAL: no fsync per commit, same schema and indexes):"
    );
    println!("  the records alone: {records_only:.0} records/s");
    println!(
        "  the rows the server stores for them (each record and its visit-facts row, \
         {fact_rows} of them): {with_facts:.0} records/s"
    );
    println!(
        "ratio: the server reaches {:.1}% of the raw rate of the same rows ({:.1}% of the \
         records alone; goal >= 50%, signature checks included)",
        served_rate / with_facts * 100.0,
        served_rate / records_only * 100.0
    );
}

/// Inserts `rows` (and per chunk of 500 the `facts` given) into a fresh SQLite file
/// with no server, 500 records per transaction; returns records/s.
async fn raw_rate(
    dir: &Path,
    rows: &[record::ActiveModel],
    facts: Option<&[Vec<visit_fact::ActiveModel>]>,
) -> f64 {
    let raw = bangfu_server::db::connect_and_migrate(&sqlite_url(dir))
        .await
        .expect("fresh sqlite");
    let t0 = Instant::now();
    for (i, chunk) in rows.chunks(500).enumerate() {
        let txn = raw.begin().await.expect("begin");
        record::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await
            .expect("insert");
        if let Some(f) = facts.and_then(|f| f.get(i)).filter(|f| !f.is_empty()) {
            // 18 columns: 500 rows stay under SQLite's bind limit.
            visit_fact::Entity::insert_many(f.to_vec())
                .exec_without_returning(&txn)
                .await
                .expect("insert facts");
        }
        txn.commit().await.expect("commit");
    }
    let raw_wall = t0.elapsed();
    let inserted = record::Entity::find().count(&raw).await.expect("count");
    raw.close().await.ok();
    assert_eq!(inserted, rows.len() as u64);
    rows.len() as f64 / raw_wall.as_secs_f64()
}

/// One device's push bodies, in order, with the device's index.
type DeviceBatches = (usize, Vec<Vec<u8>>);

/// What one records client saw.
#[derive(Default)]
struct PushLog {
    latencies: Vec<Duration>,
    /// (time since the start, records acknowledged) of every push.
    done: Vec<(Duration, usize)>,
    accepted: usize,
    retries: usize,
    failures: Vec<String>,
}

/// The rate over each tenth of the records acknowledged, in order of completion.
fn rate_by_tenth(mut done: Vec<(Duration, usize)>, total: usize) -> String {
    done.sort();
    let mut out = Vec::new();
    let (mut count, mut last_t, mut last_count) = (0usize, Duration::ZERO, 0usize);
    let mut next = 1;
    for (t, n) in done {
        count += n;
        while next <= 10 && count * 10 >= total * next {
            let secs = (t - last_t).as_secs_f64().max(1e-9);
            out.push(format!("{:.0}", (count - last_count) as f64 / secs));
            (last_t, last_count) = (t, count);
            next += 1;
        }
    }
    out.join(", ")
}

// ---------------------------------------------------------------------------------------
// 3. One large file through the resumable upload
// ---------------------------------------------------------------------------------------

fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    for (n, slot) in table.iter_mut().enumerate() {
        let mut c = n as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    table
}

fn crc_update(table: &[u32; 256], mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc = table[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

fn png_chunk(out: &mut impl Write, table: &[u32; 256], kind: &[u8; 4], data: &[u8]) {
    out.write_all(&(data.len() as u32).to_be_bytes())
        .expect("write png");
    out.write_all(kind).expect("write png");
    out.write_all(data).expect("write png");
    let crc = !crc_update(table, crc_update(table, !0, kind), data);
    out.write_all(&crc.to_be_bytes()).expect("write png");
}

/// Bytes per pixel of [`noise_png`]: 16-bit RGB.
const PNG_PIXEL_BYTES: usize = 6;

/// Writes a real 16-bit RGB PNG of random pixels of about `target` bytes to `path`,
/// streaming: rows go out in stored (uncompressed) deflate blocks inside 1 MiB IDAT
/// chunks, so neither the pixels nor the file are ever whole in memory. Returns the side
/// in pixels. Six bytes a pixel keep 200 MB within the server's 48-megapixel limit (at
/// three, 200 MB would declare 67 megapixels and be refused as no photo).
fn noise_png(path: &Path, target: u64, seed: u64) -> u32 {
    let side = ((target as f64 / PNG_PIXEL_BYTES as f64).sqrt().ceil() as u32).max(1);
    let table = crc_table();
    let mut out = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path).expect("create png"),
    );
    out.write_all(&[137, 80, 78, 71, 13, 10, 26, 10])
        .expect("write png");
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[16, 2, 0, 0, 0]); // 16-bit RGB, deflate, no filter, no interlace
    png_chunk(&mut out, &table, b"IHDR", &ihdr);

    let mut idat: Vec<u8> = vec![0x78, 0x01]; // zlib header, no preset dictionary
    let mut pending: Vec<u8> = Vec::with_capacity(1 << 17);
    let (mut a, mut b) = (1u32, 0u32); // Adler-32 of the raw (filtered) scanlines
    let mut state = seed | 1;
    let mut row = vec![0u8; 1 + side as usize * PNG_PIXEL_BYTES];
    let stored = |idat: &mut Vec<u8>, data: &[u8], last: bool| {
        idat.push(u8::from(last));
        let len = data.len() as u16;
        idat.extend_from_slice(&len.to_le_bytes());
        idat.extend_from_slice(&(!len).to_le_bytes());
        idat.extend_from_slice(data);
    };
    for _ in 0..side {
        row[0] = 0; // filter: none
        for px in row[1..].chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            px.copy_from_slice(&state.to_le_bytes()[..px.len()]);
        }
        for part in row.chunks(5552) {
            for &x in part {
                a += u32::from(x);
                b += a;
            }
            a %= 65_521;
            b %= 65_521;
        }
        pending.extend_from_slice(&row);
        while pending.len() >= 65_535 {
            stored(&mut idat, &pending[..65_535], false);
            pending.drain(..65_535);
        }
        if idat.len() >= 1 << 20 {
            png_chunk(&mut out, &table, b"IDAT", &idat);
            idat.clear();
        }
    }
    stored(&mut idat, &pending, true);
    idat.extend_from_slice(&((b << 16) | a).to_be_bytes());
    png_chunk(&mut out, &table, b"IDAT", &idat);
    png_chunk(&mut out, &table, b"IEND", &[]);
    out.flush().expect("flush png");
    side
}

fn sha256_of_file(path: &Path) -> Option<String> {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let hex = text.split_whitespace().next()?.to_string();
    (hex.len() == 64).then_some(hex)
}

async fn big_upload(bin: &Path, scale: &Scale) {
    let target = scale.upload_bytes;
    println!(
        "\n== 3. One {:.0} MB file through the resumable upload (tus), {} MiB PATCHes streamed \
         from disk ==",
        target as f64 / 1e6,
        PATCH_CHUNK >> 20
    );
    let scratch = Scratch::new("upload");

    // The generator is ours: prove on a small one that it makes a PNG that fully decodes.
    let probe = scratch.0.join("probe.png");
    let probe_side = noise_png(&probe, 60_000, 7);
    let decoded = image::open(&probe).expect("the generated PNG decodes");
    assert_eq!(decoded.width(), probe_side);

    let started = Instant::now();
    let file = scratch.0.join("noise.png");
    let side = noise_png(&file, target, 0xF00D);
    let len = std::fs::metadata(&file).expect("png size").len();
    let sha = sha256_of_file(&file);
    println!(
        "prepared: {side}x{side} 16-bit RGB PNG of random pixels, {len} bytes, in {:.1} s (not timed){}",
        started.elapsed().as_secs_f64(),
        if sha.is_some() {
            ""
        } else {
            "; sha256sum missing, uploading without a declared hash"
        }
    );

    let helpers = seed(&scratch.sqlite_url(), 1, 0xB16).await;
    let config = scratch.0.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "max_upload_bytes = {}\nfull_decode_limit_bytes = 1048576\n",
            (len + (1 << 20)).max(300_000_000)
        ),
    )
    .expect("write config");
    let server = Server::start(bin, &scratch.data_dir(), Some(&config)).await;
    let http = client();
    let token = login(&http, &server.base, &helpers[0].phone).await;

    let ticks = clock_ticks_per_second();
    let (hwm_setup, _) = server.memory_kib();
    let reset = server.reset_peak_memory();
    let (hwm_before, rss_before) = server.memory_kib();
    let profiler = server.profile("upload");
    let cpu0 = server.cpu_ticks();
    let t0 = Instant::now();
    let mut create = http
        .post(format!("{}/files", server.base))
        .bearer_auth(&token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", len.to_string());
    if let Some(sha) = &sha {
        create = create.header(
            "Upload-Metadata",
            format!(
                "sha256 {}",
                base64::engine::general_purpose::STANDARD.encode(sha)
            ),
        );
    }
    let resp = create.send().await.expect("tus create");
    assert_eq!(resp.status(), StatusCode::CREATED, "tus create");
    let url = format!(
        "{}{}",
        server.origin,
        resp.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("Location")
    );
    let mut source = std::fs::File::open(&file).expect("open png");
    let mut offset = 0u64;
    let mut last_patch = Duration::ZERO;
    let mut peak_during = 0u64;
    while offset < len {
        let n = (len - offset).min(PATCH_CHUNK as u64) as usize;
        let mut chunk = vec![0u8; n];
        source.read_exact(&mut chunk).expect("read png");
        let t = Instant::now();
        let resp = http
            .patch(&url)
            .bearer_auth(&token)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .body(chunk)
            .send()
            .await
            .expect("tus patch");
        let status = resp.status();
        let new_offset: u64 = resp
            .headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(
            status,
            StatusCode::NO_CONTENT,
            "tus patch at {offset}: {text}"
        );
        last_patch = t.elapsed();
        offset += n as u64;
        assert_eq!(new_offset, offset, "server offset");
        peak_during = peak_during.max(server.memory_kib().1);
    }
    let wall = t0.elapsed();
    let cpu = (server.cpu_ticks() - cpu0) as f64 / ticks;
    let (hwm_after, rss_after) = server.memory_kib();
    if let Some(p) = profiler {
        p.finish();
    }
    println!(
        "throughput: {:.1} MB/s ({len} bytes in {:.2} s; the last PATCH, which hashes and checks \
         the whole file before committing it, took {:.2} s)",
        len as f64 / 1e6 / wall.as_secs_f64(),
        wall.as_secs_f64(),
        last_patch.as_secs_f64()
    );
    println!(
        "server memory: VmHWM {:.1} MiB before, {:.1} MiB after (+{:.1} MiB); VmRSS {:.1} -> \
         {:.1} MiB, highest sampled between PATCHes {:.1} MiB ({})",
        mib(hwm_before),
        mib(hwm_after),
        mib(hwm_after.saturating_sub(hwm_before)),
        mib(rss_before),
        mib(rss_after),
        mib(peak_during),
        if reset {
            format!(
                "peak reset after setup, whose login had reached {:.1} MiB",
                mib(hwm_setup)
            )
        } else {
            "could not reset the peak: it includes setup".to_string()
        }
    );
    println!(
        "server CPU: {cpu:.2} CPU-s ({:.2} CPU-s per 100 MB)",
        cpu * 1e8 / len as f64
    );
    server.stop();
    let stored =
        bangfu_server::storage::LocalStore::new(&scratch.data_dir().join("files")).expect("store");
    if let Some(sha) = &sha {
        let path = stored.blob_path(sha).expect("blob path");
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!("end state: blob stored under its SHA-256, {size} bytes");
        assert_eq!(size, len);
    }
}
