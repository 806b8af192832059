//! The reading engine: absolute meter registers (a camera reader, a radio meter, an
//! MQTT total) and cumulative counters turned into liters, misread-proof. Pure.
//!
//! **Readings** (the meter's own register, which never goes back):
//! - The first reading only sets the baseline (and the meter reading shown).
//! - A decrease is a misread, not water: ignored and counted. When
//!   [`AGREE`] readings in a row agree on a lower value (each within the meter's
//!   physical flow limit of the one before, none going back), the baseline was
//!   the misread: re-anchor to them, with no water and no negative water.
//! - A rise beyond what the pipe can deliver in the time since the last reading
//!   (`max_flow_l_per_min`) is a misread too: ignored and counted. A burst pipe
//!   below that limit is real water.
//! - A rise is spread over the interval since the last reading as events of at
//!   most 1 L, evenly spaced, the last one at the new reading's time.
//!
//! **Counters** (reset to 0 when the device reboots):
//! - A value below half of the last one is a reboot: everything it shows is new water.
//! - Any other decrease, and any value stamped before the last one, is a stale,
//!   reordered or repeated datagram: ignored (already counted, or to be counted by
//!   the next value).
//! - A rise beyond the physical limit is refused like a reading's.
//!
//! Under loss, reordering, duplication and reboots a counter thus never invents
//! water; it loses only what a device counted before a reboot and never sent.

/// Lower readings in a row that must agree before the baseline moves down.
pub const AGREE: usize = 3;
/// Most events one rise is spread over; a larger rise gets larger events.
const MAX_SPREAD_EVENTS: u64 = 100_000;
/// A rise spread over more than this is marked interpolated (a sender was offline).
pub const INTERPOLATED_AFTER_MS: i64 = 3_600_000;

/// What happened to one value, for the counters on `/metrics` and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The first value: the baseline, no water.
    Baseline,
    /// Water (possibly none, for a repeat of the same value).
    Water,
    /// A reading below the baseline: a misread, ignored.
    Decrease,
    /// More than the pipe can deliver since the last value: ignored.
    Jump,
    /// A counter value older than the last one, or slightly below it: ignored.
    Stale,
    /// Several readings agreed on a lower value: the baseline moved to them.
    Reanchored,
    /// A counter fell below half of its last value: the device restarted.
    Reboot,
}

impl Outcome {
    /// The label on `/metrics` for an ignored value; `None` for accepted ones.
    pub fn ignored_reason(self) -> Option<&'static str> {
        match self {
            Outcome::Decrease => Some("decrease"),
            Outcome::Jump => Some("jump"),
            Outcome::Stale => Some("stale"),
            _ => None,
        }
    }
}

/// The engine's position for one meter, kept in the store between batches.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Position {
    /// The last accepted value in liters, and its time.
    pub last: Option<(f64, i64)>,
    /// Readings below `last` seen since, oldest first (at most [`AGREE`]).
    pub lower: Vec<(f64, i64)>,
}

/// The result of one value: the liters as events (time, milliliters) and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub outcome: Outcome,
    pub events: Vec<(i64, u64)>,
    /// `(from, to]` when the events stand for a rise spread over more than
    /// [`INTERPOLATED_AFTER_MS`] (a sender that was offline): the store marks the
    /// range, so draw and leak detection can ignore it.
    pub interpolated: Option<(i64, i64)>,
}

impl Step {
    fn none(outcome: Outcome) -> Step {
        Step {
            outcome,
            events: Vec::new(),
            interpolated: None,
        }
    }
}

/// The most liters that can flow in `elapsed_ms` at `max_l_per_min`; at least one
/// minute's worth, so two readings in the same second still allow a small rise.
fn limit_l(max_l_per_min: f64, elapsed_ms: i64) -> f64 {
    max_l_per_min * (elapsed_ms.max(60_000) as f64 / 60_000.0)
}

impl Position {
    /// One absolute reading, in liters, at `ts_ms`.
    pub fn reading(&mut self, value_l: f64, ts_ms: i64, max_l_per_min: f64) -> Step {
        let Some((last, last_ts)) = self.last else {
            self.last = Some((value_l, ts_ms));
            return Step::none(Outcome::Baseline);
        };
        if ts_ms < last_ts {
            // Older than the baseline: a late repeat, reordered on the way; the
            // newer baseline already stands for what flowed until then.
            return Step::none(Outcome::Stale);
        }
        if value_l < last {
            return self.lower_reading(value_l, ts_ms, max_l_per_min);
        }
        let rise = value_l - last;
        if rise > limit_l(max_l_per_min, ts_ms - last_ts) {
            return Step::none(Outcome::Jump);
        }
        self.lower.clear();
        self.last = Some((value_l, ts_ms));
        spread(rise, last_ts, ts_ms)
    }

