//! Dialogs over a screen: the file chooser, the signature pad, the void reason and the
//! question before an old draft is continued.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};

use super::{centered, pad_canvas};
use crate::app::App;
use crate::app::chooser::{Chooser, Entry};
use crate::draft::VisitDraft;
use crate::signature_pad::SignaturePad;

pub fn render_chooser(app: &App, c: &Chooser, frame: &mut Frame, area: Rect) -> String {
    let t = app.lang.texts();
    let dialog = centered(
        area,
        area.width.saturating_sub(6).min(72),
        area.height.min(20),
    );
    super::clear_dialog(frame, dialog);
    let block = Block::bordered()
        .title(format!(" {} · {} ", t.chooser_title, c.dir.display()))
        .style(Style::new().bg(Color::Black));
    let inner = block.inner(dialog);
    frame.render_widget(block, dialog);
    let [list_area, query_area] = if c.query.is_empty() {
        [inner, Rect::default()]
    } else {
        Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner)
    };
    let visible = c.visible();
    let items: Vec<ListItem> = match &c.error {
        Some(e) => vec![ListItem::new(Span::styled(
            e.clone(),
            Style::new().fg(Color::Red),
        ))],
        // A typed path does not filter: an empty listing is the folder's, not the text's.
        None if c.entries.is_empty() => vec![ListItem::new(Span::styled(
            t.chooser_empty,
            Style::new().fg(Color::DarkGray),
        ))],
        None if visible.is_empty() && !c.query_is_path() => vec![ListItem::new(Span::styled(
            t.chooser_no_match,
            Style::new().fg(Color::DarkGray),
        ))],
        None => visible.iter().map(|e| chooser_item(e)).collect(),
    };
    let list = List::new(items).highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = ListState::default().with_selected(Some(c.selected));
    frame.render_stateful_widget(list, list_area, &mut state);
    if !c.query.is_empty() {
        let label = if c.query_is_path() {
            t.chooser_go
        } else {
            t.chooser_filter
        };
        // A long path keeps its end (the file's name), where typing goes on; a refused
        // one shows selected, as the next character replaces it.
        let room = query_area
            .width
            .saturating_sub(Span::raw(label).width() as u16 + 1);
        let query_style = if c.refused {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new()
        };
        let line = Line::from(vec![
            Span::styled(label, Style::new().fg(Color::Yellow)),
            Span::styled(keep_end(&c.query, room), query_style),
            Span::styled("▏", Style::new().fg(Color::Yellow)),
        ]);
        frame.render_widget(Paragraph::new(line), query_area);
    }
    t.help_chooser.to_string()
}

/// `text` cut to its last `width` columns, "…" first when cut.
fn keep_end(text: &str, width: u16) -> String {
    let width = usize::from(width);
    if Span::raw(text).width() <= width {
        return text.to_string();
    }
    let mut tail: Vec<char> = Vec::new();
    let mut used = 1;
    for c in text.chars().rev() {
        let w = super::char_width(c);
        if used + w > width {
            break;
        }
        tail.push(c);
        used += w;
    }
    std::iter::once('…').chain(tail.into_iter().rev()).collect()
}

fn chooser_item(e: &Entry) -> ListItem<'static> {
    if e.is_dir {
        ListItem::new(Span::styled(
            format!("▸ {}/", e.name),
            Style::new().fg(Color::Cyan),
        ))
    } else {
        ListItem::new(format!("  {}  ({})", e.name, file_size(e.bytes)))
    }
}

/// A file's size as a helper reads it: KB below 1 MB (a 49 KB photo is not "0.0 MB"),
/// else MB with one decimal.
pub fn file_size(bytes: u64) -> String {
    if bytes < 1_048_576 {
        format!("{} KB", bytes.div_ceil(1024))
    } else {
        format!("{:.1} MB", bytes as f64 / 1_048_576.0)
    }
}

