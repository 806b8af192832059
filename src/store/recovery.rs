//! Opening the store: the journal first, then the sled index, trusted only when it
//! can be, otherwise rebuilt from the journal.
//!
//! sled syncs with `sync_file_range` (no metadata, no device cache flush) and can
//! open torn, or panic, after a power cut; and the store writes a record's keys
//! as plain inserts, so an index that was not closed cleanly may hold part of a
//! record. The index is therefore trusted only when `index.state` says it was
//! closed cleanly (every sled file fsynced, then the marker written) at the
//! position it holds, and then only if it opens and reads without a panic, is of
//! this version's layout, and its totals equal its day sums. It is then caught up
//! with any records a later run of `import` appended. In every other case (a
//! crash, a kill, a power cut, an older layout) it is moved away and rebuilt from
//! the whole journal, which is logged in one line with its figures. A rebuild
//! takes seconds (docs/performance.md); while serving, an index that fails is
//! rebuilt in place (`rebuild_in_place`). Recovery never replaces data with
//! less: the journal is only ever cut at a torn tail (a record that never finished,
//! so was never acknowledged), and records behind unreadable bytes are kept. What
//! could not be read is reported once, by the dashboard and by mail
//! ([`RecoveryNotice`]), and the damaged journal is kept beside the new one.
//!
//! A store written by watermeter 0.1 (sled only, no journal) is migrated once: its
//! contents become the first records of a new journal.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::Instant;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::apply::{read_position, Applier};
use super::chunks::Live;
use super::codec::{self, prefix};
use super::journal::{self, Damage, Journal};
use super::record::{self, Op};
use super::{faults, global_key, handle, Store, StoreError};

/// The index (sled's files) inside the data directory.
pub const INDEX_DIR: &str = "index";
/// Whether the index on disk is whole: `boot <id>` and, after a clean close, `clean <seq> <end>`.
const STATE_FILE: &str = "index.state";
const NOTICE_KEY: &str = "recovery_notice";
/// A rebuild writes sled batches of about this many events.
const REBUILD_BATCH_EVENTS: usize = 100_000;

/// "Part of the journal could not be read": kept in the store until the next such
/// finding, for the one mail and the dashboard's banner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryNotice {
    pub recovered_at_ms: i64,
    /// What was found, in words.
    pub reason: String,
    /// Unreadable bytes (checksums that did not match).
    pub unreadable_bytes: u64,
    /// The readable records nearest to the damage hold events up to this time…
    pub missing_from_ms: i64,
    /// …and from this time on: events between the two may be missing.
    pub missing_to_ms: i64,
    /// Where the damaged journal was kept.
    pub damaged_copy: String,
    /// Events read back from the journal.
    pub restored_events: u64,
}

impl RecoveryNotice {
    /// One sentence for logs, mails and the dashboard.
    pub fn message(&self) -> String {
        format!(
            "{} bytes of the store's journal could not be read ({}); every other record was kept \
             ({} events); events {} may be missing; the damaged journal was kept as {}",
            self.unreadable_bytes,
            self.reason,
            self.restored_events,
            span_words(self.missing_from_ms, self.missing_to_ms, rfc3339),
            self.damaged_copy,
        )
    }
}

/// How the index was made ready, for the log and the tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenReport {
    /// Why the index was rebuilt from the journal (`None`: it was trusted).
    pub rebuilt: Option<String>,
    /// Records applied from the journal while opening.
    pub replayed_records: u64,
    pub replayed_events: u64,
    /// Bytes of a torn last record that were cut off.
    pub torn_tail_bytes: u64,
}

impl Store {
    /// The last report of unreadable journal records, if there ever was one.
    pub fn recovery_notice(&self) -> Option<RecoveryNotice> {
        match self.data().ok()?.get(global_key(NOTICE_KEY)) {
            Ok(Some(v)) => serde_json::from_slice(&v).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("reading the recovery notice failed: {e}");
                None
            }
        }
    }
}

