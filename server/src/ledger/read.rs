//! Reading a ledger file into validated rows.
//!
//! CSV (UTF-8 with or without BOM, or GBK/GB18030 as Excel saves it on Chinese Windows)
//! is read record by record, each numbered by the line it starts on, as a text editor
//! shows it (blank lines included). XLSX/XLS/ODS are read through calamine, every
//! worksheet, rows numbered as the spreadsheet shows them.
//!
//! The rules, in the order they apply:
//! - **Merged cells** (XLSX and XLS): every cell of a merged region reads as its
//!   top-left cell. Town offices merge 第二帮扶责任人's name, unit and phone down over
//!   the 3–5 households that helper supervises; each of those rows is that helper's.
//!   (calamine does not report merged regions for ODS.)
//! - **The header** is the row of the first 20 whose cell reads `序号` (in any column:
//!   a sheet may start in column B, after a margin); the twelve ledger columns are read
//!   from there. A non-empty header cell outside them (`身份证号码`, `备注`) is refused
//!   once, at the header row, by name; data under it is not reported again.
//! - **Rows above the header** may name the town (`镇(街)：东城镇`); others are skipped.
//!   Blank rows are skipped everywhere.
//! - **Every worksheet** with a header is read, its rows added to the others'. A sheet
//!   without a header is skipped if it is empty or holds only text, such as a cover or
//!   instructions sheet; one that looks like ledger data (some row holds two or more
//!   phone numbers, as every ledger row does) is refused by name, since skipping it
//!   would silently drop households.
//!
//! Every problem in every row is collected before giving up.

use bangfu_shared::ledger::{self, LedgerRow, PreambleRow, RowError};
use calamine::{Data, Reader, Sheets};
use std::borrow::Cow;
use std::io::Cursor;

/// Rows at the top of a sheet that are searched for the header.
const MAX_PREAMBLE_ROWS: usize = 20;

/// A file's validated rows, or every error found in it.
#[derive(Debug, Default)]
pub struct ParsedLedger {
    pub rows: Vec<LedgerRow>,
    /// The worksheet of each row (parallel to `rows`): `None` for CSV.
    pub sheets: Vec<Option<String>>,
}

/// One table as read: a worksheet (named) or a CSV file (unnamed), each row with the
/// row number the file shows.
struct Table {
    name: Option<String>,
    rows: Vec<(usize, Vec<String>)>,
}

/// Whether the bytes are a spreadsheet (zip or OLE container) rather than CSV text.
pub fn is_spreadsheet(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0])
}

/// Reads and validates a whole ledger file.
pub fn parse(bytes: &[u8], known_towns: &[String]) -> Result<ParsedLedger, Vec<RowError>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(vec![RowError::file(0, "文件为空")]);
    }
    let tables = if is_spreadsheet(bytes) {
        read_spreadsheet(bytes)?
    } else {
        vec![read_csv(bytes)?]
    };
    let mut out = ParsedLedger::default();
    let mut errors = Vec::new();
    let mut headerless = Vec::new();
    let mut any_header = false;
    for table in &tables {
        match find_header(table) {
            Some(header) => {
                any_header = true;
                read_table(table, header, known_towns, &mut out, &mut errors);
            }
            None if looks_like_ledger_data(table) => headerless.push(table.name.as_deref()),
            None => {}
        }
    }
    if !any_header {
        let scope = if tables.len() > 1 {
            "任何工作表的"
        } else {
            ""
        };
        return Err(vec![RowError::file(
            0,
            format!(
                "{scope}前{MAX_PREAMBLE_ROWS}行中没有找到表头（应有「序号」一格，其后依次为：{}）",
                ledger::LEDGER_HEADERS.join("、")
            ),
        )]);
    }
    for name in headerless {
        errors.push(
            RowError::file(
                0,
                format!(
                    "该工作表像是台账数据，但前{MAX_PREAMBLE_ROWS}行中没有「序号」开头的表头；\
                     请补上表头，或把它移到另一个文件"
                ),
            )
            .in_sheet(name),
        );
    }
    if out.rows.is_empty() && errors.is_empty() {
        return Err(vec![RowError::file(0, "表头下没有数据行")]);
    }
    if errors.is_empty() {
        errors = ledger::check_sheets(&out.rows, &out.sheets, usize::MAX, usize::MAX);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn read_csv(bytes: &[u8]) -> Result<Table, Vec<RowError>> {
    let text = decode_text(bytes).ok_or_else(|| {
        vec![RowError::file(
            0,
            "文件既不是UTF-8也不是GBK编码的文本，请另存为CSV(UTF-8)或XLSX",
        )]
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    let mut rows = Vec::new();
    let mut lines = LineCounter::new(text.as_bytes());
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(Table { name: None, rows }),
            Ok(true) => {
                let line = lines.line_at(record.position().map_or(0, |p| p.byte()));
                rows.push((line, record.iter().map(str::to_string).collect()));
            }
            Err(e) => {
                let line = lines.line_at(e.position().map_or(0, |p| p.byte()));
                return Err(vec![RowError::file(line, format!("CSV格式错误: {e}"))]);
            }
        }
    }
}

/// The line a CSV record starts on, as a text editor numbers it.
///
/// Why not the csv reader's own line count: it skips blank lines without counting them
/// in the position it gives the next record, so every row after a blank line would be
/// named one line too high. The byte position it gives is where the previous record
/// ended; the record starts after the line ends that follow.
struct LineCounter<'a> {
    text: &'a [u8],
    at: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a [u8]) -> Self {
        LineCounter {
            text,
            at: 0,
            line: 1,
        }
    }

    /// The line of the first byte at or after `byte` that is not a line end; `byte`
    /// never goes backwards between calls.
    fn line_at(&mut self, byte: u64) -> usize {
        let mut start = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while self
            .text
            .get(start)
            .is_some_and(|b| matches!(b, b'\r' | b'\n'))
        {
            start += 1;
        }
        if start > self.at {
            let newlines = self.text[self.at..start].iter().filter(|&&b| b == b'\n');
            self.line += newlines.count();
            self.at = start;
        }
        self.line
    }
}

