//! Reading a ledger file into validated rows.
//!
//! CSV (UTF-8 with or without BOM, or GBK/GB18030 as Excel saves it on Chinese Windows)
//! is read record by record, each numbered by the line it starts on, as a text editor
//! shows it (blank lines included), and each cell decoded on its own: a cell not in the
//! file's encoding (a stray byte, a row pasted from a file of the other encoding) is
//! refused by row and column, with what it reads as. XLSX/XLS/ODS are read through
//! calamine, every worksheet, rows numbered as the spreadsheet shows them.
//!
//! The rules, in the order they apply:
//! - **Merged cells** (XLSX and XLS): every cell of a merged region reads as its
//!   top-left cell. Town offices merge 第二帮扶责任人's name, unit and phone down over
//!   the 3–5 households that helper supervises; each of those rows is that helper's.
//!   (calamine does not report merged regions for ODS.)
//! - **The header** is the row of the first 20 whose cell reads `序号` (in any column:
//!   a sheet may start in column B, after a margin); the twelve ledger columns are read
//!   from there. A non-empty header cell outside them (`身份证号码`, `备注`) is refused
//!   once, at the header row, by name; data under it is not reported again. A header
//!   whose twelve columns are wrong is refused saying what each should be and what it
//!   is — a column missing, one too many or two swapped said once, as that — and the
//!   rows under it are not checked (read a column off, every one would be refused for
//!   the wrong reason). A header over two rows, and a row naming ledger columns but no
//!   `序号`, are told as such.
//! - **Rows above the header** may name the town (`镇(街)：东城镇`); others are skipped.
//!   Blank rows are skipped everywhere.
//! - **Every worksheet** with a header is read, its rows added to the others'. A sheet
//!   without a header is skipped if it is empty or holds only text, such as a cover or
//!   instructions sheet; one that looks like ledger data (some row holds two or more
//!   phone numbers, as every ledger row does) is refused by name, since skipping it
//!   would silently drop households.
//! - **Formulas** (XLSX) are read as the value the spreadsheet saved with them. A formula
//!   saved without a value (openpyxl and other generators write formulas they cannot
//!   compute so) is refused by sheet, row and column: read as empty it would erase the
//!   stored value, and the server does not compute spreadsheet formulas. XLS and XLSB
//!   always store a formula's value; ODS has none to miss.
//!
//! Every problem in every row is collected before giving up. What makes the file
//! unreadable (see [`parse_rows`]) refuses it whole; a row with a cell error is left
//! out and the other rows are returned with its errors, so that the import checks them
//! against the database in the same answer.

use bangfu_shared::ledger::{self, HelperEntry, LedgerRow, PreambleRow, RowError, col};
use calamine::{Data, DataRef, Reader, Sheets};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::Cursor;

use super::formula;

/// Rows at the top of a sheet that are searched for the header.
const MAX_PREAMBLE_ROWS: usize = 20;

/// A file's rows as read: the rows fit to import, and the errors of those left out.
#[derive(Debug, Default)]
pub struct ParsedLedger {
    /// The rows without an error of their own, in file order.
    pub rows: Vec<LedgerRow>,
    /// The worksheet of each row (parallel to `rows`): `None` for CSV.
    pub sheets: Vec<Option<String>>,
    /// The errors of the rows left out of `rows`: a cell that is not valid, or a rule
    /// across rows broken (see [`parse_rows`]). Each names its sheet and row.
    pub errors: Vec<RowError>,
    /// Every table read, in file order (`None` for CSV): errors are sorted by sheet in
    /// this order, a sheet whose rows were all left out included.
    pub tables: Vec<Option<String>>,
}

/// One table as read: a worksheet (named) or a CSV file (unnamed), each row with the
/// row number the file shows.
struct Table {
    name: Option<String>,
    rows: Vec<(usize, Vec<String>)>,
    /// Formula cells saved without a value: the value is unknown, so the cell must
    /// not be read as empty.
    uncached: Vec<Uncached>,
    /// CSV cells whose bytes are not text in the file's encoding.
    damaged: Vec<Damaged>,
}

/// A CSV cell whose bytes are not text in the file's encoding (see [`read_csv`]).
#[derive(Debug, Clone)]
struct Damaged {
    /// The line the cell's record starts on (1-based).
    line: usize,
    /// The sheet column, 0-based.
    column: usize,
    /// What is wrong and what to do, in Chinese.
    reason: String,
}

/// A formula cell saved without a value.
#[derive(Debug, Clone)]
struct Uncached {
    /// The row as the file shows it (1-based).
    line: usize,
    /// The sheet column, 0-based.
    column: usize,
    /// The formula as written (`=ROW()-1`), when the file spells it out in this cell
    /// (a cell sharing another's formula names only the group).
    formula: Option<String>,
}

/// Whether the bytes are a spreadsheet (zip or OLE container) rather than CSV text.
pub fn is_spreadsheet(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0])
}

/// Reads and validates a whole ledger file: its rows, or every error found in it.
///
/// Any error refuses the file ([`parse_rows`] for the import, which checks the rows
/// without errors against the database before answering).
pub fn parse(bytes: &[u8], known_towns: &[String]) -> Result<ParsedLedger, Vec<RowError>> {
    let parsed = parse_rows(bytes, known_towns)?;
    if parsed.errors.is_empty() {
        Ok(parsed)
    } else {
        Err(parsed.errors)
    }
}

/// Reads a ledger file: the rows that can be imported, and the errors of the others.
///
/// `Err` (every error found) when the file as a whole cannot be read: empty, no header,
/// not text in UTF-8 or GBK, not a spreadsheet calamine can open, too large, a header
/// laid out wrongly (its rows are not checked), a title row above the header that cannot
/// be read, or a sheet of ledger data without a header. Every one of these leaves the
/// rows unknown, or read under the wrong columns.
///
/// Otherwise each row with an error (a cell that is not valid, a cell not in the file's
/// encoding, a formula saved without a value, data under no header) is left out of
/// [`ParsedLedger::rows`] and its errors go to [`ParsedLedger::errors`]. The rules across
/// rows ([`ledger::check_sheets`]: a 序号 twice in one town, a household twice, a phone
/// under two names) see such a row too, with the cells that have an error unknown
/// ([`partial_row`]): a row with a bad phone still holds its 序号, so a later row
/// repeating it is told in the same answer, and an unknown cell never matches another
/// (no error made up from it). A row an error across rows is placed on (always the
/// later of the two) is left out as well; the earlier one is imported as usual.
pub fn parse_rows(bytes: &[u8], known_towns: &[String]) -> Result<ParsedLedger, Vec<RowError>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(vec![RowError::file(0, "文件为空")]);
    }
    let tables = if is_spreadsheet(bytes) {
        read_spreadsheet_guarded(bytes)?
    } else {
        vec![read_csv(bytes)?]
    };
    let mut reading = Reading::default();
    let mut headerless = Vec::new();
    let mut any_header = false;
    for table in &tables {
        match find_header(table) {
            Some(header) => {
                any_header = true;
                read_table(table, header, known_towns, &mut reading);
            }
            None if looks_like_ledger_data(table) => headerless.push(table.name.as_deref()),
            None => {}
        }
    }
    if !any_header {
        return Err(no_header(&tables));
    }
    for name in headerless {
        reading.fatal = true;
        reading.errors.push(
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
    if reading.rows.is_empty() && reading.errors.is_empty() {
        return Err(vec![RowError::file(0, "表头下没有数据行")]);
    }
    if reading.fatal {
        return Err(reading.errors);
    }
    let tables = tables.into_iter().map(|t| t.name).collect();
    Ok(reading.finish(tables))
}

/// The rows of a file as they are read, before the rules across rows.
#[derive(Debug, Default)]
struct Reading {
    /// Every data row in file order: whole when it has no error, else as far as it can
    /// be trusted ([`partial_row`]); a row shifted against its header is not here.
    rows: Vec<LedgerRow>,
    /// The worksheet of each row (parallel to `rows`).
    sheets: Vec<Option<String>>,
    /// Whether each row has no error of its own (parallel to `rows`).
    good: Vec<bool>,
    errors: Vec<RowError>,
    /// Whether an error makes the whole file unreadable (see [`parse_rows`]).
    fatal: bool,
}

impl Reading {
    fn push(&mut self, row: LedgerRow, sheet: Option<&str>, good: bool) {
        self.rows.push(row);
        self.sheets.push(sheet.map(str::to_string));
        self.good.push(good);
    }

    /// Checks the rules across rows and keeps the rows no error is placed on.
    fn finish(mut self, tables: Vec<Option<String>>) -> ParsedLedger {
        let across = ledger::check_sheets(&self.rows, &self.sheets, usize::MAX, usize::MAX);
        self.errors.extend(across);
        let bad: HashSet<(Option<&str>, usize)> = self
            .errors
            .iter()
            .map(|e| (e.sheet.as_deref(), e.row))
            .collect();
        let mut out = ParsedLedger {
            tables,
            ..ParsedLedger::default()
        };
        for ((row, sheet), good) in self.rows.into_iter().zip(self.sheets).zip(self.good) {
            if good && !bad.contains(&(sheet.as_deref(), row.line)) {
                out.rows.push(row);
                out.sheets.push(sheet);
            }
        }
        out.errors = self.errors;
        out
    }
}

/// Why no table has a header: a row that names ledger columns but has no `序号` cell is
/// named with what its 序号 cell holds; a CSV file that is not text in any encoding
/// (its rows are mostly undecodable) is told so; else the header the file should have.
fn no_header(tables: &[Table]) -> Vec<RowError> {
    let named: Vec<RowError> = tables
        .iter()
        .filter_map(|t| {
            t.rows
                .iter()
                .take_while(|(line, _)| *line <= MAX_PREAMBLE_ROWS)
                .find_map(|(line, cells)| {
                    let reason = ledger::headerless_header_reason(cells)?;
                    Some(RowError::file(*line, reason).in_sheet(t.name.as_deref()))
                })
        })
        .collect();
    if !named.is_empty() {
        return named;
    }
    if tables.iter().any(|t| !t.damaged.is_empty()) {
        return vec![RowError::file(
            0,
            "文件既不是UTF-8也不是GBK编码的文本，请另存为CSV(UTF-8)或XLSX",
        )];
    }
    let scope = if tables.len() > 1 {
        "任何工作表的"
    } else {
        ""
    };
    vec![RowError::file(
        0,
        format!(
            "{scope}前{MAX_PREAMBLE_ROWS}行中没有找到表头（应有「序号」一格，其后依次为：{}）",
            ledger::LEDGER_HEADERS.join("、")
        ),
    )]
}

/// Reads a CSV file cell by cell.
///
/// The records are split on the raw bytes (commas, quotes and line ends are ASCII in
/// UTF-8 and GBK alike), then each cell is decoded on its own in the file's encoding
/// ([`Encoding::guess`]). A cell that is not text in it — an invalid byte, or a row
/// pasted from a file of the other encoding — is read as best it can be and noted in
/// [`Table::damaged`], to be refused by row and column: decoding the whole file at once
/// could only say that something somewhere is wrong.
fn read_csv(bytes: &[u8]) -> Result<Table, Vec<RowError>> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if body.starts_with(&[0xFF, 0xFE]) || body.starts_with(&[0xFE, 0xFF]) || body.contains(&0) {
        return Err(vec![RowError::file(
            0,
            "文件不是UTF-8或GBK编码的文本（像是UTF-16编码，如Excel的“Unicode文本”，或不是文本文件），\
             请另存为“CSV UTF-8(逗号分隔)”或XLSX后再导入",
        )]);
    }
    let records = split_records(body)?;
    let encoding = Encoding::guess(body, &records);
    let mut rows = Vec::with_capacity(records.len());
    let mut damaged = Vec::new();
    for (line, fields) in records {
        let mut cells = Vec::with_capacity(fields.len());
        for (column, field) in fields.iter().enumerate() {
            let text = match encoding.decode(field) {
                Ok(text) => text,
                Err((text, reason)) => {
                    damaged.push(Damaged {
                        line,
                        column,
                        reason,
                    });
                    text
                }
            };
            cells.push(formula::strip_inert(&text).to_string());
        }
        rows.push((line, cells));
    }
    Ok(Table {
        name: None,
        rows,
        uncached: Vec::new(),
        damaged,
    })
}

