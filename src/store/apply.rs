//! Turning samples into journal records, and journal records into sled writes.
//!
//! `resolve` is the only place that reads a counter: it turns the samples of a
//! batch into resolved events plus the counter's new position, as one record.
//! [`Applier`] applies records to sled: the event chunks and tails (`chunks`), the
//! local-day rollup, the totals, the reading anchor and the forward queue are all
//! derived from the events here, and the store notes the journal position each
//! write reaches ("the journal up to record N"). What a write costs follows the
//! records it carries: the chunks their events land in, one live value per meter,
//! one day sum per local day. A rebuild feeds thousands of records through one
//! applier and writes them in a few large writes.

use std::collections::BTreeMap;

use chrono_tz::Tz;

use super::chunks::{Chunks, Live};
use super::codec::{self, meter_field, meter_key, prefix, series_key, Entry, DAY_MS};
use super::reading::{decode_anchor, encode_anchor};
use super::readings::{self, Position, Step};
use super::record::{Event, Op};
use super::{global_key, read_i64, Applied, Store, StoreError};
use crate::buckets;
use crate::meter::{Sample, SampleValue};

/// `G journal`: the last record sled holds (seq u64 BE, end offset u64 BE),
/// written when the index is closed cleanly.
pub(super) const POSITION_KEY: &str = "journal";

/// A queue or id number from a record: unique, growing, and the same on every replay.
pub fn record_id(seq: u64, index: usize) -> u64 {
    (seq << 24) | (index as u64 & 0xff_ffff)
}

impl Store {
    /// Resolves `samples` into the ops of one record: events, and each touched meter's
    /// counter and reading position (see `readings`) and last-seen time. The
    /// positions come back too: once the record is in the journal, [`Store::remember`]
    /// keeps them, so the next batch resolves from them even while the index is
    /// being rebuilt (or cannot be opened at all).
    pub(super) fn resolve(&self, samples: &[Sample]) -> Result<(Vec<Op>, Resolved), StoreError> {
        let mut states: BTreeMap<u16, Seen> = BTreeMap::new();
        let mut events = Vec::with_capacity(samples.len());
        let mut marks = Vec::new();
        for s in samples {
            let slot = self.slot(s.meter)?;
            let key = slot.key;
            let seen = match states.entry(key) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => v.insert(self.load_seen(key)?),
            };
            seen.last_seen = Some(seen.last_seen.map_or(s.ts_ms, |t| t.max(s.ts_ms)));
            let step = match s.value {
                SampleValue::Liters(l) => {
                    let ml = super::liters_to_ml(l);
                    if ml > 0 {
                        seen.events_max = seen.events_max.max(Some(s.ts_ms));
                        events.push(Event {
                            meter: key,
                            ts_ms: s.ts_ms,
                            ml,
                        });
                    }
                    continue;
                }
                SampleValue::Counter(c) => {
                    seen.counter_changed = true;
                    seen.counter.counter(c, s.ts_ms, slot.max_flow_l_per_min)
                }
                SampleValue::Reading(r) => {
                    seen.reading_changed = true;
                    // A new meter since the baseline: its readings count from what
                    // it showed when it was fitted.
                    if let Some(x) = slot.exchange_before(s.ts_ms) {
                        if seen.reading.last.is_none_or(|(_, t)| t < x.at_ms) {
                            seen.reading = Position {
                                last: Some((x.m3 * 1000.0, x.at_ms)),
                                lower: Vec::new(),
                            };
                        }
                    }
                    seen.reading.reading(r, s.ts_ms, slot.max_flow_l_per_min)
                }
            };
            slot.count(&step, s.meter, s.ts_ms);
            if let Some((from, to)) = step.interpolated {
                marks.push(Op::Put {
                    key: readings::interpolated_key(key, from),
                    value: to.to_be_bytes().to_vec(),
                });
            }
            let Step { events: spread, .. } = step;
            seen.events_max = seen.events_max.max(spread.iter().map(|e| e.0).max());
            events.extend(spread.into_iter().map(|(ts_ms, ml)| Event {
                meter: key,
                ts_ms,
                ml,
            }));
        }
        let mut ops = Vec::with_capacity(1 + 3 * states.len());
        if !events.is_empty() {
            ops.push(Op::Events {
                forward: self.forward.is_enabled(),
                events,
            });
        }
        for (key, seen) in &states {
            seen.write(*key, &mut ops);
        }
        ops.extend(marks);
        Ok((ops, Resolved(states)))
    }

    /// Keeps the positions of a record that is now in the journal.
    pub(super) fn remember(&self, resolved: Resolved) {
        let mut kept = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for (key, seen) in resolved.0 {
            kept.insert(key, seen.settled());
        }
    }

    /// Reads every meter's positions from the index now, so that batches resolve
    /// even if the index fails later.
    pub(super) fn keep_positions(&self) -> Result<(), StoreError> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clear();
        for slot in &self.meters {
            let seen = self.load_seen(slot.key)?;
            self.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(slot.key, seen);
        }
        Ok(())
    }

    fn load_seen(&self, key: u16) -> Result<Seen, StoreError> {
        if let Some(kept) = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(kept.clone());
        }
        let data = self.data()?;
        let counter = data
            .get(meter_key(key, meter_field::COUNTER))?
            .and_then(|v| decode_counter(&v));
        let reading = data
            .get(meter_key(key, meter_field::READING))?
            .and_then(|v| readings::decode(&v))
            .unwrap_or_default();
        let last_seen = data
            .get(meter_key(key, meter_field::LAST_SEEN_MS))?
            .map(|v| read_i64(&v))
            .filter(|&t| t != i64::MIN)
            .max(read_live(self, key)?.last_event_ms);
        Ok(Seen {
            counter: Position {
                last: counter,
                lower: Vec::new(),
            },
            counter_changed: false,
            reading,
            reading_changed: false,
            last_seen_old: last_seen,
            last_seen,
            events_max: None,
        })
    }
}

