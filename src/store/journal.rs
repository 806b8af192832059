//! The journal: the store's source of truth, an append-only file of checksummed
//! records (the write-ahead-log design of InfluxDB and Prometheus).
//!
//! Every change to the store is first appended here as one record, then applied
//! to sled, which is only the queryable index of the journal (see `recovery`).
//! A record is durable once [`Journal::sync`] returned: an `fdatasync` of the file,
//! whose directory entry was synced when the file was created. sled's own syncing
//! (`sync_file_range`, no device cache flush) is never relied on.
//!
//! Framing, little-endian: `magic "WMJ1" | len u32 | seq u64 | crc32 u32 | payload`.
//! The checksum covers `len`, `seq` and the payload, so a torn length is caught
//! too. Sequence numbers grow by one per record. A scan cuts a torn tail (a record
//! that was being written when the power went) at the last whole record, and steps
//! over damage in the middle (a bad sector) by searching for the next valid header,
//! reporting what it could not read.
//!
//! The file is grown ahead of the records in steps of [`PREALLOCATE`], written as
//! zeros once: a record's `fdatasync` then writes the record's page and nothing
//! else (no new file size, no newly allocated blocks for the file system to
//! journal), the smallest write an SD card can be asked for. A scan reads zeros
//! after the last record as room, not damage; opening cuts them, and the next
//! append grows the file again.
//!
//! This module knows nothing of what a record holds (`record` does) and never
//! touches sled.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The journal's file name inside the data directory.
pub const FILE: &str = "journal";
const MAGIC: [u8; 4] = *b"WMJ1";
const HEADER: usize = 20;
/// No record is larger: a bigger length field is damage, not data.
const MAX_PAYLOAD: u32 = 256 << 20;
/// The file grows by this much at a time, ahead of the records.
pub const PREALLOCATE: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the journal {path} is locked by another watermeter process (lock)")]
    Locked { path: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
}

fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        what,
        path: path.display().to_string(),
        source,
    }
}

/// Called with each good record: its sequence number, where it ends, its payload.
pub type Visit<'a> = dyn FnMut(u64, u64, &[u8]) -> Result<(), String> + 'a;

/// A stretch of the journal that could not be read, between two good records.
#[derive(Debug, Clone, PartialEq)]
pub struct Damage {
    pub offset: u64,
    pub bytes: u64,
    /// The sequence numbers of the good records around it (0: none before).
    pub after_seq: u64,
    pub before_seq: u64,
}

/// What opening the journal found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    pub records: u64,
    /// The last good record's sequence number (0: the journal is empty).
    pub last_seq: u64,
    /// Where the last good record ends: the journal's length after a torn tail is cut.
    pub end: u64,
    /// Bytes after the last good record that formed no record (cut off); zeros
    /// after them are room made ahead of time, not counted.
    pub torn_tail: u64,
    /// Unreadable stretches with good records after them.
    pub damage: Vec<Damage>,
}

pub struct Journal {
    path: PathBuf,
    file: File,
    /// Where the next record goes.
    end: u64,
    /// The file's length: `end` plus zeros made ahead of time.
    allocated: u64,
    next_seq: u64,
    /// Everything before this offset went through fdatasync.
    synced: u64,
}