    fn lower_reading(&mut self, value_l: f64, ts_ms: i64, max_l_per_min: f64) -> Step {
        // A repeat of the run's last reading (a resent datagram) is no new witness.
        if self.lower.last() == Some(&(value_l, ts_ms)) {
            return Step::none(Outcome::Decrease);
        }
        // The run of lower readings continues when this one is later, neither goes
        // back nor jumps from the one before; otherwise it starts anew with this one.
        let continues = self.lower.last().is_some_and(|&(v, t)| {
            ts_ms > t && value_l >= v && value_l - v <= limit_l(max_l_per_min, ts_ms - t)
        });
        if !continues {
            self.lower.clear();
        }
        self.lower.push((value_l, ts_ms));
        if self.lower.len() >= AGREE {
            self.last = Some((value_l, ts_ms));
            self.lower.clear();
            return Step::none(Outcome::Reanchored);
        }
        Step::none(Outcome::Decrease)
    }

    /// One cumulative counter value, in liters, at `ts_ms`.
    pub fn counter(&mut self, value_l: f64, ts_ms: i64, max_l_per_min: f64) -> Step {
        let Some((last, last_ts)) = self.last else {
            self.last = Some((value_l, ts_ms));
            return Step::none(Outcome::Baseline);
        };
        if ts_ms < last_ts {
            return Step::none(Outcome::Stale);
        }
        if value_l < last {
            if value_l >= last / 2.0 {
                return Step::none(Outcome::Stale);
            }
            // Restarted from 0: what it counted since is new water, if plausible.
            if value_l > limit_l(max_l_per_min, ts_ms - last_ts) {
                return Step::none(Outcome::Jump);
            }
            self.last = Some((value_l, ts_ms));
            let mut step = spread(value_l, last_ts, ts_ms);
            step.outcome = Outcome::Reboot;
            return step;
        }
        let rise = value_l - last;
        if rise > limit_l(max_l_per_min, ts_ms - last_ts) {
            return Step::none(Outcome::Jump);
        }
        self.last = Some((value_l, ts_ms));
        spread(rise, last_ts, ts_ms)
    }
}

/// `liters` as events of at most 1 L, evenly spaced over `(from_ms, to_ms]`, the
/// last at `to_ms`; milliliters add up exactly. Pure.
pub fn spread(liters: f64, from_ms: i64, to_ms: i64) -> Step {
    let ml = crate::meter::liters_to_ml(liters);
    if ml == 0 {
        return Step::none(Outcome::Water);
    }
    let span = (to_ms - from_ms).max(0);
    let n = ml.div_ceil(1000).clamp(1, MAX_SPREAD_EVENTS);
    // Without time between the two values all of it lands at `to_ms`.
    let n = if span == 0 { 1 } else { n };
    let events = (1..=n)
        .map(|i| {
            let ts = from_ms + (span as i128 * i as i128 / n as i128) as i64;
            let share = ml * i / n - ml * (i - 1) / n;
            (ts, share)
        })
        .collect();
    Step {
        outcome: Outcome::Water,
        events,
        interpolated: (span > INTERPOLATED_AFTER_MS).then_some((from_ms, to_ms)),
    }
}

/// The key that marks `(from, …]` of meter `meter` as interpolated.
pub fn interpolated_key(meter: u16, from_ms: i64) -> Vec<u8> {
    let mut k = vec![super::codec::prefix::INTERPOLATED];
    k.extend_from_slice(&meter.to_be_bytes());
    k.extend_from_slice(&from_ms.to_be_bytes());
    k
}

/// The stored form: last value and time, then the lower run.
pub fn encode(p: &Position) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + 16 * p.lower.len());
    let (v, t) = p.last.unwrap_or((f64::NAN, i64::MIN));
    out.extend_from_slice(&v.to_be_bytes());
    out.extend_from_slice(&t.to_be_bytes());
    out.push(p.lower.len() as u8);
    for (v, t) in &p.lower {
        out.extend_from_slice(&v.to_be_bytes());
        out.extend_from_slice(&t.to_be_bytes());
    }
    out
}

pub fn decode(b: &[u8]) -> Option<Position> {
    let word = |i: usize| -> Option<[u8; 8]> { b.get(i..i + 8)?.try_into().ok() };
    let v = f64::from_be_bytes(word(0)?);
    let t = i64::from_be_bytes(word(8)?);
    let n = usize::from(*b.get(16)?);
    let mut lower = Vec::with_capacity(n);
    for k in 0..n {
        let at = 17 + 16 * k;
        lower.push((
            f64::from_be_bytes(word(at)?),
            i64::from_be_bytes(word(at + 8)?),
        ));
    }
    Some(Position {
        last: (!v.is_nan()).then_some((v, t)),
        lower,
    })
}

#[cfg(test)]
#[path = "readings_tests.rs"]
mod tests;
