//! The terminal app's state and its update function: `Action → update(&mut App)`;
//! rendering (`crate::ui`) only reads the state. The app drives the offline core
//! ([`Client`]) synchronously through a tokio runtime: every call is a local SQLite or
//! file operation, except the login screen's. Sync runs on a background thread and
//! reports over a channel ([`SyncEvent`]).

mod action;
pub mod chooser;
pub mod form;
mod sheet;
mod sync;
#[cfg(test)]
pub(crate) mod testing;
mod update;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bangfu_shared::report::Quarter;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use action::Action;
use chooser::Chooser;
use form::FormState;
pub use sync::{SyncEvent, SyncStopped, SyncView};

use crate::client::{Client, EndedHousehold, HouseholdOverview};
use crate::draft::VisitDraft;
use crate::i18n::Lang;
use crate::photos::HalfBlocks;
use crate::sheets::SheetView;
use crate::signature_pad::SignaturePad;
use crate::store::VisitRow;

/// Which screen is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    Login(LoginForm),
    Households,
    Detail {
        household_id: i64,
    },
    Form(Box<FormState>),
    History {
        household_id: Option<i64>,
    },
    Drafts,
    /// The second helper's quarterly attendance sheet (考勤表).
    Sheet,
}

/// A dialog over the current screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Chooser(Chooser),
    Pad(SignaturePad),
    Void {
        visit_id: Uuid,
        reason: String,
    },
    /// Editing the remark of a sheet row.
    Remark {
        quarter: Quarter,
        household_id: i64,
        text: String,
    },
    /// Asking before the sheet is signed and queued.
    ConfirmSubmit {
        quarter: Quarter,
    },
    /// Asking before a draft is thrown away (`x` on the drafts screen): a draft can hold
    /// the household's signature on the pad, which cannot be had again once the helper
    /// has left the village. Only `y` discards.
    ConfirmDiscard {
        draft: Box<VisitDraft>,
    },
    /// Asking whether to continue a household's unfinished draft of another day (its
    /// visit time is that day's) or to start a fresh form.
    ResumeDraft {
        draft: Box<VisitDraft>,
    },
}

/// The login screen's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginForm {
    pub server: String,
    pub username: String,
    pub password: String,
    pub code: String,
    /// 0 server, 1 username, 2 password, 3 code.
    pub focus: usize,
}

/// The most visits the history screen loads, newest first; the title says when there
/// may be more.
pub const HISTORY_LIMIT: u64 = 500;

/// Where "now" comes from: the system clock, or a fixed instant for tests and demos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    System,
    Fixed(DateTime<Utc>),
}

impl Clock {
    pub fn now(self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => t,
        }
    }
}

/// A message in the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
    /// Cut at its end when too long, not in its middle: a message that says what
    /// matters first (a sync's result: the sheet, the visits that do not count, then
    /// the tallies), where most messages end with what they are about (a file's name).
    pub leads: bool,
}