pub fn render_pad(app: &App, pad: &SignaturePad, frame: &mut Frame, area: Rect) -> String {
    let t = app.lang.texts();
    let (canvas, dialog) = pad_canvas((area.width, area.height));
    super::clear_dialog(frame, dialog);
    // Who is signing: the household, or the witness standing in for it.
    let witness = matches!(&app.screen, crate::app::Screen::Form(f)
        if f.draft.signature_method == crate::draft::SignatureMethod::Witness);
    let pad_title = if witness {
        t.pad_title_witness
    } else {
        t.pad_title
    };
    let block = Block::bordered()
        .title(format!(" {} ", pad_title))
        .style(Style::new().bg(Color::White).fg(Color::Black));
    frame.render_widget(block, dialog);
    let buf = frame.buffer_mut();
    for p in pad.cells() {
        let (x, y) = (canvas.x.saturating_add(p.x), canvas.y.saturating_add(p.y));
        if x < canvas.right()
            && y < canvas.bottom()
            && let Some(cell) = buf.cell_mut((x, y))
        {
            cell.set_symbol("█")
                .set_fg(Color::Black)
                .set_bg(Color::White);
        }
    }
    let base = Rect::new(
        canvas.x,
        canvas.bottom(),
        canvas.width,
        1.min(dialog.bottom().saturating_sub(canvas.bottom())),
    );
    let line = Line::from(vec![
        Span::styled(
            "─".repeat(usize::from(canvas.width.min(6))),
            Style::new().fg(Color::DarkGray),
        ),
        Span::raw(format!(" ✎ {}", pad.point_count())),
    ]);
    frame.render_widget(
        Paragraph::new(line).style(Style::new().bg(Color::White).fg(Color::Black)),
        base,
    );
    t.help_pad.to_string()
}

pub fn render_void(app: &App, reason: &str, frame: &mut Frame, area: Rect) -> String {
    let t = app.lang.texts();
    super::input_dialog(
        frame,
        area,
        area.width.saturating_sub(10).min(60),
        t.void_title,
        Span::styled(t.void_prompt, Style::new().fg(Color::Red)),
        reason,
    );
    t.help_void.to_string()
}

/// "Discard this draft?": which draft (household, time, whether it holds the
/// household's signature) and that it cannot be undone, before the helper presses `y`.
pub fn render_discard(app: &App, draft: &VisitDraft, frame: &mut Frame, area: Rect) -> String {
    let t = app.lang.texts();
    let dialog = centered(area, area.width.saturating_sub(10).min(60), 7);
    super::clear_dialog(frame, dialog);
    let signed = if draft.signature_image.is_some()
        || draft.pad.as_ref().is_some_and(|p| !p.strokes.is_empty())
    {
        format!("  {}{}{}", t.household_signature, t.colon, t.signed)
    } else {
        String::new()
    };
    let lines = vec![
        Line::from(Span::styled(
            t.discard_question,
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        )),
        Line::from(format!(
            "{}  {}  {}{signed}",
            app.head_name(draft.household_id),
            app.lang.kind(draft.kind),
            draft.at
        )),
        Line::from(t.discard_warning),
        Line::from(t.discard_choices),
    ];
    let p = Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(format!(" {} ", t.drafts)));
    frame.render_widget(p, dialog);
    t.discard_choices.to_string()
}

/// "Continue the draft of MM-DD?": the old visit time in plain view before the helper
/// chooses.
pub fn render_resume(app: &App, draft: &VisitDraft, frame: &mut Frame, area: Rect) -> String {
    let t = app.lang.texts();
    let day = draft
        .visit_day()
        .map(|d| d.format("%m-%d").to_string())
        .unwrap_or_else(|| draft.at.clone());
    let dialog = centered(area, area.width.saturating_sub(10).min(60), 5);
    super::clear_dialog(frame, dialog);
    let lines = vec![
        Line::from(Span::styled(
            t.resume_question.replace("{}", &day),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        )),
        Line::from(format!("{}{}{}", t.time, t.colon, draft.at)),
        Line::from(t.resume_choices),
    ];
    let p = Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(format!(" {} ", t.drafts)));
    frame.render_widget(p, dialog);
    t.resume_choices.to_string()
}

#[cfg(test)]
mod tests {
    use super::file_size;

    #[test]
    fn small_files_read_in_kb() {
        assert_eq!(file_size(49 * 1024), "49 KB");
        assert_eq!(file_size(1), "1 KB");
        assert_eq!(file_size(3 * 1_048_576 / 2), "1.5 MB");
    }
}
