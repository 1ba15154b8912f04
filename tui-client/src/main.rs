//! `bangfu`: the terminal client. With no subcommand (or `tui`) it opens the terminal
//! interface; the other subcommands are headless, for scripts and embedded devices,
//! and print JSON with `--json`. Their report lines follow `--lang` (Chinese by
//! default), as the interface does.
//!
//! Standard output is written with [`outln!`], never `println!`: a reader that stops
//! early (`bangfu visit list | head -3`) closes the pipe, and the next line ends the
//! command quietly (exit code 0) instead of a panic.
#![deny(clippy::print_stdout, clippy::print_stderr)]

/// `println!` that hands back the write's error instead of panicking; `main` takes a
/// broken pipe for "the reader has all it wants".
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `eprintln!` that never panics: a progress or note line on standard error is not
/// worth failing the command for.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod sheet_command;

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bangfu_client::app::{App, Clock};
use bangfu_client::draft::{parse_delivery, parse_family_change, parse_local_time};
use bangfu_client::i18n::Lang;
use bangfu_client::store::VisitRow;
use bangfu_client::sync::{RetryPolicy, SyncPhase};
use bangfu_client::{Client, ClientError, DataDir, Limits, LoginParams, SyncOptions, SyncProgress};
use bangfu_shared::VisitKind;
use bangfu_shared::visit::{HouseholdSignature, PhotoRef, PolicyArea, VisitBody, utc_seconds};
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "bangfu",
    version,
    about = "帮扶 Bangfu: record paired-assistance visits offline"
)]
struct Cli {
    /// Where the store, the device key and photos live (default: the user's data directory/bangfu).
    #[arg(long, global = true, env = "BANGFU_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Interface language: zh (default) or en.
    #[arg(long, global = true, default_value = "zh")]
    lang: Lang,
    /// Print JSON (headless commands).
    #[arg(long, global = true)]
    json: bool,
    /// Largest photo file accepted, in MB.
    #[arg(long, global = true, default_value_t = 30)]
    max_photo_mb: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process; boxing buys nothing
enum Command {
    /// Log in once with network: make and register the device key, download households.
    Login {
        #[arg(long)]
        server: String,
        #[arg(long)]
        username: String,
        /// Read the password from standard input (the only way: never on the command line).
        #[arg(long)]
        password_stdin: bool,
        /// One-time code from the town office for a first login; the password read is then set.
        /// `-` reads it from standard input, on the line before the password, out of `ps`
        /// and the shell's history.
        #[arg(long)]
        enroll_code: Option<String>,
        /// How this device is named on the server.
        #[arg(long)]
        device_label: Option<String>,
    },
    /// Change this account's password (needs the network): the current password, then
    /// the new one, each on a line of standard input. Sessions on other devices end.
    Password {
        /// Read both from standard input (the only way: never on the command line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// The terminal interface (the default).
    Tui,
    /// List the households on this device with what is due.
    Households,
    /// Record, list, amend or void visits.
    #[command(subcommand)]
    Visit(VisitCommand),
    /// List unfinished drafts; `drafts sign ID …` finishes one, `drafts discard ID`
    /// throws one away (without the terminal interface).
    Drafts {
        #[command(subcommand)]
        action: Option<DraftCommand>,
    },
    /// The second helper's quarterly attendance sheet (附件3): show, remark, submit.
    #[command(subcommand)]
    Sheet(sheet_command::SheetCommand),
    /// Check the store, the record chain, signatures and images.
    Verify,
    /// Send records and photos to the server and receive updates; resumes where the
    /// last sync stopped. Exit code 3 when something is left unsynced.
    Sync {
        /// Send rejected and conflicting records again (after the town office fixed the ledger).
        #[arg(long)]
        retry_rejected: bool,
        /// Another server URL than the one logged in to (a proxy).
        #[arg(long)]
        server: Option<String>,
        /// Records per push (1–500); halved after a push fails in transit, regrown after four that get through.
        #[arg(long, default_value_t = 100)]
        batch_size: usize,
        /// Largest upload chunk, in KiB (a cut connection loses at most one).
        #[arg(long, default_value_t = 256)]
        chunk_kib: usize,
        /// Attempts per network operation before giving up (1: no retry); a backstop:
        /// `--give-up-after` ends the retries of an outage first.
        #[arg(long, default_value_t = 20)]
        attempts: u32,
        /// Seconds a network operation may keep failing (a server that does not answer)
        /// before the sync gives up; the next sync resumes.
        #[arg(long, default_value_t = 120)]
        give_up_after: u64,
    },
    /// Save phone-call records in a loop (crash-safety tests).
    #[command(hide = true)]
    DebugSaveLoop {
        #[arg(long)]
        household: i64,
        #[arg(long, default_value_t = 1000)]
        count: u32,
    },
}

#[derive(Subcommand)]
enum VisitCommand {
    /// Record a visit; signed at once when complete, else kept as a draft (exit code 2).
    New {
        #[arg(long)]
        household: i64,
        /// home (入户) or phone (电话).
        #[arg(long)]
        kind: VisitKind,
        #[command(flatten)]
        content: Content,
    },
    /// Visits as they stand now, newest first.
    List {
        #[arg(long)]
        household: Option<i64>,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Correct a visit: a new signed amendment record. Each option given replaces that
    /// field, except `--photo`, which adds to the visit's photos (as the TUI's form
    /// does) unless `--replace-photos` is given.
    Amend {
        id: Uuid,
        /// Why the visit is corrected (更正原因); required, as in the TUI.
        #[arg(long)]
        reason: Option<String>,
        /// The photos given replace the visit's, instead of being added to them.
        #[arg(long, requires = "photos")]
        replace_photos: bool,
        #[command(flatten)]
        content: Content,
    },
    /// Withdraw a visit with a signed void record.
    Void {
        id: Uuid,
        #[arg(long)]
        reason: String,
    },
}

/// What can be done with a draft headlessly: a device without a screen has no other
/// way to finish the visit `visit new` kept as a draft (exit code 2), or to drop it.
#[derive(Subcommand)]
enum DraftCommand {
    /// Sign a draft with the household's signature (or a witness's mark).
    Sign {
        id: Uuid,
        /// Why an amendment corrects the visit (更正原因), when the draft has none yet.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        signature: DraftSignature,
    },
    /// Throw a draft away: drafts are not records, nothing was signed or sent.
    Discard { id: Uuid },
}

/// The signature a headless `drafts sign` adds, as `visit new` takes it.
#[derive(Args)]
struct DraftSignature {
    /// An image of the household's signature (e.g. a photo of the signed card).
    #[arg(long, conflicts_with = "witness")]
    household_signature: Option<PathBuf>,
    /// A witness or the village notary signs for the household, with the image of
    /// their signature.
    #[arg(long, requires_all = ["witness_role", "witness_reason", "witness_signature"])]
    witness: Option<String>,
    #[arg(long)]
    witness_role: Option<String>,
    #[arg(long)]
    witness_reason: Option<String>,
    #[arg(long, requires = "witness")]
    witness_signature: Option<PathBuf>,
}

#[derive(Args, Default)]
struct Content {
    /// Date and time, UTC+8 (`2026-03-01 08:30`) or RFC 3339; default now.
    #[arg(long)]
    at: Option<String>,
    /// Policy explained: education, medical, housing, finance, social_security (or 教育…). Repeatable.
    #[arg(long = "policy")]
    policies: Vec<PolicyArea>,
    /// A problem found. Repeatable.
    #[arg(long = "problem")]
    problems: Vec<String>,
    /// 帮: help given. Repeatable.
    #[arg(long = "help-action")]
    help_actions: Vec<String>,
    /// 扶: support given. Repeatable.
    #[arg(long = "support")]
    support: Vec<String>,
    /// 送: ITEM:YUAN[:OCCASION] (occasion duanwu, zhongqiu, chongyang, yuandan, chunjie). Repeatable.
    #[arg(long = "deliver")]
    deliveries: Vec<String>,
    /// KIND:NAME (birth, move_in, marriage_in, death, move_out, marriage_out). Repeatable.
    #[arg(long = "family-change")]
    family_changes: Vec<String>,
    #[arg(long)]
    notes: Option<String>,
    /// A photo file (JPEG or PNG). Repeatable.
    #[arg(long = "photo")]
    photos: Vec<PathBuf>,
    /// An image of the household's signature (e.g. a photo of the signed card).
    #[arg(long, conflicts_with = "witness")]
    household_signature: Option<PathBuf>,
    /// A witness or the village notary signs for the household (a new home visit needs
    /// `--witness-signature` too).
    #[arg(long, requires_all = ["witness_role", "witness_reason"])]
    witness: Option<String>,
    #[arg(long)]
    witness_role: Option<String>,
    #[arg(long)]
    witness_reason: Option<String>,
    /// An image of the witness's signature (PNG or JPEG), stored as the witness's mark.
    /// Amending without it keeps the mark the same witness left; amending with it alone
    /// (no `--witness`) adds the mark of the visit's own witness, their name, role and
    /// reason kept.
    #[arg(long)]
    witness_signature: Option<PathBuf>,
}

/// `bangfu drafts`: the unfinished drafts, with what each still lacks.
async fn drafts_list(client: &Client, lang: Lang, json: bool) -> anyhow::Result<()> {
    let drafts = client.drafts().await?;
    let now = Utc::now();
    // A draft of a household whose pairing ended signs only if dated within it.
    let ended = client.ended_households_at(now).await?;
    let blocker = |d: &bangfu_client::draft::VisitDraft| {
        let household = ended.iter().find(|h| h.detail.summary.id == d.household_id);
        d.blocker(household, now)
    };
    if json {
        let mut out = Vec::new();
        for d in &drafts {
            // Another visit may have taken the draft's photo or signature since.
            let reused = client.draft_reused_images(d).await?;
            out.push(json!({"draft": d, "missing": blocker(d).map(|e| e.to_string()), "reused_images": reused}));
        }
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        for d in drafts {
            let head = client
                .household(d.household_id)
                .await
                .map(|h| h.summary.head_name)
                .unwrap_or_default();
            let kind = if d.amends.is_some() {
                format!("{}{}", lang.kind(d.kind), lang.aside(lang.texts().amending))
            } else {
                lang.kind(d.kind).to_string()
            };
            outln!(
                "{}  {:>6} {head}  {}  {}  {}",
                d.id,
                d.household_id,
                kind,
                d.at,
                blocker(&d)
                    .map(|e| lang.error(&e))
                    .unwrap_or_else(|| lang.cli_draft_ready().into())
            )?;
            for r in client.draft_reused_images(&d).await? {
                outln!("  {}", lang.reused(&r))?;
            }
        }
    }
    Ok(())
}

/// The draft `id`, or the store's "not found" for it.
async fn draft_or_not_found(
    client: &Client,
    id: Uuid,
) -> anyhow::Result<bangfu_client::draft::VisitDraft> {
    client.store().draft(id).await?.ok_or_else(|| {
        ClientError::NotFound {
            what: "draft",
            id: id.to_string(),
        }
        .into()
    })
}

/// `bangfu drafts sign`: adds the household's signature (or a witness's mark) and the
/// amendment's reason to a draft and signs it, with the checks the TUI's Ctrl+S makes
/// (`Client::complete_draft`). When it cannot be signed, the stored draft is left as
/// it was and the reason is said.
async fn draft_sign(
    client: &Client,
    id: Uuid,
    reason: Option<String>,
    signature: DraftSignature,
    lang: Lang,
    json: bool,
) -> anyhow::Result<()> {
    use bangfu_client::draft::SignatureMethod;
    let mut draft = draft_or_not_found(client, id).await?;
    if let Some(reason) = reason {
        draft.reason = reason;
    }
    if let Some(file) = &signature.household_signature {
        draft.signature_method = SignatureMethod::PaperCard;
        draft.signature_image = Some(client.attach_card_photo(file).await?);
        draft.pad = None;
    }
    if let (Some(name), Some(role), Some(why), Some(file)) = (
        signature.witness,
        signature.witness_role,
        signature.witness_reason,
        &signature.witness_signature,
    ) {
        draft.signature_method = SignatureMethod::Witness;
        draft.witness_name = name;
        draft.witness_role = role;
        draft.witness_reason = why;
        draft.signature_image = Some(client.attach_card_photo(file).await?);
        draft.pad = None;
    }
    // The server counts a photo for one visit only: say so before signing, as the TUI.
    for r in client.draft_reused_images(&draft).await? {
        errln!("{}", lang.reused(&r));
    }
    if draft.amends.is_none()
        && let Some(day) = draft.visit_day()
    {
        warn_closed_quarter(day, lang);
    }
    if let Ok(body) = draft.to_body() {
        warn_short_of_evidence(client, &body, lang).await?;
    }
    let r = client.complete_draft(&draft, Utc::now()).await?;
    print_signed(&r, lang, json)
}

/// Says a record was signed and kept locally: JSON for scripts, else one line.
fn print_signed(
    r: &bangfu_shared::visit::SignedRecord,
    lang: Lang,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        outln!(
            "{}",
            json!({"status": "signed", "sync_state": "local", "record": r})
        )?;
    } else {
        outln!(
            "{}",
            lang.cli_signed(r.record.record_type, r.record.id, r.record.seq)
        )?;
    }
    Ok(())
}

/// The reason an amendment gives, refused when missing or blank: the town office reads
/// it beside the changed visit, and the TUI signs no amendment without it. Checked in
/// the command (clap's own "required" would be English and exit as a usage error), and
/// before anything is loaded, so nothing is stored.
fn amendment_reason(reason: Option<String>) -> Result<String, ClientError> {
    match reason.map(|r| r.trim().to_string()) {
        Some(r) if !r.is_empty() => Ok(r),
        _ => Err(ClientError::AmendmentReasonMissing),
    }
}

/// Exit code of a command line that does not parse (EX_USAGE): apart from 1 (an error),
/// 2 (kept as a draft) and 3 (something left after a sync), which scripts act on.
const EXIT_USAGE: u8 = 64;

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let lang = cli.lang;
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader of standard output went away (`| head`): it has what it wanted.
        Err(e) if is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            errln!("{}", error_text(&e, lang));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Help and version go to standard output (exit 0); a command line that does not parse
/// is said by clap, after a Chinese lead unless `--lang en` was given, with
/// [`EXIT_USAGE`] (not clap's 2, which says "kept as a draft" here).
fn usage_error(e: &clap::Error) -> std::process::ExitCode {
    if !e.use_stderr() {
        let _ = e.print();
        return std::process::ExitCode::SUCCESS;
    }
    // Raw arguments (a file name need not be UTF-8): `--lang X` or `--lang=X`.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let named = args
        .windows(2)
        .filter(|w| w[0] == "--lang")
        .map(|w| w[1].as_str())
        .chain(args.iter().filter_map(|a| a.strip_prefix("--lang=")))
        .last();
    let english = named.and_then(|l| l.parse::<Lang>().ok()) == Some(Lang::En);
    if !english {
        errln!("命令行有误（bangfu --help 查看用法）：");
    }
    let _ = e.print();
    std::process::ExitCode::from(EXIT_USAGE)
}

/// Whether writing standard output failed because its reader closed the pipe.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// An error for the helper: a core error in `lang`'s words (Chinese reasons, times in
/// China time), with its English text on the line below as a detail for whoever the
/// helper calls; other errors (already in `lang`, or the system's) as their chain.
fn error_text(e: &anyhow::Error, lang: Lang) -> String {
    let core = e.chain().find_map(|c| c.downcast_ref::<ClientError>());
    match core {
        Some(ce) => {
            let said = lang.error(ce);
            let original = format!("{e:#}");
            if lang == Lang::En || said == original {
                format!("bangfu: {said}")
            } else {
                format!("bangfu: {said}\n  {}", lang.cli_error_detail(&original))
            }
        }
        // The message chain only: a helper has no use for a backtrace.
        None => format!("bangfu: {e:#}"),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let data = match &cli.data_dir {
        Some(d) => DataDir::new(d),
        None => DataDir::default_location()?,
    };
    let limits = Limits {
        max_photo_bytes: cli.max_photo_mb.saturating_mul(1024 * 1024),
        ..Limits::default()
    };
    let rt = Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    );
    let client = rt.block_on(Client::open(data, limits))?;
    match cli.command {
        None | Some(Command::Tui) => {
            let mut app = App::new(client, rt.clone(), cli.lang, Clock::System, (80, 24));
            bangfu_client::tui::run(&mut app)?;
            Ok(())
        }
        Some(command) => rt.block_on(headless(&client, command, cli.lang, cli.json)),
    }
}

async fn headless(client: &Client, command: Command, lang: Lang, json: bool) -> anyhow::Result<()> {
    match command {
        Command::Tui => Ok(()),
        Command::Password { password_stdin } => {
            if !password_stdin {
                bail!("{}", lang.cli_password_stdin());
            }
            let mut lines = std::io::stdin().lock().lines();
            let mut next = |what: &str| -> anyhow::Result<String> {
                let line = lines.next().transpose()?.unwrap_or_default();
                let line = line.trim_end_matches('\r').to_string();
                if line.is_empty() {
                    bail!("{}", lang.cli_password_line_missing(what));
                }
                Ok(line)
            };
            let current = next("current")?;
            let new_password = next("new")?;
            if new_password == current {
                bail!("{}", lang.cli_password_unchanged());
            }
            client.change_password(&current, &new_password).await?;
            outln!(
                "{}",
                match lang {
                    Lang::Zh => "密码已修改：本账号在其他设备上的登录已退出",
                    Lang::En => "password changed: this account's sessions on other devices ended",
                }
            )?;
            Ok(())
        }
        Command::Login {
            server,
            username,
            password_stdin,
            enroll_code,
            device_label,
        } => {
            if !password_stdin {
                bail!("{}", lang.cli_password_stdin());
            }
            // The code first when it comes on standard input too (QA s32b V8).
            let enroll_code = match enroll_code.as_deref() {
                Some("-") => {
                    let mut code = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut code)
                        .context("reading the enrollment code from standard input")?;
                    let code = code.trim().to_string();
                    if code.is_empty() {
                        bail!("{}", lang.cli_enroll_code_line_missing());
                    }
                    Some(code)
                }
                _ => enroll_code,
            };
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            // Sent, an empty line would count as a wrong try towards the lock-out (QA
            // s30a L4).
            if password.trim().is_empty() {
                bail!("{}", lang.cli_password_line_missing("login"));
            }
            let params = LoginParams {
                // The address the server prints (`…/api/v1/`) works as typed; saved bare.
                server: bangfu_client::client::normalize_server(&server),
                username,
                password,
                enroll_code,
                device_label: device_label.unwrap_or_else(bangfu_client::client::device_label),
            };
            if bangfu_client::api::ApiClient::new(&params.server)
                .is_ok_and(|api| api.sends_in_clear())
            {
                errln!("{}", lang.cli_sends_in_clear(&params.server));
            }
            let s = client.login(&params).await?;
            if json {
                outln!(
                    "{}",
                    json!({"device_id": s.device_id, "key_created": s.key_created, "households": s.households, "clock_offset_secs": s.clock_offset_secs})
                )?;
            } else {
                outln!(
                    "{}",
                    lang.cli_logged_in(s.device_id, s.key_created, s.households)
                )?;
            }
            if let Some(offset) = s.clock_offset_secs {
                errln!("⚠ {}", lang.clock_off(offset));
            }
            Ok(())
        }
        Command::Households => households(client, lang, json).await,
        Command::Visit(VisitCommand::New {
            household,
            kind,
            content,
        }) => {
            warn_clock(client, lang).await;
            let started = std::time::SystemTime::now();
            let done = async {
                let mut body = VisitBody::new(kind, Utc::now());
                apply(client, &mut body, content, Photos::New, lang).await?;
                finish(client, household, body, None, lang, json).await
            }
            .await;
            leave_no_strays(client, started, done, lang).await
        }
        Command::Visit(VisitCommand::Amend { .. }) => {
            let started = std::time::SystemTime::now();
            let done = amend(client, command, lang, json).await;
            leave_no_strays(client, started, done, lang).await
        }
        Command::Visit(VisitCommand::Void { id, reason }) => {
            let r = client.void_visit(id, &reason, Utc::now()).await?;
            if json {
                outln!("{}", json!({"status": "signed", "record": r}))?;
            } else {
                outln!(
                    "{}",
                    lang.cli_voided(r.record.target_id.unwrap_or(id), r.record.id)
                )?;
            }
            Ok(())
        }
        Command::Visit(VisitCommand::List { household, limit }) => {
            visit_list(client, household, limit, lang, json).await
        }
        Command::Drafts { action: None } => drafts_list(client, lang, json).await,
        Command::Drafts {
            action: Some(DraftCommand::Discard { id }),
        } => {
            draft_or_not_found(client, id).await?;
            client.store().discard_draft(id).await?;
            if json {
                outln!("{}", json!({"status": "discarded", "draft_id": id}))?;
            } else {
                outln!("{}", lang.cli_draft_discarded(id))?;
            }
            Ok(())
        }
        Command::Drafts {
            action:
                Some(DraftCommand::Sign {
                    id,
                    reason,
                    signature,
                }),
        } => draft_sign(client, id, reason, signature, lang, json).await,
        Command::Sheet(command) => sheet_command::run(client, command, lang, json).await,
        Command::Verify => {
            let report = client.verify().await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                outln!("{}", lang.cli_verify(&report))?;
                for p in &report.problems {
                    outln!("  {}", lang.problem(p))?;
                }
            }
            if !report.ok() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Sync {
            retry_rejected,
            server,
            batch_size,
            chunk_kib,
            attempts,
            give_up_after,
        } => {
            let options = SyncOptions {
                server: server.map(|s| bangfu_client::client::normalize_server(&s)),
                batch_size,
                chunk_bytes: chunk_kib.saturating_mul(1024),
                retry_rejected,
                retry: RetryPolicy {
                    max_attempts: attempts.max(1),
                    ..RetryPolicy::default()
                },
                give_up_after: std::time::Duration::from_secs(give_up_after),
                ..SyncOptions::default()
            };
            sync(client, &options, lang, json).await
        }
        Command::DebugSaveLoop { household, count } => {
            let mut out = std::io::stdout().lock();
            for i in 0..count {
                let mut body = VisitBody::new(VisitKind::Phone, Utc::now());
                body.problems = vec![format!("crash-test {i}")];
                let r = client
                    .record_visit(household, body, None, None, Utc::now())
                    .await?;
                writeln!(out, "saved {}", r.record.seq)?;
                out.flush()?;
            }
            Ok(())
        }
    }
}

/// `bangfu visit amend`: signs a correction of a visit with the flags given.
async fn amend(client: &Client, command: Command, lang: Lang, json: bool) -> anyhow::Result<()> {
    let Command::Visit(VisitCommand::Amend {
        id,
        reason,
        replace_photos,
        content,
    }) = command
    else {
        bail!("not an amendment");
    };
    warn_clock(client, lang).await;
    let reason = amendment_reason(reason)?;
    let original = client.original_visit(id).await?;
    let mut body = original
        .current
        .signed
        .record
        .visit
        .clone()
        .context("the visit has no content")?;
    let before = body.clone();
    let mode = if replace_photos {
        Photos::Replace
    } else {
        Photos::Add
    };
    apply(client, &mut body, content, mode, lang).await?;
    // A visit flagged for the device's clock is set right by signing it again
    // with a right clock, as it stands (QA s26d F6).
    let re_sign = original.flags.iter().any(|f| {
        matches!(
            f,
            bangfu_client::flags::Flag::ClockAhead | bangfu_client::flags::Flag::ClockBehind
        )
    });
    if body == before && !re_sign {
        bail!("{}", lang.cli_amend_unchanged());
    }
    if body.photos.len() != before.photos.len() {
        errln!(
            "{}",
            lang.cli_photos_changed(before.photos.len(), body.photos.len())
        );
    }
    finish(
        client,
        original.household_id,
        body,
        Some((original.visit_id, Some(reason))),
        lang,
        json,
    )
    .await
}

/// Passes on a visit command's outcome; when it failed, first removes the images it
/// stored that nothing uses (QA s33a S6, s33d S2). A failure to remove them is said
/// after, on its own line: the command's own error is what the helper needs.
async fn leave_no_strays(
    client: &Client,
    started: std::time::SystemTime,
    done: anyhow::Result<()>,
    lang: Lang,
) -> anyhow::Result<()> {
    if done.is_err()
        && let Err(e) = client.forget_unused_images_since(started).await
    {
        errln!("⚠ {}", lang.error(&e));
    }
    done
}

/// Fills `body` from the flags; for an amendment (`fresh = false`) only given flags replace.
/// How [`apply`] treats the visit's fields: a new visit takes what is given; an
/// amendment replaces the fields given, its photos added to or replaced.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Photos {
    New,
    Add,
    Replace,
}