/// A CSV record as raw bytes: the line it starts on and its fields.
type RawRecord = (usize, Vec<Vec<u8>>);

/// The records of a CSV file as raw bytes, each with the line it starts on.
fn split_records(body: &[u8]) -> Result<Vec<RawRecord>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut record = csv::ByteRecord::new();
    let mut records = Vec::new();
    let mut lines = LineCounter::new(body);
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => return Ok(records),
            Ok(true) => {
                let line = lines.line_at(record.position().map_or(0, |p| p.byte()));
                records.push((line, record.iter().map(<[u8]>::to_vec).collect()));
            }
            Err(e) => {
                let line = lines.line_at(e.position().map_or(0, |p| p.byte()));
                return Err(vec![RowError::file(line, format!("CSV格式错误: {e}"))]);
            }
        }
    }
}

/// The text encoding of a CSV file: UTF-8, or GBK as Excel saves CSV on Chinese
/// Windows (read as GB18030, its superset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Gbk,
}

impl Encoding {
    /// UTF-8 for a file that is UTF-8 throughout. Otherwise the encoding most of the
    /// cells with non-ASCII bytes are written in: a clerk who pasted rows from another
    /// file has a file of mostly one encoding. (A BOM decides nothing: an editor may
    /// keep it on a file it saves as GBK.)
    fn guess(body: &[u8], records: &[RawRecord]) -> Encoding {
        if std::str::from_utf8(body).is_ok() {
            return Encoding::Utf8;
        }
        let (mut utf8, mut other) = (0usize, 0usize);
        for field in records.iter().flat_map(|(_, fields)| fields) {
            if field.is_ascii() {
                continue;
            }
            if std::str::from_utf8(field).is_ok() {
                utf8 += 1;
            } else {
                other += 1;
            }
        }
        if utf8 > other {
            Encoding::Utf8
        } else {
            Encoding::Gbk
        }
    }

    /// The cell's text, or the best reading of it and why it is refused.
    fn decode(self, field: &[u8]) -> Result<String, (String, String)> {
        if field.is_ascii() {
            return Ok(String::from_utf8_lossy(field).into_owned());
        }
        match self {
            Encoding::Utf8 => decode_utf8_cell(field),
            Encoding::Gbk => decode_gbk_cell(field),
        }
    }
}

/// A cell of a UTF-8 file. Bytes that are not UTF-8 are told apart: a cell that reads as
/// GBK was pasted from a GBK file; one with Chinese left around them is damaged.
fn decode_utf8_cell(field: &[u8]) -> Result<String, (String, String)> {
    if let Ok(text) = std::str::from_utf8(field) {
        return Ok(text.to_string());
    }
    let lossy = String::from_utf8_lossy(field).into_owned();
    let gbk = gbk_strict(field).filter(|_| !lossy.chars().any(is_cjk));
    match gbk {
        Some(text) => {
            let reason = format!(
                "这一格不是UTF-8编码的文字（按GBK编码读作「{}」），而文件的其余部分是UTF-8编码，\
                 可能是从另一个文件粘贴来的；请重新输入这一格，或把整个文件另存为“CSV UTF-8”后再导入",
                shorten(&text, 30)
            );
            Err((text, reason))
        }
        None => Err(invalid_bytes("UTF-8", lossy)),
    }
}

/// A cell of a GBK file. Chinese written in UTF-8 (three bytes a character) is told
/// apart: GBK text that happens to be valid UTF-8 reads as Latin or Greek letters, not
/// as Chinese, so it is not mistaken for it.
fn decode_gbk_cell(field: &[u8]) -> Result<String, (String, String)> {
    if let Some(text) = std::str::from_utf8(field)
        .ok()
        .filter(|t| t.chars().any(is_cjk))
    {
        let reason = format!(
            "这一格是UTF-8编码的文字（读作「{}」），而文件的其余部分是GBK编码，\
             可能是从另一个文件粘贴来的；请重新输入这一格，或把整个文件另存为“CSV UTF-8”或XLSX后再导入",
            shorten(text, 30)
        );
        return Err((text.to_string(), reason));
    }
    gbk_strict(field).ok_or_else(|| {
        let lossy = encoding_rs::GB18030.decode_without_bom_handling(field).0;
        invalid_bytes("GBK", lossy.into_owned())
    })
}

/// The cell as GB18030 (a superset of GBK), if it is valid in it.
fn gbk_strict(field: &[u8]) -> Option<String> {
    encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(field)
        .map(Cow::into_owned)
}

/// The refusal of a cell with bytes invalid in `encoding`, read as `text`.
fn invalid_bytes(encoding: &str, text: String) -> (String, String) {
    let reason = format!(
        "这一格含有{encoding}编码中无效的字节（读作「{}」，�为无法识别的字节）；请重新输入这一格后再导入",
        shorten(&text, 30)
    );
    (text, reason)
}

/// Whether `c` is a Chinese character (CJK Unified Ideographs and Extension A).
fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
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

/// Why a file taken for a workbook could not be opened, in Chinese: a zip that is no
/// workbook (a Word document or an archive renamed .xlsx) said as such, not in
/// calamine's English (QA s30b M3); anything else with calamine's words as a detail.
fn unreadable_zh(detail: &str) -> String {
    const SAVE_AS: &str = "请在Excel或WPS中打开，另存为XLSX或CSV后再导入";
    if detail.contains("Cannot detect file format") {
        format!("文件不是XLSX、XLS或ODS电子表格（可能是改了扩展名的Word文档或压缩包）：{SAVE_AS}")
    } else {
        format!("无法读取电子表格（{detail}）：{SAVE_AS}")
    }
}

/// [`read_spreadsheet`], a panic inside calamine turned into a refusal of the file.
///
/// Why, as a last resort: calamine parses a cell range such as a merged region's
/// `D1:A1` or a sheet's `<dimension>` by subtracting its corners unchecked, which
/// panics in a build with overflow checks (a release build wraps, and [`fill_merged`]
/// puts the corners in order). calamine gives no access to the sheet's XML to check the
/// references first. The panic stays on the parsing thread; no lock or shared state is
/// held across it, so nothing is left half-changed.
fn read_spreadsheet_guarded(bytes: &[u8]) -> Result<Vec<Table>, Vec<RowError>> {
    std::panic::catch_unwind(|| read_spreadsheet(bytes)).unwrap_or_else(|_| {
        tracing::warn!("calamine panicked reading an uploaded spreadsheet");
        Err(vec![RowError::file(
            0,
            "无法读取电子表格：文件结构有误（如合并单元格或表格范围写反），\
             请用Excel打开后另存为XLSX再导入",
        )])
    })
}

