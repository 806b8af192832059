//! Inputs: everything that turns the outside world into [`Sample`]s for the store.
//!
//! Network inputs (UDP datagrams, HTTP `/write` bodies) are line protocol; the GPIO
//! input counts S0 pulses. None of them touches the store directly: they hand
//! samples to the store's writer.

pub mod gpio;
pub mod household;
pub mod influx_csv;
pub mod line_protocol;
pub mod mmsg;

/// Index of a configured meter (its position in `Config::meters`).
pub type MeterIdx = u16;

/// One observation from any input, before the store turns counters into liters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub meter: MeterIdx,
    /// Unix time in milliseconds (UTC).
    pub ts_ms: i64,
    pub value: SampleValue,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SampleValue {
    /// This many liters flowed at `ts_ms` (a pulse, or a `liters=` point).
    Liters(f64),
    /// A cumulative counter in liters (`total=…i`); its differences are the liters.
    Counter(f64),
}

pub mod points;
pub mod stats;
pub mod udp;
