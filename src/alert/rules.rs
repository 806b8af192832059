//! What the rules measure with: the [`UsageView`] they read and the
//! [`Measurement`] they give. Each kind's rule is in `kinds/<kind>.rs`.
//!
//! Nothing here knows about state, mail or the store: a rule and a [`UsageView`]
//! at `now` give a number and whether it breaches the rule. The state machine in
//! `state.rs` turns a sequence of measurements into notifications.

use chrono::{Duration as ChronoDuration, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

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
    /// The events in `(from_ms, to_ms]` with their liters, ascending (`leak`).
    fn events(&self, meter: &str, from_ms: i64, to_ms: i64) -> Vec<(i64, f64)>;
    /// Since when away mode is on (`None`: off).
    fn away_since_ms(&self) -> Option<i64> {
        None
    }
    /// The configured prices (`budget` alerts in money), if any.
    fn tariff(&self) -> Option<&crate::config::TariffConfig> {
        None
    }
    /// Flow now in L/min, as the dashboard shows it (`figures::flow_l_per_min`).
    fn flow_l_per_min(&self, meter: &str, now_ms: i64) -> f64;
    /// The alarm flags the meter itself reports now (a radio meter's "leak",
    /// "burst", …); empty when it reports none or cannot report any.
    fn meter_alarms(&self, meter: &str) -> Vec<String>;
}

/// One evaluation of a rule's condition at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Liters (`volume`, `night_use`) or seconds (`continuous_flow`, `no_data`).
    pub value: f64,
    /// The condition holds: the alert should be firing.
    pub breached: bool,
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
        alarms: HashMap<String, Vec<String>>,
        /// Away mode on since (tests set it directly).
        pub away: Option<i64>,
        /// The prices, for budgets in money.
        pub tariff: Option<crate::config::TariffConfig>,
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

        /// The meter reports these alarm flags from now on (empty: none).
        pub fn alarms(&mut self, meter: &str, flags: &[&str]) {
            self.alarms.insert(
                meter.to_owned(),
                flags.iter().map(|f| f.to_string()).collect(),
            );
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

        fn meter_alarms(&self, meter: &str) -> Vec<String> {
            self.alarms.get(meter).cloned().unwrap_or_default()
        }

        fn events(&self, meter: &str, from_ms: i64, to_ms: i64) -> Vec<(i64, f64)> {
            self.in_range(meter, from_ms, to_ms).copied().collect()
        }

        fn away_since_ms(&self) -> Option<i64> {
            self.away
        }

        fn tariff(&self) -> Option<&crate::config::TariffConfig> {
            self.tariff.as_ref()
        }

        fn flow_l_per_min(&self, meter: &str, now_ms: i64) -> f64 {
            let mut flow = crate::figures::Flow::default();
            for (t, l) in self.in_range(meter, now_ms - 3_600_000, now_ms) {
                flow.event(*t, (*l * 1000.0) as u64);
            }
            flow.at(now_ms)
        }
    }
}
