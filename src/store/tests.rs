//! Store behaviour through its public API on a temp directory.

use chrono::DateTime;
use chrono_tz::Tz;

use super::*;
use crate::buckets::{self, Step};
use crate::config::{FieldSelector, MeterConfig};
use crate::meter::SampleValue;

fn meter(id: &str, anchor: Option<i64>) -> MeterConfig {
    MeterConfig {
        reading_set_at_ms: anchor,
        ..MeterConfig::with_id(id)
    }
}

fn open(dir: &std::path::Path, tz: Tz, meters: &[MeterConfig]) -> Store {
    Store::open(dir, 1 << 20, tz, meters).unwrap()
}

fn utc(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

fn liters(meter: MeterIdx, ts_ms: i64, l: f64) -> Sample {
    Sample {
        meter,
        ts_ms,
        value: SampleValue::Liters(l),
    }
}

fn counter(meter: MeterIdx, ts_ms: i64, c: f64) -> Sample {
    Sample {
        meter,
        ts_ms,
        value: SampleValue::Counter(c),
    }
}

/// One liter every `every_ms` in `[from, to)`.
fn pulses(from: i64, to: i64, every_ms: i64) -> Vec<Sample> {
    (0..)
        .map(|i| from + i * every_ms)
        .take_while(|&t| t < to)
        .map(|t| liters(0, t, 1.0))
        .collect()
}

#[test]
fn day_and_hour_sums_equal_the_events_on_dst_days() {
    let dir = tempfile::tempdir().unwrap();
    let tz = chrono_tz::Europe::Vienna;
    let store = open(dir.path(), tz, &[meter("main", None)]);
    // One liter every 7 minutes across both 2026 DST changes.
    let from = utc("2026-03-27T00:00:00Z");
    let to = utc("2026-03-31T00:00:00Z");
    store.apply(&pulses(from, to, 7 * 60_000)).unwrap();
    let fall = pulses(
        utc("2026-10-23T00:00:00Z"),
        utc("2026-10-27T00:00:00Z"),
        7 * 60_000,
    );
    store.apply(&fall).unwrap();
    for day in ["2026-03-29", "2026-10-25", "2026-03-28"] {
        let d: chrono::NaiveDate = day.parse().unwrap();
        let (a, b) = (
            buckets::day_start(tz, d),
            buckets::day_start(tz, d.succ_opt().unwrap()),
        );
        let expected = (a..b)
            .filter(|t| (t - from) % (7 * 60_000) == 0 || (t - fall[0].ts_ms) % (7 * 60_000) == 0)
            .count();
        let hours = store.usage(0, Step::Hour, a, b).unwrap();
        let days = store.usage(0, Step::Day, a, b).unwrap();
        assert_eq!(days.ml.len(), 1, "{day}");
        assert_eq!(days.total_ml(), hours.total_ml(), "{day}");
        assert_eq!(days.total_ml(), store.ml_between(0, a, b).unwrap(), "{day}");
        let mut n = 0;
        store.for_each_event(0, a, b, |_, _| n += 1).unwrap();
        assert_eq!(days.total_ml(), n * 1000, "{day}");
        assert!(expected as u64 >= n, "{day}");
    }
    let spring = buckets::day_start(tz, "2026-03-29".parse().unwrap());
    assert_eq!(
        store
            .usage(0, Step::Hour, spring, spring + 23 * 3_600_000)
            .unwrap()
            .ml
            .len(),
        23
    );
}

#[test]
fn month_buckets_sum_their_days() {
    let dir = tempfile::tempdir().unwrap();
    let tz = chrono_tz::America::New_York;
    let store = open(dir.path(), tz, &[meter("main", None)]);
    let from = utc("2026-01-01T00:00:00Z");
    let to = utc("2026-12-31T00:00:00Z");
    store.apply(&pulses(from, to, 3_600_000 + 17)).unwrap();
    let months = store.usage(0, Step::Month, from, to).unwrap();
    let days = store
        .usage(
            0,
            Step::Day,
            months.bounds[0],
            *months.bounds.last().unwrap() - 1,
        )
        .unwrap();
    assert_eq!(months.ml.len(), 13); // Dec 2025 (local) to Dec 2026
    assert_eq!(months.total_ml(), days.total_ml());
    assert_eq!(months.total_ml(), store.total_ml(0).unwrap());
}

#[test]
fn counter_differences_are_the_liters_and_survive_reboots() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), chrono_tz::UTC, &[meter("main", None)]);
    let t = utc("2026-05-01T00:00:00Z");
    // Baseline 1000, +5, +2 (one lost in between), a reboot to 3, then +4; a late
    // duplicate of an older value is ignored.
    let samples = [
        counter(0, t, 1000.0),
        counter(0, t + 1000, 1005.0),
        counter(0, t + 3000, 1007.0),
        counter(0, t + 2000, 1006.0),
        counter(0, t + 4000, 3.0),
        counter(0, t + 5000, 7.0),
    ];
    store.apply(&samples[..3]).unwrap();
    store.apply(&samples[3..]).unwrap();
    assert_eq!(store.total_ml(0).unwrap(), (5 + 2 + 3 + 4) * 1000);
    assert_eq!(store.last_seen_ms(0).unwrap(), Some(t + 5000));
}

