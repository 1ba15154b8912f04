//! The list and detail screens: households, one household, visit history, drafts,
//! and the login form.

use bangfu_shared::VisitKind;
use bangfu_shared::visit::{HouseholdSignature, RecordType, format_yuan};
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};

use crate::app::{App, LoginForm, Screen};
use crate::client::{HouseholdOverview, today};
use crate::draft::format_local;
use crate::flags::Flag;
use crate::store::{SyncState, VisitRow};

fn date(t: Option<DateTime<Utc>>, never: &str) -> String {
    t.map(|t| today(t).format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| never.to_string())
}

/// How a sync state is coloured: refused red, not yet on the server yellow.
pub fn sync_style(s: SyncState) -> Style {
    match s {
        SyncState::Synced => Style::new().fg(Color::Green),
        SyncState::Rejected | SyncState::Conflict => overdue_style(),
        SyncState::Local | SyncState::Uploading | SyncState::AwaitingPhotos => {
            Style::new().fg(Color::Yellow)
        }
    }
}

fn selected_style() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

fn overdue_style() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

/// What the "next due" column says for a household: the kind and day of the next
/// contact due, or, not paired today, from when a pairing begins (`short` in a narrow
/// list: `12-29起结对`).
pub fn next_due_text(app: &App, h: &HouseholdOverview, short: bool) -> String {
    let t = app.lang.texts();
    if h.role.is_none() {
        return match h.pairing_from {
            Some(day) => app.lang.pairing_from(day, today(app.clock.now()), short),
            None => t.not_paired.to_string(),
        };
    }
    match h.next_due() {
        Some((kind, d)) if short => format!("{} {}", app.lang.kind_short(kind), d.format("%m-%d")),
        Some((kind, d)) => format!("{} {}", app.lang.kind(kind), d.format("%m-%d")),
        None if h.due.is_empty() && short => t.nothing_due_short.to_string(),
        None if h.due.is_empty() => t.nothing_due.to_string(),
        None if short => t.done_short.to_string(),
        None => t.done.to_string(),
    }
}

