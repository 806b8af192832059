//! The open sled index, replaceable at run time.
//!
//! sled 0.34 makes an IO error sticky: after one failed write (disk full, a
//! read-only remount, an IO error on the card) every later operation fails with
//! it, even once the disk is fine again. So after a failed write the store closes
//! the database, opens it again from disk and catches it up with the journal, and keeps trying, at most every few seconds, until the disk
//! takes writes again (proved by writing a probe file first, so that reads keep
//! working from the old database while the disk is still full). Meanwhile writes
//! fail with a clear error and `/healthz` answers 503; the process keeps running.
//!
//! This module knows nothing of the store's keys.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use super::StoreError;

/// Reopening is tried at most this often.
const RETRY_EVERY: Duration = Duration::from_secs(2);
/// How long an open waits for the old database's file lock to be let go.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub(super) struct Open {
    pub db: sled::Db,
    pub data: sled::Tree,
    /// The event chunks, apart from the small keys every batch rewrites: sled
    /// rewrites a whole tree node every ten changes to it, and a node shared with
    /// chunks would make each pulse rewrite kilobytes of them.
    pub events: sled::Tree,
    /// Each meter's live value (`chunks::Live`), the key every batch rewrites, in
    /// a tree of its own for the same reason.
    pub live: sled::Tree,
}

pub(super) struct Handle {
    dir: PathBuf,
    cache_bytes: u64,
    current: RwLock<Option<Open>>,
    last_attempt: Mutex<Option<Instant>>,
}

impl Handle {
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Handle, StoreError> {
        let open = open_when_released(dir, cache_bytes)?;
        Ok(Handle {
            dir: dir.to_path_buf(),
            cache_bytes,
            current: RwLock::new(Some(open)),
            last_attempt: Mutex::new(None),
        })
    }

    /// The open database, or an error while it is closed after a disk error.
    pub fn get(&self) -> Result<Open, StoreError> {
        let guard = match self.current.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.clone().ok_or(StoreError::Reopening)
    }

    /// After a failed write: closes the database and opens it again from disk,
    /// unless that was tried in the last few seconds. Returns whether it is open.
    pub fn reopen(&self) -> bool {
        {
            let Ok(mut last) = self.last_attempt.lock() else {
                return false;
            };
            if last.is_some_and(|t| t.elapsed() < RETRY_EVERY) {
                return self.get().is_ok();
            }
            *last = Some(Instant::now());
        }
        // The old database still answers reads: keep it until the disk proves
        // it takes writes again, so the dashboard works through a full disk.
        if let Err(e) = disk_takes_writes(&self.dir) {
            tracing::error!(
                "the disk under {} does not take writes yet: {e}",
                self.dir.display()
            );
            return false;
        }
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        drop(guard.take());
        match open_when_released(&self.dir, self.cache_bytes) {
            Ok(open) => {
                tracing::warn!("the store was reopened after a disk error");
                *guard = Some(open);
                true
            }
            Err(e) => {
                tracing::error!("reopening the store failed (will retry): {e}");
                false
            }
        }
    }
}

impl Handle {
    /// Closes the database, lets `clear` remove its files, and opens an empty one
    /// in their place (an index rebuilt while serving).
    pub fn start_over(
        &self,
        clear: impl FnOnce() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        drop(guard.take());
        clear()?;
        *guard = Some(open_when_released(&self.dir, self.cache_bytes)?);
        Ok(())
    }
}

/// Opens the database, waiting up to [`RELEASE_WAIT`] for a file lock that this
/// process is still letting go of: sled keeps it until the last clone of a dropped
/// database (a reader, a write finishing on sled's own threads) is gone. A lock
/// held by another process outlasts the wait and is reported.
fn open_when_released(dir: &Path, cache_bytes: u64) -> Result<Open, StoreError> {
    let deadline = Instant::now() + RELEASE_WAIT;
    loop {
        match open_db(dir, cache_bytes) {
            Err(e) if Instant::now() < deadline && is_lock(&e) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            opened => return opened,
        }
    }
}

fn open_db(dir: &Path, cache_bytes: u64) -> Result<Open, StoreError> {
    let db = super::sled_memory::first_open(|| {
        sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None)
            .mode(sled::Mode::LowSpace)
            // Smaller than the 512 KiB default: a household's store is a few MB, and
            // half-empty large segments were most of its size on disk.
            .segment_size(super::SEGMENT_BYTES)
            .open()
    })?;
    let data = db.open_tree("data")?;
    let events = db.open_tree("events")?;
    let live = db.open_tree("live")?;
    Ok(Open {
        db,
        data,
        events,
        live,
    })
}

/// Writes, fsyncs and deletes a file as large as a sled segment.
pub(super) fn disk_takes_writes(dir: &Path) -> std::io::Result<()> {
    probe_write(dir, PROBE_BYTES)
}

/// Writes, fsyncs and deletes a file of `bytes` zeros in `dir`.
pub(super) fn probe_write(dir: &Path, bytes: usize) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(".write-probe");
    let result = (|| {
        let mut f = std::fs::File::create(&path)?;
        f.write_all(&vec![0u8; bytes])?;
        f.sync_all()
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// sled writes its log in segments of this size.
const PROBE_BYTES: usize = 512 * 1024;

fn is_lock(e: &StoreError) -> bool {
    matches!(e, StoreError::Db(sled::Error::Io(io)) if io.kind() == std::io::ErrorKind::WouldBlock)
        || e.to_string().contains("lock")
}
