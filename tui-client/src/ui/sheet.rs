//! The attendance-sheet screen (考勤表, 附件3 columns) and its two dialogs: the remark
//! being typed and the confirmation before signing.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState, Wrap};

use super::centered;
use crate::app::App;
use crate::sheets::{ReviewCheck, SheetView};
use crate::store::SubmissionState;
use bangfu_shared::report::{Quarter, SheetRow};

pub fn render_sheet(app: &App, frame: &mut Frame, area: Rect) -> String {
    let t = app.lang.sheet();
    let Some(view) = app.current_sheet() else {
        // Only a second helper fills in the sheet: a first helper is told it is not
        // theirs, rather than to sync for one that never comes.
        let (text, help) = if app.fills_sheet() {
            (t.no_sheet, t.help)
        } else {
            (t.no_sheet_first, t.help_first)
        };
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title(format!(" {} ", t.title))),
            area,
        );
        return help.to_string();
    };
    let check = review_check_lines(app, view);
    let [head, check_area, table_area, summary_area] = sheet_areas(view, check.len(), area);
    frame.render_widget(Paragraph::new(check), check_area);
    render_sheet_head(app, view, frame, head);
    render_sheet_table(app, view, frame, table_area);
    render_summary(app, view, frame, summary_area);
    if app.sheet_summary_focus {
        t.help_summary.to_string()
    } else {
        t.help.to_string()
    }
}

/// The sheet screen's areas in `body`: the title line, the server's check, the rows (as
/// tall as they need while the summary keeps [`MIN_SUMMARY`] lines; the table scrolls to
/// the selected row), the selected row's summary.
fn sheet_areas(view: &SheetView, check_lines: usize, body: Rect) -> [Rect; 4] {
    let rows = u16::try_from(view.sheet.rows.len()).unwrap_or(u16::MAX);
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::try_from(check_lines).unwrap_or(0)),
        Constraint::Length(rows.saturating_add(3)),
        Constraint::Min(MIN_SUMMARY),
    ])
    .areas(body)
}

/// The least height of the selected row's summary (borders included).
const MIN_SUMMARY: u16 = 5;

/// The server's check of the last submitted version, on a line of its own under the
/// title; a version frozen on rows that changed since the review asks, on the next
/// line, to sign again (S: the existing flow, which makes a new version).
fn review_check_lines(app: &App, view: &SheetView) -> Vec<Line<'static>> {
    let mut check: Vec<Line> = Vec::new();
    if let Some(c) = view.review_check() {
        let resigned = view.resigned();
        let style = match c {
            ReviewCheck::Changed { .. } if resigned => Style::new().fg(Color::Yellow),
            ReviewCheck::Changed { .. } => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ReviewCheck::Matched { .. } => Style::new().fg(Color::Green),
        };
        check.push(Line::from(Span::styled(
            format!(" {}", app.lang.sheet_review_check(c, resigned)),
            style,
        )));
        if matches!(c, ReviewCheck::Changed { .. }) && !resigned {
            check.push(Line::from(Span::styled(
                format!("   {}", app.lang.sheet_resign_key()),
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            )));
        }
    }
    check
}

