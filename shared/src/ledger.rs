//! The pairing ledger (帮扶责任工作台账, seed 001 附件1): its exact Chinese column
//! headers and the validation of one row and of a whole file.
//!
//! Town offices keep this spreadsheet today; the server imports and exports it in the
//! same layout, so the rules that decide whether a row is acceptable live here, once,
//! with no I/O. Errors name the spreadsheet row, the column header and the reason, and
//! all of them are reported at once.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The twelve column headers, exactly as in seed 001 附件1. `联系方式` appears three
/// times: the household's, the first helper's and the second helper's phone, by position.
pub const LEDGER_HEADERS: [&str; 12] = [
    "序号",
    "贫困户姓名",
    "家庭地址(镇街、村)",
    "致贫原因",
    "帮扶措施",
    "联系方式",
    "第一帮扶责任人姓名",
    "工作单位及职务",
    "联系方式",
    "第二帮扶责任人姓名",
    "工作单位及职务",
    "联系方式",
];

/// Column positions (0-based) in [`LEDGER_HEADERS`].
pub mod col {
    pub const SEQ: usize = 0;
    pub const HEAD_NAME: usize = 1;
    pub const ADDRESS: usize = 2;
    pub const CAUSE: usize = 3;
    pub const MEASURES: usize = 4;
    pub const PHONE: usize = 5;
    pub const FIRST_NAME: usize = 6;
    pub const FIRST_UNIT: usize = 7;
    pub const FIRST_PHONE: usize = 8;
    pub const SECOND_NAME: usize = 9;
    pub const SECOND_UNIT: usize = 10;
    pub const SECOND_PHONE: usize = 11;
}

/// Longest text accepted in a name cell.
pub const MAX_NAME_CHARS: usize = 30;
/// Longest text accepted in a free-text cell (cause, measures, unit and position).
const MAX_TEXT_CHARS: usize = 200;
/// Town-level suffixes used to split a joined address such as `东城镇东城河口村`.
const TOWN_SUFFIXES: [&str; 3] = ["街道", "镇", "乡"];

/// One problem in an imported file: where it is and what is wrong, in words a town
/// office clerk can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RowError {
    /// The row number as the spreadsheet shows it (the header row included, 1-based).
    pub row: usize,
    /// The column header, exactly as in the ledger layout (empty for whole-file problems).
    pub column: String,
    /// The column position, 1-based (0 for whole-file problems); tells the three `联系方式` apart.
    pub column_index: usize,
    /// What is wrong, in Chinese.
    pub reason: String,
    /// The worksheet the row is on, for spreadsheets: a workbook may hold several
    /// ledger sheets, each numbering its rows from 1. Absent for CSV.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
}

impl RowError {
    /// An error about one cell.
    pub fn cell(row: usize, column: usize, reason: impl Into<String>) -> Self {
        RowError {
            row,
            column: LEDGER_HEADERS
                .get(column)
                .copied()
                .unwrap_or_default()
                .to_string(),
            column_index: column + 1,
            reason: reason.into(),
            sheet: None,
        }
    }

    /// An error about a whole row, or about the file as a whole when `row` is 0 (no
    /// header row, an empty file).
    pub fn file(row: usize, reason: impl Into<String>) -> Self {
        RowError {
            row,
            column: String::new(),
            column_index: 0,
            reason: reason.into(),
            sheet: None,
        }
    }

    /// The same error, placed on a worksheet.
    pub fn in_sheet(mut self, sheet: Option<&str>) -> Self {
        self.sheet = sheet.map(str::to_string);
        self
    }
}

impl std::fmt::Display for RowError {
    /// `工作表「台账」 第3行 第9列「联系方式」: …`; the parts that do not apply are left out,
    /// so a whole-file problem prints as its reason alone, never as "第0行".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut place = Vec::new();
        if let Some(sheet) = &self.sheet {
            place.push(format!("工作表「{sheet}」"));
        }
        if self.row > 0 {
            place.push(format!("第{}行", self.row));
        }
        if !self.column.is_empty() {
            place.push(format!("第{}列「{}」", self.column_index, self.column));
        }
        if place.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", place.join(" "), self.reason)
        }
    }
}

/// A helper as the ledger names them: the phone number is their identity and login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelperEntry {
    pub name: String,
    /// 工作单位及职务, e.g. `市住建局 主任科员`.
    pub unit_position: String,
    pub phone: String,
}

/// One validated ledger row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRow {
    /// Row number in the source sheet, for error messages.
    pub line: usize,
    /// 序号 as written in the file; kept so an export lists households in the same order.
    pub seq: u32,
    pub head_name: String,
    pub town: String,
    pub village: String,
    pub cause: String,
    pub measures: String,
    /// The household's phone; may be empty (not every household has one).
    pub phone: String,
    pub first: HelperEntry,
    pub second: HelperEntry,
}

