//! Reports as PDF for printing: A4 landscape, a Chinese font from the system embedded
//! (krilla subsets it), tables with wrapped cells and grid lines, the header row repeated
//! on every page, page numbers. The second helper's sheet is laid out as seed 001 附件3,
//! with the submission and the device signature under it.
//!
//! krilla only draws; the layout is ours. Text is measured with the font's own advance
//! widths (`cmap` + `hmtx`, read here), falling back to full-width CJK = 1 em.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bangfu_shared::report::{AttendanceSheet, CHANGED_SINCE_REVIEW_ZH, SHEET_HEADERS};
use krilla::Document;
use krilla::color::luma;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::entities::attendance_sheet;
use crate::error::{ApiError, ApiResult};
use crate::report_files::{self, Cell, Table};

/// Names the font file to use instead of the built-in list: `PATH` or `PATH#INDEX` (the
/// face in a `.ttc` collection).
pub const FONT_ENV: &str = "BANGFU_PDF_FONT";

/// Where Chinese fonts are found, in order of preference (file, face index).
pub const FONT_CANDIDATES: [(&str, u32); 8] = [
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
    (
        "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
        2,
    ),
    (
        "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
        0,
    ),
    ("/usr/share/fonts/google-droid/DroidSansFallbackFull.ttf", 0),
    ("C:\\Windows\\Fonts\\msyh.ttc", 0),
];

/// What a PDF request is told when no Chinese font can be used. It is the server's setup
/// that is missing (a 503, [`ApiError::PdfFontMissing`]), not the client's request that is
/// wrong, so it says what the administrator installs.
const NO_FONT: &str = "the server cannot print PDF: no Chinese (CJK) font is installed; \
                       its administrator should run `apt-get install fonts-wqy-microhei` \
                       (or name a font file in BANGFU_PDF_FONT)";

/// The note printed under 附件3.
const SHEET_NOTE: &str = "注：此表由第二帮扶责任人负责填写汇总，每季度末定期上报镇街扶贫办，由镇街扶贫办汇总后报市扶贫办。";

// A4 landscape, in points.
const PAGE_W: f32 = 841.89;
const PAGE_H: f32 = 595.28;
const MARGIN: f32 = 28.0;
/// Room at the bottom of each page for the page number.
const FOOT: f32 = 18.0;
const BODY: f32 = 9.0;
const LEADING: f32 = 1.32;
const PAD: f32 = 3.0;
const GRID: f32 = 0.6;

/// Tables as a PDF (A4 landscape). A `footer` (a signature block) is printed after the
/// last table. Tables whose headers begin with the 附件3 columns are laid out as 附件3.
pub fn to_pdf(tables: &[Table], footer: Option<&str>) -> ApiResult<Vec<u8>> {
    render(tables, None, footer)
}

/// The second helper's sheet as 附件3, with the town.
///
/// `signature` is the device signature of this very body, so pass it only with a frozen
/// version (from `reports::sheet_version`, or [`sheet_signature`], which checks): the
/// sheet is then printed as that version, with its time and the first 16 hex digits of
/// the signature. Without one the sheet is today's data and is labelled so, with the
/// last submission named but not claimed (`当前数据（第N版已于…报送）`).
pub fn sheet_pdf(sheet: &AttendanceSheet, signature: Option<&str>) -> ApiResult<Vec<u8>> {
    sheet_part_pdf(sheet, signature, sheet.rows.len())
}

/// [`sheet_pdf`] of a frozen version of which `sheet` holds only the rows the caller
/// may see, out of the `signed_rows` the version froze (`reports::FrozenVersion`). With
/// rows left out the title and the signature block say the printout is a part
/// ([`report_files::part_zh`]), and the signature is shown as the whole sheet's, not as
/// covering the rows printed.
pub fn sheet_part_pdf(
    sheet: &AttendanceSheet,
    signature: Option<&str>,
    signed_rows: usize,
) -> ApiResult<Vec<u8>> {
    let town = sheet.town.as_ref().map(|t| t.name.as_str());
    let footer = sheet_part_footer(sheet, signature, signed_rows);
    let tables = if signature.is_some() {
        report_files::submitted_part_tables(sheet, signed_rows)
    } else {
        report_files::sheet_tables(sheet)
    };
    render(&tables, town, Some(&footer))
}

/// The signature block under a sheet: for a frozen version (one with its `signature`)
/// "第二帮扶责任人：… 提交版本：… 提交时间：… 设备签名：…", for live data what it is.
pub fn sheet_footer(sheet: &AttendanceSheet, signature: Option<&str>) -> String {
    sheet_part_footer(sheet, signature, sheet.rows.len())
}

/// [`sheet_footer`] of a version of which `sheet` holds fewer rows than the
/// `signed_rows` it froze: "提交版本：N（本单位可见部分，共M户中的K户）" and the signature
/// as the whole sheet's ("全表设备签名（针对全部M户，不单独证明本表所列K户）：…").
pub fn sheet_part_footer(
    sheet: &AttendanceSheet,
    signature: Option<&str>,
    signed_rows: usize,
) -> String {
    let mut parts = vec![format!("第二帮扶责任人：{}", sheet.second_helper.name)];
    let shown = sheet.rows.len();
    let partial = shown < signed_rows;
    match (sheet.submitted_version, signature) {
        (Some(v), Some(signature)) => {
            if partial {
                parts.push(format!(
                    "提交版本：{v}（本单位可见部分，共{signed_rows}户中的{shown}户）"
                ));
            } else {
                parts.push(format!("提交版本：{v}"));
            }
            if let Some(at) = sheet.submitted_at {
                let local = at + chrono::Duration::hours(8);
                parts.push(format!("提交时间：{}", local.format("%Y-%m-%d %H:%M")));
            }
            let signature = signature.chars().take(16).collect::<String>();
            if partial {
                parts.push(format!(
                    "全表设备签名（针对全部{signed_rows}户，不单独证明本表所列{shown}户）：{signature}…"
                ));
            } else {
                parts.push(format!("设备签名：{signature}…"));
            }
            if sheet.reviewed_rows_match == Some(false) {
                parts.push(CHANGED_SINCE_REVIEW_ZH.to_string());
            }
        }
        _ => parts.push(report_files::edition_zh(sheet, false)),
    }
    parts.join("\u{3000}")
}