/// The title line: quarter, second helper, which of the pulled sheets, its state.
fn render_sheet_head(app: &App, view: &SheetView, frame: &mut Frame, area: Rect) {
    let t = app.lang.sheet();
    let state = view.state();
    let state_style = match &state {
        Some(SubmissionState::Rejected { .. }) => Style::new().fg(Color::Red),
        Some(SubmissionState::Submitted { .. }) => Style::new().fg(Color::Green),
        Some(SubmissionState::Pending) => Style::new().fg(Color::Yellow),
        None => Style::new().fg(Color::DarkGray),
    };
    // Counted from the earliest stored quarter, so ← (earlier) counts down (QA s22d F9);
    // the list itself is newest first.
    let quarters = format!(
        "{}/{}",
        app.sheets.len().saturating_sub(app.sheet_index),
        app.sheets.len()
    );
    let title = format!(" {} {} ", t.title, view.quarter());
    let name = format!("· {} ", view.sheet.second_helper.name);
    let which = format!("· ({quarters}) · ");
    let state_text = app.lang.sheet_state(state.as_ref());
    let marker = view
        .changes_marker(t, true)
        .map(|m| format!(" · {m}"))
        .unwrap_or_default();
    // Narrow, the header gives up which of the sheets it is, then the helper's name,
    // then the word 考勤表, before the state and what to do about changes; what still
    // does not fit is cut with "…".
    let room = usize::from(area.width);
    let width = |parts: &[&str]| parts.iter().map(|p| Span::raw(*p).width()).sum::<usize>();
    let short_title = format!(" {} ", view.quarter());
    let fits = |parts: &[&str]| width(parts) + width(&[&state_text, &marker]) <= room;
    let (title, name, which) = if fits(&[&title, &name, &which]) {
        (title, name, which)
    } else if fits(&[&title, &name, "· "]) {
        (title, name, "· ".to_string())
    } else if fits(&[&title, "· "]) {
        (title, String::new(), "· ".to_string())
    } else {
        (short_title, String::new(), "· ".to_string())
    };
    let used = width(&[&title, &name, &which, &state_text]);
    let marker = fit(
        &marker,
        u16::try_from(room.saturating_sub(used)).unwrap_or(0),
    );
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(title, Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(name),
            Span::raw(which),
            Span::styled(state_text, state_style),
            Span::styled(
                marker,
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ),
        ])),
        area,
    );
}

/// The 附件3 columns of a row: 序号 (the row's own number, 1 to n, as the printed
/// sheet has it; not the ledger's), head, village, first helper, records, remark.
fn row_cells(view: &SheetView, n: usize, r: &SheetRow) -> [String; 6] {
    [
        n.to_string(),
        r.head_name.clone(),
        r.village.clone(),
        r.first_helper
            .as_ref()
            .map(|h| h.name.clone())
            .unwrap_or_default(),
        r.record_text(),
        view.remark(r).to_string(),
    ]
}

/// Which column takes what the others leave: the records (the summary has them whole).
const RECORDS: usize = 4;

/// The least width of the records column, and of a column shortened to fit.
const MIN_RECORDS: u16 = 10;
const MIN_COLUMN: u16 = 4;

/// Which column gives way first: the remark (the summary below has it whole).
const REMARK: usize = 5;

/// How far the remark gives way to the records before the other columns share the
/// shortening: six Chinese characters.
const REMARK_FLOOR: u16 = 12;

