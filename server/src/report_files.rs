//! Reports as files town offices print and forward: CSV (UTF-8 with BOM, for Excel) and
//! XLSX with the Chinese headers of seed 001 附件3.
//!
//! Names, units and remarks are typed in the field, and a spreadsheet runs a CSV cell
//! that begins with `=`, `+`, `-`, `@` (or a tab or carriage return before one) as a
//! formula: every CSV cell starting so is written with a leading `'`, as OWASP's "CSV
//! Injection" advises. XLSX cells are written as strings, never formulas, and need none.
//!
//! Counts and rates are [`Cell::Count`] and [`Cell::Rate`]: the offices sum, sort and
//! rank the reports (seed 001 §四(二), seed 002), so the XLSX stores them as numbers
//! (a rate with a percentage format), not as "number stored as text". CSV and PDF print
//! them as text, as before (`60`, `83.6%`); an empty cell or `—` stays text everywhere.

use bangfu_shared::report::{
    AreaRate, AttendanceSheet, CHANGED_SINCE_REVIEW_ZH, CountyReport, HelperEscalation, Miss,
    SHEET_HEADERS, TownReport, UnitEscalation, UnownedWindow, unit_escalations_title_zh,
};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use crate::error::{ApiError, ApiResult};

/// A table: headers and rows of cells.
pub struct Table {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// One cell of a report table: text, or a number a spreadsheet can sum and sort.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A count: households, windows, misses, a rank, a row number, a version.
    Count(u64),
    /// A rate from 0.0 to 1.0, printed as a percentage with one decimal.
    Rate(f64),
}

impl Cell {
    /// The cell as CSV and PDF print it.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Cell::Text(t) => t.as_str().into(),
            Cell::Count(n) => n.to_string().into(),
            Cell::Rate(r) => pct(*r).into(),
        }
    }

    /// A count from any integer; a negative one (none is) prints as written.
    fn count(n: impl TryInto<u64> + ToString + Copy) -> Cell {
        n.try_into()
            .map_or_else(|_| Cell::Text(n.to_string()), Cell::Count)
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell::Text(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::Text(text.to_string())
    }
}

/// A row of text cells.
fn texts<const N: usize>(cells: [String; N]) -> Vec<Cell> {
    cells.into_iter().map(Cell::Text).collect()
}

