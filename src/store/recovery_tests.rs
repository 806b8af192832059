//! Opening after crashes: when the index is trusted, caught up or rebuilt, and
//! that every path ends with the same history as the journal.

use super::*;
use crate::alert::{AlertState, AlertStore, Notification};
use crate::meter::SampleValue;

fn meters() -> Vec<MeterConfig> {
    vec![crate::config::builtin_defaults().meters[0].clone()]
}

fn open(dir: &Path) -> Store {
    Store::open(dir, 1 << 20, chrono_tz::Europe::Vienna, &meters()).unwrap()
}

fn pulses(from_ms: i64, n: i64) -> Vec<Sample> {
    (0..n)
        .map(|i| Sample {
            meter: 0,
            ts_ms: from_ms + i * 1_500,
            value: SampleValue::Liters(1.0),
        })
        .collect()
}

const T0: i64 = 1_774_742_400_000; // 2026-03-29 00:00 UTC: the spring-forward day in Vienna

fn mail() -> Notification {
    Notification {
        alert: "leak".into(),
        created_ms: T0,
        message_id: "<1@x>".into(),
        subject: "water runs".into(),
        text: "…".into(),
        html: None,
        link: None,
        channels: Vec::new(),
        facts: Default::default(),
    }
}

/// Fills a store: 3 batches of events, an alert transition with its mail, a reading.
fn fill(store: &Store) {
    for b in 0..3 {
        store.apply(&pulses(T0 + b * 20_000_000, 1_000)).unwrap();
    }
    store
        .commit("leak", &AlertState::default(), None, &[mail()])
        .unwrap();
    store.set_reading(0, 12.5, T0 + 10_000_000).unwrap();
    store.sync().unwrap();
}

/// What a user can see of the store.
/// Total, the day's sum, the reading, waiting mails and their ids.
type Seen = (u64, u64, f64, usize, Vec<u64>);

fn seen(store: &Store) -> Seen {
    let day = store
        .usage(0, crate::buckets::Step::Day, T0, T0 + 86_400_000)
        .unwrap()
        .total_ml();
    let outbox = store.outbox_pending().unwrap().len();
    let reading = (store.reading_m3(0).unwrap() * 1e6).round() / 1e6;
    let ids = store
        .outbox_pending()
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    (store.total_ml(0).unwrap(), day, reading, outbox, ids)
}

/// A store filled by [`fill`] in a new directory, and what it shows.
fn filled() -> (tempfile::TempDir, Store, Seen) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    fill(&store);
    let before = seen(&store);
    (dir, store, before)
}

/// Says "the machine restarted since this index was written, not closed cleanly".
fn reboot(dir: &Path) {
    set_state(dir, "boot another-boot\n");
}

fn set_state(dir: &Path, text: &str) {
    std::fs::write(dir.join("index.state"), text).unwrap();
}

#[test]
fn a_crash_rebuilds_the_index_from_the_journal_with_nothing_lost() {
    let (dir, store, before) = filled();
    drop(store); // no close: as a SIGKILL leaves it
    let store = open(dir.path());
    let why = store.open_report().rebuilt.clone().expect("rebuilt");
    assert!(why.contains("did not close the index cleanly"), "{why}");
    assert_eq!(seen(&store), before);
    assert_eq!(before.0, 3_000_000);
}

#[test]
fn an_index_that_fails_while_serving_never_stops_the_journal_and_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.apply(&pulses(T0, 100)).unwrap();
    store
        .fail_index_writes
        .store(1, std::sync::atomic::Ordering::SeqCst);
    // The failing batch counts: it is in the journal.
    let applied = store.apply(&pulses(T0 + 3_600_000, 50)).unwrap();
    assert_eq!(applied.events, 50);
    store.sync().unwrap();
    assert!(!store.index_is_current());
    // The next batch rebuilds the index first, then lands in it.
    store.apply(&pulses(T0 + 7_200_000, 25)).unwrap();
    assert!(store.index_is_current());
    assert_eq!(store.total_ml(0).unwrap(), 175_000);
    assert_eq!(
        store.ml_between(0, T0, T0 + 3 * 3_600_000).unwrap(),
        175_000
    );
    store.close().unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        store.open_report().rebuilt,
        None,
        "closed cleanly after the rebuild"
    );
    assert_eq!(store.total_ml(0).unwrap(), 175_000);
}

