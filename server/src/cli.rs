//! The `bangfu-server` command line (clap). Settings come from flags, then environment
//! variables, then an optional TOML file, then defaults — in that order of precedence.

use anyhow::{Context, bail};
use bangfu_shared::{JurisdictionLevel, Policy, PolicyPreset, Role};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Settings;
use crate::ledger::{self, ImportOptions};
use crate::services::{Caller, enrollment, jurisdictions, policy, today};
use crate::{AppState, db, demo};

/// Bangfu central server: pairing ledger, accounts, scoped API.
#[derive(Debug, Parser)]
#[command(name = "bangfu-server", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// A TOML settings file.
    #[arg(long, global = true, env = "BANGFU_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the SQLite file and photos live.
    #[arg(long, global = true, env = "BANGFU_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of the embedded SQLite file.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Log filter, e.g. `info` or `debug`.
    #[arg(long, global = true, env = "BANGFU_LOG")]
    pub log: Option<String>,
}

/// Server commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API.
    Serve(ServeArgs),
    /// Serve with a generated demo county (2 towns, 10 villages, 120 households); prints the logins.
    Demo(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Import a ledger file (CSV or XLSX with the official headers) into a county.
    ImportLedger(ImportArgs),
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Issue one-time enrollment codes for a town's helpers who have not set a password (CSV).
    EnrollmentCodes(CodesArgs),
    /// View or version a county's policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Quarterly attendance reports: a second helper's sheet, a town, a county.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Take a household out of pairing, or bring it back.
    #[command(subcommand)]
    Household(HouseholdCommand),
}

#[derive(Debug, Subcommand)]
pub enum HouseholdCommand {
    /// End its pairings from a date (已脱贫, or removed from the ledger).
    Exit {
        /// The household's id (`GET /api/v1/households`).
        #[arg(long)]
        id: i64,
        /// The first day it is no longer paired (default today).
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Withdraw its exit while the exit's day is still to come: its pairings get back
    /// what they said before.
    CancelExit {
        #[arg(long)]
        id: i64,
        /// Why the exit is withdrawn.
        #[arg(long)]
        reason: String,
    },
    /// Withdraw a change of helper a ledger import filed for a later day (or for today,
    /// while the new helper has recorded nothing for it): the pairing it ended holds on.
    CancelChange {
        #[arg(long)]
        id: i64,
        /// Only the change of this helper: `first` or `second` (default both).
        #[arg(long)]
        role: Option<bangfu_shared::PairingRole>,
        /// Why the change is withdrawn.
        #[arg(long)]
        reason: String,
    },
    /// Bring it back (返贫): the next ledger import that lists it pairs its helpers.
    Rejoin {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Correct its head of household, phone or village (of its town): an import would
    /// read the corrected row as a new household.
    Correct {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        head_name: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        /// Another village of its town (`GET /api/v1/places` lists the ids).
        #[arg(long)]
        village_id: Option<i64>,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// A second helper's quarterly attendance sheet (附件3).
    Attendance {
        /// The second helper's phone number.
        #[arg(long)]
        second_helper: String,
        /// A submitted version (第N版) as it was frozen, with its device signature;
        /// without it, today's data (当前数据, unsigned), as the API prints it.
        #[arg(long)]
        version: Option<i32>,
        #[command(flatten)]
        out: ReportOut,
    },
    /// A town's quarterly report.
    Town {
        #[arg(long)]
        town: String,
        #[arg(long)]
        county: Option<String>,
        #[command(flatten)]
        out: ReportOut,
    },
    /// A county's quarterly report with the towns ranked.
    County {
        #[arg(long)]
        county: String,
        #[command(flatten)]
        out: ReportOut,
    },
}

/// Quarter, format and destination of a report.
#[derive(Debug, Args)]
pub struct ReportOut {
    /// The quarter, e.g. 2026Q1.
    #[arg(long)]
    pub quarter: bangfu_shared::report::Quarter,
    /// json, csv, xlsx or pdf.
    #[arg(long, default_value = "json")]
    pub format: String,
    /// Write here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "BANGFU_BIND")]
    pub bind: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The ledger file.
    pub file: PathBuf,
    /// The county. It must exist, unless `--create-county` is given: a mistyped name
    /// would otherwise start a second county beside the real one.
    #[arg(long)]
    pub county: String,
    /// Create the county if it does not exist (never on a dry run).
    #[arg(long)]
    pub create_county: bool,
    /// The policy preset a new county starts with (default laizhou-2018). Ignored, with
    /// a warning, for an existing county: change its policy with `policy set`.
    #[arg(long)]
    pub preset: Option<PolicyPreset>,
    /// Only report what would change.
    #[arg(long)]
    pub dry_run: bool,
    /// When new pairings and changes take effect (default today).
    #[arg(long)]
    pub effective_from: Option<NaiveDate>,
    /// When the changes were filed (default today).
    #[arg(long)]
    pub filed_on: Option<NaiveDate>,
    /// Why helpers change; stored on the pairings this import changes.
    #[arg(long)]
    pub reason: Option<String>,
    /// Confirms a change of helper dated before the current quarter: the ended
    /// quarters' attendance is judged again by the new pairings.
    #[arg(long)]
    pub retroactive: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an office or admin account; the password is read from standard input.
    Add(UserAddArgs),
    /// Set any account's password (an office that forgot theirs); read from standard
    /// input. Every session of the account ends. A helper's password is reset by their
    /// town office instead (`POST /enrollment/codes?helper=ID&reset=true`).
    Password(UserPasswordArgs),
}

#[derive(Debug, Args)]
pub struct UserPasswordArgs {
    #[arg(long)]
    pub username: String,
    /// Read the password from standard input (required: passwords never go on a command line).
    #[arg(long, required = true)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    #[arg(long)]
    pub username: String,
    /// admin, county_office or town_office.
    #[arg(long)]
    pub role: Role,
    /// The town of a town office.
    #[arg(long)]
    pub town: Option<String>,
    /// The county of a county office (or of the town, when town names repeat).
    #[arg(long)]
    pub county: Option<String>,
    /// Read the password from standard input (required: passwords never go on a command line).
    #[arg(long, required = true)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct CodesArgs {
    /// The town whose helpers get codes, by name (as the ledger writes it).
    #[arg(long)]
    pub town: String,
    /// The town's county, where two counties have a town of that name.
    #[arg(long)]
    pub county: Option<String>,
    /// Write the CSV here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Reprint the town's lost sheet: new codes also for the helpers holding one it
    /// printed (cancelling those). Without it, helpers holding a code in force are left
    /// out, so running it again never cancels a sheet already handed out.
    #[arg(long)]
    pub reissue: bool,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Store a new policy version from a preset or a JSON file.
    Set(PolicySetArgs),
    /// Print the policy in force (JSON).
    Show(PolicyShowArgs),
}

#[derive(Debug, Args)]
pub struct PolicySetArgs {
    #[arg(long)]
    pub county: String,
    /// A town's override.
    #[arg(long)]
    pub town: Option<String>,
    #[arg(long, conflicts_with = "file", required_unless_present = "file")]
    pub preset: Option<PolicyPreset>,
    /// A JSON policy.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The day it applies from: in the current quarter or later (a quarter that has
    /// ended may already be reported, and is not rejudged).
    #[arg(long)]
    pub from: NaiveDate,
}

#[derive(Debug, Args)]
pub struct PolicyShowArgs {
    #[arg(long)]
    pub county: String,
    #[arg(long)]
    pub town: Option<String>,
    #[arg(long)]
    pub date: Option<NaiveDate>,
}

/// `e` and its causes, each said once: a database error's text already holds its
/// cause, which `{:#}` would repeat ("pool timed out…: pool timed out…", QA s26b F12).
fn said_once(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain().map(ToString::to_string) {
        // Our own texts carried by `DbErr::Custom` are whole sentences: sea-orm's
        // "Custom Error: " before them says nothing to an operator (QA s31c T8).
        let cause = cause
            .strip_prefix("Custom Error: ")
            .unwrap_or(&cause)
            .to_string();
        if out.contains(&cause) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&cause);
    }
    out
}

/// Runs the command line and turns errors into a message and exit code 1.
pub fn main() -> ExitCode {
    fixed_mmap_threshold();
    let cli = Cli::parse();
    let settings = match settings(&cli.global) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", said_once(&e));
            return ExitCode::FAILURE;
        }
    };
    init_tracing(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", said_once(&e));
            ExitCode::FAILURE
        }
    }
}

