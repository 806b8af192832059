//! What each alert kind measures: pure functions from usage to a [`Measurement`].
//!
//! Nothing here knows about state, mail or the store: a rule and a [`UsageView`]
//! at `now` give a number and whether it breaches the rule. The state machine in
//! `state.rs` turns a sequence of measurements into notifications.

use chrono::{Duration as ChronoDuration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

use crate::config::{AlertKind, AlertRule};

/// The usage queries the rules need; the store implements it over its rollups.
///
/// Every range is `from_ms < t <= to_ms` (in milliseconds that is `[from+1, to+1)`),
/// so an event at exactly `now` counts when a rule is evaluated right after it.
pub trait UsageView {
    /// Sum of liters of the events in `(from_ms, to_ms]`.
    fn liters_between(&self, meter: &str, from_ms: i64, to_ms: i64) -> f64;
    /// Time of the newest event with liters > 0.
    fn last_event_ms(&self, meter: &str) -> Option<i64>;
    /// Time of the newest sample of any kind, including a counter that did not move:
    /// proof that the sender is alive (`no_data`).
    fn last_seen_ms(&self, meter: &str) -> Option<i64>;
    /// Times of the events in `(from_ms, to_ms]`, ascending (`continuous_flow`).
    fn event_times(&self, meter: &str, from_ms: i64, to_ms: i64) -> Vec<i64>;
}

/// One evaluation of a rule's condition at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Liters (`volume`, `night_use`) or seconds (`continuous_flow`, `no_data`).
    pub value: f64,
    /// The condition holds: the alert should be firing.
    pub breached: bool,
}

