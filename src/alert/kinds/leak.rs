//! `kind = "leak"`: something is leaking, whatever pattern shows it. One episode
//! gives one notification, and the mail names the likely cause:
//!
//! - a drip: no hour without water in the last 24 h;
//! - a leaking flapper: small refills evenly spaced through the night;
//! - a running toilet or stuck valve: a steady 1.5–7 L/min for `running` (1 h);
//! - a burst: a flow far above anything this home has drawn in four weeks, for
//!   minutes (learned: quiet until two weeks of history exist);
//! - away mode on and more than `away_allowance_liters` in the last hour;
//! - an hour clearly unusual for its hour of the week: over three times (and 50 L
//!   more than) the most the same hour took in any of the past eight weeks;
//!   learned, so quiet until two weeks of history exist.
//!
//! The patterns are `draws::leak`'s, so the draw log shows the same episode as
//! one leak draw.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono_tz::Tz;

use super::{ms, AlertKind, KindDef, MINUTE};
use crate::alert::rules::{Measurement, UsageView};
use crate::config::{Problem, Settings};
use crate::draws::{detect, leak, LEARNING_MS};

pub const DEF: KindDef = KindDef {
    name: "leak",
    keys: &["away_allowance_liters", "running"],
    example: r#"running = "1h""#,
    read,
};

const HOUR_MS: i64 = 3_600_000;

#[derive(Debug)]
pub struct Leak {
    /// Liters per hour that may flow while away mode is on (default 2).
    pub away_allowance_liters: f64,
    /// How long a steady flow must last to be a running toilet (default 1 h).
    pub running: Duration,
    /// (computed at, burst limit L/min): the home's four weeks, once an hour.
    burst: Mutex<Option<(i64, Option<f64>)>>,
}

fn read(s: &Settings, problems: &mut Vec<Problem>) -> Option<Arc<dyn AlertKind>> {
    let allowance = match s.number(problems, "away_allowance_liters") {
        Some(x) if x >= 0.0 => x,
        Some(x) => {
            s.bad(
                problems,
                "away_allowance_liters",
                format!("{x} must be 0 or more liters per hour, such as 2"),
            );
            return None;
        }
        None => 2.0,
    };
    let running = s
        .duration(problems, "running", 10 * MINUTE, None)
        .unwrap_or(60 * MINUTE);
    Some(Arc::new(Leak {
        away_allowance_liters: allowance,
        running,
        burst: Mutex::new(None),
    }))
}

/// What the patterns found at one instant.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    Pattern(leak::Pattern),
    Away(f64),
    /// The last hour's liters, far above this hour of the week's history: the
    /// liters, the most of the same hour in past weeks, and the hour in words.
    Unusual {
        liters: f64,
        most: f64,
        when: String,
    },
}

/// Past weeks the hour-of-week baseline reads (at least two must exist).
const BASELINE_WEEKS: i64 = 8;

impl Leak {
    fn burst_limit(&self, meter: &str, usage: &dyn UsageView, now_ms: i64) -> Option<f64> {
        let mut kept = match self.burst.lock() {
            Ok(k) => k,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((at, limit)) = *kept {
            if now_ms - at < HOUR_MS && now_ms >= at {
                return limit;
            }
        }
        let events = usage.events(meter, now_ms - 28 * 24 * HOUR_MS, now_ms - HOUR_MS);
        let learned = events
            .first()
            .is_some_and(|(t, _)| now_ms - t >= LEARNING_MS);
        let limit = learned.then(|| leak::burst_limit(&detect::segments(&events)));
        *kept = Some((now_ms, limit));
        limit
    }

    /// The last hour against the same hour of the week in past weeks: clearly
    /// unusual when it is over three times the most of any of them and 50 L more.
    fn unusual(&self, meter: &str, usage: &dyn UsageView, now_ms: i64, tz: Tz) -> Option<Found> {
        let week = 7 * 24 * HOUR_MS;
        let first = usage.events(
            meter,
            now_ms - BASELINE_WEEKS * week - HOUR_MS,
            now_ms - 2 * week,
        );
        let oldest = first.first()?.0;
        let weeks = ((now_ms - HOUR_MS - oldest) / week).min(BASELINE_WEEKS);
        if weeks < 2 {
            return None;
        }
        let liters = usage.liters_between(meter, now_ms - HOUR_MS, now_ms);
        let most = (1..=weeks)
            .map(|k| usage.liters_between(meter, now_ms - k * week - HOUR_MS, now_ms - k * week))
            .fold(0.0, f64::max);
        if liters <= most * 3.0 || liters <= most + 50.0 {
            return None;
        }
        let local = chrono::TimeZone::timestamp_millis_opt(&tz, now_ms).single()?;
        Some(Found::Unusual {
            liters,
            most,
            when: format!("a {} at {}", local.format("%A"), local.format("%H:00")),
        })
    }

    /// The pattern that holds at `now_ms`, if any (the hour of the week in `tz`).
    pub fn find(&self, meter: &str, usage: &dyn UsageView, now_ms: i64, tz: Tz) -> Option<Found> {
        let found = self.patterns(meter, usage, now_ms);
        found.or_else(|| self.unusual(meter, usage, now_ms, tz))
    }

    fn patterns(&self, meter: &str, usage: &dyn UsageView, now_ms: i64) -> Option<Found> {
        if let Some(since) = usage.away_since_ms() {
            let liters = usage.liters_between(meter, since.max(now_ms - HOUR_MS), now_ms);
            if liters > self.away_allowance_liters {
                return Some(Found::Away(liters));
            }
        }
        let events = usage.events(meter, now_ms - 24 * HOUR_MS, now_ms);
        // A drip: every hour of the last day had water.
        let first = events.first().map(|e| e.0);
        if first.is_some_and(|f| f <= now_ms - 23 * HOUR_MS)
            && (0..24).all(|h| {
                let (a, b) = (now_ms - (h + 1) * HOUR_MS, now_ms - h * HOUR_MS);
                events.iter().any(|e| e.0 > a && e.0 <= b)
            })
        {
            return Some(Found::Pattern(leak::Pattern::Drip));
        }
        let segments = detect::segments(&events);
        // A trickle series still going: refills or drips evenly spaced for hours.
        for r in leak::trickle_series(&segments) {
            let part = &segments[r];
            if part.last().is_some_and(|s| now_ms - s.end_ms <= HOUR_MS) {
                return Some(Found::Pattern(leak::trickle_pattern(part)));
            }
        }
        let last = segments
            .last()
            .filter(|s| now_ms - s.end_ms <= 5 * MINUTE.as_millis() as i64)?;
        let running = (last.end_ms - last.start_ms) >= ms(self.running)
            && leak::leak_draw(last, None) == Some(leak::Pattern::Running);
        if running {
            return Some(Found::Pattern(leak::Pattern::Running));
        }
        let limit = self.burst_limit(meter, usage, now_ms)?;
        (leak::leak_draw(last, Some(limit)) == Some(leak::Pattern::Burst))
            .then_some(Found::Pattern(leak::Pattern::Burst))
    }
}

impl AlertKind for Leak {
    fn name(&self) -> &'static str {
        DEF.name
    }