/// Opens the journal and a ready index in `dir` (see the module comment). The
/// store comes back without meters; `Store::open` registers them.
pub(super) fn open_index(dir: &Path, cache_bytes: u64, tz: Tz) -> Result<Store, StoreError> {
    create_dir_durably(dir)?;
    let first_seq = super::migrate::from_v1_if_needed(dir, cache_bytes)?;
    let (mut journal, scan) = Journal::open(dir, first_seq)?;
    if scan.torn_tail > 0 {
        tracing::warn!(
            "cut {} bytes from the end of the journal: a record that was being written when \
             the process stopped (never acknowledged)",
            scan.torn_tail
        );
    }
    let mut found_damage = None;
    if !scan.damage.is_empty() {
        let keep = dir.join(format!("journal.damaged-{}", file_stamp(now_ms())));
        journal.rewrite_without_damage(&keep)?;
        found_damage = Some((scan.damage.clone(), keep));
    }
    let boot = crate::clock::boot_id();
    let state = read_state(dir);
    let index_dir = dir.join(INDEX_DIR);
    let doubt = match &found_damage {
        Some(_) => Some("part of the journal could not be read".to_string()),
        None if !index_dir.exists() => Some("there was no index".to_string()),
        None if state.clean.is_none() => Some(
            "the last run did not close the index cleanly (a crash, a kill or a power cut)"
                .to_string(),
        ),
        None => None,
    };
    // From here on the index on disk may change: the marker must go first.
    write_state(dir, &State { boot, clean: None })?;
    let mut store = match doubt {
        None => match trusted(dir, cache_bytes, tz, journal, &state) {
            Ok(store) => store,
            Err((journal, why)) => rebuild(dir, cache_bytes, tz, journal, why)?,
        },
        Some(why) => rebuild(dir, cache_bytes, tz, journal, why)?,
    };
    if let Some((damage, keep)) = found_damage {
        report_damage(&store, &damage, &keep)?;
    }
    store.report.torn_tail_bytes = scan.torn_tail;
    store.forward.count(&store.data()?)?;
    log_report(&store.report);
    Ok(store)
}

/// Opens the index that the state says may be trusted, checks it and catches it up.
fn trusted(
    dir: &Path,
    cache_bytes: u64,
    tz: Tz,
    journal: Journal,
    state: &State,
) -> Result<Store, (Journal, String)> {
    let index_dir = dir.join(INDEX_DIR);
    let opened = std::panic::catch_unwind(AssertUnwindSafe(|| {
        handle::Handle::open(&index_dir, cache_bytes)
    }));
    let handle = match opened {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return Err((journal, format!("sled could not open it: {e}"))),
        Err(panic) => {
            return Err((
                journal,
                format!("sled panicked while opening it: {}", panic_text(&panic)),
            ))
        }
    };
    let mut store = Store::assemble(dir, handle, journal, tz);
    // A damaged index can also make sled panic while it is read.
    let checked = std::panic::catch_unwind(AssertUnwindSafe(|| {
        check_index(&store, state)?;
        let journal = store.journal_lock();
        catch_up(&store, &journal).map_err(|e| format!("catching it up failed: {e}"))
    }));
    let why = match checked {
        Ok(Ok((records, events))) => {
            store.report.replayed_records = records;
            store.report.replayed_events = events;
            None
        }
        Ok(Err(why)) => Some(why),
        Err(panic) => Some(format!(
            "sled panicked while reading it: {}",
            panic_text(&panic)
        )),
    };
    match why {
        None => Ok(store),
        Some(why) => Err((store.into_journal(), why)),
    }
}

