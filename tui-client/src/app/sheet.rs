//! The attendance-sheet screen (考勤表): a second helper reviews the pulled sheet
//! offline, writes a remark per row (saved at once as a draft), and signs the sheet
//! with the device key; the next sync submits it.

use bangfu_shared::report::Quarter;

use super::{Action, App, Overlay, Screen};

impl App {
    /// Reloads the pulled sheets, keeping the quarter and row shown where possible.
    pub(super) fn reload_sheets(&mut self) {
        let shown = self.current_sheet().map(|s| s.quarter());
        match self.block(self.client.sheets()) {
            Ok(sheets) => {
                self.sheets = sheets;
                self.sheet_index = shown
                    .and_then(|q| self.sheets.iter().position(|s| s.quarter() == q))
                    .unwrap_or(0);
                let rows = self.current_sheet().map_or(0, |s| s.sheet.rows.len());
                self.sheet_selected = self.sheet_selected.min(rows.saturating_sub(1));
            }
            Err(e) => self.fail_err(&e),
        }
    }

    pub(super) fn update_sheet(&mut self, action: Action) {
        self.screen = Screen::Sheet;
        if self.sheet_summary_focus && self.scroll_summary(&action) {
            return;
        }
        let rows = self.current_sheet().map_or(0, |s| s.sheet.rows.len());
        let before = self.sheet_selected;
        if Self::move_sel(&mut self.sheet_selected, rows, &action) {
            if self.sheet_selected != before {
                self.sheet_scroll = 0;
            }
            return;
        }
        let quarter = self.current_sheet().map(|s| s.quarter());
        let row = self
            .current_sheet()
            .and_then(|s| s.sheet.rows.get(self.sheet_selected).map(|r| (s, r)))
            .map(|(s, r)| (r.household_id, s.remark(r).to_string()));
        match (action, quarter, row) {
            (Action::Back, _, _) => {
                self.sheet_summary_focus = false;
                self.sheet_scroll = 0;
                self.pop();
            }
            // Tab: the arrow keys scroll the selected row's summary, or the rows again.
            (Action::Next | Action::Prev, _, Some(_)) => {
                self.sheet_summary_focus = !self.sheet_summary_focus;
            }
            (Action::Char('q'), _, _) => self.quit = true,
            (Action::Char('s'), _, _) => self.start_sync(),
            // As on a calendar: the earlier quarter to the left, the later to the right
            // (the sheets are kept newest first).
            (Action::Left | Action::Char('['), _, _)
                if self.sheet_index + 1 < self.sheets.len() =>
            {
                self.sheet_index += 1;
                self.sheet_selected = 0;
                self.sheet_scroll = 0;
            }
            (Action::Right | Action::Char(']'), _, _) if self.sheet_index > 0 => {
                self.sheet_index -= 1;
                self.sheet_selected = 0;
                self.sheet_scroll = 0;
            }
            (Action::Enter | Action::Char('e'), Some(quarter), Some((household_id, text))) => {
                // The text typed before the process was killed, if it was this row's.
                let typed = self.block(self.client.store().remarks_typing());
                let text = typed
                    .ok()
                    .and_then(|all| {
                        all.into_iter()
                            .find(|(q, h, _)| (*q, *h) == (quarter, household_id))
                    })
                    .map_or(text, |(_, _, typed)| typed);
                self.overlay = Some(Overlay::Remark {
                    quarter,
                    household_id,
                    text,
                });
            }
            (Action::Char('S') | Action::Sign, Some(quarter), _) => {
                self.overlay = Some(Overlay::ConfirmSubmit { quarter });
            }
            // The keys the help line offers, with no sheet yet: said why nothing happens
            // (QA s30d P4).
            (Action::Enter | Action::Char('e' | 'S') | Action::Sign, None, _) => {
                self.fail(self.lang.sheet().no_sheet);
            }
            _ => {}
        }
    }

    /// Scrolls the selected row's summary as the list screens move: a line (↑/↓), a
    /// page (PgUp/PgDn), to either end (Home/End), within what the terminal shows of it.
    /// Whether `action` was a scrolling key.
    fn scroll_summary(&mut self, action: &Action) -> bool {
        let (lines, page) = crate::ui::summary_extent(self, self.size);
        let max = lines.saturating_sub(page);
        let top = usize::from(self.sheet_scroll).min(max);
        let page = page.max(1);
        let top = match action {
            Action::Up | Action::Char('k') => top.saturating_sub(1),
            Action::Down | Action::Char('j') => (top + 1).min(max),
            Action::PageUp => top.saturating_sub(page),
            Action::PageDown => (top + page).min(max),
            Action::Home => 0,
            Action::End => max,
            _ => return false,
        };
        self.sheet_scroll = u16::try_from(top).unwrap_or(u16::MAX);
        true
    }

    pub(super) fn update_remark(
        &mut self,
        quarter: Quarter,
        household_id: i64,
        mut text: String,
        action: Action,
    ) {
        let store = self.client.store().clone();
        match action {
            Action::Back => {
                // Cancelled on purpose: the typed text goes with it.
                let _ = self.block(store.set_remark_typing((quarter, household_id), None));
                return;
            }
            Action::Char(c) => text.push(c),
            Action::Paste(s) => text.push_str(&s.replace(['\n', '\r'], " ")),
            Action::Backspace => {
                text.pop();
            }
            Action::Enter => {
                match self.block(self.client.set_sheet_remark(quarter, household_id, &text)) {
                    Ok(()) => {
                        let _ = self.block(store.set_remark_typing((quarter, household_id), None));
                        self.reload_sheets();
                        self.info(self.lang.sheet().saved);
                        return;
                    }
                    Err(e) => self.fail_err(&e),
                }
            }
            _ => {}
        }
        // Kept at every key, as the visit form's draft is (QA s30d P3).
        if let Err(e) = self.block(store.set_remark_typing((quarter, household_id), Some(&text))) {
            self.fail_err(&e);
        }
        self.overlay = Some(Overlay::Remark {
            quarter,
            household_id,
            text,
        });
    }

    pub(super) fn update_confirm_submit(&mut self, quarter: Quarter, action: Action) {
        // Only `y`, as the dialog says: Enter is pressed too readily to sign with.
        if !matches!(action, Action::Char('y' | 'Y')) {
            return;
        }
        match self.block(self.client.submit_sheet(quarter)) {
            Ok(_) => {
                self.reload_sheets();
                self.info(format!("{quarter} {}", self.lang.sheet().queued));
            }
            Err(e) => self.fail_err(&e),
        }
    }
}