/// Length of the "current flow" shown in mails: liters in the last 5 minutes / 5.
pub const FLOW_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Measure `rule` at `now_ms`. `firing_since_ms` (from the alert's state) lets
/// `continuous_flow` look back far enough to report the whole length of a flow that
/// is already firing.
pub fn measure(
    rule: &AlertRule,
    usage: &dyn UsageView,
    now_ms: i64,
    tz: Tz,
    firing_since_ms: Option<i64>,
) -> Measurement {
    let meter = rule.meter.as_str();
    match &rule.kind {
        AlertKind::Volume {
            window,
            threshold_liters,
        } => {
            let liters = usage.liters_between(meter, now_ms - ms(*window), now_ms);
            Measurement {
                value: liters,
                breached: liters > *threshold_liters,
            }
        }
        AlertKind::ContinuousFlow { duration, quiet } => {
            // A firing flow began `duration` before it fired: look back that far.
            let look_from = firing_since_ms.map_or(now_ms, |s| s.min(now_ms)) - ms(*duration);
            let since = flowing_since(usage, meter, look_from - ms(*quiet), now_ms, ms(*quiet));
            let flowing_ms = since.map_or(0, |s| now_ms - s);
            Measurement {
                value: flowing_ms as f64 / 1000.0,
                breached: since.is_some() && flowing_ms >= ms(*duration),
            }
        }
        AlertKind::NightUse {
            from,
            to,
            threshold_liters,
        } => {
            // The night is [start, end): shift the view's (from, to] range by 1 ms.
            let liters = night_window(*from, *to, now_ms, tz).map_or(0.0, |(start, end)| {
                usage.liters_between(meter, start - 1, (end - 1).min(now_ms))
            });
            Measurement {
                value: liters,
                breached: liters > *threshold_liters,
            }
        }
        AlertKind::NoData { after } => {
            // A sender never heard from cannot have gone silent: see docs/alerts.md.
            let silent_ms = usage.last_seen_ms(meter).map_or(0, |t| (now_ms - t).max(0));
            Measurement {
                value: silent_ms as f64 / 1000.0,
                breached: usage.last_seen_ms(meter).is_some() && silent_ms >= ms(*after),
            }
        }
    }
}

/// Liters per minute over the last [`FLOW_WINDOW_MS`].
pub fn current_flow(usage: &dyn UsageView, meter: &str, now_ms: i64) -> f64 {
    usage.liters_between(meter, now_ms - FLOW_WINDOW_MS, now_ms) / 5.0
}

/// Start of the flow that is still running at `now_ms`, or `None` when the water
/// has stopped (no event for at least `quiet_ms`). Events are read from
/// `(look_from_ms, now_ms]`; a run reaching back to `look_from_ms` starts at the
/// first event read, which is then a lower bound on its length.
pub fn flowing_since(
    usage: &dyn UsageView,
    meter: &str,
    look_from_ms: i64,
    now_ms: i64,
    quiet_ms: i64,
) -> Option<i64> {
    let times = usage.event_times(meter, look_from_ms, now_ms);
    let last = *times.last()?;
    if now_ms - last >= quiet_ms {
        return None;
    }
    let mut start = last;
    for &t in times.iter().rev().skip(1) {
        if start - t >= quiet_ms {
            break;
        }
        start = t;
    }
    Some(start)
}

/// The night `[start, end)` in Unix ms that contains `now_ms`, or else the last one
/// that ended before it. `from > to` crosses midnight (22:00 → 06:00). Local times
/// that do not exist (DST gap) move forward to the first instant that does; times
/// that exist twice (DST fold) take the earlier one. `None` when `from == to`.
pub fn night_window(from: NaiveTime, to: NaiveTime, now_ms: i64, tz: Tz) -> Option<(i64, i64)> {
    if from == to {
        return None;
    }
    let today = tz.timestamp_millis_opt(now_ms).single()?.date_naive();
    // The newest night that has started: it began today or on one of the days before.
    (0..3)
        .filter_map(|back| today.checked_sub_signed(ChronoDuration::days(back)))
        .map(|day| night_of(day, from, to, tz))
        .find(|(start, _)| *start <= now_ms)
}

fn night_of(day: NaiveDate, from: NaiveTime, to: NaiveTime, tz: Tz) -> (i64, i64) {
    let end_day = if to <= from {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    (
        local_ms(day.and_time(from), tz),
        local_ms(end_day.and_time(to), tz),
    )
}

/// Unix ms of a local wall-clock time, resolving DST gaps and folds (see above).
pub fn local_ms(local: NaiveDateTime, tz: Tz) -> i64 {
    // Gaps are at most a few hours; step forward in quarter hours (every IANA
    // offset is a multiple of 15 minutes) until the wall clock exists again.
    for step in 0..16 {
        let t = local + ChronoDuration::minutes(15 * step);
        if let Some(dt) = tz.from_local_datetime(&t).earliest() {
            return dt.timestamp_millis();
        }
    }
    local.and_utc().timestamp_millis()
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

#[cfg(test)]
pub use memory::MemoryUsage;

/// Test doubles: compiled for tests only.
#[cfg(test)]
mod memory {
    use std::collections::HashMap;

    use super::*;

    /// In-memory [`UsageView`] for tests and simulations: events and samples per meter.
    #[derive(Debug, Default, Clone)]
    pub struct MemoryUsage {
        events: HashMap<String, Vec<(i64, f64)>>,
        seen: HashMap<String, i64>,
    }

    impl MemoryUsage {
        pub fn new() -> Self {
            Self::default()
        }

        /// `liters` flowed at `ts_ms` (a pulse or a point); also counts as "seen".
        pub fn add(&mut self, meter: &str, ts_ms: i64, liters: f64) {
            let events = self.events.entry(meter.to_owned()).or_default();
            let at = events.partition_point(|(t, _)| *t <= ts_ms);
            events.insert(at, (ts_ms, liters));
            self.see(meter, ts_ms);
        }

        /// A sample that carried no water (a counter that did not move).
        pub fn see(&mut self, meter: &str, ts_ms: i64) {
            let seen = self.seen.entry(meter.to_owned()).or_insert(ts_ms);
            *seen = (*seen).max(ts_ms);
        }

        fn in_range(
            &self,
            meter: &str,
            from_ms: i64,
            to_ms: i64,
        ) -> impl Iterator<Item = &(i64, f64)> {
            self.events
                .get(meter)
                .into_iter()
                .flatten()
                .filter(move |(t, l)| *t > from_ms && *t <= to_ms && *l > 0.0)
        }
    }

    impl UsageView for MemoryUsage {
        fn liters_between(&self, meter: &str, from_ms: i64, to_ms: i64) -> f64 {
            self.in_range(meter, from_ms, to_ms).map(|(_, l)| l).sum()
        }

        fn last_event_ms(&self, meter: &str) -> Option<i64> {
            self.in_range(meter, i64::MIN, i64::MAX)
                .map(|(t, _)| *t)
                .last()
        }

        fn last_seen_ms(&self, meter: &str) -> Option<i64> {
            self.seen.get(meter).copied()
        }

        fn event_times(&self, meter: &str, from_ms: i64, to_ms: i64) -> Vec<i64> {
            self.in_range(meter, from_ms, to_ms)
                .map(|(t, _)| *t)
                .collect()
        }
    }
}