/// Rows a worksheet's cells may reach. A county's ledger is a few thousand households,
/// one row each; this is far beyond any. Checked on every cell as it is read, before
/// anything is allocated for the sheet: calamine's `worksheet_range` allocates a sheet's
/// whole bounding box, so a 2 KB file with text in A1 and XFD1048576 asked for 17 billion
/// cells and aborted the server.
pub const MAX_SHEET_ROWS: u32 = 200_000;

/// Columns a worksheet's cells may reach: the twelve ledger columns, a margin before
/// them and a clerk's notes after them, many times over.
pub const MAX_SHEET_COLUMNS: u32 = 100;

/// Cells a whole spreadsheet may make the server hold, empty ones left of a row's last
/// cell included: 200,000 households of twenty columns. Why besides the two above: one
/// cell in the last column of every row would otherwise hold 20 million.
pub const MAX_FILE_CELLS: usize = 4_000_000;

// A full sheet of the twelve ledger columns fits.
const _: () = assert!(MAX_SHEET_ROWS as usize * 12 <= MAX_FILE_CELLS);

/// Bytes of text a whole spreadsheet may make the server hold. Why: a shared string is
/// stored once in the file but copied into every cell that names it, so a small file
/// can name a long one millions of times.
pub const MAX_FILE_TEXT_BYTES: usize = 64 * 1024 * 1024;

/// Bytes a workbook's zip parts (XLSX, XLSB, ODS) may unpack to, all parts together. Why:
/// calamine inflates a part whole (the shared strings, a cell's text) before any limit
/// above is checked, and deflate packs a run of one letter 1,000 to 1: a 1.5 MB file
/// held 5 GB of memory for 26 s (QA s32b V1). A sheet of 200,000 twelve-column rows is
/// about 100 MB of XML; a real county's ledger a tenth of that.
pub const MAX_UNPACKED_BYTES: u64 = 128 << 20;

/// Refuses a zip-packed workbook whose parts unpack to more than [`MAX_UNPACKED_BYTES`],
/// by inflating them into nothing, the limit reached or not, before calamine reads
/// them: memory stays flat however the sizes the zip declares lie. A file that is not
/// a zip, or one the zip reader cannot open, is left to calamine to name; a part that
/// does not inflate is refused as damaged.
fn check_unpacked(bytes: &[u8]) -> Result<(), Vec<RowError>> {
    use std::io::Read as _;
    if !bytes.starts_with(b"PK") {
        return Ok(());
    }
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(bytes)) else {
        return Ok(());
    };
    let mut left = MAX_UNPACKED_BYTES;
    for i in 0..archive.len() {
        let Ok(part) = archive.by_index(i) else {
            continue;
        };
        // A part that does not inflate as its header says (sizes that lie, a damaged
        // stream) is the file's fault, said in Chinese (QA s32d X9: calamine's
        // "Xml error: I/O error: File is larger than its declared uncompressed size").
        let unpacked =
            std::io::copy(&mut part.take(left + 1), &mut std::io::sink()).map_err(|_| {
                vec![RowError::file(
                    0,
                    "电子表格文件已损坏（压缩内容与文件记载的大小不符）：\
                     请在Excel或WPS中打开，另存为XLSX或CSV后再导入",
                )]
            })?;
        if unpacked > left {
            return Err(vec![RowError::file(
                0,
                format!(
                    "电子表格解压后超过{}MB，不像是一份台账（文件可能已损坏或被改过）；\
                     请在Excel或WPS中打开，删除表格以外的内容，另存为XLSX或CSV后再导入",
                    MAX_UNPACKED_BYTES >> 20
                ),
            )]);
        }
        left -= unpacked;
    }
    Ok(())
}

/// What a spreadsheet's sheets have made the server hold so far (see [`MAX_FILE_CELLS`]).
#[derive(Debug, Default)]
struct Budget {
    cells: usize,
    text_bytes: usize,
    /// Cells visited filling merged regions (regions of a real sheet do not overlap).
    merged: usize,
}

impl Budget {
    fn exceeded(&self) -> bool {
        self.cells > MAX_FILE_CELLS
            || self.merged > MAX_FILE_CELLS
            || self.text_bytes > MAX_FILE_TEXT_BYTES
    }
}

/// The refusal of a spreadsheet that holds more than a ledger can.
fn too_much(sheet: &str) -> Vec<RowError> {
    vec![
        RowError::file(
            0,
            format!(
                "电子表格内容过多（超过{MAX_FILE_CELLS}个单元格或{}MB文字，或合并单元格相互重叠），\
                 不像是一份台账；请删除表格以外的内容后再导入",
                MAX_FILE_TEXT_BYTES >> 20
            ),
        )
        .in_sheet(Some(sheet)),
    ]
}

/// One worksheet's non-empty cells as they are read, each checked against the limits.
struct SheetCells<'a> {
    name: &'a str,
    budget: &'a mut Budget,
    /// `(row, column, text)`, 0-based, in the order read.
    cells: Vec<(u32, u32, String)>,
    /// Formulas saved without a value, `(row, column, formula)`, 0-based.
    uncached: Vec<(u32, u32, Option<String>)>,
}

impl SheetCells<'_> {
    /// Notes a formula saved without a value (see the module documentation), counted
    /// against the limits as a cell.
    fn push_uncached(
        &mut self,
        (row, col): (u32, u32),
        formula: Option<String>,
    ) -> Result<(), Vec<RowError>> {
        self.budget.cells += 1;
        self.budget.text_bytes += formula.as_ref().map_or(0, String::len);
        if self.budget.exceeded() {
            return Err(too_much(self.name));
        }
        self.uncached.push((row, col, formula));
        Ok(())
    }

    /// Adds a cell; blank ones are left out (they read as empty anyway), so stray
    /// formatting far out in a sheet is no reason to refuse it.
    fn push(&mut self, (row, col): (u32, u32), text: &str) -> Result<(), Vec<RowError>> {
        let text = formula::strip_inert(text);
        if text.trim().is_empty() {
            return Ok(());
        }
        if row >= MAX_SHEET_ROWS || col >= MAX_SHEET_COLUMNS {
            return Err(vec![
                RowError::file(
                    0,
                    format!(
                        "工作表过大：第{}行第{}列有内容，超出台账工作表的上限\
                         （{MAX_SHEET_ROWS}行、{MAX_SHEET_COLUMNS}列）；请删除表格以外的内容后再导入",
                        u64::from(row) + 1,
                        u64::from(col) + 1
                    ),
                )
                .in_sheet(Some(self.name)),
            ]);
        }
        self.budget.cells += 1;
        self.budget.text_bytes += text.len();
        if self.budget.exceeded() {
            return Err(too_much(self.name));
        }
        self.cells.push((row, col, text.to_owned()));
        Ok(())
    }

    /// The sheet as rows: `(first row, rows)`, `rows[i]` being sheet row `first + i`
    /// (0-based), from the first row with a cell to the last, each row's cells indexed by
    /// sheet column up to its last cell.
    fn into_grid(mut self) -> Result<(usize, Vec<Vec<String>>), Vec<RowError>> {
        self.cells.sort_unstable_by_key(|&(r, c, _)| (r, c));
        let (Some(&(first, ..)), Some(&(last, ..))) = (self.cells.first(), self.cells.last())
        else {
            return Ok((0, Vec::new()));
        };
        // Rows without cells hold nothing; a row holds its cells up to its last, empty
        // ones included, and those are what the budget counts from here on.
        let mut grid: Vec<Vec<String>> = vec![Vec::new(); (last - first) as usize + 1];
        let mut widths = vec![0usize; grid.len()];
        for &(r, c, _) in &self.cells {
            widths[(r - first) as usize] = c as usize + 1;
        }
        self.budget.cells =
            self.budget.cells.saturating_sub(self.cells.len()) + widths.iter().sum::<usize>();
        if self.budget.exceeded() {
            return Err(too_much(self.name));
        }
        for (row, width) in grid.iter_mut().zip(widths) {
            row.resize(width, String::new());
        }
        for (r, c, text) in self.cells {
            grid[(r - first) as usize][c as usize] = text;
        }
        Ok((first as usize, grid))
    }
}

/// A cell the cell readers give, as [`cell_text`] writes it.
fn ref_text<'a>(cell: &'a DataRef<'_>) -> Cow<'a, str> {
    match cell {
        DataRef::SharedString(s) => Cow::Borrowed(s),
        DataRef::String(s) => Cow::Borrowed(s.as_str()),
        DataRef::Empty => Cow::Borrowed(""),
        other => Cow::Owned(cell_text(&Data::from(other.clone()))),
    }
}