/// Defaults ← TOML file ← environment and flags.
pub fn settings(global: &GlobalArgs) -> anyhow::Result<Settings> {
    let mut s = Settings::from_file(global.config.as_deref())?;
    if let Some(d) = &global.data_dir {
        s.data_dir = d.clone();
    }
    if let Some(u) = &global.database_url {
        s.database_url = Some(u.clone());
    }
    if let Some(l) = &global.log {
        s.log = l.clone();
    }
    Ok(s)
}

/// actix-web's HTTP/1 dispatcher logs each request it cannot parse (a header block too
/// large, a URI too long, a malformed head) at ERROR: a client's mistake, answered 4xx,
/// that would page operators alerting on ERROR and let any client fill the error log
/// (QA s23c F3). Silenced, unless the filter names actix_http itself. PostgreSQL's
/// NOTICEs (`relation "seaql_migrations" already exists, skipping` on every start),
/// which sqlx logs at INFO, are kept to warnings likewise, unless the filter names sqlx
/// (QA s24a F3).
const QUIET: [(&str, &str); 2] = [
    ("actix_http", "actix_http::h1::dispatcher=off"),
    ("sqlx", "sqlx::postgres::notice=warn"),
];

fn init_tracing(filter: &str) {
    let mut filter = filter.to_string();
    for (named, directive) in QUIET {
        if !filter.contains(named) {
            filter = format!("{filter},{directive}");
        }
    }
    // A filter that does not parse is said, not taken silently for `info` (QA s30c N6).
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("warning: log filter {filter:?} is not one ({e}); logging at info");
        tracing_subscriber::EnvFilter::new("info")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// glibc's malloc serves a block from its heap, not a fresh mapping, once a block of
/// that size has been freed (its mmap threshold rises with every large free, up to
/// 32 MiB). Parsing 300 KB push bodies then leaves hundreds of MiB fragmented in the
/// heap: the records benchmark peaked at 450 MiB. With the threshold fixed (glibc reads
/// it only from the environment, at start) large blocks stay mappings, returned when
/// freed: 45 MiB, at the same throughput. The threshold is 256 KiB, above a photo's
/// buffers (a ~100 KB upload's body grows actix's read buffer to ~190 KB): at 128 KiB
/// each photo mapped and unmapped them, page fault by page fault, and the heap's top was
/// trimmed after every free (a fixed threshold leaves the trim threshold at 128 KiB
/// too), so the reference workload took ~7% more CPU. Keeping 1 MiB at the top of each
/// heap stops that churn. So the binary runs itself again with both set, unless the
/// threshold is set already (then it is left as it is).
fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        const VAR: &str = "MALLOC_MMAP_THRESHOLD_";
        const TRIM: &str = "MALLOC_TRIM_THRESHOLD_";
        if std::env::var_os(VAR).is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut cmd = std::process::Command::new(exe);
        cmd.args(std::env::args_os().skip(1)).env(VAR, "262144");
        if std::env::var_os(TRIM).is_none() {
            cmd.env(TRIM, "1048576");
        }
        // `exec` returns only if it failed; the server then runs as it is.
        let err = cmd.exec();
        eprintln!("warning: could not restart with {VAR} set ({err}); continuing");
    }
}