async fn apply(
    client: &Client,
    body: &mut VisitBody,
    c: Content,
    mode: Photos,
    lang: Lang,
) -> anyhow::Result<()> {
    let fresh = mode == Photos::New;
    // Before anything is attached: a refused command leaves no file behind.
    let witness_mark = witness_mark(body, &c, fresh, lang)?;
    if let Some(at) = &c.at {
        body.at = bangfu_shared::visit::truncate_to_seconds(parse_local_time(at)?);
        // A time in the future is refused before the photos are stored (QA s33a S4: a
        // refused visit left 11 MB of them on the phone).
        bangfu_client::client::check_not_future(body.at, chrono::Utc::now())?;
    }
    macro_rules! replace {
        ($field:ident, $value:expr) => {
            if fresh || !c.$field.is_empty() {
                body.$field = $value;
            }
        };
    }
    // A policy given twice on the command line is the same policy explained once.
    let mut policies = c.policies.clone();
    let mut seen = Vec::new();
    policies.retain(|p| {
        let first = !seen.contains(p);
        seen.push(*p);
        first
    });
    replace!(policies, policies);
    // A blank entry is none: `--problem ""` (or `--deliver ""`…) on an amendment
    // clears the list.
    let entries = |given: &[String]| -> Vec<String> {
        given
            .iter()
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect()
    };
    replace!(problems, entries(&c.problems));
    if fresh || !c.help_actions.is_empty() {
        body.help = entries(&c.help_actions);
    }
    replace!(support, entries(&c.support));
    replace!(
        deliveries,
        entries(&c.deliveries)
            .iter()
            .map(|d| parse_delivery(d))
            .collect::<Result<_, _>>()?
    );
    replace!(
        family_changes,
        entries(&c.family_changes)
            .iter()
            .map(|d| parse_family_change(d))
            .collect::<Result<_, _>>()?
    );
    if let Some(n) = &c.notes {
        body.notes = Some(n.clone()).filter(|n| !n.trim().is_empty());
    }
    if fresh || !c.photos.is_empty() {
        let mut photos = if mode == Photos::Add {
            body.photos.clone()
        } else {
            Vec::new()
        };
        for p in &c.photos {
            let photo = client.attach_photo(p).await?;
            // The same picture given twice (`--photo a.jpg --photo a.jpg`) is one photo.
            if !photos.iter().any(|x: &PhotoRef| x.sha256 == photo.sha256) {
                photos.push(photo);
            }
        }
        body.photos = photos;
    }
    if let Some(file) = &c.household_signature {
        body.household_signature = Some(HouseholdSignature::PaperCard {
            image_sha256: client.attach_card_photo(file).await?,
        });
    }
    if let (None, Some(file)) = (&c.witness, &c.witness_signature) {
        // Checked by `witness_mark`: an amendment of a visit with a witness.
        if let Some(HouseholdSignature::Witness { image_sha256, .. }) =
            body.household_signature.as_mut()
        {
            *image_sha256 = Some(client.attach_card_photo(file).await?);
        }
    }
    if let (Some(name), Some(role), Some(reason)) = (c.witness, c.witness_role, c.witness_reason) {
        // The witness's mark goes through the same import as the household's signature
        // image (`--household-signature`): checked, upright, downscaled, stored.
        let image_sha256 = match (&c.witness_signature, witness_mark) {
            (Some(file), _) => Some(client.attach_card_photo(file).await?),
            (None, kept) => kept,
        };
        body.household_signature = Some(HouseholdSignature::Witness {
            name,
            role,
            reason,
            image_sha256,
        });
    }
    if body.kind == VisitKind::Phone {
        body.household_signature = None;
    }
    Ok(())
}

