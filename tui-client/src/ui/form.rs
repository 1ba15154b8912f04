//! The visit form: one row per field, the focused one highlighted with a cursor; a side
//! panel previews the highlighted photo or the household's signature.

use bangfu_shared::VisitKind;
use bangfu_shared::visit::PolicyArea;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::{THUMB_SIZE, Thumbnail};
use crate::app::App;
use crate::app::form::{Field, FormState};
use crate::draft::SignatureMethod;

const LABEL_WIDTH: u16 = 13;
/// The widest the label column grows for longer labels (English `Household signature`).
const MOST_LABEL_WIDTH: u16 = 19;

/// The label column: as wide as the form's longest label, from [`LABEL_WIDTH`] up to
/// [`MOST_LABEL_WIDTH`], so English labels do not push their values out of line (QA
/// s30d P2).
fn label_width(app: &App, fields: &[Field]) -> u16 {
    let widest = fields
        .iter()
        .map(|f| Span::raw(label(app, *f)).width())
        .max()
        .unwrap_or(0);
    u16::try_from(widest)
        .unwrap_or(u16::MAX)
        .clamp(LABEL_WIDTH, MOST_LABEL_WIDTH)
}

/// The policy checkboxes, with the short names when the whole names do not fit
/// `width`: every box stays in sight, or `4`/`5` would tick boxes the helper cannot see.
fn policy_boxes(app: &App, form: &FormState, focused: bool, width: usize) -> Vec<Span<'static>> {
    let boxes = |short: bool| -> Vec<Span<'static>> {
        PolicyArea::ALL
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let on = form.draft.policies.contains(p);
                let mut style = if on {
                    Style::new().fg(Color::Green)
                } else {
                    Style::new()
                };
                if focused && i == form.policy_cursor {
                    style = style.add_modifier(Modifier::REVERSED);
                }
                // Short: `✓edu ·med …`, a mark and a name each, so all five fit.
                let text = match (short, on) {
                    (false, on) => {
                        format!("[{}]{}", if on { "x" } else { " " }, app.lang.policy(*p))
                    }
                    (true, true) => format!("✓{} ", app.lang.policy_short(*p)),
                    (true, false) => format!("·{} ", app.lang.policy_short(*p)),
                };
                Span::styled(text, style)
            })
            .collect()
    };
    let whole = boxes(false);
    if whole.iter().map(Span::width).sum::<usize>() <= width {
        whole
    } else {
        boxes(true)
    }
}

fn label(app: &App, f: Field) -> &'static str {
    let t = app.lang.texts();
    match f {
        Field::Kind => t.kind,
        Field::Time => t.time,
        Field::Policies => t.policies,
        Field::Problems => t.problems,
        Field::Help => t.help_actions,
        Field::Support => t.support_actions,
        Field::Deliveries => t.deliveries,
        Field::Family => t.family_changes,
        Field::Notes => t.notes,
        Field::Reason => t.reason,
        Field::Photos => t.photos,
        Field::Signature => t.household_signature,
        Field::WitnessName => t.witness_name,
        Field::WitnessRole => t.witness_role,
        Field::WitnessReason => t.witness_reason,
    }
}

fn hint(app: &App, f: Field) -> &'static str {
    let t = app.lang.texts();
    match f {
        Field::Problems | Field::Help | Field::Support => t.hint_list,
        Field::Deliveries => t.hint_delivery,
        Field::Family => t.hint_family,
        Field::Time => t.hint_time,
        _ => "",
    }
}

/// Cuts `text` to fit `width` columns, keeping the character at `cursor` visible.
/// Returns the visible text and the cursor's column in it.
///
/// Walks out from the cursor once, a character at a time: measuring every candidate
/// slice afresh cost time with the square of the text's length, a third of a second a
/// key at 4,000 characters (QA s22b F4).
fn window(text: &str, cursor: usize, width: usize) -> (String, usize) {
    let chars: Vec<char> = text.chars().collect();
    let w = super::char_width;
    let cursor = cursor.min(chars.len());
    // Back from the cursor while the text before it and the cursor's cell fit.
    let (mut start, mut before) = (cursor, 0);
    while start > 0 && before + w(chars[start - 1]) < width {
        start -= 1;
        before += w(chars[start]);
    }
    // Then on from the cursor while the whole fits.
    let (mut end, mut used) = (cursor, before);
    while end < chars.len() && used + w(chars[end]) <= width {
        used += w(chars[end]);
        end += 1;
    }
    (chars[start..end].iter().collect(), before)
}