impl LedgerRow {
    /// The row's cells in the ledger layout, as an export writes them.
    pub fn to_cells(&self) -> [String; 12] {
        [
            self.seq.to_string(),
            self.head_name.clone(),
            format!("{}{}", self.town, self.village),
            self.cause.clone(),
            self.measures.clone(),
            self.phone.clone(),
            self.first.name.clone(),
            self.first.unit_position.clone(),
            self.first.phone.clone(),
            self.second.name.clone(),
            self.second.unit_position.clone(),
            self.second.phone.clone(),
        ]
    }
}

/// Normalises a header cell for comparison: drops a BOM and every space, and folds
/// full-width forms to ASCII ([`fold_width`]).
pub fn normalize_header(cell: &str) -> String {
    fold_width(cell.trim_start_matches('\u{feff}'), true)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Folds full-width forms to ASCII: `０-９`, `Ａ-Ｚ`, `ａ-ｚ` and, with `punctuation`,
/// the full-width punctuation of U+FF01–FF5E (`（）－＋，：`…); the ideographic space
/// U+3000 becomes a plain space.
///
/// Why: Chinese input methods type full-width digits and dashes as easily as ASCII ones,
/// and a clerk cannot see the difference. Unfolded, `１３９…` fails the phone check and
/// `东城３村` becomes a second village beside `东城3村`.
pub fn fold_width(cell: &str, punctuation: bool) -> String {
    cell.chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ' => shift_to_ascii(c),
            '\u{ff01}'..='\u{ff5e}' if punctuation => shift_to_ascii(c),
            other => other,
        })
        .collect()
}

/// U+FF01–FF5E are U+0021–007E shifted by 0xFEE0.
fn shift_to_ascii(c: char) -> char {
    char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c)
}

/// A cell as validation sees it: widths folded (punctuation too in the columns that
/// identify a household, a helper or a place; free text keeps the Chinese punctuation
/// the clerk wrote), and every space removed from a person's name, so `王　芳` and
/// `王芳` are one person (Chinese names have no inner spaces; Excel users pad two-character
/// names with one to align them).
pub fn normalize_cell(column: usize, cell: &str) -> String {
    let free_text = matches!(
        column,
        col::CAUSE | col::MEASURES | col::FIRST_UNIT | col::SECOND_UNIT
    );
    let folded = fold_width(cell, !free_text);
    if matches!(column, col::HEAD_NAME | col::FIRST_NAME | col::SECOND_NAME) {
        folded.chars().filter(|c| !c.is_whitespace()).collect()
    } else {
        folded
    }
}

/// What a sheet row is, seen before the data starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreambleRow {
    /// The header row of the ledger.
    Header,
    /// A title row such as `镇(街)：东城镇`, naming the town the file is for.
    TownTitle(String),
    /// Anything else above the header (a sheet title, a blank row).
    Other,
    /// A row that starts like the header but whose headers are wrong.
    BadHeader(Vec<RowError>),
}

/// Classifies a row above the data: header, town title, or something to skip.
pub fn classify_preamble(row_number: usize, cells: &[String]) -> PreambleRow {
    let normalized: Vec<String> = cells.iter().map(|c| normalize_header(c)).collect();
    if normalized.first().map(String::as_str) == Some("序号") {
        let errors = header_errors(row_number, cells, 0);
        return if errors.is_empty() {
            PreambleRow::Header
        } else {
            PreambleRow::BadHeader(errors)
        };
    }
    let joined: String = normalized.concat();
    for prefix in ["镇(街):", "镇(街)：", "镇街:", "镇街：", "镇:", "镇："] {
        if let Some(rest) = joined.strip_prefix(prefix).filter(|r| !r.is_empty()) {
            return PreambleRow::TownTitle(rest.to_string());
        }
    }
    PreambleRow::Other
}

/// Everything wrong with a header row, each problem saying what the column should be and
/// what it is. `cells` start at the `序号` cell, which is sheet column `offset` (0-based),
/// and run to the row's end; a header that differs from [`LEDGER_HEADERS`] by one column
/// missing, one column too many or two columns swapped is told so, once, rather than as
/// every later column being wrong. Cells after the twelve ledger columns are refused by
/// name. Empty when the header is right.
pub fn header_errors(row_number: usize, cells: &[String], offset: usize) -> Vec<RowError> {
    let mut got: Vec<String> = cells.iter().map(|c| normalize_header(c)).collect();
    while got.last().is_some_and(String::is_empty) {
        got.pop();
    }
    let want: Vec<String> = LEDGER_HEADERS.iter().map(|h| normalize_header(h)).collect();
    let (mut errors, used) = diagnose_header(row_number, &got, &want);
    for (j, cell) in cells.iter().enumerate().skip(used) {
        if !cell.trim().is_empty() {
            errors.push(RowError::file(
                row_number,
                format!(
                    "第{}列「{}」不是台账的列（台账共{}列：{}），请删除该列后再导入",
                    offset + j + 1,
                    cell.trim(),
                    LEDGER_HEADERS.len(),
                    LEDGER_HEADERS.join("、")
                ),
            ));
        }
    }
    errors
}

