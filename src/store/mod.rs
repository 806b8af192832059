//! The store: every liter event and its rollups, kept in an append-only journal
//! (the source of truth, `journal`) and indexed in an embedded sled database.
//!
//! This is the only module that names sled. Every change is one journal record
//! (`record`), appended and then applied to sled (`apply`); a record is durable once
//! the journal went through fdatasync (`Store::sync`). sled is only the queryable
//! index: it is trusted at start only after a clean close, and otherwise rebuilt
//! from the journal (`recovery`). Layout of the index (see `chunks`, `codec` and
//! ARCHITECTURE.md): per meter, each UTC day's events in chunks of bounded size
//! plus a small tail of the newest ones; a per-local-day rollup in the configured
//! zone (rebuilt from the events when the zone changes); and per-meter totals,
//! counter state and the meter-reading anchor. A record's writes are applied under
//! one lock that readers share, so a reader never sees half a record.
//!
//! An index that fails to take a record never stops the journal: the record is
//! kept, acknowledged like any other, and the index is rebuilt from the journal
//! (here, as soon as the disk allows, or at the next start).
//!
//! Samples come only from the writer task (`writer`) and import; reads may come
//! from anywhere.

mod apply;
pub mod budget;
pub mod chunks;
pub mod codec;
pub mod correct;
pub mod faults;
pub mod forward;
mod handle;
pub mod heal;
pub mod journal;
mod labels;
mod migrate;
pub mod query;
mod reading;
pub mod readings;
pub mod record;
pub mod recovery;
pub mod sled_memory;
mod unplaced;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use chrono_tz::Tz;

use crate::config::MeterConfig;
use crate::meter::{MeterIdx, Sample};
use codec::{prefix, series_key, DAY_MS};
use journal::{Journal, JournalError};
use reading::decode_anchor;
pub use reading::ReadingBase;
use record::Op;

pub use apply::record_id;
pub use query::Usage;
pub use recovery::{OpenReport, RecoveryNotice};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store's database failed: {0}")]
    Db(#[from] sled::Error),
    #[error("the store's journal failed: {0}")]
    Journal(#[from] JournalError),
    #[error("journal record {seq} cannot be read: {reason}")]
    Record { seq: u64, reason: String },
    #[error("the store is closed after a disk error and reopens when the disk takes writes again")]
    Reopening,
    #[error("the store is closed")]
    Closed,
    #[error("the store was written in layout {0}, which this version of watermeter cannot read; use the version that wrote it to `watermeter export` the data")]
    Layout(u8),
    #[error("more than 65,535 meters were ever registered in this store")]
    TooManyMeters,
    #[error("meter index {0} is not configured")]
    UnknownMeter(MeterIdx),
    #[error("{0}")]
    Io(String),
    /// A request's read ran out of its budget (`budget`).
    #[error("{0}")]
    Stopped(budget::Stop),
}

/// sled writes out its buffers after this many records…
const INDEX_FLUSH_RECORDS: u64 = 256;
/// …or this long after the first of them. Rare on purpose: each flush rewrites a
/// partly filled page of sled's log, the largest share of a quiet pulse's wear
/// after the journal's own page (docs/performance.md, "Wear"). Durability is the
/// journal's; an index not closed cleanly is rebuilt anyway.
const INDEX_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(300);
/// An index that failed is rebuilt at most this often while the disk refuses.
const REBUILD_RETRY: std::time::Duration = std::time::Duration::from_secs(30);
/// How often a passing health probe may retry a failed rebuild early.
const REBUILD_AFTER_PROBE: std::time::Duration = std::time::Duration::from_secs(5);

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
    /// `max_flow_l_per_min`: more than this is a misread, not water.
    max_flow_l_per_min: f64,
    /// Values the reading engine ignored since the start: decrease, jump, stale.
    ignored: [std::sync::atomic::AtomicU64; 3],
    /// Times the baseline moved to agreeing lower readings since the start.
    reanchored: std::sync::atomic::AtomicU64,
    /// Meter exchanges (config and dashboard), oldest first: a sensor's baseline
    /// restarts at the new meter's reading from each one on.
    exchanges: std::sync::RwLock<Vec<crate::config::Exchange>>,
}

