//! watermeter: counts every liter a house uses, keeps the history in sled,
//! serves a dashboard and emails the owner when too much water flows.
//!
//! See ARCHITECTURE.md for the code map and the invariants.

pub mod alert;
pub mod config;
pub mod ingest;