#[test]
fn counters_keep_counting_while_the_index_cannot_be_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let m = crate::config::MeterConfig::with_id("main");
    let store = Store::open(dir.path(), 1 << 20, chrono_tz::UTC, &[m]).unwrap();
    let counter = |ts: i64, c: f64| Sample {
        meter: 0,
        ts_ms: ts,
        value: SampleValue::Counter(c),
    };
    store.apply(&[counter(T0, 100.0)]).unwrap();
    // This batch fails in the index, and so does the first rebuild.
    store
        .fail_index_writes
        .store(2, std::sync::atomic::Ordering::SeqCst);
    store.apply(&[counter(T0 + 60_000, 110.0)]).unwrap();
    store.apply(&[counter(T0 + 120_000, 115.0)]).unwrap();
    assert!(!store.index_is_current(), "the rebuild failed and waits");
    store.apply(&[counter(T0 + 180_000, 117.0)]).unwrap();
    *store.rebuild_tried.lock().unwrap() = None;
    store.apply(&[counter(T0 + 240_000, 120.0)]).unwrap();
    assert!(store.index_is_current());
    assert_eq!(store.total_ml(0).unwrap(), 20_000, "every difference once");
}

#[test]
fn an_index_that_failed_and_was_not_rebuilt_yet_is_rebuilt_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .fail_index_writes
        .store(1, std::sync::atomic::Ordering::SeqCst);
    store.apply(&pulses(T0, 40)).unwrap();
    store.close().unwrap();
    drop(store);
    let store = open(dir.path());
    assert!(store.open_report().rebuilt.is_some());
    assert_eq!(store.total_ml(0).unwrap(), 40_000);
}

#[test]
fn an_index_of_the_old_day_block_layout_is_rebuilt_once_and_answers_the_same() {
    let (dir, store, before) = filled();
    let minutes = |s: &Store| {
        s.usage(0, crate::buckets::Step::Minute, T0, T0 + 3 * 3_600_000)
            .unwrap()
            .ml
    };
    let by_minute = minutes(&store);
    store.close().unwrap();
    // What layout 2 left: one block per UTC day under 7-byte keys, the total and
    // the last event as meter fields, and its mark; closed cleanly.
    {
        let data = store.data().unwrap();
        let day = (T0 / codec::DAY_MS) as u32;
        let entries: Vec<codec::Entry> = (0..10)
            .map(|i| codec::Entry {
                offset_ms: i * 1_000,
                ml: 1_000,
            })
            .collect();
        data.insert(
            series_key(prefix::EVENTS, 0, day),
            codec::encode_block(&entries),
        )
        .unwrap();
        data.insert(
            codec::meter_key(0, codec::meter_field::TOTAL_ML),
            codec::varint_value(10_000),
        )
        .unwrap();
        data.insert(global_key("layout"), &[2]).unwrap();
        store.db().unwrap().flush().unwrap();
    }
    drop(store);
    let store = open(dir.path());
    let why = store.open_report().rebuilt.clone().expect("rebuilt");
    assert!(why.contains("layout 2"), "{why}");
    assert_eq!(seen(&store), before);
    assert_eq!(minutes(&store), by_minute);
    assert!(
        store
            .data()
            .unwrap()
            .get(series_key(prefix::EVENTS, 0, (T0 / codec::DAY_MS) as u32))
            .unwrap()
            .is_none(),
        "nothing of the old layout is left"
    );
    store.close().unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.open_report().rebuilt, None, "migrated once");
    assert_eq!(seen(&store), before);
}

#[test]
fn after_a_restart_of_the_machine_an_index_not_closed_cleanly_is_rebuilt() {
    let (dir, store, before) = filled();
    drop(store);
    reboot(dir.path());
    let store = open(dir.path());
    let why = store.open_report().rebuilt.clone().expect("rebuilt");
    assert!(why.contains("did not close the index cleanly"), "{why}");
    assert_eq!(seen(&store), before, "the same history, reading and mail");
}

#[test]
fn an_index_closed_cleanly_is_used_after_a_restart_of_the_machine() {
    let (dir, store, before) = filled();
    store.close().unwrap();
    assert!(matches!(
        store.apply(&pulses(T0, 1)),
        Err(StoreError::Closed)
    ));
    drop(store);
    let text = std::fs::read_to_string(dir.path().join("index.state")).unwrap();
    let clean = text.lines().find(|l| l.starts_with("clean ")).expect(&text);
    set_state(dir.path(), &format!("boot another-boot\n{clean}\n"));
    let store = open(dir.path());
    assert_eq!(store.open_report().rebuilt, None);
    assert_eq!(store.open_report().replayed_records, 0);
    assert_eq!(seen(&store), before);
}

#[test]
fn a_garbage_index_in_the_same_boot_still_ends_with_the_whole_history() {
    let (dir, store, before) = filled();
    drop(store);
    let db = dir.path().join("index").join("db");
    let len = std::fs::metadata(&db).unwrap().len() as usize;
    std::fs::write(&db, vec![0x5a; len.max(4096)]).unwrap();
    // sled opens such a file as empty (or refuses it): either way the journal fills it.
    let store = open(dir.path());
    let r = store.open_report();
    assert!(r.rebuilt.is_some() || r.replayed_records >= 5, "{r:?}");
    assert_eq!(seen(&store), before);
}