/// Why the data directory cannot be used, naming it: a bare "File exists" or
/// "Read-only file system" left the operator guessing which path (QA s30c N6).
fn data_dir_error(settings: &Settings, e: std::io::Error) -> anyhow::Error {
    let dir = settings.data_dir.display();
    match e.kind() {
        std::io::ErrorKind::WouldBlock => anyhow::anyhow!(e),
        std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory => {
            anyhow::anyhow!(
                "the data directory {dir} is a file, not a directory: give another --data-dir"
            )
        }
        std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
            anyhow::anyhow!(
                "the data directory {dir} cannot be written ({e}): the server keeps its database and photos there"
            )
        }
        _ => anyhow::anyhow!("preparing the data directory {dir}: {e}"),
    }
}

async fn dispatch(command: Command, mut settings: Settings) -> anyhow::Result<()> {
    if let Command::Serve(args) | Command::Demo(args) = &command {
        settings.bind = args.bind.unwrap_or(settings.bind);
    }
    refuse_if_new(&command, &settings)?;
    if uses_data_dir(&command, &settings) {
        // Before the database, which may create its SQLite file in there.
        crate::storage::private_dir(&settings.data_dir)
            .map_err(|e| data_dir_error(&settings, e))?;
    }
    // Held while this process serves: one server per data directory.
    let _serving = match command {
        Command::Serve(_) | Command::Demo(_) => Some(
            crate::storage::lock_data_dir(&settings.data_dir)
                .map_err(|e| data_dir_error(&settings, e))?,
        ),
        _ => None,
    };
    if matches!(
        command,
        Command::Serve(_) | Command::Migrate | Command::ImportLedger(_) | Command::User(_)
    ) {
        say_if_new(&settings);
    }
    let url = settings.effective_database_url();
    if matches!(command, Command::Serve(_) | Command::Demo(_)) {
        db::check_writable_for_serving(&url).map_err(anyhow::Error::msg)?;
    }
    // And one server per PostgreSQL database, whatever the data directory.
    let _serving_db = match command {
        Command::Serve(_) | Command::Demo(_) => db::hold_postgres(&url)
            .await
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("opening the database {}", crate::config::redact_url(&url)))?,
        _ => None,
    };
    let db = db::connect_and_migrate(&url)
        .await
        .with_context(|| format!("opening the database {}", crate::config::redact_url(&url)))?;
    match command {
        Command::Serve(_) => serve(db, settings, false).await,
        Command::Demo(_) => serve(db, settings, true).await,
        Command::Migrate => {
            println!("database is at the latest schema");
            Ok(())
        }
        Command::ImportLedger(args) => import(&db, args).await,
        Command::User(UserCommand::Add(args)) => add_user(&db, &settings, args).await,
        Command::User(UserCommand::Password(args)) => set_password(&db, &settings, args).await,
        Command::EnrollmentCodes(args) => codes(&db, &settings, args).await,
        Command::Policy(cmd) => policy_cmd(&db, cmd).await,
        Command::Report(cmd) => report_cmd(&db, cmd).await,
        Command::Household(cmd) => household_cmd(&db, cmd).await,
    }
}

/// Says on stderr that a command that may set up a new installation (`serve`,
/// `migrate`, `import-ledger`, `user add`) is about to create a new, empty SQLite
/// database: right on a first start, and the only sign of a mistyped `--data-dir` (or
/// `BANGFU_DATA_DIR`) before every device's sync finds its records "missing" (QA s26b
/// F16).
fn say_if_new(settings: &Settings) {
    if let Some(file) = settings.embedded_file().filter(|f| !f.exists()) {
        eprintln!(
            "notice: no database in {}: starting with a new, empty one ({}). \
             If you meant an existing installation, stop and check --data-dir.",
            settings.data_dir.display(),
            file.display()
        );
    }
}