/// The meters' positions after a resolved batch, to keep once it is journaled.
pub(super) struct Resolved(BTreeMap<u16, Seen>);

/// A meter's counter and reading positions and last-seen time while a batch is resolved.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    counter: Position,
    counter_changed: bool,
    reading: Position,
    reading_changed: bool,
    /// The last-seen time stored: the `LAST_SEEN_MS` key or the last event, whichever is later.
    last_seen_old: Option<i64>,
    last_seen: Option<i64>,
    /// The newest event this batch makes for the meter.
    events_max: Option<i64>,
}

impl Seen {
    /// The position as the index holds it once this batch's record is applied.
    fn settled(self) -> Seen {
        let covered = self.last_seen_old.max(self.last_seen).max(self.events_max);
        Seen {
            counter_changed: false,
            reading_changed: false,
            last_seen_old: covered,
            last_seen: covered,
            events_max: None,
            ..self
        }
    }

    fn write(&self, meter: u16, ops: &mut Vec<Op>) {
        if self.reading_changed {
            ops.push(Op::Put {
                key: meter_key(meter, meter_field::READING).to_vec(),
                value: readings::encode(&self.reading),
            });
        }
        if self.counter_changed {
            if let Some((value, ts)) = self.counter.last {
                let mut v = vec![0u8; 16];
                v[0..8].copy_from_slice(&value.to_be_bytes());
                v[8..16].copy_from_slice(&ts.to_be_bytes());
                ops.push(Op::Put {
                    key: meter_key(meter, meter_field::COUNTER).to_vec(),
                    value: v,
                });
            }
        }
        // A sample that made an event is seen through the last event: only a
        // later sample without water (a reading that did not move) is written.
        let covered = self.last_seen_old.max(self.events_max);
        if let Some(t) = self.last_seen.filter(|t| Some(*t) > covered) {
            ops.push(Op::Put {
                key: meter_key(meter, meter_field::LAST_SEEN_MS).to_vec(),
                value: t.to_be_bytes().to_vec(),
            });
        }
    }
}

fn decode_counter(v: &[u8]) -> Option<(f64, i64)> {
    let b: [u8; 16] = v.try_into().ok()?;
    let value = f64::from_be_bytes(b[0..8].try_into().ok()?);
    let ts = i64::from_be_bytes(b[8..16].try_into().ok()?);
    Some((value, ts))
}

