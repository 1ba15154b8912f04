//! Sync from the terminal app: `s` starts the engine on a background thread with its
//! own runtime and its own connection to the store (SQLite in WAL mode takes both);
//! the engine's progress comes back over a channel that `update` drains on every
//! action, the `Tick`s included. Rendering only reads [`SyncView`].

use std::sync::mpsc;

use super::App;
use crate::client::Client;
use crate::error::ClientError;
use crate::sync::{SyncProgress, SyncReport};

/// What the sync thread tells the app.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one report per sync run, moved once over a channel: boxing buys nothing"
)]
pub enum SyncEvent {
    Progress(SyncProgress),
    /// The run ended: its report, or why it stopped.
    Finished(Result<SyncReport, SyncStopped>),
}

/// Why a run stopped, as the interface says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStopped {
    pub text: String,
    /// Whether the next run goes on from here by itself; not after the server ended
    /// the session (a login first), where "the next sync resumes" misled a revoked
    /// device's helper (QA s32c W8).
    pub resumes: bool,
}

impl From<&str> for SyncStopped {
    fn from(text: &str) -> Self {
        SyncStopped {
            text: text.into(),
            resumes: true,
        }
    }
}

impl SyncStopped {
    fn of(e: &ClientError, lang: crate::i18n::Lang) -> Self {
        SyncStopped {
            text: lang.error(e),
            resumes: !matches!(e, ClientError::SessionExpired | ClientError::DeviceRevoked),
        }
    }
}

/// The sync as the interface shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncView {
    pub running: bool,
    /// The last progress heard while running.
    pub progress: Option<SyncProgress>,
}

impl App {
    /// Starts a sync in the background, unless one is running.
    pub fn start_sync(&mut self) {
        if self.sync.running {
            self.info(self.lang.texts().sync_running);
            return;
        }
        let (tx, rx) = mpsc::channel();
        let data = self.client.data_dir().clone();
        let limits = self.client.photos().limits();
        let options = self.sync_options.clone();
        let lang = self.lang;
        let spawned = std::thread::Builder::new()
            .name("bangfu-sync".into())
            .spawn(move || {
                let progress_tx = tx.clone();
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| SyncStopped::from(e.to_string().as_str()))
                    .and_then(|rt| {
                        rt.block_on(async {
                            let client = Client::open(data, limits).await?;
                            let report = client
                                .sync(&options, &move |p: &SyncProgress| {
                                    let _ = progress_tx.send(SyncEvent::Progress(p.clone()));
                                })
                                .await;
                            client.store().clone().close().await.ok();
                            report
                        })
                        .map_err(|e: ClientError| SyncStopped::of(&e, lang))
                    });
                let _ = tx.send(SyncEvent::Finished(result));
            });
        match spawned {
            Ok(_) => {
                self.sync = SyncView {
                    running: true,
                    progress: None,
                };
                self.sync_rx = Some(rx);
            }
            Err(e) => self.fail(e),
        }
    }

    /// Applies what the sync thread sent since the last action.
    pub(super) fn poll_sync(&mut self) {
        let Some(rx) = &self.sync_rx else {
            return;
        };
        let events: Vec<SyncEvent> = rx.try_iter().collect();
        let disconnected =
            events.is_empty() && matches!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
        for e in events {
            self.apply_sync_event(e);
        }
        if disconnected && self.sync.running {
            self.apply_sync_event(SyncEvent::Finished(Err("sync stopped".into())));
        }
    }

    /// Applies one event from the sync thread (public so tests can feed them).
    pub fn apply_sync_event(&mut self, event: SyncEvent) {
        match event {
            SyncEvent::Progress(p) => {
                self.sync.running = true;
                self.sync.progress = Some(p);
            }
            SyncEvent::Finished(result) => {
                self.sync = SyncView::default();
                self.sync_rx = None;
                // Pull may have brought households, a new policy and recovered visits.
                self.policy = self.block(self.client.policy()).ok().or(self.policy.take());
                self.reload_households();
                if let super::Screen::History { household_id } = &self.screen {
                    let id = *household_id;
                    self.reload_history(id);
                } else if let super::Screen::Detail { household_id } = &self.screen {
                    let id = Some(*household_id);
                    self.reload_history(id);
                } else if self.screen == super::Screen::Sheet {
                    self.reload_sheets();
                }
                match result {
                    Ok(report) => {
                        // The account's history has come: "never" and "overdue" now
                        // stand for what the server holds too.
                        self.history_pulled = true;
                        self.clock_offset = report.clock_offset_secs;
                        // On the sheet screen, what became of the sheet is what the
                        // helper waits for: said first (the line is cut at its end).
                        let sheets = self.lang.sync_sheet_results(&report);
                        let sheets_first =
                            self.screen == super::Screen::Sheet && !sheets.is_empty();
                        let mut text = if sheets_first {
                            self.lang.sync_summary_without_sheets(&report)
                        } else {
                            self.lang.sync_summary(&report)
                        };
                        // Visits that do not count come first: the status line is one
                        // row, and this is what the helper has to act on.
                        let not_counted = self.lang.sync_not_counted(report.not_counted);
                        if let Some(warning) = &not_counted {
                            text = format!("⚠ {warning} · {text}");
                        }
                        // No sign before it: ☰ is two columns wide to the screen code
                        // (Unicode 16) and one to many terminals, which left a stray
                        // border cell behind it (QA s33d S7); the words say it.
                        if let Some(decided) = self.lang.sync_decisions(report.decisions_received) {
                            text = format!("{decided} · {text}");
                        }
                        let returned = self.lang.sync_returned(report.returned_for_correction);
                        if let Some(returned) = &returned {
                            text = format!("✎ {returned} · {text}");
                        }
                        if sheets_first {
                            text = format!("{} · {text}", sheets.join(" · "));
                        }
                        // A wrong clock spoils every visit still to come: said first.
                        if let Some(offset) = report.clock_offset_secs {
                            text = format!("⚠ {} · {text}", self.lang.clock_off(offset));
                        }
                        if report.clock_offset_secs.is_none()
                            && report.rejected.is_empty()
                            && report.conflicts.is_empty()
                            && report.problems.is_empty()
                            && report.sheets_rejected.is_empty()
                            && not_counted.is_none()
                            && returned.is_none()
                        {
                            self.info(text);
                        } else {
                            self.fail(text);
                        }
                        // What comes first matters most: a narrow line keeps it (QA
                        // s22d F3 lost the count of visits that do not count).
                        if let Some(s) = &mut self.status {
                            s.leads = true;
                        }
                    }
                    Err(e) => {
                        // A revoked device's sync will not go on next time: said alone.
                        self.revoked = self
                            .block(self.client.store().device_revoked())
                            .unwrap_or(false);
                        let t = self.lang.texts();
                        if self.revoked {
                            self.fail(e.text);
                        } else if e.resumes {
                            self.fail(format!("{}{}", t.sync_failed, e.text));
                        } else {
                            self.fail(format!("{}{}", t.sync_failed_login, e.text));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn only_a_run_the_server_ended_waits_for_a_login() {
        assert!(!SyncStopped::of(&ClientError::SessionExpired, Lang::Zh).resumes);
        assert!(!SyncStopped::of(&ClientError::DeviceRevoked, Lang::Zh).resumes);
        assert!(SyncStopped::of(&ClientError::Network("cut".into()), Lang::Zh).resumes);
    }
}
