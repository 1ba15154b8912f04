//! Rendering: pure functions of `&App` into a ratatui frame. Nothing here changes
//! state; layouts that `update` also needs (the signature pad's canvas) are computed
//! by shared functions from the terminal size alone. Every layout saturates, so any
//! terminal size, down to 1×1, renders without panicking.

mod form;
mod lists;
mod overlays;
mod sheet;

pub use sheet::fit;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Widget, Wrap};

use crate::app::{App, Overlay, Screen, Status};
use crate::photos::HalfBlocks;

pub(crate) use lists::history_extent;
pub(crate) use sheet::summary_extent;

/// Size of photo thumbnails in terminal cells (columns, rows).
pub const THUMB_SIZE: (u16, u16) = (26, 9);

/// The smallest terminal the screens are laid out for.
pub const MIN_SIZE: (u16, u16) = (60, 16);

/// Draws the whole app.
pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let msg = Paragraph::new(app.lang.texts().too_small)
            .wrap(Wrap { trim: true })
            .style(Style::new().fg(Color::Yellow));
        frame.render_widget(msg, area);
        return;
    }
    let status_lines = match &app.status {
        Some(s) if !app.sync.running => status_lines(s, area.width),
        _ => Vec::new(),
    };
    let status_height = u16::try_from(status_lines.len().max(1)).unwrap_or(1);
    let [title, body, status, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(status_height),
        Constraint::Length(1),
    ])
    .areas(area);
    render_title(app, frame, title);
    let help_text = match &app.screen {
        Screen::Login(_) => lists::render_login(app, frame, body),
        Screen::Households => lists::render_households(app, frame, body),
        Screen::Detail { household_id } => lists::render_detail(app, frame, body, *household_id),
        Screen::Form(f) => form::render_form(app, f, frame, body),
        Screen::History { household_id } => lists::render_history(app, frame, body, *household_id),
        Screen::Drafts => lists::render_drafts(app, frame, body),
        Screen::Sheet => sheet::render_sheet(app, frame, body),
    };
    // Dialogs open inside the screen's frame, clear of its top and bottom borders (QA
    // s30d P4: the chooser's bottom border lay on the form's). The signature pad keeps
    // the whole terminal: its canvas maps mouse positions from the terminal's size.
    let popup = Rect {
        y: body.y + 1,
        height: body.height.saturating_sub(2),
        ..area
    };
    let help_text = match &app.overlay {
        Some(Overlay::Chooser(c)) => overlays::render_chooser(app, c, frame, popup),
        Some(Overlay::Pad(p)) => overlays::render_pad(app, p, frame, area),
        Some(Overlay::Void { reason, .. }) => overlays::render_void(app, reason, frame, popup),
        Some(Overlay::Remark {
            text, household_id, ..
        }) => sheet::render_remark(app, *household_id, text, frame, popup),
        Some(Overlay::ConfirmSubmit { quarter }) => {
            sheet::render_confirm(app, *quarter, frame, popup)
        }
        Some(Overlay::ResumeDraft { draft }) => overlays::render_resume(app, draft, frame, popup),
        Some(Overlay::ConfirmDiscard { draft }) => {
            overlays::render_discard(app, draft, frame, popup)
        }
        None => help_text,
    };
    if app.sync.running {
        render_sync_gauge(app, frame, status);
    } else if let Some(s) = &app.status {
        let style = if s.error {
            Style::new().fg(Color::White).bg(Color::Red)
        } else {
            Style::new().fg(Color::Green)
        };
        let lines: Vec<Line> = status_lines
            .into_iter()
            .map(|l| Line::from(Span::styled(l, style)))
            .collect();
        frame.render_widget(Paragraph::new(lines), status);
    } else if let Some(offset) = app
        .clock_offset
        .filter(|_| !matches!(app.screen, Screen::Login(_)))
    {
        // Before anything else: every visit signed meanwhile would not count.
        frame.render_widget(
            Paragraph::new(Span::styled(
                sheet::fit(&format!("⚠ {}", app.lang.clock_off(offset)), status.width),
                Style::new().fg(Color::White).bg(Color::Red),
            )),
            status,
        );
    } else if !app.history_pulled && !matches!(app.screen, Screen::Login(_)) {
        // Until the first sync the lists show only this device's visits: "never" and
        // "overdue" may be wrong, and the helper is told how to fix it.
        frame.render_widget(
            Paragraph::new(Span::styled(
                sheet::fit(app.lang.texts().history_not_pulled, status.width),
                Style::new().fg(Color::Black).bg(Color::Yellow),
            )),
            status,
        );
    }
    frame.render_widget(
        Paragraph::new(fit_help(&help_text, help.width))
            .style(Style::new().fg(Color::Black).bg(Color::Gray)),
        help,
    );
}