/// Checks `--witness` against `--witness-signature` before anything is attached, and
/// returns the mark an amendment keeps when no new file is given. A new home visit's
/// witness must give the file: a name typed by the helper is no mark of anyone. An
/// amendment keeps the mark of the same witness (name and role:
/// [`bangfu_client::draft::same_signer`], the rule the TUI form applies), and an unmarked witness of a
/// visit recorded before the rule only when it is left exactly as it was (as the TUI
/// does); another witness signs anew.
fn witness_mark(
    body: &VisitBody,
    c: &Content,
    fresh: bool,
    lang: Lang,
) -> anyhow::Result<Option<String>> {
    let Some(name) = &c.witness else {
        // The mark alone: the visit's own witness signs (QA s28a F9).
        let own_witness = matches!(
            body.household_signature,
            Some(HouseholdSignature::Witness { .. })
        );
        if c.witness_signature.is_some() && (fresh || !own_witness) {
            bail!("{}", lang.cli_witness_signature_alone(fresh));
        }
        return Ok(None);
    };
    if c.witness_signature.is_some() || body.kind != VisitKind::Home {
        return Ok(None);
    }
    if fresh {
        bail!("{}", lang.cli_witness_mark_missing(false));
    }
    let named = HouseholdSignature::Witness {
        name: name.clone(),
        role: c.witness_role.clone().unwrap_or_default(),
        reason: c.witness_reason.clone().unwrap_or_default(),
        image_sha256: None,
    };
    match &body.household_signature {
        Some(
            old @ HouseholdSignature::Witness {
                image_sha256: Some(mark),
                ..
            },
        ) if bangfu_client::draft::same_signer(old, &named) => Ok(Some(mark.clone())),
        Some(
            old @ HouseholdSignature::Witness {
                image_sha256: None, ..
            },
        ) if *old == named => Ok(None),
        _ => bail!("{}", lang.cli_witness_mark_missing(true)),
    }
}

