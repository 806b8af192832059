//! The meter vocabulary every layer shares: a configured meter's index, one
//! observation from any input ([`Sample`]), and milliliters from liters. Imports
//! nothing from the crate; everything may import it.

/// Index of a configured meter (its position in `Config::meters`).
pub type MeterIdx = u16;

/// One observation from any input, before the store turns counters into liters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub meter: MeterIdx,
    /// Unix time in milliseconds (UTC); or an unplaced stamp (see `clock`).
    pub ts_ms: i64,
    pub value: SampleValue,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SampleValue {
    /// This many liters flowed at `ts_ms` (a pulse, or a `liters=` point).
    Liters(f64),
    /// A cumulative counter in liters (`total=…i`) that restarts from 0 when its
    /// device reboots; its differences are the liters.
    Counter(f64),
    /// The meter's own absolute register in liters (a camera reader's or a radio
    /// meter's reading); it never goes back, so a lower value is a misread.
    Reading(f64),
}

/// Liters as whole milliliters (the store's unit); nothing for a value that is not
/// a positive number.
pub fn liters_to_ml(liters: f64) -> u64 {
    if liters.is_finite() && liters > 0.0 {
        (liters * 1000.0).round() as u64
    } else {
        0
    }
}
