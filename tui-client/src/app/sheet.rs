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
        let rows = self.current_sheet().map_or(0, |s| s.sheet.rows.len());
        if Self::move_sel(&mut self.sheet_selected, rows, &action) {
            return;
        }
        let quarter = self.current_sheet().map(|s| s.quarter());
        let row = self
            .current_sheet()
            .and_then(|s| s.sheet.rows.get(self.sheet_selected).map(|r| (s, r)))
            .map(|(s, r)| (r.household_id, s.remark(r).to_string()));
        match (action, quarter, row) {
            (Action::Back, _, _) => self.pop(),
            (Action::Char('q'), _, _) => self.quit = true,
            (Action::Char('s'), _, _) => self.start_sync(),
            // As on a calendar: the earlier quarter to the left, the later to the right
            // (the sheets are kept newest first).
            (Action::Left | Action::Char('['), _, _)
                if self.sheet_index + 1 < self.sheets.len() =>
            {
                self.sheet_index += 1;
                self.sheet_selected = 0;
            }
            (Action::Right | Action::Char(']'), _, _) if self.sheet_index > 0 => {
                self.sheet_index -= 1;
                self.sheet_selected = 0;
            }
            (Action::Enter | Action::Char('e'), Some(quarter), Some((household_id, text))) => {
                self.overlay = Some(Overlay::Remark {
                    quarter,
                    household_id,
                    text,
                });
            }
            (Action::Char('S') | Action::Sign, Some(quarter), _) => {
                self.overlay = Some(Overlay::ConfirmSubmit { quarter });
            }
            _ => {}
        }
    }

    pub(super) fn update_remark(
        &mut self,
        quarter: Quarter,
        household_id: i64,
        mut text: String,
        action: Action,
    ) {
        match action {
            Action::Back => return,
            Action::Char(c) => text.push(c),
            Action::Paste(s) => text.push_str(&s.replace(['\n', '\r'], " ")),
            Action::Backspace => {
                text.pop();
            }
            Action::Enter => {
                match self.block(self.client.set_sheet_remark(quarter, household_id, &text)) {
                    Ok(()) => {
                        self.reload_sheets();
                        self.info(self.lang.sheet().saved);
                        return;
                    }
                    Err(e) => self.fail_err(&e),
                }
            }
            _ => {}
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