/// The whole state of the terminal app.
pub struct App {
    pub lang: Lang,
    pub clock: Clock,
    client: Client,
    rt: Arc<tokio::runtime::Runtime>,
    pub screen: Screen,
    /// Screens to return to with Esc.
    pub back: Vec<Screen>,
    pub overlay: Option<Overlay>,
    pub households: Vec<HouseholdOverview>,
    /// Households whose pairing ended: not in the list to visit, but their names,
    /// visits and drafts stay reachable.
    pub ended: Vec<EndedHousehold>,
    /// The county policy downloaded at login (what is due, how many photos count).
    pub policy: Option<bangfu_shared::Policy>,
    pub selected: usize,
    pub history: Vec<VisitRow>,
    pub history_selected: usize,
    /// How far the selected visit's lines are scrolled (Tab steps on; QA s30d P1).
    pub history_scroll: u16,
    pub drafts: Vec<VisitDraft>,
    pub drafts_selected: usize,
    /// Pulled attendance sheets, the newest quarter first; the one shown; its row.
    pub sheets: Vec<SheetView>,
    pub sheet_index: usize,
    pub sheet_selected: usize,
    /// Whether the arrow keys scroll the selected row's summary (Tab) instead of moving
    /// through the rows; and the summary's first line shown.
    pub sheet_summary_focus: bool,
    pub sheet_scroll: u16,
    pub status: Option<Status>,
    pub quit: bool,
    /// The terminal's size, for mapping mouse positions to the signature pad.
    pub size: (u16, u16),
    /// Terminal pictures of stored images, by hash (filled by `update`, read by `ui`).
    pub thumbs: HashMap<String, HalfBlocks>,
    /// The chooser starts where the last photo came from (at first, the directory
    /// `bangfu` was started from: where the helper put the photos).
    pub last_dir: PathBuf,
    /// Whether a sync has brought the account's history yet
    /// ([`Client::history_pulled`]); until then the interface says the visits on the
    /// server are not on the device.
    pub history_pulled: bool,
    /// How far the device's clock was off the server's at the last login or sync, when
    /// beyond the tolerance: the status line says so until a sync finds it right, as
    /// what is signed meanwhile would not count (QA s26d F8).
    pub clock_offset: Option<i64>,
    /// Whether a login heard this device's key was revoked: the title says so, and no
    /// visit form opens (QA s30c N2).
    pub revoked: bool,
    /// Whether the account is a second helper's: only they fill in the attendance
    /// sheet (`a`).
    pub second_helper: bool,
    /// When the open form was last saved as a draft.
    last_save: Option<std::time::Instant>,
    /// The leaving key (Esc, Ctrl+C) whose draft save just failed: pressed again, it
    /// leaves without the unsaved edits, so a broken store cannot trap the helper.
    unsaved_leave: Option<Action>,
    /// The background sync, as shown (`s` starts one).
    pub sync: SyncView,
    /// Records on the device by sync state (the title bar shows what is left).
    pub sync_counts: crate::store::SyncCounts,
    /// How the background sync runs (tests shorten the retries).
    pub sync_options: crate::sync::SyncOptions,
    sync_rx: Option<std::sync::mpsc::Receiver<SyncEvent>>,
}

impl App {
    /// An app over `client`; shows the login screen when the device never logged in.
    pub fn new(
        client: Client,
        rt: Arc<tokio::runtime::Runtime>,
        lang: Lang,
        clock: Clock,
        size: (u16, u16),
    ) -> Self {
        let last_dir = std::env::current_dir()
            .ok()
            .or_else(dirs::home_dir)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut app = App {
            lang,
            clock,
            client,
            rt,
            screen: Screen::Households,
            back: Vec::new(),
            overlay: None,
            households: Vec::new(),
            ended: Vec::new(),
            policy: None,
            selected: 0,
            history: Vec::new(),
            history_selected: 0,
            history_scroll: 0,
            drafts: Vec::new(),
            drafts_selected: 0,
            sheets: Vec::new(),
            sheet_index: 0,
            sheet_selected: 0,
            sheet_summary_focus: false,
            sheet_scroll: 0,
            status: None,
            quit: false,
            size,
            thumbs: HashMap::new(),
            last_dir,
            history_pulled: true,
            clock_offset: None,
            revoked: false,
            second_helper: false,
            last_save: None,
            unsaved_leave: None,
            sync: SyncView::default(),
            sync_counts: crate::store::SyncCounts::default(),
            sync_options: crate::sync::SyncOptions::default(),
            sync_rx: None,
        };
        app.start();
        app
    }

    /// The offline core.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The runtime the app drives the core with (the store's pool lives on it).
    pub fn runtime(&self) -> &Arc<tokio::runtime::Runtime> {
        &self.rt
    }

    /// Runs a core operation to completion.
    fn block<T>(&self, fut: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(fut)
    }

    /// The household shown in lists by id.
    pub fn household(&self, id: i64) -> Option<&HouseholdOverview> {
        self.households.iter().find(|h| h.detail.summary.id == id)
    }

    /// A household whose pairing ended, by id.
    pub fn ended_household(&self, id: i64) -> Option<&EndedHousehold> {
        self.ended.iter().find(|h| h.detail.summary.id == id)
    }

    /// Whether this helper fills in an attendance sheet (附件3): a second helper's
    /// account, or a helper paired as second helper with any household on the list
    /// (the sheet's rows are those households). A first helper is told it is not theirs.
    pub fn fills_sheet(&self) -> bool {
        self.second_helper
            || self
                .households
                .iter()
                .any(|h| h.role == Some(bangfu_shared::PairingRole::Second))
    }

    /// The attendance sheet shown on the sheet screen.
    pub fn current_sheet(&self) -> Option<&SheetView> {
        self.sheets.get(self.sheet_index)
    }
}
