//! `update`: how each action changes the app on each screen. Every core error becomes
//! a status line message; nothing a user types can panic the app.

use std::time::{Duration, Instant};

use bangfu_shared::VisitKind;
use bangfu_shared::visit::PolicyArea;

use super::chooser::{Chooser, Outcome, Purpose};
use super::form::{Field, FormState};
use super::{Action, App, LoginForm, Overlay, Screen, Status};
use crate::client::{LoginParams, device_label};
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
            Err(e) => self.fail(e),
        }
    }

    /// Applies one action.
    pub fn update(&mut self, action: Action) {
        self.poll_sync();
        match action {
            Action::Resize { width, height } => {
                self.size = (width, height);
                return;
            }
            Action::Quit => {
                self.autosave(true);
                self.quit = true;
                return;
            }
            Action::Tick => {
                self.autosave(false);
                return;
            }
            Action::MouseDrag { .. } | Action::MouseUp => {}
            // A new key press dismisses the last message.
            _ => self.status = None,
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
            Screen::Form(form) => self.update_form(form, action),
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
            Err(e) => self.fail(e),
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
            Err(e) => self.fail(e),
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
            Err(e) => self.fail(e),
        }
    }

    /// Saves the open form as a draft if it changed (at once with `force`, else at most
    /// every [`AUTOSAVE`]).
    fn autosave(&mut self, force: bool) {
        let due = force || self.last_save.is_none_or(|t| t.elapsed() >= AUTOSAVE);
        let draft = match &self.screen {
            Screen::Form(f) if f.dirty && due => f.draft.clone(),
            _ => return,
        };
        match self.block(self.client.save_draft(&draft)) {
            Ok(()) => {
                if let Screen::Form(f) = &mut self.screen {
                    f.dirty = false;
                }
                self.last_save = Some(Instant::now());
            }
            Err(e) => self.fail(e),
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

    /// Opens the visit form for a household, reopening its unfinished draft if any.
    fn open_new_visit(&mut self, current: Screen, household_id: i64) {
        self.reload_drafts();
        let existing = self
            .drafts
            .iter()
            .find(|d| d.household_id == household_id && d.amends.is_none())
            .cloned();
        let draft = match existing {
            Some(d) => {
                self.info(self.lang.texts().drafts.to_string() + " ↺");
                d
            }
            None => VisitDraft::new(household_id, VisitKind::Home, self.clock.now()),
        };
        self.open_form(current, draft);
    }

    fn open_form(&mut self, current: Screen, draft: VisitDraft) {
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
        self.push(current, Screen::Form(Box::new(FormState::new(draft))));
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

    fn update_form(&mut self, mut form: Box<FormState>, action: Action) {
        let t = self.lang.texts();
        match action {
            Action::Back => {
                self.screen = Screen::Form(form);
                self.autosave(true);
                self.info(t.draft_saved);
                self.pop();
                return;
            }
            Action::Sign => {
                let draft = form.draft.clone();
                self.screen = Screen::Form(form);
                self.autosave(true);
                match self.block(self.client.complete_draft(&draft, self.clock.now())) {
                    Ok(_) => {
                        self.pop();
                        self.info(t.record_signed);
                    }
                    Err(e) => self.fail(format!("{}{}", t.stays_draft, self.lang.error(&e))),
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
                        SignatureMethod::Pad => {
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
                        SignatureMethod::Witness => form.move_focus(1),
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
        self.autosave(false);
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
                self.fail(e);
                return false;
            }
        };
        let hash = photo.as_ref().map(|p| p.sha256.clone()).or(card.clone());
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
            self.info(format!("✓ {}", path.display()));
        }
        self.autosave(true);
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
                if let Screen::Form(form) = &mut self.screen {
                    form.draft.pad = Some(pad);
                    form.dirty = true;
                }
                return;
            }
            Action::Enter => {
                let result = pad
                    .to_png()
                    .and_then(|png| self.block(self.client.attach_signature_png(&png)));
                match result {
                    Ok(hash) => {
                        if let Screen::Form(form) = &mut self.screen {
                            form.draft.signature_method = SignatureMethod::Pad;
                            form.draft.signature_image = Some(hash.clone());
                            form.draft.pad = Some(pad);
                            form.dirty = true;
                        }
                        self.ensure_thumb(&hash);
                        self.info(format!("{} ✓", self.lang.texts().household_signature));
                        self.autosave(true);
                        return;
                    }
                    Err(_) if pad.point_count() < 3 => self.fail(self.lang.texts().pad_empty),
                    Err(e) => self.fail(e),
                }
            }
            _ => {}
        }
        self.overlay = Some(Overlay::Pad(pad));
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
                    Err(e) => self.fail(e),
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
                        let draft = self
                            .drafts
                            .iter()
                            .find(|d| d.amends == Some(row.visit_id))
                            .cloned()
                            .unwrap_or_else(|| {
                                VisitDraft::amending(row.visit_id, row.household_id, body)
                            });
                        self.open_form(here, draft);
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
            (Action::Enter, Some(d)) => self.open_form(Screen::Drafts, d),
            (Action::Char('x'), Some(d)) => {
                self.screen = Screen::Drafts;
                if let Err(e) = self.block(self.client.store().discard_draft(d.id)) {
                    self.fail(e);
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
                    Err(e) => self.fail(e),
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