/// Refuses a command that only reads or changes an existing installation (reports,
/// enrollment codes, policies, households) when the data directory holds no database:
/// it created an empty one and answered "no county named X", which sent the operator
/// looking for a county instead of at the mistyped `--data-dir` (QA s28a F12).
fn refuse_if_new(command: &Command, settings: &Settings) -> anyhow::Result<()> {
    let reads_existing = matches!(
        command,
        Command::Report(_)
            | Command::EnrollmentCodes(_)
            | Command::Policy(_)
            | Command::Household(_)
            | Command::User(UserCommand::Password(_))
    );
    match settings.embedded_file().filter(|f| !f.exists()) {
        Some(file) if reads_existing => anyhow::bail!(
            "no database in {} ({} does not exist): check --data-dir (or BANGFU_DATA_DIR); \
             nothing was created",
            settings.data_dir.display(),
            file.display()
        ),
        _ => Ok(()),
    }
}

/// Whether `command` keeps anything in the data directory: the server's photos, or the
/// embedded SQLite file. A command run against PostgreSQL that stores no file (a
/// migration, an import) does not create the directory.
fn uses_data_dir(command: &Command, settings: &Settings) -> bool {
    settings.embedded_file().is_some() || matches!(command, Command::Serve(_) | Command::Demo(_))
}

async fn household_cmd(db: &DatabaseConnection, cmd: HouseholdCommand) -> anyhow::Result<()> {
    use crate::services::exits;
    use bangfu_shared::api::{ExitCancel, HouseholdExit, HouseholdRejoin};
    let caller = Caller::system();
    let detail = match cmd {
        HouseholdCommand::Exit { id, from, reason } => {
            let exit = HouseholdExit {
                effective_from: from.unwrap_or_else(today),
                reason,
            };
            // The service names the API's field; here the helper typed `--from`.
            exits::exit(db, &caller, id, &exit)
                .await
                .map_err(|e| anyhow::anyhow!(e.to_string().replace("effective_from", "--from")))?
        }
        HouseholdCommand::CancelExit { id, reason } => {
            exits::cancel(db, &caller, id, &ExitCancel { reason }).await?
        }
        HouseholdCommand::CancelChange { id, role, reason } => {
            let cancel = bangfu_shared::api::PairingChangeCancel { role, reason };
            crate::services::pairing_changes::cancel(db, &caller, id, &cancel).await?
        }
        HouseholdCommand::Rejoin { id, reason } => {
            exits::rejoin(db, &caller, id, &HouseholdRejoin { reason }).await?
        }
        HouseholdCommand::Correct {
            id,
            head_name,
            phone,
            village_id,
            reason,
        } => {
            let correction = bangfu_shared::api::HouseholdCorrection {
                head_name,
                phone,
                village_id,
                reason,
            };
            crate::services::corrections::correct(db, &caller, id, &correction).await?
        }
    };
    durable(db).await?;
    println!("{}", serde_json::to_string_pretty(&detail)?);
    Ok(())
}

async fn report_cmd(db: &DatabaseConnection, cmd: ReportCommand) -> anyhow::Result<()> {
    use crate::report_files;
    use crate::services::reports;
    let system = Caller::system();
    let (bytes, out) = match cmd {
        ReportCommand::Attendance {
            second_helper,
            version,
            out,
        } => {
            let helper = crate::entities::helper::Entity::find()
                .filter(crate::entities::helper::Column::Phone.eq(second_helper.trim()))
                .one(db)
                .await?
                .with_context(|| format!("no helper with phone {second_helper}"))?;
            // The same editions the API prints: today's data unsigned, or a submitted
            // version frozen with its signature (QA s24a F6).
            let Some(v) = version else {
                let sheet = reports::sheet(db, &system, helper.id, out.quarter).await?;
                if out.format == "pdf" {
                    return write_out(crate::report_pdf::sheet_pdf(&sheet, None)?, out.out);
                }
                let bytes = report_files::render(&sheet, report_files::sheet_tables, &out.format)?;
                return write_out(bytes, out.out);
            };
            let frozen = reports::sheet_version(db, &system, helper.id, out.quarter, v).await?;
            let rows = frozen.signed_rows;
            if out.format == "pdf" {
                let bytes = crate::report_pdf::sheet_part_pdf(
                    &frozen.sheet,
                    Some(&frozen.signature),
                    rows,
                )?;
                return write_out(bytes, out.out);
            }
            (
                report_files::render(
                    &frozen.sheet,
                    |s| report_files::submitted_part_tables(s, rows),
                    &out.format,
                )?,
                out.out,
            )
        }
        ReportCommand::Town { town, county, out } => {
            let town = jurisdictions::town_by_name(db, county.as_deref(), &town).await?;
            let report = reports::town_report(db, &system, Some(town.id), out.quarter).await?;
            (
                report_files::render(&report, report_files::town_tables, &out.format)?,
                out.out,
            )
        }
        ReportCommand::County { county, out } => {
            let c = jurisdictions::find(db, JurisdictionLevel::County, &county, None)
                .await?
                .with_context(|| format!("no county named {county}"))?;
            let report = reports::county_report(db, &system, Some(c.id), out.quarter).await?;
            (
                report_files::render(&report, report_files::county_tables, &out.format)?,
                out.out,
            )
        }
    };
    write_out(bytes, out)
}

