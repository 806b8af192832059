//! The chunk layout against a model: random batches (mostly in time order, some
//! late, some at one millisecond), removals and day changes, each written as one
//! batch over a map that stands in for sled. After every batch the chunks and the
//! tail must read back exactly the model's events in time order, every chunk must
//! stay within its size and key range, and a batch must write only a few chunks.

use std::collections::BTreeMap;

use super::*;
use crate::store::codec::{Entry, DAY_MS};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

impl Source for Map {
    fn scan<'a>(&'a self, lo: &[u8], hi: &[u8], rev: bool) -> Scan<'a> {
        let it = self
            .range(lo.to_vec()..=hi.to_vec())
            .map(|(k, v)| Ok((k.clone(), v.clone())));
        if rev {
            Box::new(it.rev())
        } else {
            Box::new(it)
        }
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const METER: u16 = 3;

/// The store as this test keeps it: the map, the meter's live value, the model.
struct World {
    db: Map,
    live: Live,
    model: Vec<(i64, u64)>,
    /// Chunk keys written by the last batch.
    last_writes: usize,
}

impl World {
    fn new() -> World {
        World {
            db: Map::new(),
            live: Live::default(),
            model: Vec::new(),
            last_writes: 0,
        }
    }

    /// Adds events (any order) as one batch, grouped by day as the applier does.
    fn add(&mut self, events: &[(i64, u64)]) {
        let mut days: BTreeMap<u32, Vec<Entry>> = BTreeMap::new();
        for &(ts, ml) in events {
            days.entry((ts / DAY_MS) as u32).or_default().push(Entry {
                offset_ms: (ts % DAY_MS) as u32,
                ml,
            });
            self.model.push((ts, ml));
        }
        let mut chunks = Chunks::new(&self.db);
        let mut live = self.live.clone();
        for (day, mut entries) in days {
            entries.sort_unstable();
            chunks.add(METER, &mut live, day, &entries).unwrap();
        }
        chunks.seal_if_full(METER, &mut live).unwrap();
        let writes = chunks.into_writes();
        self.commit(writes, live);
    }

    fn remove(&mut self, from: i64, to: i64) {
        let mut chunks = Chunks::new(&self.db);
        let mut live = self.live.clone();
        let mut gone = Vec::new();
        chunks
            .remove(METER, &mut live, from, to, |ts, ml| gone.push((ts, ml)))
            .unwrap();
        let writes = chunks.into_writes();
        self.commit(writes, live);
        let mut expected: Vec<_> = self
            .model
            .iter()
            .copied()
            .filter(|(t, _)| (from..to).contains(t))
            .collect();
        self.model.retain(|(t, _)| !(from..to).contains(t));
        expected.sort_unstable();
        gone.sort_unstable();
        assert_eq!(gone, expected, "removed [{from}, {to})");
    }

    fn commit(&mut self, writes: BTreeMap<ChunkKey, Option<Vec<u8>>>, live: Live) {
        self.last_writes = writes.len();
        for (k, v) in writes {
            match v {
                Some(v) => self.db.insert(k.to_vec(), v),
                None => self.db.remove(k.as_slice()),
            };
        }
        self.live = live;
    }

    /// Every event as a reader sees it: each day's chunks in key order, then the tail.
    fn read(&self) -> Vec<(i64, u64)> {
        let mut out = Vec::new();
        let mut tail_done = self.live.tail.is_empty();
        let tail = |out: &mut Vec<(i64, u64)>| {
            let base = i64::from(self.live.tail.day) * DAY_MS;
            for e in codec::block_entries(&self.live.tail.block) {
                out.push((base + i64::from(e.offset_ms), e.ml));
            }
        };
        for (k, v) in &self.db {
            let (m, day, _) = parse_chunk_key(k).unwrap();
            assert_eq!(m, METER);
            if !tail_done && day > self.live.tail.day {
                tail(&mut out);
                tail_done = true;
            }
            let base = i64::from(day) * DAY_MS;
            for e in codec::block_entries(v) {
                out.push((base + i64::from(e.offset_ms), e.ml));
            }
        }
        if !tail_done {
            tail(&mut out);
        }
        out
    }