/// The errors of the ledger columns of a normalised header, and how many of its cells
/// they account for (the rest are extra columns).
fn diagnose_header(row: usize, got: &[String], want: &[String]) -> (Vec<RowError>, usize) {
    let width = want.len();
    let starts_with =
        |from: &[&str]| got.len() >= from.len() && got.iter().zip(from).all(|(g, w)| g == w);
    let want_refs: Vec<&str> = want.iter().map(String::as_str).collect();
    if starts_with(&want_refs) {
        return (Vec::new(), width);
    }
    if let Some(e) = missing_column(row, got, &want_refs, &starts_with) {
        return (vec![e], width - 1);
    }
    if let Some(e) = extra_column(row, got, &want_refs, &starts_with) {
        return (vec![e], width + 1);
    }
    let wrong: Vec<usize> = (0..width)
        .filter(|&i| header_cell(got, i) != want[i])
        .collect();
    if let Some(errors) = swapped_columns(row, got, want, &wrong) {
        return (errors, width);
    }
    let errors = wrong
        .into_iter()
        .map(|i| {
            let reason = format!("应为「{}」，实为{}", LEDGER_HEADERS[i], found_zh(got, i));
            RowError::cell(row, i, reason)
        })
        .collect();
    (errors, width)
}

/// Cell `i` of a normalised header ("" past its end).
fn header_cell(got: &[String], i: usize) -> &str {
    got.get(i).map(String::as_str).unwrap_or("")
}

/// Cell `i` of a normalised header as an error message quotes it: `「…」`, or `空`.
fn found_zh(got: &[String], i: usize) -> String {
    match header_cell(got, i) {
        "" => "空".to_string(),
        text => format!("「{text}」"),
    }
}

/// The header is the ledger's with column `k` left out: every later column moved left.
fn missing_column(
    row: usize,
    got: &[String],
    want: &[&str],
    starts_with: &dyn Fn(&[&str]) -> bool,
) -> Option<RowError> {
    let k = (1..want.len()).find(|&k| {
        let mut without = want.to_vec();
        without.remove(k);
        starts_with(&without)
    })?;
    let after = if k + 1 < want.len() {
        "，其后各列都前移了一列"
    } else {
        ""
    };
    let reason = format!(
        "应为「{name}」，实为{}：缺少「{name}」这一列{after}；请补上该列后再导入",
        found_zh(got, k),
        name = LEDGER_HEADERS[k],
    );
    Some(RowError::cell(row, k, reason))
}

/// The header is the ledger's with a column inserted at `k`: every later column moved
/// right. A column repeated (`贫困户姓名` twice) is the extra one where it first differs.
fn extra_column(
    row: usize,
    got: &[String],
    want: &[&str],
    starts_with: &dyn Fn(&[&str]) -> bool,
) -> Option<RowError> {
    let k = (1..want.len().min(got.len()))
        .filter(|&k| header_cell(got, k) != want[k])
        .find(|&k| {
            let mut with = want.to_vec();
            with.insert(k, header_cell(got, k));
            starts_with(&with)
        })?;
    let what = match header_cell(got, k) {
        "" => "多出了一列没有表头的列".to_string(),
        text => format!("多出了一列「{text}」"),
    };
    let reason = format!(
        "应为「{}」，实为{}：{what}，其后各列都后移了一列；请删除该列后再导入",
        LEDGER_HEADERS[k],
        found_zh(got, k)
    );
    Some(RowError::cell(row, k, reason))
}

/// The header is the ledger's with the two `wrong` columns swapped.
fn swapped_columns(
    row: usize,
    got: &[String],
    want: &[String],
    wrong: &[usize],
) -> Option<Vec<RowError>> {
    let &[a, b] = wrong else {
        return None;
    };
    if header_cell(got, a) != want[b] || header_cell(got, b) != want[a] {
        return None;
    }
    let swapped = |i: usize, j: usize| {
        let reason = format!(
            "应为「{}」，实为「{}」：「{}」与「{}」两列的位置颠倒了，请调换后再导入",
            LEDGER_HEADERS[i], LEDGER_HEADERS[j], LEDGER_HEADERS[a], LEDGER_HEADERS[b]
        );
        RowError::cell(row, i, reason)
    };
    Some(vec![swapped(a, b), swapped(b, a)])
}

/// Whether a row under the header continues it, as a header split over two rows does
/// (`第一帮扶责任人` above `姓名`): its 序号 cell holds no number and some cell is part of
/// a ledger header. `cells` start at the 序号 column.
pub fn continues_header(cells: &[String]) -> bool {
    let seq = cells
        .first()
        .map(|c| normalize_cell(col::SEQ, c))
        .unwrap_or_default();
    if seq.trim().parse::<u32>().is_ok() {
        return false;
    }
    cells.iter().take(LEDGER_HEADERS.len()).any(|c| {
        let c = normalize_header(c);
        !c.is_empty()
            && LEDGER_HEADERS
                .iter()
                .any(|h| normalize_header(h).contains(&c))
    })
}