/// Every worksheet, in workbook order, merged regions filled from their top-left cell.
///
/// Why calamine's cell readers, not `worksheet_range`, for XLSX and XLSB: they stream
/// the cells, so a sheet is checked against [`MAX_SHEET_ROWS`] and the other limits
/// before anything is allocated for it. XLS and ODS sheets calamine reads whole when it
/// opens the workbook, before any check here can run (an XLS sheet holds at most
/// 65,536 × 256 cells; ODS is bounded only by calamine's own cap); their cells are
/// checked the same way afterwards.
fn read_spreadsheet(bytes: &[u8]) -> Result<Vec<Table>, Vec<RowError>> {
    check_unpacked(bytes)?;
    let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
        .map_err(|e| vec![RowError::file(0, unreadable_zh(&e.to_string()))])?;
    let names = book.sheet_names();
    if names.is_empty() {
        return Err(vec![RowError::file(0, "电子表格没有工作表")]);
    }
    let mut budget = Budget::default();
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        let sheet_error = |e: &dyn std::fmt::Display| {
            vec![RowError::file(0, format!("无法读取该工作表: {e}")).in_sheet(Some(&name))]
        };
        let mut cells = SheetCells {
            name: &name,
            budget: &mut budget,
            cells: Vec::new(),
            uncached: Vec::new(),
        };
        let merged = match &mut book {
            Sheets::Xlsx(x) => {
                match x.worksheet_cells_reader(&name) {
                    Ok(mut reader) => {
                        while let Some(cell) = reader
                            .next_cell_with_formula_metadata()
                            .map_err(|e| sheet_error(&e))?
                        {
                            if let (Some(f), DataRef::Empty) = (&cell.formula, &cell.value) {
                                cells.push_uncached(cell.pos, formula_text(f))?;
                            } else {
                                cells.push(cell.pos, &ref_text(&cell.value))?;
                            }
                        }
                    }
                    // A chart sheet: no cells (as `worksheet_range` reads it).
                    Err(calamine::XlsxError::NotAWorksheet(_)) => {}
                    Err(e) => return Err(sheet_error(&e)),
                }
                x.merge_cells_by_sheet_name(&name)
                    .map_err(|e| sheet_error(&e))?
            }
            Sheets::Xlsb(x) => {
                let mut reader = x
                    .worksheet_cells_reader(&name)
                    .map_err(|e| sheet_error(&e))?;
                while let Some(cell) = reader.next_cell().map_err(|e| sheet_error(&e))? {
                    cells.push(cell.get_position(), &ref_text(cell.get_value()))?;
                }
                Vec::new()
            }
            Sheets::Xls(x) => {
                let range = x.worksheet_range(&name).map_err(|e| sheet_error(&e))?;
                push_range(&mut cells, &range)?;
                x.merge_cells_by_sheet_name(&name)
                    .map_err(|e| sheet_error(&e))?
            }
            Sheets::Ods(x) => {
                let range = x.worksheet_range(&name).map_err(|e| sheet_error(&e))?;
                push_range(&mut cells, &range)?;
                Vec::new()
            }
        };
        let uncached = std::mem::take(&mut cells.uncached)
            .into_iter()
            .map(|(r, c, formula)| Uncached {
                line: r as usize + 1,
                column: c as usize,
                formula,
            })
            .collect();
        let (first_row, mut grid) = cells.into_grid()?;
        fill_merged(&mut grid, first_row, &merged, &mut budget).map_err(|()| too_much(&name))?;
        let rows = grid
            .into_iter()
            .enumerate()
            .map(|(i, cells)| (first_row + i + 1, cells))
            .collect();
        tables.push(Table {
            name: Some(name),
            rows,
            uncached,
            damaged: Vec::new(),
        });
    }
    Ok(tables)
}

/// A formula's text as the clerk typed it (`=ROW()-1`), if the cell holds it.
fn formula_text(f: &calamine::XlsxFormulaMetadata) -> Option<String> {
    match f {
        calamine::XlsxFormulaMetadata::Normal { formula }
        | calamine::XlsxFormulaMetadata::Shared { formula, .. } => Some(format!("={formula}")),
        _ => None,
    }
}

/// The used cells of a range calamine has already read whole.
fn push_range(
    cells: &mut SheetCells<'_>,
    range: &calamine::Range<Data>,
) -> Result<(), Vec<RowError>> {
    let (top, left) = range.start().unwrap_or((0, 0));
    for (r, c, value) in range.used_cells() {
        let at = (
            top.saturating_add(u32::try_from(r).unwrap_or(u32::MAX)),
            left.saturating_add(u32::try_from(c).unwrap_or(u32::MAX)),
        );
        cells.push(at, &cell_text(value))?;
    }
    Ok(())
}

/// Gives every cell of each merged region its top-left cell's text. `grid[i]` is sheet
/// row `first_row + i` (0-based), its cells indexed by sheet column; regions reaching
/// past the used rows are filled only as far as the rows go (a merge alone makes no row).
///
/// A region written backwards (`D1:A1`, which no spreadsheet program writes but a file
/// may hold) is read as the region between its corners; one reaching past
/// [`MAX_SHEET_COLUMNS`] is filled only up to it. `Err` when the regions together cover
/// more than a file may hold (see [`Budget`]): they overlap, as a real sheet's never do.
fn fill_merged(
    grid: &mut [Vec<String>],
    first_row: usize,
    merged: &[calamine::Dimensions],
    budget: &mut Budget,
) -> Result<(), ()> {
    let Some(last_row) = (first_row + grid.len()).checked_sub(1) else {
        return Ok(());
    };
    for region in merged {
        let (r1, r2) = (region.start.0 as usize, region.end.0 as usize);
        let (c1, c2) = (region.start.1 as usize, region.end.1 as usize);
        let (top, bottom) = (r1.min(r2), r1.max(r2).min(last_row));
        let (left, right) = (c1.min(c2), c1.max(c2).min(MAX_SHEET_COLUMNS as usize - 1));
        if top > bottom || left > right {
            continue;
        }
        let Some(value) = top
            .checked_sub(first_row)
            .and_then(|r| grid.get(r))
            .and_then(|cells| cells.get(left))
            .filter(|v| !v.is_empty())
            .cloned()
        else {
            continue;
        };
        let width = right - left + 1;
        budget.merged += (bottom - top + 1) * width;
        if budget.exceeded() {
            return Err(());
        }
        for r in top..=bottom {
            let Some(cells) = r.checked_sub(first_row).and_then(|r| grid.get_mut(r)) else {
                continue;
            };
            if cells.len() <= right {
                budget.cells += right + 1 - cells.len();
                if budget.exceeded() {
                    return Err(());
                }
                cells.resize(right + 1, String::new());
            }
            for cell in cells.iter_mut().skip(left).take(width) {
                if cell.is_empty() {
                    cell.clone_from(&value);
                }
            }
        }
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
///
/// A header whose ledger columns are wrong (one missing, one too many, two swapped,
/// renamed) is refused and its data rows are not checked: read under the wrong headers,
/// every row would be refused for what its cells would mean in another column (a name
/// that is no address, a unit that is no phone), hiding the one mistake in the header.
/// Any error of the header, or of a cell at or above it, makes the file unreadable
/// ([`Reading::fatal`]); an error of a data row's cell leaves that row out.
fn read_table(table: &Table, header: Header, known_towns: &[String], reading: &mut Reading) {
    let sheet = table.name.as_deref();
    let title_town = title_town(table, header);
    let header_line = table.rows[header.index].0;
    let (uncached, mut unchecked) = uncached_errors(table, header);
    let (damaged, damaged_cells) = damaged_errors(table, header);
    unchecked.extend(damaged_cells);
    let flagged = flagged_cells(damaged.iter().chain(&uncached), header_line, reading);
    reading
        .errors
        .extend(damaged.into_iter().map(|e| e.in_sheet(sheet)));
    let before = reading.errors.len();
    let aligned = check_header(table, header, &mut reading.errors);
    reading.fatal |= reading.errors.len() > before;
    if aligned {
        let layout = Layout {
            header,
            header_cells: &table.rows[header.index].1,
            known_towns,
            title_town: title_town.as_deref(),
        };
        for (line, cells) in &table.rows[header.index + 1..] {
            if ledger::is_blank(cells) {
                continue;
            }
            let flags = flagged.get(line);
            match read_row(*line, cells, &layout) {
                Ok(row) if flags.is_none() => reading.push(row, sheet, true),
                read => {
                    let errs = read.err().unwrap_or_default();
                    let mut unknown = flags.cloned().unwrap_or_default();
                    unknown.extend(errs.iter().filter_map(|e| e.column_index.checked_sub(1)));
                    reading.errors.extend(
                        errs.into_iter()
                            .filter(|e| !unchecked.contains(&(e.row, e.column_index)))
                            .map(|e| e.in_sheet(sheet)),
                    );
                    if let Some(row) = partial_row(*line, cells, &layout, &unknown, reading) {
                        reading.push(row, sheet, false);
                    }
                }
            }
        }
    }
    reading.errors.extend(uncached);
}

/// The ledger columns (0-based) of each data row that cannot be read as the file has
/// them (a damaged CSV cell, a formula without a value), by row; a row with such a cell
/// outside the ledger columns is there with no column. Such a cell at or above the
/// header makes the file unreadable (a title row naming the town, the header itself).
fn flagged_cells<'a>(
    errors: impl Iterator<Item = &'a RowError>,
    header_line: usize,
    reading: &mut Reading,
) -> HashMap<usize, HashSet<usize>> {
    let mut flagged: HashMap<usize, HashSet<usize>> = HashMap::new();
    for e in errors {
        if e.row > header_line {
            flagged
                .entry(e.row)
                .or_default()
                .extend(e.column_index.checked_sub(1));
        } else {
            reading.fatal = true;
        }
    }
    flagged
}

/// A row with errors as the rules across rows may see it: each cell read as
/// [`ledger::validate_row`] reads it, and what depends on a cell in `unknown` (0-based
/// ledger columns with an error) made unknown — a text no cell can hold, different in
/// every row and column, so it never matches another ([`Partial::unknown`]). The household (town,
/// village, head, phone) is unknown when any of its cells is, the town also when the
/// 序号 is (序号 is unique per town), and a helper when their name or phone is. `None`
/// for a row shifted against its header: none of its cells is where it should be.
fn partial_row(
    line: usize,
    cells: &[String],
    layout: &Layout<'_>,
    unknown: &HashSet<usize>,
    reading: &Reading,
) -> Option<LedgerRow> {
    if shifted(cells, layout.header).is_some() {
        return None;
    }
    let p = Partial {
        cells: ledger_cells(cells, layout.header),
        unknown,
        index: reading.rows.len(),
    };
    let seq = p
        .text(col::SEQ)
        .parse::<u32>()
        .ok()
        .filter(|_| p.known(col::SEQ));
    let address = p.text(col::ADDRESS);
    let (town, village) = ledger::split_address(&address, layout.known_towns, layout.title_town)
        .filter(|_| p.known(col::ADDRESS) && seq.is_some())
        .unwrap_or_else(|| (p.unknown(col::ADDRESS), p.unknown(col::ADDRESS)));
    Some(LedgerRow {
        line,
        seq: seq.unwrap_or(0),
        head_name: p.or_unknown(col::HEAD_NAME, p.text(col::HEAD_NAME)),
        town,
        village,
        cause: p.text(col::CAUSE),
        measures: p.text(col::MEASURES),
        phone: p.or_unknown(col::PHONE, p.phone(col::PHONE)),
        first: p.helper(col::FIRST_NAME, col::FIRST_UNIT, col::FIRST_PHONE),
        second: p.helper(col::SECOND_NAME, col::SECOND_UNIT, col::SECOND_PHONE),
    })
}

/// The cells of a row with errors, read for [`partial_row`].
struct Partial<'a> {
    /// The row's cells under the ledger columns.
    cells: &'a [String],
    /// Ledger columns (0-based) whose cell has an error.
    unknown: &'a HashSet<usize>,
    /// The row's place among the rows read, to make its unknown values its own.
    index: usize,
}