pub fn render_households(app: &App, frame: &mut Frame, area: Rect) -> String {
    let t = app.lang.texts();
    // Households whose pairing ended get their own section below: out of the list to
    // visit, yet the helper sees they are still on the device and where their records are.
    let area = if app.ended.is_empty() {
        area
    } else {
        let shown = app.ended.len().min(3) as u16;
        let [list, ended] =
            Layout::vertical([Constraint::Min(5), Constraint::Length(shown + 3)]).areas(area);
        render_ended(app, frame, ended);
        list
    };
    let block = Block::bordered().title(format!(" {} ({}) ", t.households, app.households.len()));
    if app.households.is_empty() {
        frame.render_widget(
            // Synced, with every pairing ended: not a device that never downloaded
            // (QA s22e F7).
            Paragraph::new(if app.ended.is_empty() {
                t.no_households
            } else {
                t.no_current_households
            })
            .wrap(Wrap { trim: true })
            .block(block),
            area,
        );
        return households_help(app);
    }
    let never = never_text(app);

    // The dates come whole (`2026-03-10` is 10 columns), and the next-due column as
    // wide as its longest text: a narrow window shortens the names instead, and the last
    // column (the marks) gets what is left.
    let wide = area.width >= 70;
    let name_width: u16 = if wide { 10 } else { 6 };
    let today = today(app.clock.now());
    let next_width_for = |short: bool| {
        app.households
            .iter()
            .map(|h| text_width(&next_due_text(app, h, short)))
            .chain([text_width(t.next_due), 8])
            .max()
            .unwrap_or(8)
    };
    // The due column shortens (`home 12-19`) before a row's first two marks (overdue,
    // a coming exit) would be left out for want of room.
    let essential = app
        .households
        .iter()
        .map(|h| essential_marks_width(app, h, today))
        .max()
        .unwrap_or(0);
    let room_beside = |next_width: u16| {
        area.width
            .saturating_sub(2 + 5)
            .saturating_sub(2 * name_width + 2 * DATE_WIDTH + next_width)
    };
    let short_due = !wide || room_beside(next_width_for(false)) < essential;
    let next_width = next_width_for(short_due);
    let fit = super::sheet::fit;
    let header = Row::new([
        fit(t.head, name_width),
        fit(t.village, name_width),
        fit(t.last_home, DATE_WIDTH),
        fit(t.last_phone, DATE_WIDTH),
        t.next_due.to_string(),
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    // Two borders and five gaps between six columns (the due text and the marks share
    // the last cell, a space between them: [`next_and_marks`]).
    let marks_room = room_beside(next_width);
    let rows = app.households.iter().map(|h| {
        let s = &h.detail.summary;
        let row = Row::new([
            // Cut with "…" rather than mid-word by the table.
            Cell::from(fit(&s.head_name, name_width)),
            Cell::from(fit(&s.village.name, name_width)),
            Cell::from(date(h.last_home, never)),
            Cell::from(date(h.last_phone, never)),
            Cell::from(next_and_marks(
                app,
                h,
                today,
                short_due,
                (next_width, marks_room),
            )),
        ]);
        if h.overdue() {
            row.style(Style::new().fg(Color::Red))
        } else {
            row
        }
    });
    let widths = [
        Constraint::Length(name_width),
        Constraint::Length(name_width),
        Constraint::Length(DATE_WIDTH),
        Constraint::Length(DATE_WIDTH),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(selected_style());
    let mut state = TableState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(table, area, &mut state);
    households_help(app)
}

/// A row's next contact due in `next_width` columns, then its marks in `room`: the
/// marks line up in a column of their own, unless the row's due text leaves room
/// unused that would show a mark the column leaves out (QA s32c W5: at 60 columns `✎`
/// was left out beside six blank columns).
fn next_and_marks<'a>(
    app: &App,
    h: &HouseholdOverview,
    today: chrono::NaiveDate,
    short: bool,
    (next_width, room): (u16, u16),
) -> Line<'a> {
    let next = next_due_text(app, h, short);
    let spare = next_width.saturating_sub(text_width(&next));
    let aligned = household_marks(app, h, today, room);
    let borrowed = household_marks(app, h, today, room + spare);
    let shown = |l: &Line| l.spans.iter().filter(|s| s.content != " ").count();
    let (gap, marks) = if shown(&borrowed) > shown(&aligned) {
        (1, borrowed)
    } else {
        (usize::from(spare) + 1, aligned)
    };
    let mut spans = vec![Span::raw(format!("{next}{}", " ".repeat(gap)))];
    spans.extend(marks.spans);
    Line::from(spans)
}

/// Columns of a date as the lists show it (`2026-03-10`).
const DATE_WIDTH: u16 = 10;

/// Columns `text` takes on the terminal (a Chinese character two).
fn text_width(text: &str) -> u16 {
    u16::try_from(Span::raw(text).width()).unwrap_or(u16::MAX)
}

/// The household's address with its town and village before it, each left out when the
/// ledger's address already names it (`东城镇东城二村` is not `东城镇 东城二村
/// 东城镇东城二村`, QA s22b F9).
fn full_address(town: &str, village: &str, address: &str) -> String {
    [town, village]
        .into_iter()
        .filter(|place| !place.is_empty() && !address.contains(place))
        .chain([address].into_iter().filter(|a| !a.is_empty()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A household row's marks in `room` columns, in this order: overdue with the window
/// missed (`!逾期 1–2月`), a coming exit (`将于12月20日退出`: it tells the helper to
/// visit before that day), the visits the town office returned for correction
/// (`✎待更正`), then the visits the server does not count (`⚠不计入`). When they do not
/// fit, marks take shorter forms (`!逾期`, `退12/20`, `✎更正`, `⚠不计`…) before any is
/// left out, the last first; what still does not fit is cut with "…". The detail says
/// each in full.
fn household_marks<'a>(
    app: &App,
    h: &HouseholdOverview,
    today: chrono::NaiveDate,
    room: u16,
) -> Line<'a> {
    let lang = app.lang;
    let forms: [Vec<String>; 4] = [
        if h.overdue() {
            lang.overdue_marks(h.first_missed(), today)
        } else {
            Vec::new()
        },
        h.coming_end(today)
            .map(|end| lang.ending_marks(end, today))
            .unwrap_or_default(),
        lang.to_correct_marks(h.to_correct),
        lang.not_counted_marks(h.not_counted),
    ];
    let styles = [
        overdue_style().add_modifier(Modifier::REVERSED),
        Style::new().fg(Color::Cyan),
        correction_style(),
        overdue_style(),
    ];
    let chosen = choose_marks(&forms, room);
    let mut spans = Vec::new();
    let mut left = room;
    for (text, style) in chosen
        .iter()
        .zip(styles)
        .filter_map(|(c, st)| Some((c.as_ref()?, st)))
    {
        if !spans.is_empty() {
            spans.push(Span::raw(" "));
            left = left.saturating_sub(1);
        }
        let text = super::sheet::fit(text, left);
        left = left.saturating_sub(text_width(&text));
        spans.push(Span::styled(text, style));
    }
    Line::from(spans)
}

/// Columns a row's overdue and coming-exit marks take in their shortest forms: what the
/// list keeps in view before the due column's full text.
fn essential_marks_width(app: &App, h: &HouseholdOverview, today: chrono::NaiveDate) -> u16 {
    let lang = app.lang;
    let overdue = h
        .overdue()
        .then(|| lang.overdue_marks(h.first_missed(), today))
        .and_then(|f| f.last().cloned());
    let exit = h
        .coming_end(today)
        .and_then(|end| lang.ending_marks(end, today).last().cloned());
    let marks: Vec<String> = overdue.into_iter().chain(exit).collect();
    marks
        .iter()
        .map(|m| text_width(m) + 1)
        .sum::<u16>()
        .saturating_sub(1)
}

/// Which form of each mark a row shows: an index into its forms, or past them (left out).
type Pick = [usize; 4];

/// How good a pick is, bigger better: the marks kept (the most important first), then
/// the least shortened (squared: two marks a step shorter read better than one cut to
/// its sign), then the fuller forms of the more important marks.
type Score = (Vec<bool>, usize, [usize; 4]);

/// The form of each mark to show in `room` columns (`None`: left out), given each
/// mark's forms from the fullest to the shortest, most important mark first: the best
/// scored pick that fits. The first mark is never left out: when even its shortest form
/// does not fit, it alone is shown and the caller cuts it.
fn choose_marks(forms: &[Vec<String>; 4], room: u16) -> [Option<String>; 4] {
    let levels = forms.clone().map(|f| f.len());
    let picks = (0..levels.iter().map(|n| n + 1).product::<usize>()).map(|code| {
        let mut pick = [0usize; 4];
        let mut rest = code;
        for (i, n) in levels.iter().enumerate() {
            pick[i] = rest % (n + 1);
            rest /= n + 1;
        }
        pick
    });
    let best = picks
        .filter_map(|pick| Some((pick, pick_score(forms, pick, room)?)))
        .max_by(|(_, a), (_, b)| a.cmp(b));
    match best {
        Some((pick, _)) => std::array::from_fn(|i| forms[i].get(pick[i]).cloned()),
        // Nothing fits: the first mark's shortest form alone (cut by the caller).
        None => std::array::from_fn(|i| forms[i].last().filter(|_| i == 0).cloned()),
    }
}

/// The score of `pick`, or `None` when it is wider than `room` or leaves out the first
/// mark.
fn pick_score(forms: &[Vec<String>; 4], pick: Pick, room: u16) -> Option<Score> {
    let shown = |i: usize| forms[i].get(pick[i]);
    if !forms[0].is_empty() && shown(0).is_none() {
        return None;
    }
    let width = (0..4)
        .filter_map(shown)
        .map(|m| 1 + text_width(m))
        .sum::<u16>()
        .saturating_sub(1);
    if width > room {
        return None;
    }
    let kept: Vec<bool> = (0..4).map(|i| shown(i).is_some()).collect();
    let shortened: usize = (0..4)
        .filter(|i| shown(*i).is_some())
        .map(|i| pick[i] * pick[i])
        .sum();
    Some((kept, usize::MAX - shortened, pick.map(|p| usize::MAX - p)))
}

/// How the visits to correct are marked: what the helper must act on, not an alarm.
fn correction_style() -> Style {
    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
}

/// The households help line: `a` (the attendance sheet) only for a second helper,
/// whose sheet it is.
fn households_help(app: &App) -> String {
    let t = app.lang.texts();
    if app.fills_sheet() {
        t.help_list.to_string()
    } else {
        t.help_list_no_sheet.to_string()
    }
}

/// What a last-visit column says with no visit on the device: "never", or, before the
/// first sync brought the account's history, that it is not known yet.
fn never_text(app: &App) -> &'static str {
    let t = app.lang.texts();
    if app.history_pulled {
        t.never
    } else {
        t.not_pulled_short
    }
}

/// The "已结束结对" section: each household with the helper's pairing period and when
/// the device learned it ended, then how to reach its visits and drafts.
fn render_ended(app: &App, frame: &mut Frame, area: Rect) {
    let t = app.lang.texts();
    let to = if app.lang == crate::i18n::Lang::Zh {
        " 至 "
    } else {
        " to "
    };
    let room = area.height.saturating_sub(3) as usize;
    let shown = if app.ended.len() > room {
        room.saturating_sub(1)
    } else {
        room
    };
    let mut lines: Vec<Line> = app
        .ended
        .iter()
        .take(shown)
        .map(|h| ended_line(h, app.lang, to, area.width.saturating_sub(2)))
        .collect();
    if app.ended.len() > shown {
        lines.push(Line::from("…"));
    }
    let inner = area.width.saturating_sub(2);
    let hint = [t.pairing_ended_hint, t.pairing_ended_hint_short]
        .into_iter()
        .find(|h| text_width(h) <= inner)
        .map_or_else(
            || super::sheet::fit(t.pairing_ended_hint_short, inner),
            str::to_string,
        );
    lines.push(Line::from(Span::styled(
        hint,
        Style::new().fg(Color::DarkGray),
    )));
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(format!(" {} ({}) ", t.pairing_ended, app.ended.len()))
                .border_style(Style::new().fg(Color::DarkGray)),
        ),
        area,
    );
}

