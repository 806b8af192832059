//! The one-time move of a store written by watermeter 0.1 (sled files directly in
//! the data directory, no journal) to the journal: every event and every piece of
//! state becomes a record of a new journal, which is synced before the old files
//! are deleted. A crash in between leaves the old files, and the next start does
//! it again from the beginning.

use std::panic::AssertUnwindSafe;
use std::path::Path;

use super::codec::{self, meter_field, prefix, DAY_MS};
use super::journal::{self, Journal};
use super::record::{self, Event, Op};
use super::StoreError;

/// Events per migrated record.
const EVENTS_PER_RECORD: usize = 100_000;
/// sled 0.1's files in the data directory.
fn is_v1_file(name: &str) -> bool {
    matches!(name, "conf" | "db" | "blobs") || name.starts_with("snap.")
}

/// Migrates a 0.1 store in `dir` if there is one and no journal yet. Returns the
/// sequence number a new journal must start at (above every id the old store used).
pub(super) fn from_v1_if_needed(dir: &Path, cache_bytes: u64) -> Result<u64, StoreError> {
    if dir.join(journal::FILE).exists() || !dir.join("db").exists() {
        return Ok(1);
    }
    let opened = std::panic::catch_unwind(AssertUnwindSafe(|| {
        super::sled_memory::first_open(|| {
            sled::Config::new()
                .path(dir)
                .cache_capacity(cache_bytes)
                .open()
        })
    }));
    let db = match opened {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return Err(v1_error(dir, &e.to_string())),
        Err(_) => return Err(v1_error(dir, "sled panicked while opening it")),
    };
    let data = db.open_tree("data")?;
    let (records, first_seq) = records_of(&data)?;
    let tmp = dir.join("journal.migrating");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| StoreError::Io(e.to_string()))?;
    {
        let (mut j, _) = Journal::open(&tmp, first_seq)?;
        for ops in &records {
            j.append(&record::encode(ops))?;
        }
        if let Some((file, _)) = j.sync_target()? {
            journal::sync_file(&file).map_err(|e| StoreError::Io(e.to_string()))?;
        }
    }
    drop(data);
    drop(db);
    let moved = std::fs::rename(tmp.join(journal::FILE), dir.join(journal::FILE))
        .and_then(|()| journal::sync_dir(dir));
    moved.map_err(|e| {
        StoreError::Io(format!(
            "moving the migrated journal into {}: {e}",
            dir.display()
        ))
    })?;
    let _ = std::fs::remove_dir_all(&tmp);
    for entry in std::fs::read_dir(dir).map_err(|e| StoreError::Io(e.to_string()))? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        if name.to_str().is_some_and(is_v1_file) {
            let p = entry.path();
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
    let _ = journal::sync_dir(dir);
    tracing::warn!(
        "moved the store in {} to the journal format: {} records",
        dir.display(),
        records.len()
    );
    Ok(1)
}

/// The old store's contents as records, and the first sequence number to use.
fn records_of(data: &sled::Tree) -> Result<(Vec<Vec<Op>>, u64), StoreError> {
    let mut state = Vec::new();
    let mut records = Vec::new();
    let mut events = Vec::new();
    let mut highest_id = 0u64;
    for kv in data.iter() {
        let (k, v) = kv?;
        let put = || Op::Put {
            key: k.to_vec(),
            value: v.to_vec(),
        };
        match k.first().copied() {
            Some(prefix::EVENTS) => {
                let (Some(m), Some(slot)) = (k.get(1..3), codec::slot_of_key(&k)) else {
                    continue;
                };
                let meter = u16::from_be_bytes([m[0], m[1]]);
                let base = i64::from(slot) * DAY_MS;
                for e in codec::block_entries(&v) {
                    events.push(Event {
                        meter,
                        ts_ms: base + i64::from(e.offset_ms),
                        ml: e.ml,
                    });
                    if events.len() == EVENTS_PER_RECORD {
                        records.push(vec![Op::Events {
                            forward: false,
                            events: std::mem::take(&mut events),
                        }]);
                    }
                }
            }
            Some(prefix::METER) => {
                let field = k.get(3).copied();
                let kept = [
                    meter_field::COUNTER,
                    meter_field::LAST_SEEN_MS,
                    meter_field::READING_OVERRIDE,
                ];
                if field.is_some_and(|f| kept.contains(&f)) {
                    state.push(put());
                }
            }
            Some(prefix::GLOBAL) => {
                let name = &k[1..];
                if name.starts_with(b"meter/")
                    || name == b"next_meter"
                    || name == b"recovery_notice"
                {
                    state.push(put());
                }
            }
            Some(prefix::ALERT) => state.push(put()),
            Some(p @ (prefix::HISTORY | prefix::OUTBOX | prefix::FORWARD)) => {
                let id_bytes = if p == prefix::HISTORY {
                    k.len().saturating_sub(8)
                } else {
                    1
                };
                if let Some(b) = k.get(id_bytes..id_bytes + 8) {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    highest_id = highest_id.max(u64::from_be_bytes(a));
                }
                state.push(put());
            }
            _ => {}
        }
    }
    if !events.is_empty() {
        records.push(vec![Op::Events {
            forward: false,
            events,
        }]);
    }
    // State first: the registry must be there before anything reads meters.
    records.insert(0, state);
    Ok((records, (highest_id >> 24) + 1))
}

fn v1_error(dir: &Path, why: &str) -> StoreError {
    StoreError::Io(format!(
        "the store in {} was written by watermeter 0.1 and cannot be read ({why}); \
         move its files (conf, db, blobs, snap.*) aside and start again to begin an empty history",
        dir.display()
    ))
}
