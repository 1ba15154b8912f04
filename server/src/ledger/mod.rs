//! The pairing ledger as town offices keep it (帮扶责任工作台账): reading their CSV and
//! XLSX files, importing them all-or-nothing, and exporting the same layout back.

pub mod export;
pub mod formula;
#[cfg(any(test, feature = "testing"))]
pub mod handmade_xlsx;
pub mod import;
pub mod read;

pub use export::{ExportFormat, export};
pub use import::{ImportOptions, import};
