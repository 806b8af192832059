//! watermeter: counts every liter a house uses, keeps the history in sled,
//! serves a dashboard and emails the owner when too much water flows.
//!
//! See ARCHITECTURE.md for the code map and the invariants.

pub mod alert;
pub mod app;
pub mod buckets;
pub mod clock;
pub mod compare;
pub mod config;
pub mod demo;
pub mod draws;
pub mod figures;
pub mod forward;
pub mod http_client;
pub mod influxql;
pub mod ingest;
pub mod line_protocol;
pub mod meter;
pub mod mqtt;
pub mod notify;
pub mod password;
pub mod report;
pub mod store;
pub mod systemd;
pub mod tariff;
pub mod tls_client;
pub mod transfer;
pub mod web;
pub mod words;

#[cfg(test)]
mod layers_tests;