/// The most lines an error's status takes: a refusal or a failed sync says why, and
/// the reason is what the helper acts on (QA s30d P4: one line cut it mid-reason).
const ERROR_STATUS_LINES: usize = 3;

/// The status message as the lines it is shown on: one for news, up to
/// [`ERROR_STATUS_LINES`] wrapped for an error, the last cut as a single line is.
fn status_lines(s: &Status, width: u16) -> Vec<String> {
    let one = |text: &str| {
        if s.leads {
            sheet::fit(text, width)
        } else {
            fit_middle(text, width)
        }
    };
    if !s.error || Span::raw(s.text.as_str()).width() <= usize::from(width) {
        return vec![one(&s.text)];
    }
    let wrapped = wrap_words(&s.text, usize::from(width));
    if wrapped.len() <= ERROR_STATUS_LINES {
        return wrapped;
    }
    let mut lines = wrapped[..ERROR_STATUS_LINES - 1].to_vec();
    lines.push(one(&wrapped[ERROR_STATUS_LINES - 1..].concat()));
    lines
}

/// The columns `c` takes on a terminal: two for Chinese, one for ASCII.
pub fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    Span::raw(&*c.encode_utf8(&mut buf)).width()
}

/// How far back from a line's end a place to break is looked for before a line is cut
/// wherever it is full.
const WORD_BREAK_REACH: usize = 24;

/// Whether a line may break between `a` and `b`: between Chinese characters, after a
/// space or Chinese punctuation, before an opening bracket; never inside a run of
/// ASCII (a date `11-01`, a range `10-01~10-31`, an address, a command), between a
/// word and the number after it (`被拒 0`), before closing punctuation or after an
/// opening bracket (QA s32c W7: `11-0` / `1~11-30`, a lone `）`).
fn may_break(a: char, b: char) -> bool {
    const CLOSING: &str = "）」』】》。，、；：！？)]}.,;:!?%";
    const OPENING: &str = "（「『【《([{";
    if CLOSING.contains(b) || OPENING.contains(a) {
        return false;
    }
    if a == ' ' {
        return !b.is_ascii_digit();
    }
    let wordy = |c: char| !c.is_whitespace() && char_width(c) == 1;
    !(wordy(a) && wordy(b))
}

/// The lengths, in characters, of the lines `chars` takes in `width` columns (Chinese
/// counting two): each ends at the last place [`may_break`] allows within
/// [`WORD_BREAK_REACH`] columns of where it is full, else where it is full.
fn line_lengths(chars: &[char], width: usize) -> Vec<usize> {
    let width = width.max(1);
    let mut lengths = Vec::new();
    let (mut start, mut used) = (0, 0);
    let mut i = 0;
    while i < chars.len() {
        let w = char_width(chars[i]);
        if used + w <= width || i == start {
            used += w;
            i += 1;
            continue;
        }
        // Back from `i` for a place to break, leaving room on the next line.
        let mut cut = i;
        let mut carried = 0;
        for j in (start + 1..=i).rev() {
            if may_break(chars[j - 1], chars[j]) {
                cut = j;
                break;
            }
            carried += char_width(chars[j - 1]);
            if carried > width.min(WORD_BREAK_REACH).saturating_sub(w) {
                break;
            }
        }
        lengths.push(cut - start);
        start = cut;
        used = chars[start..i].iter().map(|&c| char_width(c)).sum();
    }
    if start < chars.len() {
        lengths.push(chars.len() - start);
    }
    lengths
}

