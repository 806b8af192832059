//! End-to-end tests: the real `watermeter` binary, real sockets on 127.0.0.1,
//! a temp data directory per test. One test binary, as ripgrep does it.

mod util;

mod bad_input;
mod cli;
mod corpus;
mod crash;
mod disk;
mod ingest;
mod limits;
mod password;
mod recovery;
mod udp_allow;
mod usage;
