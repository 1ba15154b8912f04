//! `update`: how each action changes the app on each screen. Every core error becomes
//! a status line message; nothing a user types can panic the app.

use std::time::{Duration, Instant};

use bangfu_shared::VisitKind;
use bangfu_shared::visit::{PhotoRef, PolicyArea};

use super::chooser::{Chooser, Outcome, Purpose};
use super::form::{Field, FormState};
use super::{Action, App, LoginForm, Overlay, Screen, Status};
use crate::client::{LoginParams, ReusedImage, device_label, today};
use crate::draft::{SignatureMethod, VisitDraft};
use crate::error::ClientError;
use crate::photos::HalfBlocks;
use crate::signature_pad::SignaturePad;

/// How often an edited form is saved as a draft while typing.
const AUTOSAVE: Duration = Duration::from_millis(800);

impl App {
    /// Loads what the first screen needs, or shows the login screen.
    pub(super) fn start(&mut self) {
        match self.block(self.client.identity()) {
            Ok(identity) => {
                self.screen = Screen::Households;
                self.second_helper = identity.role == bangfu_shared::Role::SecondHelper;
                // Unknown (a store error) reads as pulled: no warning on a guess.
                self.history_pulled = self.block(self.client.history_pulled()).unwrap_or(true);
                self.revoked = self
                    .block(self.client.store().device_revoked())
                    .unwrap_or(false);
                self.clock_offset = self
                    .block(self.client.store().clock_offset())
                    .ok()
                    .flatten();
                self.policy = self.block(self.client.policy()).ok();
                self.reload_households();
                self.reload_drafts();
            }
            Err(ClientError::NotLoggedIn) => {
                self.screen = Screen::Login(LoginForm {
                    server: "http://127.0.0.1:8080".into(),
                    ..LoginForm::default()
                });
            }
            Err(e) => self.fail_err(&e),
        }
    }

    /// Whether the terminal is below the size the screens are laid out for: the screen
    /// then shows only a request to enlarge it.
    pub fn too_small(&self) -> bool {
        let (w, h) = crate::ui::MIN_SIZE;
        self.size.0 < w || self.size.1 < h
    }

    /// Applies one action.
    pub fn update(&mut self, action: Action) {
        // While the window is too small nothing but that request is on screen: a key
        // would act unseen (`x` discarding, `n` opening a form). Only Ctrl+C (which
        // saves the open draft first), the resize and the autosave tick go through.
        if self.too_small()
            && !matches!(action, Action::Resize { .. } | Action::Tick | Action::Quit)
        {
            self.poll_sync();
            return;
        }
        let key = !matches!(
            action,
            Action::Resize { .. } | Action::Tick | Action::MouseDrag { .. } | Action::MouseUp
        );
        // A failed save on leaving is reported once; the same key again leaves anyway.
        let armed = if key {
            self.unsaved_leave.take()
        } else {
            self.unsaved_leave.clone()
        };
        // A new key press dismisses the last message; what the sync thread reports
        // with this very update is newer, so it is applied after.
        if key && !matches!(action, Action::Quit) {
            self.status = None;
        }
        self.poll_sync();
        match action {
            Action::Resize { width, height } => {
                self.size = (width, height);
                return;
            }
            Action::Quit => {
                match self.autosave(true) {
                    Ok(_) => self.quit = true,
                    Err(_) if armed == Some(Action::Quit) => self.quit = true,
                    Err(e) => {
                        let t = self.lang.texts();
                        self.fail(format!(
                            "{}{}{}",
                            t.draft_not_saved,
                            self.lang.error(&e),
                            t.again_quit_discards
                        ));
                        self.unsaved_leave = Some(Action::Quit);
                    }
                }
                return;
            }
            Action::Tick => {
                // Reported while nothing else is: typing on keeps the edits in the form.
                if let Err(e) = self.autosave(false)
                    && !self.status.as_ref().is_some_and(|s| s.error)
                {
                    self.fail(format!(
                        "{}{}",
                        self.lang.texts().draft_not_saved,
                        self.lang.error(&e)
                    ));
                }
                return;
            }
            _ => {}
        }
        if let Some(overlay) = self.overlay.take() {
            self.update_overlay(overlay, action);
            return;
        }
        let screen = std::mem::replace(&mut self.screen, Screen::Households);
        match screen {
            Screen::Login(form) => self.update_login(form, action),
            Screen::Households => self.update_households(action),
            Screen::Detail { household_id } => self.update_detail(household_id, action),
            Screen::Form(form) => {
                let discard = armed == Some(Action::Back);
                self.update_form(form, action, discard)
            }
            Screen::History { household_id } => self.update_history(household_id, action),
            Screen::Drafts => self.update_drafts(action),
            Screen::Sheet => self.update_sheet(action),
        }
    }