/// Why the index is not what the journal says, if it is not.
fn check_index(store: &Store, state: &State) -> Result<(), String> {
    let data = store.data().map_err(|e| e.to_string())?;
    match data
        .get(global_key("layout"))
        .map_err(|e| e.to_string())?
        .as_deref()
    {
        Some([layout]) if *layout < codec::LAYOUT => {
            return Err(format!(
                "it was written in layout {layout}, which rewrote a whole day for every batch; \
                 this version keeps events in chunks (layout {})",
                codec::LAYOUT
            ))
        }
        _ => {}
    }
    let position = read_position(&data).map_err(|e| e.to_string())?;
    let journal = store.journal_lock();
    let (seq, end) = position.unwrap_or((0, 0));
    if end > journal.end() || (seq > 0 && seq >= journal.next_seq()) {
        return Err(format!(
            "it holds journal record {seq}, which the journal does not have"
        ));
    }
    if state.clean != Some((seq, end)) {
        return Err("it is not the index that was closed cleanly".to_string());
    }
    drop(journal);
    totals_match_days(store).map_err(|e| e.to_string())?
}

/// Every meter's total equals the sum of its day rollup.
fn totals_match_days(store: &Store) -> Result<Result<(), String>, StoreError> {
    let data = store.data()?;
    for kv in store.live_values()?.iter() {
        let (k, v) = kv?;
        if !Live::is_key(&k) {
            continue;
        }
        let Some(live) = Live::decode(&v) else {
            return Ok(Err(format!(
                "meter {}'s running total is damaged",
                u16::from_be_bytes([k[1], k[2]])
            )));
        };
        let total = live.total_ml;
        let mut days = 0u64;
        for kv in data.scan_prefix([prefix::DAYS, k[1], k[2]]) {
            days += codec::read_varint_value(&kv?.1);
        }
        if days != total {
            let meter = u16::from_be_bytes([k[1], k[2]]);
            return Ok(Err(format!(
                "meter {meter}'s total ({total} mL) differs from its day sums ({days} mL)"
            )));
        }
    }
    Ok(Ok(()))
}

/// Applies the journal's records after the position of a cleanly closed index
/// (records a later `import` appended).
fn catch_up(store: &Store, journal: &Journal) -> Result<(u64, u64), StoreError> {
    let position = read_position(&store.data()?)?;
    let (seq, end) = position.unwrap_or((0, 0));
    store.set_applied(seq, end);
    if end >= journal.end() {
        return Ok((0, 0));
    }
    replay(store, journal, end, seq, false)
}

/// Applies every record from offset `from` whose seq is above `after`.
fn replay(
    store: &Store,
    journal: &Journal,
    from: u64,
    after: u64,
    rebuilding: bool,
) -> Result<(u64, u64), StoreError> {
    let mut applier = Applier::new(store);
    let (mut records, mut failure) = (0u64, None);
    let mut each = |seq: u64, end: u64, payload: &[u8]| -> Result<(), String> {
        if seq <= after {
            return Ok(());
        }
        let mut step = || -> Result<(), StoreError> {
            let ops = record::decode(payload).map_err(|e| StoreError::Record {
                seq,
                reason: e.to_string(),
            })?;
            applier.add(seq, end, &ops)?;
            if applier.pending_events() >= REBUILD_BATCH_EVENTS
                || applier.pending_records() >= 5_000
            {
                applier.write()?;
                store.flush_index_if_due()?;
                if rebuilding {
                    faults::maybe_crash("rebuild");
                }
            }
            Ok(())
        };
        records += 1;
        step().map_err(|e| {
            let text = e.to_string();
            failure = Some(e);
            text
        })
    };
    let result = journal.replay(from, &mut each);
    if let Some(e) = failure {
        return Err(e);
    }
    result.map_err(StoreError::Io)?;
    let applied = applier.finish()?;
    Ok((records, applied.events))
}

/// Moves the old index away (deleting it), creates an empty one and fills it from
/// the whole journal.
fn rebuild(
    dir: &Path,
    cache_bytes: u64,
    tz: Tz,
    journal: Journal,
    why: String,
) -> Result<Store, StoreError> {
    let started = Instant::now();
    let index_dir = dir.join(INDEX_DIR);
    clear_index_dir(dir)?;
    let handle = handle::Handle::open(&index_dir, cache_bytes)?;
    let mut store = Store::assemble(dir, handle, journal, tz);
    let (records, events) = {
        let journal = store.journal_lock();
        fill(&store, &journal)?
    };
    if records == 0 {
        tracing::info!("started a new store in {}", dir.display());
        return Ok(store);
    }
    store.report.rebuilt = Some(why.clone());
    store.report.replayed_records = records;
    store.report.replayed_events = events;
    log_rebuild(&store, &why, records, events, started);
    Ok(store)
}