/// Says (on stderr, as the reuse warnings) that a new visit dated `day` falls in a quarter
/// that has ended: a late entry is allowed, a mistyped year or month is not meant.
fn warn_closed_quarter(day: chrono::NaiveDate, lang: Lang) {
    if let Some(q) = bangfu_client::client::closed_quarter(day, Utc::now()) {
        errln!("{}", lang.closed_quarter(day, q));
    }
}

/// Says before signing that a home visit is short of the photos or signature the
/// policy in force on its date asks (the server will not count it, and says so only in
/// its reports), as the TUI form does.
async fn warn_short_of_evidence(
    client: &Client,
    body: &VisitBody,
    lang: Lang,
) -> anyhow::Result<()> {
    let history = client.store().evidence_history().await?;
    let shortfall = bangfu_client::client::evidence_shortfall(&history, body);
    if !shortfall.is_empty() {
        errln!("{}", lang.shortfall_text(&shortfall));
    }
    Ok(())
}

/// Signs the visit, or keeps it as a draft (exit code 2) when the household has not signed.
async fn finish(
    client: &Client,
    household: i64,
    body: VisitBody,
    amends: Option<(Uuid, Option<String>)>,
    lang: Lang,
    json: bool,
) -> anyhow::Result<()> {
    // The server counts a photo for one visit only, and a signature is made at each
    // visit: say so before signing, as the TUI does.
    let except = amends.as_ref().map(|(id, _)| *id);
    let signature = body
        .household_signature
        .as_ref()
        .and_then(|s| s.image_sha256());
    for r in client
        .reused_images(&body.photos, signature, except)
        .await?
    {
        errln!("{}", lang.reused(&r));
    }
    if amends.is_none() {
        warn_closed_quarter(bangfu_client::client::today(body.at), lang);
    }
    // The server does not count a home visit short of the county's evidence, and says
    // so only in its reports: say it before signing, as the TUI form does. A home visit
    // without the household's signature is kept as a draft, not signed: no warning
    // about a visit that does not exist (QA s22d F2).
    let signs = body.kind != bangfu_shared::VisitKind::Home || body.household_signature.is_some();
    if signs {
        warn_short_of_evidence(client, &body, lang).await?;
    }
    match client
        .record_visit(household, body.clone(), amends.clone(), None, Utc::now())
        .await
    {
        Ok(r) => print_signed(&r, lang, json),
        Err(ClientError::Visit(bangfu_shared::visit::VisitError::MissingHouseholdSignature)) => {
            let mut draft = match &amends {
                Some((id, _)) => bangfu_client::draft::VisitDraft::amending(*id, household, &body),
                None => bangfu_client::draft::VisitDraft::amending(Uuid::nil(), household, &body),
            };
            if amends.is_none() {
                draft.amends = None;
            }
            if let Some((_, Some(reason))) = &amends {
                draft.reason = reason.clone();
            }
            client.save_draft(&draft).await?;
            let missing =
                ClientError::from(bangfu_shared::visit::VisitError::MissingHouseholdSignature);
            if json {
                outln!(
                    "{}",
                    json!({"status": "draft", "draft_id": draft.id, "missing": missing.to_string()})
                )?;
            } else {
                errln!(
                    "{}",
                    lang.cli_kept_as_draft(draft.id, &lang.error(&missing))
                );
            }
            std::process::exit(2);
        }
        Err(e) => Err(e.into()),
    }
}