/// Column widths in `available` columns for the widest `header` and `data` text of each
/// column: each column as wide as both while they fit. The remark gives way to the
/// records' whole text first, down to [`REMARK_FLOOR`]. When they still do not fit, what
/// the helper loses least gives way first, a column at a time: the remark (whole in the
/// summary), then a header wider than its column's data (贫困户姓名 over two-character
/// names), then the widest column, evenly, down to [`MIN_COLUMN`]. So a village name
/// is cut only when nothing else is left to shorten. The records column takes the rest.
fn column_widths(header: [u16; 6], data: [u16; 6], available: u16) -> [u16; 6] {
    let mut widths: [u16; 6] = std::array::from_fn(|i| header[i].max(data[i]));
    // The remark first makes room for the records, whose text the reviewer checks, down
    // to six characters (QA s22b F5: one remark squeezed every row's records to 10).
    let records_want = data[RECORDS].max(MIN_RECORDS);
    let remark_floor = data[REMARK].clamp(MIN_COLUMN, REMARK_FLOOR);
    while widths[REMARK] > remark_floor
        && widths.iter().sum::<u16>() - widths[RECORDS] + records_want > available
    {
        widths[REMARK] -= 1;
    }
    let budget = available.saturating_sub(MIN_RECORDS);
    let others = |w: &[u16; 6]| -> u16 {
        w.iter()
            .enumerate()
            .filter(|(i, _)| *i != RECORDS)
            .map(|(_, w)| *w)
            .sum()
    };
    let shrinkable = |i: usize, w: u16| i != RECORDS && i != 0 && w > MIN_COLUMN;
    while others(&widths) > budget {
        let remark = Some(REMARK).filter(|&i| shrinkable(i, widths[i]));
        let header_excess = || {
            widths
                .iter()
                .enumerate()
                .filter(|(i, w)| shrinkable(*i, **w) && **w > data[*i])
                .max_by_key(|(i, w)| (**w - data[*i], std::cmp::Reverse(*i)))
                .map(|(i, _)| i)
        };
        let widest = || {
            widths
                .iter()
                .enumerate()
                .filter(|(i, w)| shrinkable(*i, **w))
                .max_by_key(|(i, w)| (**w, std::cmp::Reverse(*i)))
                .map(|(i, _)| i)
        };
        match remark.or_else(header_excess).or_else(widest) {
            Some(i) => widths[i] -= 1,
            None => break,
        }
    }
    widths[RECORDS] = available.saturating_sub(others(&widths));
    widths
}

/// `text` cut to `width` terminal columns (a Chinese character is two), ending in "…"
/// when it was cut; whole when it fits.
pub fn fit(text: &str, width: u16) -> String {
    let width = usize::from(width);
    if Span::raw(text).width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = super::char_width(c);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

fn render_sheet_table(app: &App, view: &SheetView, frame: &mut Frame, area: Rect) {
    let t = app.lang.sheet();
    let headers = [
        t.seq,
        t.head,
        t.village,
        t.first_helper,
        t.records,
        t.remark,
    ];
    let cells: Vec<[String; 6]> = view
        .sheet
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| row_cells(view, i + 1, r))
        .collect();
    let width = |s: &str| u16::try_from(Span::raw(s).width()).unwrap_or(u16::MAX);
    let mut data = [0u16; 6];
    for row in &cells {
        for (n, cell) in data.iter_mut().zip(row) {
            *n = (*n).max(width(cell));
        }
    }
    // Two borders and five gaps between six columns.
    let available = area.width.saturating_sub(2 + 5);
    let widths = column_widths(headers.map(width), data, available);
    let fitted =
        |texts: &[String; 6]| -> [String; 6] { std::array::from_fn(|i| fit(&texts[i], widths[i])) };
    let header = Row::new(fitted(&headers.map(String::from)))
        .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = cells.iter().map(|c| Row::new(fitted(c)));
    let title = if view.sheet.rows.len() > usize::from(area.height.saturating_sub(3)) {
        format!(
            " {}/{} ",
            app.sheet_selected.saturating_add(1),
            view.sheet.rows.len()
        )
    } else {
        String::new()
    };
    let table = Table::new(rows, widths.map(Constraint::Length))
        .header(header)
        .block(
            Block::bordered()
                .title(title)
                .border_style(focus_style(!app.sheet_summary_focus)),
        )
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut ts = TableState::default().with_selected(Some(app.sheet_selected));
    frame.render_stateful_widget(table, area, &mut ts);
}

/// The border of the part the arrow keys move: cyan.
fn focus_style(focused: bool) -> Style {
    if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new()
    }
}