/// `text` wrapped to `width` columns at the places [`may_break`] allows (QA s31c T10:
/// `…cannot reach h` / `ttp://…`); a line with none near its end is cut where full.
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut at = 0;
    line_lengths(&chars, width)
        .into_iter()
        .map(|n| {
            let line: String = chars[at..at + n].iter().collect();
            at += n;
            line.trim_end().to_string()
        })
        .collect()
}

/// Styled text wrapped as [`wrap_words`] wraps text, each piece keeping its style.
fn wrap_styled<'a>(spans: &[Span<'a>], width: usize) -> Vec<Line<'a>> {
    let chars: Vec<(char, Style)> = spans
        .iter()
        .flat_map(|s| s.content.chars().map(move |c| (c, s.style)))
        .collect();
    let plain: Vec<char> = chars.iter().map(|(c, _)| *c).collect();
    let mut lines = Vec::new();
    let mut at = 0;
    for n in line_lengths(&plain, width) {
        let mut line: Vec<Span<'a>> = Vec::new();
        let mut piece = String::new();
        let mut style = chars.get(at).map_or_else(Style::default, |(_, s)| *s);
        for &(c, st) in &chars[at..at + n] {
            if st != style && !piece.is_empty() {
                line.push(Span::styled(std::mem::take(&mut piece), style));
            }
            style = st;
            piece.push(c);
        }
        let piece = piece.trim_end().to_string();
        if !piece.is_empty() {
            line.push(Span::styled(piece, style));
        }
        lines.push(Line::from(line));
        at += n;
    }
    if lines.is_empty() {
        lines.push(Line::default());
    }
    lines
}

/// `text` in `width` columns: whole when it fits, else its start and its end with "…"
/// between. A status message ends with what it is about (the file not added, the
/// field refused), which a cut at the edge would lose.
fn fit_middle(text: &str, width: u16) -> String {
    let width = usize::from(width);
    let w = char_width;
    if Span::raw(text).width() <= width || width < 3 {
        return sheet::fit(text, u16::try_from(width).unwrap_or(u16::MAX));
    }
    // The end gets up to half the room, the start the rest, "…" one column.
    let mut tail = Vec::new();
    let mut used = 0;
    for c in text.chars().rev() {
        if used + w(c) > (width - 1) / 2 {
            break;
        }
        used += w(c);
        tail.push(c);
    }
    let mut head = String::new();
    let room = width - 1 - used;
    let mut taken = 0;
    for c in text.chars() {
        if taken + w(c) > room {
            break;
        }
        taken += w(c);
        head.push(c);
    }
    head.push('…');
    head.extend(tail.into_iter().rev());
    head
}

/// The help line cut to whole entries (`key words`, two spaces apart) that fit in
/// `width` columns: the texts list the most important keys first, so a narrow window
/// drops the least needed ones, never half of `q 退出`.
pub fn fit_help(text: &str, width: u16) -> String {
    let width = usize::from(width);
    let mut out = String::new();
    for entry in text.split("  ").filter(|e| !e.is_empty()) {
        let candidate = if out.is_empty() {
            entry.to_string()
        } else {
            format!("{out}  {entry}")
        };
        if Span::raw(candidate.as_str()).width() > width {
            break;
        }
        out = candidate;
    }
    out
}

