//! Terminal input turned into the app's actions. One place knows crossterm's event
//! types; `update` only sees [`Action`]s, so tests drive the app without a terminal.

use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

/// What the user did, independent of the screen. Each screen gives it its meaning
/// (`Char('q')` quits the list but types a `q` in a text field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Char(char),
    Enter,
    /// Esc: back, cancel.
    Back,
    /// Tab.
    Next,
    /// Shift+Tab.
    Prev,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    Backspace,
    Delete,
    /// Ctrl+S: sign and finish the form.
    Sign,
    /// Ctrl+C: leave at once (drafts are already saved).
    Quit,
    /// Bracketed paste.
    Paste(String),
    /// Left button (or touch) pressed at a screen cell.
    MouseDown {
        col: u16,
        row: u16,
    },
    /// Dragged with the button held.
    MouseDrag {
        col: u16,
        row: u16,
    },
    MouseUp,
    Resize {
        width: u16,
        height: u16,
    },
    /// Time passed with no input (autosave).
    Tick,
}

impl Action {
    /// Maps a terminal event; `None` for events the app ignores (key releases, focus…).
    pub fn from_event(event: Event) -> Option<Action> {
        match event {
            Event::Key(key) => Self::from_key(key),
            Event::Mouse(m) => Self::from_mouse(m),
            Event::Paste(s) => Some(Action::Paste(s)),
            Event::Resize(width, height) => Some(Action::Resize { width, height }),
            _ => None,
        }
    }

    fn from_key(key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        Some(match key.code {
            KeyCode::Char('s') | KeyCode::Char('S') if ctrl => Action::Sign,
            KeyCode::Char('c') | KeyCode::Char('C') if ctrl => Action::Quit,
            KeyCode::Char(_) if ctrl => return None,
            KeyCode::Char(c) => Action::Char(c),
            KeyCode::Enter => Action::Enter,
            KeyCode::Esc => Action::Back,
            KeyCode::Tab => Action::Next,
            KeyCode::BackTab => Action::Prev,
            KeyCode::Up => Action::Up,
            KeyCode::Down => Action::Down,
            KeyCode::Left => Action::Left,
            KeyCode::Right => Action::Right,
            KeyCode::Home => Action::Home,
            KeyCode::End => Action::End,
            KeyCode::PageUp => Action::PageUp,
            KeyCode::PageDown => Action::PageDown,
            KeyCode::Backspace => Action::Backspace,
            KeyCode::Delete => Action::Delete,
            KeyCode::F(2) => Action::Sign,
            _ => return None,
        })
    }

    fn from_mouse(m: MouseEvent) -> Option<Action> {
        let (col, row) = (m.column, m.row);
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => Some(Action::MouseDown { col, row }),
            MouseEventKind::Drag(MouseButton::Left) => Some(Action::MouseDrag { col, row }),
            MouseEventKind::Up(MouseButton::Left) => Some(Action::MouseUp),
            MouseEventKind::ScrollUp => Some(Action::Up),
            MouseEventKind::ScrollDown => Some(Action::Down),
            _ => None,
        }
    }
}
