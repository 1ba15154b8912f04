//! The visit form's state: which field has focus and how keys edit it. The content is
//! the [`VisitDraft`], saved to the store as it changes.

use bangfu_shared::VisitKind;
use bangfu_shared::visit::PolicyArea;

use crate::draft::{SignatureMethod, VisitDraft};

/// A field of the visit form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Kind,
    Time,
    Policies,
    Problems,
    Help,
    Support,
    Deliveries,
    Family,
    Notes,
    Reason,
    Photos,
    Signature,
    WitnessName,
    WitnessRole,
    WitnessReason,
}

impl Field {
    /// Whether the field is free text edited with a cursor.
    pub fn is_text(self) -> bool {
        !matches!(
            self,
            Field::Kind | Field::Policies | Field::Photos | Field::Signature
        )
    }
}

/// The form being filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormState {
    pub draft: VisitDraft,
    pub focus: Field,
    /// Cursor position in the focused text field, in characters.
    pub cursor: usize,
    /// Highlighted policy in the policies field.
    pub policy_cursor: usize,
    /// Highlighted photo in the photos field.
    pub photo_cursor: usize,
    /// Changed since the last save.
    pub dirty: bool,
    /// The draft is in the local store (opened from it, or saved since): only then may
    /// leaving the form say "draft saved".
    pub stored: bool,
    /// The reused images (hashes) the last Ctrl+S warned about: a second Ctrl+S over
    /// the same ones signs all the same.
    pub reuse_warned: Vec<String>,
    /// For an amendment: the town office's review note the correction answers, when one
    /// still asks for it. Shown read-only above the form's status lines, so the helper
    /// need not remember it from the history while correcting.
    pub review_note: Option<String>,
}

impl FormState {
    /// A form over `draft`, focus on the first field.
    pub fn new(draft: VisitDraft) -> Self {
        FormState {
            draft,
            focus: Field::Kind,
            cursor: 0,
            policy_cursor: 0,
            photo_cursor: 0,
            dirty: false,
            stored: false,
            reuse_warned: Vec::new(),
            review_note: None,
        }
    }

    /// The fields shown for this draft, in order.
    pub fn fields(&self) -> Vec<Field> {
        let d = &self.draft;
        let mut f = vec![
            Field::Kind,
            Field::Time,
            Field::Policies,
            Field::Problems,
            Field::Help,
            Field::Support,
            Field::Deliveries,
            Field::Family,
            Field::Notes,
        ];
        if d.amends.is_some() {
            f.push(Field::Reason);
        }
        f.push(Field::Photos);
        if d.kind == VisitKind::Home {
            f.push(Field::Signature);
            if d.signature_method == SignatureMethod::Witness {
                f.extend([Field::WitnessName, Field::WitnessRole, Field::WitnessReason]);
            }
        }
        f
    }

    /// The text of a text field.
    pub fn text(&self, field: Field) -> Option<&str> {
        let d = &self.draft;
        Some(match field {
            Field::Time => &d.at,
            Field::Problems => &d.problems,
            Field::Help => &d.help,
            Field::Support => &d.support,
            Field::Deliveries => &d.deliveries,
            Field::Family => &d.family_changes,
            Field::Notes => &d.notes,
            Field::Reason => &d.reason,
            Field::WitnessName => &d.witness_name,
            Field::WitnessRole => &d.witness_role,
            Field::WitnessReason => &d.witness_reason,
            _ => return None,
        })
    }

    fn text_mut(&mut self, field: Field) -> Option<&mut String> {
        let d = &mut self.draft;
        Some(match field {
            Field::Time => &mut d.at,
            Field::Problems => &mut d.problems,
            Field::Help => &mut d.help,
            Field::Support => &mut d.support,
            Field::Deliveries => &mut d.deliveries,
            Field::Family => &mut d.family_changes,
            Field::Notes => &mut d.notes,
            Field::Reason => &mut d.reason,
            Field::WitnessName => &mut d.witness_name,
            Field::WitnessRole => &mut d.witness_role,
            Field::WitnessReason => &mut d.witness_reason,
            _ => return None,
        })
    }

    /// Moves focus by `delta` fields, wrapping.
    pub fn move_focus(&mut self, delta: isize) {
        let fields = self.fields();
        let n = fields.len() as isize;
        let i = fields.iter().position(|f| *f == self.focus).unwrap_or(0) as isize;
        self.focus = fields[((i + delta).rem_euclid(n)) as usize];
        self.cursor = self
            .text(self.focus)
            .map(|t| t.chars().count())
            .unwrap_or(0);
    }

    /// The most characters the focused field takes ([`Self::insert`] stops there): what
    /// the record allows (备注 4,000, a reason or witness 1,000), and for a list field
    /// (items separated by ；) room for many items. Why: a field the record refuses
    /// anyway only grew, and a long paste without bracketed paste arrived as thousands
    /// of keys (QA s22b F4).
    pub fn limit(field: Field) -> usize {
        use bangfu_shared::visit::{MAX_ITEM_CHARS, MAX_NOTES_CHARS};
        match field {
            Field::Notes => MAX_NOTES_CHARS,
            Field::Problems | Field::Help | Field::Support | Field::Deliveries | Field::Family => {
                10 * MAX_ITEM_CHARS
            }
            _ => MAX_ITEM_CHARS,
        }
    }