/// A household line's marks in `bangfu households`: overdue with the window missed
/// (`!逾期 1–2月`), a coming exit (`将于12月20日退出`), the visits returned for
/// correction (`✎待更正`), each after two spaces.
fn household_marks_cli(
    h: &bangfu_client::HouseholdOverview,
    lang: Lang,
    today: chrono::NaiveDate,
) -> String {
    let mut out = String::new();
    if h.overdue() {
        out.push_str("  ");
        out.push_str(&lang.overdue_mark(h.first_missed(), today, true));
    }
    if let Some(end) = h.coming_end(today) {
        out.push_str("  ");
        out.push_str(
            &lang
                .ending_marks(end, today)
                .into_iter()
                .next()
                .unwrap_or_default(),
        );
    }
    if h.to_correct > 0 {
        out.push_str("  ");
        out.push_str(&lang.to_correct_mark(h.to_correct));
    }
    if h.not_counted > 0 {
        out.push_str("  ");
        out.push_str(&lang.not_counted_mark(h.not_counted));
    }
    out
}

async fn households(client: &Client, lang: Lang, json: bool) -> anyhow::Result<()> {
    if client.ensure_not_revoked().await.is_err() {
        errln!(
            "⚠ {}",
            lang.error(&bangfu_client::ClientError::DeviceRevoked)
        );
    }
    let now = Utc::now();
    let list = client.households(now).await?;
    if json {
        let mut out: Vec<_> = list
            .iter()
            .map(|h| {
                let s = &h.detail.summary;
                json!({
                    "id": s.id,
                    "head_name": s.head_name,
                    "village": s.village.name,
                    "ended": false,
                    // The first day out of pairing of an exit filed (null when none
                    // stands): nothing is due from that day.
                    "exit_on": s.exit_on,
                    "role": h.role,
                    // Not paired today: the first day of a pairing that begins later
                    // (null when paired, or when none is coming).
                    "pairing_from": h.pairing_from,
                    "last_home_visit": h.last_home.map(|t| utc_seconds::format(&t)),
                    "last_phone_call": h.last_phone.map(|t| utc_seconds::format(&t)),
                    "next_due": h.next_due().map(|(kind, date)| json!({"kind": kind, "date": date})),
                    "overdue": h.overdue(),
                    "due": h.due,
                    "missed": h.missed,
                    "to_correct": h.to_correct,
                    "not_counted": h.not_counted,
                })
            })
            .collect();
        // Then the households whose pairing ended: kept for their history and drafts
        // dated within the pairing, nothing due.
        let history = client.store().evidence_history().await?;
        let until = now + bangfu_client::client::FUTURE_TOLERANCE;
        let contacts = client.store().last_contacts(until, &history).await?;
        for h in client.ended_households_at(now).await? {
            let s = &h.detail.summary;
            let last = |kind: VisitKind| {
                contacts
                    .get(&s.id)
                    .and_then(|m| m.get(kind.code()))
                    .map(utc_seconds::format)
            };
            out.push(json!({
                "id": s.id,
                "head_name": s.head_name,
                "village": s.village.name,
                "ended": true,
                "exit_on": s.exit_on,
                // The real end (the first day no longer paired) when the device has
                // it, else null and `unpaired_since` is the day the device noticed.
                "pairing_ended_on": h.ended_on,
                "unpaired_since": h.unpaired_since,
                "pairing_periods": h.periods.iter().map(|(from, to)| json!({"from": from, "to": to})).collect::<Vec<_>>(),
                "role": null,
                "pairing_from": null,
                "last_home_visit": last(VisitKind::Home),
                "last_phone_call": last(VisitKind::Phone),
                "next_due": null,
                "overdue": false,
                "due": [],
                "missed": [],
                "to_correct": 0,
                // Visits that do not count (a visit signed offline after the pairing
                // ended, among others): what the helper may have to amend (QA s23a F13).
                "not_counted": h.not_counted,
            }));
        }
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        let t = lang.texts();
        // Until the first sync the last visits are this device's only.
        let pulled = client.history_pulled().await?;
        if !pulled {
            outln!("{}", lang.cli_history_not_pulled())?;
        }
        let never = if pulled { t.never } else { t.not_pulled_short };
        for h in list {
            let s = &h.detail.summary;
            let fmt = |at: Option<chrono::DateTime<Utc>>| {
                at.map(bangfu_client::draft::format_local)
                    .unwrap_or_else(|| never.into())
            };
            let next = match (h.role, h.next_due()) {
                (None, _) => match h.pairing_from {
                    Some(day) => lang.pairing_from(day, bangfu_client::client::today(now), false),
                    None => t.not_paired.to_string(),
                },
                (Some(_), Some((k, d))) => format!("{} {d}", lang.kind(k)),
                (Some(_), None) if h.due.is_empty() => t.nothing_due.to_string(),
                (Some(_), None) => t.done.to_string(),
            };
            outln!(
                "{:>6}  {}  {}  {} {}  {} {}  {} {}{}",
                s.id,
                s.head_name,
                s.village.name,
                t.last_home,
                fmt(h.last_home),
                t.last_phone,
                fmt(h.last_phone),
                t.next_due,
                next,
                household_marks_cli(&h, lang, bangfu_client::client::today(now)),
            )?;
        }
        let ended = client.ended_households_at(now).await?;
        if !ended.is_empty() {
            outln!("{}{}", t.pairing_ended, t.colon.trim_end())?;
            for h in ended {
                let s = &h.detail.summary;
                let end = h.shown_end(lang);
                let marks = match h.not_counted {
                    0 => String::new(),
                    n => format!("  {}", lang.not_counted_mark(n)),
                };
                // A pairing that never began has no period to show (QA s32d X7).
                let when = if h.periods.is_empty() {
                    end
                } else {
                    format!("{}{}", lang.periods(&h.periods), lang.aside(&end))
                };
                outln!(
                    "{:>6}  {}  {}  {when}{marks}",
                    s.id,
                    s.head_name,
                    s.village.name,
                )?;
            }
        }
    }
    Ok(())
}