    fn unit(&self) -> &'static str {
        "L"
    }

    fn measure(
        &self,
        meter: &str,
        usage: &dyn UsageView,
        now_ms: i64,
        tz: Tz,
        firing_since_ms: Option<i64>,
    ) -> Measurement {
        let found = self.find(meter, usage, now_ms, tz);
        // The value: liters of the last hour, or since the episode began.
        let from = firing_since_ms
            .unwrap_or(now_ms - HOUR_MS)
            .min(now_ms - HOUR_MS);
        Measurement {
            value: usage.liters_between(meter, from, now_ms),
            breached: found.is_some(),
        }
    }

    fn resolve_hold(&self) -> Duration {
        60 * MINUTE
    }

    fn detail(&self, meter: &str, usage: &dyn UsageView, now_ms: i64, tz: Tz) -> Option<String> {
        match self.find(meter, usage, now_ms, tz)? {
            Found::Pattern(p) => Some(p.words().to_string()),
            Found::Away(l) => Some(format!(
                "away mode is on and {} L ran in the last hour (allowance {} L)",
                crate::words::trim(l, 1),
                crate::words::trim(self.away_allowance_liters, 1)
            )),
            Found::Unusual { liters, most, when } => Some(format!(
                "{} L in the last hour, unusual for {when}: in the past weeks this hour never took more than {} L ({}× that)",
                crate::words::trim(liters, 0),
                crate::words::trim(most, 0),
                crate::words::trim(liters / most.max(1.0), 1)
            )),
        }
    }

    fn summary(&self, meter: &str, value: f64, resolved: bool, detail: Option<&str>) -> String {
        let liters = crate::words::trim(value, 1);
        match (resolved, detail) {
            (true, _) => format!("{meter}: the leak stopped ({liters} L ran during it)"),
            (false, Some(d)) => format!("{meter}: possible leak: {d}"),
            (false, None) => format!("{meter}: possible leak ({liters} L in the last hour)"),
        }
    }

    fn began_before_firing(&self) -> Duration {
        60 * MINUTE
    }

    fn describe(&self) -> String {
        format!(
            "a drip, a leaking flapper, a running toilet (steady flow for {}), a burst, or more than {} L/h while away",
            crate::words::duration(self.running.as_secs_f64()),
            crate::words::trim(self.away_allowance_liters, 1)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::rules::MemoryUsage;

    fn kind() -> Leak {
        Leak {
            away_allowance_liters: 2.0,
            running: 60 * MINUTE,
            burst: Mutex::new(None),
        }
    }

    const DAY: i64 = 24 * HOUR_MS;

    /// A normal day: showers and toilets morning and evening, a quiet night.
    fn normal_days(u: &mut MemoryUsage, days: i64) {
        for d in 0..days {
            for (hour, liters, flow) in [
                (7.0, 60, 9.0),
                (7.5, 6, 8.0),
                (19.0, 6, 8.0),
                (21.0, 40, 8.0),
            ] {
                let start = d * DAY + (hour * HOUR_MS as f64) as i64;
                for k in 0..liters {
                    u.add("m", start + (k as f64 * 60_000.0 / flow) as i64, 1.0);
                }
            }
        }
    }

    #[test]
    fn a_normal_home_has_no_leak() {
        let mut u = MemoryUsage::new();
        normal_days(&mut u, 20);
        let k = kind();
        for h in 0..24 * 5 {
            let now = 15 * DAY + h * HOUR_MS;
            assert_eq!(k.find("m", &u, now, chrono_tz::UTC), None, "at hour {h}");
        }
    }

    #[test]
    fn each_pattern_is_found_and_named() {
        let k = kind();
        // A drip of 2 L/h for a day on top of normal use.
        let mut u = MemoryUsage::new();
        normal_days(&mut u, 20);
        let start = 15 * DAY;
        for i in 0..48 {
            u.add("m", start + i * HOUR_MS / 2 + 7, 1.0);
        }
        assert_eq!(
            k.find("m", &u, start + DAY, chrono_tz::UTC),
            Some(Found::Pattern(leak::Pattern::Drip))
        );
        // A flapper: 2 L every 25 min from midnight.
        let mut u = MemoryUsage::new();
        normal_days(&mut u, 20);
        for i in 0..14 {
            let t = start + i * 25 * 60_000;
            u.add("m", t, 1.0);
            u.add("m", t + 20_000, 1.0);
        }
        let found = k.find("m", &u, start + 14 * 25 * 60_000, chrono_tz::UTC);
        assert!(matches!(found, Some(Found::Pattern(_))), "{found:?}");
        // A running toilet: 3 L/min for 70 minutes.
        let mut u = MemoryUsage::new();
        normal_days(&mut u, 20);
        for i in 0..210 {
            u.add("m", start + 3 * HOUR_MS + i * 20_000, 1.0);
        }
        assert_eq!(
            k.find("m", &u, start + 3 * HOUR_MS + 210 * 20_000, chrono_tz::UTC),
            Some(Found::Pattern(leak::Pattern::Running))
        );
        // A burst: 50 L/min for 5 minutes, in a home that never drew more than 9.
        let mut u = MemoryUsage::new();
        normal_days(&mut u, 20);
        for i in 0..250 {
            u.add("m", start + 12 * HOUR_MS + i * 1_200, 1.0);
        }
        assert_eq!(
            k.find("m", &u, start + 12 * HOUR_MS + 250 * 1_200, chrono_tz::UTC),
            Some(Found::Pattern(leak::Pattern::Burst))
        );
        // The same burst in a home with one day of history: learned rules stay quiet.
        let mut u = MemoryUsage::new();
        for i in 0..250 {
            u.add("m", start + 12 * HOUR_MS + i * 1_200, 1.0);
        }
        assert_eq!(
            kind().find("m", &u, start + 12 * HOUR_MS + 250 * 1_200, chrono_tz::UTC),
            None
        );
    }

    #[test]
    fn an_hour_far_above_its_hour_of_the_week_is_unusual_once_two_weeks_exist() {
        let k = kind();
        let mut u = MemoryUsage::new();
        // Three weeks of normal days, then on day 21 at 14:00 a garden hose at
        // 12 L/min for 25 minutes (300 L) in an hour that took 0 L before.
        normal_days(&mut u, 22);
        let at = 21 * DAY + 14 * HOUR_MS;
        for i in 0..300 {
            u.add("m", at + i * 5_000, 1.0);
        }
        let now = at + 40 * 60_000;
        match k.find("m", &u, now, chrono_tz::UTC) {
            Some(Found::Unusual { liters, most, when }) => {
                assert_eq!((liters, most), (300.0, 0.0));
                assert_eq!(when, "a Thursday at 14:00");
            }
            other => panic!("{other:?}"),
        }
        // A shower at its usual hour is not unusual.
        assert_eq!(
            k.find("m", &u, 21 * DAY + 8 * HOUR_MS, chrono_tz::UTC),
            None
        );
        // With one week of history the learned rule stays quiet.
        let mut u = MemoryUsage::new();
        for i in 0..300 {
            u.add("m", 8 * DAY + i * 5_000, 1.0);
        }
        u.add("m", 1, 1.0);
        assert_eq!(k.find("m", &u, 8 * DAY + 40 * 60_000, chrono_tz::UTC), None);
    }

    #[test]
    fn away_mode_alerts_beyond_the_allowance() {
        let k = kind();
        let mut u = MemoryUsage::new();
        u.away = Some(1_000);
        u.add("m", 10 * 60_000, 1.0);
        u.add("m", 11 * 60_000, 1.0);
        assert_eq!(
            k.find("m", &u, 12 * 60_000, chrono_tz::UTC),
            None,
            "2 L is within the allowance"
        );
        u.add("m", 12 * 60_000, 1.0);
        assert_eq!(
            k.find("m", &u, 13 * 60_000, chrono_tz::UTC),
            Some(Found::Away(3.0))
        );
        u.away = None;
        assert_eq!(k.find("m", &u, 13 * 60_000, chrono_tz::UTC), None);
    }
}