/// One line of the "已结束结对" section in `width` columns: the household, its village
/// and the pairing periods, then when the pairing ended. The end comes whole: the
/// periods before it are cut with "…" when the line is too long (their last day is the
/// day before the end anyway).
fn ended_line<'a>(
    h: &crate::client::EndedHousehold,
    lang: crate::i18n::Lang,
    to: &str,
    width: u16,
) -> Line<'a> {
    let s = &h.detail.summary;
    let end = h.shown_end(lang);
    let head = if h.periods.is_empty() {
        format!("{}  {}", s.head_name, s.village.name)
    } else {
        format!(
            "{}  {}  {}",
            s.head_name,
            s.village.name,
            crate::error::format_periods(&h.periods, to, ", "),
        )
    };
    // A visit that does not count (signed after the end, say) is the helper's to fix.
    let marks = match h.not_counted {
        0 => String::new(),
        n => format!("  {}", lang.not_counted_mark(n)),
    };
    let tail = format!("  ·  {end}{marks}");
    let head = super::sheet::fit(&head, width.saturating_sub(text_width(&tail)));
    Line::from(super::sheet::fit(&format!("{head}{tail}"), width))
}

pub fn render_detail(app: &App, frame: &mut Frame, area: Rect, household_id: i64) -> String {
    let t = app.lang.texts();
    let Some(h) = app.household(household_id) else {
        // The pairing ended while the screen was open (a sync): say so, keep the history.
        let mut lines = vec![Line::from(Span::styled(
            app.head_name(household_id),
            Style::new().add_modifier(Modifier::BOLD),
        ))];
        if app.ended_household(household_id).is_some() {
            lines.push(Line::from(t.pairing_ended_hint));
        }
        lines.extend(
            app.history_for(household_id)
                .into_iter()
                .map(|v| Line::from(visit_summary(app, v))),
        );
        frame.render_widget(
            Paragraph::new(lines).block(Block::bordered().title(format!(" {} ", t.detail))),
            area,
        );
        return t.help_detail.to_string();
    };
    let s = &h.detail.summary;
    let label = |l: &str| Span::styled(format!("{l}{}", t.colon), Style::new().fg(Color::Cyan));
    let mut lines = vec![
        Line::from(vec![
            label(t.head),
            Span::styled(
                s.head_name.clone(),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("  {}", app.lang.paren(&status_label(app, h)))),
        ]),
        Line::from(vec![
            label(t.address),
            Span::raw(full_address(&s.town.name, &s.village.name, &s.address)),
        ]),
        Line::from(vec![label(t.phone), Span::raw(s.phone.clone())]),
        Line::from(vec![label(t.cause), Span::raw(s.cause.clone())]),
        Line::from(vec![label(t.measures), Span::raw(s.measures.clone())]),
    ];
    let helpers: Vec<String> = [&s.first_helper, &s.second_helper]
        .iter()
        .filter_map(|h| {
            h.as_ref()
                .map(|h| format!("{}（{}）", h.name, h.unit_position))
        })
        .collect();
    // Wrapped here, not by the paragraph: its word wrap let a line of full-width
    // characters with one space run over the right border at 60 columns.
    let mut helper_spans = vec![label(t.helpers)];
    for (i, h) in helpers.iter().enumerate() {
        let sep = if i + 1 < helpers.len() { "；" } else { "" };
        helper_spans.push(Span::raw(format!("{h}{sep}")));
    }
    lines.extend(wrap_spans(helper_spans, area.width.saturating_sub(2)));
    let members: Vec<String> = h
        .detail
        .members
        .iter()
        .map(|m| match m.birth_year {
            Some(y) => format!("{} {} {y}", m.name, m.relation),
            None => format!("{} {}", m.name, m.relation),
        })
        .collect();
    lines.push(Line::from(vec![
        label(t.members),
        Span::raw(members.join("，")),
    ]));
    let today = today(app.clock.now());
    let mut due: Vec<Span> = h.due.iter().map(|d| due_span(app, d)).collect();
    if h.due.is_empty() && h.role.is_some() {
        due.push(Span::raw(format!("{} ", t.nothing_due)));
    }
    if let Some(day) = h.pairing_from.filter(|_| h.role.is_none()) {
        due.push(Span::styled(
            format!("{} ", app.lang.pairing_from(day, today, false)),
            Style::new().fg(Color::Cyan),
        ));
    }
    // Then every window missed, oldest first: a later visit makes up for none.
    due.extend(h.missed.iter().map(|w| {
        Span::styled(
            format!("[{}] ", app.lang.missed_text(w, today)),
            overdue_style(),
        )
    }));
    let mut due_line = vec![label(t.next_due)];
    due_line.extend(due);
    lines.push(Line::from(due_line));
    if h.to_correct > 0 {
        lines.push(Line::from(Span::styled(
            app.lang.to_correct_text(h.to_correct),
            correction_style(),
        )));
    }
    if h.not_counted > 0 {
        lines.push(Line::from(Span::styled(
            app.lang.not_counted_text(h.not_counted),
            overdue_style(),
        )));
    }
    lines.push(Line::from(vec![
        label(t.last_home),
        Span::raw(date(h.last_home, never_text(app))),
        Span::raw("  "),
        label(t.last_phone),
        Span::raw(date(h.last_phone, never_text(app))),
    ]));
    lines.push(Line::from(Span::styled(
        format!("── {} ──", t.history),
        Style::new().fg(Color::Cyan),
    )));
    let visits: Vec<&VisitRow> = app.history_for(household_id);
    for v in visits.iter().take(area.height.saturating_sub(14) as usize) {
        lines.push(Line::from(visit_summary(app, v)));
    }
    frame.render_widget(
        Paragraph::new(Text::from(lines))
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(format!(" {} ", t.detail))),
        area,
    );
    t.help_detail.to_string()
}

