//! The store: every liter event and its rollups in one embedded sled database.
//!
//! This is the only module that names sled. Layout (see `codec` and ARCHITECTURE.md):
//! per meter, one key per UTC day holding that day's events delta-encoded; a
//! per-local-day rollup in the configured zone (rebuilt from the events when the zone
//! changes); and per-meter totals, counter state and the meter-reading anchor. All
//! writes of one batch go through one `apply_batch` on one tree, so the events and
//! their rollups can never disagree after a crash.
//!
//! Writes come only from the writer task (`writer`); reads may come from anywhere.

pub mod alerts;
pub mod backup;
pub mod codec;
pub mod forward;
mod handle;
pub mod query;
mod reading;
pub mod recovery;
pub mod writer;

use std::collections::BTreeMap;
use std::path::Path;

use chrono_tz::Tz;

use crate::buckets;
use crate::config::MeterConfig;
use crate::ingest::{MeterIdx, Sample, SampleValue};
use codec::{meter_field, meter_key, prefix, series_key, Entry, DAY_MS};
pub use reading::ReadingBase;
use reading::{decode_anchor, encode_anchor};

pub use query::Usage;
pub use recovery::RecoveryNotice;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store's database failed: {0}")]
    Db(#[from] sled::Error),
    #[error("the store is closed after a disk error and reopens when the disk takes writes again")]
    Reopening,
    #[error("the store was written in layout {0}, which this version of watermeter cannot read; use the version that wrote it to `watermeter export` the data")]
    Layout(u8),
    #[error("more than 65,535 meters were ever registered in this store")]
    TooManyMeters,
    #[error("meter index {0} is not configured")]
    UnknownMeter(MeterIdx),
}

/// sled's log segment size (a power of two).
const SEGMENT_BYTES: usize = 64 << 10;

/// One configured meter as the store knows it.
#[derive(Debug)]
struct MeterSlot {
    /// The meter's number inside keys; stable across config edits and reorderings.
    key: u16,
    /// What the physical meter showed, and when; liters before then do not move it.
    reading: std::sync::RwLock<ReadingBase>,
    /// The config's values, to tell whether a reading set on the dashboard still applies.
    configured: ReadingBase,
}

/// What one `apply` did.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Applied {
    pub events: u64,
    pub milliliters: u64,
}

pub struct Store {
    /// The sled database and tree, reopened after a disk error (see `handle`).
    handle: handle::Handle,
    meters: Vec<MeterSlot>,
    tz: Tz,
    forward: forward::Queue,
    /// Held by every batch and every flush, so the two never overlap (see `commit_batch`).
    commits: std::sync::Mutex<()>,
}

