//! `bangfu sheet`: the second helper's quarterly attendance sheet (附件3) without the
//! terminal interface, for scripts and devices without a screen. Part of the `bangfu`
//! binary, over the library's `Client::sheet`, `set_sheet_remark` and `submit_sheet`.

use anyhow::Context as _;
use bangfu_client::Client;
use bangfu_client::i18n::Lang;
use bangfu_client::sheets::{ReviewCheck, SheetView};
use bangfu_shared::report::Quarter;
use bangfu_shared::{PairingRole, Role};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand)]
pub enum SheetCommand {
    /// Show a quarter's sheet as the last sync pulled it, with the remarks written and
    /// its state (default: the newest quarter pulled, or, while it runs, the ended one
    /// before it if that still waits to be submitted).
    Show {
        /// `2026Q1`.
        #[arg(long)]
        quarter: Option<Quarter>,
    },
    /// Write the remark of one household's row (a draft until the sheet is submitted;
    /// an empty text clears it).
    #[command(group(clap::ArgGroup::new("which").required(true).args(["row", "household"])))]
    Remark {
        #[arg(long)]
        quarter: Quarter,
        /// The row's 序号, as `bangfu sheet show` prints it.
        #[arg(long)]
        row: Option<u32>,
        /// The household's id (`bangfu households`, `--json sheet show`).
        #[arg(long)]
        household: Option<i64>,
        text: String,
    },
    /// Sign the quarter's remarks with the device key and queue the submission; the next
    /// `bangfu sync` delivers it. A submitted sheet is frozen; submitting again makes a
    /// new version.
    Submit {
        #[arg(long)]
        quarter: Quarter,
    },
}

/// Runs one `bangfu sheet` command.
pub async fn run(
    client: &Client,
    command: SheetCommand,
    lang: Lang,
    json: bool,
) -> anyhow::Result<()> {
    match command {
        SheetCommand::Show { quarter } => {
            // A revoked device submits nothing: said above the sheet's own hints (QA
            // s30c N2).
            if client.ensure_not_revoked().await.is_err() {
                errln!(
                    "⚠ {}",
                    lang.error(&bangfu_client::ClientError::DeviceRevoked)
                );
            }
            // Only a second helper fills in the sheet: a first helper is told so, not
            // sent to sync for a sheet that never comes.
            // (the sheet's rows are the households paired with a second helper).
            let second = client.identity().await?.role == Role::SecondHelper
                || client
                    .households(chrono::Utc::now())
                    .await?
                    .iter()
                    .any(|h| h.role == Some(PairingRole::Second));
            if !second && !json && client.sheets().await?.is_empty() {
                outln!("{}", lang.sheet().no_sheet_first)?;
                return Ok(());
            }
            let view = match quarter {
                Some(q) => client.sheet(q).await?,
                None => {
                    let mut sheets = client.sheets().await?;
                    let today = bangfu_client::client::today(chrono::Utc::now());
                    let open = bangfu_client::sheets::sheet_to_open(&sheets, today);
                    (open < sheets.len()).then(|| sheets.swap_remove(open))
                }
                .context(if second {
                    lang.sheet().no_sheet
                } else {
                    lang.sheet().no_sheet_first
                })?,
            };
            show(&view, lang, json)
        }
        SheetCommand::Remark {
            quarter,
            row,
            household,
            text,
        } => {
            let household = match (row, household) {
                (Some(seq), _) => row_household(client, quarter, seq, lang).await?,
                (None, Some(h)) => h,
                (None, None) => anyhow::bail!("--row or --household"),
            };
            client.set_sheet_remark(quarter, household, &text).await?;
            // Said as `set_sheet_remark` keeps it: on one line (QA s30c N1).
            let remark = bangfu_client::sheets::one_line(&text);
            if json {
                outln!(
                    "{}",
                    json!({"quarter": quarter, "household_id": household, "remark": remark})
                )?;
            } else {
                let colon = lang.texts().colon;
                outln!(
                    "{} {quarter} · {household}{colon}{remark}",
                    lang.sheet().saved
                )?;
            }
            Ok(())
        }
        SheetCommand::Submit { quarter } => {
            let queued = client.submit_sheet(quarter).await?;
            if let Some(early) =
                lang.sheet_early(quarter, bangfu_client::client::today(chrono::Utc::now()))
            {
                errln!("⚠ {early}");
            }
            if json {
                outln!("{}", serde_json::to_string_pretty(&queued)?)?;
            } else {
                let remarks = lang
                    .sheet()
                    .remarks
                    .replace("{}", &queued.submission.remarks.len().to_string());
                outln!(
                    "{} {quarter}{}{}{}",
                    lang.sheet().title,
                    lang.texts().colon,
                    lang.sheet().queued,
                    lang.paren(&remarks),
                )?;
            }
            Ok(())
        }
    }
}

