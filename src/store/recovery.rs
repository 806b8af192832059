//! Opening the store, and restoring it from the newest backup when it is damaged.
//!
//! The store counts as damaged when sled reports corruption or panics while opening
//! it, or when it opens with less history than the watermark says was on disk (sled
//! 0.34 may truncate a damaged log and carry on with what came before, see sled
//! #1527/#1533). Then the damaged files are moved to `data_dir/store.damaged-<time>`,
//! a fresh store is filled from the newest complete backup through `Store::apply`,
//! a [`RecoveryNotice`] is kept in the store (for the alert mail and the dashboard)
//! and the loss is logged at error level. Without a backup the program refuses to
//! start: it never starts empty in silence.
//!
//! This module does not take backups (`backup` does) and sends no mail.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::backup::{self, BackupInfo};
use super::{global_key, Store, StoreError};
use crate::config::Config;
use crate::ingest::line_protocol::Precision;
use crate::ingest::MeterIdx;

/// "The store was damaged and restored from a backup": kept in the store until
/// the next recovery, for the alert mail and the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryNotice {
    pub recovered_at_ms: i64,
    /// Why the store counted as damaged.
    pub reason: String,
    /// The backup file restored from.
    pub backup: String,
    /// Events after this instant may be missing.
    pub backup_taken_at_ms: i64,
    /// Where the damaged files were moved.
    pub damaged_store: String,
    pub restored_events: u64,
    /// Liters the watermark proves were on disk and the backup lacks (a lower bound:
    /// events after the watermark are unknown).
    pub known_missing_liters: f64,
}

impl RecoveryNotice {
    /// One sentence for logs, mails and the dashboard.
    pub fn message(&self) -> String {
        format!(
            "the store was damaged ({}) and was restored from the backup {} with {} events; \
             events after {} may be missing{}; the damaged files are in {}",
            self.reason,
            self.backup,
            self.restored_events,
            rfc3339(self.backup_taken_at_ms),
            if self.known_missing_liters > 0.0 {
                format!(
                    " (at least {} L are known to be missing)",
                    self.known_missing_liters
                )
            } else {
                String::new()
            },
            self.damaged_store,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Not damage: in use, no permission, disk full… the caller explains it.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the store in {dir} is damaged ({reason}) and there is no backup in {backups} to restore it from; \
         to start with an empty history, stop here and move {dir} aside by hand \
         (mv {dir} {dir}.broken), then start again"
    )]
    DamagedWithoutBackup {
        dir: String,
        backups: String,
        reason: String,
    },
    #[error(
        "the store in {dir} is damaged ({reason}) and restoring it from a backup failed: {cause:#}"
    )]
    RestoreFailed {
        dir: String,
        reason: String,
        cause: anyhow::Error,
    },
}

impl Store {
    /// The last recovery from a backup, if there was one.
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

    fn set_recovery_notice(&self, notice: &RecoveryNotice) -> Result<(), StoreError> {
        let v = serde_json::to_vec(notice).unwrap_or_default();
        self.data()?.insert(global_key(NOTICE_KEY), v)?;
        self.flush()
    }
}

const NOTICE_KEY: &str = "recovery_notice";

/// Opens the store in `config.data_dir`, restoring it from the newest backup if it
/// is damaged. `now_ms` stamps the notice and the damaged directory's name.
pub fn open(config: &Config, now_ms: i64) -> Result<Store, OpenError> {
    let damage = match open_plain(config) {
        Ok(store) => match lost_history(&store, config) {
            None => return Ok(store),
            Some(reason) => {
                drop(store);
                reason
            }
        },
        Err(Opened::Damaged(reason)) => reason,
        Err(Opened::Failed(e)) => return Err(OpenError::Store(e)),
    };
    restore(config, &damage, now_ms)
}

enum Opened {
    Damaged(String),
    Failed(StoreError),
}

fn open_plain(config: &Config) -> Result<Store, Opened> {
    let c = &config;
    let opened = std::panic::catch_unwind(AssertUnwindSafe(|| {
        Store::open(&c.data_dir, c.store.cache_bytes, c.timezone, &c.meters)
    }));
    match opened {
        Ok(Ok(store)) => Ok(store),
        Ok(Err(e)) if is_damage(&e) => Err(Opened::Damaged(describe(&e))),
        Ok(Err(e)) => Err(Opened::Failed(e)),
        Err(panic) => Err(Opened::Damaged(format!(
            "sled panicked while opening it: {}",
            panic_text(&panic)
        ))),
    }
}

/// Errors that mean the files are bad, as opposed to the disk or the permissions.
fn is_damage(e: &StoreError) -> bool {
    use std::io::ErrorKind::{InvalidData, UnexpectedEof};
    match e {
        StoreError::Db(sled::Error::Corruption { .. }) => true,
        StoreError::Db(sled::Error::ReportableBug(_)) => true,
        StoreError::Db(sled::Error::Io(io)) => matches!(io.kind(), UnexpectedEof | InvalidData),
        _ => false,
    }
}