/// A key and its value, from [`Store::scan_raw`].
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Index writes in order (`None`: delete the key).
type Writes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// What one `apply` did.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Applied {
    pub events: u64,
    pub milliliters: u64,
}

pub struct Store {
    dir: PathBuf,
    /// The sled index, reopened after a disk error (see `handle`).
    handle: handle::Handle,
    /// Held while a record is appended and applied, so sled applies records in
    /// journal order.
    journal: Mutex<Journal>,
    /// The index failed to take a record: records go to the journal only until
    /// the index is rebuilt from it.
    broken: AtomicBool,
    /// The last journal append failed (a full disk): `/healthz` then asks for room
    /// for a whole journal step, not a page, until an append succeeds again.
    journal_refused: AtomicBool,
    /// When a rebuild of a broken index was last tried.
    rebuild_tried: Mutex<Option<std::time::Instant>>,
    /// The last journal record the index holds: (seq, end offset).
    applied: Mutex<Option<(u64, u64)>>,
    closed: AtomicBool,
    meters: Vec<MeterSlot>,
    tz: Tz,
    forward: forward::Queue,
    /// Records applied since sled last wrote out its buffers, and since when.
    unflushed: std::sync::atomic::AtomicU64,
    dirty_since: Mutex<Option<std::time::Instant>>,
    /// Samples that arrived before the clock was synchronised (see `unplaced`).
    held: Mutex<Vec<Sample>>,
    /// Writers of a record take it exclusively, readers of several keys shared, so
    /// a reader never sees half a record (see `commit_writes`).
    gate: std::sync::RwLock<()>,
    report: OpenReport,
    /// Hour sums of decoded day blocks, by (meter key, UTC day), with a hash of
    /// the block they came from (see `query::hour_sums`).
    hours: Mutex<HourSums>,
    /// Each meter's counter and reading positions as the journal has them, kept
    /// from the records written since the index was last (re)built (see `resolve`).
    seen: Mutex<std::collections::BTreeMap<u16, apply::Seen>>,
    /// Index writes that fail on purpose (tests of a failing index).
    #[cfg(test)]
    fail_index_writes: std::sync::atomic::AtomicU64,
}

/// (meter key, UTC day) → (hash of the day block, its 24 hour sums in ml).
type HourSums = std::collections::HashMap<(u16, u32), (u64, [u64; 24])>;

impl Store {
    /// Opens (or creates) the store in `dir`: the journal, and the index brought up
    /// to the journal's end or rebuilt from it (see `recovery`). Registers the
    /// configured meters and rebuilds the day rollup if the time zone changed.
    pub fn open(
        dir: &Path,
        cache_bytes: u64,
        tz: Tz,
        meters: &[MeterConfig],
    ) -> Result<Store, StoreError> {
        let mut store = recovery::open_index(dir, cache_bytes, tz)?;
        for m in meters {
            let key = store.register_meter(&m.id)?;
            // The newest exchange is what the meter showed last on purpose.
            let configured = match m.exchanges.last() {
                Some(x) if m.reading_set_at_ms.is_none_or(|t| x.at_ms > t) => ReadingBase {
                    m3: x.m3,
                    anchor_ms: Some(x.at_ms),
                },
                _ => ReadingBase {
                    m3: m.initial_reading_m3,
                    anchor_ms: m.reading_set_at_ms,
                },
            };
            let mut exchanges = m.exchanges.clone();
            exchanges.extend(store.stored_exchanges(key)?);
            exchanges.sort_by_key(|x| x.at_ms);
            let reading = store
                .reading_override(key, configured)?
                .unwrap_or(configured);
            store.meters.push(MeterSlot {
                key,
                reading: std::sync::RwLock::new(reading),
                configured,
                max_flow_l_per_min: m.max_flow_l_per_min,
                ignored: Default::default(),
                reanchored: Default::default(),
                exchanges: std::sync::RwLock::new(exchanges),
            });
        }
        store.derive_from_config()?;
        store.keep_positions()?;
        store.load_unplaced()?;
        store.sync()?;
        Ok(store)
    }

