//! Schema mirrors of the tables the migrations create. They never leave the server:
//! the API speaks the `bangfu_shared::api` types.

pub mod account;
pub mod audit;
pub mod auth_token;
pub mod device;
pub mod helper;
pub mod household;
pub mod jurisdiction;
pub mod pairing;
pub mod policy;