impl Store {
    /// Opens (or creates) the store in `dir`, registers the configured meters and
    /// rebuilds the day rollup if the time zone changed since the last run.
    pub fn open(
        dir: &Path,
        cache_bytes: u64,
        tz: Tz,
        meters: &[MeterConfig],
    ) -> Result<Store, StoreError> {
        let handle = handle::Handle::open(dir, cache_bytes)?;
        let forward = forward::Queue::open(&handle.get()?.data)?;
        let mut store = Store {
            handle,
            meters: Vec::new(),
            tz,
            forward,
            commits: std::sync::Mutex::new(()),
        };
        for m in meters {
            let key = store.register_meter(&m.id)?;
            let configured = ReadingBase {
                m3: m.initial_reading_m3,
                anchor_ms: m.reading_set_at_ms,
            };
            let reading = store
                .reading_override(key, configured)?
                .unwrap_or(configured);
            store.meters.push(MeterSlot {
                key,
                reading: std::sync::RwLock::new(reading),
                configured,
            });
        }
        store.ensure_layout()?;
        store.ensure_day_rollup_zone()?;
        store.ensure_anchors()?;
        Ok(store)
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Makes everything applied so far durable (one fsync for all of it).
    pub fn flush(&self) -> Result<(), StoreError> {
        let db = self.db()?;
        let _gate = self.commit_gate();
        db.flush()?;
        Ok(())
    }

    /// Applies a batch atomically. Every batch goes through here, never straight
    /// to sled: a sled batch takes sled's global write lock, which waits for every
    /// reader, and a flush counts as a reader for as long as its fsync takes (on an
    /// SD card, up to seconds). Meanwhile sled lets no new reader in, so one batch
    /// arriving during a flush would stall every page and API read for the whole
    /// fsync. With batches and flushes taking turns here, a reader waits at most
    /// for one batch to be applied in memory.
    fn commit_batch(&self, tree: &sled::Tree, batch: sled::Batch) -> Result<(), StoreError> {
        let _gate = self.commit_gate();
        tree.apply_batch(batch)?;
        Ok(())
    }

    fn commit_gate(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded value is `()`: a panic elsewhere cannot leave it inconsistent.
        self.commits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One small read through sled's locks: proves the store is not stuck (watchdog).
    pub fn probe_read(&self) -> Result<(), StoreError> {
        self.data()?.get(global_key("heartbeat"))?;
        Ok(())
    }

    /// Writes and flushes a heartbeat key: proves the disk takes writes. After a
    /// disk error it reopens the database first (at most every few seconds).
    pub fn check_writable(&self) -> Result<(), StoreError> {
        let write = || -> Result<(), StoreError> {
            let now = chrono::Utc::now().timestamp_millis();
            self.data()?
                .insert(global_key("heartbeat"), &now.to_be_bytes())?;
            self.flush()
        };
        write().or_else(|_| {
            self.heal();
            write()
        })
    }

    /// After a failed write: reopens the database from disk (sled keeps an IO
    /// error forever otherwise); what was not flushed was never acknowledged.
    /// Returns whether the store is open. Blocks; call it off the async threads.
    pub fn heal(&self) -> bool {
        self.handle.reopen()
    }

    pub fn size_on_disk(&self) -> u64 {
        self.db()
            .ok()
            .and_then(|db| db.size_on_disk().ok())
            .unwrap_or(0)
    }

    fn db(&self) -> Result<sled::Db, StoreError> {
        Ok(self.handle.get()?.db)
    }

    fn data(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.handle.get()?.data)
    }

    fn slot(&self, meter: MeterIdx) -> Result<&MeterSlot, StoreError> {
        self.meters
            .get(usize::from(meter))
            .ok_or(StoreError::UnknownMeter(meter))
    }

    fn register_meter(&self, id: &str) -> Result<u16, StoreError> {
        let name = format!("meter/{id}");
        let key = global_key(&name);
        if let Some(v) = self.data()?.get(&key)? {
            if let Ok(b) = <[u8; 2]>::try_from(v.as_ref()) {
                return Ok(u16::from_be_bytes(b));
            }
        }
        let next_key = global_key("next_meter");
        let next = match self.data()?.get(&next_key)? {
            Some(v) => <[u8; 2]>::try_from(v.as_ref())
                .map(u16::from_be_bytes)
                .unwrap_or(0),
            None => 0,
        };
        let after = next.checked_add(1).ok_or(StoreError::TooManyMeters)?;
        let mut batch = sled::Batch::default();
        batch.insert(&key[..], &next.to_be_bytes());
        batch.insert(&next_key[..], &after.to_be_bytes());
        self.commit_batch(&self.data()?, batch)?;
        Ok(next)
    }

    /// Applies samples atomically: events, rollups, totals and counter state.
    /// Called only by the writer task.
    pub fn apply(&self, samples: &[Sample]) -> Result<Applied, StoreError> {
        let mut blocks: RunMap<(u16, u32), Vec<Entry>> = RunMap::default();
        let mut days: RunMap<(u16, u32), u64> = RunMap::default();
        let mut per_meter: Vec<Option<MeterDelta>> = self.meters.iter().map(|_| None).collect();
        let mut local_days = LocalDays::new(self.tz);
        let mut applied = Applied::default();
        let mut forwarded = self.forward.pending();
        for s in samples {
            let slot = self.slot(s.meter)?;
            let anchor = slot.anchor_ms();
            let Some(delta_slot) = per_meter.get_mut(usize::from(s.meter)) else {
                return Err(StoreError::UnknownMeter(s.meter));
            };
            let delta = match delta_slot {
                Some(d) => d,
                None => delta_slot.insert(self.load_delta(slot)?),
            };
            delta.last_seen = delta.last_seen.max(s.ts_ms);
            let ml = match s.value {
                SampleValue::Liters(l) => liters_to_ml(l),
                SampleValue::Counter(c) => delta.counter_step(c, s.ts_ms),
            };
            let (Some(block), Some(day)) = (
                codec::block_slot(s.ts_ms),
                codec::day_slot(local_days.day_of(s.ts_ms)),
            ) else {
                continue;
            };
            if ml == 0 {
                continue;
            }
            let offset = (s.ts_ms - i64::from(block) * DAY_MS) as u32;
            blocks.entry((slot.key, block)).push(Entry {
                offset_ms: offset,
                ml,
            });
            *days.entry((slot.key, day)) += ml;
            delta.total_add += ml;
            delta.last_event = delta.last_event.max(s.ts_ms);
            if anchor.is_some_and(|a| s.ts_ms < a) {
                delta.before_anchor_add += ml;
            }
            applied.events += 1;
            applied.milliliters += ml;
            forwarded.push(slot.key, s.ts_ms, ml);
        }
        let data = self.data()?;
        let mut batch = sled::Batch::default();
        for ((meter, block), mut entries) in blocks.into_map() {
            let key = series_key(prefix::EVENTS, meter, block);
            let old = data.get(key)?;
            let block = codec::append_block(old.as_deref().unwrap_or(&[]), &mut entries);
            batch.insert(&key[..], block);
        }
        for ((meter, day), ml) in days.into_map() {
            add_to(&data, &mut batch, series_key(prefix::DAYS, meter, day), ml)?;
        }
        for (slot, delta) in self.meters.iter().zip(per_meter) {
            if let Some(delta) = delta {
                delta.write(slot.key, &mut batch);
            }
        }
        let queued = forwarded.write(&mut batch);
        self.commit_batch(&data, batch)?;
        self.forward.committed(queued);
        Ok(applied)
    }

    fn load_delta(&self, slot: &MeterSlot) -> Result<MeterDelta, StoreError> {
        let get_i64 = |field| -> Result<i64, StoreError> {
            Ok(self
                .data()?
                .get(meter_key(slot.key, field))?
                .map(|v| read_i64(&v))
                .unwrap_or(i64::MIN))
        };
        let counter = self
            .data()?
            .get(meter_key(slot.key, meter_field::COUNTER))?
            .and_then(|v| {
                let b: [u8; 16] = v.as_ref().try_into().ok()?;
                let value = f64::from_be_bytes(b[0..8].try_into().ok()?);
                let ts = i64::from_be_bytes(b[8..16].try_into().ok()?);
                Some((value, ts))
            });
        Ok(MeterDelta {
            last_event: get_i64(meter_field::LAST_EVENT_MS)?,
            last_seen: get_i64(meter_field::LAST_SEEN_MS)?,
            counter,
            counter_changed: false,
            total_old: self.get_u64(&meter_key(slot.key, meter_field::TOTAL_ML))?,
            total_add: 0,
            anchor: self
                .data()?
                .get(meter_key(slot.key, meter_field::ANCHOR))?
                .and_then(|v| decode_anchor(&v)),
            before_anchor_add: 0,
        })
    }

    fn get_u64(&self, key: &[u8]) -> Result<u64, StoreError> {
        Ok(self
            .data()?
            .get(key)?
            .map(|v| codec::read_varint_value(&v))
            .unwrap_or(0))
    }

    /// Rebuilds the per-day rollup from the event blocks when the configured zone
    /// differs from the one the rollup was built in.
    fn ensure_day_rollup_zone(&self) -> Result<(), StoreError> {
        let key = global_key("tz");
        let name = self.tz.name();
        if self.data()?.get(&key)?.as_deref() == Some(name.as_bytes()) {
            return Ok(());
        }
        let had_zone = self.data()?.get(&key)?.is_some();
        if had_zone {
            tracing::info!(
                zone = name,
                "time zone changed: rebuilding the per-day rollup"
            );
        }
        let mut batch = sled::Batch::default();
        for kv in self.data()?.scan_prefix([prefix::DAYS]) {
            batch.remove(kv?.0);
        }
        let mut days: BTreeMap<[u8; 7], u64> = BTreeMap::new();
        let mut local_days = LocalDays::new(self.tz);
        for kv in self.data()?.scan_prefix([prefix::EVENTS]) {
            let (k, block) = kv?;
            let (Some(meter), Some(slot)) = (k.get(1..3), codec::slot_of_key(&k)) else {
                continue;
            };
            let meter = u16::from_be_bytes([meter[0], meter[1]]);
            let base = i64::from(slot) * DAY_MS;
            for e in codec::block_entries(&block) {
                let day = local_days.day_of(base + i64::from(e.offset_ms));
                if let Some(slot) = codec::day_slot(day) {
                    *days
                        .entry(series_key(prefix::DAYS, meter, slot))
                        .or_default() += e.ml;
                }
            }
        }
        for (k, ml) in days {
            batch.insert(&k[..], codec::varint_value(ml));
        }
        batch.insert(&key[..], name.as_bytes());
        self.commit_batch(&self.data()?, batch)?;
        Ok(())
    }

    /// Marks a new store with the layout it is written in, and refuses a store of
    /// another layout rather than misread it.
    fn ensure_layout(&self) -> Result<(), StoreError> {
        let key = global_key("layout");
        match self.data()?.get(&key)?.as_deref() {
            None => {
                self.data()?.insert(key, &[codec::LAYOUT])?;
            }
            Some([codec::LAYOUT]) => {}
            Some(other) => return Err(StoreError::Layout(other.first().copied().unwrap_or(0))),
        }
        Ok(())
    }
}

/// Per-meter state changes gathered while applying one batch.
struct MeterDelta {
    last_event: i64,
    last_seen: i64,
    counter: Option<(f64, i64)>,
    counter_changed: bool,
    total_old: u64,
    total_add: u64,
    /// The stored anchor and the milliliters before it.
    anchor: Option<(i64, u64)>,
    before_anchor_add: u64,
}

impl MeterDelta {
    /// Turns a cumulative counter value into the milliliters since the last one.
    ///
    /// The first value only sets the baseline. A value below the last one is a
    /// device reboot (the counter restarted from 0, so all of it is new water) —
    /// unless it is older than the last one, in which case it is a late duplicate
    /// and already counted.
    fn counter_step(&mut self, value: f64, ts_ms: i64) -> u64 {
        let ml = match self.counter {
            None => 0,
            Some((last, _)) if value >= last => liters_to_ml(value - last),
            Some((_, last_ts)) if ts_ms < last_ts => return 0,
            Some(_) => liters_to_ml(value),
        };
        self.counter = Some((value, ts_ms));
        self.counter_changed = true;
        ml
    }