fn pct(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// What a printed sheet holds, as its title and signature block say it: a frozen
/// version (`第N版`), or the data as it stands now, which after a submission is not that
/// version and must not be read as it (`当前数据（第N版已于…报送）`).
///
/// A frozen version whose rows are not those the helper reviewed says so
/// ([`CHANGED_SINCE_REVIEW_ZH`]): the signature under it covers the remarks, not
/// these verdicts.
pub fn edition_zh(sheet: &AttendanceSheet, frozen: bool) -> String {
    match (sheet.submitted_version, frozen) {
        (Some(v), true) if sheet.reviewed_rows_match == Some(false) => {
            format!("第{v}版（{CHANGED_SINCE_REVIEW_ZH}）")
        }
        (Some(v), true) => format!("第{v}版"),
        (Some(v), false) => {
            let at = sheet
                .submitted_at
                .map(|t| {
                    (t + chrono::Duration::hours(8))
                        .format("于%Y-%m-%d %H:%M")
                        .to_string()
                })
                .unwrap_or_default();
            format!("当前数据（第{v}版已{at}报送）")
        }
        (None, _) => "当前数据（尚未报送）".into(),
    }
}

/// The live sheet (as it stands now) as one table, 附件3 columns then the second
/// helper's own visits and remarks, and the rule it is judged by.
pub fn sheet_tables(sheet: &AttendanceSheet) -> Vec<Table> {
    sheet_tables_as(sheet, false)
}

/// A frozen version of the sheet (as submitted), titled with its version, and its rule.
pub fn submitted_sheet_tables(sheet: &AttendanceSheet) -> Vec<Table> {
    sheet_tables_as(sheet, true)
}

/// A frozen version of which the caller sees only some rows: `sheet` holds those, the
/// version froze `signed_rows`. Titled as [`submitted_sheet_tables`], and, when rows
/// were left out, as a part ([`part_zh`]): the device signature covers the whole body,
/// not the rows printed.
pub fn submitted_part_tables(sheet: &AttendanceSheet, signed_rows: usize) -> Vec<Table> {
    let mut tables = sheet_tables_as(sheet, true);
    if let (Some(part), Some(sheet_table)) = (part_zh(sheet, signed_rows), tables.first_mut()) {
        sheet_table.title.push_str(&part);
    }
    tables
}

/// "（本单位可见部分，共M户中的K户；设备签名针对全表）" when `sheet` holds fewer rows than
/// the `signed_rows` its version froze (an office sees only its own households), else
/// nothing.
pub fn part_zh(sheet: &AttendanceSheet, signed_rows: usize) -> Option<String> {
    let shown = sheet.rows.len();
    (shown < signed_rows)
        .then(|| format!("（本单位可见部分，共{signed_rows}户中的{shown}户；设备签名针对全表）"))
}

fn sheet_tables_as(sheet: &AttendanceSheet, frozen: bool) -> Vec<Table> {
    let mut headers = s(&SHEET_HEADERS);
    headers.extend(s(&["第二帮扶责任人走访", "备注"]));
    let rows = sheet
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut row = vec![Cell::count(i + 1)];
            row.extend(texts([
                r.head_name.clone(),
                r.village.clone(),
                r.first_helper
                    .as_ref()
                    .map(|h| h.name.clone())
                    .unwrap_or_default(),
                r.first_helper
                    .as_ref()
                    .map(|h| h.unit_position.clone())
                    .unwrap_or_default(),
                r.first_helper
                    .as_ref()
                    .map(|h| h.phone.clone())
                    .unwrap_or_default(),
                r.record_text(),
                r.own_text(),
                r.remark.clone().unwrap_or_default(),
            ]));
            row
        })
        .collect();
    vec![
        Table {
            title: format!(
                "第一帮扶责任人帮扶工作考勤表 {} 第二帮扶责任人：{} {}",
                sheet.quarter.zh(),
                sheet.second_helper.name,
                edition_zh(sheet, frozen)
            ),
            headers,
            rows,
        },
        sheet_rule_table(sheet),
    ]
}

/// The sheet's rule, and what the marks its 帮扶记录 carries mean.
fn sheet_rule_table(sheet: &AttendanceSheet) -> Table {
    let mut table = rule_table(&sheet.rule);
    let records: Vec<String> = sheet
        .rows
        .iter()
        .flat_map(|r| [r.record_text(), r.own_text()])
        .collect();
    if let Some(legend) = bangfu_shared::report::marks_legend_zh(records.iter().map(String::as_str))
    {
        table.rows.push(texts([legend]));
    }
    table
}

/// The rule the report's windows were judged by (which windows count, and a county's
/// exception for windows an exit cuts), printed after its tables: the offices file the
/// CSV, XLSX and PDF, not the JSON.
fn rule_table(rule: &str) -> Table {
    Table {
        title: "考勤规则".into(),
        headers: s(&["规则"]),
        rows: vec![texts([rule.to_string()])],
    }
}

fn rate_table(
    title: &str,
    place: &str,
    areas: &[AreaRate],
    total: &AreaRate,
    ranked: bool,
) -> Table {
    let mut headers = if ranked { s(&["排名"]) } else { Vec::new() };
    headers.extend(s(&[place, "户数", "应考勤周期数", "到位周期数", "到位率"]));
    let line = |a: &AreaRate, name: String| {
        let mut row = if ranked {
            vec![a.rank.map_or_else(|| Cell::from(""), Cell::count)]
        } else {
            Vec::new()
        };
        row.extend([
            Cell::Text(name),
            Cell::count(a.households),
            Cell::count(a.required_windows),
            Cell::count(a.met_windows),
            // Nothing required: no rate (a 100.0% would read as a perfect record).
            a.rate.map_or_else(|| "—".into(), Cell::Rate),
        ]);
        row
    };
    let mut rows: Vec<Vec<Cell>> = areas.iter().map(|a| line(a, a.name.clone())).collect();
    rows.push(line(
        &AreaRate {
            rank: None,
            ..total.clone()
        },
        "合计".into(),
    ));
    Table {
        title: title.to_string(),
        headers,
        rows,
    }
}