/// The selected row's summary, whole: household, village and first helper (the table
/// may shorten them), the records, the second helper's own visits, the remark; wrapped to
/// `width` columns.
fn summary_lines(app: &App, view: &SheetView, width: u16) -> Vec<Line<'static>> {
    let t = app.lang.sheet();
    let Some(r) = view.sheet.rows.get(app.sheet_selected) else {
        return Vec::new();
    };
    let helper = r
        .first_helper
        .as_ref()
        .map(|h| format!("{}（{}）", h.name, h.unit_position))
        .unwrap_or_default();
    let label = Style::new().fg(Color::Cyan);
    let c = app.lang.texts().colon;
    let paragraphs = [
        vec![
            Span::raw(format!("{} · {} · ", r.head_name, r.village)),
            Span::styled(format!("{}{c}", t.first_helper), label),
            Span::raw(helper),
        ],
        vec![
            Span::styled(format!("{}{c}", t.records), label),
            Span::raw(r.record_text()),
        ],
        vec![
            Span::styled(format!("{}{c}", t.own_visits), label),
            Span::raw(match r.own_text() {
                own if own.is_empty() => "—".to_string(),
                own => own,
            }),
        ],
        vec![
            Span::styled(format!("{}{c}", t.remark), label),
            Span::raw(view.remark(r).to_string()),
        ],
    ];
    // What the row's marks mean ((迟报), (补录)…), when it has any.
    let legend =
        bangfu_shared::report::marks_legend_zh([r.record_text().as_str(), r.own_text().as_str()])
            .map(|l| vec![Span::styled(l, Style::new().fg(Color::DarkGray))]);
    // And the rule the windows were judged by, as the printed sheet ends: what the
    // helper signs explains 不考核 and an early due day (QA s24c F8).
    let rule = (!view.sheet.rule.is_empty()).then(|| {
        vec![Span::styled(
            format!("考勤规则：{}", view.sheet.rule),
            Style::new().fg(Color::DarkGray),
        )]
    });
    let paragraphs: Vec<Vec<Span>> = paragraphs.into_iter().chain(legend).chain(rule).collect();
    let width = usize::from(width).max(1);
    paragraphs
        .iter()
        .flat_map(|spans| super::wrap_styled(spans, width))
        .map(|line| {
            Line::from(
                line.spans
                    .into_iter()
                    .map(|s| Span::styled(s.content.into_owned(), s.style))
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

/// How far the summary of the selected row scrolls on a terminal of `size`: its
/// wrapped lines and the lines shown at once (0 and 0 off the sheet screen). `update`
/// pages and clamps with it; the render uses the same layout.
pub(crate) fn summary_extent(app: &App, size: (u16, u16)) -> (usize, usize) {
    let Some(view) = app.current_sheet() else {
        return (0, 0);
    };
    // The body between the title bar and the status and help lines (`super::render`).
    let body = Rect::new(0, 1, size.0, size.1.saturating_sub(3));
    let [_, _, _, summary] = sheet_areas(view, review_check_lines(app, view).len(), body);
    let inner = summary_inner(summary);
    let lines = summary_lines(app, view, inner.width).len();
    (lines, usize::from(inner.height))
}

/// The summary's text area inside its borders.
fn summary_inner(area: Rect) -> Rect {
    Block::bordered().inner(area)
}

fn render_summary(app: &App, view: &SheetView, frame: &mut Frame, area: Rect) {
    let Some(r) = view.sheet.rows.get(app.sheet_selected) else {
        return;
    };
    let inner = summary_inner(area);
    let lines = summary_lines(app, view, inner.width);
    let shown = usize::from(inner.height);
    let max = lines.len().saturating_sub(shown);
    let top = usize::from(app.sheet_scroll).min(max);
    let mut title = format!(" {} ", r.head_name);
    if max > 0 {
        let last = (top + shown).min(lines.len());
        title.push_str(&format!("↕ {}–{}/{} ", top + 1, last, lines.len()));
        if !app.sheet_summary_focus {
            title.push_str(app.lang.sheet().summary_scroll_hint);
        }
    }
    let visible: Vec<Line> = lines.into_iter().skip(top).take(shown).collect();
    frame.render_widget(
        Paragraph::new(visible).block(
            Block::bordered()
                .title(title)
                .border_style(focus_style(app.sheet_summary_focus)),
        ),
        area,
    );
}

pub fn render_remark(
    app: &App,
    household_id: i64,
    text: &str,
    frame: &mut Frame,
    area: Rect,
) -> String {
    let t = app.lang.sheet();
    // The dialog covers the row it is about: its title names the household (QA s31c
    // T10).
    let head = app.current_sheet().and_then(|v| {
        v.sheet
            .rows
            .iter()
            .find(|r| r.household_id == household_id)
            .map(|r| r.head_name.clone())
    });
    let title = match head {
        Some(name) => format!("{} · {name}", t.remark),
        None => t.remark.to_string(),
    };
    super::input_dialog(
        frame,
        area,
        area.width.saturating_sub(10).min(70),
        &title,
        Span::styled(t.remark_prompt, Style::new().fg(Color::Cyan)),
        text,
    );
    t.help_remark.to_string()
}

pub fn render_confirm(app: &App, quarter: Quarter, frame: &mut Frame, area: Rect) -> String {
    let t = app.lang.sheet();
    let today = crate::client::today(app.clock.now());
    let early = app.lang.sheet_early(quarter, today);
    let height = if early.is_some() { 9 } else { 6 };
    let dialog = centered(area, area.width.saturating_sub(10).min(60), height);
    super::clear_dialog(frame, dialog);
    let mut lines = Vec::new();
    if let Some(early) = early {
        lines.push(Line::from(Span::styled(
            early,
            Style::new().fg(Color::Yellow),
        )));
    }
    lines.push(Line::from(t.confirm));
    let p = Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(format!(" {} ", t.confirm_title)));
    frame.render_widget(p, dialog);
    t.help_confirm.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_keep_their_whole_text_while_it_fits_and_the_remark_gives_way_first() {
        // 序号, 贫困户姓名, 村, 第一帮扶责任人, 帮扶记录, 备注 and the widest data of each.
        let header = [4, 10, 2, 14, 8, 4];
        let data = [1, 4, 12, 6, 40, 30];
        // Room for all: each as wide as its text, the records take the rest.
        assert_eq!(column_widths(header, data, 120), [4, 10, 12, 14, 50, 30]);
        // 73 columns (80 wide): the remark gives way to the records, down to six
        // characters.
        assert_eq!(column_widths(header, data, 73), [4, 10, 12, 14, 21, 12]);
        // Long records at 120: one long remark does not squeeze them (QA s22b F5).
        let long = [1, 4, 12, 6, 200, 60];
        assert_eq!(column_widths(header, long, 113), [4, 10, 12, 14, 61, 12]);
        // A short remark keeps its whole width.
        let short = [1, 4, 12, 6, 200, 8];
        assert_eq!(column_widths(header, short, 113), [4, 10, 12, 14, 65, 8]);
        // 53 (60 wide): the remark down to its least, then the headers wider than
        // their data; the village stays whole.
        assert_eq!(column_widths(header, data, 53), [4, 10, 12, 13, 10, 4]);
        assert_eq!(column_widths(header, data, 45), [4, 6, 12, 9, 10, 4]);
        // Then the widest evenly, the village too.
        assert_eq!(column_widths(header, data, 35), [4, 4, 7, 6, 10, 4]);
        // No room at all: every column down to its least, nothing panics.
        assert_eq!(column_widths(header, data, 5), [4, 4, 4, 4, 0, 4]);
    }

    #[test]
    fn fitting_counts_chinese_as_two_columns_and_cuts_only_what_does_not_fit() {
        assert_eq!(fit("大王庄村", 8), "大王庄村");
        assert_eq!(fit("大王庄村", 7), "大王庄…");
        assert_eq!(fit("大王庄村", 6), "大王…");
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("abcd", 3), "ab…");
        assert_eq!(fit("大王", 1), "…");
        assert_eq!(fit("大王", 0), "");
        assert!(Span::raw(fit("东山镇新华村民委员会", 9).as_str()).width() <= 9);
    }
}