/// While serving: replaces an index that failed with one rebuilt from the
/// journal. The caller holds the journal, so no record is appended meanwhile;
/// readers get an error for the few seconds it takes.
pub(super) fn rebuild_in_place(store: &Store, journal: &Journal) -> Result<(), StoreError> {
    let started = Instant::now();
    // On a disk still full the old index keeps answering reads; a rebuild there
    // would leave none.
    super::handle::disk_takes_writes(&store.dir)
        .map_err(|e| io(e, "making room for the rebuilt index in", &store.dir))?;
    store.handle.start_over(|| clear_index_dir(&store.dir))?;
    store
        .hours
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
    let (records, events) = fill(store, journal)?;
    store.keep_positions()?;
    store.derive_from_config()?;
    store.forward.count(&store.data()?)?;
    log_rebuild(
        store,
        "the index failed while serving",
        records,
        events,
        started,
    );
    Ok(())
}

/// Moves the index directory away and deletes it (the journal has everything).
fn clear_index_dir(dir: &Path) -> Result<(), StoreError> {
    let index_dir = dir.join(INDEX_DIR);
    let old = dir.join(format!("{INDEX_DIR}.old"));
    if index_dir.exists() {
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(&index_dir, &old).map_err(|e| io(e, "moving away", &index_dir))?;
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Fills an empty index from the whole journal, building the day rollup in the
/// store's zone as it goes.
fn fill(store: &Store, journal: &Journal) -> Result<(u64, u64), StoreError> {
    store
        .data()?
        .insert(global_key("tz"), store.tz.name().as_bytes())?;
    replay(store, journal, 0, 0, true)
}

fn log_rebuild(store: &Store, why: &str, records: u64, events: u64, started: Instant) {
    let liters: u64 = store
        .live_values()
        .ok()
        .map(|live| {
            live.iter()
                .filter_map(|kv| kv.ok())
                .filter(|(k, _)| Live::is_key(k))
                .filter_map(|(_, v)| Live::decode(&v))
                .map(|live| live.total_ml)
                .sum::<u64>()
        })
        .unwrap_or(0)
        / 1000;
    tracing::warn!(
        "rebuilt the index from the journal because {why}: {records} records, {events} events, \
         {liters} L in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Stores the notice about unreadable journal bytes (through the journal, synced).
fn report_damage(store: &Store, damage: &[Damage], keep: &Path) -> Result<(), StoreError> {
    let bytes: u64 = damage.iter().map(|d| d.bytes).sum();
    let (from_ms, to_ms) = damage_span(store, damage)?;
    let notice = RecoveryNotice {
        recovered_at_ms: now_ms(),
        reason: format!(
            "{} stretch{} with bad checksums, as a failing SD card or a crash of the whole \
             system can leave",
            damage.len(),
            if damage.len() == 1 { "" } else { "es" }
        ),
        unreadable_bytes: bytes,
        missing_from_ms: from_ms,
        missing_to_ms: to_ms,
        damaged_copy: keep.display().to_string(),
        restored_events: store.report.replayed_events,
    };
    tracing::error!("{}", notice.message());
    let value = serde_json::to_vec(&notice).map_err(|e| StoreError::Io(e.to_string()))?;
    store.write_ops(
        |_| {
            vec![Op::Put {
                key: global_key(NOTICE_KEY),
                value,
            }]
        },
        true,
    )?;
    Ok(())
}

/// The newest event in any record before the first damage (0: none) and the
/// oldest in any record after the last one (now: none).
fn damage_span(store: &Store, damage: &[Damage]) -> Result<(i64, i64), StoreError> {
    let first_after = damage.iter().map(|d| d.after_seq).min().unwrap_or(0);
    let last_before = damage.iter().map(|d| d.before_seq).max().unwrap_or(0);
    let (mut from, mut to) = (i64::MIN, i64::MAX);
    let journal = store.journal_lock();
    let scan = journal.replay(0, &mut |seq, _, payload| {
        if seq > first_after && seq < last_before {
            return Ok(());
        }
        for op in record::decode(payload).unwrap_or_default() {
            if let Op::Events { events, .. } = op {
                for e in events {
                    if seq <= first_after {
                        from = from.max(e.ts_ms);
                    } else {
                        to = to.min(e.ts_ms);
                    }
                }
            }
        }
        Ok(())
    });
    scan.map_err(StoreError::Io)?;
    Ok((
        if from == i64::MIN { 0 } else { from },
        if to == i64::MAX { now_ms() } else { to },
    ))
}

/// "between A and B", or "before B" when nothing readable comes before the damage.
pub fn span_words(from_ms: i64, to_ms: i64, at: impl Fn(i64) -> String) -> String {
    if from_ms <= 0 {
        format!("before {}", at(to_ms))
    } else {
        format!("between {} and {}", at(from_ms), at(to_ms))
    }
}

/// After a clean close: the index is whole on disk at `position`.
pub(super) fn mark_clean(
    dir: &Path,
    position: Option<(u64, u64)>,
    journal_end: u64,
) -> Result<(), StoreError> {
    let index_dir = dir.join(INDEX_DIR);
    sync_tree(&index_dir).map_err(|e| io(e, "syncing", &index_dir))?;
    let (seq, end) = position.unwrap_or((0, 0));
    if end != journal_end {
        // Not caught up: leave the marker away, the next start catches up or rebuilds.
        return Ok(());
    }
    write_state(
        dir,
        &State {
            boot: crate::clock::boot_id(),
            clean: Some((seq, end)),
        },
    )
}

/// Creates `dir` (and its missing parents) so that a power cut cannot take it
/// back: each new directory's entry is synced in its parent.
fn create_dir_durably(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_durably(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e, "creating", dir)),
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    journal::sync_dir(parent).map_err(|e| io(e, "syncing", parent))
}

/// fsyncs every file and directory under `dir`, deepest first.
fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        } else {
            std::fs::File::open(entry.path())?.sync_all()?;
        }
    }
    journal::sync_dir(dir)
}