    fn write(&self, meter: u16, batch: &mut sled::Batch) {
        if self.total_add > 0 {
            batch.insert(
                &meter_key(meter, meter_field::TOTAL_ML)[..],
                codec::varint_value(self.total_old + self.total_add),
            );
        }
        if let (Some((anchor, before)), true) = (self.anchor, self.before_anchor_add > 0) {
            batch.insert(
                &meter_key(meter, meter_field::ANCHOR)[..],
                &encode_anchor(anchor, before + self.before_anchor_add)[..],
            );
        }
        if self.last_event != i64::MIN {
            batch.insert(
                &meter_key(meter, meter_field::LAST_EVENT_MS)[..],
                &self.last_event.to_be_bytes(),
            );
        }
        if self.last_seen != i64::MIN {
            batch.insert(
                &meter_key(meter, meter_field::LAST_SEEN_MS)[..],
                &self.last_seen.to_be_bytes(),
            );
        }
        if self.counter_changed {
            if let Some((value, ts)) = self.counter {
                let mut v = [0u8; 16];
                v[0..8].copy_from_slice(&value.to_be_bytes());
                v[8..16].copy_from_slice(&ts.to_be_bytes());
                batch.insert(&meter_key(meter, meter_field::COUNTER)[..], &v);
            }
        }
    }
}

fn add_to(
    tree: &sled::Tree,
    batch: &mut sled::Batch,
    key: [u8; 7],
    ml: u64,
) -> Result<(), StoreError> {
    let old = tree
        .get(key)?
        .map(|v| codec::read_varint_value(&v))
        .unwrap_or(0);
    batch.insert(&key[..], codec::varint_value(old + ml));
    Ok(())
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
struct LocalDays {
    tz: Tz,
    /// `[start, end)` of `day` as UTC instants.
    cached: Option<(i64, i64, i64)>,
}

impl LocalDays {
    fn new(tz: Tz) -> LocalDays {
        LocalDays { tz, cached: None }
    }

    fn day_of(&mut self, ts_ms: i64) -> i64 {
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

pub(crate) fn global_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.push(prefix::GLOBAL);
    k.extend_from_slice(name.as_bytes());
    k
}

fn read_i64(v: &[u8]) -> i64 {
    <[u8; 8]>::try_from(v)
        .map(i64::from_be_bytes)
        .unwrap_or(i64::MIN)
}

pub fn liters_to_ml(liters: f64) -> u64 {
    if liters.is_finite() && liters > 0.0 {
        (liters * 1000.0).round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests;