/// The device signature (hex) of the version `sheet` names, if `sheet` holds exactly the
/// rows that version froze. A live sheet whose data moved on since (a late visit, a
/// window that closed, rows an office may not see) gets none, so it cannot be printed
/// under a signature that does not cover it.
pub async fn sheet_signature(
    db: &impl ConnectionTrait,
    sheet: &AttendanceSheet,
) -> ApiResult<Option<String>> {
    let Some(version) = sheet.submitted_version else {
        return Ok(None);
    };
    let Some(row) = attendance_sheet::Entity::find()
        .filter(attendance_sheet::Column::SecondHelperId.eq(sheet.second_helper.id))
        .filter(attendance_sheet::Column::Quarter.eq(sheet.quarter.to_string()))
        .filter(attendance_sheet::Column::Version.eq(version))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let frozen: AttendanceSheet = serde_json::from_str(&row.body)
        .map_err(|e| ApiError::Internal(format!("sheet {}: {e}", row.id)))?;
    Ok((frozen.rows == sheet.rows).then_some(row.signature))
}

// ---------------------------------------------------------------------------------------
// The font: found on the system, read once, measured with its own metrics.

struct LoadedFont {
    path: PathBuf,
    index: u32,
    data: Arc<Vec<u8>>,
    metrics: Metrics,
}

static FONT_CACHE: Mutex<Option<Arc<LoadedFont>>> = Mutex::new(None);

fn parse_env(value: &str) -> (PathBuf, u32) {
    match value.rsplit_once('#') {
        Some((p, i)) if i.parse::<u32>().is_ok() => (PathBuf::from(p), i.parse().unwrap_or(0)),
        _ => (PathBuf::from(value), 0),
    }
}

fn load(path: &PathBuf, index: u32) -> Result<LoadedFont, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let metrics = Metrics::parse(&data, index).ok_or_else(|| {
        format!(
            "{}: not a TrueType/OpenType font (or no face {index} in it)",
            path.display()
        )
    })?;
    if metrics.glyph(&data, '帮') == 0 {
        return Err(format!("{}: has no Chinese glyphs", path.display()));
    }
    Ok(LoadedFont {
        path: path.clone(),
        index,
        data: Arc::new(data),
        metrics,
    })
}

fn cached(path: &PathBuf, index: u32) -> Option<Arc<LoadedFont>> {
    let guard = FONT_CACHE.lock().ok()?;
    guard
        .as_ref()
        .filter(|f| &f.path == path && f.index == index)
        .cloned()
}

fn remember(font: LoadedFont) -> Arc<LoadedFont> {
    let font = Arc::new(font);
    if let Ok(mut guard) = FONT_CACHE.lock() {
        *guard = Some(font.clone());
    }
    font
}

/// The font `BANGFU_PDF_FONT` names, or the first usable one of [`FONT_CANDIDATES`].
fn find_font() -> ApiResult<Arc<LoadedFont>> {
    let env = std::env::var(FONT_ENV).ok();
    find_font_among(env.as_deref(), &FONT_CANDIDATES)
}

/// The font `env` (the value of `BANGFU_PDF_FONT`) names, or the first usable one of
/// `candidates`. None usable is [`ApiError::PdfFontMissing`]: the cause (a path, an I/O
/// error) is logged, not sent.
fn find_font_among(env: Option<&str>, candidates: &[(&str, u32)]) -> ApiResult<Arc<LoadedFont>> {
    if let Some(value) = env.map(str::trim).filter(|v| !v.is_empty()) {
        let (path, index) = parse_env(value);
        if let Some(f) = cached(&path, index) {
            return Ok(f);
        }
        return load(&path, index).map(remember).map_err(|e| {
            tracing::error!("{FONT_ENV}: {e}");
            ApiError::PdfFontMissing(format!(
                "the server cannot print PDF: the font named in {FONT_ENV} cannot be used; \
                 its administrator should fix it or unset it and run \
                 `apt-get install fonts-wqy-microhei`"
            ))
        });
    }
    for &(path, index) in candidates {
        let path = PathBuf::from(path);
        if !path.is_file() {
            continue;
        }
        if let Some(f) = cached(&path, index) {
            return Ok(f);
        }
        match load(&path, index) {
            Ok(f) => return Ok(remember(f)),
            Err(e) => tracing::warn!("skipping PDF font {e}"),
        }
    }
    Err(ApiError::PdfFontMissing(NO_FONT.into()))
}

fn u16_at(d: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_be_bytes(d.get(o..o + 2)?.try_into().ok()?))
}

fn u32_at(d: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(o..o + 4)?.try_into().ok()?))
}

