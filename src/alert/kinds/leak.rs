//! `kind = "leak"`: something is leaking, whatever pattern shows it. One episode
//! gives one notification, and the mail names the likely cause:
//!
//! - a drip: no hour without water in the last 24 h;
//! - a leaking flapper: small refills evenly spaced through the night;
//! - a running toilet or stuck valve: a steady 1.5–7 L/min for `running` (1 h);
//! - a burst: a flow far above anything this home has drawn in four weeks, for
//!   minutes (learned: quiet until two weeks of history exist);
//! - away mode on and more than `away_allowance_liters` in the last hour.
//!
//! An hour that is only unusual for its hour of the week is not a leak (a hose,
//! a bath on a rare evening): a false leak is worse than a late one.
//!
//! The patterns are `draws::leak`'s, so the draw log shows the same episode as
//! one leak draw, and every message names it the same way: "Drip since Wed
//! 12:00, about 2 L/h, 72 L so far".

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono_tz::Tz;

use super::{ms, AlertKind, KindDef, MINUTE};
use crate::alert::rules::{Measurement, UsageView};
use crate::config::{Problem, Settings};
use crate::draws::{detect, leak, LEARNING_MS};

pub const DEF: KindDef = KindDef {
    name: "leak",
    title: "A leak: drip, flapper, running toilet, burst",
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
    Episode(leak::Episode),
    /// Water while away: since when, and how much.
    Away {
        since_ms: i64,
        liters: f64,
    },
}

impl Found {
    pub fn pattern(&self) -> Option<leak::Pattern> {
        match self {
            Found::Episode(e) => Some(e.pattern),
            Found::Away { .. } => None,
        }
    }

    fn start_ms(&self) -> i64 {
        match self {
            Found::Episode(e) => e.start_ms,
            Found::Away { since_ms, .. } => *since_ms,
        }
    }
}