impl Partial<'_> {
    /// Column `c` as [`ledger::validate_row`] reads it: normalised and trimmed.
    fn text(&self, c: usize) -> String {
        let cell = self.cells.get(c).map_or("", String::as_str);
        ledger::normalize_cell(c, cell).trim().to_string()
    }

    /// A phone column without its spaces, as [`ledger::validate_row`] reads it.
    fn phone(&self, c: usize) -> String {
        self.text(c)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect()
    }

    fn known(&self, c: usize) -> bool {
        !self.unknown.contains(&c)
    }

    /// The unknown value of column `c`: a text no clerk types (it starts with NUL, which
    /// a CSV file is refused for), its own for each row and column, so that it never
    /// matches another cell (not even the other helper's unknown phone of the same row).
    /// A crafted spreadsheet holding it would earn itself a spurious error, no more.
    fn unknown(&self, c: usize) -> String {
        format!("\0unknown{}:{c}", self.index)
    }

    fn or_unknown(&self, c: usize, value: String) -> String {
        if self.known(c) {
            value
        } else {
            self.unknown(c)
        }
    }

    /// A helper, unknown as a whole when their name or phone is: the rules across rows
    /// compare the two together.
    fn helper(&self, name: usize, unit: usize, phone: usize) -> HelperEntry {
        let known = self.known(name) && self.known(phone);
        HelperEntry {
            name: self.or_unknown(name, self.text(name)),
            unit_position: self.text(unit),
            phone: if known {
                self.phone(phone)
            } else {
                self.unknown(phone)
            },
        }
    }
}

/// The town a title row above the header names (`镇(街)：东城镇`), if any.
fn title_town(table: &Table, header: Header) -> Option<String> {
    let mut town = None;
    for (line, cells) in &table.rows[..header.index] {
        // A title merged across the sheet reads once, not once per filled cell.
        let mut cells = cells.clone();
        cells.dedup();
        if let PreambleRow::TownTitle(t) = ledger::classify_preamble(*line, &cells) {
            town = Some(t);
        }
    }
    town
}

/// Checks the header row ([`ledger::header_errors`]), a header continued on the row
/// under it, and header cells left of `序号`. Whether the ledger columns are where the
/// data rows can be read (extra columns after them are refused, but do not move them).
fn check_header(table: &Table, header: Header, errors: &mut Vec<RowError>) -> bool {
    let sheet = table.name.as_deref();
    let (line, cells) = &table.rows[header.index];
    let from_seq = cells.get(header.offset..).unwrap_or_default();
    let found = ledger::header_errors(*line, from_seq, header.offset);
    let aligned = found.iter().all(|e| e.column_index == 0);
    errors.extend(found.into_iter().map(|e| e.in_sheet(sheet)));
    for (j, cell) in cells.iter().enumerate().take(header.offset) {
        if !cell.trim().is_empty() {
            errors.push(
                RowError::file(
                    *line,
                    format!(
                        "第{}列「{}」不是台账的列：表头应从「序号」开始，请删除该列后再导入",
                        j + 1,
                        cell.trim()
                    ),
                )
                .in_sheet(sheet),
            );
        }
    }
    if aligned {
        return true;
    }
    let next = table.rows[header.index + 1..]
        .iter()
        .find(|(_, cells)| !ledger::is_blank(cells));
    if let Some((next_line, next_cells)) = next {
        let from_seq = next_cells.get(header.offset..).unwrap_or_default();
        if ledger::continues_header(from_seq) {
            errors.push(
                RowError::file(
                    *next_line,
                    format!(
                        "表头占了两行（第{line}行和第{next_line}行）：台账的表头应在一行之内，依次为：{}；\
                         请把两行合并为一行（如「第一帮扶责任人」与「姓名」合为「第一帮扶责任人姓名」）后再导入",
                        ledger::LEDGER_HEADERS.join("、")
                    ),
                )
                .in_sheet(sheet),
            );
        }
    }
    errors.push(
        RowError::file(*line, "表头有误，其下各行未逐格检查；请先改正表头后再导入").in_sheet(sheet),
    );
    false
}

/// What a data row is read against.
struct Layout<'a> {
    header: Header,
    /// The header row's cells, from column A.
    header_cells: &'a [String],
    known_towns: &'a [String],
    title_town: Option<&'a str>,
}

/// Reads one data row under a header that is right: cells left of `序号` mean the row
/// is shifted against the header (nothing else is checked, every cell would be read a
/// column off); data under no header is refused by column (data under an extra column's
/// header is not: the header row's refusal names that column once).
fn read_row(
    line: usize,
    cells: &[String],
    layout: &Layout<'_>,
) -> Result<LedgerRow, Vec<RowError>> {
    let header = layout.header;
    let width = ledger::LEDGER_HEADERS.len();
    let span = header.offset..header.offset + width;
    if let Some(j) = shifted(cells, header) {
        return Err(vec![RowError::file(
            line,
            format!(
                "第{}列有内容，但表头的「序号」在第{}列：本行与表头错开了，请对齐后再导入",
                j + 1,
                header.offset + 1
            ),
        )]);
    }
    let mut errors = Vec::new();
    // Data in a column without a header: the clerk should see where it is.
    let named = |j: usize| {
        layout
            .header_cells
            .get(j)
            .is_some_and(|c| !c.trim().is_empty())
    };
    if let Some(j) = (span.end..cells.len()).find(|&j| !named(j) && !cells[j].trim().is_empty()) {
        errors.push(RowError::file(
            line,
            format!("第{}列有内容，但该列没有表头（台账共{width}列）", j + 1),
        ));
    }
    let ours = ledger_cells(cells, header);
    match ledger::validate_row(line, ours, layout.known_towns, layout.title_town) {
        Ok(row) if errors.is_empty() => Ok(row),
        Ok(_) => Err(errors),
        Err(errs) => {
            errors.extend(errs);
            Err(errors)
        }
    }
}

/// The first column left of `序号` with content: the row is shifted against its header.
fn shifted(cells: &[String], header: Header) -> Option<usize> {
    (0..header.offset.min(cells.len())).find(|&j| !cells[j].trim().is_empty())
}

/// A data row's cells under the twelve ledger columns (fewer when the row ends early).
fn ledger_cells(cells: &[String], header: Header) -> &[String] {
    let span = header.offset..header.offset + ledger::LEDGER_HEADERS.len();
    cells
        .get(span)
        .unwrap_or_else(|| cells.get(header.offset..).unwrap_or_default())
}

/// The refusal of each CSV cell whose bytes are not text in the file's encoding (see
/// [`read_csv`]), and the cells it names as `(row, 1-based ledger column)`: what
/// validation would say about them besides is about the misread text, and left out.
fn damaged_errors(table: &Table, header: Header) -> (Vec<RowError>, HashSet<(usize, usize)>) {
    let span = header.offset..header.offset + ledger::LEDGER_HEADERS.len();
    let header_line = table.rows[header.index].0;
    let mut cells = HashSet::new();
    let errors = table
        .damaged
        .iter()
        .map(|d| {
            // Above the header (a title row) a cell is under no ledger column.
            if d.line >= header_line && span.contains(&d.column) {
                cells.insert((d.line, d.column - header.offset + 1));
                RowError::cell(d.line, d.column - header.offset, d.reason.clone())
            } else {
                RowError::file(d.line, format!("第{}列：{}", d.column + 1, d.reason))
            }
        })
        .collect();
    (errors, cells)
}

