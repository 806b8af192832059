//! Inputs: everything that turns the outside world into [`Sample`]s for the store.
//!
//! Network inputs (UDP datagrams, HTTP `/write` bodies) are line protocol; the GPIO
//! input counts S0 pulses. None of them touches the store directly: they hand
//! samples to the store's writer.

pub mod gpio;
pub mod household;
pub mod influx_csv;
/// The parser lives on the ground floor (config and the store's callers use it too).
pub use crate::line_protocol;
pub mod mmsg;

pub use crate::meter::{MeterIdx, Sample, SampleValue};

pub mod points;
pub mod stats;
pub mod udp;