/// Gathers records and writes them to sled in one go (see the module comment).
pub(super) struct Applier<'s> {
    store: &'s Store,
    /// Events by meter and UTC day.
    blocks: RunMap<(u16, u32), Vec<Entry>>,
    days: RunMap<(u16, u32), u64>,
    meters: BTreeMap<u16, Derived>,
    forward: Vec<(u64, Event)>,
    puts: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    local_days: LocalDays,
    position: Option<(u64, u64)>,
    applied: Applied,
    /// Events gathered since the last write (a rebuild writes every so many).
    pending_events: usize,
    pending_records: usize,
}

/// What the events of a batch add to one meter's derived state.
#[derive(Default)]
struct Derived {
    total_add: u64,
    last_event: Option<i64>,
    /// The stored anchor (reading time, liters before it), read at the first event.
    anchor: Option<(i64, u64)>,
    before_anchor_add: u64,
}

impl<'s> Applier<'s> {
    pub fn new(store: &'s Store) -> Applier<'s> {
        Applier {
            store,
            blocks: RunMap::default(),
            days: RunMap::default(),
            meters: BTreeMap::new(),
            forward: Vec::new(),
            puts: BTreeMap::new(),
            local_days: LocalDays::new(store.tz),
            position: None,
            applied: Applied::default(),
            pending_events: 0,
            pending_records: 0,
        }
    }

    /// Events gathered and not yet written.
    pub fn pending_events(&self) -> usize {
        self.pending_events
    }

    /// Records gathered and not yet written.
    pub fn pending_records(&self) -> usize {
        self.pending_records
    }

    /// Adds record `seq` (ending at journal offset `end`). Ops that read what sled
    /// holds (a range delete, a reading) write out everything before them first.
    pub fn add(&mut self, seq: u64, end: u64, ops: &[Op]) -> Result<(), StoreError> {
        let mut write_now = false;
        for op in ops {
            match op {
                Op::Events { forward, events } => self.add_events(seq, *forward, events)?,
                Op::Put { key, value } => {
                    self.puts.insert(key.clone(), Some(value.clone()));
                }
                Op::Del { key } => {
                    self.puts.insert(key.clone(), None);
                }
                Op::DelRange { from, to } => {
                    self.write()?;
                    let data = self.store.data()?;
                    for k in data.range(from.as_slice()..=to.as_slice()).keys() {
                        self.puts.insert(k?.to_vec(), None);
                    }
                }
                Op::SetReading {
                    meter,
                    m3,
                    at_ms,
                    was_m3,
                    was_anchor_ms,
                } => {
                    self.write()?;
                    let before = self.store.ml_between_key(*meter, 0, *at_ms)?;
                    let mut v = vec![0u8; 32];
                    v[0..8].copy_from_slice(&m3.to_be_bytes());
                    v[8..16].copy_from_slice(&at_ms.to_be_bytes());
                    v[16..24].copy_from_slice(&was_m3.to_be_bytes());
                    v[24..32].copy_from_slice(&was_anchor_ms.to_be_bytes());
                    let anchor = meter_key(*meter, meter_field::ANCHOR).to_vec();
                    let reading = meter_key(*meter, meter_field::READING_OVERRIDE).to_vec();
                    self.puts.insert(reading, Some(v));
                    self.puts
                        .insert(anchor, Some(encode_anchor(*at_ms, before).to_vec()));
                    // Later events read the anchor from the index: it must be there.
                    write_now = true;
                }
                Op::Correct {
                    meter,
                    from_ms,
                    to_ms,
                    set_ml,
                    at_ms,
                    reason,
                } => {
                    // It reads and rewrites whole blocks and sums: everything before
                    // it is written first, and it is written at once, so no later
                    // event is added to a block or sum it has not seen.
                    self.write()?;
                    let puts = self
                        .store
                        .correction_puts(seq, *meter, *from_ms, *to_ms, *set_ml, *at_ms, reason)?;
                    self.puts.extend(puts);
                    write_now = true;
                }
            }
        }
        self.position = Some((seq, end));
        self.pending_records += 1;
        if write_now {
            self.write()?;
        }
        Ok(())
    }

    fn add_events(&mut self, seq: u64, forward: bool, events: &[Event]) -> Result<(), StoreError> {
        for (i, e) in events.iter().enumerate() {
            let (Some(block), Some(day)) = (
                codec::block_slot(e.ts_ms),
                codec::day_slot(self.local_days.day_of(e.ts_ms)),
            ) else {
                continue;
            };
            if e.ml == 0 {
                continue;
            }
            let derived = match self.meters.entry(e.meter) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let anchor = self
                        .store
                        .data()?
                        .get(meter_key(e.meter, meter_field::ANCHOR))?
                        .and_then(|v| decode_anchor(&v));
                    v.insert(Derived {
                        anchor,
                        ..Derived::default()
                    })
                }
            };
            let offset = (e.ts_ms - i64::from(block) * DAY_MS) as u32;
            self.blocks.entry((e.meter, block)).push(Entry {
                offset_ms: offset,
                ml: e.ml,
            });
            *self.days.entry((e.meter, day)) += e.ml;
            derived.total_add += e.ml;
            derived.last_event = Some(derived.last_event.map_or(e.ts_ms, |t| t.max(e.ts_ms)));
            if derived.anchor.is_some_and(|(a, _)| e.ts_ms < a) {
                derived.before_anchor_add += e.ml;
            }
            if forward {
                self.forward.push((record_id(seq, i), *e));
            }
            self.applied.events += 1;
            self.applied.milliliters += e.ml;
            self.pending_events += 1;
        }
        Ok(())
    }

    /// Writes everything gathered in one go (readers never see part of it), and
    /// notes the position.
    pub fn write(&mut self) -> Result<(), StoreError> {
        let Some((seq, end)) = self.position else {
            return Ok(());
        };
        let data = self.store.data()?;
        let mut batch: super::Writes = Vec::new();
        let mut lives: BTreeMap<u16, Live> = BTreeMap::new();
        {
            let events = self.store.events()?;
            let mut chunks = Chunks::new(&events);
            for ((meter, day), mut entries) in std::mem::take(&mut self.blocks).into_map() {
                let live = match lives.entry(meter) {
                    std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(read_live(self.store, meter)?)
                    }
                };
                entries.sort_unstable();
                chunks.add(meter, live, day, &entries)?;
            }
            for (meter, live) in lives.iter_mut() {
                chunks.seal_if_full(*meter, live)?;
            }
            for (key, value) in chunks.into_writes() {
                batch.push((key.to_vec(), value));
            }
        }
        for ((meter, day), ml) in std::mem::take(&mut self.days).into_map() {
            let key = series_key(prefix::DAYS, meter, day);
            let old = data.get(key)?.map_or(0, |v| codec::read_varint_value(&v));
            batch.push((key.to_vec(), Some(codec::varint_value(old + ml))));
        }
        for (meter, d) in std::mem::take(&mut self.meters) {
            let live = match lives.entry(meter) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(read_live(self.store, meter)?)
                }
            };
            live.total_ml += d.total_add;
            live.last_event_ms = live.last_event_ms.max(d.last_event);
            if let (Some((anchor, before)), true) = (d.anchor, d.before_anchor_add > 0) {
                let key = meter_key(meter, meter_field::ANCHOR);
                let v = encode_anchor(anchor, before + d.before_anchor_add);
                batch.push((key.to_vec(), Some(v.to_vec())));
            }
        }
        for (meter, live) in lives {
            batch.push((Live::key(meter).to_vec(), Some(live.encode())));
        }
        let queued = self.forward.len() as u64;
        for (id, e) in self.forward.drain(..) {
            let key = super::forward::entry_key(id);
            let value = super::forward::encode(e.meter, e.ts_ms, e.ml);
            batch.push((key.to_vec(), Some(value.to_vec())));
        }
        batch.extend(std::mem::take(&mut self.puts));
        self.store.commit_writes(&data, batch)?;
        self.store.set_applied(seq, end);
        self.store.forward.committed(queued);
        self.position = None;
        self.pending_events = 0;
        self.pending_records = 0;
        Ok(())
    }

    /// Writes what is left and says what was applied.
    pub fn finish(mut self) -> Result<Applied, StoreError> {
        self.write()?;
        Ok(self.applied)
    }
}