    pub(super) fn info(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
            leads: false,
        });
    }

    pub(super) fn fail(&mut self, e: impl std::fmt::Display) {
        self.status = Some(Status {
            text: e.to_string(),
            error: true,
            leads: false,
        });
    }

    /// Shows a core error in the helper's language.
    pub(super) fn fail_err(&mut self, e: &ClientError) {
        let text = self.lang.error(e);
        self.fail(text);
    }

    /// Shows `next`, remembering the current screen for Esc.
    pub(super) fn push(&mut self, current: Screen, next: Screen) {
        self.back.push(current);
        self.screen = next;
    }

    /// Returns to the previous screen, refreshing what it shows.
    pub(super) fn pop(&mut self) {
        self.screen = self.back.pop().unwrap_or(Screen::Households);
        match &self.screen {
            Screen::History { household_id } => {
                let id = *household_id;
                self.reload_history(id);
            }
            // The detail screen lists the household's visits: one may just have been signed.
            Screen::Detail { household_id } => {
                let id = *household_id;
                self.reload_households();
                self.reload_history(Some(id));
            }
            Screen::Drafts => self.reload_drafts(),
            Screen::Sheet => self.reload_sheets(),
            _ => self.reload_households(),
        }
    }

    pub(super) fn reload_households(&mut self) {
        if let Ok(c) = self.block(self.client.store().sync_counts()) {
            self.sync_counts = c;
        }
        match self.block(self.client.households(self.clock.now())) {
            Ok(h) => {
                self.households = h;
                self.selected = self.selected.min(self.households.len().saturating_sub(1));
            }
            Err(e) => self.fail_err(&e),
        }
        match self.block(self.client.ended_households_at(self.clock.now())) {
            Ok(h) => self.ended = h,
            Err(e) => self.fail_err(&e),
        }
    }

    pub(super) fn reload_history(&mut self, household_id: Option<i64>) {
        match self.block(self.client.visits(household_id, super::HISTORY_LIMIT)) {
            Ok(v) => {
                self.history = v;
                self.history_selected = self
                    .history_selected
                    .min(self.history.len().saturating_sub(1));
            }
            Err(e) => self.fail_err(&e),
        }
    }

    fn reload_drafts(&mut self) {
        match self.block(self.client.drafts()) {
            Ok(d) => {
                self.drafts = d;
                self.drafts_selected = self
                    .drafts_selected
                    .min(self.drafts.len().saturating_sub(1));
            }
            Err(e) => self.fail_err(&e),
        }
    }

    /// Saves the open form as a draft if it changed (at once with `force`, else at most
    /// every [`AUTOSAVE`]). `Ok(true)` when a save happened now, `Ok(false)` when there
    /// was nothing to save; an error leaves the form's edits unsaved (and marked so).
    fn autosave(&mut self, force: bool) -> Result<bool, ClientError> {
        let due = force || self.last_save.is_none_or(|t| t.elapsed() >= AUTOSAVE);
        let draft = match &self.screen {
            Screen::Form(f) if f.dirty && due => f.draft.clone(),
            _ => return Ok(false),
        };
        self.block(self.client.save_draft(&draft))?;
        if let Screen::Form(f) = &mut self.screen {
            f.dirty = false;
            f.stored = true;
        }
        self.last_save = Some(Instant::now());
        Ok(true)
    }

    /// Autosaves, showing a failure in the status line (the form stays as it is).
    fn autosave_or_report(&mut self, force: bool) {
        if let Err(e) = self.autosave(force) {
            self.fail(format!(
                "{}{}",
                self.lang.texts().draft_not_saved,
                self.lang.error(&e)
            ));
        }
    }

    /// Says that a remark was being typed when the process stopped, on the row it was
    /// for, which the sheet then shows selected (`e` reopens it with the text).
    fn say_remark_typing(&mut self) {
        let Some((quarter, household, _)) = self
            .block(self.client.store().remarks_typing())
            .ok()
            .and_then(|all| all.into_iter().next())
        else {
            return;
        };
        let Some(index) = self.sheets.iter().position(|s| s.quarter() == quarter) else {
            return;
        };
        self.sheet_index = index;
        if let Some(row) = self.sheets[index]
            .sheet
            .rows
            .iter()
            .position(|r| r.household_id == household)
        {
            self.sheet_selected = row;
            self.info(self.lang.sheet().remark_typing);
        }
    }

    pub(super) fn move_sel(sel: &mut usize, len: usize, action: &Action) -> bool {
        let last = len.saturating_sub(1);
        *sel = match action {
            Action::Up | Action::Char('k') => sel.saturating_sub(1),
            Action::Down | Action::Char('j') => (*sel + 1).min(last),
            Action::PageUp => sel.saturating_sub(10),
            Action::PageDown => (*sel + 10).min(last),
            Action::Home => 0,
            Action::End => last,
            _ => return false,
        };
        true
    }

    fn update_households(&mut self, action: Action) {
        self.screen = Screen::Households;
        if Self::move_sel(&mut self.selected, self.households.len(), &action) {
            return;
        }
        let current = self
            .households
            .get(self.selected)
            .map(|h| h.detail.summary.id);
        match (action, current) {
            (Action::Char('q'), _) => self.quit = true,
            (Action::Enter, Some(id)) => {
                self.reload_history(Some(id));
                self.push(Screen::Households, Screen::Detail { household_id: id });
            }
            (Action::Char('n'), Some(id)) => self.open_new_visit(Screen::Households, id),
            (Action::Char('h'), _) => {
                self.reload_history(None);
                self.history_selected = 0;
                self.history_scroll = 0;
                self.push(Screen::Households, Screen::History { household_id: None });
            }
            (Action::Char('d'), _) => {
                self.reload_drafts();
                self.push(Screen::Households, Screen::Drafts);
            }
            (Action::Char('s'), _) => self.start_sync(),
            (Action::Char('a'), _) => {
                self.reload_sheets();
                let today = crate::client::today(self.clock.now());
                self.sheet_index = crate::sheets::sheet_to_open(&self.sheets, today);
                if self.sheet_index > 0 {
                    self.info(self.lang.sheet().opened_ended);
                }
                self.sheet_selected = 0;
                self.sheet_summary_focus = false;
                self.sheet_scroll = 0;
                self.push(Screen::Households, Screen::Sheet);
                self.say_remark_typing();
            }
            _ => {}
        }
    }

    fn update_detail(&mut self, household_id: i64, action: Action) {
        let here = Screen::Detail { household_id };
        match action {
            Action::Back => self.pop(),
            Action::Char('q') => self.quit = true,
            Action::Char('n') => self.open_new_visit(here, household_id),
            Action::Char('s') => {
                self.screen = here;
                self.start_sync();
            }
            Action::Char('h') => {
                self.reload_history(Some(household_id));
                self.history_selected = 0;
                self.history_scroll = 0;
                self.push(
                    here,
                    Screen::History {
                        household_id: Some(household_id),
                    },
                );
            }
            _ => self.screen = here,
        }
    }

    /// Opens the visit form for a household. Its unfinished draft from today reopens; one
    /// from another day is offered, not reopened: its visit time is that day's, and the
    /// helper chooses between continuing it and a fresh form ([`Overlay::ResumeDraft`]).
    fn open_new_visit(&mut self, current: Screen, household_id: i64) {
        self.reload_drafts();
        let existing = self
            .drafts
            .iter()
            .find(|d| d.household_id == household_id && d.amends.is_none())
            .cloned();
        match existing {
            Some(d) if d.visit_day() == Some(today(self.clock.now())) => {
                self.info(self.lang.texts().drafts.to_string() + " ↺");
                self.open_form(current, d, true);
            }
            Some(d) => {
                self.screen = current;
                self.overlay = Some(Overlay::ResumeDraft { draft: Box::new(d) });
            }
            None => {
                let draft = VisitDraft::new(household_id, VisitKind::Home, self.clock.now());
                self.open_form(current, draft, false);
            }
        }
    }

    /// The answer to "continue the draft of another day?": `y` continues it with the
    /// cursor on its time, `n` starts a fresh form (the old draft stays in the list).
    fn update_resume_draft(&mut self, draft: Box<VisitDraft>, action: Action) {
        let current = std::mem::replace(&mut self.screen, Screen::Households);
        match action {
            Action::Char('y' | 'Y') => {
                self.open_form(current, *draft, true);
                if let Screen::Form(f) = &mut self.screen {
                    f.focus = Field::Time;
                    f.cursor_to(true);
                }
            }
            Action::Char('n' | 'N') => {
                let fresh = VisitDraft::new(draft.household_id, VisitKind::Home, self.clock.now());
                self.open_form(current, fresh, false);
            }
            Action::Back => self.screen = current,
            _ => {
                self.screen = current;
                self.overlay = Some(Overlay::ResumeDraft { draft });
            }
        }
    }

    /// Opens the form over `draft`; `stored` when the draft is already in the store.
    fn open_form(&mut self, current: Screen, draft: VisitDraft, stored: bool) {
        // Nothing this device signs would be taken: said before a visit is filled in.
        if self.revoked {
            self.fail(self.lang.error(&ClientError::DeviceRevoked));
            return;
        }
        if self
            .block(self.client.store().device_forked())
            .unwrap_or(false)
        {
            self.fail(self.lang.error(&ClientError::DeviceForked));
            return;
        }
        let hashes: Vec<String> = draft
            .photos
            .iter()
            .map(|p| p.sha256.clone())
            .chain(draft.signature_image.clone())
            .collect();
        for h in hashes {
            self.ensure_thumb(&h);
        }
        self.last_save = None;
        let review_note = self.pending_review(&draft);
        let mut form = FormState::new(draft);
        form.stored = stored;
        form.review_note = review_note;
        self.push(current, Screen::Form(Box::new(form)));
        // Since the draft was saved, another visit may have taken its photo or signature.
        if stored {
            let reused = self.open_draft_reused();
            if let Some(warning) = self.reuse_warning(&reused) {
                self.fail(warning);
            }
        }
    }

    /// The town office's note an amendment draft answers: the corrected visit's review
    /// note, unless an amendment already answered it (none when the store cannot say:
    /// the note is a reminder, the history shows it too).
    fn pending_review(&self, draft: &VisitDraft) -> Option<String> {
        let visit = self.block(self.client.original_visit(draft.amends?)).ok()?;
        visit.review.filter(|r| !r.amended_since).map(|r| r.note)
    }

    /// The images of the open form's draft already on another visit (none when the
    /// store cannot say: the warning is advice, the server flags it anyway).
    fn open_draft_reused(&self) -> Vec<ReusedImage> {
        match &self.screen {
            Screen::Form(f) => self
                .block(self.client.draft_reused_images(&f.draft))
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// The status line for reused images: each warning once, `；`-separated.
    fn reuse_warning(&self, reused: &[ReusedImage]) -> Option<String> {
        let mut lines: Vec<String> = Vec::new();
        for r in reused {
            let line = self.lang.reused(r);
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        (!lines.is_empty()).then(|| lines.join("；"))
    }

    /// Before signing: an image of the draft already on another visit, a new visit's
    /// date in a quarter that has ended, and a home visit short of the county's evidence
    /// are said, and signing waits for a second Ctrl+S (true: warned, not signed). The server would otherwise drop the
    /// visit from attendance after the sync, far from the household.
    fn warn_reused_before_signing(&mut self) -> bool {
        let reused = self.open_draft_reused();
        let mut keys: Vec<String> = reused.iter().map(|r| r.sha256.clone()).collect();
        let mut warnings: Vec<String> = Vec::new();
        for line in reused.iter().map(|r| self.lang.reused(r)) {
            if !warnings.contains(&line) {
                warnings.push(line);
            }
        }
        if let Some((day, q)) = self.open_draft_closed_quarter() {
            keys.push(format!("quarter:{q}"));
            warnings.push(self.lang.closed_quarter(day, q));
        }
        let shortfall = self.open_draft_shortfall();
        if !shortfall.is_empty() {
            keys.push("evidence".into());
            warnings.push(self.lang.shortfall_text(&shortfall));
        }
        let Screen::Form(form) = &mut self.screen else {
            return false;
        };
        if keys.is_empty() || keys.iter().all(|h| form.reuse_warned.contains(h)) {
            return false;
        }
        form.reuse_warned = keys;
        let text = warnings
            .iter()
            .map(|w| w.trim_start_matches("⚠ "))
            .collect::<Vec<_>>()
            .join("；");
        self.fail(format!("⚠ {}{text}", self.lang.texts().sign_again_anyway));
        true
    }

    /// What the open form's visit lacks of the photos or household signature the policy
    /// in force on its date asks: signed so, it would not count.
    fn open_draft_shortfall(&self) -> Vec<crate::client::Shortfall> {
        let Screen::Form(f) = &self.screen else {
            return Vec::new();
        };
        let Ok(body) = f.draft.to_body() else {
            return Vec::new();
        };
        let history = self
            .block(self.client.store().evidence_history())
            .unwrap_or_default();
        crate::client::evidence_shortfall(&history, &body)
    }

    /// The open form's new visit's date with its quarter, when that quarter has ended.
    fn open_draft_closed_quarter(
        &self,
    ) -> Option<(chrono::NaiveDate, bangfu_shared::report::Quarter)> {
        let Screen::Form(f) = &self.screen else {
            return None;
        };
        if f.draft.amends.is_some() {
            return None;
        }
        let day = f.draft.visit_day()?;
        crate::client::closed_quarter(day, self.clock.now()).map(|q| (day, q))
    }

    /// Makes the terminal picture of a stored image, once.
    fn ensure_thumb(&mut self, sha256: &str) {
        if self.thumbs.contains_key(sha256) {
            return;
        }
        let (cols, rows) = crate::ui::THUMB_SIZE;
        if let Ok(t) = HalfBlocks::from_store(self.client.photos(), sha256, cols, rows) {
            self.thumbs.insert(sha256.to_string(), t);
        }
    }

    /// `discard`: the last key was Esc and its save failed; this Esc leaves anyway.
    fn update_form(&mut self, mut form: Box<FormState>, action: Action, discard: bool) {
        let t = self.lang.texts();
        match action {
            Action::Back => {
                self.screen = Screen::Form(form);
                match self.autosave(true) {
                    Ok(_) => {
                        let stored = matches!(&self.screen, Screen::Form(f) if f.stored);
                        self.pop();
                        if stored {
                            self.info(t.draft_saved);
                        }
                    }
                    Err(_) if discard => {
                        self.pop();
                        self.fail(t.changes_discarded);
                    }
                    Err(e) => {
                        self.fail(format!(
                            "{}{}{}",
                            t.draft_not_saved,
                            self.lang.error(&e),
                            t.again_esc_discards
                        ));
                        self.unsaved_leave = Some(Action::Back);
                    }
                }
                return;
            }
            Action::Sign => {
                let draft = form.draft.clone();
                self.screen = Screen::Form(form);
                if self.warn_reused_before_signing() {
                    return;
                }
                let saved = self.autosave(true);
                match self.block(self.client.complete_draft(&draft, self.clock.now())) {
                    Ok(_) => {
                        self.pop();
                        self.info(t.record_signed);
                    }
                    Err(e) => match saved {
                        Ok(_) => self.fail(format!("{}{}", t.stays_draft, self.lang.error(&e))),
                        Err(save) => self.fail(format!(
                            "{}{} · {}{}",
                            t.sign_failed,
                            self.lang.error(&e),
                            t.draft_not_saved,
                            self.lang.error(&save)
                        )),
                    },
                }
                return;
            }
            Action::Next | Action::Down => form.move_focus(1),
            Action::Prev | Action::Up => form.move_focus(-1),
            action => match form.focus {
                Field::Kind => {
                    if matches!(
                        action,
                        Action::Left | Action::Right | Action::Char(' ') | Action::Enter
                    ) {
                        form.toggle_kind();
                    }
                }
                Field::Policies => match action {
                    Action::Left => form.policy_cursor = form.policy_cursor.saturating_sub(1),
                    Action::Right => {
                        form.policy_cursor = (form.policy_cursor + 1).min(PolicyArea::ALL.len() - 1)
                    }
                    Action::Char(' ') | Action::Enter => {
                        let i = form.policy_cursor;
                        form.toggle_policy(i);
                    }
                    Action::Char(c @ '1'..='5') => form.toggle_policy(c as usize - '1' as usize),
                    _ => {}
                },
                Field::Photos => match action {
                    Action::Enter | Action::Char('a') | Action::Char(' ') => {
                        self.overlay = Some(Overlay::Chooser(Chooser::open(
                            &self.last_dir,
                            Purpose::Photo,
                        )));
                    }
                    Action::Left => form.photo_cursor = form.photo_cursor.saturating_sub(1),
                    Action::Right => {
                        form.photo_cursor =
                            (form.photo_cursor + 1).min(form.draft.photos.len().saturating_sub(1))
                    }
                    Action::Char('x') | Action::Delete | Action::Backspace => form.remove_photo(),
                    _ => {}
                },
                Field::Signature => match action {
                    Action::Char(' ') | Action::Right => form.cycle_signature_method(true),
                    Action::Left => form.cycle_signature_method(false),
                    Action::Enter => match form.draft.signature_method {
                        // The witness signs on the same pad as the household would.
                        SignatureMethod::Pad | SignatureMethod::Witness => {
                            let canvas = crate::ui::pad_canvas(self.size).0;
                            let pad = match &form.draft.pad {
                                Some(p) if p.width == canvas.width && p.height == canvas.height => {
                                    p.clone()
                                }
                                _ => SignaturePad::new(canvas.width, canvas.height),
                            };
                            self.overlay = Some(Overlay::Pad(pad));
                        }
                        SignatureMethod::PaperCard => {
                            self.overlay = Some(Overlay::Chooser(Chooser::open(
                                &self.last_dir,
                                Purpose::SignedCard,
                            )));
                        }
                    },
                    _ => {}
                },
                _ => match action {
                    Action::Char(c) => self.type_into(&mut form, &c.to_string()),
                    Action::Paste(s) => self.type_into(&mut form, &s),
                    Action::Backspace => form.backspace(),
                    Action::Delete => form.delete(),
                    Action::Left => form.move_cursor(-1),
                    Action::Right => form.move_cursor(1),
                    Action::Home => form.cursor_to(false),
                    Action::End => form.cursor_to(true),
                    Action::Enter => form.move_focus(1),
                    _ => {}
                },
            },
        }
        self.screen = Screen::Form(form);
        self.autosave_or_report(false);
    }

    /// Types `text` into the form's focused field; what its limit leaves out is said.
    fn type_into(&mut self, form: &mut FormState, text: &str) {
        if !form.insert(text) {
            self.fail(self.lang.field_full(FormState::limit(form.focus)));
        }
    }

    fn update_overlay(&mut self, overlay: Overlay, action: Action) {
        match overlay {
            Overlay::Chooser(c) => self.update_chooser(c, action),
            Overlay::Pad(p) => self.update_pad(p, action),
            Overlay::Void { visit_id, reason } => self.update_void(visit_id, reason, action),
            Overlay::Remark {
                quarter,
                household_id,
                text,
            } => self.update_remark(quarter, household_id, text, action),
            Overlay::ConfirmSubmit { quarter } => self.update_confirm_submit(quarter, action),
            Overlay::ResumeDraft { draft } => self.update_resume_draft(draft, action),
            Overlay::ConfirmDiscard { draft } => self.update_confirm_discard(draft, action),
        }
    }

    fn update_chooser(&mut self, mut chooser: Chooser, action: Action) {
        let outcome = match action {
            Action::Back => return,
            Action::Backspace => {
                chooser.backspace();
                Outcome::Stayed
            }
            Action::Left => {
                chooser.up();
                Outcome::Stayed
            }
            Action::Enter | Action::Right => chooser.enter(),
            Action::Paste(text) => chooser.paste(&text),
            Action::Char(c) => {
                chooser.type_char(c);
                Outcome::Stayed
            }
            other => {
                let len = chooser.visible().len();
                Self::move_sel(&mut chooser.selected, len, &other);
                Outcome::Stayed
            }
        };
        match outcome {
            Outcome::Stayed => {}
            Outcome::NotFound(path) => {
                let t = self.lang.texts();
                self.fail(format!("{}{}", t.chooser_not_found, path.display()));
                chooser.refuse_typed();
            }
            Outcome::File(path) => {
                if let Some(dir) = path.parent() {
                    self.last_dir = dir.to_path_buf();
                }
                if self.attach_chosen(&path, chooser.purpose) {
                    return;
                }
                chooser.refuse_typed();
            }
        }
        self.overlay = Some(Overlay::Chooser(chooser));
    }

    /// Attaches the chosen file to the open form; false (with the reason shown) when
    /// the file is refused, so the chooser stays open.
    fn attach_chosen(&mut self, path: &std::path::Path, purpose: Purpose) -> bool {
        let attached = match purpose {
            Purpose::Photo => self
                .block(self.client.attach_photo(path))
                .map(|p| (Some(p), None)),
            Purpose::SignedCard => self
                .block(self.client.attach_card_photo(path))
                .map(|h| (None, Some(h))),
        };
        let (photo, card) = match attached {
            Ok(pair) => pair,
            Err(e) => {
                self.fail_err(&e);
                return false;
            }
        };
        let hash = photo.as_ref().map(|p| p.sha256.clone()).or(card.clone());
        // The server counts a photo for one visit only: say so before the helper relies on it.
        let amends = match &self.screen {
            Screen::Form(f) => f.draft.amends,
            _ => None,
        };
        let photos: Vec<PhotoRef> = photo.iter().cloned().collect();
        let reused = self
            .block(self.client.reused_images(&photos, card.as_deref(), amends))
            .unwrap_or_default();
        if let Screen::Form(form) = &mut self.screen {
            if let Some(p) = photo {
                if !form.draft.photos.iter().any(|x| x.sha256 == p.sha256) {
                    form.draft.photos.push(p);
                }
                form.photo_cursor = form.draft.photos.len().saturating_sub(1);
            }
            if let Some(h) = card {
                form.draft.signature_image = Some(h);
            }
            form.dirty = true;
        }
        if let Some(h) = hash {
            self.ensure_thumb(&h);
            match self.reuse_warning(&reused) {
                Some(warning) => self.fail(warning),
                None => self.info(format!("✓ {}", path.display())),
            }
        }
        self.autosave_or_report(true);
        true
    }

    fn update_pad(&mut self, mut pad: SignaturePad, action: Action) {
        let canvas = crate::ui::pad_canvas(self.size).0;
        let local = |col: u16, row: u16| -> Option<(u16, u16)> {
            let inside = col >= canvas.x
                && row >= canvas.y
                && col < canvas.x + canvas.width
                && row < canvas.y + canvas.height;
            inside.then(|| (col - canvas.x, row - canvas.y))
        };
        match action {
            Action::MouseDown { col, row } => {
                if let Some((x, y)) = local(col, row) {
                    pad.press(x, y);
                }
            }
            Action::MouseDrag { col, row } => match local(col, row) {
                Some((x, y)) => pad.drag(x, y),
                None => pad.release(),
            },
            Action::MouseUp => pad.release(),
            Action::Char('c') => pad.clear(),
            Action::Char('u') => pad.undo(),
            Action::Back => {
                self.keep_strokes(&pad);
                return;
            }
            Action::Enter => {
                let result = pad
                    .to_png()
                    .and_then(|png| self.block(self.client.attach_signature_png(&png)));
                match result {
                    Ok(hash) => {
                        if let Screen::Form(form) = &mut self.screen {
                            // The household's drawing, or the witness's (kept as the
                            // witness's mark).
                            if form.draft.signature_method != SignatureMethod::Witness {
                                form.draft.signature_method = SignatureMethod::Pad;
                            }
                            form.draft.signature_image = Some(hash.clone());
                            form.draft.pad = Some(pad);
                            form.dirty = true;
                        }
                        self.ensure_thumb(&hash);
                        let reused = self.open_draft_reused();
                        match self.reuse_warning(&reused) {
                            Some(warning) => self.fail(warning),
                            None => {
                                self.info(format!("{} ✓", self.lang.texts().household_signature))
                            }
                        }
                        self.autosave_or_report(true);
                        return;
                    }
                    Err(_) if pad.point_count() < 3 => {
                        // Whose pad it is: the witness's when the household cannot sign
                        // (QA s30d P4).
                        let witness = matches!(&self.screen, Screen::Form(f)
                            if f.draft.signature_method == crate::draft::SignatureMethod::Witness);
                        let t = self.lang.texts();
                        self.fail(if witness {
                            t.pad_empty_witness
                        } else {
                            t.pad_empty
                        });
                    }
                    Err(e) => self.fail_err(&e),
                }
            }
            _ => {}
        }
        // Strokes go into the draft as they are drawn: Ctrl+C or a killed process while
        // the household is signing loses at most the stroke being drawn.
        let finished_stroke = matches!(action, Action::MouseUp);
        self.keep_strokes(&pad);
        if finished_stroke {
            self.autosave_or_report(false);
        }
        self.overlay = Some(Overlay::Pad(pad));
    }

    /// Copies the pad's strokes into the open form's draft when they changed.
    fn keep_strokes(&mut self, pad: &SignaturePad) {
        if let Screen::Form(form) = &mut self.screen {
            let kept = form.draft.pad.as_ref().map(|p| &p.strokes);
            let changed = match kept {
                Some(strokes) => *strokes != pad.strokes,
                None => !pad.strokes.is_empty(),
            };
            if changed {
                form.draft.pad = Some(pad.clone());
                form.dirty = true;
            }
        }
    }

    fn update_void(&mut self, visit_id: uuid::Uuid, mut reason: String, action: Action) {
        match action {
            Action::Back => return,
            Action::Char(c) => reason.push(c),
            Action::Paste(s) => reason.push_str(&s.replace(['\n', '\r'], " ")),
            Action::Backspace => {
                reason.pop();
            }
            Action::Enter => {
                match self.block(self.client.void_visit(visit_id, &reason, self.clock.now())) {
                    Ok(_) => {
                        let id = match &self.screen {
                            Screen::History { household_id } => *household_id,
                            _ => None,
                        };
                        self.reload_history(id);
                        self.info(format!("{} ✓", self.lang.texts().voided));
                        return;
                    }
                    Err(e) => self.fail_err(&e),
                }
            }
            _ => {}
        }
        self.overlay = Some(Overlay::Void { visit_id, reason });
    }

    fn update_history(&mut self, household_id: Option<i64>, action: Action) {
        let here = Screen::History { household_id };
        if Self::move_sel(&mut self.history_selected, self.history.len(), &action) {
            self.history_scroll = 0;
            self.screen = here;
            return;
        }
        // Tab pages through the selected visit's lines, and from the end back to the top.
        if let Action::Next | Action::Prev = action {
            let (lines, page) = crate::ui::history_extent(self, self.size);
            let max = lines.saturating_sub(page);
            let top = usize::from(self.history_scroll).min(max);
            let step = page.saturating_sub(1).max(1);
            let top = match action {
                Action::Next if top >= max => 0,
                Action::Next => (top + step).min(max),
                _ => top.saturating_sub(step),
            };
            self.history_scroll = u16::try_from(top).unwrap_or(u16::MAX);
            self.screen = here;
            return;
        }
        let current = self.history.get(self.history_selected).cloned();
        match (action, current) {
            (Action::Back, _) => self.pop(),
            (Action::Char('q'), _) => self.quit = true,
            (Action::Char('a'), Some(row)) => {
                if row.voided {
                    self.screen = here;
                    // As `visit amend` says it: a void cannot be amended.
                    self.fail_err(&crate::error::ClientError::Refused(format!(
                        "visit {} was voided and cannot be amended",
                        row.visit_id
                    )));
                    return;
                }
                match &row.current.signed.record.visit {
                    Some(body) => {
                        // Reopen an unfinished correction of this visit rather than start another.
                        self.reload_drafts();
                        let (draft, stored) =
                            match self.drafts.iter().find(|d| d.amends == Some(row.visit_id)) {
                                Some(d) => (d.clone(), true),
                                None => (
                                    VisitDraft::amending(row.visit_id, row.household_id, body),
                                    false,
                                ),
                            };
                        self.open_form(here, draft, stored);
                    }
                    None => self.screen = here,
                }
            }
            (Action::Char('s'), _) => {
                self.screen = here;
                self.start_sync();
            }
            (Action::Char('v'), Some(row)) => {
                self.screen = here;
                if row.voided {
                    // Said, not ignored (QA s23a F11), as `visit void` says it.
                    self.fail_err(&crate::error::ClientError::Refused(format!(
                        "visit {} is already void",
                        row.visit_id
                    )));
                } else {
                    self.overlay = Some(Overlay::Void {
                        visit_id: row.visit_id,
                        reason: String::new(),
                    });
                }
            }
            _ => self.screen = here,
        }
    }

    fn update_drafts(&mut self, action: Action) {
        if Self::move_sel(&mut self.drafts_selected, self.drafts.len(), &action) {
            self.screen = Screen::Drafts;
            return;
        }
        let current = self.drafts.get(self.drafts_selected).cloned();
        match (action, current) {
            (Action::Back, _) => self.pop(),
            (Action::Char('q'), _) => self.quit = true,
            (Action::Enter, Some(d)) => self.open_form(Screen::Drafts, d, true),
            // Asked first: the draft may hold the household's signature.
            (Action::Char('x') | Action::Delete, Some(d)) => {
                self.screen = Screen::Drafts;
                self.overlay = Some(Overlay::ConfirmDiscard { draft: Box::new(d) });
            }
            _ => self.screen = Screen::Drafts,
        }
    }

    /// The answer to "discard this draft?": only `y` discards, any other key keeps it
    /// (as the sheet's signing asks for `y`).
    fn update_confirm_discard(&mut self, draft: Box<VisitDraft>, action: Action) {
        if !matches!(action, Action::Char('y' | 'Y')) {
            self.info(self.lang.texts().discard_kept);
            return;
        }
        match self.block(self.client.store().discard_draft(draft.id)) {
            Ok(()) => self.info(self.lang.texts().discard_done),
            Err(e) => self.fail_err(&e),
        }
        self.reload_drafts();
    }

    fn update_login(&mut self, mut form: LoginForm, action: Action) {
        match action {
            Action::Back => {
                self.quit = true;
            }
            Action::Next | Action::Down => form.focus = (form.focus + 1) % 4,
            Action::Prev | Action::Up => form.focus = (form.focus + 3) % 4,
            Action::Char(c) => login_field(&mut form).push(c),
            Action::Paste(s) => login_field(&mut form).push_str(s.trim()),
            Action::Backspace => {
                login_field(&mut form).pop();
            }
            Action::Enter => {
                let params = LoginParams {
                    server: form.server.clone(),
                    username: form.username.trim().to_string(),
                    password: form.password.clone(),
                    enroll_code: Some(form.code.trim().to_string()).filter(|c| !c.is_empty()),
                    device_label: device_label(),
                };
                match self.block(self.client.login(&params)) {
                    Ok(summary) => {
                        self.start();
                        self.info(format!("✓ {} ({})", params.username, summary.households));
                        return;
                    }
                    Err(e) => self.fail_err(&e),
                }
            }
            _ => {}
        }
        self.screen = Screen::Login(form);
    }
}

fn login_field(f: &mut LoginForm) -> &mut String {
    match f.focus {
        0 => &mut f.server,
        1 => &mut f.username,
        2 => &mut f.password,
        _ => &mut f.code,
    }
}

#[cfg(test)]
mod tests {
    use bangfu_shared::Role;

    use super::super::testing::*;
    use super::super::{Action, App, Clock, Overlay, Screen};
    use crate::draft::VisitDraft;
    use crate::i18n::Lang;

    fn drafts(app: &App) -> usize {
        app.runtime()
            .block_on(app.client().drafts())
            .expect("drafts")
            .len()
    }

    /// `x` on the drafts screen asks first; only `y` discards.
    #[test]
    fn discarding_a_draft_asks_for_y() {
        let mut fx = fixture(Lang::Zh);
        let app = &mut fx.app;
        let draft = VisitDraft::new(1, bangfu_shared::VisitKind::Home, now());
        app.runtime()
            .block_on(app.client().save_draft(&draft))
            .expect("saved");
        app.update(Action::Char('d'));
        assert_eq!(app.screen, Screen::Drafts);
        app.update(Action::Char('x'));
        assert!(matches!(app.overlay, Some(Overlay::ConfirmDiscard { .. })));
        assert_eq!(drafts(app), 1, "not discarded before the answer");
        let text = screen(app, 80, 24);
        assert!(
            text.contains("丢弃这份草稿？") && text.contains("y 丢弃"),
            "{text}"
        );
        app.update(Action::Enter);
        assert!(app.overlay.is_none());
        assert_eq!(drafts(app), 1, "any other key keeps the draft");
        app.update(Action::Char('x'));
        app.update(Action::Char('y'));
        assert_eq!(drafts(app), 0);
        assert_eq!(app.screen, Screen::Drafts);
    }

    /// Below the minimum size nothing is on screen but a request to enlarge it: keys
    /// do nothing, except Ctrl+C.
    #[test]
    fn keys_are_ignored_while_the_window_is_too_small() {
        let mut fx = fixture(Lang::Zh);
        let app = &mut fx.app;
        app.update(Action::Resize {
            width: 59,
            height: 16,
        });
        for key in [
            Action::Char('n'),
            Action::Char('d'),
            Action::Enter,
            Action::Char('q'),
        ] {
            app.update(key);
            assert_eq!(app.screen, Screen::Households);
            assert!(app.overlay.is_none() && !app.quit);
        }
        app.update(Action::Resize {
            width: 60,
            height: 16,
        });
        app.update(Action::Char('d'));
        assert_eq!(app.screen, Screen::Drafts, "keys act again at 60×16");
        app.update(Action::Resize {
            width: 80,
            height: 10,
        });
        app.update(Action::Quit);
        assert!(app.quit, "Ctrl+C still leaves");
    }

    /// A clock the last sync found wrong is said on the status line from the start (QA
    /// s26d F8), until a sync finds it right.
    #[test]
    fn a_clock_found_wrong_is_said_from_the_start() {
        let mut fx = fixture(Lang::Zh);
        fx.app
            .block(fx.app.client().store().set_clock_offset(Some(3 * 86_400)))
            .unwrap();
        fx.app.start();
        let text = screen(&fx.app, 80, 24);
        assert!(text.contains("⚠ 本机时间比服务器快3天"), "{text}");
        fx.app
            .apply_sync_event(super::super::SyncEvent::Finished(Ok(
                crate::sync::SyncReport::default(),
            )));
        fx.app.update(Action::Down);
        let text = screen(&fx.app, 80, 24);
        assert!(!text.contains("本机时间"), "{text}");
    }

    /// Until the first sync the status line says the history is not on the device; a
    /// finished sync takes the note away.
    #[test]
    fn the_history_not_yet_synced_is_said_until_a_sync_ran() {
        let mut fx = fixture(Lang::Zh);
        let app = &mut fx.app;
        assert!(!app.history_pulled);
        let text = screen(app, 80, 24);
        assert!(text.contains("尚未同步：按 s 取回走访记录"), "{text}");
        assert!(text.contains("未同步"), "{text}");
        app.apply_sync_event(super::super::SyncEvent::Finished(Ok(
            crate::sync::SyncReport::default(),
        )));
        assert!(app.history_pulled);
        app.update(Action::Down); // dismisses the result line
        let text = screen(app, 80, 24);
        assert!(!text.contains("尚未同步"), "{text}");
        assert!(text.contains("从未"), "{text}");
    }

    /// A history holding the most the screen loads says older visits may exist, and
    /// where to find them (QA s33e S2); a shorter one says nothing of it.
    #[test]
    fn a_full_history_says_older_visits_are_elsewhere() {
        let mut fx = fixture(Lang::Zh);
        let app = &mut fx.app;
        phone_call(app);
        app.update(Action::Char('h'));
        assert!(!screen(app, 100, 30).contains("仅显示最近"));
        app.update(Action::Back);
        for _ in 1..super::super::HISTORY_LIMIT {
            phone_call(app);
        }
        app.update(Action::Char('h'));
        let text = screen(app, 100, 30);
        assert!(
            text.contains("仅显示最近500条；更早的：bangfu visit list"),
            "{text}"
        );
    }

    /// ← goes to the earlier quarter, → to the later one.
    #[test]
    fn sheet_arrows_go_back_and_forth_in_time() {
        let mut fx = fixture_as(Lang::Zh, Role::SecondHelper);
        let app = &mut fx.app;
        save_sheet(app, "2025Q4");
        save_sheet(app, "2026Q1");
        app.update(Action::Char('a'));
        let shown = |app: &App| app.current_sheet().map(|s| s.quarter().to_string());
        // The ended quarter, never submitted, opens first, and says why (QA s33d S6).
        assert_eq!(shown(app).as_deref(), Some("2025Q4"), "the one to submit");
        let status = app.status.clone().map(|s| s.text).unwrap_or_default();
        assert!(status.contains("上季度考勤表尚待提交"), "{status}");
        app.update(Action::Left);
        assert_eq!(shown(app).as_deref(), Some("2025Q4"), "nothing earlier");
        app.update(Action::Right);
        assert_eq!(shown(app).as_deref(), Some("2026Q1"));
        app.update(Action::Right);
        assert_eq!(shown(app).as_deref(), Some("2026Q1"), "nothing later");
        app.update(Action::Left);
        assert_eq!(shown(app).as_deref(), Some("2025Q4"));
    }

    /// Once the ended quarter is submitted, the sheet opens on the quarter running.
    #[test]
    fn the_sheet_opens_on_the_running_quarter_once_the_last_is_submitted() {
        let mut fx = fixture_as(Lang::Zh, Role::SecondHelper);
        let app = &mut fx.app;
        save_sheet(app, "2025Q4");
        save_sheet(app, "2026Q1");
        let client = app.client().clone();
        let q: bangfu_shared::report::Quarter = "2025Q4".parse().unwrap();
        let mut sheet = app
            .runtime()
            .block_on(client.sheet(q))
            .expect("the sheet")
            .sheet;
        sheet.submitted_version = Some(1);
        app.runtime()
            .block_on(client.store().save_sheet(&sheet))
            .expect("saved");
        app.update(Action::Char('a'));
        let shown = app.current_sheet().map(|s| s.quarter().to_string());
        assert_eq!(shown.as_deref(), Some("2026Q1"));
    }

    /// A first helper fills in no attendance sheet: `a` is not on the help line, and
    /// the screen says the sheet is the second helper's.
    #[test]
    fn a_first_helper_is_told_the_sheet_is_not_theirs() {
        let mut fx = fixture(Lang::Zh);
        let app = &mut fx.app;
        let text = screen(app, 80, 24);
        let help = text.lines().last().unwrap_or_default();
        assert!(
            !help.contains("a 考勤表") && help.contains("q 退出"),
            "{help}"
        );
        app.update(Action::Char('a'));
        let text = screen(app, 80, 24);
        assert!(
            text.contains("考勤表由第二帮扶责任人填报，本账号无需填报"),
            "{text}"
        );
        assert!(!text.contains("同步（s）后可离线查看"), "{text}");

        let mut fx = fixture_as(Lang::Zh, Role::SecondHelper);
        for (w, h) in [(80, 24), (60, 16)] {
            let text = screen(&fx.app, w, h);
            let help = text.lines().last().unwrap_or_default();
            assert!(help.contains("a 考勤表"), "{text}");
        }
        // Before the first sync there is no sheet: a remark or a submission says why
        // nothing happens (QA s30d P4).
        fx.app.update(Action::Char('a'));
        for key in ['e', 'S'] {
            fx.app.status = None;
            fx.app.update(Action::Char(key));
            let status = fx.app.status.clone().map(|s| s.text).unwrap_or_default();
            assert!(status.contains("没有考勤表"), "{key}: {status}");
        }
    }

    /// A correction signed from the form needs its reason, as a void does.
    #[test]
    fn an_amendment_without_a_reason_is_not_signed() {
        let mut fx = fixture(Lang::Zh);
        let app = &mut fx.app;
        phone_call(app);
        app.update(Action::Char('h'));
        app.update(Action::Char('a'));
        assert!(matches!(&app.screen, Screen::Form(f) if f.draft.amends.is_some()));
        app.update(Action::Sign);
        assert!(matches!(app.screen, Screen::Form(_)), "not signed");
        let status = app.status.clone().map(|s| s.text).unwrap_or_default();
        assert!(status.contains("更正原因：更正须填写原因"), "{status}");
        let rows = app
            .runtime()
            .block_on(app.client().visits(None, 5))
            .expect("visits");
        assert_eq!(rows[0].amendments, 0);
        if let Screen::Form(f) = &mut app.screen {
            f.draft.reason = "问题写错".into();
        }
        app.update(Action::Sign);
        assert!(!matches!(app.screen, Screen::Form(_)), "{:?}", app.status);
    }

    /// The void dialog is titled for what it does; its empty reason is a void's.
    #[test]
    fn the_void_dialog_says_void_and_asks_for_a_void_reason() {
        let mut fx = fixture(Lang::Zh);
        let app = &mut fx.app;
        phone_call(app);
        app.update(Action::Char('h'));
        app.update(Action::Char('v'));
        let text = screen(app, 80, 24);
        assert!(
            text.contains("作废走访") && !text.contains("已作废"),
            "{text}"
        );
        app.update(Action::Enter);
        let status = app.status.clone().map(|s| s.text).unwrap_or_default();
        assert!(status.starts_with("作废原因："), "{status}");
        // Voided, `v` again says so rather than nothing (QA s23a F11).
        app.update(Action::Char('误'));
        app.update(Action::Enter);
        assert!(app.overlay.is_none(), "voided");
        app.update(Action::Char('v'));
        assert!(app.overlay.is_none(), "no second void dialog");
        let status = app.status.clone().map(|s| s.text).unwrap_or_default();
        assert_eq!(status, "此走访已作废");
    }

    /// The file chooser starts where `bangfu` was started.
    #[test]
    fn the_chooser_starts_in_the_current_directory() {
        let fx = fixture(Lang::Zh);
        let app = App::new(
            fx.app.client().clone(),
            fx.app.runtime().clone(),
            Lang::Zh,
            Clock::Fixed(now()),
            (80, 24),
        );
        assert_eq!(Some(app.last_dir), std::env::current_dir().ok());
    }

    /// An empty folder says so, and a typed path is not a filter that matched nothing.
    #[test]
    fn an_empty_folder_says_it_has_no_photos() {
        let mut fx = fixture(Lang::Zh);
        let empty = fx.dir.path().join("empty");
        std::fs::create_dir(&empty).expect("a folder");
        let app = &mut fx.app;
        app.last_dir = empty;
        app.update(Action::Char('n'));
        app.update(Action::Resize {
            width: 80,
            height: 24,
        });
        app.overlay = Some(Overlay::Chooser(super::Chooser::open(
            &app.last_dir,
            super::Purpose::Photo,
        )));
        let text = screen(app, 80, 24);
        assert!(text.contains("此文件夹没有照片"), "{text}");
        keys(app, "/tm");
        let text = screen(app, 80, 24);
        assert!(!text.contains("没有名称含此文字的文件"), "{text}");
        assert!(text.contains("前往：/tm"), "{text}");
    }

    /// QA s30d P4: a dialog opens inside the form's frame; the frame's bottom border
    /// stays whole under it, at 80×24 and at the smallest size.
    #[test]
    fn the_chooser_leaves_the_forms_border_whole() {
        let mut fx = fixture(Lang::Zh);
        let app = &mut fx.app;
        app.update(Action::Char('n'));
        app.overlay = Some(Overlay::Chooser(super::Chooser::open(
            &app.last_dir,
            super::Purpose::Photo,
        )));
        for (w, h) in [(80, 24), (60, 16)] {
            app.update(Action::Resize {
                width: w,
                height: h,
            });
            let text = screen(app, w, h);
            let rows: Vec<&str> = text.lines().collect();
            let bottom = rows[usize::from(h) - 3];
            let inner: String = bottom.chars().skip(1).take(usize::from(w) - 2).collect();
            assert!(
                bottom.starts_with('└') && inner.chars().all(|c| c == '─'),
                "{w}x{h}: the frame's bottom border is whole:\n{text}"
            );
            assert!(text.contains("选择照片文件"), "{text}");
        }
    }
}
