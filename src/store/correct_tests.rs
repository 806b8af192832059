//! Corrections through the store's API: every derived figure follows, the audit
//! keeps each one, and a rebuild from the journal gives the same store.

use chrono::DateTime;

use super::*;
use crate::buckets::Step;
use crate::config::builtin_defaults;
use crate::meter::{Sample, SampleValue};

fn utc(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

fn open(dir: &std::path::Path) -> Store {
    let meters = builtin_defaults().meters;
    Store::open(dir, 1 << 20, chrono_tz::Europe::Vienna, &meters).unwrap()
}

/// Everything a page reads: total, days around the range, events, last event.
type Seen = (u64, Vec<u64>, Vec<(i64, u64)>, Option<i64>);

fn seen(s: &Store) -> Seen {
    let days = s
        .usage(
            0,
            Step::Day,
            utc("2026-11-24T23:00:00Z"),
            utc("2026-11-28T23:00:00Z"),
        )
        .unwrap()
        .ml;
    let mut events = Vec::new();
    s.for_each_event(0, 0, i64::MAX / 4, |t, ml| events.push((t, ml)))
        .unwrap();
    (
        s.total_ml(0).unwrap(),
        days,
        events,
        s.last_event_ms(0).unwrap(),
    )
}

#[test]
fn deleting_and_setting_a_range_moves_every_figure_and_survives_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    // One liter every 30 minutes from Nov 25 22:00 to Nov 27 02:00 UTC: the range
    // crosses local midnights (Vienna, UTC+1) and a UTC block boundary.
    let samples: Vec<Sample> = (0..57)
        .map(|i| Sample {
            meter: 0,
            ts_ms: utc("2026-11-25T22:00:00Z") + i * 1_800_000,
            value: SampleValue::Liters(1.0),
        })
        .collect();
    s.apply(&samples).unwrap();
    assert_eq!(s.total_ml(0).unwrap(), 57_000);

    // A misread night: 22:30 to 01:30 UTC holds 6 events; delete them.
    s.correct(
        0,
        utc("2026-11-25T22:30:00Z"),
        utc("2026-11-26T01:30:00Z"),
        None,
        "camera misread",
        1,
    )
    .unwrap();
    let (total, days, events, last) = seen(&s);
    assert_eq!(total, 51_000);
    assert_eq!(days.iter().sum::<u64>(), 51_000);
    assert_eq!(events.len(), 51);
    assert_eq!(last, Some(utc("2026-11-27T02:00:00Z")));

    // The last events were wrong too: 18.5 L really ran from 00:00 to 02:30.
    s.correct(
        0,
        utc("2026-11-27T00:00:00Z"),
        utc("2026-11-27T02:30:00Z"),
        Some(18.5),
        "real value from the meter",
        2,
    )
    .unwrap();
    let (total, days, events, last) = seen(&s);
    assert_eq!(total, 51_000 - 5_000 + 18_500);
    assert_eq!(days.iter().sum::<u64>(), total);
    assert!(events.iter().all(|&(_, ml)| ml <= 1000));
    assert!(
        last.is_some_and(|t| t < utc("2026-11-27T02:30:00Z") && t > utc("2026-11-27T02:00:00Z"))
    );

    let audit = s.corrections(0).unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(
        (audit[0].action.as_str(), audit[0].removed_liters),
        ("delete", 6.0)
    );
    assert_eq!((audit[1].removed_liters, audit[1].set_liters), (5.0, 18.5));
    assert_eq!(audit[1].reason, "real value from the meter");

    // The same store from the journal alone.
    let before = seen(&s);
    drop(s);
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let s = open(dir.path());
    assert!(s.open_report().rebuilt.is_some());
    assert_eq!(seen(&s), before);
    assert_eq!(s.corrections(0).unwrap(), audit);
}

#[test]
fn kept_hour_sums_follow_appends_and_corrections() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let hours = |s: &Store| {
        let mut out = Vec::new();
        let day = utc("2026-11-26T00:00:00Z") / 86_400_000;
        s.hour_sums(0, day, day + 1, |_, h| out = h.to_vec())
            .unwrap();
        out
    };
    let liter = |at: &str| Sample {
        meter: 0,
        ts_ms: utc(at),
        value: SampleValue::Liters(1.0),
    };
    s.apply(&[liter("2026-11-26T03:10:00Z"), liter("2026-11-26T03:20:00Z")])
        .unwrap();
    assert_eq!(hours(&s)[3], 2000);
    assert_eq!(hours(&s)[3], 2000, "kept");
    s.apply(&[liter("2026-11-26T03:30:00Z"), liter("2026-11-26T07:00:00Z")])
        .unwrap();
    let h = hours(&s);
    assert_eq!((h[3], h[7]), (3000, 1000), "an append changes the block");
    s.correct(
        0,
        utc("2026-11-26T03:00:00Z"),
        utc("2026-11-26T04:00:00Z"),
        None,
        "test",
        0,
    )
    .unwrap();
    let h = hours(&s);
    assert_eq!((h[3], h[7]), (0, 1000), "a correction too");
}
