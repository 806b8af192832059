//! End-to-end tests: the real `watermeter` binary, real sockets on 127.0.0.1,
//! a temp data directory per test. One test binary, as ripgrep does it.
//! Third-party servers (InfluxDB, Prometheus, mosquitto) are started by `servers`.

mod servers;
mod util;

mod auth;
mod browser;
mod cdp;
mod cli;
mod dashboard;
mod forward;
mod import;
mod ingest;
mod metrics;
mod mqtt;
mod nodemcu;
mod security;
mod usage;