/// What the layout needs of a font: advance widths per character, ascent and descent.
#[derive(Debug, Clone)]
struct Metrics {
    units_per_em: f32,
    ascent: f32,
    descent: f32,
    hmtx: usize,
    long_metrics: u16,
    /// The chosen `cmap` subtable: offset and format (4 or 12).
    cmap: Option<(usize, u16)>,
}

impl Metrics {
    /// Reads `head`, `hhea`, `hmtx` and `cmap` of face `index` (of a collection or a font).
    fn parse(d: &[u8], index: u32) -> Option<Metrics> {
        let base = if d.get(0..4)? == b"ttcf" {
            if index >= u32_at(d, 8)? {
                return None;
            }
            u32_at(d, 12 + 4 * index as usize)? as usize
        } else if index == 0 {
            0
        } else {
            return None;
        };
        let mut tables = HashMap::new();
        for i in 0..usize::from(u16_at(d, base + 4)?) {
            let rec = base + 12 + 16 * i;
            let tag: [u8; 4] = d.get(rec..rec + 4)?.try_into().ok()?;
            tables.insert(tag, u32_at(d, rec + 8)? as usize);
        }
        let head = *tables.get(b"head")?;
        let hhea = *tables.get(b"hhea")?;
        let units_per_em = f32::from(u16_at(d, head + 18)?.max(1));
        let ascent = f32::from(u16_at(d, hhea + 4)? as i16) / units_per_em;
        let descent = f32::from(u16_at(d, hhea + 6)? as i16) / units_per_em;
        let long_metrics = u16_at(d, hhea + 34)?;
        let hmtx = *tables.get(b"hmtx")?;
        let mut best: Option<(u8, usize, u16)> = None;
        if let Some(&cmap) = tables.get(b"cmap") {
            for i in 0..usize::from(u16_at(d, cmap + 2).unwrap_or(0)) {
                let rec = cmap + 4 + 8 * i;
                let (Some(platform), Some(encoding), Some(off)) =
                    (u16_at(d, rec), u16_at(d, rec + 2), u32_at(d, rec + 4))
                else {
                    break;
                };
                let sub = cmap + off as usize;
                let format = u16_at(d, sub).unwrap_or(0);
                let unicode = platform == 0 || (platform == 3 && matches!(encoding, 1 | 10));
                let score = match format {
                    12 if unicode => 2,
                    4 if unicode => 1,
                    _ => 0,
                };
                if score > 0 && best.is_none_or(|(s, _, _)| score > s) {
                    best = Some((score, sub, format));
                }
            }
        }
        Some(Metrics {
            units_per_em,
            ascent: if ascent > 0.0 { ascent } else { 0.88 },
            descent: if descent < 0.0 { descent } else { -0.12 },
            hmtx,
            long_metrics,
            cmap: best.map(|(_, sub, format)| (sub, format)),
        })
    }

    /// The glyph of `c` (0 when the font has none).
    fn glyph(&self, d: &[u8], c: char) -> u16 {
        let c = c as u32;
        match self.cmap {
            Some((sub, 4)) => cmap4(d, sub, c),
            Some((sub, 12)) => cmap12(d, sub, c),
            _ => None,
        }
        .unwrap_or(0)
    }

    /// The advance of `c` in em, when the font says.
    fn advance(&self, d: &[u8], c: char) -> Option<f32> {
        let g = self.glyph(d, c);
        if g == 0 {
            return None;
        }
        let i = usize::from(g.min(self.long_metrics.max(1) - 1));
        Some(f32::from(u16_at(d, self.hmtx + 4 * i)?) / self.units_per_em)
    }
}