#[test]
fn reading_counts_only_water_after_the_anchor_even_when_history_arrives_later() {
    let dir = tempfile::tempdir().unwrap();
    let anchor = utc("2026-06-01T12:00:00Z");
    let store = open(dir.path(), chrono_tz::UTC, &[meter("main", Some(anchor))]);
    store
        .apply(&[liters(0, anchor + 1, 2.0), liters(0, anchor - 1, 5.0)])
        .unwrap();
    assert_eq!(store.reading_ml(0).unwrap(), 2000);
    assert_eq!(store.total_ml(0).unwrap(), 7000);
    drop(store);
    // Moving the anchor recomputes what lies before it.
    let store = open(
        dir.path(),
        chrono_tz::UTC,
        &[meter("main", Some(anchor - 10))],
    );
    assert_eq!(store.reading_ml(0).unwrap(), 7000);
}

#[test]
fn changing_the_zone_rebuilds_the_day_rollup() {
    let dir = tempfile::tempdir().unwrap();
    let t = utc("2026-06-01T22:30:00Z"); // 1 June in UTC, 2 June in Vienna
    let store = open(dir.path(), chrono_tz::UTC, &[meter("main", None)]);
    store.apply(&[liters(0, t, 1.0)]).unwrap();
    let june1 = utc("2026-06-01T00:00:00Z");
    assert_eq!(
        store.usage(0, Step::Day, june1, june1 + 1).unwrap().ml,
        vec![1000]
    );
    drop(store);
    let tz = chrono_tz::Europe::Vienna;
    let store = open(dir.path(), tz, &[meter("main", None)]);
    let june2 = buckets::day_start(tz, "2026-06-02".parse().unwrap());
    assert_eq!(
        store.usage(0, Step::Day, june2, june2 + 1).unwrap().ml,
        vec![1000]
    );
    assert_eq!(
        store.usage(0, Step::Day, june2 - 1, june2).unwrap().ml,
        vec![0]
    );
}

#[test]
fn meters_keep_their_keys_when_the_config_is_reordered() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        dir.path(),
        chrono_tz::UTC,
        &[meter("a", None), meter("b", None)],
    );
    store
        .apply(&[liters(0, 1_000_000, 1.0), liters(1, 1_000_000, 2.0)])
        .unwrap();
    drop(store);
    let store = open(
        dir.path(),
        chrono_tz::UTC,
        &[meter("b", None), meter("a", None)],
    );
    assert_eq!(store.total_ml(0).unwrap(), 2000);
    assert_eq!(store.total_ml(1).unwrap(), 1000);
}

#[test]
fn two_events_with_the_same_timestamp_are_two_liters() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), chrono_tz::UTC, &[meter("main", None)]);
    let t = utc("2026-02-02T02:02:02Z");
    store
        .apply(&[liters(0, t, 1.0), liters(0, t, 1.0)])
        .unwrap();
    store.apply(&[liters(0, t, 0.5)]).unwrap();
    assert_eq!(store.ml_between(0, t, t + 1).unwrap(), 2500);
    let usage = store.usage(0, Step::Minute, t, t + 1).unwrap();
    assert_eq!(usage.ml, vec![2500]);
}

#[test]
fn exact_sums_cut_quarter_hours_at_any_millisecond() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), chrono_tz::UTC, &[meter("main", None)]);
    let from = utc("2026-04-01T00:00:00Z");
    let samples = pulses(from, from + 10 * 3_600_000, 61_001);
    store.apply(&samples).unwrap();
    for (a, b) in [
        (from + 123_457, from + 7_200_000 + 5),
        (from + 1, from + 900_000),
        (from + 5, from + 6),
    ] {
        let expected = samples
            .iter()
            .filter(|s| s.ts_ms >= a && s.ts_ms < b)
            .count() as u64
            * 1000;
        assert_eq!(store.ml_between(0, a, b).unwrap(), expected, "{a}..{b}");
    }
}

#[test]
fn a_reading_set_on_the_dashboard_holds_until_the_config_changes() {
    let dir = tempfile::tempdir().unwrap();
    let t = utc("2026-06-01T12:00:00Z");
    let mut m = meter("main", None);
    m.initial_reading_m3 = 10.0;
    let store = open(dir.path(), chrono_tz::UTC, &[m.clone()]);
    store
        .apply(&[liters(0, t - 1000, 100.0), liters(0, t + 1000, 1.0)])
        .unwrap();
    assert!((store.reading_m3(0).unwrap() - 10.101).abs() < 1e-9);
    store.set_reading(0, 500.0, t).unwrap();
    assert!((store.reading_m3(0).unwrap() - 500.001).abs() < 1e-9);
    store
        .apply(&[liters(0, t + 2000, 2.0), liters(0, t - 2000, 7.0)])
        .unwrap();
    assert!((store.reading_m3(0).unwrap() - 500.003).abs() < 1e-9);
    drop(store);
    let store = open(dir.path(), chrono_tz::UTC, &[m.clone()]);
    assert!((store.reading_m3(0).unwrap() - 500.003).abs() < 1e-9);
    drop(store);
    m.initial_reading_m3 = 20.0;
    let store = open(dir.path(), chrono_tz::UTC, &[m]);
    assert!((store.reading_m3(0).unwrap() - 20.110).abs() < 1e-9);
}

