use super::*;
use crate::alert::kinds::continuous_flow::{flowing_since, ContinuousFlow};
use crate::alert::kinds::night_use::{night_window, NightUse};
use crate::alert::kinds::no_data::NoData;
use crate::alert::rules::{Measurement, MemoryUsage, UsageView};

fn measure(
    rule: &Rule,
    usage: &dyn UsageView,
    now_ms: i64,
    tz: chrono_tz::Tz,
    firing_since_ms: Option<i64>,
) -> Measurement {
    rule.kind
        .measure(&rule.meter, usage, now_ms, tz, firing_since_ms)
}

/// Measure `rule` over `events` (Vienna wall-clock time, liters) at `now`.
fn check(rule: &Rule, events: &[(&str, f64)], now: &str, expected: (f64, bool)) {
    let mut usage = MemoryUsage::new();
    for (t, l) in events {
        usage.add("main", vienna(t), *l);
    }
    let m = measure(rule, &usage, vienna(now), VIENNA, None);
    let want = Measurement {
        value: expected.0,
        breached: expected.1,
    };
    assert_eq!(m, want, "{:?} at {now}", rule.kind);
}

#[test]
fn volume_window_crossing_the_hour_sums_both_hours() {
    let r = volume(60, 100.0);
    let ev = [("2026-11-26 13:50", 60.0), ("2026-11-26 14:20", 50.0)];
    check(&r, &ev, "2026-11-26 14:30", (110.0, true));
    check(&r, &ev, "2026-11-26 14:49", (110.0, true));
    check(&r, &ev, "2026-11-26 14:50", (50.0, false));
}

#[test]
fn volume_counts_an_event_at_now_but_not_one_at_the_window_start() {
    let r = volume(60, 100.0);
    check(
        &r,
        &[("2026-11-26 13:00", 101.0)],
        "2026-11-26 13:00",
        (101.0, true),
    );
    check(
        &r,
        &[("2026-11-26 13:00", 101.0)],
        "2026-11-26 14:00",
        (0.0, false),
    );
}

#[test]
fn volume_at_exactly_the_threshold_does_not_breach() {
    check(
        &volume(60, 100.0),
        &[("2026-11-26 13:10", 100.0)],
        "2026-11-26 13:30",
        (100.0, false),
    );
}

#[test]
fn volume_window_over_the_dst_fall_back_hour_is_one_real_hour() {
    // 2026-10-25: 03:00 CEST → 02:00 CET. 02:50 CEST is followed 20 minutes later
    // by 02:10 CET; a 1-hour window follows real time, not the wall clock.
    let r = volume(60, 100.0);
    let first = vienna("2026-10-25 02:50"); // the earlier 02:50: CEST
    let mut usage = MemoryUsage::new();
    usage.add("main", first, 80.0);
    usage.add("main", first + 20 * MIN, 30.0);
    let at = |ms| measure(&r, &usage, ms, VIENNA, None).value;
    assert_eq!(at(first + 25 * MIN), 110.0);
    assert_eq!(at(first + HOUR), 30.0);
}

fn leak() -> Rule {
    rule(ContinuousFlow {
        duration: mins(120),
        quiet: mins(15),
    })
}

/// Events every `step` minutes from `from` to `to` (inclusive), 1 L each.
fn every(from: &str, to: &str, step: i64) -> MemoryUsage {
    let mut usage = MemoryUsage::new();
    let mut t = vienna(from);
    while t <= vienna(to) {
        usage.add("main", t, 1.0);
        t += step * MIN;
    }
    usage
}

#[test]
fn continuous_flow_fires_when_water_never_stops_for_the_duration() {
    let usage = every("2026-11-26 00:00", "2026-11-26 03:00", 2);
    let m = measure(&leak(), &usage, vienna("2026-11-26 03:01"), VIENNA, None);
    assert!(m.breached);
    assert!(m.value >= 2.0 * 3600.0, "{m:?}");
}

#[test]
fn continuous_flow_starts_counting_after_the_last_quiet_gap() {
    let mut usage = every("2026-11-26 00:00", "2026-11-26 01:00", 2);
    for t in ["2026-11-26 01:20", "2026-11-26 01:30", "2026-11-26 01:40"] {
        usage.add("main", vienna(t), 1.0);
    }
    let m = measure(&leak(), &usage, vienna("2026-11-26 01:45"), VIENNA, None);
    assert_eq!(
        m,
        Measurement {
            value: 25.0 * 60.0,
            breached: false
        }
    );
}

#[test]
fn continuous_flow_is_zero_once_the_water_was_quiet_long_enough() {
    let usage = every("2026-11-26 00:00", "2026-11-26 03:00", 2);
    let m = measure(&leak(), &usage, vienna("2026-11-26 03:15"), VIENNA, None);
    assert_eq!(
        m,
        Measurement {
            value: 0.0,
            breached: false
        }
    );
}