pub fn render_form(app: &App, form: &FormState, frame: &mut Frame, area: Rect) -> String {
    let t = app.lang.texts();
    let title = if form.draft.amends.is_some() {
        t.amend_visit
    } else {
        t.new_visit
    };
    // An ended household's draft names it too (QA s23a F14).
    let head = app.head_name(form.draft.household_id);
    let block = Block::bordered().title(format!(" {title} · {head} "));
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let side = inner.width >= 72;
    let [fields_area, side_area] = if side {
        Layout::horizontal([Constraint::Min(40), Constraint::Length(THUMB_SIZE.0 + 2)]).areas(inner)
    } else {
        [inner, Rect::new(inner.x, inner.y, 0, 0)]
    };

    let fields = form.fields();
    let label_w = label_width(app, &fields);
    let value_width = fields_area.width.saturating_sub(label_w + 1) as usize;
    let mut lines = Vec::new();
    let mut cursor_pos = None;
    for (i, f) in fields.iter().enumerate() {
        let focused = *f == form.focus;
        let label_style = if focused {
            Style::new().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::new().fg(Color::Cyan)
        };
        let label_text = super::sheet::fit(label(app, *f), label_w);
        let pad = usize::from(label_w).saturating_sub(Span::raw(&label_text).width());
        let mut spans = vec![
            Span::styled(format!("{}{label_text}", " ".repeat(pad)), label_style),
            Span::raw(" "),
        ];
        match f {
            Field::Kind => {
                for k in [VisitKind::Home, VisitKind::Phone] {
                    let on = form.draft.kind == k;
                    let style = if on {
                        Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
                    } else {
                        Style::new()
                    };
                    spans.push(Span::styled(
                        format!("{}{}", if on { "●" } else { "○" }, app.lang.kind(k)),
                        style,
                    ));
                    spans.push(Span::raw(" "));
                }
            }
            Field::Policies => spans.extend(policy_boxes(app, form, focused, value_width)),
            Field::Photos => {
                let n = form.draft.photos.len();
                let text = if n == 0 {
                    "—".to_string()
                } else {
                    format!("{n} ◀ {}/{n} ▶", form.photo_cursor + 1)
                };
                spans.push(Span::raw(text));
            }
            Field::Signature => {
                let method = match form.draft.signature_method {
                    SignatureMethod::Pad => t.sig_pad,
                    SignatureMethod::PaperCard => t.sig_card,
                    SignatureMethod::Witness => t.sig_witness,
                };
                spans.push(Span::styled(
                    format!("‹{method}› "),
                    Style::new().add_modifier(Modifier::BOLD),
                ));
                let (text, style) = match form.draft.household_signature() {
                    Some(_) => (format!("✓ {}", t.signed), Style::new().fg(Color::Green)),
                    // The original's mark belongs to the witness who made it.
                    None if form.draft.mark_relabelled() => (
                        format!("✗ {} · {}", t.not_signed, t.signer_changed_short),
                        Style::new().fg(Color::Red),
                    ),
                    // An amendment's old signature lapsed: say why it is gone.
                    None if !form.draft.resign_needed().is_empty() => (
                        format!("✗ {} · {}", t.not_signed, t.resign_short),
                        Style::new().fg(Color::Red),
                    ),
                    None => (format!("✗ {}", t.not_signed), Style::new().fg(Color::Red)),
                };
                spans.push(Span::styled(text, style));
            }
            text_field => {
                let text = form.text(*text_field).unwrap_or_default();
                if focused {
                    let (visible, col) = window(text, form.cursor, value_width.max(1));
                    cursor_pos = Some(Position::new(
                        fields_area.x + label_w + 1 + col as u16,
                        fields_area.y + i as u16,
                    ));
                    spans.push(Span::styled(
                        visible,
                        Style::new().add_modifier(Modifier::UNDERLINED),
                    ));
                } else {
                    let (visible, _) = window(text, 0, value_width.max(1));
                    spans.push(Span::raw(visible));
                }
            }
        }
        lines.push(Line::from(spans));
    }
    // Pinned under the fields, always visible: the focused field's format hint, the
    // county's photo rule, and whether the visit can be signed (✓/✗ and why).
    let hint_text = hint(app, form.focus);
    let mut pinned = Vec::new();
    // The town office's note this correction answers, read-only, first: it says what
    // to correct.
    if let Some(note) = &form.review_note {
        pinned.push(Line::from(Span::styled(
            format!("✎ {}{note}", t.review_note_label),
            Style::new().fg(Color::Yellow),
        )));
    }
    pinned.push(Line::from(Span::styled(
        format!("{:>w$} {hint_text}", "", w = usize::from(label_w)),
        Style::new().fg(Color::DarkGray),
    )));
    let min_photos = app
        .policy
        .as_ref()
        .map(|p| p.evidence.min_photos)
        .unwrap_or(0) as usize;
    if form.draft.kind == VisitKind::Home && form.draft.photos.len() < min_photos {
        pinned.push(Line::from(Span::styled(
            format!("! {} {min_photos}", t.photos_required),
            Style::new().fg(Color::Yellow),
        )));
    }
    // An ended household's draft dated outside the pairing: signing will be refused, so
    // the form says why rather than ✓ (QA s23a F14).
    let blocker = form.draft.blocker(
        app.ended_household(form.draft.household_id),
        app.clock.now(),
    );
    let ready = match blocker {
        Some(e) => Line::from(Span::styled(
            format!("✗{}", app.lang.error(&e)),
            Style::new().fg(Color::Red),
        )),
        None => Line::from(Span::styled("✓ Ctrl+S", Style::new().fg(Color::Green))),
    };
    pinned.push(ready);
    // A long line (the reason it cannot be signed) wraps onto more rows.
    let width = usize::from(fields_area.width.max(1));
    let pinned_rows: usize = pinned
        .iter()
        .map(|l| l.width().div_ceil(width).max(1))
        .sum();
    let pinned_rows = (pinned_rows as u16).min(fields_area.height);

    // The fields scroll so that the focused one stays in view.
    let list_rows = fields_area.height - pinned_rows;
    let focus_index = fields.iter().position(|f| *f == form.focus).unwrap_or(0);
    let offset = (focus_index + 1).saturating_sub(usize::from(list_rows));
    let shown: Vec<Line> = lines
        .into_iter()
        .skip(offset)
        .take(usize::from(list_rows))
        .collect();
    let shown_rows = shown.len() as u16;
    frame.render_widget(
        Paragraph::new(shown),
        Rect::new(fields_area.x, fields_area.y, fields_area.width, list_rows),
    );
    frame.render_widget(
        Paragraph::new(pinned).wrap(Wrap { trim: false }),
        Rect::new(
            fields_area.x,
            fields_area.y + shown_rows,
            fields_area.width,
            pinned_rows,
        ),
    );
    if let Some(p) = cursor_pos
        && let Some(row) = (p.y - fields_area.y).checked_sub(offset as u16)
        && row < list_rows
        && p.x < fields_area.right()
    {
        frame.set_cursor_position(Position::new(p.x, fields_area.y + row));
    }

    if side && side_area.width > 2 {
        render_side(app, form, frame, side_area);
    }

    match form.focus {
        Field::Kind => t.help_form_kind,
        Field::Policies => t.help_form_choice,
        Field::Photos => t.help_form_photos,
        Field::Signature => t.help_form_signature,
        _ => t.help_form_text,
    }
    .to_string()
}