/// How far back an episode's start is looked for.
const LOOK_BACK_MS: i64 = 72 * HOUR_MS;

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

    /// The episode that holds at `now_ms`, if any.
    pub fn find(&self, meter: &str, usage: &dyn UsageView, now_ms: i64, _tz: Tz) -> Option<Found> {
        if let Some(since) = usage.away_since_ms() {
            let from = since.max(now_ms - HOUR_MS);
            let liters = usage.liters_between(meter, from, now_ms);
            if liters > self.away_allowance_liters {
                let first = usage
                    .events(meter, since, now_ms)
                    .first()
                    .map_or(from, |e| e.0);
                return Some(Found::Away {
                    since_ms: first,
                    liters: usage.liters_between(meter, since, now_ms),
                });
            }
        }
        let events = usage.events(meter, now_ms - LOOK_BACK_MS, now_ms);
        let segments = detect::segments(&events);
        // A trickle series still going: refills or drips evenly spaced for hours,
        // from its first liter.
        for members in leak::trickle_series(&segments) {
            let Some(e) = leak::Episode::of_series(&segments, &members) else {
                continue;
            };
            if now_ms - e.end_ms <= HOUR_MS {
                return Some(Found::Episode(e));
            }
        }
        // A drip the series missed: every hour of the last day had water.
        let day = 24 * HOUR_MS;
        let wet = |h: i64| {
            let (a, b) = (now_ms - (h + 1) * HOUR_MS, now_ms - h * HOUR_MS);
            events.iter().any(|e| e.0 > a && e.0 <= b)
        };
        if events
            .first()
            .is_some_and(|f| f.0 <= now_ms - day + HOUR_MS)
            && (0..24).all(wet)
        {
            let hours = (0..LOOK_BACK_MS / HOUR_MS).take_while(|&h| wet(h)).count() as i64;
            let start = now_ms - hours * HOUR_MS;
            // The leak's own rate: the quietest hours' liters.
            let mut per_hour: Vec<f64> = (0..hours)
                .map(|h| {
                    usage.liters_between(meter, now_ms - (h + 1) * HOUR_MS, now_ms - h * HOUR_MS)
                })
                .collect();
            per_hour.sort_by(f64::total_cmp);
            let l_per_h = per_hour[per_hour.len() / 4];
            let first = events.iter().find(|e| e.0 > start).map_or(start, |e| e.0);
            return Some(Found::Episode(leak::Episode {
                pattern: leak::Pattern::Drip,
                start_ms: first,
                end_ms: events.last().map_or(now_ms, |e| e.0),
                l_per_h,
                liters: l_per_h * (now_ms - first) as f64 / HOUR_MS as f64,
            }));
        }
        let last = segments
            .last()
            .filter(|s| now_ms - s.end_ms <= 5 * MINUTE.as_millis() as i64)?;
        let running = (last.end_ms - last.start_ms) >= ms(self.running)
            && leak::leak_draw(last, None) == Some(leak::Pattern::Running);
        if running {
            return Some(Found::Episode(leak::Episode::of_draw(
                last,
                leak::Pattern::Running,
            )));
        }
        let limit = self.burst_limit(meter, usage, now_ms)?;
        (leak::leak_draw(last, Some(limit)) == Some(leak::Pattern::Burst))
            .then(|| Found::Episode(leak::Episode::of_draw(last, leak::Pattern::Burst)))
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
        Some(match self.find(meter, usage, now_ms, tz)? {
            Found::Episode(e) => e.words(tz, now_ms, true),
            Found::Away { since_ms, liters } => format!(
                "Water while away since {}, {} L so far (allowance {} L/h)",
                leak::short_time(tz, since_ms, now_ms),
                crate::words::trim(liters, 1),
                crate::words::trim(self.away_allowance_liters, 1)
            ),
        })
    }

    fn finding_ended(&self, finding: &str) -> String {
        match finding.strip_suffix(" so far") {
            Some(head) => format!("{head} in all"),
            None => finding.to_string(),
        }
    }

    fn run_start(&self, meter: &str, usage: &dyn UsageView, now_ms: i64, tz: Tz) -> Option<i64> {
        self.find(meter, usage, now_ms, tz).map(|f| f.start_ms())
    }

    fn summary(&self, meter: &str, value: f64, resolved: bool, detail: Option<&str>) -> String {
        let liters = crate::words::trim(value, 1);
        match (resolved, detail) {
            (true, _) => format!("{meter}: the leak stopped ({liters} L ran during it)"),
            (false, Some(d)) => format!("{meter}: leak: {d}"),
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
        let drip = k.find("m", &u, start + DAY, chrono_tz::UTC);
        assert_eq!(
            drip.as_ref().and_then(Found::pattern),
            Some(leak::Pattern::Drip)
        );
        // From its first liter, at its own rate, with the liters it ran.
        let Some(Found::Episode(e)) = drip else {
            panic!("{drip:?}")
        };
        assert!((e.start_ms - start).abs() <= 60_000, "{e:?}");
        assert!((e.l_per_h - 2.0).abs() < 0.3, "{e:?}");
        assert!((e.liters - 48.0).abs() <= 48.0 * 0.15, "{e:?}");
        assert_eq!(
            e.words(chrono_tz::UTC, start + DAY, true),
            format!(
                "Drip since {}, about 2 L/h, {} L so far",
                leak::short_time(chrono_tz::UTC, e.start_ms, start + DAY),
                crate::words::trim(e.liters, 0)
            )
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
        assert!(matches!(found, Some(Found::Episode(_))), "{found:?}");
        // A running toilet: 3 L/min for 70 minutes.
        let mut u = MemoryUsage::new();
        normal_days(&mut u, 20);
        for i in 0..210 {
            u.add("m", start + 3 * HOUR_MS + i * 20_000, 1.0);
        }
        let running = k.find("m", &u, start + 3 * HOUR_MS + 210 * 20_000, chrono_tz::UTC);
        assert_eq!(
            running.as_ref().and_then(Found::pattern),
            Some(leak::Pattern::Running)
        );
        // A burst: 50 L/min for 5 minutes, in a home that never drew more than 9.
        let mut u = MemoryUsage::new();
        normal_days(&mut u, 20);
        for i in 0..250 {
            u.add("m", start + 12 * HOUR_MS + i * 1_200, 1.0);
        }
        let burst = k.find("m", &u, start + 12 * HOUR_MS + 250 * 1_200, chrono_tz::UTC);
        assert_eq!(
            burst.as_ref().and_then(Found::pattern),
            Some(leak::Pattern::Burst)
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
    fn an_hour_only_unusual_for_its_hour_of_the_week_is_not_a_leak() {
        let k = kind();
        let mut u = MemoryUsage::new();
        // Three weeks of normal days, then on day 21 at 14:00 a garden hose at
        // 12 L/min for 25 minutes (300 L) in an hour that took 0 L before.
        normal_days(&mut u, 22);
        let at = 21 * DAY + 14 * HOUR_MS;
        for i in 0..300 {
            u.add("m", at + i * 5_000, 1.0);
        }
        assert_eq!(k.find("m", &u, at + 40 * 60_000, chrono_tz::UTC), None);
    }

    #[test]
    fn the_resolved_notification_tells_the_whole_episode() {
        let k = kind();
        assert_eq!(
            k.finding_ended("Drip since Wed 12:00, about 2 L/h, 72 L so far"),
            "Drip since Wed 12:00, about 2 L/h, 72 L in all"
        );
        assert_eq!(k.finding_ended("something else"), "something else");
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
            Some(Found::Away {
                since_ms: 10 * 60_000,
                liters: 3.0
            })
        );
        u.away = None;
        assert_eq!(k.find("m", &u, 13 * 60_000, chrono_tz::UTC), None);
    }
}