fn describe(e: &StoreError) -> String {
    match e {
        StoreError::Db(sled::Error::Corruption { at: Some(at), .. }) => {
            format!("sled found corrupted data at {at}")
        }
        StoreError::Db(sled::Error::Corruption { at: None, .. }) => {
            "sled found corrupted data".to_string()
        }
        other => format!("sled failed: {other}"),
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

/// Why the store, though it opened, has less than was once on disk.
fn lost_history(store: &Store, config: &Config) -> Option<String> {
    let mark = backup::read_watermark(&config.data_dir);
    let newest = backup::list(&config.data_dir).into_iter().next();
    for (i, m) in config.meters.iter().enumerate() {
        let have = store.total_ml(i as MeterIdx).unwrap_or(0);
        let from_mark = mark
            .as_ref()
            .and_then(|w| w.total(&m.id).map(|t| (t, w.at_ms)));
        let from_backup = newest.as_ref().and_then(|b| {
            let t = b.totals.iter().find(|(id, _)| *id == m.id)?.1;
            Some((t, b.taken_at_ms))
        });
        for (had, at) in [from_mark, from_backup].into_iter().flatten() {
            if have < had {
                return Some(format!(
                    "it holds {} L for meter '{}', but held {} L on {}",
                    have as f64 / 1000.0,
                    m.id,
                    had as f64 / 1000.0,
                    rfc3339(at)
                ));
            }
        }
    }
    None
}

fn restore(config: &Config, reason: &str, now_ms: i64) -> Result<Store, OpenError> {
    let dir = config.data_dir.display().to_string();
    tracing::error!("the store in {dir} is damaged: {reason}");
    let Some(newest) = backup::list(&config.data_dir).into_iter().next() else {
        return Err(OpenError::DamagedWithoutBackup {
            dir,
            backups: backup::dir(&config.data_dir).display().to_string(),
            reason: reason.to_string(),
        });
    };
    let failed = |cause: anyhow::Error| OpenError::RestoreFailed {
        dir: dir.clone(),
        reason: reason.to_string(),
        cause,
    };
    let damaged = move_aside(&config.data_dir, now_ms).map_err(failed)?;
    let (store, notice) = replay(config, &newest, reason, &damaged, now_ms).map_err(failed)?;
    tracing::error!("{}", notice.message());
    // The old watermark is higher than the restored totals: replace it now, or a
    // crash before the next one would restore from the backup again.
    if let Err(e) = backup::write_watermark(&store, config, now_ms) {
        tracing::error!("updating the store's watermark failed: {e:#}");
    }
    Ok(store)
}

/// Fills a fresh store from `backup` and records the notice. The store stays open
/// (closing and reopening it at once could race sled's own release of its lock).
fn replay(
    config: &Config,
    backup: &BackupInfo,
    reason: &str,
    damaged: &Path,
    now_ms: i64,
) -> anyhow::Result<(Store, RecoveryNotice)> {
    let store = open_plain(config).map_err(|e| match e {
        Opened::Damaged(r) => anyhow::anyhow!("a fresh store cannot be created: {r}"),
        Opened::Failed(e) => anyhow::Error::new(e).context("creating a fresh store"),
    })?;
    let summary = crate::transfer::import(&store, config, &backup.path, Precision::Nanoseconds)
        .with_context(|| format!("replaying {}", backup.path.display()))?;
    let mark = backup::read_watermark(&config.data_dir);
    let mut missing_ml = 0u64;
    for (i, m) in config.meters.iter().enumerate() {
        let have = store.total_ml(i as MeterIdx)?;
        let had = mark.as_ref().and_then(|w| w.total(&m.id)).unwrap_or(0);
        missing_ml += had.saturating_sub(have);
    }
    let notice = RecoveryNotice {
        recovered_at_ms: now_ms,
        reason: reason.to_string(),
        backup: backup.path.display().to_string(),
        backup_taken_at_ms: backup.taken_at_ms,
        damaged_store: damaged.display().to_string(),
        restored_events: summary.points,
        known_missing_liters: missing_ml as f64 / 1000.0,
    };
    store.set_recovery_notice(&notice)?;
    Ok((store, notice))
}

/// Moves sled's files (`conf`, `db`, `blobs/`, `snap.*`) into `store.damaged-<time>`;
/// backups and everything else in the data directory stay.
fn move_aside(data_dir: &Path, now_ms: i64) -> anyhow::Result<PathBuf> {
    let stamp = chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|| now_ms.to_string());
    let target = data_dir.join(format!("store.damaged-{stamp}"));
    std::fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
    let entries =
        std::fs::read_dir(data_dir).with_context(|| format!("listing {}", data_dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(n) = name.to_str() else { continue };
        if matches!(n, "conf" | "db" | "blobs") || n.starts_with("snap.") {
            let to = target.join(&name);
            std::fs::rename(entry.path(), &to).with_context(|| {
                format!("moving {} to {}", entry.path().display(), to.display())
            })?;
        }
    }
    std::fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", data_dir.display()))?;
    Ok(target)
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}
