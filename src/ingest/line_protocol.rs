//! InfluxDB line protocol parser (placeholder; the full parser lands next).

/// Timestamp precision of a batch of lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
}