fn cmap4(d: &[u8], sub: usize, c: u32) -> Option<u16> {
    let c = u16::try_from(c).ok()?;
    let seg_x2 = usize::from(u16_at(d, sub + 6)?);
    let ends = sub + 14;
    let starts = ends + seg_x2 + 2;
    let deltas = starts + seg_x2;
    let ranges = deltas + seg_x2;
    let (mut lo, mut hi) = (0, seg_x2 / 2);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if u16_at(d, ends + 2 * mid)? < c {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo >= seg_x2 / 2 {
        return None;
    }
    let start = u16_at(d, starts + 2 * lo)?;
    if c < start {
        return None;
    }
    let delta = u16_at(d, deltas + 2 * lo)?;
    let range = usize::from(u16_at(d, ranges + 2 * lo)?);
    if range == 0 {
        return Some(c.wrapping_add(delta));
    }
    let g = u16_at(d, ranges + 2 * lo + range + 2 * usize::from(c - start))?;
    (g != 0).then(|| g.wrapping_add(delta))
}

fn cmap12(d: &[u8], sub: usize, c: u32) -> Option<u16> {
    let groups = u32_at(d, sub + 12)? as usize;
    let (mut lo, mut hi) = (0, groups);
    while lo < hi {
        let mid = (lo + hi) / 2;
        let g = sub + 16 + 12 * mid;
        let (first, last) = (u32_at(d, g)?, u32_at(d, g + 4)?);
        if c < first {
            hi = mid;
        } else if c > last {
            lo = mid + 1;
        } else {
            return u16::try_from(u32_at(d, g + 8)? + (c - first)).ok();
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// Text measurement and CJK-aware line breaking.

/// Full-width characters (CJK ideographs, kana, hangul, full-width forms and punctuation):
/// one em wide, and a line may break before or after each.
fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD)
}

/// Characters that must not begin a line.
fn is_closing(c: char) -> bool {
    "，。、；：！？）」』】》〉”’％,.;:!?)]}%…～—".contains(c)
}

/// Characters that must not end a line.
fn is_opening(c: char) -> bool {
    "（「『【《〈“‘([{".contains(c)
}

/// Measures text in one font.
struct Measure<'a> {
    font: Option<(&'a [u8], &'a Metrics)>,
    /// Each character's width once looked up: lines are measured again and again while
    /// they wrap, and the font's tables were most of a town PDF's time (QA s33e S1).
    widths: std::cell::RefCell<std::collections::HashMap<char, f32>>,
}

impl<'a> Measure<'a> {
    fn new(font: Option<(&'a [u8], &'a Metrics)>) -> Self {
        Measure {
            font,
            widths: std::cell::RefCell::default(),
        }
    }

    fn char_em(&self, c: char) -> f32 {
        if let Some(w) = self.widths.borrow().get(&c) {
            return *w;
        }
        let w = self.char_em_looked_up(c);
        self.widths.borrow_mut().insert(c, w);
        w
    }

    fn char_em_looked_up(&self, c: char) -> f32 {
        if let Some(w) = self.font.and_then(|(d, m)| m.advance(d, c)) {
            return w;
        }
        if is_wide(c) {
            1.0
        } else if c.is_ascii_digit() || c.is_ascii_uppercase() {
            0.62
        } else {
            0.55
        }
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.char_em(c)).sum::<f32>() * size
    }

    /// `text` whole when it fits in `room` points at `size`, else as much of it as fits
    /// with "…".
    fn fit(&self, text: &str, size: f32, room: f32) -> String {
        if self.width(text, size) <= room {
            return text.to_string();
        }
        let mut out = String::new();
        let mut used = self.width("…", size);
        for c in text.chars() {
            used += self.char_em(c) * size;
            if used > room {
                break;
            }
            out.push(c);
        }
        out.push('…');
        out
    }

    fn ascent(&self) -> f32 {
        self.font.map_or(0.88, |(_, m)| m.ascent)
    }

    fn descent(&self) -> f32 {
        self.font.map_or(-0.12, |(_, m)| m.descent)
    }

    /// Lines of `text` no wider than `width` (hard breaks kept; a run of Latin letters or
    /// digits stays whole unless it alone is too wide; no line starts with a closing mark).
    fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for para in text.split('\n') {
            let mut line = String::new();
            let mut w = 0.0;
            for atom in atoms(para) {
                let aw = self.width(&atom, size);
                let blank = atom.trim().is_empty();
                if w + aw <= width + 0.01 {
                    if !(blank && line.is_empty()) {
                        line.push_str(&atom);
                        w += aw;
                    }
                    continue;
                }
                if !line.is_empty() {
                    lines.push(line.trim_end().to_string());
                    line.clear();
                    w = 0.0;
                }
                if blank {
                    continue;
                }
                if aw <= width + 0.01 {
                    line.push_str(&atom);
                    w = aw;
                    continue;
                }
                for c in atom.chars() {
                    let cw = self.char_em(c) * size;
                    if w + cw > width + 0.01 && !line.is_empty() {
                        lines.push(std::mem::take(&mut line));
                        w = 0.0;
                    }
                    line.push(c);
                    w += cw;
                }
            }
            lines.push(line.trim_end().to_string());
        }
        lines
    }

    /// The widest unbreakable piece of `text`.
    fn longest_atom(&self, text: &str, size: f32) -> f32 {
        text.split('\n')
            .flat_map(atoms)
            .map(|a| self.width(&a, size))
            .fold(0.0, f32::max)
    }

    /// The width of `text` on one line per hard break.
    fn natural(&self, text: &str, size: f32) -> f32 {
        text.split('\n')
            .map(|p| self.width(p, size))
            .fold(0.0, f32::max)
    }
}

