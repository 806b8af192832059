//! End-to-end tests: the real `watermeter` binary, real sockets on 127.0.0.1,
//! a temp data directory per test. One test binary, as ripgrep does it.
//! Third-party servers (InfluxDB, Prometheus, mosquitto, VictoriaMetrics) are started by `servers`.

mod pki;
mod servers;
mod util;

mod alerts;
mod alerts_page;
mod auth;
mod bad_input;
mod browser;
mod cdp;
mod channels;
mod cli;
mod clock;
mod compression;
mod corpus;
mod corrections;
mod crash;
mod dashboard;
mod demo;
mod disk;
mod draws;
mod forward;
mod hostile;
mod import;
mod influxql;
mod ingest;
mod integrations;
mod limits;
mod memory;
mod metrics;
mod mqtt;
mod nodemcu;
mod password;
mod powercut;
mod recovery;
mod recovery_notice;
mod report;
mod security;
mod sensors;
mod slow_disk;
mod systemd;
mod udp_allow;
mod usage;