    fn check(&self, what: &str) {
        let read = self.read();
        let times: Vec<i64> = read.iter().map(|e| e.0).collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{what}: events read out of order"
        );
        let mut model = self.model.clone();
        model.sort_unstable();
        let mut got = read.clone();
        got.sort_unstable();
        assert_eq!(got, model, "{what}: the events differ from the model");
        // Every chunk within its size and its key range, keys unique per day.
        let keys: Vec<(u32, u32)> = self
            .db
            .keys()
            .map(|k| {
                let (_, d, s) = parse_chunk_key(k).unwrap();
                (d, s)
            })
            .collect();
        for (i, (k, v)) in self.db.iter().enumerate() {
            let (_, day, start) = parse_chunk_key(k).unwrap();
            let entries = codec::decode_block(v);
            assert!(!entries.is_empty(), "{what}: an empty chunk is kept");
            assert!(
                v.len() <= CHUNK_BYTES || overflow_is_one_moment(&entries),
                "{what}: chunk of {} bytes",
                v.len()
            );
            assert!(
                entries[0].offset_ms >= start,
                "{what}: an event before its key"
            );
            if let Some(&(d2, s2)) = keys.get(i + 1) {
                if d2 == day {
                    let last = entries.last().unwrap().offset_ms;
                    assert!(last < s2, "{what}: an event at or after the next key");
                }
            }
            if day == self.live.tail.day {
                let last = entries.last().unwrap().offset_ms;
                assert!(
                    last <= self.live.tail.floor,
                    "{what}: a chunk above the floor"
                );
            }
        }
        for e in codec::block_entries(&self.live.tail.block) {
            assert!(
                e.offset_ms >= self.live.tail.floor,
                "{what}: the tail below its floor"
            );
        }
    }
}

/// Whether everything past [`CHUNK_BYTES`] is events at one millisecond (a run
/// that is never split).
fn overflow_is_one_moment(entries: &[Entry]) -> bool {
    let mut size = 4;
    let mut prev = 0;
    for (i, e) in entries.iter().enumerate() {
        let mut one = Vec::new();
        codec::put_entry(&mut one, e, prev);
        size += one.len();
        prev = e.offset_ms;
        if size > CHUNK_BYTES {
            return entries[i..].iter().all(|x| x.offset_ms == e.offset_ms)
                && i > 0
                && entries[i - 1].offset_ms == e.offset_ms;
        }
    }
    true
}

#[test]
fn pulses_in_time_order_fill_chunks_and_touch_one_at_a_time() {
    let mut w = World::new();
    let day = 20_000 * DAY_MS;
    for i in 0..20_000i64 {
        w.add(&[(day + i * 4_000, 1000)]);
        assert!(
            w.last_writes <= 2,
            "pulse {i} wrote {} chunks",
            w.last_writes
        );
    }
    w.check("20,000 pulses");
    let chunks = w.db.len();
    assert!(
        (40..=100).contains(&chunks),
        "20,000 pulses make {chunks} chunks"
    );
    assert!(w.live.tail.block.len() <= TAIL_BYTES + 8);
}

#[test]
fn a_late_event_rewrites_only_the_chunk_that_holds_its_moment() {
    let mut w = World::new();
    let day = 20_000 * DAY_MS;
    let batch: Vec<(i64, u64)> = (0..50_000i64).map(|i| (day + i * 1_000, 100)).collect();
    w.add(&batch);
    w.check("a dense day in one batch");
    let before = w.db.clone();
    w.add(&[(day + 12 * 3_600_000 + 500, 250)]);
    w.check("one late event");
    assert!(w.last_writes <= 2, "one chunk rewritten, or split in two");
    let changed =
        w.db.iter()
            .filter(|(k, v)| before.get(*k) != Some(v))
            .count();
    assert!(changed <= 2, "{changed} chunks changed");
}

#[test]
fn events_before_the_first_chunk_join_it_or_start_their_own() {
    let mut w = World::new();
    let day = 19_000 * DAY_MS;
    w.add(&[(day + 50_000_000, 1000)]);
    w.add(&[(day + 60_000_000, 1000)]);
    // A new day moves the tail on: the day before is now chunks only.
    w.add(&[(day + DAY_MS + 5, 1000)]);
    // Backwards, one at a time, before everything of that day.
    for i in 0..500i64 {
        w.add(&[(day + 40_000_000 - i * 1_000, 1000)]);
    }
    w.check("a day filled backwards");
    assert!(w.db.len() < 10, "{} chunks", w.db.len());
}