/// The unbreakable pieces of a paragraph: each wide character, each Latin word or number
/// (breakable after `/`, `;`, `,`, `|`), each space; closing marks stick to what
/// precedes them and opening marks to what follows. Not after `-`: a day (`11-30`), a
/// window (`11-01~11-30`) or a phone (`0535-1234567`) broken there read as two things
/// on a printed sheet (QA s33c C6); one too wide for its column is still cut.
fn atoms(para: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut opening = String::new();
    for c in para.chars() {
        if is_closing(c) {
            match out.last_mut() {
                Some(last) if word.is_empty() && opening.is_empty() => last.push(c),
                _ => word.push(c),
            }
            continue;
        }
        if !word.is_empty() && (is_opening(c) || is_wide(c) || c.is_whitespace()) {
            out.push(std::mem::take(&mut word));
        }
        if is_opening(c) {
            opening.push(c);
        } else if c.is_whitespace() {
            if !opening.is_empty() {
                out.push(std::mem::take(&mut opening));
            }
            out.push(c.to_string());
        } else if is_wide(c) {
            out.push(std::mem::take(&mut opening) + &c.to_string());
        } else {
            if word.is_empty() {
                word = std::mem::take(&mut opening);
            }
            word.push(c);
            if "/;,|".contains(c) {
                out.push(std::mem::take(&mut word));
            }
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    if !opening.is_empty() {
        out.push(opening);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Layout: tables flowed onto pages as drawing operations.

#[derive(Debug, Clone, PartialEq)]
enum Op {
    /// Text with its baseline at `y`.
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        text: String,
    },
    /// A grid line.
    Line { x1: f32, y1: f32, x2: f32, y2: f32 },
    /// A light grey box (the header row).
    Shade { x: f32, y: f32, w: f32, h: f32 },
}

#[derive(Clone, Copy, PartialEq)]
enum Align {
    Left,
    Center,
}

struct Layout<'a> {
    m: Measure<'a>,
    pages: Vec<Vec<Op>>,
    y: f32,
}

struct Grid {
    widths: Vec<f32>,
    header: Vec<Vec<String>>,
    align: Vec<Align>,
}

const LEFT: f32 = MARGIN;
const RIGHT: f32 = PAGE_W - MARGIN;
const WIDTH: f32 = RIGHT - LEFT;
const BOTTOM: f32 = PAGE_H - MARGIN - FOOT;

fn line_height(size: f32) -> f32 {
    size * LEADING
}

impl Layout<'_> {
    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN;
    }

    fn push(&mut self, op: Op) {
        if let Some(page) = self.pages.last_mut() {
            page.push(op);
        }
    }

    fn baseline(&self, top: f32, size: f32) -> f32 {
        let lh = line_height(size);
        let (a, d) = (self.m.ascent(), self.m.descent());
        top + (lh - (a - d) * size) / 2.0 + a * size
    }

    fn text(&mut self, x: f32, top: f32, size: f32, bold: bool, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        let y = self.baseline(top, size);
        self.push(Op::Text {
            x,
            y,
            size,
            bold,
            text: text.to_string(),
        });
    }

    /// A paragraph across the page, wrapped; a new page first if it does not fit.
    fn paragraph(&mut self, text: &str, size: f32, bold: bool, align: Align) {
        let lh = line_height(size);
        for line in self.m.wrap(text, size, WIDTH) {
            if self.y + lh > BOTTOM {
                self.new_page();
            }
            let x = match align {
                Align::Left => LEFT,
                Align::Center => LEFT + (WIDTH - self.m.width(&line, size)) / 2.0,
            };
            self.text(x, self.y, size, bold, &line);
            self.y += lh;
        }
    }

    /// Column widths: each column's natural width if all fit; otherwise narrow columns
    /// keep theirs and the rest share what is left in proportion, wrapping.
    fn widths(&self, t: &Table, columns: usize) -> Vec<f32> {
        let cell =
            |r: &Vec<Cell>, c: usize| r.get(c).map_or_else(String::new, |s| s.text().into_owned());
        let mut want = Vec::with_capacity(columns);
        let mut least = Vec::with_capacity(columns);
        let mut header_w = Vec::with_capacity(columns);
        for c in 0..columns {
            let header = t.headers.get(c).map_or("", |s| s.as_str());
            let hw = self.m.natural(header, BODY);
            let body = t
                .rows
                .iter()
                .map(|r| self.m.natural(&cell(r, c), BODY))
                .fold(0.0, f32::max);
            let atom = t
                .rows
                .iter()
                .map(|r| self.m.longest_atom(&cell(r, c), BODY))
                .fold(0.0, f32::max);
            let head_min = hw.min(4.0 * BODY);
            least.push(atom.max(head_min).max(2.0 * BODY) + 2.0 * PAD);
            want.push(body.max(hw.min(body.max(6.5 * BODY))) + 2.0 * PAD);
            header_w.push(hw + 2.0 * PAD);
        }
        let mut w: Vec<f32> = want.iter().zip(&least).map(|(a, b)| a.max(*b)).collect();
        let total: f32 = w.iter().sum();
        if total <= WIDTH {
            // Room to spare: headers on one line first, then everyone in proportion.
            let mut spare = WIDTH - total;
            for c in 0..columns {
                let more = (header_w[c] - w[c]).max(0.0).min(spare);
                w[c] += more;
                spare -= more;
            }
            let sum: f32 = w.iter().sum();
            if sum > 0.0 {
                w.iter_mut().for_each(|x| *x += spare * *x / sum);
            }
            return w;
        }
        // Too wide: water-fill.
        let mut fixed = vec![false; columns];
        loop {
            let used: f32 = (0..columns).filter(|&c| fixed[c]).map(|c| w[c]).sum();
            let open: Vec<usize> = (0..columns).filter(|&c| !fixed[c]).collect();
            if open.is_empty() {
                break;
            }
            let share = (WIDTH - used) / open.len() as f32;
            let small: Vec<usize> = open.iter().copied().filter(|&c| w[c] <= share).collect();
            if small.is_empty() {
                let left = WIDTH - used;
                let sum: f32 = open.iter().map(|&c| want[c]).sum();
                for &c in &open {
                    w[c] = (left * want[c] / sum.max(1.0)).max(least[c]);
                }
                break;
            }
            small.into_iter().for_each(|c| fixed[c] = true);
        }
        let sum: f32 = w.iter().sum();
        if sum > WIDTH {
            w.iter_mut().for_each(|x| *x *= WIDTH / sum);
        }
        w
    }

    fn grid(&self, t: &Table) -> Grid {
        let columns = t
            .rows
            .iter()
            .map(Vec::len)
            .chain([t.headers.len()])
            .max()
            .unwrap_or(0)
            .max(1);
        let widths = self.widths(t, columns);
        let header = (0..columns)
            .map(|c| {
                let h = t.headers.get(c).map_or("", |s| s.as_str());
                self.m.wrap(h, BODY, widths[c] - 2.0 * PAD)
            })
            .collect();
        let numeric =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || ".%-".contains(c));
        let align = (0..columns)
            .map(|c| {
                let all = t.rows.iter().all(|r| {
                    r.get(c).is_none_or(|s| {
                        let text = s.text();
                        text.is_empty() || numeric(&text)
                    })
                });
                if all && !t.rows.is_empty() {
                    Align::Center
                } else {
                    Align::Left
                }
            })
            .collect();
        Grid {
            widths,
            header,
            align,
        }
    }

    /// Lines `from..to` of a row's cells, with the cell borders, at the current y.
    fn row(
        &mut self,
        widths: &[f32],
        cells: &[Vec<String>],
        align: &[Align],
        span: (usize, usize),
        header: bool,
    ) {
        let lh = line_height(BODY);
        let h = (span.1 - span.0) as f32 * lh + 2.0 * PAD;
        let top = self.y;
        if header {
            self.push(Op::Shade {
                x: LEFT,
                y: top,
                w: widths.iter().sum(),
                h,
            });
        }
        let mut x = LEFT;
        for (c, w) in widths.iter().enumerate() {
            let lines = cells.get(c).map_or(&[][..], |l| &l[..]);
            // Headers are centred both ways.
            let shift = if header {
                (span.1 - span.0).saturating_sub(lines.len()) as f32 * lh / 2.0
            } else {
                0.0
            };
            let center = header || align.get(c) == Some(&Align::Center);
            for (i, line) in lines
                .iter()
                .enumerate()
                .take(span.1)
                .skip(span.0.min(lines.len()))
            {
                let lx = if center {
                    x + (w - self.m.width(line, BODY)) / 2.0
                } else {
                    x + PAD
                };
                let ly = top + PAD + shift + (i - span.0) as f32 * lh;
                self.text(lx, ly, BODY, false, line);
            }
            x += w;
        }
        let right = x;
        let bottom = top + h;
        self.push(Op::Line {
            x1: LEFT,
            y1: top,
            x2: right,
            y2: top,
        });
        self.push(Op::Line {
            x1: LEFT,
            y1: bottom,
            x2: right,
            y2: bottom,
        });
        let mut x = LEFT;
        for w in widths.iter().chain([&0.0]) {
            self.push(Op::Line {
                x1: x,
                y1: top,
                x2: x,
                y2: bottom,
            });
            x += w;
        }
        self.y = bottom;
    }

    /// A row's cells wrapped to their columns, each a list of lines.
    fn cells(&self, g: &Grid, r: &[Cell]) -> Vec<Vec<String>> {
        g.widths
            .iter()
            .enumerate()
            .map(|(c, w)| {
                let text = r.get(c).map(Cell::text).unwrap_or_default();
                self.m.wrap(&text, BODY, w - 2.0 * PAD)
            })
            .collect()
    }

    fn header_row(&mut self, g: &Grid) {
        let lines = g.header.iter().map(Vec::len).max().unwrap_or(1).max(1);
        self.row(&g.widths, &g.header, &g.align, (0, lines), true);
    }

    /// A table: its title, the header row (again on each page it continues on), the rows.
    fn table(&mut self, t: &Table, title: Option<(&str, f32, Align)>) {
        let g = self.grid(t);
        let lh = line_height(BODY);
        let header_h =
            g.header.iter().map(Vec::len).max().unwrap_or(1).max(1) as f32 * lh + 2.0 * PAD;
        let title_h = title.map_or(0.0, |(_, size, _)| line_height(size) + 4.0);
        let fresh = ((BOTTOM - MARGIN - header_h - 2.0 * PAD) / lh).floor() as usize;
        // The title and the header stay with the first row as the rows' rule keeps it: the
        // whole row when it would move to a page of its own (short), else three lines.
        // One line was too few: a heading and a header sat alone at a page's foot, the
        // row on the next (QA s33c C6).
        let first = t.rows.first().map_or(1, |r| lines(&self.cells(&g, r)));
        let keep = if first * 2 <= fresh {
            first
        } else {
            first.min(3)
        };
        if self.y + title_h + header_h + keep as f32 * lh + 2.0 * PAD > BOTTOM {
            self.new_page();
        }
        if let Some((text, size, align)) = title {
            self.paragraph(text, size, true, align);
            self.y += 4.0;
        }
        self.header_row(&g);
        if t.rows.is_empty() {
            let total: f32 = g.widths.iter().sum();
            self.row(
                &[total],
                &[vec!["（无）".to_string()]],
                &[Align::Center],
                (0, 1),
                false,
            );
            return;
        }
        for r in &t.rows {
            let cells = self.cells(&g, r);
            let n = lines(&cells);
            let mut from = 0;
            let mut broke = false;
            while from < n {
                let room = ((BOTTOM - self.y - 2.0 * PAD) / lh).floor().max(0.0) as usize;
                // When the rest of the row does not fit here: move it to a new page if
                // it is short (at most half a page) or if not 3 lines fit here;
                // otherwise split it, continuing on the next page.
                let rest = n - from;
                if !broke && room < rest && (rest * 2 <= fresh || room < 3) {
                    self.new_page();
                    self.header_row(&g);
                    broke = true;
                    continue;
                }
                broke = false;
                let to = n.min(from + room.max(1));
                self.row(&g.widths, &cells, &g.align, (from, to), false);
                from = to;
            }
        }
    }
}