/// Before a command says its writes are done: they are on disk (SQLite commits at
/// `synchronous=NORMAL`; the server's requests share an fsync, a command has its own).
async fn durable(db: &DatabaseConnection) -> anyhow::Result<()> {
    db::sync_now(db)
        .await
        .context("making the writes durable")?;
    Ok(())
}

/// Writes a report or export: to `out`, private to its owner (names, phone numbers and
/// misses of households and helpers, often on a shared office computer; QA s29b J17),
/// or to standard output.
fn write_out(bytes: Vec<u8>, out: Option<PathBuf>) -> anyhow::Result<()> {
    match out {
        Some(path) => std::io::Write::write_all(&mut open_private(&path)?, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::Write::write_all(&mut std::io::stdout(), &bytes)?,
    }
    Ok(())
}

async fn serve(db: DatabaseConnection, settings: Settings, demo: bool) -> anyhow::Result<()> {
    if demo {
        let logins = demo::seed(&db, &settings).await?;
        println!(
            "演示县 demo is ready. Logins (password: {}):",
            demo::PASSWORD
        );
        for l in &logins {
            println!("  {:<14} {:<14} {}", l.username, l.role.code(), l.note);
        }
    }
    let listener = TcpListener::bind(settings.bind)
        .with_context(|| format!("cannot listen on {}", settings.bind))?;
    let addr = listener.local_addr()?;
    println!(
        "Bangfu server listening on http://{addr}/api/v1 (database: {})",
        crate::config::redact_url(&settings.effective_database_url())
    );
    crate::serve(AppState::new(db, settings)?, listener)?.await?;
    Ok(())
}

/// Creates a county with `preset` in force from 2018-01-01.
async fn create_county(
    db: &DatabaseConnection,
    name: &str,
    preset: PolicyPreset,
) -> anyhow::Result<i64> {
    let (id, _) = jurisdictions::ensure(db, JurisdictionLevel::County, name, None).await?;
    let from = NaiveDate::from_ymd_opt(2018, 1, 1).context("date")?;
    policy::set(db, &Caller::system(), id, None, from, &preset.policy()).await?;
    Ok(id)
}

/// Takes back a county this run created for an import that then failed: with its
/// policy, so a refused file (or a mistyped name) leaves no empty county behind.
async fn remove_new_county(db: &DatabaseConnection, id: i64) -> anyhow::Result<()> {
    use crate::entities::{jurisdiction, policy as policy_row};
    policy_row::Entity::delete_many()
        .filter(policy_row::Column::CountyId.eq(id))
        .exec(db)
        .await?;
    jurisdiction::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// The county an import goes to: an existing one, or (with `--create-county`, and not
/// on a dry run) a new one, `true` when created here. `None`: a dry run for a county
/// that would be created.
async fn import_county(
    db: &DatabaseConnection,
    args: &ImportArgs,
) -> anyhow::Result<Option<(i64, bool)>> {
    if let Some(c) = jurisdictions::find(db, JurisdictionLevel::County, &args.county, None).await? {
        if let Some(p) = args.preset {
            eprintln!(
                "warning: county {} exists; --preset {} is ignored and its policy left as it is \
                 (change it with `policy set`)",
                args.county,
                p.name()
            );
        }
        return Ok(Some((c.id, false)));
    }
    if !args.create_county {
        bail!(
            "no county named {}; check the name, or pass --create-county to create it",
            args.county
        );
    }
    if args.dry_run {
        return Ok(None);
    }
    let preset = args.preset.unwrap_or(PolicyPreset::Laizhou2018);
    Ok(Some((create_county(db, &args.county, preset).await?, true)))
}

fn print_ledger_errors(
    errors: &[bangfu_shared::ledger::RowError],
    file: &std::path::Path,
) -> anyhow::Error {
    for e in errors {
        eprintln!("{e}");
    }
    anyhow::anyhow!(
        "{} error(s) in {}; nothing was imported",
        errors.len(),
        file.display()
    )
}

async fn import(db: &DatabaseConnection, args: ImportArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let Some((county_id, created)) = import_county(db, &args).await? else {
        // A dry run for a county that does not exist yet: nothing is created, so only
        // the file itself can be checked.
        let parsed = ledger::read::parse(&bytes, &[])
            .map_err(|errors| print_ledger_errors(&errors, &args.file))?;
        println!(
            "dry run: county {} does not exist and would be created (policy {}); \
             the file reads correctly ({} row(s)), but the checks against stored data \
             (helpers' phones registered in another county, pairing limits) were \
             skipped and may still refuse it.",
            args.county,
            args.preset.unwrap_or(PolicyPreset::Laizhou2018).name(),
            parsed.rows.len()
        );
        return Ok(());
    };
    let opts = ImportOptions {
        dry_run: args.dry_run,
        county_id: Some(county_id),
        effective_from: args.effective_from.unwrap_or_else(today),
        filed_on: args.filed_on.unwrap_or_else(today),
        reason: args.reason,
        retroactive: args.retroactive,
    };
    let result = ledger::import(db, &Caller::system(), &bytes, &opts).await;
    // Said once the import's outcome is known (QA s22c F5: "created" was printed before
    // a failed import took the county back).
    if result.is_err() && created {
        remove_new_county(db, county_id).await?;
        eprintln!("county {} was not created: the import failed", args.county);
    } else if created {
        eprintln!(
            "created county {} with policy {}",
            args.county,
            args.preset.unwrap_or(PolicyPreset::Laizhou2018).name()
        );
    }
    match result {
        Ok(report) => {
            durable(db).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Err(crate::ApiError::InvalidLedger(errors)) => {
            Err(print_ledger_errors(&errors, &args.file))
        }
        Err(e) => Err(e.into()),
    }
}

/// Refuses a place the role has no use for (QA s22c F6): a town given with a role that
/// has none is a mistyped role, not a detail to drop, as it would make a county-wide (or
/// admin) account of what was meant for one town.
fn check_scope_args(role: Role, town: bool, county: bool) -> anyhow::Result<()> {
    if town && role != Role::TownOffice {
        bail!(
            "--town is for a town_office account; a {role} account has no town (did you mean --role town_office?)"
        );
    }
    if county && role == Role::Admin {
        bail!("--county is not for an admin account, which sees every county");
    }
    Ok(())
}

/// A password read from standard input, without its line end: passwords never go on
/// a command line, where other local users see them.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("reading the password from standard input")?;
    Ok(password.trim_end_matches(['\r', '\n']).to_string())
}

async fn set_password(
    db: &DatabaseConnection,
    settings: &Settings,
    args: UserPasswordArgs,
) -> anyhow::Result<()> {
    let password = password_from_stdin()?;
    let password = password.as_str();
    let acct = crate::services::auth::set_password(db, settings, &args.username, password).await?;
    durable(db).await?;
    println!(
        "password of {} ({}) set; its sessions ended",
        acct.username, acct.role
    );
    Ok(())
}

async fn add_user(
    db: &DatabaseConnection,
    settings: &Settings,
    args: UserAddArgs,
) -> anyhow::Result<()> {
    let password = password_from_stdin()?;
    let password = password.as_str();
    check_scope_args(args.role, args.town.is_some(), args.county.is_some())?;
    let scope = match (args.role, &args.town, &args.county) {
        (Role::TownOffice, Some(town), county) => Some(
            jurisdictions::town_by_name(db, county.as_deref(), town)
                .await?
                .id,
        ),
        (Role::CountyOffice, _, Some(county)) => Some(
            jurisdictions::find(db, JurisdictionLevel::County, county, None)
                .await?
                .with_context(|| format!("no county named {county}"))?
                .id,
        ),
        (Role::TownOffice, None, _) => bail!("a town_office account needs --town"),
        (Role::CountyOffice, _, None) => bail!("a county_office account needs --county"),
        _ => None,
    };
    let acct = crate::services::auth::add_user(
        db,
        settings,
        &Caller::system(),
        &args.username,
        args.role,
        scope,
        password,
    )
    .await?;
    durable(db).await?;
    println!(
        "added {} ({}) as account {}",
        acct.username, acct.role, acct.id
    );
    Ok(())
}

async fn codes(
    db: &DatabaseConnection,
    settings: &Settings,
    args: CodesArgs,
) -> anyhow::Result<()> {
    let town = jurisdictions::town_by_name(db, args.county.as_deref(), &args.town).await?;
    let within = enrollment::Within {
        town: Some(town.id),
        village: None,
        helper: None,
        reissue: args.reissue,
        reset: false,
    };
    // The sheet is written to a file beside `--out`, opened before any code changes:
    // a path that cannot be written would otherwise leave new codes no one has seen and
    // the old sheet void (QA s29a I3). It takes `--out`'s place once written, unless
    // no code was issued: a sheet already there (one handed out) is kept (QA s29c K9).
    let part = args.out.as_deref().map(part_file);
    let file = match (&part, &args.out) {
        (Some(part), Some(out)) => {
            Some(open_private(part).with_context(|| format!("cannot write {}", out.display()))?)
        }
        _ => None,
    };
    let issued = enrollment::issue(db, &Caller::system(), settings, within, None).await?;
    durable(db).await?;
    let csv = enrollment::to_csv(&issued, enrollment::Asker::CommandLine)?;
    let lost = |e: std::io::Error| {
        anyhow::anyhow!(
            "the codes were issued but their sheet could not be written ({e}): run again with --reissue to print them"
        )
    };
    match (file, &args.out, &part) {
        (Some(mut f), Some(path), Some(part)) => {
            std::io::Write::write_all(&mut f, &csv)
                .and_then(|()| f.sync_all())
                .map_err(lost)?;
            if issued.codes.is_empty() && path.exists() {
                let _ = std::fs::remove_file(part);
                eprintln!(
                    "no new code: {} was left as it was (it may be a sheet already handed out)",
                    path.display()
                );
            } else {
                std::fs::rename(part, path).map_err(lost)?;
                eprintln!(
                    "{} code(s) written to {}",
                    issued.codes.len(),
                    path.display()
                );
            }
        }
        _ => std::io::Write::write_all(&mut std::io::stdout(), &csv).map_err(lost)?,
    }
    if issued.held > 0 {
        eprintln!(
            "{} helper(s) holding a code in force were left out (--reissue reprints a lost sheet)",
            issued.held
        );
    }
    Ok(())
}

/// The file a sheet is written to before it takes `out`'s place: beside it, hidden.
fn part_file(out: &std::path::Path) -> PathBuf {
    let name = out
        .file_name()
        .map_or_else(|| "codes".into(), |n| n.to_string_lossy().into_owned());
    out.with_file_name(format!(".{name}.part"))
}

/// Opens (creates or truncates) a file only its owner can read (it holds secrets). The
/// mode given to `open` applies only when the file is created, so an existing file (a
/// code sheet written again, a file made by hand) is set to 0600 through the open
/// handle, before any secret is written into it.
fn open_private(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private", path.display()))?;
    }
    Ok(f)
}

async fn policy_cmd(db: &DatabaseConnection, cmd: PolicyCommand) -> anyhow::Result<()> {
    match cmd {
        PolicyCommand::Set(args) => {
            let county = jurisdictions::find(db, JurisdictionLevel::County, &args.county, None)
                .await?
                .with_context(|| format!("no county named {}", args.county))?;
            let town = match &args.town {
                Some(t) => Some(
                    jurisdictions::town_by_name(db, Some(&args.county), t)
                        .await?
                        .id,
                ),
                None => None,
            };
            let chosen: Policy = match (&args.preset, &args.file) {
                (Some(p), _) => p.policy(),
                (None, Some(f)) => {
                    let bytes =
                        std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
                    let value = serde_json::from_slice(&bytes)
                        .with_context(|| format!("{} is not JSON", f.display()))?;
                    policy::parse(value, "")
                        .with_context(|| format!("{} is not a policy", f.display()))?
                }
                (None, None) => bail!("give --preset or --file"),
            };
            let set =
                policy::set(db, &Caller::system(), county.id, town, args.from, &chosen).await?;
            durable(db).await?;
            println!("{}", serde_json::to_string_pretty(&set.version)?);
            for notice in &set.notices {
                eprintln!("注意：{notice}");
            }
        }
        PolicyCommand::Show(args) => {
            let county = jurisdictions::find(db, JurisdictionLevel::County, &args.county, None)
                .await?
                .with_context(|| format!("no county named {}", args.county))?;
            let town = match &args.town {
                Some(t) => Some(
                    jurisdictions::town_by_name(db, Some(&args.county), t)
                        .await?
                        .id,
                ),
                None => None,
            };
            let p = policy::effective(db, county.id, town, args.date.unwrap_or_else(today)).await?;
            println!("{}", serde_json::to_string_pretty(&p)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;

    #[test]
    fn an_error_says_each_cause_once() {
        let e = anyhow::Error::new(sea_orm::DbErr::Conn(sea_orm::RuntimeErr::Internal(
            "pool timed out".into(),
        )))
        .context("opening the database x");
        assert_eq!(
            said_once(&e),
            "opening the database x: Connection Error: pool timed out"
        );
    }

    #[test]
    fn our_own_database_texts_are_said_without_sea_orms_label() {
        let e = anyhow::Error::new(sea_orm::DbErr::Custom(
            "cannot create /x/y: Permission denied".into(),
        ))
        .context("opening the database sqlite:/x/y/z.db");
        assert_eq!(
            said_once(&e),
            "opening the database sqlite:/x/y/z.db: cannot create /x/y: Permission denied"
        );
    }

    #[test]
    fn an_account_is_given_only_the_places_its_role_has() {
        let e = check_scope_args(Role::CountyOffice, true, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--town is for a town_office account"), "{e}");
        assert!(check_scope_args(Role::Admin, true, false).is_err());
        assert!(check_scope_args(Role::Admin, false, true).is_err());
        assert!(check_scope_args(Role::TownOffice, true, true).is_ok());
        assert!(check_scope_args(Role::CountyOffice, false, true).is_ok());
        assert!(check_scope_args(Role::Admin, false, false).is_ok());
    }

    fn args(file: &std::path::Path, county: &str) -> ImportArgs {
        ImportArgs {
            file: file.to_path_buf(),
            county: county.to_string(),
            create_county: false,
            preset: None,
            dry_run: false,
            effective_from: None,
            filed_on: None,
            reason: None,
            retroactive: false,
        }
    }

    async fn county_count(t: &TestDb) -> usize {
        use crate::entities::jurisdiction;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        jurisdiction::Entity::find()
            .filter(jurisdiction::Column::Level.eq(JurisdictionLevel::County.code()))
            .all(&t.db)
            .await
            .map(|v| v.len())
            .unwrap_or(usize::MAX)
    }

    async fn new_counties_need_asking_for(t: &TestDb) {
        let file = t.dir().join("ledger.csv");
        std::fs::write(
            &file,
            include_str!("../../tests/fixtures/ledger-sample.csv"),
        )
        .unwrap_or_else(|e| panic!("{e}"));

        // A mistyped county is an error, not a new county.
        let err = import(&t.db, args(&file, "莱洲市")).await.unwrap_err();
        assert!(err.to_string().contains("--create-county"), "{err}");
        assert_eq!(county_count(t).await, 0);

        // A dry run creates nothing, even when asked to create the county.
        let mut dry = args(&file, "莱州市");
        dry.create_county = true;
        dry.dry_run = true;
        assert!(import(&t.db, dry).await.is_ok());
        assert_eq!(county_count(t).await, 0);

        // A refused file leaves no new county behind.
        let bad = t.dir().join("bad.csv");
        std::fs::write(&bad, "序号,贫困户姓名\n1,张三\n").unwrap_or_else(|e| panic!("{e}"));
        let mut refused = args(&bad, "莱州市");
        refused.create_county = true;
        assert!(import(&t.db, refused).await.is_err());
        assert_eq!(county_count(t).await, 0);

        let mut real = args(&file, "莱州市");
        real.create_county = true;
        real.preset = Some(PolicyPreset::Xigang2019);
        assert!(import(&t.db, real).await.is_ok());
        assert_eq!(county_count(t).await, 1);

        // An existing county is found without --create-county; a preset is ignored.
        let mut again = args(&file, "莱州市");
        again.preset = Some(PolicyPreset::Laizhou2018);
        assert!(import(&t.db, again).await.is_ok());
        assert_eq!(county_count(t).await, 1);
    }
    crate::db_test!(
        import_ledger_creates_a_county_only_when_asked_and_never_on_a_dry_run,
        new_counties_need_asking_for
    );

    async fn exit_and_rejoin(t: &TestDb) {
        use crate::entities::household;
        use sea_orm::EntityTrait;
        let file = t.dir().join("ledger.csv");
        std::fs::write(
            &file,
            include_str!("../../tests/fixtures/ledger-sample.csv"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut first = args(&file, "莱州市");
        first.create_county = true;
        assert!(import(&t.db, first).await.is_ok());
        let status = |id| async move {
            household::Entity::find_by_id(id)
                .one(&t.db)
                .await
                .ok()
                .flatten()
                .map(|h| h.status)
        };
        let id = household::Entity::find()
            .one(&t.db)
            .await
            .ok()
            .flatten()
            .map_or(0, |h| h.id);
        // A date far outside the allowed window names the option the user typed.
        let long_ago = HouseholdCommand::Exit {
            id,
            from: NaiveDate::from_ymd_opt(2001, 1, 1),
            reason: "脱贫退出".into(),
        };
        let err = household_cmd(&t.db, long_ago)
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("--from: 2001-01-01 is before today"),
            "{err}"
        );
        // Filed for next month by mistake, and withdrawn before its day.
        let before = status(id).await;
        let filed = HouseholdCommand::Exit {
            id,
            from: Some(today() + chrono::Duration::days(30)),
            reason: "脱贫退出".into(),
        };
        assert!(household_cmd(&t.db, filed).await.is_ok());
        assert_eq!(status(id).await.as_deref(), Some("exited"));
        let withdrawn = HouseholdCommand::CancelExit {
            id,
            reason: "误报".into(),
        };
        assert!(household_cmd(&t.db, withdrawn).await.is_ok());
        assert_eq!(status(id).await, before);
        let exit = HouseholdCommand::Exit {
            id,
            from: None,
            reason: "脱贫退出".into(),
        };
        assert!(household_cmd(&t.db, exit).await.is_ok());
        assert_eq!(status(id).await.as_deref(), Some("exited"));
        let rejoin = HouseholdCommand::Rejoin {
            id,
            reason: " ".into(),
        };
        let err = household_cmd(&t.db, rejoin).await.map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("reason"), "{err}");
        let rejoin = || HouseholdCommand::Rejoin {
            id,
            reason: "因病返贫".into(),
        };
        // On the exit's first day it is withdrawn instead, which gives the pairings back.
        let err = household_cmd(&t.db, rejoin())
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("household cancel-exit"), "{err}");
        t.exit_a_day_old(id).await;
        assert!(household_cmd(&t.db, rejoin()).await.is_ok());
        assert_eq!(status(id).await.as_deref(), Some("returned"));
        let correct = HouseholdCommand::Correct {
            id,
            head_name: Some("更正后".into()),
            phone: None,
            village_id: None,
            reason: "户主姓名录错".into(),
        };
        assert!(household_cmd(&t.db, correct).await.is_ok());
        let name = household::Entity::find_by_id(id)
            .one(&t.db)
            .await
            .ok()
            .flatten();
        assert_eq!(name.map(|h| h.head_name).as_deref(), Some("更正后"));
        // No change of helper is filed: the command says so, naming what to do.
        let withdraw = HouseholdCommand::CancelChange {
            id,
            role: Some(bangfu_shared::PairingRole::First),
            reason: "导错".into(),
        };
        let err = household_cmd(&t.db, withdraw)
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("no change of helper"), "{err}");
    }
    crate::db_test!(
        a_household_exits_cancels_and_rejoins_from_the_command_line,
        exit_and_rejoin
    );

    /// A code sheet written over an existing file that others could read ends up
    /// readable by its owner only, not just a newly created one.
    #[cfg(unix)]
    #[test]
    fn a_private_file_is_private_even_when_it_existed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("codes.csv");
        std::fs::write(&path, "old").unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("{e}"));
        open_private(&path)
            .and_then(|mut f| Ok(std::io::Write::write_all(&mut f, b"phone,code\n")?))
            .unwrap_or_else(|e| panic!("{e}"));
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")),
            b"phone,code\n"
        );
        let fresh = dir.path().join("new.csv");
        open_private(&fresh)
            .and_then(|mut f| Ok(std::io::Write::write_all(&mut f, b"x")?))
            .unwrap_or_else(|e| panic!("{e}"));
        let meta = std::fs::metadata(&fresh).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
}