fn misses_table(misses: &[Miss]) -> Table {
    Table {
        title: "未到位明细".into(),
        headers: s(&[
            "贫困户姓名",
            "村(居)",
            "帮扶责任人",
            "工作单位及职务",
            "身份",
            "方式",
            "考勤周期",
        ]),
        rows: misses
            .iter()
            .map(|m| {
                texts([
                    m.head_name.clone(),
                    m.village.clone(),
                    m.helper.name.clone(),
                    m.helper.unit_position.clone(),
                    m.role.label_zh().into(),
                    m.kind.label_zh().into(),
                    m.period_zh(),
                ])
            })
            .collect(),
    }
}

fn unowned_table(windows: &[UnownedWindow]) -> Table {
    Table {
        title: "无人负责的窗口".into(),
        headers: s(&[
            "贫困户姓名",
            "村(居)",
            "身份",
            "方式",
            "考勤周期",
            "期间结对的帮扶责任人",
            "期间走访",
            "说明",
        ]),
        rows: windows
            .iter()
            .map(|u| {
                texts([
                    u.head_name.clone(),
                    u.village.clone(),
                    u.role.label_zh().into(),
                    u.kind.label_zh().into(),
                    format!("{}至{}", u.start, u.end),
                    u.helpers
                        .iter()
                        .map(|h| h.name.as_str())
                        .collect::<Vec<_>>()
                        .join("、"),
                    u.contacts_zh(),
                    u.cause_zh(),
                ])
            })
            .collect(),
    }
}

/// The sanctions' tables: first helpers, then units (titled with the policy's `unit_at`,
/// since counties set it).
fn escalation_tables(
    helpers: &[HelperEscalation],
    units: &[UnitEscalation],
    (unit_at, town_only): (u32, bool),
) -> [Table; 2] {
    [
        Table {
            title: "第一帮扶责任人问责（本年度累计）".into(),
            // The phone tells apart two helpers of one name (QA s22c F8).
            headers: s(&[
                "帮扶责任人",
                "工作单位",
                "联系方式",
                "本年未到位次数",
                "处理",
            ]),
            rows: helpers
                .iter()
                .map(|e| {
                    vec![
                        e.helper.name.clone().into(),
                        e.unit.clone().into(),
                        e.helper.phone.clone().into(),
                        Cell::count(e.misses_this_year),
                        e.action.clone().into(),
                    ]
                })
                .collect(),
        },
        Table {
            title: unit_escalations_title_zh(unit_at, town_only),
            headers: s(&["派出单位", "未到位人次", "处理"]),
            rows: units
                .iter()
                .map(|u| {
                    vec![
                        u.unit.clone().into(),
                        Cell::count(u.person_times),
                        u.action.clone().into(),
                    ]
                })
                .collect(),
        },
    ]
}

/// The town report's tables.
pub fn town_tables(r: &TownReport) -> Vec<Table> {
    let [helpers, units] =
        escalation_tables(&r.escalations, &r.unit_escalations, (r.unit_at, true));
    vec![
        rate_table(
            &format!(
                "{} {} 帮扶工作到位率{}",
                r.town.name,
                r.quarter.zh(),
                so_far(r.quarter, crate::services::today())
            ),
            "村(居)",
            &r.villages,
            &r.total,
            false,
        ),
        Table {
            title: "第二帮扶责任人考勤表报送情况".into(),
            headers: s(&[
                "第二帮扶责任人",
                "联系方式",
                "报送版本",
                "报送时间",
                "其后数据",
            ]),
            rows: r
                .sheets
                .iter()
                .map(|x| {
                    vec![
                        x.second_helper.name.clone().into(),
                        x.second_helper.phone.clone().into(),
                        x.version.map_or_else(|| "未报送".into(), Cell::count),
                        x.submitted_at
                            .map(|t| {
                                (t + chrono::Duration::hours(8))
                                    .format("%Y-%m-%d %H:%M")
                                    .to_string()
                            })
                            .unwrap_or_default()
                            .into(),
                        x.resubmit_zh().to_string().into(),
                    ]
                })
                .collect(),
        },
        misses_table(&r.misses),
        unowned_table(&r.unowned_windows),
        helpers,
        units,
        Table {
            title: no_home_visit_title(r.quarter, crate::services::today()),
            headers: s(&["贫困户姓名", "村(居)"]),
            rows: r
                .no_home_visit
                .iter()
                .map(|h| texts([h.head_name.clone(), h.village.clone()]))
                .collect(),
        },
        rule_table(&r.rule),
    ]
}

