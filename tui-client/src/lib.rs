//! Bangfu's offline field client.
//!
//! The core — [`client::Client`] over a local SQLite [`store`], the device key in
//! [`signing`], [`photos`], the [`signature_pad`] and the [`sync`] engine — has no
//! terminal dependency, so a handheld device's shell or a mobile app can embed it
//! (`default-features = false`).
//! The `tui` feature adds the ratatui interface ([`app`] state and update, [`ui`]
//! rendering, [`tui`] event loop); the `cli` feature the `bangfu` binary.

pub mod api;
pub mod client;
pub mod config;
pub mod draft;
pub mod error;
pub mod flags;
pub mod i18n;
pub mod photos;
pub mod problem;
pub mod sheets;
pub mod signature_pad;
pub mod signing;
pub mod store;
pub mod sync;
pub mod windows;

#[cfg(feature = "tui")]
pub mod app;
#[cfg(feature = "tui")]
pub mod tui;
#[cfg(feature = "tui")]
pub mod ui;

pub use client::{Client, EndedHousehold, HouseholdOverview, LoginParams, LoginSummary};
pub use config::{DataDir, Limits};
pub use error::{ClientError, Result};
pub use sheets::SheetView;
pub use sync::{SyncOptions, SyncProgress, SyncReport};
