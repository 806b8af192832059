//! Rotating backups of the store as line protocol, and the watermark that tells a
//! damaged store from a healthy one.
//!
//! A backup is `data_dir/backups/watermeter-<UTC time>.lp`: every event as a line
//! (written by `transfer::export`), a header with the time it was taken and each
//! meter's total at that moment, and a trailer that proves the file is complete.
//! It is written to a temporary file, fsynced and renamed, so a power cut leaves
//! either the old set or the new one. One is taken at start when the newest is more
//! than a day old, then one a day; the oldest beyond `[store] backups` are deleted.
//!
//! The watermark (`backups/watermark`) holds each meter's total as it was on disk a
//! few minutes ago. Totals only ever grow, so a store that opens with less than the
//! watermark has lost history (sled 0.34 may "recover" a damaged log by silently
//! dropping everything after the damage): `recovery` then restores from a backup.
//!
//! Taking a backup reads through sled's iterators, which never hold a lock across
//! steps: the writer keeps writing meanwhile. This module does not decide what a
//! damaged store is or restore one; that is `recovery`.

use std::io::{BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use super::Store;
use crate::config::Config;
use crate::ingest::MeterIdx;
use crate::transfer;

/// A backup a day.
pub const INTERVAL_MS: i64 = 86_400_000;
/// How often the watermark is brought up to date.
pub const WATERMARK_EVERY: Duration = Duration::from_secs(600);

const DIR: &str = "backups";
const WATERMARK: &str = "watermark";
const PREFIX: &str = "watermeter-";
const SUFFIX: &str = ".lp";
const HEADER: &str = "# watermeter backup";
const TRAILER: &str = "# watermeter backup complete";

/// What a backup file says about itself (from its header).
#[derive(Debug, Clone, PartialEq)]
pub struct BackupInfo {
    pub path: PathBuf,
    pub taken_at_ms: i64,
    /// Milliliters per meter id when the backup began (the file holds at least these).
    pub totals: Vec<(String, u64)>,
}

/// Each meter's total as it was on disk at `at_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Watermark {
    pub at_ms: i64,
    pub totals: Vec<(String, u64)>,
}

impl Watermark {
    pub fn total(&self, meter: &str) -> Option<u64> {
        self.totals.iter().find(|(m, _)| m == meter).map(|t| t.1)
    }
}

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR)
}