/// A meter's live value as the index holds it (empty for a meter without events).
pub(super) fn read_live(store: &Store, meter: u16) -> Result<Live, StoreError> {
    match store.live_values()?.get(Live::key(meter))? {
        None => Ok(Live::default()),
        Some(v) => Live::decode(&v).ok_or_else(|| {
            StoreError::Io(format!(
                "the index's running total of meter {meter} is damaged"
            ))
        }),
    }
}

/// Records the journal position the index holds (written at a clean close).
pub(super) fn write_position(
    tree: &sled::Tree,
    position: Option<(u64, u64)>,
) -> Result<(), StoreError> {
    let (seq, end) = position.unwrap_or((0, 0));
    let mut pos = [0u8; 16];
    pos[0..8].copy_from_slice(&seq.to_be_bytes());
    pos[8..16].copy_from_slice(&end.to_be_bytes());
    tree.insert(global_key(POSITION_KEY), &pos[..])?;
    Ok(())
}

/// The journal position the index held at its clean close: the last record's seq and where it ends.
pub(super) fn read_position(tree: &sled::Tree) -> Result<Option<(u64, u64)>, StoreError> {
    let Some(v) = tree.get(global_key(POSITION_KEY))? else {
        return Ok(None);
    };
    let b: [u8; 16] = v.as_ref().try_into().map_err(|_| {
        StoreError::Db(sled::Error::Unsupported(
            "the store's journal position is damaged".into(),
        ))
    })?;
    let half = |i: usize| {
        let mut h = [0u8; 8];
        h.copy_from_slice(&b[i..i + 8]);
        u64::from_be_bytes(h)
    };
    Ok(Some((half(0), half(8))))
}