/// UTF-8 (a BOM dropped), else GB18030 (a superset of GBK) if it decodes cleanly.
fn decode_text(bytes: &[u8]) -> Option<Cow<'_, str>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Some(Cow::Borrowed(s));
    }
    let (text, _, had_errors) = encoding_rs::GB18030.decode(bytes);
    (!had_errors).then_some(text)
}

/// Every worksheet, in workbook order, merged regions filled from their top-left cell.
fn read_spreadsheet(bytes: &[u8]) -> Result<Vec<Table>, Vec<RowError>> {
    let unreadable =
        |e: &dyn std::fmt::Display| vec![RowError::file(0, format!("无法读取电子表格: {e}"))];
    let mut book =
        calamine::open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(|e| unreadable(&e))?;
    let names = book.sheet_names();
    if names.is_empty() {
        return Err(vec![RowError::file(0, "电子表格没有工作表")]);
    }
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        let sheet_error = |e: &dyn std::fmt::Display| {
            vec![RowError::file(0, format!("无法读取该工作表: {e}")).in_sheet(Some(&name))]
        };
        let range = book.worksheet_range(&name).map_err(|e| sheet_error(&e))?;
        let merged = match &mut book {
            Sheets::Xlsx(x) => x
                .merge_cells_by_sheet_name(&name)
                .map_err(|e| sheet_error(&e))?,
            Sheets::Xls(x) => x
                .merge_cells_by_sheet_name(&name)
                .map_err(|e| sheet_error(&e))?,
            Sheets::Xlsb(_) | Sheets::Ods(_) => Vec::new(),
        };
        let first_row = range.start().map_or(0, |(r, _)| r as usize);
        let first_col = range.start().map_or(0, |(_, c)| c as usize);
        let mut grid: Vec<Vec<String>> = range
            .rows()
            .map(|row| {
                let mut cells = vec![String::new(); first_col];
                cells.extend(row.iter().map(cell_text));
                cells
            })
            .collect();
        fill_merged(&mut grid, first_row, &merged);
        let rows = grid
            .into_iter()
            .enumerate()
            .map(|(i, cells)| (first_row + i + 1, cells))
            .collect();
        tables.push(Table {
            name: Some(name),
            rows,
        });
    }
    Ok(tables)
}