/// Takes a backup now and deletes the oldest beyond `[store] backups`. Setting
/// `cancel` stops it early (at shutdown), leaving no file behind.
pub fn take(
    store: &Store,
    config: &Config,
    now_ms: i64,
    cancel: &AtomicBool,
) -> anyhow::Result<BackupInfo> {
    let dir = dir(&config.data_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let totals = totals(store, config)?;
    // As for the watermark: the header never claims more than the disk holds.
    store.flush().context("flushing the store")?;
    let path = dir.join(format!("{PREFIX}{}{SUFFIX}", file_time(now_ms)));
    let tmp = path.with_extension("lp.tmp");
    let written = write_file(&tmp, |out| {
        writeln!(out, "{HEADER} taken_at_ms={now_ms}")?;
        for (id, ml) in &totals {
            writeln!(out, "# total meter={id} ml={ml}")?;
        }
        let meters: Vec<MeterIdx> = (0..config.meters.len() as MeterIdx).collect();
        let end = i64::MAX / 2;
        let mut out = Cancellable { out, cancel };
        let lp = transfer::Format::LineProtocol;
        let n = transfer::export(store, config, &meters, lp, 0, end, &mut out)?;
        writeln!(out.out, "{TRAILER} events={n}")?;
        Ok(())
    });
    if let Err(e) = written.and_then(|()| publish(&tmp, &path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing the backup {}", path.display()));
    }
    prune(&dir, config.store.backups as usize);
    Ok(BackupInfo {
        path,
        taken_at_ms: now_ms,
        totals,
    })
}

/// Complete backups, newest first. Unreadable or unfinished files are skipped.
pub fn list(data_dir: &Path) -> Vec<BackupInfo> {
    let Ok(entries) = std::fs::read_dir(dir(data_dir)) else {
        return Vec::new();
    };
    let mut found: Vec<BackupInfo> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_backup_name(p))
        .filter_map(|p| read_info(&p).ok().flatten())
        .collect();
    found.sort_by_key(|b| std::cmp::Reverse(b.taken_at_ms));
    found
}

/// Records each meter's total after making sure it is on disk.
pub fn write_watermark(store: &Store, config: &Config, now_ms: i64) -> anyhow::Result<()> {
    let totals = totals(store, config)?;
    // The totals read above are on disk once this flush returns: a crash that
    // loses the last second can therefore never look like lost history.
    store.flush().context("flushing the store")?;
    let dir = dir(&config.data_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(WATERMARK);
    let tmp = dir.join(format!("{WATERMARK}.tmp"));
    let written = write_file(&tmp, |out| {
        writeln!(out, "at_ms={now_ms}")?;
        for (id, ml) in &totals {
            writeln!(out, "{id}={ml}")?;
        }
        Ok(())
    });
    written
        .and_then(|()| publish(&tmp, &path))
        .with_context(|| format!("writing {}", path.display()))
}

/// The last watermark, if one was written and can be read.
pub fn read_watermark(data_dir: &Path) -> Option<Watermark> {
    let text = std::fs::read_to_string(dir(data_dir).join(WATERMARK)).ok()?;
    parse_watermark(&text)
}

/// When the next backup is due: at once without one, else a day after the newest.
pub fn next_due(newest_ms: Option<i64>, now_ms: i64) -> i64 {
    match newest_ms {
        Some(t) if t <= now_ms => t + INTERVAL_MS,
        _ => now_ms,
    }
}

/// Runs the daily backup and the watermark until shutdown. With `[store] backups
/// = 0` it does nothing.
pub fn spawn(
    store: Arc<Store>,
    config: Arc<Config>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if config.store.backups == 0 {
            return;
        }
        loop {
            let now = chrono::Utc::now().timestamp_millis();
            let newest = list(&config.data_dir).first().map(|b| b.taken_at_ms);
            let due = next_due(newest, now);
            let (store2, config2) = (store.clone(), config.clone());
            let cancel = Arc::new(AtomicBool::new(false));
            let cancel2 = cancel.clone();
            let mut work = tokio::task::spawn_blocking(move || {
                if due <= now {
                    backup_and_watermark(&store2, &config2, now, &cancel2);
                } else if let Err(e) = write_watermark(&store2, &config2, now) {
                    tracing::error!("updating the store's watermark failed: {e:#}");
                }
            });
            tokio::select! {
                _ = &mut work => {}
                _ = shutdown.changed() => {
                    cancel.store(true, Ordering::Relaxed);
                    let _ = work.await;
                    return;
                }
            }
            let until_due = Duration::from_millis((due - now).max(0) as u64);
            let wait = until_due.clamp(Duration::from_secs(1), WATERMARK_EVERY);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}

fn backup_and_watermark(store: &Store, config: &Config, now: i64, cancel: &AtomicBool) {
    match take(store, config, now, cancel) {
        Ok(b) => tracing::info!("backup written to {}", b.path.display()),
        Err(e) => tracing::error!("taking the daily backup failed: {e:#}"),
    }
    if let Err(e) = write_watermark(store, config, now) {
        tracing::error!("updating the store's watermark failed: {e:#}");
    }
}

/// A writer that fails once `cancel` is set, so a long export stops at shutdown.
struct Cancellable<'a> {
    out: &'a mut dyn Write,
    cancel: &'a AtomicBool,
}

impl Write for Cancellable<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("shutting down"));
        }
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