/// How many lines a row of wrapped cells takes: its tallest cell's, at least one.
fn lines(cells: &[Vec<String>]) -> usize {
    cells.iter().map(Vec::len).max().unwrap_or(1).max(1)
}

/// Lays the tables out and draws them.
fn render(tables: &[Table], town: Option<&str>, footer: Option<&str>) -> ApiResult<Vec<u8>> {
    let font = find_font()?;
    let mut l = Layout {
        m: Measure::new(Some((&font.data[..], &font.metrics))),
        pages: Vec::new(),
        y: MARGIN,
    };
    l.new_page();
    let doc_title = tables.first().map_or("", |t| t.title.as_str()).to_string();
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            l.y += 12.0;
        }
        let sheet = t.headers.len() >= SHEET_HEADERS.len()
            && t.headers.iter().zip(SHEET_HEADERS).all(|(a, b)| a == b);
        if sheet {
            // 附件3: the label, the form's name, the town and quarter, the table, the note.
            l.paragraph("附件3", 10.0, false, Align::Left);
            let (name, rest) = t.title.split_once(' ').unwrap_or((t.title.as_str(), ""));
            l.paragraph(name, 16.0, true, Align::Center);
            l.y += 2.0;
            let place = format!("镇(街)：{}", town.unwrap_or(""));
            l.paragraph(
                &format!("{place}\u{3000}\u{3000}{rest}"),
                10.0,
                false,
                Align::Left,
            );
            l.y += 2.0;
            l.table(t, None);
            l.y += 4.0;
            l.paragraph(SHEET_NOTE, 8.5, false, Align::Left);
        } else if i == 0 {
            l.table(t, Some((&t.title, 15.0, Align::Center)));
        } else {
            l.table(t, Some((&t.title, 11.0, Align::Left)));
        }
    }
    if let Some(footer) = footer.filter(|f| !f.trim().is_empty()) {
        l.y += 10.0;
        l.paragraph(footer, 10.0, false, Align::Left);
    }
    // Each page's foot: the document's title and "第 n 页 共 m 页".
    let pages = l.pages.len();
    let foot_top = PAGE_H - MARGIN - line_height(8.0);
    // The title as much as fits beside the widest page number, whole where it fits
    // (QA s24d F5: cut at 60 characters, a sheet's lost the end of 第1版已于…报送).
    let widest = format!("第 {pages} 页  共 {pages} 页");
    let room = RIGHT - LEFT - l.m.width(&widest, 8.0) - 12.0;
    let short = l.m.fit(&doc_title, 8.0, room);
    for p in 0..pages {
        let number = format!("第 {} 页  共 {pages} 页", p + 1);
        let nx = RIGHT - l.m.width(&number, 8.0);
        let ops = [
            Op::Text {
                x: LEFT,
                y: l.baseline(foot_top, 8.0),
                size: 8.0,
                bold: false,
                text: short.clone(),
            },
            Op::Text {
                x: nx,
                y: l.baseline(foot_top, 8.0),
                size: 8.0,
                bold: false,
                text: number,
            },
        ];
        if let Some(page) = l.pages.get_mut(p) {
            page.extend(ops);
        }
    }
    draw(&font, &l.pages, &doc_title)
}