/// Gives every cell of each merged region its top-left cell's text. `grid[i]` is sheet
/// row `first_row + i` (0-based), its cells indexed by sheet column; regions reaching
/// past the used rows are filled only as far as the rows go (a merge alone makes no row).
fn fill_merged(grid: &mut [Vec<String>], first_row: usize, merged: &[calamine::Dimensions]) {
    for region in merged {
        let (top, left) = (region.start.0 as usize, region.start.1 as usize);
        let (bottom, right) = (region.end.0 as usize, region.end.1 as usize);
        let Some(value) = top
            .checked_sub(first_row)
            .and_then(|r| grid.get(r))
            .and_then(|cells| cells.get(left))
            .filter(|v| !v.is_empty())
            .cloned()
        else {
            continue;
        };
        for r in top..=bottom {
            let Some(cells) = r.checked_sub(first_row).and_then(|r| grid.get_mut(r)) else {
                continue;
            };
            if cells.len() <= right {
                cells.resize(right + 1, String::new());
            }
            for cell in &mut cells[left..=right] {
                if cell.is_empty() {
                    cell.clone_from(&value);
                }
            }
        }
    }
}

/// A cell as the clerk sees it: whole numbers without `.0` (序号 and phone numbers are
/// often stored as numbers), text as is.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// Where a table's header is: its index in the table's rows and the column of `序号`.
#[derive(Debug, Clone, Copy)]
struct Header {
    index: usize,
    offset: usize,
}

fn find_header(table: &Table) -> Option<Header> {
    table
        .rows
        .iter()
        .take_while(|(line, _)| *line <= MAX_PREAMBLE_ROWS)
        .enumerate()
        .find_map(|(index, (_, cells))| {
            cells
                .iter()
                .position(|c| ledger::normalize_header(c) == "序号")
                .map(|offset| Header { index, offset })
        })
}

/// Whether a headerless sheet holds ledger rows: some row with two phone numbers.
fn looks_like_ledger_data(table: &Table) -> bool {
    table.rows.iter().any(|(_, cells)| {
        cells
            .iter()
            .filter(|c| {
                let phone: String = ledger::normalize_cell(ledger::col::PHONE, c)
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                ledger::is_valid_phone(&phone)
            })
            .count()
            >= 2
    })
}