/// The refusal of each formula cell saved without a value, and the cells it names as
/// `(row, 1-based ledger column)`.
///
/// Why refused rather than read as empty: an empty 联系方式 would overwrite the stored
/// phone, an empty 序号 reads as 「」不是正整数, which does not say why; the server does
/// not compute spreadsheet formulas, so the clerk must save the values. A validation
/// error about the same (empty) cell says nothing more and is left out.
fn uncached_errors(table: &Table, header: Header) -> (Vec<RowError>, HashSet<(usize, usize)>) {
    let span = header.offset..header.offset + ledger::LEDGER_HEADERS.len();
    let mut cells = HashSet::new();
    let errors = table
        .uncached
        .iter()
        .map(|u| {
            let reference = format!("{}{}", column_letters(u.column), u.line);
            let what = match &u.formula {
                Some(f) => format!("「{}」", shorten(f, 60)),
                None => "该格".to_string(),
            };
            let reason = format!(
                "{what}是公式且没有保存的计算结果（单元格{reference}），\
                 请在 Excel/WPS 中打开后另存，或粘贴为数值后再导入"
            );
            let error = if span.contains(&u.column) {
                cells.insert((u.line, u.column - header.offset + 1));
                RowError::cell(u.line, u.column - header.offset, reason)
            } else {
                RowError::file(u.line, reason)
            };
            error.in_sheet(table.name.as_deref())
        })
        .collect();
    (errors, cells)
}

/// A sheet column as a spreadsheet letters it: 0 → `A`, 25 → `Z`, 26 → `AA`.
fn column_letters(column: usize) -> String {
    let mut n = column + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// `text` cut to `max` characters, "…" marking a cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push('…');
    cut
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
        // A BOM an editor kept on a file it saved as GBK.
        let gbk_with_bom = [&b"\xEF\xBB\xBF"[..], &gbk].concat();
        assert_eq!(
            parse(&gbk_with_bom, &[]).unwrap().rows[0].head_name,
            "田晓东"
        );
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

    /// The lines of the rows read, and the (row, column) of each error.
    fn lines_and_errors(text: &str) -> (Vec<usize>, Vec<(usize, usize)>) {
        let parsed = parse_rows(text.as_bytes(), &[]).unwrap();
        let lines = parsed.rows.iter().map(|r| r.line).collect();
        let at = parsed
            .errors
            .iter()
            .map(|e| (e.row, e.column_index))
            .collect();
        (lines, at)
    }

    #[test]
    fn a_row_with_a_bad_cell_is_left_out_and_the_others_are_kept() {
        let text = fixture_cells_edited(|i, c| {
            if i == 5 {
                c[ledger::col::PHONE] = "123".into();
            }
        });
        let (lines, at) = lines_and_errors(&text);
        assert_eq!(at, [(6, 6)]);
        let expected: Vec<usize> = (2..=21).filter(|&l| l != 6).collect();
        assert_eq!(lines, expected);
        assert!(
            parse(text.as_bytes(), &[]).is_err(),
            "parse refuses it whole"
        );
    }

    #[test]
    fn a_bad_rows_serial_number_still_counts_in_its_town() {
        // Line 3 (序号2) has an invalid phone; line 4 repeats its 序号.
        let text = fixture_cells_edited(|i, c| match i {
            2 => c[ledger::col::PHONE] = "123".into(),
            3 => c[ledger::col::SEQ] = "2".into(),
            _ => {}
        });
        let parsed = parse_rows(text.as_bytes(), &[]).unwrap();
        let at: Vec<(usize, usize)> = parsed
            .errors
            .iter()
            .map(|e| (e.row, e.column_index))
            .collect();
        assert_eq!(at, [(3, 6), (4, 1)], "{:?}", parsed.errors);
        assert!(
            parsed.errors[1].reason.starts_with("序号2与第3行重复"),
            "{:?}",
            parsed.errors
        );
        assert_eq!(parsed.rows.len(), 18, "both rows left out");
    }

    #[test]
    fn a_bad_cell_matches_no_other_row() {
        let cells = fixture_cells();
        let text = fixture_cells_edited(|i, c| match i {
            // Two 序号 that are not numbers, in one town.
            2 => c[ledger::col::SEQ] = "x".into(),
            3 => c[ledger::col::SEQ] = "y".into(),
            // A first helper without a name, with line 7's first helper's phone.
            5 => {
                c[ledger::col::FIRST_NAME] = String::new();
                c[ledger::col::FIRST_PHONE] = cells[6][ledger::col::FIRST_PHONE].clone();
            }
            // No address, with line 9's 序号.
            7 => {
                c[ledger::col::ADDRESS] = String::new();
                c[ledger::col::SEQ] = cells[8][ledger::col::SEQ].clone();
            }
            // Both helpers' phones invalid: two unknown phones, not one under two names.
            9 => {
                c[ledger::col::FIRST_PHONE] = "1".into();
                c[ledger::col::SECOND_PHONE] = "2".into();
            }
            _ => {}
        });
        let (lines, at) = lines_and_errors(&text);
        assert_eq!(at, [(3, 1), (4, 1), (6, 7), (8, 3), (10, 9), (10, 12)]);
        assert_eq!(lines.len(), 15);
    }

    #[test]
    fn a_file_that_cannot_be_read_as_a_whole_is_refused_whole() {
        // A header missing a column: its rows are not read.
        let text = fixture_cells_edited(|_, c| {
            c.remove(ledger::col::HEAD_NAME);
        });
        assert!(parse_rows(text.as_bytes(), &[]).is_err());
        // A title row that is not text in the file's encoding.
        let title = encoding_rs::GBK.encode("镇(街)：东城镇\r\n").0;
        let bytes = [&title[..], FIXTURE.as_bytes()].concat();
        assert!(parse_rows(&bytes, &[]).is_err());
        // Data under no header, in a row: only that row is left out.
        let text = fixture_cells_edited(|i, c| {
            if i == 4 {
                c.push("备注".into());
            }
        });
        let (lines, at) = lines_and_errors(&text);
        assert_eq!(at, [(5, 0)]);
        assert_eq!(lines.len(), 19);
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

    /// The refusal of a header on rows 1 and 2 says so at row 2 and refuses no data row.
    fn assert_told_as_two_header_rows(errs: &[RowError]) {
        let two = errs.iter().find(|e| e.row == 2).unwrap();
        assert!(
            two.reason.starts_with("表头占了两行（第1行和第2行）"),
            "{errs:?}"
        );
        assert!(
            errs.iter().all(|e| e.row <= 2),
            "no data row refused: {errs:?}"
        );
    }

    #[test]
    fn a_merged_header_over_two_rows_is_told_so() {
        let mut rows = fixture_cells();
        let mut top = rows[0].clone();
        for (c, group) in [(6, "第一帮扶责任人"), (9, "第二帮扶责任人")] {
            top[c] = group.into();
            top[c + 1].clear();
            top[c + 2].clear();
        }
        let mut under = vec![String::new(); 12];
        for c in [6, 9] {
            under[c] = "姓名".into();
            under[c + 1] = "工作单位及职务".into();
            under[c + 2] = "联系方式".into();
        }
        rows.splice(0..1, [top, under]);
        // 序号 … 联系方式 merged down over both rows, each helper's group across three.
        let mut merges: Vec<Merge> = (0..6).map(|c| (0, c, 1, c)).collect();
        merges.extend([(0, 6, 0, 8), (0, 9, 0, 11)]);
        let errs = parse(&xlsx(&[("台账", rows, merges)]), &[]).unwrap_err();
        let first = &errs[0];
        assert_eq!((first.row, first.column_index), (1, 7), "{errs:?}");
        assert_eq!(
            first.reason,
            "应为「第一帮扶责任人姓名」，实为「第一帮扶责任人」"
        );
        assert_told_as_two_header_rows(&errs);
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

    /// The fixture with line `at` (0-based, the header being 0) made by `f` from its bytes.
    fn fixture_with_line(at: usize, f: impl Fn(&str) -> Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, line) in FIXTURE.lines().enumerate() {
            if i == at {
                out.extend(f(line));
            } else {
                out.extend_from_slice(line.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn an_invalid_byte_is_refused_by_row_and_column() {
        // Line 5 (龚玉兰's household): a stray byte inside the name.
        let bytes = fixture_with_line(4, |l| {
            let (before, after) = l.split_once("龚玉兰").unwrap();
            [
                before.as_bytes(),
                "龚玉".as_bytes(),
                &[0xFF],
                after.as_bytes(),
            ]
            .concat()
        });
        let errs = parse(&bytes, &[]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].row, errs[0].column_index), (5, 2), "{errs:?}");
        assert_eq!(errs[0].column, "贫困户姓名");
        assert!(errs[0].reason.contains("UTF-8编码中无效的字节"), "{errs:?}");
        assert!(errs[0].reason.contains("「龚玉�」"), "{errs:?}");
    }

    #[test]
    fn a_row_in_the_other_encoding_is_refused_by_row_and_column() {
        // A UTF-8 file with one name pasted from a GBK file: the GBK reading is shown.
        let gbk = |text: &str| encoding_rs::GBK.encode(text).0.into_owned();
        let bytes = fixture_with_line(8, |l| {
            let (before, after) = l.split_once("陆春梅").unwrap();
            [before.as_bytes(), &gbk("陆春梅"), after.as_bytes()].concat()
        });
        let errs = parse(&bytes, &[]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].row, errs[0].column_index), (9, 2), "{errs:?}");
        assert!(
            errs[0]
                .reason
                .contains("不是UTF-8编码的文字（按GBK编码读作「陆春梅」）"),
            "{errs:?}"
        );

        // A GBK file with one row pasted from a UTF-8 file.
        let mut bytes = Vec::new();
        for (i, line) in FIXTURE.lines().enumerate() {
            bytes.extend(if i == 3 {
                line.as_bytes().to_vec()
            } else {
                gbk(line)
            });
            bytes.extend_from_slice(b"\r\n");
        }
        let errs = parse(&bytes, &[]).unwrap_err();
        let at: Vec<(usize, usize)> = errs.iter().map(|e| (e.row, e.column_index)).collect();
        // Every non-ASCII cell of line 4: name, address, cause, measures, units, names.
        assert_eq!(at, [2, 3, 4, 5, 7, 8, 10, 11].map(|c| (4, c)), "{errs:?}");
        assert!(
            errs[0]
                .reason
                .contains("是UTF-8编码的文字（读作「叶秀兰」），而文件的其余部分是GBK编码"),
            "{errs:?}"
        );
    }

    #[test]
    fn a_damaged_title_row_is_named_by_its_sheet_column() {
        let title = encoding_rs::GBK.encode("镇(街)：东城镇\r\n").0;
        let bytes = [&title[..], FIXTURE.as_bytes()].concat();
        let errs = parse(&bytes, &[]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].row, errs[0].column.as_str()), (1, ""), "{errs:?}");
        assert!(
            errs[0]
                .reason
                .starts_with("第1列：这一格不是UTF-8编码的文字（按GBK编码读作「镇(街)：东城镇」）"),
            "{errs:?}"
        );
    }

    #[test]
    fn utf16_is_refused_as_an_encoding() {
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(FIXTURE.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let errs = parse(&utf16, &[]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].reason.contains("UTF-16"), "{errs:?}");
    }

    /// The fixture with `f` applied to each line's cells.
    fn fixture_cells_edited(f: impl Fn(usize, &mut Vec<String>)) -> String {
        FIXTURE
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let mut cells: Vec<String> = l.split(',').map(str::to_string).collect();
                f(i, &mut cells);
                cells.join(",")
            })
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    #[test]
    fn a_missing_column_is_one_header_error_not_a_refusal_of_every_row() {
        let text = fixture_cells_edited(|_, c| {
            c.remove(ledger::col::HEAD_NAME);
        });
        let errs = parse(text.as_bytes(), &[]).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!((errs[0].row, errs[0].column.as_str()), (1, "贫困户姓名"));
        assert!(
            errs[0].reason.contains("缺少「贫困户姓名」这一列"),
            "{errs:?}"
        );
        assert!(errs[1].reason.contains("其下各行未逐格检查"), "{errs:?}");
    }

    #[test]
    fn an_extra_column_inside_the_ledger_is_named_not_the_last_one() {
        let text = fixture_cells_edited(|i, c| {
            c.insert(
                2,
                if i == 0 {
                    "身份证号码"
                } else {
                    "370683199001011234"
                }
                .into(),
            );
        });
        let errs = parse(text.as_bytes(), &[]).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].column_index, 3);
        assert!(
            errs[0]
                .reason
                .contains("实为「身份证号码」：多出了一列「身份证号码」"),
            "{errs:?}"
        );
        assert!(
            errs.iter().all(|e| !e.reason.contains("第13列")),
            "the last column is where it should be: {errs:?}"
        );
    }

    #[test]
    fn a_header_over_two_rows_names_both_rows() {
        let lines: Vec<&str> = FIXTURE.lines().collect();
        let text = format!(
            "序号,贫困户姓名,家庭地址(镇街、村),致贫原因,帮扶措施,联系方式,第一帮扶责任人,,,第二帮扶责任人,,\r\n\
             ,,,,,,姓名,工作单位及职务,联系方式,姓名,工作单位及职务,联系方式\r\n{}",
            lines[1..].join("\r\n")
        );
        let errs = parse(text.as_bytes(), &[]).unwrap_err();
        assert!(
            errs.iter().any(|e| e.row == 1
                && e.column_index == 7
                && e.reason == "应为「第一帮扶责任人姓名」，实为「第一帮扶责任人」"),
            "{errs:?}"
        );
        assert_told_as_two_header_rows(&errs);
    }

    #[test]
    fn a_header_without_serial_and_rows_shifted_against_the_header_are_told_so() {
        let text = FIXTURE.replacen("序号", "编号", 1);
        let errs = parse(text.as_bytes(), &[]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].row, 1);
        assert!(
            errs[0].reason.contains("第1列应为「序号」，实为「编号」"),
            "{errs:?}"
        );

        // The header moved one column right, the data not.
        let lines: Vec<&str> = FIXTURE.lines().collect();
        let text = format!(",{}\r\n{}", lines[0], lines[1..].join("\r\n"));
        let errs = parse(text.as_bytes(), &[]).unwrap_err();
        assert_eq!(errs.len(), 20, "one per row: {errs:?}");
        assert_eq!(errs[0].row, 2);
        assert!(errs[0].reason.contains("本行与表头错开了"), "{errs:?}");
    }

    #[test]
    fn a_serial_number_twice_is_refused_naming_both_rows() {
        let text = FIXTURE.replacen("\n3,", "\n2,", 1);
        let errs = parse(text.as_bytes(), &[]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].row, errs[0].column.as_str()), (4, "序号"));
        assert!(errs[0].reason.starts_with("序号2与第3行重复"), "{errs:?}");
    }

    #[test]
    fn whole_file_errors_do_not_name_row_zero() {
        let errs = parse("a,b,c\n1,2,3\n".as_bytes(), &[]).unwrap_err();
        assert_eq!(errs[0].row, 0);
        assert!(!errs[0].to_string().contains("第0行"), "{}", errs[0]);
    }
}