/// The household of row `seq` (序号) of the quarter's sheet: the number the printed
/// sheet shows, which a second helper types (QA s29b J6: only the household's id was
/// taken, which the sheet never shows).
async fn row_household(
    client: &Client,
    quarter: Quarter,
    seq: u32,
    lang: Lang,
) -> anyhow::Result<i64> {
    // The sheet's own row number (its position), as `show` prints it and the 附件3
    // reads, not the household's 序号 in the town ledger (QA s29c K4).
    let view = client.sheet(quarter).await?;
    let index = usize::try_from(seq).ok().and_then(|n| n.checked_sub(1));
    index
        .and_then(|i| view.sheet.rows.get(i))
        .map(|r| r.household_id)
        .with_context(|| match lang {
            Lang::Zh => {
                format!("{quarter}考勤表中没有序号{seq}：请用 bangfu sheet show 所列的序号")
            }
            Lang::En => format!(
                "the {quarter} sheet has no row {seq}: use a 序号 `bangfu sheet show` prints"
            ),
        })
}

/// The sheet with the 附件3 columns, one row per line, or as JSON.
fn show(view: &SheetView, lang: Lang, json: bool) -> anyhow::Result<()> {
    if json {
        let rows: Vec<_> = view
            .sheet
            .rows
            .iter()
            .map(|r| {
                json!({
                    "seq": r.seq,
                    "household_id": r.household_id,
                    "head_name": r.head_name,
                    "village": r.village,
                    "first_helper": r.first_helper.as_ref().map(|h| &h.name),
                    "records": r.record_text(),
                    "own_visits": r.own_text(),
                    "remark": view.remark(r),
                })
            })
            .collect();
        let out = json!({
            "quarter": view.quarter(),
            "second_helper": view.sheet.second_helper.name,
            "state": view.state(),
            // Remarks written after the last submission (queued or frozen).
            "unsubmitted_changes": view.unsubmitted_changes(),
            // The rows changed since the last submission was signed (a visit voided,
            // amended or synced since): the version submitted no longer matches them.
            "data_changed": view.data_changed(),
            "submitted_version": view.sheet.submitted_version,
            // The server's check of `submitted_version` against the rows reviewed: false
            // when they changed since (sign again); absent when it could not tell.
            "reviewed_rows_match": view.sheet.reviewed_rows_match,
            "rows": rows,
            // What the windows were judged by: explains 不考核 and 结对变动 (QA s24b F6).
            "rule": view.sheet.rule,
            "submissions": view.submissions,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(());
    }
    let t = lang.sheet();
    let changed = view
        .changes_marker(t, false)
        .map(|m| format!(" · {m}"))
        .unwrap_or_default();
    outln!(
        "{} {} · {} · {}{changed}",
        t.title,
        view.quarter(),
        view.sheet.second_helper.name,
        lang.sheet_state(view.state().as_ref())
    )?;
    if let Some(check) = view.review_check() {
        outln!("{}", lang.sheet_review_check(check, view.resigned()))?;
        if matches!(check, ReviewCheck::Changed { .. }) && !view.resigned() {
            outln!("{}", lang.sheet_resign_command(view.quarter()))?;
        }
    }
    outln!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        t.seq,
        t.head,
        t.village,
        t.first_helper,
        t.records,
        t.own_visits,
        t.remark
    )?;
    // 序号 is the row's own number, as on the printed 附件3, not the ledger's.
    for (n, r) in view.sheet.rows.iter().enumerate() {
        let own = r.own_text();
        outln!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            n + 1,
            r.head_name,
            r.village,
            r.first_helper.as_ref().map_or("-", |h| h.name.as_str()),
            r.record_text(),
            if own.is_empty() { "-" } else { &own },
            view.remark(r)
        )?;
    }
    let records: Vec<String> = view
        .sheet
        .rows
        .iter()
        .flat_map(|r| [r.record_text(), r.own_text()])
        .collect();
    if let Some(legend) = bangfu_shared::report::marks_legend_zh(records.iter().map(String::as_str))
    {
        outln!("{legend}")?;
    }
    // The rule the windows were judged by, as the printed sheet ends (QA s24b F6).
    let label = match lang {
        Lang::Zh => "考勤规则：",
        Lang::En => "Rule (as printed): ",
    };
    outln!("{label}{}", view.sheet.rule)?;
    Ok(())
}