/// `spans` as lines of at most `width` columns: a span goes whole onto the next line
/// when it does not fit on this one but fits on a line of its own, else it is broken
/// between characters (a Chinese character is never split across the border).
fn wrap_spans(spans: Vec<Span<'_>>, width: u16) -> Vec<Line<'_>> {
    let width = usize::from(width.max(2));
    let mut lines: Vec<Vec<Span>> = vec![Vec::new()];
    let mut used = 0;
    for span in spans {
        let w = span.width();
        if used > 0 && used + w > width && w <= width {
            lines.push(Vec::new());
            used = 0;
        }
        let mut piece = String::new();
        for c in span.content.chars() {
            let cw = text_width(c.encode_utf8(&mut [0u8; 4])) as usize;
            if used + cw > width {
                if let Some(line) = lines.last_mut() {
                    line.push(Span::styled(std::mem::take(&mut piece), span.style));
                }
                lines.push(Vec::new());
                used = 0;
            }
            piece.push(c);
            used += cw;
        }
        if let Some(line) = lines.last_mut() {
            line.push(Span::styled(piece, span.style));
        }
    }
    lines.into_iter().map(Line::from).collect()
}

/// One requirement's due date in the detail: green with a tick when this window has
/// its contact, red while the requirement has a window missed.
fn due_span<'a>(app: &App, d: &bangfu_shared::policy::DueStatus) -> Span<'a> {
    let text = format!(
        "{} ≤{} ",
        app.lang.kind(d.kind),
        d.due_by.format("%Y-%m-%d")
    );
    if d.done_this_window {
        Span::styled(format!("{text}✓ "), Style::new().fg(Color::Green))
    } else if d.overdue {
        Span::styled(text, overdue_style())
    } else {
        Span::raw(text)
    }
}

/// The household's status, and the day it leaves pairing when an exit is filed for a
/// day still to come (the status is not yet 已脱贫: the household is still visited).
fn status_label(app: &App, h: &HouseholdOverview) -> String {
    let today = today(app.clock.now());
    let status = h.status_on(today);
    match (app.lang, h.coming_exit(today)) {
        (crate::i18n::Lang::Zh, None) => status.label_zh().to_string(),
        (crate::i18n::Lang::Zh, Some(day)) => {
            format!(
                "{}，{}起退出帮扶",
                status.label_zh(),
                day.format("%Y年%-m月%-d日")
            )
        }
        (crate::i18n::Lang::En, None) => status.code().replace('_', " "),
        (crate::i18n::Lang::En, Some(day)) => {
            format!(
                "{}, leaves pairing on {day}",
                status.code().replace('_', " ")
            )
        }
    }
}

fn visit_summary(app: &App, v: &VisitRow) -> String {
    let t = app.lang.texts();
    let r = &v.current.signed.record;
    match &r.visit {
        Some(body) => {
            let mut s = format!(
                // Words, not a camera emoji: terminals disagree on an emoji's width, and
                // one counted narrow pushes the line over the block's right border.
                "{}  {}  {}",
                format_local(body.at),
                app.lang.kind(body.kind),
                app.lang.photo_count(body.photos.len())
            );
            if v.voided {
                s.push_str(&format!("  [{}]", t.voided));
            } else if v.amendments > 0 {
                s.push_str(&format!("  [{}]", t.amended));
            }
            s.push_str(&format!("  · {}", app.lang.visit_state(v.sync, &v.flags)));
            if v.sync.is_refused() {
                let why = app
                    .lang
                    .refusal(v.sync_reason_code.as_deref(), v.sync_reason.as_deref());
                if !why.is_empty() {
                    s.push_str(&format!("{}{why}", t.colon));
                }
            }
            s
        }
        None => String::new(),
    }
}

impl App {
    /// A household's head, for lists: current or ended households alike, else the
    /// bare id.
    pub fn head_name(&self, household_id: i64) -> String {
        if let Some(h) = self.household(household_id) {
            return h.detail.summary.head_name.clone();
        }
        match self.ended_household(household_id) {
            Some(h) => h.detail.summary.head_name.clone(),
            None => household_id.to_string(),
        }
    }

    /// The loaded visit history rows of one household (the detail screen shows them
    /// when the history was loaded for it).
    pub fn history_for(&self, household_id: i64) -> Vec<&VisitRow> {
        self.history
            .iter()
            .filter(|v| v.household_id == household_id)
            .collect()
    }
}

/// The width from which the history's columns come whole.
const WIDE_HISTORY: u16 = 78;

/// The width from which the state column holds a synced visit's state and its mark
/// ("已同步⚠不计入", 13 columns); narrower, the mark stands alone.
const WHOLE_STATE: u16 = 80;

pub fn render_history(
    app: &App,
    frame: &mut Frame,
    area: Rect,
    household_id: Option<i64>,
) -> String {
    let t = app.lang.texts();
    let mut title = match household_id {
        Some(id) => format!(" {} · {} ", t.visit_history, app.head_name(id)),
        None => format!(" {} ", t.visit_history),
    };
    if app.history.len() as u64 >= crate::app::HISTORY_LIMIT {
        let limit = crate::app::HISTORY_LIMIT.to_string();
        title += &format!("· {} ", t.history_newest_only.replace("{}", &limit));
    }
    let [list_area, detail_area] = history_areas(app, area);
    // The time (`2026-03-10 09:30`, 16 columns) always comes whole; in a narrow
    // window the head, kind, signature and state columns shrink, cut with "…" (the
    // selected visit's lines below say each in full).
    let wide = area.width >= WIDE_HISTORY;
    // English words run longer than Chinese (`amended×1`): their columns take a little
    // of the sync column's room, which keeps `local only` whole (QA s30d P4).
    let w: [u16; 6] = match (wide, app.lang) {
        (true, crate::i18n::Lang::En) => [16, 8, 10, 6, 10, 9],
        (true, crate::i18n::Lang::Zh) => [16, 8, 10, 6, 10, 8],
        (false, _) => [16, 6, 5, 4, 6, 6],
    };
    let cut = |i: usize, text: &str| super::sheet::fit(text, w[i]);
    // The sync state has what the borders, the other columns and the six gaps leave.
    let sync_width = area.width.saturating_sub(2 + w.iter().sum::<u16>() + 6);
    let header = Row::new([
        cut(0, t.time),
        cut(1, t.head),
        cut(2, t.kind),
        cut(3, t.photos),
        cut(4, t.signature_column),
        String::new(),
        String::new(),
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = app.history.iter().map(|v| {
        let r = &v.current.signed.record;
        let head = app.head_name(v.household_id);
        let kind_of = |k| match wide {
            true => app.lang.kind(k),
            false => app.lang.kind_short(k),
        };
        let (at, kind, photos, sig) = match &r.visit {
            Some(b) => (
                format_local(b.at),
                kind_of(b.kind).to_string(),
                b.photos.len().to_string(),
                signature_text(app, b.kind, b.household_signature.as_ref()),
            ),
            None => Default::default(),
        };
        // What asks the helper to act comes first: a town office's note not answered
        // yet, an image that can never be sent (the lines below say each in full).
        let pending_review = !v.voided && v.review.as_ref().is_some_and(|r| !r.amended_since);
        let marks = app
            .lang
            .history_marks(pending_review, !v.damaged_images.is_empty());
        let state = if !marks.is_empty() {
            marks
        } else if v.voided {
            t.voided.to_string()
        } else if v.amendments > 0 {
            format!("{}×{}", t.amended, v.amendments)
        } else {
            String::new()
        };
        // A synced visit a flag keeps out of the count is not done: it shows red.
        let sync_style = if v.flags.iter().any(Flag::stops_counting) {
            overdue_style()
        } else {
            sync_style(v.sync)
        };
        let sync = Cell::from(Span::styled(
            super::sheet::fit(
                &app.lang
                    .visit_state_short(v.sync, &v.flags, area.width < WHOLE_STATE),
                sync_width,
            ),
            sync_style,
        ));
        let row = Row::new([
            Cell::from(at),
            Cell::from(cut(1, &head)),
            Cell::from(cut(2, &kind)),
            Cell::from(cut(3, &photos)),
            Cell::from(cut(4, &sig)),
            Cell::from(cut(5, &state)),
            sync,
        ]);
        if v.sync.is_refused() || !v.damaged_images.is_empty() {
            row.style(Style::new().fg(Color::Red))
        } else if v.voided {
            row.style(
                Style::new()
                    .fg(Color::DarkGray)
                    .add_modifier(Modifier::CROSSED_OUT),
            )
        } else {
            row
        }
    });
    let widths = [
        Constraint::Length(w[0]),
        Constraint::Length(w[1]),
        Constraint::Length(w[2]),
        Constraint::Length(w[3]),
        Constraint::Length(w[4]),
        Constraint::Length(w[5]),
        Constraint::Min(if wide { 12 } else { 8 }),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::bordered().title(title))
        .row_highlight_style(selected_style());
    let mut state = TableState::default().with_selected(Some(app.history_selected));
    frame.render_stateful_widget(table, list_area, &mut state);

    let lines = history_detail_lines(app);
    let inner = Block::bordered().inner(detail_area);
    let wrapped = wrap_lines(lines, inner.width);
    let shown = usize::from(inner.height);
    let max = wrapped.len().saturating_sub(shown);
    let top = usize::from(app.history_scroll).min(max);
    let mut block = Block::bordered();
    if max > 0 {
        let last = (top + shown).min(wrapped.len());
        block = block.title(format!(
            " ↕ {}–{last}/{} {} ",
            top + 1,
            wrapped.len(),
            app.lang.sheet().summary_scroll_hint.trim()
        ));
    }
    let visible: Vec<Line> = wrapped.into_iter().skip(top).take(shown).collect();
    frame.render_widget(Paragraph::new(visible).block(block), detail_area);
    t.help_history.to_string()
}

/// The history screen's list and the selected visit's pane. The list takes what its
/// rows need, the pane the rest (at least 8 rows): a visit returned for correction has
/// more to say than six lines (QA s30d P1), and what does not fit scrolls with Tab.
fn history_areas(app: &App, area: Rect) -> [Rect; 2] {
    let list_needed = u16::try_from(app.history.len())
        .unwrap_or(u16::MAX)
        .saturating_add(3);
    let detail_height = area
        .height
        .saturating_sub(list_needed.min(area.height.saturating_sub(8)))
        .max(8);
    Layout::vertical([Constraint::Min(5), Constraint::Length(detail_height)]).areas(area)
}

/// How far the selected visit's pane scrolls on a terminal of `size`: its wrapped
/// lines and the lines shown at once. `update` steps and clamps with it.
pub(crate) fn history_extent(app: &App, size: (u16, u16)) -> (usize, usize) {
    // The body between the title bar and the status and help lines (`super::render`).
    let body = Rect::new(0, 1, size.0, size.1.saturating_sub(3));
    let [_, detail] = history_areas(app, body);
    let inner = Block::bordered().inner(detail);
    let lines = wrap_lines(history_detail_lines(app), inner.width).len();
    (lines, usize::from(inner.height))
}

/// `lines` broken into rows of at most `width` columns, character by character (as the
/// Chinese text reads), each row keeping its line's style: rows a pane can count and
/// scroll through.
fn wrap_lines(lines: Vec<Line<'_>>, width: u16) -> Vec<Line<'static>> {
    let width = usize::from(width.max(1));
    let mut out = Vec::new();
    for line in lines {
        let style = line.spans.first().map_or(line.style, |s| s.style);
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        let mut row = String::new();
        let mut used = 0;
        for c in text.chars() {
            let w = Span::raw(c.to_string()).width();
            if used + w > width && !row.is_empty() {
                out.push(Line::from(Span::styled(std::mem::take(&mut row), style)));
                used = 0;
            }
            row.push(c);
            used += w;
        }
        out.push(Line::from(Span::styled(row, style)));
    }
    out
}

/// The selected visit's lines in the history screen's lower pane, before wrapping.
fn history_detail_lines(app: &App) -> Vec<Line<'static>> {
    let t = app.lang.texts();
    let mut lines = Vec::new();
    let c = t.colon;
    if let Some(v) = app.history.get(app.history_selected) {
        let r = &v.current.signed.record;
        if let Some(b) = &r.visit {
            let join = |x: &[String]| x.join("；");
            let policies: Vec<&str> = b.policies.iter().map(|p| app.lang.policy(*p)).collect();
            lines.push(Line::from(format!(
                "{}{c}{}  {}{c}{}",
                t.policies,
                policies.join("、"),
                t.problems,
                join(&b.problems)
            )));
            lines.push(Line::from(format!(
                "{}{c}{}  {}{c}{}",
                t.help_actions,
                join(&b.help),
                t.support_actions,
                join(&b.support)
            )));
            let deliveries: Vec<String> = b
                .deliveries
                .iter()
                .map(|d| {
                    format!(
                        "{} {}{}{}",
                        d.item,
                        format_yuan(d.value_fen),
                        t.yuan,
                        d.occasion
                            .map(|o| format!("（{}）", app.lang.occasion(o)))
                            .unwrap_or_default()
                    )
                })
                .collect();
            lines.push(Line::from(format!(
                "{}{c}{}",
                t.deliveries,
                deliveries.join("；")
            )));
            let changes: Vec<String> = b
                .family_changes
                .iter()
                .map(|c| format!("{} {}", app.lang.family(c.kind), c.name))
                .collect();
            lines.push(Line::from(format!(
                "{}{c}{}",
                t.family_changes,
                changes.join("；")
            )));
            lines.push(Line::from(format!(
                "{}{c}{}",
                t.notes,
                b.notes.clone().unwrap_or_default()
            )));
        }
        if r.record_type == RecordType::Amendment {
            lines.push(Line::from(format!(
                "{}{c}{}",
                t.reason,
                r.reason.clone().unwrap_or_default()
            )));
        }
        if let Some(reason) = &v.void_reason {
            lines.push(Line::from(Span::styled(
                format!("{}{c}{reason}", t.voided),
                overdue_style(),
            )));
        }
        // The server's flags come first: what they ask the helper to do matters most.
        for (i, f) in v.flags.iter().enumerate() {
            let style = if f.stops_counting() {
                overdue_style()
            } else {
                Style::new().fg(Color::Yellow)
            };
            // No space after the mark: a wrap would leave it alone on its line.
            lines.insert(
                i,
                Line::from(Span::styled(format!("⚠{}", app.lang.flag_text(f)), style)),
            );
        }
        // Then whether the pairing has ended: it explains a visit that does not count.
        if let Some(h) = app.ended_household(v.household_id) {
            let end = h.shown_end(app.lang);
            lines.insert(
                v.flags.len(),
                Line::from(Span::styled(
                    format!(
                        "{}{c}{}（{end}）",
                        h.detail.summary.head_name, t.pairing_ended,
                    ),
                    Style::new().fg(Color::DarkGray),
                )),
            );
        }
        if !v.damaged_images.is_empty() {
            lines.insert(
                0,
                Line::from(Span::styled(
                    app.lang.damaged_images(v.damaged_images.len()),
                    overdue_style(),
                )),
            );
        }
        if let Some(review) = &v.review {
            let style = if review.amended_since || v.voided {
                Style::new().fg(Color::Yellow)
            } else {
                overdue_style()
            };
            lines.insert(
                0,
                Line::from(Span::styled(
                    app.lang.review_text_for(review, v.voided),
                    style,
                )),
            );
        }
        // The town office's decisions on the family changes it proposed (QA s29b J4).
        for d in v.family_decisions.iter().rev() {
            let style = if d.status == "rejected" {
                overdue_style()
            } else {
                Style::new().fg(Color::Yellow)
            };
            lines.insert(0, Line::from(Span::styled(d.text_zh(), style)));
        }
        if v.sync.is_refused() {
            lines.insert(
                0,
                Line::from(Span::styled(
                    format!(
                        "{}{c}{}",
                        app.lang.sync_state(v.sync),
                        app.lang
                            .refusal(v.sync_reason_code.as_deref(), v.sync_reason.as_deref())
                    ),
                    overdue_style(),
                )),
            );
        }
        lines.push(Line::from(Span::styled(
            format!("#{} · {}", r.seq, v.visit_id),
            Style::new().fg(Color::DarkGray),
        )));
    }
    lines
}

fn signature_text(app: &App, kind: VisitKind, sig: Option<&HouseholdSignature>) -> String {
    let t = app.lang.texts();
    match (kind, sig) {
        (VisitKind::Phone, _) => "—".into(),
        (_, Some(HouseholdSignature::Drawn { .. })) => t.sig_pad.into(),
        (_, Some(HouseholdSignature::PaperCard { .. })) => t.sig_card.into(),
        (_, Some(HouseholdSignature::Witness { name, .. })) => name.clone(),
        (_, None) => t.not_signed.into(),
    }
}

/// Width of the drafts list's kind column: `call (amendment)`, `入户（更正）` whole.
const KIND: u16 = 16;

pub fn render_drafts(app: &App, frame: &mut Frame, area: Rect) -> String {
    let t = app.lang.texts();
    let block = Block::bordered().title(format!(" {} ({}) ", t.drafts, app.drafts.len()));
    if app.drafts.is_empty() {
        frame.render_widget(Paragraph::new(t.no_drafts).block(block), area);
        return t.help_drafts.to_string();
    }
    // What the last column has: the area less the borders, the other columns and the
    // three gaps between the four.
    let missing_width = area.width.saturating_sub(2 + 10 + KIND + 17 + 3).max(10);
    let rows = app.drafts.iter().map(|d| {
        let head = app.head_name(d.household_id);
        // A draft of a household whose pairing ended signs only if dated within it.
        let missing = d
            .blocker(app.ended_household(d.household_id), app.clock.now())
            .map(|e| app.lang.error(&e))
            .unwrap_or_else(|| "✓".into());
        let kind = if d.amends.is_some() {
            format!(
                "{}{}",
                app.lang.kind_short(d.kind),
                app.lang.aside(t.amending)
            )
        } else {
            app.lang.kind(d.kind).to_string()
        };
        // Cut with "…" rather than mid-word by the table.
        let missing = super::sheet::fit(&missing, missing_width);
        Row::new([head, kind, d.at.clone(), missing])
    });
    let widths = [
        Constraint::Length(10),
        Constraint::Length(KIND),
        Constraint::Length(17),
        Constraint::Min(10),
    ];
    let table = Table::new(rows, widths)
        .block(block)
        .row_highlight_style(selected_style());
    let mut state = TableState::default().with_selected(Some(app.drafts_selected));
    frame.render_stateful_widget(table, area, &mut state);
    t.help_drafts.to_string()
}

pub fn render_login(app: &App, frame: &mut Frame, area: Rect) -> String {
    let t = app.lang.texts();
    let Screen::Login(form) = &app.screen else {
        return String::new();
    };
    let LoginForm {
        server,
        username,
        password,
        code,
        focus,
    } = form;
    let masked = "•".repeat(password.chars().count());
    let fields = [
        (t.server, server.as_str()),
        (t.username, username.as_str()),
        (t.password, masked.as_str()),
        (t.enroll_code, code.as_str()),
    ];
    let mut lines = vec![
        Line::from(""),
        Line::from(Span::styled(
            t.login_title,
            Style::new().add_modifier(Modifier::BOLD),
        )),
        Line::from(""),
    ];
    for (i, (label, value)) in fields.iter().enumerate() {
        let style = if i == *focus {
            selected_style()
        } else {
            Style::new()
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!("{label:>28}{}", t.colon),
                Style::new().fg(Color::Cyan),
            ),
            Span::styled(format!("{value}_"), style),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).block(Block::bordered()), area);
    t.help_login.to_string()
}

#[cfg(test)]
mod tests {
    use crate::app::testing::*;

    #[test]
    fn an_address_names_its_town_and_village_once() {
        use super::full_address;
        assert_eq!(
            full_address("东城镇", "东城二村", "东城镇东城二村"),
            "东城镇东城二村"
        );
        assert_eq!(
            full_address("东城镇", "东城二村", "东城二村3号"),
            "东城镇 东城二村3号"
        );
        assert_eq!(full_address("东城镇", "东村", "5号"), "东城镇 东村 5号");
        assert_eq!(full_address("东城镇", "东村", ""), "东城镇 东村");
    }
    use crate::app::{Action, App};
    use crate::i18n::Lang;

    /// The households list again after a visit was signed (as Esc from a screen does).
    fn with_a_call() -> Fixture {
        let mut fx = fixture(Lang::Zh);
        phone_call(&fx.app);
        fx.app.update(Action::Char('d'));
        fx.app.update(Action::Back);
        fx
    }

    fn help_line(text: &str) -> &str {
        text.lines().last().unwrap_or_default()
    }

    /// At the documented minimum, 60×16, dates and times come whole and the help line
    /// keeps the keys that matter most.
    #[test]
    fn at_60x16_dates_times_and_the_main_keys_are_whole() {
        let mut fx = with_a_call();
        let app: &mut App = &mut fx.app;
        app.update(Action::Resize {
            width: 60,
            height: 16,
        });
        let text = screen(app, 60, 16);
        let row = text
            .lines()
            .find(|l| l.contains("张三"))
            .unwrap_or_default();
        assert!(row.contains("2026-03-15"), "{text}");
        let help = help_line(&text);
        for key in ["n 新走访", "s 同步", "q 退出"] {
            assert!(help.contains(key), "{key}: {help}");
        }

        app.update(Action::Char('h'));
        let text = screen(app, 60, 16);
        let row = text
            .lines()
            .find(|l| l.contains("张三"))
            .unwrap_or_default();
        assert!(row.contains("2026-03-15 10:00"), "{text}");
        assert!(help_line(&text).contains("q 退出"), "{text}");
    }

    /// The household's visits are told in words: an emoji's width differs between
    /// terminals, and one counted narrow pushed the line over the right border.
    #[test]
    fn the_detail_screen_has_no_emoji_and_stays_inside_its_block() {
        let mut fx = with_a_call();
        let app = &mut fx.app;
        app.update(Action::Enter);
        for (w, h) in [(80, 24), (60, 16)] {
            app.update(Action::Resize {
                width: w,
                height: h,
            });
            let text = screen(app, w, h);
            assert!(!text.contains('📷'), "{text}");
            // Every row of the block ends on its right border.
            for line in text.lines().skip(2).take(usize::from(h) - 5) {
                assert!(line.trim_end().ends_with('│'), "{line:?}\n{text}");
            }
        }
        app.update(Action::Resize {
            width: 80,
            height: 24,
        });
        assert!(screen(app, 80, 24).contains("电话  照片 0"));
    }

    /// A household whose exit is filed for a day still to come is still visited: its
    /// detail keeps its status and says from when it leaves pairing.
    #[test]
    fn the_detail_says_when_a_household_leaves_pairing() {
        for (lang, want) in [
            (Lang::Zh, "新识别，2026年12月20日起退出帮扶"),
            (Lang::En, "identified, leaves pairing on 2026-12-20"),
        ] {
            let mut fx = fixture(lang);
            let app = &mut fx.app;
            app.households[0].detail.summary.exit_on =
                chrono::NaiveDate::from_ymd_opt(2026, 12, 20);
            app.update(Action::Enter);
            let text = screen(app, 80, 24);
            assert!(text.contains(want), "{text}");
            // From its day the server says 已脱贫, and the day is no longer news.
            app.households[0].detail.summary.status = bangfu_shared::HouseholdStatus::Exited;
            let text = screen(app, 80, 24);
            assert!(
                !text.contains("2026-12-20") && !text.contains("12月20日"),
                "{text}"
            );
        }
        // The day has come on the device before a pull brought the server's 已脱贫: the
        // device reads it from the exit's day (the ledger did not change, so no pull
        // sends the household again).
        let mut fx = fixture(Lang::Zh);
        let app = &mut fx.app;
        app.households[0].detail.summary.exit_on = chrono::NaiveDate::from_ymd_opt(2026, 3, 15);
        app.update(Action::Enter);
        let text = screen(app, 80, 24);
        assert!(text.contains("（已脱贫）"), "{text}");
        assert!(!text.contains("退出帮扶"), "{text}");
    }

    #[test]
    fn the_help_line_drops_whole_entries_from_the_end() {
        let help = "n 新走访  s 同步  q 退出  h 走访记录";
        assert_eq!(super::super::fit_help(help, 22), "n 新走访  s 同步");
        assert_eq!(super::super::fit_help(help, 200), help);
        assert_eq!(super::super::fit_help(help, 3), "");
    }
}

#[cfg(test)]
mod mark_tests {
    use crate::app::testing::*;
    use crate::app::{Action, App};
    use crate::client::{EndedHousehold, MissedWindow};
    use crate::i18n::Lang;
    use bangfu_shared::VisitKind;
    use chrono::NaiveDate;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    /// 张三 overdue for Jan–Feb, leaving on 03-28, one visit to correct and one not
    /// counted; 李四 in a village with a long name; an ended household below.
    fn crowded(lang: Lang) -> Fixture {
        let mut fx = fixture(lang);
        let app: &mut App = &mut fx.app;
        let h = &mut app.households[0];
        h.missed = vec![MissedWindow {
            kind: VisitKind::Home,
            from: d(2026, 1, 1),
            to: d(2026, 2, 28),
            months: 2,
        }];
        h.detail.summary.exit_on = Some(d(2026, 3, 28));
        h.to_correct = 1;
        app.households[1].detail.summary.village.name = "东城二村东组".into();
        let mut ended = household(3, "朱海燕", "东城李村");
        ended.pairings[0].valid_to = Some(d(2026, 3, 10));
        app.ended = vec![EndedHousehold::new(ended, HELPER_ID, d(2026, 3, 12))];
        fx
    }

    fn row<'a>(text: &'a str, name: &str) -> &'a str {
        text.lines().find(|l| l.contains(name)).unwrap_or_default()
    }

    /// M2: the coming exit shows at 80 and 60 columns in both languages, beside the
    /// overdue mark and the visit to correct, in shorter forms rather than left out; a
    /// village cut for room ends in "…".
    #[test]
    fn the_coming_exit_is_kept_in_shorter_forms_and_cut_text_ends_in_an_ellipsis() {
        let cases = [
            (Lang::Zh, 80, 24, ["!逾期", "3月28日退出", "✎更正"]),
            (Lang::Zh, 60, 16, ["!", "退3/28", "✎"]),
            (Lang::En, 80, 24, ["!", "leaves 03-28", "✎"]),
            (Lang::En, 60, 16, ["!", "out 3/28", ""]),
        ];
        for (lang, w, h, marks) in cases {
            let mut fx = crowded(lang);
            fx.app.update(Action::Resize {
                width: w,
                height: h,
            });
            let text = screen(&fx.app, w, h);
            let zhang = row(&text, "张三");
            for mark in marks {
                assert!(zhang.contains(mark), "{mark}: {zhang}\n{text}");
            }
            assert!(zhang.trim_end().ends_with('│'), "{text}");
            assert!(row(&text, "李四").contains("东城"), "{text}");
            assert!(row(&text, "李四").contains("…"), "{text}");
        }
    }

    /// QA s32c W5: a row whose due text is shorter than the column's widest shows in
    /// that room a mark the aligned column had no room for.
    #[test]
    fn a_row_with_room_beside_its_due_text_shows_more_marks() {
        let mut fx = crowded(Lang::Zh);
        // Another row with a long due text widens the column.
        fx.app.households[1].role = None;
        fx.app.households[1].pairing_from = Some(d(2027, 12, 29));
        fx.app.update(Action::Resize {
            width: 60,
            height: 16,
        });
        let text = screen(&fx.app, 60, 16);
        let zhang = row(&text, "张三");
        for mark in ["!", "退3/28", "✎"] {
            assert!(zhang.contains(mark), "{mark}: {zhang}\n{text}");
        }
        assert!(zhang.trim_end().ends_with('│'), "{text}");
        assert!(row(&text, "李四").contains("2027-12-29起结对"), "{text}");
    }

    /// M2: the ended pairing's line keeps its end date at 60 columns; the periods
    /// before it give way, cut with "…".
    #[test]
    fn the_ended_line_keeps_its_date_at_60_columns() {
        for (lang, want) in [
            (Lang::Zh, "2026-03-10起不再结对"),
            (Lang::En, "unpaired from 2026-03-10"),
        ] {
            let mut fx = crowded(lang);
            fx.app.update(Action::Resize {
                width: 60,
                height: 16,
            });
            let text = screen(&fx.app, 60, 16);
            let line = row(&text, "朱海燕");
            assert!(line.contains(want) && line.contains('…'), "{text}");
        }
    }

    /// L5: the helpers' line wraps inside the detail's block at 60 columns.
    #[test]
    fn the_helpers_line_stays_inside_the_detail_at_60_columns() {
        let mut fx = crowded(Lang::Zh);
        let app = &mut fx.app;
        let s = &mut app.households[0].detail.summary;
        let Some(mut first) = s.first_helper.clone() else {
            panic!("the fixture has a first helper");
        };
        first.name = "苏长青".into();
        first.unit_position = "市教育局 副科长".into();
        let mut second = first.clone();
        second.name = "方国庆".into();
        second.unit_position = "村委会主任".into();
        s.first_helper = Some(first);
        s.second_helper = Some(second);
        app.update(Action::Enter);
        app.update(Action::Resize {
            width: 60,
            height: 16,
        });
        let text = screen(app, 60, 16);
        assert!(text.contains("方国庆（村委会主任）"), "{text}");
        for line in text.lines().skip(2).take(10) {
            assert!(line.trim_end().ends_with('│'), "{line:?}\n{text}");
        }
    }

    /// M4: a household whose pairing with the helper begins later says from when, in
    /// the list and the detail, instead of 未结对.
    #[test]
    fn a_pairing_that_begins_later_says_from_when() {
        for (lang, want) in [
            (Lang::Zh, "3月29日起结对"),
            (Lang::En, "paired from 2026-03-29"),
        ] {
            let mut fx = fixture(lang);
            let app = &mut fx.app;
            let h = &mut app.households[1];
            h.role = None;
            h.due.clear();
            h.missed.clear();
            h.pairing_from = Some(d(2026, 3, 29));
            let text = screen(app, 80, 24);
            assert!(row(&text, "李四").contains(want), "{text}");
            assert!(
                !text.contains("未结对") && !text.contains("not paired"),
                "{text}"
            );
            app.update(Action::Down);
            app.update(Action::Enter);
            let text = screen(app, 80, 24);
            assert!(text.contains(want), "{text}");
        }
    }
}