/// Spreadsheets no spreadsheet program writes, as an upload may hold them.
#[cfg(test)]
mod hostile_tests {
    use super::*;
    use crate::ledger::handmade_xlsx::workbook;

    /// The fixture's header and first household as cell references of row 1 and 2.
    fn fixture_cells() -> Vec<(String, String)> {
        let fixture = include_str!("../../../tests/fixtures/ledger-sample.csv");
        let mut out = Vec::new();
        for (r, line) in fixture.lines().take(2).enumerate() {
            for (c, text) in line.split(',').enumerate() {
                let col = char::from(b'A' + c as u8);
                out.push((format!("{col}{}", r + 1), text.to_string()));
            }
        }
        out
    }

    fn book(extra: &[(&str, &str)], merges: &[&str], dimension: Option<&str>) -> Vec<u8> {
        let cells = fixture_cells();
        let mut all: Vec<(&str, &str)> = cells
            .iter()
            .map(|(r, t)| (r.as_str(), t.as_str()))
            .collect();
        all.extend_from_slice(extra);
        workbook("台账", &all, merges, dimension)
    }

    /// QA s32b V1: a workbook a town office can upload in a second, unpacking to more
    /// than a ledger can hold, is refused by its unpacked size, not read whole.
    /// The fixture's workbook, deflated, with `extra` bytes of `a` in a cell of row 3.
    fn deflated_book(extra: u64) -> Vec<u8> {
        use std::io::{Read as _, Write as _};
        let small = book(&[], &[], None);
        let mut parts = zip::ZipArchive::new(Cursor::new(&small)).unwrap();
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let deflated = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for i in 0..parts.len() {
            let mut part = parts.by_index(i).unwrap();
            let name = part.name().unwrap().to_string();
            let mut body = String::new();
            part.read_to_string(&mut body).unwrap();
            out.start_file(name.as_str(), deflated).unwrap();
            let Some((head, tail)) = body.split_once("</sheetData>") else {
                out.write_all(body.as_bytes()).unwrap();
                continue;
            };
            out.write_all(head.as_bytes()).unwrap();
            out.write_all(br#"<row r="3"><c r="A3" t="inlineStr"><is><t>"#)
                .unwrap();
            let run = vec![b'a'; 1 << 20];
            let mut left = extra;
            while left > 0 {
                let n = left.min(run.len() as u64);
                out.write_all(&run[..n as usize]).unwrap();
                left -= n;
            }
            out.write_all(b"</t></is></c></row></sheetData>").unwrap();
            out.write_all(tail.as_bytes()).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    /// QA s32d X9: a workbook whose zip understates a part's size is refused as
    /// damaged, in Chinese, not with the zip reader's English.
    #[test]
    fn a_workbook_whose_sizes_lie_is_refused_as_damaged() {
        let mut bytes = deflated_book(1 << 20);
        // Every header's uncompressed size of the sheet part set to 100 bytes: local
        // headers at offset 22, central ones at 24, each followed by its name.
        let (local, central) = (b"PK\x03\x04", b"PK\x01\x02");
        let mut i = 0;
        while i + 46 < bytes.len() {
            let (size_at, name_at) = if &bytes[i..i + 4] == local {
                (i + 22, i + 30)
            } else if &bytes[i..i + 4] == central {
                (i + 24, i + 46)
            } else {
                i += 1;
                continue;
            };
            if bytes[name_at..].starts_with(b"xl/worksheets/") {
                bytes[size_at..size_at + 4].copy_from_slice(&100u32.to_le_bytes());
            }
            i += 4;
        }
        let errors = parse(&bytes, &[]).unwrap_err();
        assert!(
            errors[0].reason.starts_with("电子表格文件已损坏"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_workbook_that_unpacks_past_the_limit_is_refused_before_it_is_read() {
        let small = book(&[], &[], None);
        let bomb = deflated_book(MAX_UNPACKED_BYTES + (1 << 20));
        assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
        let errors = parse(&bomb, &[]).unwrap_err();
        assert!(errors[0].reason.contains("解压后超过128MB"), "{errors:?}");
        // Under the limit, the same parts read as before.
        assert!(check_unpacked(&small).is_ok());
    }

    #[test]
    fn the_handmade_fixture_reads() {
        let parsed = parse(&book(&[], &[], None), &[]).unwrap();
        assert_eq!(parsed.rows.len(), 1);
        assert_eq!(parsed.rows[0].head_name, "田晓东");
    }

    #[test]
    fn a_cell_at_the_far_corner_is_refused_by_sheet_not_allocated() {
        let bytes = book(&[("XFD1048576", "x")], &[], Some("A1:XFD1048576"));
        assert!(bytes.len() < 4096, "{}", bytes.len());
        let errs = parse(&bytes, &[]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].sheet.as_deref(), Some("台账"));
        assert!(errs[0].reason.contains("工作表过大"), "{errs:?}");
        assert!(errs[0].reason.contains("第1048576行第16384列"), "{errs:?}");
        // Just past each limit, the same.
        for far in ["A200001", "CW1"] {
            let errs = parse(&book(&[(far, "x")], &[], None), &[]).unwrap_err();
            assert!(errs[0].reason.contains("工作表过大"), "{far}: {errs:?}");
        }
        // Blank cells far out are stray formatting, not content.
        let parsed = parse(&book(&[("XFD1048576", " ")], &[], None), &[]).unwrap();
        assert_eq!(parsed.rows.len(), 1);
    }

    #[test]
    fn backwards_ranges_do_not_panic() {
        for (merges, dimension) in [
            (&["D1:A1"][..], None),
            (&["L2:J2", "A3:A2"][..], None),
            (&[][..], Some("L2:A1")),
        ] {
            let bytes = book(&[], merges, dimension);
            match parse(&bytes, &[]) {
                Ok(parsed) => assert_eq!(parsed.rows.len(), 1),
                // calamine's own range parsing panics with overflow checks on (tests).
                Err(errs) => {
                    assert_eq!(errs.len(), 1, "{errs:?}");
                    assert!(errs[0].reason.contains("文件结构有误"), "{errs:?}");
                }
            }
        }
    }

    fn region(start: (u32, u32), end: (u32, u32)) -> calamine::Dimensions {
        calamine::Dimensions { start, end }
    }

    #[test]
    fn merged_regions_are_put_in_order_and_kept_in_bounds() {
        let row = |cells: &[&str]| cells.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let mut grid = vec![row(&["a", "", "", ""]), row(&["b"]), row(&[])];
        let merged = [
            // Far past the last row and column, from row 7's empty first cell: nothing.
            region((7, 0), (1_048_575, 16_383)),
            // Backwards: D1:A1 and A3:A2 (0-based rows 0, 1, 2 are sheet rows 5, 6, 7).
            region((5, 3), (5, 0)),
            region((7, 0), (6, 0)),
            // From b, far to the right: filled up to the column limit only.
            region((6, 0), (6, 16_383)),
        ];
        let mut budget = Budget::default();
        fill_merged(&mut grid, 5, &merged, &mut budget).unwrap();
        assert_eq!(grid[0], row(&["a", "a", "a", "a"]));
        assert_eq!(grid[1].len(), MAX_SHEET_COLUMNS as usize);
        assert!(grid[1].iter().all(|c| c == "b"));
        assert_eq!(
            grid[2],
            row(&["b"]),
            "filled from sheet row 6, as A3:A2 reads"
        );

        // The same region a million times over is no sheet.
        let mut grid = vec![row(&["a"]); 10];
        let merged = vec![region((0, 0), (9, 99)); 1_000_000];
        let mut budget = Budget::default();
        assert!(fill_merged(&mut grid, 0, &merged, &mut budget).is_err());
    }

    #[test]
    fn the_file_limits_count_across_sheets() {
        let mut budget = Budget {
            cells: MAX_FILE_CELLS - 50,
            ..Budget::default()
        };
        let mut sheet = SheetCells {
            name: "二",
            budget: &mut budget,
            cells: Vec::new(),
            uncached: Vec::new(),
        };
        sheet.push((0, 0), "序号").unwrap();
        sheet.push((1, 99), "x").unwrap();
        // Two rows of up to 100 cells: more than the 50 left.
        let errs = sheet.into_grid().unwrap_err();
        assert_eq!(errs[0].sheet.as_deref(), Some("二"));
        assert!(errs[0].reason.contains("内容过多"), "{errs:?}");

        let mut budget = Budget {
            text_bytes: MAX_FILE_TEXT_BYTES - 3,
            ..Budget::default()
        };
        let mut sheet = SheetCells {
            name: "一",
            budget: &mut budget,
            cells: Vec::new(),
            uncached: Vec::new(),
        };
        sheet.push((0, 0), "户").unwrap();
        assert!(sheet.push((0, 1), "户").is_err());
    }

    /// The fixture's first household with `formulas` in place of the cells they name.
    fn book_with_formulas(formulas: &[(&str, &str, Option<&str>)]) -> Vec<u8> {
        use crate::ledger::handmade_xlsx::workbook_with_formulas;
        let cells = fixture_cells();
        let all: Vec<(&str, &str)> = cells
            .iter()
            .map(|(r, t)| (r.as_str(), t.as_str()))
            .filter(|(r, _)| formulas.iter().all(|(f, ..)| f != r))
            .collect();
        workbook_with_formulas("台账", &all, formulas, &[], None)
    }

    #[test]
    fn a_formula_saved_without_a_value_is_refused_by_cell_not_read_as_empty() {
        let bytes = book_with_formulas(&[("F2", "\"1396792\"&\"9081\"", None)]);
        let errs = parse(&bytes, &[]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        let e = &errs[0];
        assert_eq!((e.row, e.column_index), (2, 6), "{e:?}");
        assert_eq!(e.column, "联系方式");
        assert_eq!(e.sheet.as_deref(), Some("台账"));
        assert!(e.reason.contains("是公式且没有保存的计算结果"), "{e:?}");
        assert!(e.reason.contains("单元格F2"), "{e:?}");
        assert!(e.reason.contains("「=\"1396792\"&\"9081\"」"), "{e:?}");

        // 序号 as =ROW()-1: one error saying so, not 「」不是正整数 besides.
        let errs = parse(&book_with_formulas(&[("A2", "ROW()-1", None)]), &[]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].row, errs[0].column.as_str()), (2, "序号"));
        assert!(errs[0].reason.contains("「=ROW()-1」是公式"), "{errs:?}");
    }

    #[test]
    fn a_formula_with_a_saved_value_reads_as_that_value() {
        let bytes = book_with_formulas(&[
            ("F2", "\"1396792\"&\"9081\"", Some("13967929081")),
            ("A2", "ROW()-1", Some("1")),
        ]);
        let parsed = parse(&bytes, &[]).unwrap();
        assert_eq!(parsed.rows[0].phone, "13967929081");
        assert_eq!(parsed.rows[0].seq, 1);
    }

    #[test]
    fn columns_are_lettered_as_a_spreadsheet_does() {
        for (c, letters) in [
            (0, "A"),
            (5, "F"),
            (25, "Z"),
            (26, "AA"),
            (27, "AB"),
            (701, "ZZ"),
            (702, "AAA"),
        ] {
            assert_eq!(column_letters(c), letters);
        }
    }

    #[test]
    fn a_quote_before_a_formula_is_taken_off_in_csv_and_xlsx() {
        let fixture = include_str!("../../../tests/fixtures/ledger-sample.csv");
        let mut lines: Vec<String> = fixture.lines().take(2).map(str::to_string).collect();
        lines[1] = lines[1].replacen(",因学,", ",\"'=HYPERLINK(\"\"http://x\"\")/'因学\",", 1);
        let parsed = parse(lines.join("\n").as_bytes(), &[]).unwrap();
        assert_eq!(parsed.rows[0].cause, "=HYPERLINK(\"http://x\")/'因学");

        let cells = fixture_cells();
        let mut all: Vec<(&str, &str)> = cells
            .iter()
            .map(|(r, t)| (r.as_str(), t.as_str()))
            .collect();
        all.retain(|(r, _)| *r != "D2");
        all.push(("D2", "'+因学"));
        let parsed = parse(&workbook("台账", &all, &[], None), &[]).unwrap();
        assert_eq!(parsed.rows[0].cause, "+因学");
    }
}