/// Where in a row that names ledger columns but no `序号` the 序号 cell should be: the row
/// number's reason why it is no header (`第1列应为「序号」，实为「编号」`), when at least three of
/// its cells are ledger headers; `None` for a row that does not look like a header.
pub fn headerless_header_reason(cells: &[String]) -> Option<String> {
    let normalized: Vec<String> = cells.iter().map(|c| normalize_header(c)).collect();
    let known = normalized
        .iter()
        .filter(|c| LEDGER_HEADERS.iter().any(|h| normalize_header(h) == **c))
        .count();
    if known < 3 {
        return None;
    }
    let name_at = normalized
        .iter()
        .position(|c| c == &normalize_header(LEDGER_HEADERS[col::HEAD_NAME]));
    Some(match name_at {
        Some(p) if p > 0 && !normalized[p - 1].is_empty() => format!(
            "像是台账的表头，但第{p}列应为「序号」，实为「{}」",
            cells[p - 1].trim()
        ),
        _ => {
            "像是台账的表头，但缺少「序号」列（应在「贫困户姓名」之前）；请补上该列后再导入".into()
        }
    })
}

/// Whether every cell of a row is empty (such rows are skipped, as spreadsheets have them).
pub fn is_blank(cells: &[String]) -> bool {
    cells.iter().all(|c| c.trim().is_empty())
}

/// Splits a joined address into (town, village).
///
/// In order: a whitespace between the parts; the longest known town name that prefixes
/// it; the town named by the file's title row; the first town-level suffix (街道, 镇, 乡).
pub fn split_address(
    address: &str,
    known_towns: &[String],
    title_town: Option<&str>,
) -> Option<(String, String)> {
    let address = address.trim();
    let mut parts = address.split_whitespace();
    if let (Some(first), Some(_)) = (parts.next(), parts.next()) {
        let rest: String = address[first.len()..]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        return Some((first.to_string(), rest));
    }
    let best_known = known_towns
        .iter()
        .map(String::as_str)
        .chain(title_town)
        .filter(|t| !t.is_empty() && address.len() > t.len() && address.starts_with(*t))
        .max_by_key(|t| t.len());
    if let Some(town) = best_known {
        return Some((town.to_string(), address[town.len()..].to_string()));
    }
    let cut = TOWN_SUFFIXES
        .iter()
        .filter_map(|s| address.find(s).map(|i| i + s.len()))
        .min()?;
    let (town, village) = address.split_at(cut);
    (!village.is_empty()).then(|| (town.to_string(), village.to_string()))
}

/// Whether a phone number is a mainland mobile (11 digits from 13–19) or a landline
/// with area code (`0xxx-xxxxxxx`).
pub fn is_valid_phone(phone: &str) -> bool {
    let digits_only = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if phone.len() == 11 && digits_only(phone) && phone.starts_with('1') {
        return matches!(phone.as_bytes()[1], b'3'..=b'9');
    }
    let landline: String = phone.chars().filter(|c| *c != '-').collect();
    phone.starts_with('0')
        && phone.matches('-').count() <= 1
        && digits_only(&landline)
        && (10..=12).contains(&landline.len())
}

struct RowCheck<'a> {
    line: usize,
    cells: &'a [String],
    errors: Vec<RowError>,
}

impl<'a> RowCheck<'a> {
    fn text(&self, column: usize) -> &'a str {
        self.cells.get(column).map(|s| s.trim()).unwrap_or("")
    }

    fn required(&mut self, column: usize, max_chars: usize) -> String {
        let value = self.text(column);
        if value.is_empty() {
            self.errors
                .push(RowError::cell(self.line, column, "不能为空"));
        } else if value.chars().count() > max_chars {
            self.errors.push(RowError::cell(
                self.line,
                column,
                format!("过长（最多{max_chars}字）"),
            ));
        }
        value.to_string()
    }

    fn optional(&mut self, column: usize, max_chars: usize) -> String {
        let value = self.text(column);
        if value.chars().count() > max_chars {
            self.errors.push(RowError::cell(
                self.line,
                column,
                format!("过长（最多{max_chars}字）"),
            ));
        }
        value.to_string()
    }

    fn phone(&mut self, column: usize, required: bool) -> String {
        let value: String = self
            .text(column)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if value.is_empty() {
            if required {
                self.errors.push(RowError::cell(
                    self.line,
                    column,
                    "不能为空（帮扶责任人以手机号登录）",
                ));
            }
        } else if !is_valid_phone(&value) {
            self.errors.push(RowError::cell(
                self.line,
                column,
                format!("「{value}」不是有效的电话号码（11位手机号或带区号的固话）"),
            ));
        }
        value
    }

    fn helper(&mut self, name: usize, unit: usize, phone: usize) -> HelperEntry {
        HelperEntry {
            name: self.required(name, MAX_NAME_CHARS),
            unit_position: self.required(unit, MAX_TEXT_CHARS),
            phone: self.phone(phone, true),
        }
    }
}

