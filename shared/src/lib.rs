//! Bangfu's shared vocabulary: the domain types, the ledger's validation rules, the
//! per-county policy and the API types the server and every client speak.
//!
//! This crate does no I/O (no database, network or terminal), so any client — the
//! terminal one, a handheld shell, a mobile app — can embed it and agree with the
//! server byte for byte.

pub mod api;
pub mod domain;
pub mod error;
pub mod ledger;
pub mod policy;
pub mod report;
pub mod sync;
pub mod visit;

pub use domain::{HouseholdStatus, JurisdictionLevel, PairingRole, Role, VisitKind};
pub use error::SharedError;
pub use policy::{Policy, PolicyPreset};
