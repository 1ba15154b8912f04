//! `update`: how each action changes the app on each screen. Every core error becomes
//! a status line message; nothing a user types can panic the app.

use std::time::{Duration, Instant};

use bangfu_shared::VisitKind;
use bangfu_shared::visit::PolicyArea;

use super::chooser::{Chooser, Outcome, Purpose};
use super::form::{Field, FormState};
use super::{Action, App, LoginForm, Overlay, Screen, Status};
use crate::client::{LoginParams, device_label, today};
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
            Ok(_) => {
                self.screen = Screen::Households;
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

    /// Applies one action.
    pub fn update(&mut self, action: Action) {
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
        });
    }

    pub(super) fn fail(&mut self, e: impl std::fmt::Display) {
        self.status = Some(Status {
            text: e.to_string(),
            error: true,
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
        match self.block(self.client.visits(household_id, 500)) {
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
                self.push(Screen::Households, Screen::History { household_id: None });
            }
            (Action::Char('d'), _) => {
                self.reload_drafts();
                self.push(Screen::Households, Screen::Drafts);
            }
            (Action::Char('s'), _) => self.start_sync(),
            (Action::Char('a'), _) => {
                self.reload_sheets();
                self.sheet_index = 0;
                self.sheet_selected = 0;
                self.push(Screen::Households, Screen::Sheet);
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
        let mut form = FormState::new(draft);
        form.stored = stored;
        self.push(current, Screen::Form(Box::new(form)));
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
                    Action::Char(c) => form.insert(&c.to_string()),
                    Action::Paste(s) => form.insert(&s),
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
            }
            Outcome::File(path) => {
                if let Some(dir) = path.parent() {
                    self.last_dir = dir.to_path_buf();
                }
                if self.attach_chosen(&path, chooser.purpose) {
                    return;
                }
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
        let reused = match &photo {
            Some(p) => self
                .block(self.client.store().photo_visit(&p.sha256, amends))
                .ok()
                .flatten(),
            None => None,
        };
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
            match reused {
                Some((_, at)) => {
                    let day = at.with_timezone(&crate::config::local_offset());
                    let t = self.lang.texts();
                    self.fail(
                        t.photo_reused
                            .replace("{}", &day.format("%m-%d").to_string()),
                    );
                }
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
                        self.info(format!("{} ✓", self.lang.texts().household_signature));
                        self.autosave_or_report(true);
                        return;
                    }
                    Err(_) if pad.point_count() < 3 => self.fail(self.lang.texts().pad_empty),
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
                    self.fail(format!("{}: {}", self.lang.texts().voided, row.visit_id));
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
                if !row.voided {
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
            (Action::Char('x'), Some(d)) => {
                self.screen = Screen::Drafts;
                if let Err(e) = self.block(self.client.store().discard_draft(d.id)) {
                    self.fail_err(&e);
                }
                self.reload_drafts();
            }
            _ => self.screen = Screen::Drafts,
        }
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