fn pdf_error(what: &str) -> ApiError {
    ApiError::Internal(format!("writing PDF: {what}"))
}

fn draw(font: &LoadedFont, pages: &[Vec<Op>], title: &str) -> ApiResult<Vec<u8>> {
    let face = Font::new(font.data.clone().into(), font.index).ok_or_else(|| {
        tracing::error!("{}: krilla cannot use the font", font.path.display());
        ApiError::PdfFontMissing(NO_FONT.into())
    })?;
    let mut doc = Document::new();
    doc.set_metadata(
        Metadata::new()
            .title(title.to_string())
            .language("zh-CN".into())
            .creator("Bangfu".into()),
    );
    let black = Fill::default();
    for ops in pages {
        let settings =
            PageSettings::from_wh(PAGE_W, PAGE_H).ok_or_else(|| pdf_error("page size"))?;
        let mut page = doc.start_page_with(settings);
        let mut s = page.surface();
        // Shading first, then the grid as one path, then the text over it.
        s.set_stroke(None);
        s.set_fill(Some(Fill {
            paint: luma::Color::new(232).into(),
            ..Fill::default()
        }));
        for op in ops {
            if let Op::Shade { x, y, w, h } = *op
                && let Some(rect) = Rect::from_xywh(x, y, w, h)
            {
                let mut pb = PathBuilder::new();
                pb.push_rect(rect);
                if let Some(path) = pb.finish() {
                    s.draw_path(&path);
                }
            }
        }
        let mut pb = PathBuilder::new();
        for op in ops {
            if let Op::Line { x1, y1, x2, y2 } = *op {
                pb.move_to(x1, y1);
                pb.line_to(x2, y2);
            }
        }
        if let Some(path) = pb.finish() {
            s.set_fill(None);
            s.set_stroke(Some(Stroke {
                width: GRID,
                ..Stroke::default()
            }));
            s.draw_path(&path);
        }
        s.set_fill(Some(black.clone()));
        for op in ops {
            if let Op::Text {
                x,
                y,
                size,
                bold,
                text,
            } = op
            {
                // Bold is the regular face stroked thinly (one font is embedded).
                s.set_stroke(bold.then(|| Stroke {
                    width: size * 0.035,
                    ..Stroke::default()
                }));
                s.draw_text(
                    Point::from_xy(*x, *y),
                    face.clone(),
                    *size,
                    text,
                    false,
                    TextDirection::Auto,
                );
            }
        }
        s.finish();
        page.finish();
    }
    doc.finish().map_err(|e| pdf_error(&format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

    use super::*;

    fn approx() -> Measure<'static> {
        Measure::new(None)
    }

    /// QA s33c C6: near a page's foot, a table whose short first row does not fit there
    /// starts on the next page, its title with it: a heading and a header row were left
    /// alone at the foot of a page, the rule's text on the next.
    #[test]
    fn a_table_title_stays_with_its_first_row() {
        let rule = "按季度考核：入户每两个月一次（单月、双月各为一个周期）。".repeat(12);
        let table = Table {
            title: "考勤规则".into(),
            headers: vec!["规则".into()],
            rows: vec![vec![Cell::Text(rule)]],
        };
        let mut layout = Layout {
            m: approx(),
            pages: vec![Vec::new()],
            y: MARGIN,
        };
        let lh = line_height(BODY);
        // Room for the title, the header and two lines of the row, not for all of it.
        layout.y = BOTTOM - (line_height(BODY + 2.0) + 4.0) - 2.0 * (lh + 2.0 * PAD) - lh;
        layout.table(&table, Some(("考勤规则", BODY + 2.0, Align::Left)));
        assert_eq!(layout.pages.len(), 2, "the table moved to a new page");
        assert!(
            layout.pages[0].is_empty(),
            "nothing left at the first page's foot"
        );
        let titled = layout.pages[1]
            .iter()
            .any(|op| matches!(op, Op::Text { text, .. } if text == "考勤规则"));
        assert!(titled, "the title is on the page with its row");
    }

    /// QA s24d F5: a page foot keeps the whole title where it fits, and says "…" where
    /// it does not.
    #[test]
    fn a_title_is_cut_to_its_room_with_an_ellipsis() {
        let m = approx();
        let title = "第二帮扶责任人考勤表 2026Q4 当前数据（第1版已于2026-12-05 16:41报送）";
        let room = RIGHT - LEFT - m.width("第 9 页  共 9 页", 8.0) - 12.0;
        assert_eq!(
            m.fit(title, 8.0, room),
            title,
            "fits on an A4 landscape foot"
        );
        let cut = m.fit(title, 8.0, 100.0);
        assert!(cut.ends_with('…') && m.width(&cut, 8.0) <= 100.0, "{cut}");
    }

    #[test]
    fn atoms_keep_words_and_punctuation_together() {
        assert_eq!(
            atoms("01-10入户(不计:无照片)；13967929081"),
            [
                "01-10",
                "入",
                "户",
                "(不",
                "计:",
                "无",
                "照",
                "片)；",
                "13967929081"
            ]
        );
        assert_eq!(
            atoms("11-01~11-30电话未到位；12-01"),
            ["11-01~11-30", "电", "话", "未", "到", "位；", "12-01"]
        );
        assert_eq!(atoms("a b"), ["a", " ", "b"]);
        assert_eq!(atoms("（无）"), ["（无）"]);
    }

    #[test]
    fn wrapping_respects_width_and_line_start_rules() {
        let m = approx();
        // Ten ideographs at 10 pt in a 45 pt column: four a line (plus the closing mark).
        let lines = m.wrap("一二三四五六七八九十。", 10.0, 45.0);
        assert_eq!(lines, ["一二三四", "五六七八", "九十。"]);
        assert!(lines.iter().all(|l| !l.starts_with('。')));
        // A phone number stays whole when it fits, breaks when it alone is too wide.
        assert_eq!(
            m.wrap("电话 13967929081", 10.0, 75.0),
            ["电话", "13967929081"]
        );
        assert_eq!(m.wrap("13967929081", 10.0, 30.0).len(), 3);
        assert_eq!(m.wrap("a\n\nb", 10.0, 100.0), ["a", "", "b"]);
        assert_eq!(m.wrap("", 10.0, 100.0), [""]);
    }

    #[test]
    fn a_missing_font_is_the_servers_setup_not_the_clients_request() {
        use actix_web::ResponseError;
        let nowhere = [("/nonexistent/bangfu-test-font.ttc", 0)];
        for env in [None, Some("/nonexistent/bangfu-test-font.ttf#1")] {
            let Err(e) = find_font_among(env, &nowhere) else {
                panic!("{env:?}: a font that is not there was found");
            };
            assert!(matches!(e, ApiError::PdfFontMissing(_)), "{env:?}: {e:?}");
            assert_eq!(
                e.status_code(),
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE
            );
            assert_eq!(e.code(), "pdf_font_missing");
            let body = e.body();
            assert!(
                body.message.contains("fonts-wqy-microhei"),
                "{}",
                body.message
            );
            assert!(
                !body.message.contains("/nonexistent"),
                "the path is logged, not sent"
            );
        }
    }

    #[test]
    fn the_env_names_a_face() {
        assert_eq!(parse_env("/f.ttc#2"), (PathBuf::from("/f.ttc"), 2));
        assert_eq!(parse_env("/f.ttf"), (PathBuf::from("/f.ttf"), 0));
    }

    #[test]
    fn metrics_of_a_system_font_if_any() {
        let Some((path, index)) = FONT_CANDIDATES
            .iter()
            .find(|(p, _)| std::path::Path::new(p).is_file())
        else {
            eprintln!("skipped: {NO_FONT}");
            return;
        };
        let data = std::fs::read(path).unwrap();
        let m = Metrics::parse(&data, *index).unwrap();
        assert_ne!(m.glyph(&data, '帮'), 0);
        let wide = m.advance(&data, '帮').unwrap();
        assert!((0.9..=1.1).contains(&wide), "{wide}");
        let digit = m.advance(&data, '1').unwrap();
        assert!(digit > 0.2 && digit < 0.8, "{digit}");
        assert!(Metrics::parse(b"not a font", 0).is_none());
    }
}
