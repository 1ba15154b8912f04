//! The terminal event loop: read an event, map it to an [`Action`], `update`, render.
//! Generic over the ratatui backend, so tests run the same loop on a `TestBackend`.
//! A panic hook restores the terminal (raw mode, alternate screen, mouse capture)
//! before the panic message prints.

use std::io;
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::{
    self, DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event,
};
use ratatui::crossterm::execute;

use crate::app::{Action, App};
use crate::ui;

/// How long the loop waits for input before a `Tick` (autosave).
const TICK: Duration = Duration::from_millis(500);

/// Runs the app in the real terminal until the user quits.
pub fn run(app: &mut App) -> io::Result<()> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(io::stdout(), DisableMouseCapture, DisableBracketedPaste);
        previous(info);
    }));
    // `try_init` enters raw mode and the alternate screen, and adds ratatui's own hook
    // (leave both) in front of ours.
    let mut terminal = ratatui::try_init()?;
    execute!(io::stdout(), EnableMouseCapture, EnableBracketedPaste)?;
    if let Ok(size) = terminal.size() {
        app.update(Action::Resize {
            width: size.width,
            height: size.height,
        });
    }
    let result = event_loop(&mut terminal, app, || {
        if event::poll(TICK)? {
            event::read().map(Some)
        } else {
            Ok(None)
        }
    });
    let _ = execute!(io::stdout(), DisableMouseCapture, DisableBracketedPaste);
    ratatui::restore();
    result
}

/// The loop itself: `next_event` returns `None` when no input came within a tick.
pub fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    mut next_event: impl FnMut() -> io::Result<Option<Event>>,
) -> io::Result<()> {
    while !app.quit {
        terminal
            .draw(|f| ui::render(app, f))
            .map_err(|e| io::Error::other(e.to_string()))?;
        match next_event()? {
            Some(ev) => {
                if let Some(action) = Action::from_event(ev) {
                    app.update(action);
                }
            }
            None => app.update(Action::Tick),
        }
    }
    Ok(())
}