#[test]
fn a_store_of_an_unknown_layout_is_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), chrono_tz::UTC, &[meter("main", None)]);
    store
        .data()
        .unwrap()
        .insert(global_key("layout"), &[99])
        .unwrap();
    store.close().unwrap();
    drop(store);
    let err = Store::open(dir.path(), 1 << 20, chrono_tz::UTC, &[meter("main", None)])
        .err()
        .expect("an unknown layout must not open");
    assert!(err.to_string().contains("layout 99"), "{err}");
}

#[test]
fn a_batch_hopping_between_meters_and_days_keeps_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Tz::UTC, &[meter("a", None), meter("b", None)]);
    let (d1, d2) = (utc("2024-03-01T12:00:00Z"), utc("2024-03-02T12:00:00Z"));
    // Out of time order and interleaved: every key change leaves a run and comes back.
    let batch = [
        liters(0, d1, 1.0),
        liters(1, d1, 2.0),
        liters(0, d2, 4.0),
        liters(0, d1 + 1, 8.0),
        liters(1, d2, 16.0),
        liters(1, d1 + 1, 32.0),
    ];
    let applied = store.apply(&batch).unwrap();
    assert_eq!(applied.events, 6);
    let day = |m, t| store.usage(m, Step::Day, t, t).unwrap().total_ml();
    assert_eq!((day(0, d1), day(0, d2)), (9_000, 4_000));
    assert_eq!((day(1, d1), day(1, d2)), (34_000, 16_000));
    assert_eq!(
        (store.total_ml(0).unwrap(), store.total_ml(1).unwrap()),
        (13_000, 50_000)
    );
    let mut events = Vec::new();
    store
        .for_each_event(1, d1, d2 + 1, |t, ml| events.push((t, ml)))
        .unwrap();
    assert_eq!(events, vec![(d1, 2_000), (d1 + 1, 32_000), (d2, 16_000)]);
}

fn reading(meter: MeterIdx, ts_ms: i64, liters: f64) -> Sample {
    Sample {
        meter,
        ts_ms,
        value: SampleValue::Reading(liters),
    }
}

#[test]
fn a_meter_exchange_restarts_a_sensors_baseline_and_a_pulse_meters_reading() {
    let dir = tempfile::tempdir().unwrap();
    let t = utc("2027-03-01T10:00:00Z");
    let mut cam = meter("cam", None);
    cam.line_protocol.field = FieldSelector::Reading {
        field: "value".into(),
        liters_per_unit: 1000.0,
    };
    cam.exchanges = vec![crate::config::Exchange {
        at_ms: t,
        m3: 0.012,
    }];
    let mut pulses = meter("main", None);
    pulses.exchanges = cam.exchanges.clone();
    let s = open(dir.path(), chrono_tz::UTC, &[pulses, cam]);
    // The old camera meter reads 523.4 m³, then the new one 0.012 m³ and up.
    s.apply(&[
        reading(1, t - 600_000, 523_400.0),
        reading(1, t - 300_000, 523_410.0),
        reading(1, t + 300_000, 15.0),
        reading(1, t + 600_000, 20.0),
    ])
    .unwrap();
    assert_eq!(s.total_ml(1).unwrap(), 10_000 + 3_000 + 5_000);
    assert!((s.reading_m3(1).unwrap() - 0.020).abs() < 1e-9);
    assert_eq!(s.readings_ignored(1).0[0].1, 0, "no decrease was counted");
    // The pulse meter: 5 L before the exchange do not move the new meter's reading.
    s.apply(&[liters(0, t - 1000, 5.0), liters(0, t + 1000, 2.0)])
        .unwrap();
    assert!((s.reading_m3(0).unwrap() - 0.014).abs() < 1e-9);

    // Recorded on the dashboard: the camera meter is exchanged again.
    let t2 = t + 3_600_000;
    s.record_exchange(1, t2, 0.001).unwrap();
    assert!((s.reading_m3(1).unwrap() - 0.001).abs() < 1e-9);
    s.apply(&[reading(1, t2 + 60_000, 3.0)]).unwrap();
    assert!((s.reading_m3(1).unwrap() - 0.003).abs() < 1e-9);
    assert_eq!(s.total_ml(1).unwrap(), 18_000 + 2_000);
    // A sender offline for 3 hours: its rise is spread and the range marked.
    assert!(s.interpolated(1, 0, i64::MAX / 4).unwrap().is_empty());
    let t3 = t2 + 60_000;
    s.apply(&[reading(1, t3 + 3 * 3_600_000, 30.0)]).unwrap();
    assert_eq!(
        s.interpolated(1, t3, t3 + 1).unwrap(),
        vec![(t3, t3 + 3 * 3_600_000)]
    );
}