/// Validates one data row, its cells normalised first ([`normalize_cell`]).
/// `known_towns` and `title_town` help split the address.
pub fn validate_row(
    line: usize,
    cells: &[String],
    known_towns: &[String],
    title_town: Option<&str>,
) -> Result<LedgerRow, Vec<RowError>> {
    let normalized: Vec<String> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| normalize_cell(i, c))
        .collect();
    let cells = normalized.as_slice();
    let mut check = RowCheck {
        line,
        cells,
        errors: Vec::new(),
    };
    if cells.len() > LEDGER_HEADERS.len()
        && cells[LEDGER_HEADERS.len()..]
            .iter()
            .any(|c| !c.trim().is_empty())
    {
        check.errors.push(RowError::file(
            line,
            format!("本行超过{}列", LEDGER_HEADERS.len()),
        ));
    }
    let seq_text = check.text(col::SEQ);
    let seq = match seq_text.parse::<u32>() {
        Ok(n) if n > 0 => n,
        _ => {
            check.errors.push(RowError::cell(
                line,
                col::SEQ,
                format!("「{seq_text}」不是正整数"),
            ));
            0
        }
    };
    let head_name = check.required(col::HEAD_NAME, MAX_NAME_CHARS);
    let address = check.required(col::ADDRESS, MAX_TEXT_CHARS);
    let (town, village) = if address.is_empty() {
        (String::new(), String::new())
    } else {
        split_address(&address, known_towns, title_town).unwrap_or_else(|| {
            check.errors.push(RowError::cell(
                line,
                col::ADDRESS,
                format!("无法从「{address}」分出镇街和村（如「东城镇东城三村」）"),
            ));
            (String::new(), String::new())
        })
    };
    let cause = check.required(col::CAUSE, MAX_TEXT_CHARS);
    let measures = check.optional(col::MEASURES, MAX_TEXT_CHARS);
    let phone = check.phone(col::PHONE, false);
    let first = check.helper(col::FIRST_NAME, col::FIRST_UNIT, col::FIRST_PHONE);
    let second = check.helper(col::SECOND_NAME, col::SECOND_UNIT, col::SECOND_PHONE);
    if !first.phone.is_empty() && first.phone == second.phone {
        check.errors.push(RowError::cell(
            line,
            col::SECOND_PHONE,
            "第二帮扶责任人不能与第一帮扶责任人是同一人",
        ));
    }
    if !check.errors.is_empty() {
        return Err(check.errors);
    }
    Ok(LedgerRow {
        line,
        seq,
        head_name,
        town,
        village,
        cause,
        measures,
        phone,
        first,
        second,
    })
}

/// The identity of a household within a ledger: town, village, head of household and phone.
pub fn household_key(row: &LedgerRow) -> (String, String, String, String) {
    (
        row.town.clone(),
        row.village.clone(),
        row.head_name.clone(),
        row.phone.clone(),
    )
}

/// Checks the rules that span rows of one file: no household twice, no 序号 twice within
/// a town, one name per phone, and no helper over the policy's household limit (一帮一; a
/// second helper at most `max_second`).
///
/// Why 序号 must be unique: it is stored as the household's place in its town's ledger,
/// and the ledger export and the attendance sheets list households in that order, so
/// two rows with one number would come out in an order nobody chose — and a number
/// written twice is most often a row copied and edited, worth a second look. Per town,
/// since a county's file lists several towns, each numbering its own ledger from 1 (as
/// the export writes them).
pub fn check_file(rows: &[LedgerRow], max_first: usize, max_second: usize) -> Vec<RowError> {
    check_sheets(rows, &[], max_first, max_second)
}