    /// Types `s` at the cursor of the focused text field, as much as its [`Self::limit`]
    /// leaves room for; false when some of it did not fit.
    pub fn insert(&mut self, s: &str) -> bool {
        let focus = self.focus;
        let cursor = self.cursor;
        let clean: Vec<char> = s
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .filter(|c| !c.is_control())
            .collect();
        let Some(t) = self.text_mut(focus) else {
            return true;
        };
        let room = Self::limit(focus).saturating_sub(t.chars().count());
        let taken: String = clean.iter().take(room).collect();
        let at = byte_index(t, cursor);
        t.insert_str(at, &taken);
        let n = taken.chars().count();
        self.cursor = cursor + n;
        self.dirty |= n > 0;
        n == clean.len()
    }

    /// Deletes the character before the cursor.
    pub fn backspace(&mut self) {
        let (focus, cursor) = (self.focus, self.cursor);
        if cursor == 0 {
            return;
        }
        if let Some(t) = self.text_mut(focus) {
            let start = byte_index(t, cursor - 1);
            let end = byte_index(t, cursor);
            t.replace_range(start..end, "");
            self.cursor = cursor - 1;
            self.dirty = true;
        }
    }

    /// Deletes the character under the cursor.
    pub fn delete(&mut self) {
        let (focus, cursor) = (self.focus, self.cursor);
        if let Some(t) = self.text_mut(focus)
            && cursor < t.chars().count()
        {
            let start = byte_index(t, cursor);
            let end = byte_index(t, cursor + 1);
            t.replace_range(start..end, "");
            self.dirty = true;
        }
    }

    /// Moves the text cursor, clamped to the text.
    pub fn move_cursor(&mut self, delta: isize) {
        let len = self
            .text(self.focus)
            .map(|t| t.chars().count())
            .unwrap_or(0);
        self.cursor = (self.cursor as isize + delta).clamp(0, len as isize) as usize;
    }

    /// Cursor to the start (`false`) or end (`true`) of the text.
    pub fn cursor_to(&mut self, end: bool) {
        self.cursor = if end {
            self.text(self.focus)
                .map(|t| t.chars().count())
                .unwrap_or(0)
        } else {
            0
        };
    }

    /// Switches between home visit and phone call.
    pub fn toggle_kind(&mut self) {
        self.draft.kind = match self.draft.kind {
            VisitKind::Home => VisitKind::Phone,
            VisitKind::Phone => VisitKind::Home,
        };
        self.dirty = true;
    }

    /// Ticks or unticks a policy.
    pub fn toggle_policy(&mut self, index: usize) {
        if let Some(p) = PolicyArea::ALL.get(index).copied() {
            if let Some(pos) = self.draft.policies.iter().position(|x| *x == p) {
                self.draft.policies.remove(pos);
            } else {
                self.draft.policies.push(p);
                self.draft.policies.sort();
            }
            self.policy_cursor = index;
            self.dirty = true;
        }
    }

    /// Cycles the household signature method; a signature image (or pad strokes) of the
    /// old method no longer applies.
    pub fn cycle_signature_method(&mut self, forward: bool) {
        use SignatureMethod::*;
        let order = [Pad, PaperCard, Witness];
        let i = order
            .iter()
            .position(|m| *m == self.draft.signature_method)
            .unwrap_or(0);
        let next = if forward { (i + 1) % 3 } else { (i + 2) % 3 };
        self.draft.signature_method = order[next];
        self.draft.signature_image = None;
        // Strokes drawn by the household are not the witness's, and the other way round.
        self.draft.pad = None;
        self.dirty = true;
    }

    /// Removes the highlighted photo.
    pub fn remove_photo(&mut self) {
        if self.photo_cursor < self.draft.photos.len() {
            self.draft.photos.remove(self.photo_cursor);
            self.photo_cursor = self
                .photo_cursor
                .min(self.draft.photos.len().saturating_sub(1));
            self.dirty = true;
        }
    }
}

/// Byte offset of the `chars`-th character (or the end).
fn byte_index(s: &str, chars: usize) -> usize {
    s.char_indices()
        .nth(chars)
        .map(|(i, _)| i)
        .unwrap_or(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn editing_handles_multibyte_text() {
        let mut f = FormState::new(VisitDraft::new(1, VisitKind::Home, Utc::now()));
        f.focus = Field::Notes;
        f.insert("帮扶x");
        f.move_cursor(-1);
        f.backspace();
        f.insert("送");
        assert_eq!(f.draft.notes, "帮送x");
        f.cursor_to(false);
        f.delete();
        f.backspace();
        assert_eq!(f.draft.notes, "送x");
        f.cursor_to(true);
        assert!(!f.insert(&"长".repeat(5000)), "not all of it fits");
        assert_eq!(f.draft.notes.chars().count(), 4000);
        assert!(f.draft.notes.starts_with("送x长"));
        assert!(!f.insert("再"), "full");
        f.backspace();
        assert!(f.insert("末"));
        assert!(f.draft.notes.ends_with('末'));
        f.draft.notes = "送x".into();
        f.cursor_to(false);
        f.move_cursor(-100);
        f.move_cursor(100);
        assert_eq!(f.cursor, 2);
    }

    #[test]
    fn witness_fields_appear_only_for_home_visits_with_a_witness() {
        let mut f = FormState::new(VisitDraft::new(1, VisitKind::Home, Utc::now()));
        assert!(!f.fields().contains(&Field::WitnessName));
        f.cycle_signature_method(true);
        f.cycle_signature_method(true);
        assert!(f.fields().contains(&Field::WitnessName));
        f.toggle_kind();
        assert!(!f.fields().contains(&Field::Signature));
        for _ in 0..40 {
            f.move_focus(1);
        }
        f.move_focus(-3);
    }
}
