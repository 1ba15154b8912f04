//! The attendance-sheet screen (考勤表, 附件3 columns) and its two dialogs: the remark
//! being typed and the confirmation before signing.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState, Wrap};

use super::centered;
use crate::app::App;
use crate::sheets::ReviewCheck;
use crate::store::SubmissionState;

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
    let state = view.state();
    let state_style = match &state {
        Some(SubmissionState::Rejected { .. }) => Style::new().fg(Color::Red),
        Some(SubmissionState::Submitted { .. }) => Style::new().fg(Color::Green),
        Some(SubmissionState::Pending) => Style::new().fg(Color::Yellow),
        None => Style::new().fg(Color::DarkGray),
    };
    // The server's check of the last submitted version, on a line of its own under the
    // title; a version frozen on rows that changed since the review asks, on the next
    // line, to sign again (S: the existing flow, which makes a new version).
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
    let [head, check_area, table_area, detail] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::try_from(check.len()).unwrap_or(0)),
        Constraint::Min(3),
        Constraint::Length(5),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(check), check_area);
    let quarters = format!("{}/{}", app.sheet_index.saturating_add(1), app.sheets.len());
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(
                format!(" {} {} ", t.title, view.quarter()),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("· {} ", view.sheet.second_helper.name)),
            Span::raw(format!("· ({quarters}) · ")),
            Span::styled(app.lang.sheet_state(state.as_ref()), state_style),
            Span::styled(
                if view.unsubmitted_changes() {
                    format!(" · {}", t.unsubmitted)
                } else {
                    String::new()
                },
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ),
        ])),
        head,
    );
    let header = Row::new([
        t.seq,
        t.head,
        t.village,
        t.first_helper,
        t.records,
        t.remark,
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = view.sheet.rows.iter().map(|r| {
        Row::new([
            r.seq.to_string(),
            r.head_name.clone(),
            r.village.clone(),
            r.first_helper
                .as_ref()
                .map(|h| h.name.clone())
                .unwrap_or_default(),
            r.record_text(),
            view.remark(r).to_string(),
        ])
    });
    let widths = [
        Constraint::Length(4),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(14),
        Constraint::Min(10),
        Constraint::Length(16),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::bordered())
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut ts = TableState::default().with_selected(Some(app.sheet_selected));
    frame.render_stateful_widget(table, table_area, &mut ts);
    if let Some(r) = view.sheet.rows.get(app.sheet_selected) {
        let text = vec![
            Line::from(format!("{}：{}", t.records, r.record_text())),
            Line::from(format!("{}：{}", t.remark, view.remark(r))),
        ];
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title(format!(" {} ", r.head_name))),
            detail,
        );
    }
    t.help.to_string()
}

pub fn render_remark(app: &App, text: &str, frame: &mut Frame, area: Rect) -> String {
    let t = app.lang.sheet();
    super::input_dialog(
        frame,
        area,
        area.width.saturating_sub(10).min(70),
        t.remark,
        Span::styled(t.remark_prompt, Style::new().fg(Color::Cyan)),
        text,
    );
    t.help_remark.to_string()
}

pub fn render_confirm(app: &App, frame: &mut Frame, area: Rect) -> String {
    let t = app.lang.sheet();
    let dialog = centered(area, area.width.saturating_sub(10).min(60), 6);
    super::clear_dialog(frame, dialog);
    let p = Paragraph::new(t.confirm)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(format!(" {} ", t.confirm_title)));
    frame.render_widget(p, dialog);
    t.help_confirm.to_string()
}
