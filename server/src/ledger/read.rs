//! Reading a ledger file into validated rows.
//!
//! CSV (UTF-8 with or without BOM, or GBK/GB18030 as Excel saves it on Chinese Windows)
//! is read record by record; XLSX/XLS/ODS through calamine. Rows above the header (a
//! sheet title, `镇(街)：东城镇`) are recognised; blank rows are skipped; every problem in
//! every row is collected before giving up.

use bangfu_shared::ledger::{self, LedgerRow, PreambleRow, RowError};
use calamine::{Data, Reader};
use std::borrow::Cow;
use std::io::Cursor;

/// Rows above the header that are searched for it.
const MAX_PREAMBLE_ROWS: usize = 20;

/// A file's validated rows, or every error found in it.
#[derive(Debug)]
pub struct ParsedLedger {
    pub rows: Vec<LedgerRow>,
    /// The town named by a title row, if any.
    pub title_town: Option<String>,
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
    let mut collector = Collector::new(known_towns);
    if is_spreadsheet(bytes) {
        read_spreadsheet(bytes, &mut collector)?;
    } else {
        read_csv(bytes, &mut collector)?;
    }
    collector.finish()
}

fn read_csv(bytes: &[u8], out: &mut Collector<'_>) -> Result<(), Vec<RowError>> {
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
    // Rows are counted as a spreadsheet shows them: one per record, even if a quoted
    // cell spans several lines of text.
    let mut line = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                line += 1;
                let cells: Vec<String> = record.iter().map(str::to_string).collect();
                out.push(line, cells);
            }
            Err(e) => {
                return Err(vec![RowError::file(line + 1, format!("CSV格式错误: {e}"))]);
            }
        }
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

fn read_spreadsheet(bytes: &[u8], out: &mut Collector<'_>) -> Result<(), Vec<RowError>> {
    let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
        .map_err(|e| vec![RowError::file(0, format!("无法读取电子表格: {e}"))])?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| vec![RowError::file(0, "电子表格没有工作表")])?
        .map_err(|e| vec![RowError::file(0, format!("无法读取第一个工作表: {e}"))])?;
    let first_row = range.start().map_or(0, |(r, _)| r as usize);
    let first_col = range.start().map_or(0, |(_, c)| c as usize);
    for (i, row) in range.rows().enumerate() {
        let mut cells = vec![String::new(); first_col];
        cells.extend(row.iter().map(cell_text));
        out.push(first_row + i + 1, cells);
    }
    Ok(())
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

/// Collects rows as they are read: finds the header, validates data rows, keeps errors.
struct Collector<'a> {
    known_towns: &'a [String],
    header_seen: bool,
    title_town: Option<String>,
    rows: Vec<LedgerRow>,
    errors: Vec<RowError>,
    seen_rows: usize,
}

impl<'a> Collector<'a> {
    fn new(known_towns: &'a [String]) -> Self {
        Collector {
            known_towns,
            header_seen: false,
            title_town: None,
            rows: Vec::new(),
            errors: Vec::new(),
            seen_rows: 0,
        }
    }

    fn push(&mut self, line: usize, cells: Vec<String>) {
        self.seen_rows += 1;
        if ledger::is_blank(&cells) {
            return;
        }
        if !self.header_seen {
            match ledger::classify_preamble(line, &cells) {
                PreambleRow::Header => self.header_seen = true,
                PreambleRow::TownTitle(t) => self.title_town = Some(t),
                PreambleRow::BadHeader(errs) => {
                    self.header_seen = true;
                    self.errors.extend(errs);
                }
                PreambleRow::Other if self.seen_rows > MAX_PREAMBLE_ROWS => {}
                PreambleRow::Other => {}
            }
            return;
        }
        match ledger::validate_row(line, &cells, self.known_towns, self.title_town.as_deref()) {
            Ok(row) => self.rows.push(row),
            Err(errs) => self.errors.extend(errs),
        }
    }

    fn finish(mut self) -> Result<ParsedLedger, Vec<RowError>> {
        if !self.header_seen {
            return Err(vec![RowError::file(
                0,
                format!(
                    "前{MAX_PREAMBLE_ROWS}行中没有找到表头（应以「序号」开始：{}）",
                    ledger::LEDGER_HEADERS.join("、")
                ),
            )]);
        }
        if self.rows.is_empty() && self.errors.is_empty() {
            return Err(vec![RowError::file(0, "表头下没有数据行")]);
        }
        if self.errors.is_empty() {
            self.errors = ledger::check_file(&self.rows, usize::MAX, usize::MAX);
        }
        if self.errors.is_empty() {
            Ok(ParsedLedger {
                rows: self.rows,
                title_town: self.title_town,
            })
        } else {
            self.errors.sort_by_key(|e| (e.row, e.column_index));
            Err(self.errors)
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
        let with_title = format!("\u{feff}镇(街)：东城镇,,,\r\n{FIXTURE}");
        let parsed = parse(with_title.as_bytes(), &[]).unwrap();
        assert_eq!(parsed.title_town.as_deref(), Some("东城镇"));
        assert_eq!(parsed.rows[0].line, 3);
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
}