impl Journal {
    /// Opens the journal in `dir`, creating it (and syncing the directory entry)
    /// if there is none; a new journal's first record gets `first_seq`. Scans the
    /// whole file and cuts a torn tail; damage in the middle is left in place and
    /// reported in the [`Scan`].
    pub fn open(dir: &Path, first_seq: u64) -> Result<(Journal, Scan), JournalError> {
        let path = dir.join(FILE);
        let existed = path.exists();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("opening the journal", &path))?;
        lock(&file, &path)?;
        if !existed {
            file.sync_all()
                .map_err(io_err("syncing the journal", &path))?;
            sync_dir(dir).map_err(io_err("syncing the directory of", &path))?;
        }
        let scan =
            scan(&file, &mut |_, _, _| Ok(())).map_err(io_err("reading the journal", &path))?;
        let len = file
            .metadata()
            .map_err(io_err("reading the journal", &path))?
            .len();
        if scan.end < len {
            file.set_len(scan.end)
                .and_then(|()| file.sync_data())
                .map_err(io_err("cutting the torn end of the journal", &path))?;
        }
        let next_seq = if scan.records == 0 {
            first_seq.max(1)
        } else {
            scan.last_seq + 1
        };
        let journal = Journal {
            path,
            file,
            end: scan.end,
            allocated: scan.end,
            next_seq,
            // What an earlier process wrote may still be in the page cache only
            // (it was killed before syncing): nothing counts as durable until the
            // first sync, which the store does at open.
            synced: 0,
        };
        Ok((journal, scan))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Where the next record goes (the end of the last one).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Appends one record and returns its sequence number and where it ends. It is
    /// durable only after [`Journal::sync`]. On a failed write the partial record is
    /// cut off again, so the next append starts on a clean boundary.
    pub fn append(&mut self, payload: &[u8]) -> Result<(u64, u64), JournalError> {
        let seq = self.next_seq;
        let frame = frame(seq, payload);
        if crate::store::faults::hit("journal-torn") {
            let half = &frame[..frame.len() / 2];
            let _ = self.file.write_all_at(half, self.end);
            crate::store::faults::crash();
        }
        let need = self.end + frame.len() as u64;
        if need > self.allocated {
            if let Err(e) = self.grow(need) {
                let _ = self.file.set_len(self.end);
                self.allocated = self.end;
                return Err(io_err("growing the journal", &self.path)(e));
            }
        }
        if let Err(e) = self.file.write_all_at(&frame, self.end) {
            let _ = self.file.set_len(self.end);
            self.allocated = self.end;
            return Err(io_err("writing to the journal", &self.path)(e));
        }
        self.end += frame.len() as u64;
        self.next_seq += 1;
        Ok((seq, self.end))
    }