/// Reads one table whose header is known: the town title above it, the header's own
/// check, then each data row.
fn read_table(
    table: &Table,
    header: Header,
    known_towns: &[String],
    out: &mut ParsedLedger,
    errors: &mut Vec<RowError>,
) {
    let sheet = table.name.as_deref();
    let width = ledger::LEDGER_HEADERS.len();
    let span = header.offset..header.offset + width;
    let mut title_town = None;
    for (line, cells) in &table.rows[..header.index] {
        // A title merged across the sheet reads once, not once per filled cell.
        let mut cells = cells.clone();
        cells.dedup();
        if let PreambleRow::TownTitle(t) = ledger::classify_preamble(*line, &cells) {
            title_town = Some(t);
        }
    }
    let (header_line, header_cells) = &table.rows[header.index];
    let ours = header_cells
        .get(span.clone())
        .unwrap_or(&header_cells[header.offset..]);
    if let PreambleRow::BadHeader(errs) = ledger::classify_preamble(*header_line, ours) {
        errors.extend(errs.into_iter().map(|e| e.in_sheet(sheet)));
    }
    let named = |j: usize| header_cells.get(j).is_some_and(|c| !c.trim().is_empty());
    for (j, cell) in header_cells.iter().enumerate() {
        if !span.contains(&j) && !cell.trim().is_empty() {
            errors.push(
                RowError::file(
                    *header_line,
                    format!(
                        "第{}列「{}」不是台账的列（台账共{width}列：{}），请删除该列后再导入",
                        j + 1,
                        cell.trim(),
                        ledger::LEDGER_HEADERS.join("、")
                    ),
                )
                .in_sheet(sheet),
            );
        }
    }
    for (line, cells) in &table.rows[header.index + 1..] {
        if ledger::is_blank(cells) {
            continue;
        }
        // Data in a column without a header: the clerk should see where it is.
        if let Some(j) = (0..cells.len())
            .find(|&j| !span.contains(&j) && !named(j) && !cells[j].trim().is_empty())
        {
            errors.push(
                RowError::file(
                    *line,
                    format!("第{}列有内容，但该列没有表头（台账共{width}列）", j + 1),
                )
                .in_sheet(sheet),
            );
        }
        let ours = cells
            .get(span.clone())
            .unwrap_or_else(|| cells.get(header.offset..).unwrap_or_default());
        match ledger::validate_row(*line, ours, known_towns, title_town.as_deref()) {
            Ok(row) => {
                out.rows.push(row);
                out.sheets.push(table.name.clone());
            }
            Err(errs) => errors.extend(errs.into_iter().map(|e| e.in_sheet(sheet))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../../tests/fixtures/ledger-sample.csv");

    #[test]
    fn reads_the_official_fixture() {
        let parsed = parse(FIXTURE.as_bytes(), &[]).unwrap();
        assert_eq!(parsed.rows.len(), 20);
        assert_eq!(parsed.rows[0].head_name, "田晓东");
        assert_eq!(parsed.rows[0].line, 2);
        assert_eq!(parsed.rows[19].line, 21);
    }

    #[test]
    fn bom_title_row_and_gbk_are_accepted() {
        // 城关 has no town suffix: only the title row tells where town and village split.
        let body = FIXTURE.replace(",东城镇", ",城关");
        let with_title = format!("\u{feff}镇(街)：城关,,,\r\n{body}");
        let parsed = parse(with_title.as_bytes(), &[]).unwrap();
        assert_eq!(parsed.rows[0].town, "城关");
        assert_eq!(parsed.rows[0].village, "东城河口村");
        assert_eq!(parsed.rows[0].line, 3);
        assert_eq!(parsed.sheets, vec![None; 20]);
        let (gbk, _, _) = encoding_rs::GBK.encode(FIXTURE);
        assert_eq!(parse(&gbk, &[]).unwrap().rows.len(), 20);
    }

    #[test]
    fn missing_header_and_binary_junk_are_named() {
        let errs = parse("a,b,c\n1,2,3\n".as_bytes(), &[]).unwrap_err();
        assert!(errs[0].reason.contains("表头"), "{errs:?}");
        let errs = parse(&[0xff, 0xfe, 0x00, 0x81, 0x30], &[]).unwrap_err();
        assert!(errs[0].reason.contains("编码"), "{errs:?}");
        let errs = parse(b"PK\x03\x04garbage", &[]).unwrap_err();
        assert!(errs[0].reason.contains("电子表格"), "{errs:?}");
    }

    #[test]
    fn duplicate_rows_in_one_file_are_refused() {
        let mut lines: Vec<&str> = FIXTURE.lines().collect();
        lines.push(lines[1]);
        let errs = parse(lines.join("\n").as_bytes(), &[]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].row, 22);
    }

    /// Rows of the fixture as cells (header first).
    fn fixture_cells() -> Vec<Vec<String>> {
        FIXTURE
            .lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    }

    /// A merged region: first row, first column, last row, last column (0-based).
    type Merge = (u32, u16, u32, u16);
    /// A worksheet: its name, rows (0-based grid) and merged regions.
    type SheetSpec<'a> = (&'a str, Vec<Vec<String>>, Vec<Merge>);

    /// An XLSX workbook of these sheets, as Excel would save them.
    fn xlsx(sheets: &[SheetSpec<'_>]) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        for (name, rows, merges) in sheets {
            let ws = book.add_worksheet();
            ws.set_name(*name).unwrap();
            let merged = |r: u32, c: u16| {
                merges
                    .iter()
                    .any(|&(r1, c1, r2, c2)| (r1..=r2).contains(&r) && (c1..=c2).contains(&c))
            };
            for (r, row) in rows.iter().enumerate() {
                for (c, text) in row.iter().enumerate() {
                    let (r, c) = (r as u32, c as u16);
                    if !text.is_empty() && !merged(r, c) {
                        ws.write_string(r, c, text).unwrap();
                    }
                }
            }
            for &(r1, c1, r2, c2) in merges {
                let text = &rows[r1 as usize][c1 as usize];
                ws.merge_range(r1, c1, r2, c2, text, &rust_xlsxwriter::Format::new())
                    .unwrap();
            }
        }
        book.save_to_buffer().unwrap()
    }

    #[test]
    fn merged_second_helper_cells_fill_every_household_row() {
        use bangfu_shared::ledger::col;
        let mut rows = fixture_cells();
        rows.truncate(6); // header + households 1–5, all with 孔玉梅 as second helper
        for row in &mut rows[2..6] {
            for c in [col::SECOND_NAME, col::SECOND_UNIT, col::SECOND_PHONE] {
                row[c].clear();
            }
        }
        let merges = [col::SECOND_NAME, col::SECOND_UNIT, col::SECOND_PHONE]
            .map(|c| (1, c as u16, 5, c as u16))
            .to_vec();
        let bytes = xlsx(&[("台账", rows, merges)]);
        let parsed = parse(&bytes, &[]).unwrap();
        assert_eq!(parsed.rows.len(), 5);
        for row in &parsed.rows {
            assert_eq!(row.second.name, "孔玉梅", "row {}", row.line);
            assert_eq!(row.second.unit_position, "村委会主任");
            assert_eq!(row.second.phone, "18893287921");
        }
        assert_eq!(parsed.sheets[0].as_deref(), Some("台账"));
    }

    #[test]
    fn every_ledger_sheet_is_read_and_a_cover_sheet_is_skipped() {
        let rows = fixture_cells();
        let cover = vec![
            vec!["填表说明".to_string()],
            vec!["1. 每户一行；第二帮扶责任人可合并单元格。".to_string()],
            vec!["联系人：扶贫办".to_string(), "0535-2212345".to_string()],
        ];
        let first: Vec<Vec<String>> = rows[..11].to_vec();
        let mut second: Vec<Vec<String>> = vec![rows[0].clone()];
        second.extend(rows[11..].iter().cloned());
        let bytes = xlsx(&[
            ("说明", cover, vec![]),
            ("一", first, vec![]),
            ("二", second, vec![]),
        ]);
        let parsed = parse(&bytes, &[]).unwrap();
        assert_eq!(parsed.rows.len(), 20);
        assert_eq!(parsed.rows[10].line, 2, "rows numbered within their sheet");
        assert_eq!(parsed.sheets[10].as_deref(), Some("二"));
        assert_eq!(parsed.sheets[9].as_deref(), Some("一"));
    }

    #[test]
    fn a_sheet_of_ledger_data_without_a_header_is_refused_by_name() {
        let rows = fixture_cells();
        let bytes = xlsx(&[
            ("一", rows[..11].to_vec(), vec![]),
            ("续表", rows[11..].to_vec(), vec![]),
        ]);
        let errs = parse(&bytes, &[]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].sheet.as_deref(), Some("续表"));
        assert!(
            errs[0].to_string().starts_with("工作表「续表」: "),
            "{}",
            errs[0]
        );
        assert!(!errs[0].to_string().contains("第0行"));
    }

    #[test]
    fn rows_on_two_sheets_are_told_apart_in_errors() {
        let rows = fixture_cells();
        let mut second = vec![rows[0].clone(), rows[1].clone()];
        second[1][0] = "21".into();
        let bytes = xlsx(&[("一", rows.clone(), vec![]), ("二", second, vec![])]);
        let errs = parse(&bytes, &[]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].sheet.as_deref(), errs[0].row), (Some("二"), 2));
        assert!(errs[0].reason.contains("工作表「一」第2行"), "{errs:?}");
    }

    #[test]
    fn a_header_in_column_b_is_found_and_an_extra_column_reported_once() {
        let text: String = FIXTURE
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let extra = if i == 0 {
                    "身份证号码"
                } else {
                    "370683199001011234"
                };
                format!(",{l},{extra}\r\n")
            })
            .collect();
        let title = format!("帮扶责任工作台账\r\n{text}");
        let errs = parse(title.as_bytes(), &[]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].row, 2);
        assert!(errs[0].reason.contains("身份证号码"), "{errs:?}");
        assert!(errs[0].reason.contains("第14列"), "{errs:?}");

        // Without the extra column the same file reads, the margin column ignored.
        let text: String = FIXTURE.lines().map(|l| format!(",{l}\r\n")).collect();
        let parsed = parse(text.as_bytes(), &[]).unwrap();
        assert_eq!(parsed.rows.len(), 20);
        assert_eq!(parsed.rows[0].head_name, "田晓东");
        assert_eq!(parsed.rows[0].second.phone, "18893287921");
    }

    #[test]
    fn csv_rows_are_numbered_by_the_line_they_are_on() {
        let mut lines: Vec<String> = FIXTURE.lines().map(str::to_string).collect();
        lines.insert(3, String::new()); // a blank line after the household of line 3
        lines[4] = lines[4].replace("15451450612", "1545145061"); // now on line 5
        let errs = parse(lines.join("\n").as_bytes(), &[]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].row, 5, "{errs:?}");
    }

    #[test]
    fn whole_file_errors_do_not_name_row_zero() {
        let errs = parse("a,b,c\n1,2,3\n".as_bytes(), &[]).unwrap_err();
        assert_eq!(errs[0].row, 0);
        assert!(!errs[0].to_string().contains("第0行"), "{}", errs[0]);
    }
}
