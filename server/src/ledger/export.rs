//! Exporting the ledger in the layout it was imported in (seed 001 附件1), CSV or XLSX,
//! so that export → import changes nothing and a town office's spreadsheet habits survive.
//!
//! Every text cell is made [`inert`]: ledger text comes from other offices' files, and a
//! cell reading `=HYPERLINK(…)` must not run in the office's spreadsheet. The import takes
//! the added `'` off again, so the round trip stays lossless.
//!
//! Each household's current (open-ended) first and second pairing is written; households
//! without both are not part of the working ledger and are left out.

use bangfu_shared::PairingRole;
use bangfu_shared::ledger::{HelperEntry, LEDGER_HEADERS, LedgerRow};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use std::collections::HashMap;

use super::formula::inert;
use crate::entities::{helper, household, jurisdiction, pairing};
use crate::error::{ApiError, ApiResult};
use crate::services::{Caller, Scope, jurisdictions};

/// The file formats offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Xlsx,
}

impl ExportFormat {
    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
        }
    }
}

/// The ledger rows of one town (or, for a county office or admin, of every town in
/// scope when `town` is none), in town and 序号 order.
pub async fn rows(
    db: &impl ConnectionTrait,
    caller: &Caller,
    town: Option<i64>,
) -> ApiResult<Vec<LedgerRow>> {
    caller.require_office("export the ledger")?;
    if let Some(t) = town {
        jurisdictions::town_in_scope(db, caller, t).await?;
    } else if caller.scope() == Scope::All {
        return Err(ApiError::BadRequest(
            "name the town to export (town=ID)".into(),
        ));
    }
    let mut cond = Condition::all().add(caller.scope().households());
    if let Some(t) = town {
        cond = cond.add(household::Column::TownId.eq(t));
    }
    let households = household::Entity::find()
        .filter(cond)
        .order_by_asc(household::Column::TownId)
        .order_by_asc(household::Column::LedgerSeq)
        .order_by_asc(household::Column::Id)
        .all(db)
        .await?;
    let places: HashMap<i64, jurisdiction::Model> = {
        let ids: Vec<i64> = households
            .iter()
            .flat_map(|h| [h.town_id, h.village_id])
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut out = HashMap::new();
        for chunk in ids.chunks(1000) {
            for p in jurisdiction::Entity::find()
                .filter(jurisdiction::Column::Id.is_in(chunk.to_vec()))
                .all(db)
                .await?
            {
                out.insert(p.id, p);
            }
        }
        out
    };
    let mut open: HashMap<(i64, String), i64> = HashMap::new();
    let ids: Vec<i64> = households.iter().map(|h| h.id).collect();
    for chunk in ids.chunks(1000) {
        // Still paired: open, or ending on a day to come (an exit filed for next month
        // leaves the household on the ledger until then). Oldest first, so where a
        // change of helper is filed the open successor is the one written.
        for p in pairing::Entity::find()
            .filter(pairing::Column::HouseholdId.is_in(chunk.to_vec()))
            .filter(pairing::holding_after(crate::services::today()))
            .order_by_asc(pairing::Column::ValidFrom)
            .order_by_asc(pairing::Column::Id)
            .all(db)
            .await?
        {
            open.insert((p.household_id, p.role), p.helper_id);
        }
    }
    let helper_ids: Vec<i64> = open
        .values()
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut helpers: HashMap<i64, helper::Model> = HashMap::new();
    for chunk in helper_ids.chunks(1000) {
        for h in helper::Entity::find()
            .filter(helper::Column::Id.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            helpers.insert(h.id, h);
        }
    }
    let entry = |household: i64, role: PairingRole| {
        open.get(&(household, role.code().to_string()))
            .and_then(|id| helpers.get(id))
            .map(|h| HelperEntry {
                name: h.name.clone(),
                unit_position: h.unit_position.clone(),
                phone: h.phone.clone(),
            })
    };
    let name = |id: i64| places.get(&id).map(|p| p.name.clone()).unwrap_or_default();
    Ok(households
        .iter()
        .filter_map(|h| {
            Some(LedgerRow {
                line: 0,
                seq: u32::try_from(h.ledger_seq).unwrap_or(0),
                head_name: h.head_name.clone(),
                town: name(h.town_id),
                village: name(h.village_id),
                cause: h.cause.clone(),
                measures: h.measures.clone(),
                phone: h.phone.clone(),
                first: entry(h.id, PairingRole::First)?,
                second: entry(h.id, PairingRole::Second)?,
            })
        })
        .collect())
}

/// Writes rows as a file. CSV starts with a UTF-8 BOM so Excel shows the Chinese text,
/// and ends lines with CRLF as the official samples do.
pub fn write(rows: &[LedgerRow], format: ExportFormat) -> ApiResult<Vec<u8>> {
    match format {
        ExportFormat::Csv => write_csv(rows),
        ExportFormat::Xlsx => write_xlsx(rows),
    }
}

/// Both steps at once.
pub async fn export(
    db: &impl ConnectionTrait,
    caller: &Caller,
    town: Option<i64>,
    format: ExportFormat,
) -> ApiResult<Vec<u8>> {
    write(&rows(db, caller, town).await?, format)
}

fn write_csv(rows: &[LedgerRow]) -> ApiResult<Vec<u8>> {
    let io = |e: csv::Error| ApiError::Internal(format!("writing CSV: {e}"));
    let mut out = Vec::from("\u{feff}".as_bytes());
    {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut out);
        w.write_record(LEDGER_HEADERS).map_err(io)?;
        for row in rows {
            w.write_record(row.to_cells().iter().map(|c| inert(c).into_owned()))
                .map_err(io)?;
        }
        w.flush().map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    Ok(out)
}

fn write_xlsx(rows: &[LedgerRow]) -> ApiResult<Vec<u8>> {
    use rust_xlsxwriter::{Format, Workbook};
    let xl = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("writing XLSX: {e}"));
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("帮扶责任工作台账").map_err(xl)?;
    let bold = Format::new().set_bold();
    for (c, h) in LEDGER_HEADERS.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, *h, &bold)
            .map_err(xl)?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = u32::try_from(r + 1)
            .map_err(|_| ApiError::Invalid("too many rows for one sheet".into()))?;
        sheet.write_number(r, 0, f64::from(row.seq)).map_err(xl)?;
        for (c, cell) in row.to_cells().iter().enumerate().skip(1) {
            // A string cell never runs, but a clerk may save the sheet as CSV.
            sheet.write_string(r, c as u16, inert(cell)).map_err(xl)?;
        }
    }
    for (c, width) in [6, 10, 22, 12, 24, 14, 12, 20, 14, 12, 16, 14]
        .iter()
        .enumerate()
    {
        sheet.set_column_width(c as u16, *width).map_err(xl)?;
    }
    book.save_to_buffer().map_err(xl)
}