/// The title of the households without a home visit in `quarter`: before the quarter
/// ends, "so far", since a household listed mid-quarter may still be visited in time
/// (QA s26a F5: the list read as failures in the middle of a quarter).
fn no_home_visit_title(
    quarter: bangfu_shared::report::Quarter,
    today: chrono::NaiveDate,
) -> String {
    if today <= quarter.end() {
        format!("本季度截至{today}尚无入户走访的贫困户（季度未结束）")
    } else {
        "本季度无入户走访的贫困户".into()
    }
}

/// Before `quarter` ends, what a rate or a ranking is: the windows ended so far, not the
/// quarter's (QA s28a F15: a mid-quarter ranking read as the final one). Empty after.
fn so_far(quarter: bangfu_shared::report::Quarter, today: chrono::NaiveDate) -> String {
    // Dated either way: a printed report without its day cannot be filed (QA s33c C8).
    if today <= quarter.end() {
        format!("（截至{today}已结束的周期，季度未结束）")
    } else {
        format!("（{today}制表）")
    }
}

/// The county report's tables.
pub fn county_tables(r: &CountyReport) -> Vec<Table> {
    let [helpers, units] =
        escalation_tables(&r.escalations, &r.unit_escalations, (r.unit_at, false));
    vec![
        rate_table(
            &format!(
                "{} {} 各镇街帮扶工作到位率排名{}",
                r.county.name,
                r.quarter.zh(),
                so_far(r.quarter, crate::services::today())
            ),
            "镇街",
            &r.towns,
            &r.total,
            true,
        ),
        units,
        helpers,
        rule_table(&r.rule),
    ]
}

/// A CSV cell a spreadsheet would not run as a formula: one beginning with `=`, `+`, `-`,
/// `@`, a tab or a carriage return gets a leading `'` (OWASP, CSV Injection). Reports are
/// never imported again, so unlike the ledger's `formula::inert` a cell the data already
/// quotes is left as it is.
fn inert(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(crate::ledger::formula::FORMULA_START) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// Tables as CSV: each table's title on a line, its header, its rows, a blank line
/// between; every cell made [`inert`].
pub fn to_csv(tables: &[Table]) -> ApiResult<Vec<u8>> {
    let mut out = Vec::from("\u{feff}".as_bytes());
    {
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut out);
        let io = |e: csv::Error| ApiError::Internal(format!("writing CSV: {e}"));
        for (i, t) in tables.iter().enumerate() {
            if i > 0 {
                w.write_record([""]).map_err(io)?;
            }
            // Every table under its title, one alone too: a sheet's title names its
            // quarter and edition (当前数据 or 第N版), without which a submitted version
            // and today's data would be files that cannot be told apart.
            w.write_record([inert(&t.title).as_bytes()]).map_err(io)?;
            w.write_record(t.headers.iter().map(|c| inert(c).into_owned()))
                .map_err(io)?;
            for r in &t.rows {
                w.write_record(r.iter().map(|c| inert(&c.text()).into_owned()))
                    .map_err(io)?;
            }
        }
        w.flush().map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    Ok(out)
}

/// The most an Excel cell holds, in UTF-16 code units (Excel's "32,767 characters");
/// rust_xlsxwriter refuses a longer string.
const EXCEL_CELL_MAX_UTF16: usize = 32_767;

/// A cell's text as Excel can hold it: whole if it fits [`EXCEL_CELL_MAX_UTF16`], else cut
/// there and ended with "…". Text stored before the server limited it (a sheet remark of
/// any length, frozen in a version that can never change) must still print: one long
/// cell must not make the whole workbook, and so that version's XLSX, fail for good.
fn excel_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.encode_utf16().count() <= EXCEL_CELL_MAX_UTF16 {
        return text.into();
    }
    let mut room = EXCEL_CELL_MAX_UTF16 - '…'.len_utf16();
    let mut cut: String = text
        .chars()
        .take_while(|c| {
            let fits = c.len_utf16() <= room;
            room = room.saturating_sub(c.len_utf16());
            fits
        })
        .collect();
    cut.push('…');
    cut.into()
}