/// [`check_file`] for rows read from several worksheets: `sheets[i]` names the sheet of
/// `rows[i]` (an empty slice: one unnamed sheet, as CSV). Errors are placed on their
/// sheet, and a row of another sheet is named with its sheet.
pub fn check_sheets(
    rows: &[LedgerRow],
    sheets: &[Option<String>],
    max_first: usize,
    max_second: usize,
) -> Vec<RowError> {
    let sheet = |i: usize| sheets.get(i).and_then(Option::as_deref);
    // "第5行", or "工作表「乙」第5行" when row `other` is on another sheet than row `here`.
    let place = |here: usize, other: usize| match sheet(other) {
        Some(s) if sheet(here) != Some(s) => format!("工作表「{s}」第{}行", rows[other].line),
        _ => format!("第{}行", rows[other].line),
    };
    let mut errors = Vec::new();
    let mut households: HashMap<(String, String, String, String), usize> = HashMap::new();
    let mut seqs: HashMap<(&str, u32), usize> = HashMap::new();
    let mut names: HashMap<&str, (&str, usize)> = HashMap::new();
    let mut first_rows: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut second_rows: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let repeated = households.insert(household_key(row), i);
        if let Some(earlier) = repeated {
            errors.push(
                RowError::cell(
                    row.line,
                    col::HEAD_NAME,
                    format!("与{}是同一户（同村、同名、同电话）", place(i, earlier)),
                )
                .in_sheet(sheet(i)),
            );
        }
        // A household listed twice is told once, as that.
        match (repeated, seqs.get(&(row.town.as_str(), row.seq))) {
            (None, Some(&earlier)) => errors.push(
                RowError::cell(
                    row.line,
                    col::SEQ,
                    format!(
                        "序号{}与{}重复：同一镇街的序号决定台账和考勤表中各户的顺序，不能重复；请重新编号后再导入",
                        row.seq,
                        place(i, earlier)
                    ),
                )
                .in_sheet(sheet(i)),
            ),
            (None, None) => {
                seqs.insert((row.town.as_str(), row.seq), i);
            }
            (Some(_), _) => {}
        }
        for (helper, name_col) in [
            (&row.first, col::FIRST_NAME),
            (&row.second, col::SECOND_NAME),
        ] {
            match names.get(helper.phone.as_str()) {
                Some((name, at)) if *name != helper.name => errors.push(
                    RowError::cell(
                        row.line,
                        name_col,
                        format!(
                            "电话{}在{}属于「{name}」，此处为「{}」",
                            helper.phone,
                            place(i, *at),
                            helper.name
                        ),
                    )
                    .in_sheet(sheet(i)),
                ),
                Some(_) => {}
                None => {
                    names.insert(&helper.phone, (&helper.name, i));
                }
            }
        }
        first_rows.entry(&row.first.phone).or_default().push(i);
        second_rows.entry(&row.second.phone).or_default().push(i);
    }
    for (role_rows, max, column, label) in [
        (&first_rows, max_first, col::FIRST_NAME, "第一帮扶责任人"),
        (&second_rows, max_second, col::SECOND_NAME, "第二帮扶责任人"),
    ] {
        for at in role_rows.values().filter(|l| l.len() > max) {
            for &i in &at[max..] {
                errors.push(
                    RowError::cell(
                        rows[i].line,
                        column,
                        format!(
                            "{label}最多结对{max}户，本文件已在{}等结对满额",
                            place(i, at[0])
                        ),
                    )
                    .in_sheet(sheet(i)),
                );
            }
        }
    }
    let order: HashMap<Option<&str>, usize> =
        (0..rows.len()).rev().map(|i| (sheet(i), i)).collect();
    errors.sort_by_key(|e| {
        (
            order.get(&e.sheet.as_deref()).copied().unwrap_or(0),
            e.row,
            e.column_index,
        )
    });
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn good() -> Vec<String> {
        cells(&[
            "1",
            "田晓东",
            "东城镇东城河口村",
            "因学",
            "就业帮扶、危房改造",
            "13967929081",
            "黄志强",
            "市住建局 主任科员",
            "15907579383",
            "孔玉梅",
            "村委会主任",
            "18893287921",
        ])
    }

    #[test]
    fn header_matches_with_bom_spaces_and_fullwidth_parens() {
        let mut h = cells(&LEDGER_HEADERS);
        h[0] = "\u{feff}序号".into();
        h[2] = "家庭地址（镇街、村） ".into();
        assert_eq!(classify_preamble(1, &h), PreambleRow::Header);
    }

    #[test]
    fn wrong_header_names_the_column() {
        let mut h = cells(&LEDGER_HEADERS);
        h[3] = "贫困原因".into();
        match classify_preamble(1, &h) {
            PreambleRow::BadHeader(errs) => {
                assert_eq!(errs.len(), 1);
                assert_eq!(errs[0].column, "致贫原因");
                assert_eq!(errs[0].column_index, 4);
            }
            other => panic!("expected bad header, got {other:?}"),
        }
    }

    #[test]
    fn title_row_names_the_town() {
        assert_eq!(
            classify_preamble(1, &cells(&["镇(街)：东城镇", ""])),
            PreambleRow::TownTitle("东城镇".into())
        );
        assert_eq!(
            classify_preamble(1, &cells(&["帮扶责任工作台账"])),
            PreambleRow::Other
        );
    }

    #[test]
    fn address_split_table() {
        let known = vec!["东城街".to_string()];
        type Case<'a> = (&'a str, Option<&'a str>, Option<(&'a str, &'a str)>);
        let cases: &[Case] = &[
            ("东城镇东城河口村", None, Some(("东城镇", "东城河口村"))),
            ("东城镇 东城河口村", None, Some(("东城镇", "东城河口村"))),
            ("东城街三村", None, Some(("东城街", "三村"))),
            ("文昌街道新华社区", None, Some(("文昌街道", "新华社区"))),
            ("大王乡李庄村", None, Some(("大王乡", "李庄村"))),
            ("城关李庄村", Some("城关"), Some(("城关", "李庄村"))),
            ("李庄村", None, None),
            ("东城镇", None, None),
        ];
        for (addr, title, want) in cases {
            let got = split_address(addr, &known, *title);
            assert_eq!(
                got,
                want.map(|(a, b)| (a.to_string(), b.to_string())),
                "{addr}"
            );
        }
    }

    #[test]
    fn phone_table() {
        for ok in ["13967929081", "19912345678", "0535-2212345", "05352212345"] {
            assert!(is_valid_phone(ok), "{ok}");
        }
        for bad in [
            "1396792908",
            "12967929081",
            "139679290811",
            "abc",
            "",
            "0535--2212345",
            "+8613967929081",
        ] {
            assert!(!is_valid_phone(bad), "{bad}");
        }
    }

    #[test]
    fn valid_row_parses() {
        let row = validate_row(2, &good(), &[], None).unwrap();
        assert_eq!(row.town, "东城镇");
        assert_eq!(row.village, "东城河口村");
        assert_eq!(row.first.phone, "15907579383");
        assert_eq!(row.to_cells().to_vec(), good());
    }

    #[test]
    fn every_bad_cell_is_reported_at_once() {
        let mut c = good();
        c[0] = "x".into();
        c[1] = "".into();
        c[8] = "12345".into();
        let errs = validate_row(7, &c, &[], None).unwrap_err();
        let cols: Vec<usize> = errs.iter().map(|e| e.column_index).collect();
        assert_eq!(cols, vec![1, 2, 9]);
        assert!(errs.iter().all(|e| e.row == 7));
        assert!(errs[2].reason.contains("12345"));
    }

    #[test]
    fn same_person_as_both_helpers_is_refused() {
        let mut c = good();
        c[11] = c[8].clone();
        let errs = validate_row(3, &c, &[], None).unwrap_err();
        assert_eq!(errs[0].column_index, 12);
    }

    #[test]
    fn file_rules_catch_duplicates_and_limits() {
        let mut rows = Vec::new();
        for i in 0..7 {
            let mut c = good();
            c[0] = format!("{}", i + 1);
            c[1] = format!("户主{i}");
            c[8] = format!("1590757938{i}");
            rows.push(validate_row(i + 2, &c, &[], None).unwrap());
        }
        // one first helper paired twice (row 9 reuses row 2's first helper)
        rows[6].first = rows[0].first.clone();
        let errs = check_file(&rows, 1, 5);
        let described: Vec<(usize, usize)> = errs.iter().map(|e| (e.row, e.column_index)).collect();
        // second helper over 5: rows 7 and 8 (the 6th and 7th); first helper twice: row 8
        assert_eq!(described, vec![(7, 10), (8, 7), (8, 10)]);
    }

    #[test]
    fn one_phone_two_names_is_refused() {
        let a = validate_row(2, &good(), &[], None).unwrap();
        let mut c = good();
        c[1] = "别户".into();
        c[9] = "孔玉美".into();
        let b = validate_row(3, &c, &[], None).unwrap();
        let errs = check_file(&[a, b], 1, 5);
        assert!(
            errs.iter()
                .any(|e| e.row == 3 && e.column == "第二帮扶责任人姓名"),
            "{errs:?}"
        );
    }

    #[test]
    fn full_width_forms_fold_to_ascii() {
        let cases = [
            ("１３９６７９２９０８１", true, "13967929081"),
            ("０５３５－２２１２３４５", true, "0535-2212345"),
            ("＋８６", true, "+86"),
            ("东城镇（东城）村", true, "东城镇(东城)村"),
            ("ＡＢｃ", false, "ABc"),
            ("就业帮扶，危房改造", false, "就业帮扶，危房改造"),
            ("市住建局\u{3000}主任科员", false, "市住建局 主任科员"),
        ];
        for (cell, punctuation, want) in cases {
            assert_eq!(fold_width(cell, punctuation), want, "{cell}");
        }
    }

    #[test]
    fn full_width_cells_and_spaced_names_are_normalised_before_validation() {
        let mut c = good();
        c[0] = "１".into();
        c[1] = "田\u{3000}晓东".into();
        c[2] = "东城镇东城河口村".into();
        c[5] = "１３９６７９２９０８１".into();
        c[6] = "黄 志强".into();
        c[8] = "１５９０７５７９３８３".into();
        c[9] = "孔\u{3000}\u{3000}玉梅".into();
        c[11] = "188 9328 7921".into();
        let row = validate_row(2, &c, &[], None).unwrap();
        assert_eq!(row, validate_row(2, &good(), &[], None).unwrap());

        // The same second helper written two ways in one file is one person.
        let a = validate_row(2, &good(), &[], None).unwrap();
        let mut c = good();
        c[0] = "2".into();
        c[1] = "别户".into();
        c[8] = "15907579384".into();
        c[9] = "孔　玉梅".into();
        let b = validate_row(3, &c, &[], None).unwrap();
        assert!(check_file(&[a, b], 1, 5).is_empty());
    }

    #[test]
    fn a_serial_number_twice_in_one_town_names_both_rows() {
        let a = validate_row(2, &good(), &[], None).unwrap();
        let mut c = good();
        c[1] = "别户".into();
        c[8] = "15907579384".into();
        let b = validate_row(5, &c, &[], None).unwrap();
        let errs = check_file(&[a.clone(), b.clone()], 1, 5);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].row, errs[0].column.as_str()), (5, "序号"));
        assert!(errs[0].reason.contains("序号1与第2行重复"), "{errs:?}");

        // On two sheets, the other row is named with its sheet.
        let sheets = [Some("一".to_string()), Some("二".to_string())];
        let errs = check_sheets(&[a.clone(), b.clone()], &sheets, 1, 5);
        assert_eq!(errs[0].sheet.as_deref(), Some("二"));
        assert!(errs[0].reason.contains("工作表「一」第2行"), "{errs:?}");

        // Each town numbers its own ledger: 1 in two towns is no repeat.
        let mut other_town = b;
        other_town.town = "西城镇".into();
        assert!(check_file(&[a, other_town], 1, 5).is_empty());
    }

    fn header(cells: &[&str]) -> Vec<RowError> {
        header_errors(
            1,
            &cells.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            0,
        )
    }

    #[test]
    fn a_missing_column_is_named_once_not_as_every_later_column() {
        let mut h = LEDGER_HEADERS.to_vec();
        h.remove(col::HEAD_NAME);
        let errs = header(&h);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].column_index, 2);
        assert!(
            errs[0].reason.starts_with(
                "应为「贫困户姓名」，实为「家庭地址(镇街、村)」：缺少「贫困户姓名」这一列"
            ),
            "{errs:?}"
        );
        let errs = header(&LEDGER_HEADERS[..11]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].column_index, 12);
        assert!(
            errs[0].reason.contains("实为空：缺少「联系方式」这一列；"),
            "{errs:?}"
        );
    }

    #[test]
    fn an_extra_column_inside_the_ledger_is_named_once() {
        let mut h = LEDGER_HEADERS.to_vec();
        h.insert(2, "身份证号码");
        let errs = header(&h);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].column_index, 3);
        assert!(
            errs[0].reason.starts_with(
                "应为「家庭地址(镇街、村)」，实为「身份证号码」：多出了一列「身份证号码」"
            ),
            "{errs:?}"
        );
        // A column without a header, and one repeated.
        let mut h = LEDGER_HEADERS.to_vec();
        h.insert(4, "");
        assert!(
            header(&h)[0]
                .reason
                .contains("实为空：多出了一列没有表头的列")
        );
        let mut h = LEDGER_HEADERS.to_vec();
        h.insert(1, "贫困户姓名");
        let errs = header(&h);
        assert_eq!((errs.len(), errs[0].column_index), (1, 3), "{errs:?}");
        // After the twelve columns: refused by its sheet column.
        let mut h = LEDGER_HEADERS.to_vec();
        h.push("备注");
        let errs = header_errors(1, &h.iter().map(|c| c.to_string()).collect::<Vec<_>>(), 1);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].reason.starts_with("第14列「备注」不是台账的列"),
            "{errs:?}"
        );
    }

    #[test]
    fn swapped_columns_are_told_as_swapped() {
        let mut h = LEDGER_HEADERS.to_vec();
        h.swap(col::FIRST_NAME, col::SECOND_NAME);
        let errs = header(&h);
        let at: Vec<usize> = errs.iter().map(|e| e.column_index).collect();
        assert_eq!(at, vec![7, 10]);
        assert!(
            errs[0].reason.starts_with(
                "应为「第一帮扶责任人姓名」，实为「第二帮扶责任人姓名」：「第一帮扶责任人姓名」与「第二帮扶责任人姓名」两列的位置颠倒了"
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn a_header_continued_on_the_next_row_and_one_without_serial_are_recognised() {
        let second_row = cells(&["", "", "", "", "", "", "姓名", "工作单位及职务", "联系方式"]);
        assert!(continues_header(&second_row));
        assert!(!continues_header(&good()));
        let renamed = cells(&["编号", "贫困户姓名", "家庭地址(镇街、村)", "致贫原因"]);
        assert_eq!(
            headerless_header_reason(&renamed).unwrap(),
            "像是台账的表头，但第1列应为「序号」，实为「编号」"
        );
        assert!(
            headerless_header_reason(&renamed[1..])
                .unwrap()
                .contains("缺少「序号」列")
        );
        assert_eq!(headerless_header_reason(&good()), None);
    }

    #[test]
    fn whole_file_errors_print_without_a_row_and_sheets_are_named() {
        assert_eq!(RowError::file(0, "文件为空").to_string(), "文件为空");
        assert_eq!(
            RowError::cell(3, col::FIRST_PHONE, "x")
                .in_sheet(Some("台账"))
                .to_string(),
            "工作表「台账」 第3行 第9列「联系方式」: x"
        );
    }
}
