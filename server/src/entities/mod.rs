//! Schema mirrors of the tables the migrations create. They never leave the server:
//! the API speaks the `bangfu_shared::api` types.

pub mod account;
pub mod attendance_sheet;
pub mod audit;
pub mod auth_token;
pub mod blob;
pub mod device;
pub mod device_anomaly;
pub mod field_change;
pub mod helper;
pub mod household;
pub mod household_exit;
pub mod household_exit_pairing;
pub mod jurisdiction;
pub mod pairing;
pub mod policy;
pub mod record;
pub mod record_blob;
pub mod record_review;
pub mod sync_counter;
pub mod upload;
pub mod visit_fact;