fn write_table(sheet: &mut Worksheet, t: &Table) -> Result<(), XlsxError> {
    let bold = Format::new().set_bold();
    let wrap = Format::new().set_text_wrap();
    let count = Format::new().set_num_format("0");
    let rate = Format::new().set_num_format("0.0%");
    print_setup(sheet, t)?;
    let last = t.headers.len().saturating_sub(1) as u16;
    match last {
        0 => sheet.write_string_with_format(0, 0, excel_text(&t.title), &bold)?,
        _ => sheet.merge_range(0, 0, 0, last, &excel_text(&t.title), &bold)?,
    };
    for (c, h) in t.headers.iter().enumerate() {
        sheet.write_string_with_format(1, c as u16, excel_text(h), &bold)?;
        let width = t
            .rows
            .iter()
            .map(|r| r.get(c).map_or(0, |x| x.text().chars().count()))
            .max()
            .unwrap_or(0)
            .max(h.chars().count());
        sheet.set_column_width(c as u16, (width as f64 * 1.8).clamp(6.0, 60.0))?;
    }
    for (r, row) in t.rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32 + 2, c as u16);
            match cell {
                Cell::Text(text) => {
                    sheet.write_string_with_format(r, c, excel_text(text), &wrap)?
                }
                // Exact as a float: counts are far below 2^53.
                Cell::Count(n) => sheet.write_number_with_format(r, c, *n as f64, &count)?,
                Cell::Rate(x) => sheet.write_number_with_format(r, c, *x, &rate)?,
            };
        }
    }
    Ok(())
}

/// Offices print from Excel and WPS too (QA s33c C7): landscape A4, the table fit to one
/// page wide, the title and header row on every page, and both kept in view on screen.
fn print_setup(sheet: &mut Worksheet, t: &Table) -> Result<(), XlsxError> {
    const A4: u8 = 9;
    sheet
        .set_landscape()
        .set_paper_size(A4)
        .set_print_fit_to_pages(1, 0)
        .set_print_center_horizontally(true);
    if !t.headers.is_empty() {
        sheet.set_repeat_rows(0, 1)?;
        sheet.set_freeze_panes(2, 0)?;
    }
    Ok(())
}

/// The name of the `i`th worksheet: its number, then the title's words that fit
/// Excel's 31 characters, whole (QA s22c F8: `1第一帮扶责任人帮扶工作考勤表 2026Q4 第二帮扶责任`
/// was cut mid-word, the number run into it).
fn worksheet_name(i: usize, title: &str) -> String {
    let clean: String = title.chars().filter(|c| !"[]:*?/\\".contains(*c)).collect();
    let room = 31 - (i + 1).to_string().len() - 1;
    let mut name = String::new();
    for word in clean.split_whitespace() {
        let longer = if name.is_empty() {
            word.to_string()
        } else {
            format!("{name} {word}")
        };
        if longer.chars().count() > room {
            if name.is_empty() {
                name = before_open_bracket(word.chars().take(room).collect());
            }
            break;
        }
        name = longer;
    }
    format!("{} {name}", i + 1)
}

/// A cut name without a bracket left open at its end: `…贫困户（季度未` reads as a
/// mistake, `…贫困户` does not (QA s28a F13).
fn before_open_bracket(cut: String) -> String {
    let mut depth = 0i32;
    let mut open_at = None;
    for (i, c) in cut.char_indices() {
        match c {
            '（' | '(' => {
                if depth == 0 {
                    open_at = Some(i);
                }
                depth += 1;
            }
            '）' | ')' => depth = (depth - 1).max(0),
            _ => {}
        }
    }
    match open_at.filter(|&i| depth > 0 && i > 0) {
        Some(i) => cut[..i].trim_end().to_string(),
        None => cut,
    }
}