/// The running sync as a one-line progress bar: step, records and bytes.
fn render_sync_gauge(app: &App, frame: &mut Frame, area: Rect) {
    let (ratio, label) = match &app.sync.progress {
        Some(p) => (p.ratio(), app.lang.sync_progress(p)),
        None => (0.0, app.lang.texts().sync_running.to_string()),
    };
    let retrying = app
        .sync
        .progress
        .as_ref()
        .is_some_and(|p| p.retry.is_some());
    let colour = if retrying {
        Color::Yellow
    } else {
        Color::Green
    };
    frame.render_widget(
        Gauge::default()
            .ratio(ratio.clamp(0.0, 1.0))
            .label(label)
            .use_unicode(true)
            .gauge_style(Style::new().fg(colour).bg(Color::DarkGray)),
        area,
    );
}

fn render_title(app: &App, frame: &mut Frame, area: Rect) {
    let t = app.lang.texts();
    let line = Line::from(vec![
        Span::styled(
            format!(" {} ", t.app_title),
            Style::new()
                .add_modifier(Modifier::BOLD)
                .fg(Color::Black)
                .bg(Color::Cyan),
        ),
        Span::raw(" "),
        if app.revoked {
            Span::styled(t.device_revoked, Style::new().fg(Color::Red))
        } else {
            Span::styled(t.offline_note, Style::new().fg(Color::DarkGray))
        },
    ]);
    let c = &app.sync_counts;
    // Waiting to go and refused, each counted once: a refused record is not sent again
    // by itself (QA s22d F8).
    let refused = c.rejected + c.conflict;
    let waiting = c.unsynced() - refused;
    let mut line = line;
    if waiting > 0 {
        line.push_span(Span::styled(
            format!(" · {} {waiting}", t.unsynced),
            Style::new().fg(Color::Yellow),
        ));
    }
    if refused > 0 {
        line.push_span(Span::styled(
            format!(" · {} {refused}", t.sync_rejected),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    }
    frame.render_widget(Paragraph::new(line), area);
}

/// The signature pad dialog and its drawing canvas, from the terminal size:
/// `(canvas, dialog)`. `update` maps mouse positions with the same rectangle.
pub fn pad_canvas(size: (u16, u16)) -> (Rect, Rect) {
    let area = Rect::new(0, 0, size.0, size.1);
    let dialog = centered(
        area,
        size.0.saturating_sub(4).min(76),
        size.1.saturating_sub(4).min(18),
    );
    let inner = Rect::new(
        dialog.x + 1,
        dialog.y + 1,
        dialog.width.saturating_sub(2),
        dialog.height.saturating_sub(2),
    );
    let canvas = Rect::new(
        inner.x,
        inner.y,
        inner.width,
        inner.height.saturating_sub(1),
    );
    (canvas, dialog)
}

/// A rectangle of at most `width × height` centred in `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// Text rows a one-field input dialog grows to before it scrolls.
const MAX_INPUT_ROWS: usize = 6;

/// A one-field text dialog (a sheet remark, a void's reason) `width` wide: the prompt
/// and the text typed so far wrap inside the box, which grows to [`MAX_INPUT_ROWS`]
/// rows and then shows the last ones, so the end being typed always stays in view.
pub fn input_dialog(
    frame: &mut Frame,
    area: Rect,
    width: u16,
    title: &str,
    prompt: Span<'_>,
    text: &str,
) {
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let typed = format!("{text}_");
    let rows = wrap_spans(&[prompt, Span::raw(typed.as_str())], inner);
    let shown = rows.len().clamp(1, MAX_INPUT_ROWS);
    let dialog = centered(area, width, shown as u16 + 2);
    clear_dialog(frame, dialog);
    let visible = usize::from(dialog.height.saturating_sub(2)).max(1);
    let lines: Vec<Line> = rows.into_iter().rev().take(visible).rev().collect();
    let p = Paragraph::new(lines).block(Block::bordered().title(format!(" {title} ")));
    frame.render_widget(p, dialog);
}

/// Cuts styled text into lines of at most `width` columns, by character (Chinese has
/// no spaces to break at), keeping each piece's style.
fn wrap_spans<'a>(spans: &[Span<'a>], width: usize) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    let mut current: Vec<Span<'a>> = Vec::new();
    let mut used = 0;
    for span in spans {
        let mut piece = String::new();
        for c in span.content.chars() {
            let w = char_width(c);
            if used + w > width && used > 0 {
                current.push(Span::styled(std::mem::take(&mut piece), span.style));
                lines.push(Line::from(std::mem::take(&mut current)));
                used = 0;
            }
            piece.push(c);
            used += w;
        }
        if !piece.is_empty() {
            current.push(Span::styled(piece, span.style));
        }
    }
    lines.push(Line::from(current));
    lines
}