#[derive(Debug, Default, PartialEq)]
struct State {
    boot: Option<String>,
    clean: Option<(u64, u64)>,
}

fn read_state(dir: &Path) -> State {
    let text = std::fs::read_to_string(dir.join(STATE_FILE)).unwrap_or_default();
    let mut state = State::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("boot"), Some(id), _) => state.boot = Some(id.to_string()),
            (Some("clean"), Some(seq), Some(end)) => {
                state.clean = seq.parse().ok().zip(end.parse().ok());
            }
            _ => {}
        }
    }
    state
}

/// Replaces the state file atomically and durably (temp file, fsync, rename, fsync dir).
fn write_state(dir: &Path, state: &State) -> Result<(), StoreError> {
    use std::io::Write;
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    let mut text = String::new();
    if let Some(b) = &state.boot {
        text.push_str(&format!("boot {b}\n"));
    }
    if let Some((seq, end)) = state.clean {
        text.push_str(&format!("clean {seq} {end}\n"));
    }
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        journal::sync_dir(dir)
    })();
    written.map_err(|e| io(e, "writing", &path))
}

fn log_report(r: &OpenReport) {
    if r.rebuilt.is_none() && r.replayed_records > 0 {
        tracing::info!(
            "the index was {} records behind the journal and caught up ({} events)",
            r.replayed_records,
            r.replayed_events
        );
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "no message".to_string()
    }
}

fn io(e: std::io::Error, what: &str, path: &Path) -> StoreError {
    StoreError::Io(format!("{what} {}: {e}", path.display()))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn file_stamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}