    /// What the index keeps that comes from the config rather than the journal:
    /// its layout mark, the zone of the day rollup, the reading anchors.
    fn derive_from_config(&self) -> Result<(), StoreError> {
        self.ensure_layout()?;
        self.ensure_day_rollup_zone()?;
        self.ensure_anchors()
    }

    /// A store around an open index and journal, with no meters yet.
    fn assemble(dir: &Path, handle: handle::Handle, journal: Journal, tz: Tz) -> Store {
        Store {
            dir: dir.to_path_buf(),
            handle,
            journal: Mutex::new(journal),
            broken: AtomicBool::new(false),
            journal_refused: AtomicBool::new(false),
            rebuild_tried: Mutex::new(None),
            applied: Mutex::new(None),
            closed: AtomicBool::new(false),
            meters: Vec::new(),
            tz,
            forward: forward::Queue::default(),
            held: Mutex::new(Vec::new()),
            unflushed: std::sync::atomic::AtomicU64::new(0),
            dirty_since: Mutex::new(None),
            gate: std::sync::RwLock::new(()),
            report: OpenReport::default(),
            hours: Mutex::default(),
            seen: Mutex::default(),
            #[cfg(test)]
            fail_index_writes: Default::default(),
        }
    }

    /// Closes the index and gives the journal back (to rebuild the index).
    fn into_journal(self) -> Journal {
        let Store { journal, .. } = self;
        journal.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// What opening the store found and did.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// Makes everything applied so far durable: one fdatasync of the journal for
    /// all of it, done outside the journal's lock so appends go on meanwhile.
    pub fn sync(&self) -> Result<(), StoreError> {
        let target = self.journal_lock().sync_target()?;
        if let Some((file, upto)) = target {
            journal::sync_file(&file).map_err(|e| {
                StoreError::Io(format!("syncing the journal {}: {e}", self.dir.display()))
            })?;
            self.journal_lock().mark_synced(upto);
        }
        faults::maybe_crash("after-sync");
        Ok(())
    }

    /// Appends one record built by `build` (given the record's sequence number, for
    /// ids) and applies it to the index; with `sync`, returns only once it is durable.
    pub fn write_ops(
        &self,
        build: impl FnOnce(u64) -> Vec<Op>,
        sync: bool,
    ) -> Result<Applied, StoreError> {
        let applied = {
            let mut journal = self.journal_lock();
            self.usable(&journal)?;
            let seq = journal.next_seq();
            let ops = build(seq);
            self.append_and_apply(&mut journal, &ops)?
        };
        if sync {
            self.sync()?;
        }
        Ok(applied)
    }

    /// Applies samples: one journal record with their events and counter state,
    /// applied to the index in one batch. Durable after the next [`Store::sync`].
    ///
    /// Samples stamped before the clock was synchronised are kept aside in the same
    /// record and placed by a later batch (see `unplaced`); `apply(&[])` places them
    /// as soon as the clock allows.
    pub fn apply(&self, samples: &[Sample]) -> Result<Applied, StoreError> {
        let mut journal = self.journal_lock();
        self.usable(&journal)?;
        let (placed, keep) = self.place_or_hold(samples, journal.next_seq())?;
        let (mut ops, positions) = self.resolve(&placed)?;
        ops.extend(keep);
        let applied = self.append_and_apply(&mut journal, &ops)?;
        self.remember(positions);
        Ok(applied)
    }

    fn append_and_apply(&self, journal: &mut Journal, ops: &[Op]) -> Result<Applied, StoreError> {
        if ops.is_empty() {
            return Ok(Applied::default());
        }
        let appended = journal.append(&record::encode(ops));
        self.journal_refused
            .store(appended.is_err(), Ordering::SeqCst);
        let (seq, end) = appended?;
        faults::maybe_crash("after-append");
        if self.broken.load(Ordering::SeqCst) {
            return Ok(record::applied(ops));
        }
        let mut applier = apply::Applier::new(self);
        let result = applier.add(seq, end, ops).and_then(|()| applier.finish());
        self.unflushed.fetch_add(1, Ordering::Relaxed);
        self.dirty_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(std::time::Instant::now);
        match result {
            Ok(applied) => Ok(applied),
            Err(e) => {
                // The record is in the journal: it counts. The index may hold part
                // of it, so it is rebuilt rather than caught up.
                tracing::error!(
                    "the index could not take journal record {seq} ({e}); the journal keeps \
                     it and every later one, and the index is rebuilt from the journal"
                );
                self.broken.store(true, Ordering::SeqCst);
                Ok(record::applied(ops))
            }
        }
    }

    /// Refuses writes once closed, and rebuilds a broken index first (at most
    /// every [`REBUILD_RETRY`]; meanwhile records go to the journal only).
    fn usable(&self, journal: &Journal) -> Result<(), StoreError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Closed);
        }
        if self.broken.load(Ordering::SeqCst) {
            let due = {
                let mut tried = self.rebuild_tried.lock().unwrap_or_else(|p| p.into_inner());
                let due = tried.is_none_or(|t| t.elapsed() >= REBUILD_RETRY);
                if due {
                    *tried = Some(std::time::Instant::now());
                }
                due
            };
            if due {
                match recovery::rebuild_in_place(self, journal) {
                    Ok(()) => self.broken.store(false, Ordering::SeqCst),
                    Err(e) => tracing::error!(
                        "rebuilding the index failed (the journal keeps everything; tried again \
                         in {} s): {e}",
                        REBUILD_RETRY.as_secs()
                    ),
                }
            }
        }
        Ok(())
    }

    /// Whether the index holds every journal record (false while it waits for a rebuild).
    pub fn index_is_current(&self) -> bool {
        !self.broken.load(Ordering::SeqCst)
    }

    fn journal_lock(&self) -> MutexGuard<'_, Journal> {
        // A panic while holding it can only have failed an append, which cut itself off.
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one record's writes (or a rebuild's many) to the index. Plain sled
    /// inserts, not a sled batch: every sled batch writes sled's log buffer out
    /// before and after itself, two partly filled pages per pulse. Atomicity on
    /// disk is not needed (an index that was not closed cleanly is rebuilt), and
    /// readers are kept from half a record by the gate.
    fn commit_writes(&self, tree: &sled::Tree, writes: Writes) -> Result<(), StoreError> {
        let (events, live) = (self.events()?, self.live_values()?);
        let _gate = self.gate.write().unwrap_or_else(|p| p.into_inner());
        #[cfg(test)]
        if self.fail_index_writes.load(Ordering::SeqCst) > 0 {
            self.fail_index_writes.fetch_sub(1, Ordering::SeqCst);
            if let Some((k, Some(v))) = writes.first() {
                tree.insert(k, v.clone())?; // part of the record, as a real failure may leave
            }
            return Err(StoreError::Io("an index write failed (test)".into()));
        }
        for (k, v) in writes {
            // Chunks and live values have trees of their own (see `handle::Open`).
            let tree = if chunks::parse_chunk_key(&k).is_some() {
                &events
            } else if chunks::Live::is_key(&k) {
                &live
            } else {
                tree
            };
            match v {
                Some(v) => tree.insert(k, v)?,
                None => tree.remove(k)?,
            };
        }
        Ok(())
    }

    /// Shared with other readers, exclusive of a record being applied.
    fn read_gate(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|p| p.into_inner())
    }

    fn set_applied(&self, seq: u64, end: u64) {
        *self.applied.lock().unwrap_or_else(|p| p.into_inner()) = Some((seq, end));
    }

    /// Lets sled write out its buffers when [`INDEX_FLUSH_RECORDS`] records were
    /// applied since it last did, or [`INDEX_FLUSH_EVERY`] after the first of them.
    /// Not for durability (the journal is that), but sled 0.34 must not be left
    /// unflushed for long: its buffers are then written by its own thread pool, and
    /// when the log's tail needs truncating it waits for a pool job while every
    /// pool thread waits for it — a deadlock we hit after a few thousand unflushed
    /// batches (docs/reliability.md). Flushing writes them inline. Not after every
    /// batch: on a large index one sled flush writes tens of kB, the card's wear.
    /// Blocks: call it off the async workers, after answering.
    pub fn flush_index_if_due(&self) -> Result<(), StoreError> {
        let n = self.unflushed.load(Ordering::Relaxed);
        let since = self.dirty_since.lock().unwrap_or_else(|p| p.into_inner());
        let due = n >= INDEX_FLUSH_RECORDS
            || (n > 0 && since.is_some_and(|t| t.elapsed() >= INDEX_FLUSH_EVERY));
        drop(since);
        if !due {
            return Ok(());
        }
        self.unflushed.store(0, Ordering::Relaxed);
        *self.dirty_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.db()?.flush()?;
        Ok(())
    }

    /// When [`Store::flush_index_if_due`] should be asked again (`None`: nothing waits).
    pub fn index_flush_due_in(&self) -> Option<std::time::Duration> {
        let since = *self.dirty_since.lock().unwrap_or_else(|p| p.into_inner());
        since.map(|t| INDEX_FLUSH_EVERY.saturating_sub(t.elapsed()))
    }

    /// Closes the store cleanly: the journal synced, the index written out and
    /// synced file by file, and a marker that says the index on disk is whole, so
    /// the next start (even after a reboot) uses it instead of rebuilding it.
    /// Later writes are refused.
    pub fn close(&self) -> Result<(), StoreError> {
        self.sync()?;
        let journal = self.journal_lock();
        self.closed.store(true, Ordering::SeqCst);
        if self.broken.load(Ordering::SeqCst) {
            // Not whole: the next start rebuilds it from the journal.
            return Ok(());
        }
        let position = *self.applied.lock().unwrap_or_else(|p| p.into_inner());
        apply::write_position(&self.data()?, position)?;
        self.db()?.flush()?;
        recovery::mark_clean(&self.dir, position, journal.end())
    }

    /// The value under `key`: the small tables upper layers keep (alert state,
    /// outbox) read through this, never through sled.
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.data()?.get(key)?.map(|v| v.to_vec()))
    }

    /// Every key and value under `prefix`, in key order (small tables only).
    pub fn scan_raw(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        self.data()?
            .scan_prefix(prefix)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    /// One small read through sled's locks: proves the store is not stuck (watchdog).
    pub fn probe_read(&self) -> Result<(), StoreError> {
        self.data()?.get(global_key("heartbeat"))?;
        Ok(())
    }

    /// Proves the disk takes writes (a small file written, synced and deleted) and
    /// that the index is open; after a disk error it reopens the index first (at
    /// most every few seconds). Writes nothing to the journal.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        // After a refused append, writable means room for the journal's next step:
        // a page may fit where the batch that was refused does not.
        let bytes = if self.journal_refused.load(Ordering::SeqCst) {
            journal::PREALLOCATE as usize
        } else {
            4096
        };
        let check = || -> Result<(), StoreError> {
            handle::probe_write(&self.dir, bytes)
                .map_err(|e| StoreError::Io(format!("{}: {e}", self.dir.display())))?;
            self.probe_read()
        };
        check().or_else(|_| {
            self.heal();
            check()
        })?;
        self.rebuild_if_broken()
    }

    /// The disk takes writes again: an index that waits for a rebuild (it failed
    /// while the disk was full) is rebuilt now rather than at the next retry, and
    /// until it is, reads are not right and the store does not count as healthy.
    fn rebuild_if_broken(&self) -> Result<(), StoreError> {
        if !self.broken.load(Ordering::SeqCst) {
            return Ok(());
        }
        {
            let mut tried = self.rebuild_tried.lock().unwrap_or_else(|p| p.into_inner());
            if tried.is_some_and(|t| t.elapsed() >= REBUILD_AFTER_PROBE) {
                *tried = None;
            }
        }
        let journal = self.journal_lock();
        self.usable(&journal)?;
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Io(
                "the index waits for a rebuild from the journal (everything acknowledged \
                 is in the journal)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// After a failed write: reopens the index from disk (sled keeps an IO error
    /// forever otherwise) and catches it up with the journal. Returns whether the
    /// store is open. Blocks; call it off the async threads.
    pub fn heal(&self) -> bool {
        if !self.handle.reopen() {
            return false;
        }
        // The reopened index holds what sled wrote out, not necessarily whole records.
        self.broken.store(true, Ordering::SeqCst);
        *self.rebuild_tried.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let journal = self.journal_lock();
        match self.usable(&journal) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("catching the index up with the journal failed: {e}");
                false
            }
        }
    }

    pub fn size_on_disk(&self) -> u64 {
        let journal = self.journal_lock().end();
        let index = self
            .db()
            .ok()
            .and_then(|db| db.size_on_disk().ok())
            .unwrap_or(0);
        journal + index
    }

    fn db(&self) -> Result<sled::Db, StoreError> {
        Ok(self.handle.get()?.db)
    }

    fn data(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.handle.get()?.data)
    }

    /// The tree of event chunks (`chunks`); everything else is in [`Store::data`].
    fn events(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.handle.get()?.events)
    }

    /// The tree of the meters' live values (`chunks::Live`).
    fn live_values(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.handle.get()?.live)
    }

    fn slot(&self, meter: MeterIdx) -> Result<&MeterSlot, StoreError> {
        self.meters
            .get(usize::from(meter))
            .ok_or(StoreError::UnknownMeter(meter))
    }

    /// The meter's stable key; a new id gets the next free one, through the journal.
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
        let ops = vec![
            Op::Put {
                key,
                value: next.to_be_bytes().to_vec(),
            },
            Op::Put {
                key: next_key,
                value: after.to_be_bytes().to_vec(),
            },
        ];
        self.write_ops(|_| ops, false)?;
        Ok(next)
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
        let mut writes: Writes = Vec::new();
        for kv in self.data()?.scan_prefix([prefix::DAYS]) {
            writes.push((kv?.0.to_vec(), None));
        }
        let mut days: std::collections::BTreeMap<[u8; 7], u64> = Default::default();
        let mut local_days = apply::LocalDays::new(self.tz);
        let mut add_block = |meter: u16, utc_day: u32, block: &[u8]| {
            let base = i64::from(utc_day) * DAY_MS;
            for e in codec::block_entries(block) {
                let day = local_days.day_of(base + i64::from(e.offset_ms));
                if let Some(slot) = codec::day_slot(day) {
                    *days
                        .entry(series_key(prefix::DAYS, meter, slot))
                        .or_default() += e.ml;
                }
            }
        };
        for kv in self.events()?.iter() {
            let (k, block) = kv?;
            if let Some((meter, day, _)) = chunks::parse_chunk_key(&k) {
                add_block(meter, day, &block);
            }
        }
        for kv in self.live_values()?.iter() {
            let (k, v) = kv?;
            if chunks::Live::is_key(&k) {
                let meter = u16::from_be_bytes([k[1], k[2]]);
                if let Some(live) = chunks::Live::decode(&v) {
                    add_block(meter, live.tail.day, &live.tail.block);
                }
            }
        }
        for (k, ml) in days {
            writes.push((k.to_vec(), Some(codec::varint_value(ml))));
        }
        writes.push((key, Some(name.as_bytes().to_vec())));
        self.commit_writes(&self.data()?, writes)?;
        Ok(())
    }

    /// Marks a new index with the layout it is written in. (An index of an older
    /// layout never gets here: `recovery` rebuilds it from the journal.)
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

pub use crate::meter::liters_to_ml;

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "recovery_tests.rs"]
mod recovery_tests;