fn totals(store: &Store, config: &Config) -> anyhow::Result<Vec<(String, u64)>> {
    config
        .meters
        .iter()
        .enumerate()
        .map(|(i, m)| Ok((m.id.clone(), store.total_ml(i as MeterIdx)?)))
        .collect()
}

fn write_file(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    body(&mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(())
}

/// Renames the finished temporary file into place and makes the rename durable.
fn publish(tmp: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::rename(tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    // Left over by a crash or a shutdown in the middle of a backup.
    let stale = paths
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".lp.tmp"));
    for tmp in stale {
        let _ = std::fs::remove_file(tmp);
    }
    let mut names: Vec<PathBuf> = paths.into_iter().filter(|p| is_backup_name(p)).collect();
    // The file names sort by time (fixed-width UTC stamps).
    names.sort();
    let excess = names.len().saturating_sub(keep.max(1));
    for old in &names[..excess] {
        if let Err(e) = std::fs::remove_file(old) {
            tracing::warn!("cannot delete the old backup {}: {e}", old.display());
        }
    }
}

fn is_backup_name(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
}

/// `20261126T053012.345Z`: sorts by time, safe in any file system.
fn file_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y%m%dT%H%M%S%.3fZ").to_string(),
        None => ms.to_string(),
    }
}

/// The header of a complete backup; `None` when it is not one (or is cut short).
fn read_info(path: &Path) -> std::io::Result<Option<BackupInfo>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let tail_len = len.min(256);
    file.seek(std::io::SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::new();
    Read::by_ref(&mut file)
        .take(tail_len)
        .read_to_end(&mut tail)?;
    let complete = tail
        .split(|&b| b == b'\n')
        .any(|l| l.starts_with(TRAILER.as_bytes()));
    if !complete {
        return Ok(None);
    }
    file.seek(std::io::SeekFrom::Start(0))?;
    let mut head = String::new();
    let mut reader = std::io::BufReader::new(file);
    let mut lines = Vec::new();
    while lines.len() < 1 + 1024 {
        head.clear();
        if reader.read_line(&mut head)? == 0 || !head.starts_with('#') {
            break;
        }
        lines.push(head.trim_end().to_string());
    }
    Ok(
        parse_header(&lines).map(|(taken_at_ms, totals)| BackupInfo {
            path: path.to_path_buf(),
            taken_at_ms,
            totals,
        }),
    )
}

fn parse_header(lines: &[String]) -> Option<(i64, Vec<(String, u64)>)> {
    let first = lines.first()?.strip_prefix(HEADER)?.trim();
    let taken = first.strip_prefix("taken_at_ms=")?.parse().ok()?;
    let totals = lines[1..]
        .iter()
        .filter_map(|l| {
            let rest = l.strip_prefix("# total meter=")?;
            let (id, ml) = rest.split_once(" ml=")?;
            Some((id.to_string(), ml.parse().ok()?))
        })
        .collect();
    Some((taken, totals))
}

