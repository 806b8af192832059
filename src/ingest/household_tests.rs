use std::time::Duration;

use chrono::{NaiveDate, Timelike};

use super::*;
use crate::ingest::gpio::PulseFilter;

const TZ: Tz = chrono_tz::Europe::Vienna;
const DAY: i64 = 86_400_000;

fn midnight(y: i32, m: u32, d: u32) -> i64 {
    let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
    local_ms(TZ, date, 0.0)
}

fn local_hour(ms: i64) -> f64 {
    let t = TZ.timestamp_millis_opt(ms).unwrap();
    f64::from(t.hour()) + f64::from(t.minute()) / 60.0
}

/// One `pulses` call per local day, starting at `first`.
fn days(seed: u64, first: i64, n: usize) -> Vec<Vec<i64>> {
    let start = local_date(first, TZ);
    start
        .iter_days()
        .take(n)
        .map(|d| {
            let from = local_ms(TZ, d, 0.0);
            let to = local_ms(TZ, d.succ_opt().unwrap(), 0.0);
            pulses(seed, from, to, TZ)
        })
        .collect()
}

#[test]
fn average_day_uses_400_to_500_liters() {
    for (seed, from) in [(1, midnight(2026, 1, 5)), (7, midnight(2026, 3, 2))] {
        let all = pulses(seed, from, from + 28 * DAY, TZ);
        let per_day = all.len() as f64 / 28.0;
        assert!(
            (400.0..=500.0).contains(&per_day),
            "seed {seed}: {per_day} L/day"
        );
    }
}

#[test]
fn every_day_uses_some_water_and_none_is_absurd() {
    for day in days(3, midnight(2026, 2, 2), 28) {
        assert!(
            (150..=1_000).contains(&day.len()),
            "{} L in a day",
            day.len()
        );
    }
}

#[test]
fn most_days_have_a_shower_run_of_40_liters_at_under_8s_per_liter() {
    let with_shower = days(5, midnight(2026, 1, 12), 14)
        .iter()
        .filter(|day| {
            let mut run = 1;
            day.windows(2).any(|w| {
                run = if w[1] - w[0] <= 8_000 { run + 1 } else { 1 };
                run >= 40
            })
        })
        .count();
    assert!(
        with_shower >= 12,
        "only {with_shower} of 14 days have a shower"
    );
}

#[test]
fn nights_are_quiet() {
    let all = pulses(11, midnight(2026, 1, 5), midnight(2026, 2, 2), TZ);
    let night = all
        .iter()
        .filter(|&&ms| (2.0..4.5).contains(&local_hour(ms)))
        .count();
    assert!(
        night * 100 < all.len(),
        "{night} of {} liters between 02:00 and 04:30",
        all.len()
    );
}

#[test]
fn weekday_peaks_are_morning_and_evening() {
    // Mon 2026-01-05 .. Fri 2026-01-09
    let week = pulses(13, midnight(2026, 1, 5), midnight(2026, 1, 10), TZ);
    let liters_in = |lo: f64, hi: f64| {
        week.iter()
            .filter(|&&ms| (lo..hi).contains(&local_hour(ms)))
            .count() as f64
            / (hi - lo)
    };
    let (morning, midday, evening) = (
        liters_in(6.0, 8.0),
        liters_in(10.0, 12.0),
        liters_in(18.0, 22.5),
    );
    assert!(
        morning > 3.0 * midday,
        "morning {morning} L/h vs midday {midday} L/h"
    );
    assert!(
        evening > 2.0 * midday,
        "evening {evening} L/h vs midday {midday} L/h"
    );
}

#[test]
fn same_seed_gives_the_same_pulses_and_another_seed_does_not() {
    let (from, to) = (midnight(2026, 5, 1), midnight(2026, 5, 4));
    assert_eq!(pulses(42, from, to, TZ), pulses(42, from, to, TZ));
    assert_ne!(pulses(42, from, to, TZ), pulses(43, from, to, TZ));
}

#[test]
fn output_is_sorted_and_inside_the_range() {
    let (from, to) = (midnight(2026, 3, 28) + 3_600_000, midnight(2026, 4, 2) - 1);
    let all = pulses(9, from, to, TZ);
    assert!(all.windows(2).all(|w| w[0] <= w[1]));
    assert!(all.iter().all(|t| (from..to).contains(t)));
}

#[test]
fn splitting_the_range_anywhere_gives_the_same_pulses() {
    let (a, c) = (midnight(2026, 3, 27), midnight(2026, 4, 1)); // across the DST change
    let whole = pulses(21, a, c, TZ);
    for b in [
        midnight(2026, 3, 29),
        midnight(2026, 3, 30) + 7 * 3_600_000 + 123,
    ] {
        let mut parts = pulses(21, a, b, TZ);
        parts.extend(pulses(21, b, c, TZ));
        assert_eq!(parts, whole, "split at {b}");
    }
}

#[test]
fn empty_or_reversed_range_has_no_pulses() {
    let t = midnight(2026, 1, 1);
    assert!(pulses(1, t, t, TZ).is_empty());
    assert!(pulses(1, t + DAY, t, TZ).is_empty());
}

#[test]
fn edge_timeline_through_the_pulse_filter_counts_every_pulse_at_its_time() {
    let from = midnight(2026, 1, 7);
    let times = pulses(17, from, from + DAY, TZ);
    let timeline = edge_timeline(&times, 17);
    assert!(
        timeline.len() > 2 * times.len(),
        "some contact bounce is simulated"
    );
    let mut filter = PulseFilter::new(
        Level::Low,
        Duration::from_millis(20),
        Duration::from_millis(20),
    );
    let mono = |ms: i64| Duration::from_millis((ms - from) as u64);
    let mut counted = Vec::new();
    for &(t, level) in &timeline {
        if let Some(super::super::gpio::Outcome::Pulse(p)) = filter.edge(level, mono(t)).outcome {
            counted.push(p.closed_at);
        }
    }
    if let Some(super::super::gpio::Outcome::Pulse(p)) = filter.finish(mono(from + 2 * DAY)) {
        counted.push(p.closed_at);
    }
    assert_eq!(counted.len(), times.len());
    let moved = times
        .iter()
        .zip(&counted)
        .filter(|(t, c)| mono(**t) != **c)
        .count();
    assert!(moved * 100 <= times.len(), "{moved} pulses had to move");
}

#[test]
fn edge_timeline_alternates_closed_and_open_between_pulses() {
    let timeline = edge_timeline(&[1_000, 1_050, 5_000], 1);
    let closes = timeline.iter().filter(|(_, l)| *l == Level::Low).count();
    assert!(closes >= 3);
    assert_eq!(timeline.first(), Some(&(1_000, Level::Low)));
    assert_eq!(timeline.last().map(|e| e.1), Some(Level::High));
    assert!(timeline.windows(2).all(|w| w[0].0 <= w[1].0));
}