/// Blanks the screen under a dialog, and the column left of it: a double-width
/// character (Chinese) starting there would otherwise cover the dialog's left border.
pub fn clear_dialog(frame: &mut Frame, dialog: Rect) {
    let left = dialog.x.min(1);
    let under = Rect::new(
        dialog.x - left,
        dialog.y,
        dialog.width + left,
        dialog.height,
    );
    frame.render_widget(ratatui::widgets::Clear, under.intersection(frame.area()));
}

/// Draws a half-block picture at the top-left of `area` (clipped to it).
pub struct Thumbnail<'a>(pub &'a HalfBlocks);

impl Widget for Thumbnail<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.0;
        for row in 0..t.height.min(area.height) {
            for col in 0..t.width.min(area.width) {
                let Some((top, bottom)) = t
                    .cells
                    .get(usize::from(row) * usize::from(t.width) + usize::from(col))
                else {
                    continue;
                };
                if let Some(cell) = buf.cell_mut(Position::new(area.x + col, area.y + row)) {
                    cell.set_symbol("▀")
                        .set_fg(Color::Rgb(top[0], top[1], top[2]))
                        .set_bg(Color::Rgb(bottom[0], bottom[1], bottom[2]));
                }
            }
        }
    }
}

/// The whole screen as text, one line per row (for tests and debugging).
pub fn buffer_text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut skip = 0usize;
        for x in area.left()..area.right() {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let sym = buf
                .cell(Position::new(x, y))
                .map(|c| c.symbol())
                .unwrap_or(" ");
            out.push_str(sym);
            skip = Span::raw(sym).width().saturating_sub(1);
        }
        out.push('\n');
    }
    out
}