fn visit_json(client: &Client, v: &VisitRow) -> serde_json::Value {
    let body = v.current.signed.record.visit.as_ref();
    let photo_paths: Vec<_> = body
        .map(|b| {
            b.photos
                .iter()
                .map(|p| json!({"sha256": p.sha256, "path": client.photos().path_of(&p.sha256)}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "visit_id": v.visit_id,
        "household_id": v.household_id,
        "voided": v.voided,
        "void_reason": v.void_reason,
        "amendments": v.amendments,
        "sync_state": v.sync,
        "sync_reason": v.sync_reason,
        "sync_reason_code": v.sync_reason_code,
        // The server's codes as received, unknown ones included.
        "flags": v.flags,
        // The town office's note ("has issues: …") and whether an amendment followed.
        "review": v.review,
        // The town office's decisions on the family changes it proposed, with notes.
        "family_decisions": v.family_decisions,
        // Images of an unsent visit that are missing or altered here: it cannot be sent.
        "damaged_images": v.damaged_images,
        "photos": photo_paths,
        "current": v.current,
    })
}

async fn visit_list(
    client: &Client,
    household: Option<i64>,
    limit: u64,
    lang: Lang,
    json: bool,
) -> anyhow::Result<()> {
    // One more than shown tells a cut list from a whole one.
    let mut rows = client.visits(household, limit.saturating_add(1)).await?;
    let cut = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    if json {
        let out: Vec<_> = rows.iter().map(|v| visit_json(client, v)).collect();
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(());
    }
    // Said on standard error, so the lines stay what a script reads (QA s31b R7: the
    // visit a sync asked to look up was past the 100 shown, and nothing said so).
    if cut {
        errln!("{}", lang.cli_visit_list_cut(limit));
    }
    let history = client.store().evidence_history().await?;
    for v in rows {
        let r = &v.current.signed.record;
        let (at, kind, photos) = r
            .visit
            .as_ref()
            .map(|b| {
                (
                    bangfu_client::draft::format_local(b.at),
                    Some(b.kind),
                    b.photos.len(),
                )
            })
            .unwrap_or_default();
        // Why the server refused it, in the helper's language (the server's words for a
        // code this version does not know).
        let why = lang.refusal(v.sync_reason_code.as_deref(), v.sync_reason.as_deref());
        let line = lang.cli_visit_line(&bangfu_client::i18n::VisitLine {
            household: v.household_id,
            at: &at,
            kind,
            photos,
            voided: v.voided,
            amended: v.amendments > 0,
            sync: v.sync,
            why: &why,
        });
        // The server's flags, in the helper's language, with what to do.
        // What a visit short of evidence lacks, part by part (QA s28a F8).
        let shortfall = r.visit.as_ref().map_or_else(Vec::new, |b| {
            bangfu_client::client::evidence_shortfall(&history, b)
        });
        let flags: String = v
            .flags
            .iter()
            .map(|f| match f {
                bangfu_client::flags::Flag::MissingEvidence if !shortfall.is_empty() => {
                    format!("  ⚠ {}", lang.shortfall_text(&shortfall))
                }
                _ => format!("  ⚠ {}", lang.flag_text(f)),
            })
            .collect();
        let review = v
            .review
            .as_ref()
            .map(|r| format!("  ✎ {}", lang.review_text_for(r, v.voided)))
            .unwrap_or_default();
        let damaged = match v.damaged_images.len() {
            0 => String::new(),
            n => format!("  ⚠ {}", lang.damaged_images(n)),
        };
        // A rejected family change and why, so it is not proposed again (QA s29b J4).
        let decisions: String = v
            .family_decisions
            .iter()
            .map(|d| format!("  ☰ {}", d.text_zh()))
            .collect();
        outln!("{}  {line}{damaged}{flags}{review}{decisions}", v.visit_id)?;
    }
    Ok(())
}

/// Before a visit is signed: a clock the last login or sync found wrong is said again,
/// since what it signs will not count (QA s26d F8). Offline, that is all there is to go on.
async fn warn_clock(client: &Client, lang: Lang) {
    if let Ok(Some(offset)) = client.store().clock_offset().await {
        errln!("⚠ {}", lang.clock_off(offset));
    }
}

/// `bangfu sync`: a progress line on standard error (redrawn in place on a terminal,
/// one line per step otherwise), the report on standard output; exit code 3 when
/// something is left unsynced.
async fn sync(
    client: &Client,
    options: &SyncOptions,
    lang: Lang,
    json: bool,
) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let tty = std::io::stderr().is_terminal();
    let last_phase = std::sync::Mutex::new(None::<SyncPhase>);
    let last_draw = std::sync::Mutex::new(std::time::Instant::now());
    let progress = move |p: &SyncProgress| {
        let line = lang.sync_progress(p);
        if tty {
            let mut t = last_draw.lock().unwrap_or_else(|e| e.into_inner());
            if p.phase == SyncPhase::Done || t.elapsed() >= std::time::Duration::from_millis(100) {
                *t = std::time::Instant::now();
                use std::io::Write as _;
                // Cut to the terminal's width: a line that wraps is not redrawn in place.
                let columns = ratatui::crossterm::terminal::size().map_or(80, |(w, _)| w);
                let line = bangfu_client::ui::fit(&line, columns.saturating_sub(1));
                let _ = write!(std::io::stderr().lock(), "\r\x1b[2K{line}");
            }
        } else {
            // A log: a line per step, per retry, and every few seconds of a long step.
            let mut last = last_phase.lock().unwrap_or_else(|e| e.into_inner());
            let mut t = last_draw.lock().unwrap_or_else(|e| e.into_inner());
            if *last != Some(p.phase)
                || p.retry.is_some()
                || t.elapsed() >= std::time::Duration::from_secs(2)
            {
                *last = Some(p.phase);
                *t = std::time::Instant::now();
                let retry = match lang {
                    Lang::Zh => &p.retry_zh,
                    _ => &p.retry,
                };
                match retry {
                    Some(r) => errln!("{line} · {r}"),
                    None => errln!("{line}"),
                }
            }
        }
    };
    let result = client.sync(options, &progress).await;
    if tty {
        errln!();
    }
    let report = match result {
        Ok(report) => report,
        // A revoked device's sync goes on no more: the refusal is said alone (QA s30c N2).
        Err(e @ bangfu_client::ClientError::DeviceRevoked) => return Err(e.into()),
        Err(e) => {
            let login_first = matches!(e, bangfu_client::ClientError::SessionExpired);
            if let Ok(counts) = client.store().sync_counts().await {
                errln!("{}", lang.sync_stopped(&counts, login_first));
            }
            return Err(e.into());
        }
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        // The refused records under the count that names them (被拒 N), then the
        // warnings with their own lines, then each problem once (QA s22a F5).
        outln!("{}", lang.sync_summary_without_problems(&report))?;
        if let Some(offset) = report.clock_offset_secs {
            outln!("⚠ {}", lang.clock_off(offset))?;
        }
        for r in report.rejected.iter().chain(&report.conflicts) {
            let why = lang.refusal(r.reason_code.as_deref(), Some(&r.reason));
            outln!("  {}  {why}", r.id)?;
        }
        if let Some(returned) = lang.sync_returned(report.returned_for_correction) {
            outln!("✎ {returned}{}", lang.cli_see_visit_list())?;
        }
        if let Some(decided) = lang.sync_decisions(report.decisions_received) {
            outln!("☰ {decided}{}", lang.cli_see_visit_list())?;
        }
        if let Some(warning) = lang.sync_not_counted(report.not_counted) {
            outln!("⚠ {warning}{}", lang.cli_see_visit_list())?;
        }
        for p in &report.problems {
            outln!("  {}", lang.problem(p))?;
        }
    }
    if !report.complete() {
        std::process::exit(3);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    /// Standard output whose reader has gone (`| head`).
    struct ClosedPipe;

    impl std::io::Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A closed pipe ends the command as done (exit code 0, nothing said); any other
    /// failure is still one.
    #[test]
    fn a_closed_pipe_is_done_and_other_errors_are_not() {
        use anyhow::Context as _;
        use std::io::Write as _;
        let printed = || -> anyhow::Result<()> {
            writeln!(ClosedPipe, "line").context("printing the list")?;
            Ok(())
        };
        let e = printed().unwrap_err();
        assert!(super::is_broken_pipe(&e), "{e:#}");
        let other = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(!super::is_broken_pipe(&other));
    }

    /// With the default language a core error is said in Chinese, the time in China
    /// time as typed, and the English follows as a detail.
    #[test]
    fn errors_follow_the_language_with_times_in_china_time() {
        use bangfu_client::ClientError;
        use bangfu_client::i18n::Lang;
        let at = bangfu_client::draft::parse_local_time("2026-03-10 09:30").unwrap();
        let e = anyhow::Error::from(ClientError::FutureTime { at });
        let zh = super::error_text(&e, Lang::Zh);
        let first = zh.lines().next().unwrap();
        assert!(
            first.contains("走访时间晚于当前时间") && first.contains("2026-03-10 09:30"),
            "{zh}"
        );
        assert!(!first.contains("01:30"), "not in UTC: {zh}");
        let en = super::error_text(&e, Lang::En);
        assert!(
            en.contains("2026-03-10 09:30") && !en.contains("UTC"),
            "{en}"
        );
        assert_eq!(en.lines().count(), 1, "{en}");
    }
}