    /// Writes zeros from the file's end to past `need`, in whole [`PREALLOCATE`]
    /// steps. Made durable by the next sync, with the record that needed it.
    /// Page by page: a kernel that caches a file in large folios gives a 64 KiB
    /// write a 64 KiB folio, and every later record dirtying it would then write
    /// 64 KiB (seen on Linux 6.18: 64 KiB per pulse instead of 4).
    fn grow(&mut self, need: u64) -> std::io::Result<()> {
        let target = need.div_ceil(PREALLOCATE) * PREALLOCATE;
        let zeros = [0u8; 4096];
        let mut at = self.allocated;
        while at < target {
            let n = zeros.len().min((target - at) as usize);
            self.file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        self.allocated = target;
        Ok(())
    }

    /// What a sync must cover now, to be passed to [`sync_file`] outside any lock,
    /// then to [`Journal::mark_synced`]. `None`: nothing is waiting.
    pub fn sync_target(&self) -> Result<Option<(File, u64)>, JournalError> {
        if self.synced >= self.end {
            return Ok(None);
        }
        let file = self
            .file
            .try_clone()
            .map_err(io_err("syncing the journal", &self.path))?;
        Ok(Some((file, self.end)))
    }

    pub fn mark_synced(&mut self, upto: u64) {
        self.synced = self.synced.max(upto);
    }

    /// Whether every appended record went through fdatasync.
    pub fn is_synced(&self) -> bool {
        self.synced >= self.end
    }

    /// Calls `each(seq, end, payload)` for every good record that starts at or after
    /// `from` (an offset where a record starts: 0 or a record's end).
    pub fn replay(&self, from: u64, each: &mut Visit<'_>) -> Result<Scan, String> {
        let mut file = self
            .file
            .try_clone()
            .map_err(|e| format!("reading the journal {}: {e}", self.path.display()))?;
        file.seek(SeekFrom::Start(from))
            .map_err(|e| format!("reading the journal {}: {e}", self.path.display()))?;
        let mut window = Window::new(file, from, self.end);
        scan_window(&mut window, each)
    }

    /// Rewrites the journal with only its good records, after damage was found: the
    /// damaged file is kept beside it as `keep` for a closer look. Offsets change.
    pub fn rewrite_without_damage(&mut self, keep: &Path) -> Result<Scan, JournalError> {
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let tmp = dir.join(format!("{FILE}.rewrite"));
        let mut out =
            std::io::BufWriter::new(File::create(&tmp).map_err(io_err("creating", &tmp))?);
        let mut write_err = None;
        self.replay(0, &mut |seq, _, payload| {
            out.write_all(&frame(seq, payload)).map_err(|e| {
                let text = e.to_string();
                write_err = Some(e);
                text
            })
        })
        .map_err(|e| {
            io_err("rewriting the journal", &self.path)(
                write_err.take().unwrap_or_else(|| std::io::Error::other(e)),
            )
        })?;
        let file = out
            .into_inner()
            .map_err(|e| io_err("writing", &tmp)(e.into_error()))?;
        file.sync_all().map_err(io_err("syncing", &tmp))?;
        std::fs::copy(&self.path, keep)
            .and_then(|_| File::open(keep)?.sync_all())
            .map_err(io_err("keeping a copy of the damaged journal as", keep))?;
        std::fs::rename(&tmp, &self.path).map_err(io_err("replacing", &self.path))?;
        sync_dir(&dir).map_err(io_err("syncing the directory of", &self.path))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(io_err("opening the journal", &self.path))?;
        lock(&file, &self.path)?;
        let scan = scan(&file, &mut |_, _, _| Ok(()))
            .map_err(io_err("reading the journal", &self.path))?;
        self.file = file;
        self.end = scan.end;
        self.allocated = scan.end;
        self.synced = scan.end;
        Ok(scan)
    }
}

/// Takes the journal's exclusive lock, so two processes never append to one file.
/// Waits briefly for a lock this process is still letting go of (a store just
/// dropped while a sync of it finishes).
fn lock(file: &File, path: &Path) -> Result<(), JournalError> {
    use std::os::fd::AsRawFd;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        // SAFETY: flock on a descriptor this function borrows; no memory is shared.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::WouldBlock {
            return Err(io_err("locking the journal", path)(e));
        }
        if std::time::Instant::now() > deadline {
            return Err(JournalError::Locked {
                path: path.display().to_string(),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// fdatasync: the data and the size, which is all a reader needs to find it.
pub fn sync_file(file: &File) -> std::io::Result<()> {
    file.sync_data()
}

pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn frame(seq: u64, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&checksum(len, seq, payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn checksum(len: u32, seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn scan(file: &File, each: &mut Visit<'_>) -> std::io::Result<Scan> {
    let len = file.metadata()?.len();
    let mut window = Window::new(file.try_clone()?, 0, len);
    scan_window(&mut window, each).map_err(std::io::Error::other)
}

/// Walks the records in `window`, stepping over damage; see the module comment.
fn scan_window(w: &mut Window, each: &mut Visit<'_>) -> Result<Scan, String> {
    let mut scan = Scan {
        end: w.base,
        ..Scan::default()
    };
    let mut pos = w.base;
    // Where unreadable bytes began, while searching for the next good record.
    let mut bad_from: Option<u64> = None;
    while pos < w.len {
        match w.record_at(pos).map_err(|e| e.to_string())? {
            Some((seq, payload_len)) => {
                let end = pos + (HEADER + payload_len) as u64;
                if let Some(from) = bad_from.take() {
                    scan.damage.push(Damage {
                        offset: from,
                        bytes: pos - from,
                        after_seq: scan.last_seq,
                        before_seq: seq,
                    });
                }
                let payload = w.slice(pos + HEADER as u64, payload_len);
                each(seq, end, payload)?;
                scan.records += 1;
                scan.last_seq = seq;
                scan.end = end;
                pos = end;
            }
            None => {
                bad_from.get_or_insert(pos);
                pos = match w.find_magic(pos + 1).map_err(|e| e.to_string())? {
                    Some(next) => next,
                    None => w.len,
                };
            }
        }
    }
    if let Some(from) = bad_from {
        scan.torn_tail = w.last_nonzero_end(from).map_err(|e| e.to_string())? - from;
    }
    Ok(scan)
}

/// A sliding read buffer over the file, so a scan reads it once, in large pieces.
struct Window {
    file: File,
    /// File offset of `buf[0]`.
    at: u64,
    buf: Vec<u8>,
    base: u64,
    len: u64,
}

const READ_AHEAD: usize = 1 << 20;

impl Window {
    fn new(file: File, base: u64, len: u64) -> Window {
        Window {
            file,
            at: base,
            buf: Vec::new(),
            base,
            len,
        }
    }

    /// Makes `[pos, pos + n)` available; false when the file ends first.
    fn fill(&mut self, pos: u64, n: usize) -> std::io::Result<bool> {
        if pos + n as u64 > self.len {
            return Ok(false);
        }
        let have = pos >= self.at && pos + n as u64 <= self.at + self.buf.len() as u64;
        if have {
            return Ok(true);
        }
        let want = n.max(READ_AHEAD).min((self.len - pos) as usize);
        self.buf.resize(want, 0);
        self.file.read_exact_at(&mut self.buf, pos)?;
        self.at = pos;
        Ok(true)
    }

    fn slice(&self, pos: u64, n: usize) -> &[u8] {
        let from = (pos - self.at) as usize;
        &self.buf[from..from + n]
    }

    /// The record starting at `pos`, if a whole one with a good checksum is there.
    fn record_at(&mut self, pos: u64) -> std::io::Result<Option<(u64, usize)>> {
        if !self.fill(pos, HEADER)? {
            return Ok(None);
        }
        let h = self.slice(pos, HEADER);
        let word = |i: usize| [h[i], h[i + 1], h[i + 2], h[i + 3]];
        if h[0..4] != MAGIC {
            return Ok(None);
        }
        let len = u32::from_le_bytes(word(4));
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&h[8..16]);
        let seq = u64::from_le_bytes(seq_bytes);
        let crc = u32::from_le_bytes(word(16));
        if len > MAX_PAYLOAD || !self.fill(pos, HEADER + len as usize)? {
            return Ok(None);
        }
        let payload = self.slice(pos + HEADER as u64, len as usize);
        Ok((checksum(len, seq, payload) == crc).then_some((seq, len as usize)))
    }

    /// Where the bytes from `from` on end once trailing zeros are left out.
    fn last_nonzero_end(&mut self, from: u64) -> std::io::Result<u64> {
        let mut end = self.len;
        while end > from {
            let n = READ_AHEAD.min((end - from) as usize);
            let start = end - n as u64;
            self.fill(start, n)?;
            if let Some(i) = self.slice(start, n).iter().rposition(|&b| b != 0) {
                return Ok(start + i as u64 + 1);
            }
            end = start;
        }
        Ok(from)
    }

    /// The next offset at or after `from` where the magic appears.
    fn find_magic(&mut self, from: u64) -> std::io::Result<Option<u64>> {
        let mut pos = from;
        while pos + MAGIC.len() as u64 <= self.len {
            let n = READ_AHEAD.min((self.len - pos) as usize);
            self.fill(pos, n)?;
            let hay = self.slice(pos, n);
            if let Some(i) = hay.windows(MAGIC.len()).position(|w| w == MAGIC) {
                return Ok(Some(pos + i as u64));
            }
            // Keep the last bytes: the magic may straddle two reads.
            pos += (n - MAGIC.len() + 1).max(1) as u64;
        }
        Ok(None)
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