fn parse_watermark(text: &str) -> Option<Watermark> {
    let mut lines = text.lines();
    let at_ms = lines.next()?.strip_prefix("at_ms=")?.parse().ok()?;
    let totals = lines
        .filter_map(|l| {
            let (id, ml) = l.split_once('=')?;
            Some((id.to_string(), ml.parse().ok()?))
        })
        .collect();
    Some(Watermark { at_ms, totals })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_backup_is_due_a_day_after_the_newest_or_now() {
        let check = |newest, now, expected| assert_eq!(next_due(newest, now), expected);
        check(None, 5_000, 5_000);
        check(Some(1_000), 5_000, 1_000 + INTERVAL_MS);
        // A backup stamped in the future (clock went back): take one now.
        check(Some(9_000), 5_000, 5_000);
    }

    #[test]
    fn a_header_gives_the_time_and_the_totals() {
        let lines: Vec<String> = [
            "# watermeter backup taken_at_ms=1700000000000",
            "# total meter=main ml=5000",
            "# total meter=garden ml=0",
        ]
        .map(String::from)
        .to_vec();
        let (t, totals) = parse_header(&lines).expect("header");
        assert_eq!(t, 1_700_000_000_000);
        assert_eq!(totals, vec![("main".into(), 5000), ("garden".into(), 0)]);
        assert!(parse_header(&["# something else".to_string()]).is_none());
    }

    #[test]
    fn a_watermark_round_trips_and_rejects_garbage() {
        let w = parse_watermark("at_ms=12\nmain=3000\ngarden=1\n").expect("watermark");
        assert_eq!(w.at_ms, 12);
        assert_eq!(w.total("main"), Some(3000));
        assert_eq!(w.total("other"), None);
        assert!(parse_watermark("garbage").is_none());
        assert!(parse_watermark("").is_none());
    }

    fn store_with(dir: &Path, liters: &[i64]) -> (Store, Config) {
        let mut config = crate::config::builtin_defaults();
        config.data_dir = dir.to_path_buf();
        config.store.backups = 3;
        let store = Store::open(dir, 1 << 20, chrono_tz::UTC, &config.meters).unwrap();
        let samples: Vec<_> = liters
            .iter()
            .map(|&s| crate::ingest::Sample {
                meter: 0,
                ts_ms: s * 1000,
                value: crate::ingest::SampleValue::Liters(1.0),
            })
            .collect();
        store.apply(&samples).unwrap();
        (store, config)
    }

    #[test]
    fn a_backup_holds_every_event_and_only_the_newest_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (store, config) = store_with(dir.path(), &[1_700_000_000, 1_700_000_001]);
        let never = AtomicBool::new(false);
        for i in 0..5 {
            take(&store, &config, 1_800_000_000_000 + i, &never).unwrap();
        }
        let found = list(dir.path());
        let times: Vec<i64> = found.iter().map(|b| b.taken_at_ms).collect();
        assert_eq!(
            times,
            vec![1_800_000_000_004, 1_800_000_000_003, 1_800_000_000_002]
        );
        assert_eq!(found[0].totals, vec![("main".to_string(), 2000)]);
        let text = std::fs::read_to_string(&found[0].path).unwrap();
        assert_eq!(text.lines().filter(|l| l.starts_with("water,")).count(), 2);
    }

    #[test]
    fn a_cancelled_backup_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let (store, config) = store_with(dir.path(), &[1_700_000_000]);
        let cancel = AtomicBool::new(true);
        assert!(take(&store, &config, 1_800_000_000_000, &cancel).is_err());
        assert!(list(dir.path()).is_empty());
        let left = std::fs::read_dir(super::dir(dir.path())).unwrap().count();
        assert_eq!(left, 0);
    }

    #[test]
    fn a_backup_cut_short_is_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let (store, config) = store_with(dir.path(), &[1_700_000_000]);
        let b = take(&store, &config, 1_800_000_000_000, &AtomicBool::new(false)).unwrap();
        let text = std::fs::read_to_string(&b.path).unwrap();
        std::fs::write(&b.path, &text[..text.len() - 20]).unwrap();
        assert!(list(dir.path()).is_empty());
    }

    #[test]
    fn the_watermark_records_the_totals() {
        let dir = tempfile::tempdir().unwrap();
        let (store, config) = store_with(dir.path(), &[1_700_000_000, 1_700_000_500]);
        write_watermark(&store, &config, 42).unwrap();
        let w = read_watermark(dir.path()).unwrap();
        assert_eq!((w.at_ms, w.total("main")), (42, Some(2000)));
    }

    #[test]
    fn file_names_sort_by_time() {
        let a = file_time(1_700_000_000_000);
        let b = file_time(1_700_000_000_001);
        assert_eq!(a, "20231114T221320.000Z");
        assert!(a < b);
    }
}