/// The app rendered at `width × height`, as text (tests, debugging, screenshots in
/// bug reports).
pub fn screen_text(app: &App, width: u16, height: u16) -> String {
    let backend = ratatui::backend::TestBackend::new(width, height);
    match ratatui::Terminal::new(backend) {
        Ok(mut terminal) => match terminal.draw(|f| render(app, f)) {
            Ok(done) => buffer_text(done.buffer),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]
    use super::*;

    #[test]
    fn a_long_status_keeps_its_end_in_view() {
        let msg = "照片文件不完整或已损坏（可能仍在复制中），未添加：/storage/emulated/0/DCIM/Camera/IMG_2026.jpg";
        let cut = fit_middle(msg, 60);
        assert!(
            cut.ends_with("IMG_2026.jpg") && cut.starts_with("照片文件不完整"),
            "{cut}"
        );
        assert!(cut.contains('…') && Span::raw(&cut).width() <= 60, "{cut}");
        assert_eq!(fit_middle("已同步 3 条", 60), "已同步 3 条");
    }

    #[test]
    fn an_error_status_wraps_to_three_lines_and_news_keeps_one() {
        let reason = "同步失败：服务器拒绝了第 3 条记录，原因是签名与记录内容不符（记录在签名后被改动），请重新签字后再同步";
        let error = Status {
            text: reason.into(),
            error: true,
            leads: true,
        };
        let lines = status_lines(&error, 40);
        assert!(
            lines.len() > 1 && lines.len() <= ERROR_STATUS_LINES,
            "{lines:?}"
        );
        assert_eq!(lines.concat(), reason, "the whole reason is shown");
        assert!(lines.iter().all(|l| Span::raw(l.as_str()).width() <= 40));
        // An address is not cut in two when a space comes before it (QA s31c T10).
        let cut = Status {
            text: "同步失败：连不上服务器，请检查网络或服务器地址 cannot reach http://127.0.0.1:18330: error".into(),
            error: true,
            leads: true,
        };
        let lines = status_lines(&cut, 60);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("http://127.0.0.1:18330")),
            "{lines:?}"
        );
        assert!(lines.iter().all(|l| Span::raw(l.as_str()).width() <= 60));
        let long = Status {
            text: reason.repeat(3),
            ..error
        };
        let lines = status_lines(&long, 40);
        assert_eq!(lines.len(), ERROR_STATUS_LINES);
        assert!(lines[2].ends_with('…'), "{lines:?}");
        let news = Status {
            text: reason.into(),
            error: false,
            leads: true,
        };
        assert_eq!(status_lines(&news, 40).len(), 1);
    }

    /// QA s32c W7: dates, ranges and counts stay whole, and no line starts with
    /// closing punctuation.
    #[test]
    fn lines_break_between_words_not_inside_dates_counts_or_before_a_bracket() {
        let lines = wrap_words("入户不考核（期间结对变动）；11-01~11-30电话未到位", 30);
        assert!(lines.iter().all(|l| !l.ends_with("11-0")), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("11-01~11-30")), "{lines:?}");
        let lines = wrap_words("同步完成：已同步 0，待传照片 0，被拒 0，收到 43", 38);
        assert!(
            lines
                .iter()
                .all(|l| !l.starts_with('0') && !l.starts_with('，')),
            "{lines:?}"
        );
        let lines = wrap_words(
            "服务器不再接受本机的登录：请重新登录（本机数据不会丢失）",
            56,
        );
        assert!(lines.iter().all(|l| !l.starts_with('）')), "{lines:?}");
        assert_eq!(
            lines.concat(),
            "服务器不再接受本机的登录：请重新登录（本机数据不会丢失）"
        );
        let red = Style::new().fg(Color::Red);
        let styled = wrap_styled(
            &[
                Span::styled("记录：", red),
                Span::raw("10-01~10-31电话未到位"),
            ],
            12,
        );
        let texts: Vec<String> = styled.iter().map(|l| l.to_string()).collect();
        assert_eq!(texts, ["记录：", "10-01~10-31", "电话未到位"]);
        assert_eq!(styled[0].spans[0].style, red);
    }

    #[test]
    fn wrapping_counts_chinese_as_two_columns_and_keeps_styles() {
        let red = Style::new().fg(Color::Red);
        let lines = wrap_spans(&[Span::styled("原因：", red), Span::raw("一二三")], 4);
        let texts: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        assert_eq!(texts, ["原因", "：一", "二三"]);
        assert_eq!(lines[1].spans[0].style, red, "the prompt keeps its colour");
        assert_eq!(lines[1].spans[1].style, Style::new());
    }

    #[test]
    fn a_long_input_grows_the_dialog_then_keeps_its_end_in_view() {
        let backend = ratatui::backend::TestBackend::new(80, 24);
        let mut terminal = ratatui::Terminal::new(backend).unwrap();
        let text = format!("{}END", "x".repeat(600));
        terminal
            .draw(|f| input_dialog(f, f.area(), 60, "备注", Span::raw("备注："), &text))
            .unwrap();
        let buffer = terminal.backend().buffer();
        let rows: Vec<String> = (0..24)
            .map(|y| (0..80).map(|x| buffer[(x, y)].symbol()).collect())
            .collect();
        let boxed = rows.iter().filter(|r| r.contains('│')).count();
        assert_eq!(boxed, MAX_INPUT_ROWS, "{rows:#?}");
        assert!(rows.iter().any(|r| r.contains("END_")), "{rows:#?}");
        assert!(
            !rows.iter().any(|r| r.contains('：')),
            "the start scrolled away: {rows:#?}"
        );
    }
}