#[test]
fn an_index_whose_total_disagrees_with_its_days_is_rebuilt() {
    let (dir, store, before) = filled();
    let key = crate::store::chunks::Live::key(0);
    let data = store.live_values().unwrap();
    let mut live = crate::store::chunks::Live::decode(&data.get(key).unwrap().unwrap()).unwrap();
    live.total_ml = 1;
    data.insert(key, live.encode()).unwrap();
    drop(data);
    store.close().unwrap();
    drop(store);
    let store = open(dir.path());
    let why = store.open_report().rebuilt.clone().expect("rebuilt");
    assert!(why.contains("day sums"), "{why}");
    assert_eq!(seen(&store), before);
}

#[test]
fn a_torn_last_record_is_cut_and_everything_before_it_kept() {
    let (dir, store, before) = filled();
    let end = store.journal_lock().end();
    drop(store);
    // Where the next record was being written: in the room ahead, zeros after it.
    let path = dir.path().join(journal::FILE);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"WMJ1\x40\0\0\0half a record", end).unwrap();
    drop(f);
    let store = open(dir.path());
    assert_eq!(store.open_report().torn_tail_bytes, 21);
    assert_eq!(seen(&store), before);
    assert!(
        store.recovery_notice().is_none(),
        "a torn tail is no loss to report"
    );
}

#[test]
fn unreadable_records_are_reported_once_and_the_rest_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for b in 0..4 {
        store.apply(&pulses(T0 + b * 3_600_000, 100)).unwrap();
    }
    store.sync().unwrap();
    drop(store);
    // Damage the third events record (seq 3: seq 1 registered the meter).
    let path = dir.path().join(journal::FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let starts: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"WMJ1")
        .map(|(i, _)| i)
        .collect();
    bytes[starts[3] + 30] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let store = open(dir.path());
    assert!(store.open_report().rebuilt.is_some());
    assert_eq!(
        store.total_ml(0).unwrap(),
        300_000,
        "three of four hours kept"
    );
    let n = store.recovery_notice().expect("a notice");
    assert_eq!(
        (n.missing_from_ms, n.missing_to_ms),
        (T0 + 3_600_000 + 99 * 1_500, T0 + 3 * 3_600_000)
    );
    assert!(std::path::Path::new(&n.damaged_copy).exists());
    assert!(n.message().contains("may be missing"), "{}", n.message());
    store.close().unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        store.recovery_notice(),
        Some(n),
        "reported once, kept as it was"
    );
    assert_eq!(
        store.open_report().rebuilt,
        None,
        "the journal is whole again"
    );
}

#[test]
fn forward_queue_numbers_survive_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.enable_forwarding();
    store.apply(&pulses(T0, 10)).unwrap();
    let first = store.forward_peek(4).unwrap();
    store.forward_ack(first.through.unwrap()).unwrap();
    store.apply(&pulses(T0 + 60_000, 5)).unwrap();
    store.sync().unwrap();
    let left: Vec<u64> = store
        .forward_peek(100)
        .unwrap()
        .events
        .iter()
        .map(|e| e.0)
        .collect();
    drop(store);
    reboot(dir.path());
    let store = open(dir.path());
    assert!(store.open_report().rebuilt.is_some());
    let after: Vec<u64> = store
        .forward_peek(100)
        .unwrap()
        .events
        .iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(after, left);
    assert_eq!(store.forward_backlog(), 11);
}

#[test]
fn a_store_written_by_version_0_1_is_moved_to_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        let data = db.open_tree("data").unwrap();
        data.insert(global_key("meter/main"), &0u16.to_be_bytes())
            .unwrap();
        data.insert(global_key("next_meter"), &1u16.to_be_bytes())
            .unwrap();
        let entries: Vec<codec::Entry> = (0..50)
            .map(|i| codec::Entry {
                offset_ms: i * 1_000,
                ml: 1_000,
            })
            .collect();
        let day = (T0 / codec::DAY_MS) as u32;
        data.insert(
            series_key(prefix::EVENTS, 0, day),
            codec::encode_block(&entries),
        )
        .unwrap();
        data.insert(
            codec::meter_key(0, codec::meter_field::TOTAL_ML),
            codec::varint_value(50_000),
        )
        .unwrap();
        let mut outbox = vec![prefix::OUTBOX];
        outbox.extend_from_slice(&7u64.to_be_bytes());
        let stored = serde_json::json!({"mail": mail(), "attempt": null});
        data.insert(outbox, serde_json::to_vec(&stored).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.total_ml(0).unwrap(), 50_000);
    let pending = store.outbox_pending().unwrap();
    assert_eq!(pending.iter().map(|m| m.id).collect::<Vec<_>>(), [7]);
    assert!(!dir.path().join("db").exists(), "the old files are gone");
    // New ids come after the old ones.
    let ids = store
        .commit("x", &AlertState::default(), None, &[mail()])
        .unwrap();
    assert!(ids[0] > 7);
    drop(store);
    reboot(dir.path());
    assert_eq!(open(dir.path()).total_ml(0).unwrap(), 50_000);
}