/// A map that holds the value of the most recent key outside the tree: samples come
/// in time order, so runs of them share a block and a day and skip the tree search
/// (a BTreeMap lookup per sample was a hot spot of `apply` in the callgrind profile).
struct RunMap<K, V> {
    map: BTreeMap<K, V>,
    last: Option<(K, V)>,
}

impl<K, V> Default for RunMap<K, V> {
    fn default() -> Self {
        RunMap {
            map: BTreeMap::new(),
            last: None,
        }
    }
}

impl<K: Ord + Copy, V: Default> RunMap<K, V> {
    /// The value of `key`, created empty if new.
    fn entry(&mut self, key: K) -> &mut V {
        if self.last.as_ref().map(|(k, _)| *k) != Some(key) {
            let value = self.map.remove(&key).unwrap_or_default();
            if let Some((k, v)) = self.last.replace((key, value)) {
                self.map.insert(k, v);
            }
        }
        &mut self.last.get_or_insert_with(|| (key, V::default())).1
    }

    fn into_map(mut self) -> BTreeMap<K, V> {
        if let Some((k, v)) = self.last.take() {
            self.map.insert(k, v);
        }
        self.map
    }
}

/// Local day numbers of instants, remembering the last day's bounds: samples
/// come in time order, so most lookups skip the time zone arithmetic.
pub(crate) struct LocalDays {
    tz: Tz,
    /// `[start, end)` of `day` as UTC instants.
    cached: Option<(i64, i64, i64)>,
}

impl LocalDays {
    pub fn new(tz: Tz) -> LocalDays {
        LocalDays { tz, cached: None }
    }

    pub fn day_of(&mut self, ts_ms: i64) -> i64 {
        if let Some((start, end, day)) = self.cached {
            if (start..end).contains(&ts_ms) {
                return day;
            }
        }
        let day = buckets::local_day_number(self.tz, ts_ms);
        let start_of =
            |n: i64| buckets::date_of_day_number(n).map(|d| buckets::day_start(self.tz, d));
        if let (Some(start), Some(end)) = (start_of(day), start_of(day + 1)) {
            self.cached = Some((start, end, day));
        }
        day
    }
}