#[test]
fn a_thousand_events_in_one_millisecond_stay_together() {
    let mut w = World::new();
    let t = 19_500 * DAY_MS + 1234;
    let batch: Vec<(i64, u64)> = (0..1_000).map(|_| (t, 1000)).collect();
    w.add(&batch);
    w.add(&[(t + 1, 1000), (t - 1, 1000)]);
    w.add(&batch);
    w.check("one millisecond");
}

#[test]
fn removing_a_range_keeps_everything_around_it() {
    let mut w = World::new();
    let day = 19_000 * DAY_MS;
    let batch: Vec<(i64, u64)> = (0..30_000i64).map(|i| (day + i * 7_001, 1000)).collect();
    w.add(&batch);
    w.remove(day + 3_600_000, day + 7_200_000);
    w.check("an hour removed");
    w.remove(day + DAY_MS - 10, day + 3 * DAY_MS);
    w.check("the tail removed");
    w.remove(i64::MIN, i64::MAX);
    w.check("everything removed");
    assert!(w.db.is_empty());
    w.add(&[(day + 5, 1000)]);
    w.check("after everything was removed");
}

#[test]
fn the_newest_event_follows_appends_and_removals() {
    let mut w = World::new();
    let day = 19_000 * DAY_MS;
    w.add(&[(day + 10, 1000), (day + DAY_MS + 20, 1000)]);
    let newest = |w: &World| Chunks::new(&w.db).newest(METER, &w.live).unwrap();
    assert_eq!(newest(&w), Some(day + DAY_MS + 20));
    w.remove(day + DAY_MS, day + 2 * DAY_MS);
    assert_eq!(newest(&w), Some(day + 10));
    w.remove(day, day + 11);
    assert_eq!(newest(&w), None);
}

#[test]
fn live_values_round_trip_and_damage_reads_as_none() {
    let live = Live {
        total_ml: 123_456_789,
        last_event_ms: Some(1_700_000_000_123),
        tail: Tail {
            day: 19_700,
            floor: 55,
            block: codec::encode_block(&[Entry {
                offset_ms: 60,
                ml: 1000,
            }]),
        },
    };
    assert_eq!(Live::decode(&live.encode()), Some(live.clone()));
    let empty = Live::default();
    assert_eq!(Live::decode(&empty.encode()), Some(empty));
    assert_eq!(Live::decode(&[1, 2, 3]), None);
    let mut v = live.encode();
    v[0] = 9;
    assert_eq!(Live::decode(&v), None);
}

#[test]
fn random_batches_removals_and_late_events_match_the_model() {
    for seed in 1..=6u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        let mut w = World::new();
        let mut now = 19_000 * DAY_MS + (rng.below(DAY_MS as u64) as i64);
        for round in 0..150 {
            let what = format!("seed {seed} round {round}");
            match rng.below(20) {
                0 => {
                    let from = now - rng.below(3 * DAY_MS as u64) as i64;
                    let to = from + rng.below(DAY_MS as u64 / 2) as i64;
                    w.remove(from, to);
                }
                1 => {
                    // Late events from the last few days.
                    let n = 1 + rng.below(40);
                    let batch: Vec<_> = (0..n)
                        .map(|_| {
                            (
                                now - rng.below(4 * DAY_MS as u64) as i64,
                                1 + rng.below(3000),
                            )
                        })
                        .collect();
                    w.add(&batch);
                }
                2 => {
                    // Several at one moment.
                    let n = 1 + rng.below(300);
                    w.add(&vec![(now, 1000); n as usize]);
                }
                _ => {
                    let most = if rng.below(10) == 0 { 1000 } else { 8 };
                    let n = 1 + rng.below(most);
                    let mut batch = Vec::new();
                    for _ in 0..n {
                        now += rng.below(40_000) as i64;
                        batch.push((now, if rng.below(4) == 0 { 100 } else { 1000 }));
                    }
                    w.add(&batch);
                }
            }
            w.check(&what);
        }
    }
}