fn render_side(app: &App, form: &FormState, frame: &mut Frame, area: Rect) {
    let t = app.lang.texts();
    let (title, hash) = match form.focus {
        Field::Signature | Field::WitnessName | Field::WitnessRole | Field::WitnessReason => {
            // A mark relabelled to another witness is nobody's mark here: not shown.
            let mark = form.draft.signature_image.clone();
            let shown = mark.filter(|_| !form.draft.mark_relabelled());
            (t.household_signature, shown)
        }
        _ => (
            t.photos,
            form.draft
                .photos
                .get(form.photo_cursor)
                .map(|p| p.sha256.clone()),
        ),
    };
    let block = Block::bordered().title(format!(" {title} "));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    match hash {
        Some(h) => {
            if let Some(thumb) = app.thumbs.get(&h) {
                frame.render_widget(Thumbnail(thumb), inner);
            }
            let below = Rect::new(
                inner.x,
                inner.y + THUMB_SIZE.1.min(inner.height),
                inner.width,
                inner.height.saturating_sub(THUMB_SIZE.1),
            );
            let photo = form.draft.photos.iter().find(|p| p.sha256 == h);
            let info = match photo {
                Some(p) => format!(
                    "{}×{} {}KB\n{}…",
                    p.width,
                    p.height,
                    p.bytes / 1024,
                    &h[..12.min(h.len())]
                ),
                None => format!("{}…", &h[..12.min(h.len())]),
            };
            frame.render_widget(
                Paragraph::new(info).style(Style::new().fg(Color::DarkGray)),
                below,
            );
        }
        None => {
            // The photos panel without a photo says so, not 未签 (that is the signature's).
            let text = if title == t.photos {
                t.no_photo
            } else if form.draft.kind == VisitKind::Home
                && form.draft.household_signature().is_none()
            {
                t.not_signed
            } else {
                "—"
            };
            frame.render_widget(
                Paragraph::new(text).style(Style::new().fg(Color::DarkGray)),
                inner,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::window;

    #[test]
    fn window_keeps_the_cursor_visible() {
        assert_eq!(window("abcdef", 6, 4), ("def".to_string(), 3));
        assert_eq!(window("abcdef", 0, 4), ("abcd".to_string(), 0));
        let (v, col) = window("帮扶送帮扶送", 6, 5);
        assert!(Span::raw(v.as_str()).width() <= 5 && col <= 4, "{v} {col}");
        assert_eq!(window("abcdef", 3, 4), ("abcd".to_string(), 3));
        assert_eq!(window("帮扶送帮", 2, 5), ("帮扶".to_string(), 4));
        assert_eq!(window("", 0, 4), (String::new(), 0));
        assert_eq!(window("abc", 1, 0), (String::new(), 0), "no room");
        // A long text is as quick as a short one: every slice it could show, measured
        // once each (ten thousand characters, every cursor position).
        let long = "长文本测试".repeat(2000);
        for cursor in (0..=10_000).step_by(997) {
            let (v, col) = window(&long, cursor, 60);
            assert!(Span::raw(v.as_str()).width() <= 60 && col < 60, "{cursor}");
        }
    }
    use ratatui::text::Span;
}