/// Tables as an XLSX workbook, one worksheet each (names cut to Excel's 31 characters).
pub fn to_xlsx(tables: &[Table]) -> ApiResult<Vec<u8>> {
    let xl = |e: XlsxError| ApiError::Internal(format!("writing XLSX: {e}"));
    let mut book = Workbook::new();
    for (i, t) in tables.iter().enumerate() {
        let sheet = book.add_worksheet();
        sheet.set_name(worksheet_name(i, &t.title)).map_err(xl)?;
        write_table(sheet, t).map_err(xl)?;
    }
    book.save_to_buffer().map_err(xl)
}

/// A report in a named format (`json`, `csv`, `xlsx`, `pdf`), for the command line.
pub fn render<T: serde::Serialize>(
    value: &T,
    tables: impl FnOnce(&T) -> Vec<Table>,
    format: &str,
) -> ApiResult<Vec<u8>> {
    match format {
        "json" => serde_json::to_vec_pretty(value).map_err(|e| ApiError::Internal(e.to_string())),
        "csv" => to_csv(&tables(value)),
        "xlsx" => to_xlsx(&tables(value)),
        "pdf" => crate::report_pdf::to_pdf(&tables(value), None),
        other => Err(ApiError::BadRequest(format!(
            "format must be json, csv, xlsx or pdf, not {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn households_without_a_home_visit_are_so_far_until_the_quarter_ends() {
        let q: bangfu_shared::report::Quarter = "2026Q4".parse().unwrap();
        let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        assert_eq!(
            super::no_home_visit_title(q, day(12, 5)),
            "本季度截至2026-12-05尚无入户走访的贫困户（季度未结束）"
        );
        assert_eq!(
            super::no_home_visit_title(q, day(12, 31)),
            "本季度截至2026-12-31尚无入户走访的贫困户（季度未结束）"
        );
        assert_eq!(
            super::no_home_visit_title(q, chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()),
            "本季度无入户走访的贫困户"
        );
        // Rates and rankings say so too (QA s28a F15).
        assert_eq!(
            super::so_far(q, day(12, 5)),
            "（截至2026-12-05已结束的周期，季度未结束）"
        );
        assert_eq!(
            super::so_far(q, chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()),
            "（2027-01-01制表）"
        );
    }

    /// QA s33c C7: a worksheet prints landscape on A4, one page wide, with the title
    /// (merged over the table) and the header on every page.
    #[test]
    fn a_worksheet_prints_landscape_one_page_wide_with_its_header_on_each_page() {
        use std::io::Read;
        let table = Table {
            title: "东城镇 2026年第三季度 帮扶工作到位率".into(),
            headers: vec!["村(居)".into(), "户数".into(), "到位率".into()],
            rows: vec![vec![
                Cell::Text("东城河口村".into()),
                Cell::Count(3),
                Cell::Rate(0.5),
            ]],
        };
        let book = to_xlsx(&[table]).unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(book)).unwrap();
        let mut xml = String::new();
        zip.by_name("xl/worksheets/sheet1.xml")
            .unwrap()
            .read_to_string(&mut xml)
            .unwrap();
        for part in [
            r#"<mergeCell ref="A1:C1"/>"#,
            r#"paperSize="9""#,
            r#"orientation="landscape""#,
            r#"fitToHeight="0""#,
            r#"<pageSetUpPr fitToPage="1"/>"#,
            r#"horizontalCentered="1""#,
            r#"ySplit="2""#,
        ] {
            assert!(xml.contains(part), "{part} in {xml}");
        }
        let mut wb = String::new();
        zip.by_name("xl/workbook.xml")
            .unwrap()
            .read_to_string(&mut wb)
            .unwrap();
        assert!(wb.contains("_xlnm.Print_Titles"), "{wb}");
    }

    #[test]
    fn worksheet_names_keep_whole_words_within_excels_limit() {
        assert_eq!(
            worksheet_name(
                0,
                "第一帮扶责任人帮扶工作考勤表 2026Q4 第二帮扶责任人：韩红梅 当前数据"
            ),
            "1 第一帮扶责任人帮扶工作考勤表 2026Q4"
        );
        assert_eq!(worksheet_name(1, "考勤规则"), "2 考勤规则");
        let long = "很".repeat(40);
        let name = worksheet_name(9, &long);
        assert_eq!(name.chars().count(), 31, "{name}");
        assert!(name.starts_with("10 很"), "{name}");
        assert_eq!(worksheet_name(0, "a/b:c"), "1 abc");
        // Cut before a bracket it cannot close (QA s28a F13).
        assert_eq!(
            worksheet_name(3, "本季度截至2026-12-06尚无入户走访的贫困户（季度未结束）"),
            "4 本季度截至2026-12-06尚无入户走访的贫困户"
        );
    }

    #[test]
    fn a_version_frozen_on_rows_the_helper_did_not_review_says_so() {
        let mut sheet = AttendanceSheet {
            quarter: "2026Q1".parse().unwrap(),
            second_helper: bangfu_shared::api::HelperRef {
                id: 1,
                name: "刘帮扶".into(),
                unit_position: String::new(),
                phone: String::new(),
            },
            town: None,
            rows: vec![],
            policy_source: String::new(),
            rule: String::new(),
            submitted_version: Some(2),
            submitted_at: None,
            submission_id: None,
            reviewed_rows_match: Some(false),
            rows_frozen: None,
        };
        let title = |s: &AttendanceSheet| submitted_sheet_tables(s).remove(0).title;
        assert!(title(&sheet).ends_with("第2版（冻结的数据与责任人审阅时不同（审阅后有变化））"));
        assert!(
            crate::report_pdf::sheet_footer(&sheet, Some("ab")).contains(CHANGED_SINCE_REVIEW_ZH)
        );
        assert!(
            !sheet_tables(&sheet)[0]
                .title
                .contains(CHANGED_SINCE_REVIEW_ZH),
            "live data is not the version"
        );
        for reviewed in [Some(true), None] {
            sheet.reviewed_rows_match = reviewed;
            assert!(title(&sheet).ends_with("第2版"), "{reviewed:?}");
            assert!(
                !crate::report_pdf::sheet_footer(&sheet, Some("ab"))
                    .contains(CHANGED_SINCE_REVIEW_ZH)
            );
        }
    }

    #[test]
    fn a_part_of_a_frozen_version_says_so_and_does_not_claim_the_signature() {
        let row = |id: i64| bangfu_shared::report::SheetRow {
            seq: 1,
            household_id: id,
            head_name: format!("户{id}"),
            village: String::new(),
            first_helper: None,
            records: vec![],
            windows: vec![],
            own_records: vec![],
            own_windows: vec![],
            remark: None,
            exit_on: None,
            exit_days: Vec::new(),
        };
        let sheet = AttendanceSheet {
            quarter: "2026Q1".parse().unwrap(),
            second_helper: bangfu_shared::api::HelperRef {
                id: 1,
                name: "刘帮扶".into(),
                unit_position: String::new(),
                phone: String::new(),
            },
            town: None,
            rows: vec![row(1)],
            policy_source: String::new(),
            rule: String::new(),
            submitted_version: Some(1),
            submitted_at: None,
            submission_id: None,
            reviewed_rows_match: Some(true),
            rows_frozen: None,
        };
        let part = "（本单位可见部分，共3户中的1户；设备签名针对全表）";
        assert!(
            submitted_part_tables(&sheet, 3)[0]
                .title
                .ends_with(&format!("第1版{part}"))
        );
        let footer = crate::report_pdf::sheet_part_footer(&sheet, Some("abcdef"), 3);
        assert!(
            footer.contains("提交版本：1（本单位可见部分，共3户中的1户）"),
            "{footer}"
        );
        assert!(
            footer.contains("全表设备签名（针对全部3户，不单独证明本表所列1户）：abcdef…"),
            "{footer}"
        );
        assert!(!footer.contains("　设备签名："), "{footer}");
        // The whole version, as before.
        assert_eq!(
            submitted_part_tables(&sheet, 1)[0].title,
            submitted_sheet_tables(&sheet)[0].title
        );
        assert_eq!(
            crate::report_pdf::sheet_part_footer(&sheet, Some("abcdef"), 1),
            crate::report_pdf::sheet_footer(&sheet, Some("abcdef"))
        );
        assert!(
            crate::report_pdf::sheet_footer(&sheet, Some("abcdef")).contains("设备签名：abcdef…")
        );
        // Live data names no version to be part of.
        assert!(!sheet_tables(&sheet)[0].title.contains("本单位可见部分"));
    }

    #[test]
    fn a_cell_over_excels_limit_is_cut_with_an_ellipsis_not_a_failed_workbook() {
        let utf16 = |s: &str| s.encode_utf16().count();
        assert_eq!(excel_text("备注"), "备注");
        let exact = "a".repeat(EXCEL_CELL_MAX_UTF16);
        assert_eq!(
            excel_text(&exact),
            exact.as_str(),
            "at the limit it is whole"
        );
        for long in [
            "a".repeat(EXCEL_CELL_MAX_UTF16 + 1),
            "户".repeat(40_000),
            // Two UTF-16 units each: the cut never splits one.
            "😀".repeat(20_000),
            format!("a{}", "😀".repeat(20_000)),
        ] {
            let cut = excel_text(&long);
            assert!(cut.ends_with('…'));
            assert!(utf16(&cut) <= EXCEL_CELL_MAX_UTF16, "{}", utf16(&cut));
            assert!(utf16(&cut) >= EXCEL_CELL_MAX_UTF16 - 1, "{}", utf16(&cut));
            assert!(long.starts_with(cut.trim_end_matches('…')));
        }
        let table = Table {
            title: "t".into(),
            headers: s(&["姓名", "备注"]),
            rows: vec![vec!["张三".into(), "长".repeat(100_000).into()]],
        };
        assert!(to_xlsx(&[table]).is_ok());
    }

    #[test]
    fn xlsx_stores_counts_and_rates_as_numbers() {
        use calamine::{Data, Reader};
        let area = |name: &str, households, required, met| {
            let mut a = AreaRate {
                name: name.into(),
                households,
                required_windows: required,
                met_windows: met,
                rank: Some(1),
                ..AreaRate::default()
            };
            a.finish();
            a
        };
        let towns = [area("东城镇", 60, 420, 351), area("西港镇", 0, 0, 0)];
        let total = area("合计", 60, 420, 351);
        let table = rate_table("t", "镇街", &towns, &total, true);
        let bytes = to_xlsx(&[table]).unwrap();
        let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
        let range = book.worksheet_range_at(0).unwrap().unwrap();
        let row = |r: u32| {
            (0..6)
                .map(|c| range.get_value((r, c)).cloned())
                .collect::<Vec<_>>()
        };
        let float = |x: f64| Some(Data::Float(x));
        let text = |t: &str| Some(Data::String(t.into()));
        assert_eq!(
            row(2),
            [
                float(1.0),
                text("东城镇"),
                float(60.0),
                float(420.0),
                float(351.0),
                float(351.0 / 420.0)
            ]
        );
        // Nothing required: no rate, as text; the total has no rank (empty, not 0).
        assert_eq!(row(3)[5], text("—"));
        assert!(
            matches!(row(4)[0], None | Some(Data::Empty)),
            "{:?}",
            row(4)
        );
        assert_eq!(row(4)[2], float(60.0));
        // CSV prints them as before.
        let csv =
            String::from_utf8(to_csv(&[rate_table("t", "镇街", &towns, &total, true)]).unwrap())
                .unwrap();
        assert!(csv.contains("1,东城镇,60,420,351,83.6%\r\n"), "{csv}");
        assert!(csv.contains(",西港镇,0,0,0,—\r\n"), "{csv}");
    }

    #[test]
    fn csv_cells_that_would_run_as_formulas_are_neutralised() {
        let table = Table {
            title: "t".into(),
            headers: s(&["姓名", "备注"]),
            rows: [
                ["=HYPERLINK(\"http://x\",\"点\")", "+1"],
                ["-2+3", "@SUM(A1)"],
                ["\t=1", "\r=1"],
                ["张三", "a=b"],
                ["", "47.4%"],
            ]
            .map(|r| r.map(Cell::from).to_vec())
            .to_vec(),
        };
        let bytes = to_csv(&[table]).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let cells: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        assert_eq!(
            cells,
            vec![
                s(&["t"]),
                s(&["姓名", "备注"]),
                s(&["'=HYPERLINK(\"http://x\",\"点\")", "'+1"]),
                s(&["'-2+3", "'@SUM(A1)"]),
                s(&["'\t=1", "'\r=1"]),
                s(&["张三", "a=b"]),
                s(&["", "47.4%"]),
            ]
        );
    }
}