#[test]
fn continuous_flow_reports_the_whole_run_when_given_the_firing_start() {
    let usage = every("2026-11-26 00:00", "2026-11-26 08:00", 5);
    let now = vienna("2026-11-26 08:00");
    let since = flowing_since(&usage, "main", vienna("2026-11-25 23:00"), now, 15 * MIN);
    assert_eq!(since, Some(vienna("2026-11-26 00:00")));
    let hinted = measure(
        &leak(),
        &usage,
        now,
        VIENNA,
        Some(vienna("2026-11-26 02:00")),
    );
    assert_eq!(hinted.value, 8.0 * 3600.0);
}

fn night(from: &str, to: &str, threshold: f64) -> Rule {
    rule(NightUse {
        from: hm(from),
        to: hm(to),
        threshold_liters: threshold,
    })
}

#[test]
fn night_use_across_midnight_counts_only_the_night() {
    let r = night("22:00", "06:00", 20.0);
    let ev = [
        ("2026-11-25 21:59", 100.0),
        ("2026-11-25 23:30", 15.0),
        ("2026-11-26 03:00", 10.0),
        ("2026-11-26 06:00", 100.0),
        ("2026-11-26 07:00", 100.0),
    ];
    check(&r, &ev, "2026-11-25 23:45", (15.0, false));
    check(&r, &ev, "2026-11-26 03:00", (25.0, true));
    // During the day the last night is what counts; 06:00 itself is no longer night.
    check(&r, &ev, "2026-11-26 14:00", (25.0, true));
    // The next night starts from zero.
    check(&r, &ev, "2026-11-26 22:30", (0.0, false));
}

#[test]
fn night_use_within_one_day() {
    let r = night("00:00", "05:00", 20.0);
    let ev = [
        ("2026-11-25 23:59", 50.0),
        ("2026-11-26 00:00", 5.0),
        ("2026-11-26 04:59", 5.0),
    ];
    check(&r, &ev, "2026-11-26 12:00", (10.0, false));
}

#[test]
fn night_window_follows_dst() {
    let check_len = |day: &str, from: &str, to: &str, minutes: i64| {
        let (start, end) = night_window(hm(from), hm(to), vienna(day), VIENNA).expect("night");
        assert_eq!(end - start, minutes * MIN, "{day} {from}-{to}");
    };
    // Spring forward 2026-03-29 02:00 → 03:00: the night is an hour shorter.
    check_len("2026-03-29 05:00", "22:00", "06:00", 7 * 60);
    // Fall back 2026-10-25 03:00 → 02:00: an hour longer.
    check_len("2026-10-25 05:00", "22:00", "06:00", 9 * 60);
    // A start inside the gap (02:30 does not exist) moves to 03:00.
    check_len("2026-03-29 05:00", "02:30", "05:00", 2 * 60);
    // An ambiguous start (02:30 twice) takes the earlier one (CEST): 3.5 real hours.
    check_len("2026-10-25 05:00", "02:30", "05:00", 3 * 60 + 30);
}

#[test]
fn night_window_is_none_when_from_equals_to() {
    assert_eq!(night_window(hm("22:00"), hm("22:00"), 0, VIENNA), None);
}

fn no_data(after_min: u64) -> Rule {
    rule(NoData {
        after: mins(after_min),
    })
}

#[test]
fn no_data_fires_when_the_sender_is_silent() {
    let mut usage = MemoryUsage::new();
    usage.add("main", vienna("2026-11-26 10:00"), 1.0);
    let at = |now| measure(&no_data(60), &usage, vienna(now), VIENNA, None);
    assert_eq!(
        at("2026-11-26 10:59"),
        Measurement {
            value: 59.0 * 60.0,
            breached: false
        }
    );
    assert_eq!(
        at("2026-11-26 11:00"),
        Measurement {
            value: 3600.0,
            breached: true
        }
    );
}

#[test]
fn no_data_counts_a_counter_sample_without_water_as_alive() {
    let mut usage = MemoryUsage::new();
    usage.add("main", vienna("2026-11-26 00:00"), 1.0);
    usage.see("main", vienna("2026-11-26 10:30"));
    let m = measure(
        &no_data(60),
        &usage,
        vienna("2026-11-26 11:00"),
        VIENNA,
        None,
    );
    assert_eq!(
        m,
        Measurement {
            value: 1800.0,
            breached: false
        }
    );
}

#[test]
fn no_data_never_fires_for_a_sender_never_heard() {
    let m = measure(
        &no_data(60),
        &MemoryUsage::new(),
        vienna("2026-11-26 11:00"),
        VIENNA,
        None,
    );
    assert!(!m.breached);
}
