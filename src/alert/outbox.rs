//! The persistent outbox: notifications wait in the [`AlertStore`] until every
//! channel has taken them.
//!
//! A notification is pushed in the same [`AlertStore::commit`] as the state change
//! that caused it, so a crash never splits the two. [`run_outbox`] hands the pending
//! notifications, oldest first, to each configured [`Channel`] that has not taken
//! them yet, removes one after all have, and on any failure records the error and
//! which channels already took it, then waits ([`backoff_ms`]: 30 s doubling to
//! 1 h). A crash between a server's "OK" and the record is the one window in which
//! a notification can go out twice; it then carries the same id (a mail's
//! Message-ID). No channel's protocol here (that is `src/notify/`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::notification::{Channel, Notification};
use super::state::{AlertState, HistoryEntry};

/// The last failed attempt to deliver one notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Failed attempts so far.
    pub count: u32,
    /// The channel's error with its hint, for the log and the dashboard.
    pub last_error: String,
    pub last_try_ms: i64,
    pub next_try_ms: i64,
    /// The channels that already took it ([`Channel::name`]); not sent to again.
    #[serde(default)]
    pub delivered: Vec<String>,
    /// The channels whose last try failed; they wait for `next_try_ms`.
    #[serde(default)]
    pub failed: Vec<String>,
}

/// A notification in the outbox with its id (ids grow: id order is sending order).
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub id: u64,
    pub notification: Notification,
    pub attempt: Option<Attempt>,
}

#[derive(Debug, thiserror::Error)]
#[error("alert store: {0}")]
pub struct StoreError(pub String);

/// Alert state, history and outbox, kept by the store (sled) across restarts.
pub trait AlertStore: Send + Sync {
    fn load_state(&self, alert: &str) -> Result<Option<AlertState>, StoreError>;
    /// In one atomic step: the alert's new state, an optional history line and the
    /// notifications it causes (appended to the outbox with growing ids, which are returned).
    fn commit(
        &self,
        alert: &str,
        state: &AlertState,
        history: Option<&HistoryEntry>,
        mails: &[Notification],
    ) -> Result<Vec<u64>, StoreError>;
    /// The newest `limit` history lines, newest first.
    fn history(&self, alert: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError>;
    /// Every waiting notification, in id order.
    fn outbox_pending(&self) -> Result<Vec<Pending>, StoreError>;
    /// Replace the notification's last failed attempt.
    fn outbox_record_failure(&self, id: u64, attempt: &Attempt) -> Result<(), StoreError>;
    /// Every channel took it: forget it.
    fn outbox_remove(&self, id: u64) -> Result<(), StoreError>;
}

/// Wait after the first failure; doubles per failure up to [`BACKOFF_MAX_MS`].
pub const BACKOFF_FIRST_MS: i64 = 30_000;
pub const BACKOFF_MAX_MS: i64 = 3_600_000;
/// When the store itself fails, try again after this long.
const STORE_RETRY_MS: i64 = 60_000;

/// How long to wait after the `failures`-th failed attempt in a row (1-based).
pub fn backoff_ms(failures: u32) -> i64 {
    let doublings = failures.saturating_sub(1).min(20);
    (BACKOFF_FIRST_MS << doublings).min(BACKOFF_MAX_MS)
}

/// Deliver what is due at `now_ms`, oldest first, to every channel that has not
/// taken it yet (and that it is meant for: [`Notification::channels`]).
///
/// A channel that fails holds back only itself: the later notifications wait for
/// it, so they never overtake each other on it (a "resolved" before its
/// "firing"), while the other channels go on. A failed channel is tried again after
/// [`backoff_ms`]. Returns when to try again (`None`: the outbox is empty). `force`
/// ignores backoff (used once at start-up, so a corrected config is tried at once).
pub async fn deliver_due(
    store: &dyn AlertStore,
    channels: &[Arc<dyn Channel>],
    now_ms: i64,
    force: bool,
) -> Result<Option<i64>, StoreError> {
    // Channels that failed (now or in a backoff that has not ended) this pass.
    let mut held: Vec<String> = Vec::new();
    let mut next: Option<i64> = None;
    for p in store.outbox_pending()? {
        let previous = p.attempt.clone();
        if let Some(a) = previous
            .as_ref()
            .filter(|a| !force && a.next_try_ms > now_ms)
        {
            held.extend(a.failed.iter().cloned());
            wake_at(a.next_try_ms, &mut next);
        }
        let mut delivered = previous
            .as_ref()
            .map(|a| a.delivered.clone())
            .unwrap_or_default();
        let mut failed: Vec<String> = Vec::new();
        let mut errors: Vec<String> = Vec::new();
        let mut waiting = false;
        for channel in channels {
            let name = channel.name();
            let meant = p.notification.channels.is_empty()
                || p.notification.channels.iter().any(|c| c == name);
            if !meant || delivered.iter().any(|d| d == name) {
                continue;
            }
            if held.iter().any(|h| h == name) {
                waiting = true;
                continue;
            }
            match channel.send(&p.notification).await {
                Ok(()) => {
                    tracing::info!(id = p.id, channel = name, subject = %p.notification.subject, "notification sent");
                    delivered.push(name.to_owned());
                }
                Err(e) => {
                    errors.push(format!("{name}: {e}"));
                    failed.push(name.to_owned());
                    held.push(name.to_owned());
                }
            }
        }
        if errors.is_empty() && !waiting {
            off_worker(|| store.outbox_remove(p.id))?;
            continue;
        }
        if errors.is_empty() {
            // Only waiting behind a held channel: record what was delivered meanwhile,
            // so a restart does not send it to those channels again.
            if let Some(mut a) = previous.filter(|a| a.delivered != delivered) {
                a.delivered = delivered;
                off_worker(|| store.outbox_record_failure(p.id, &a))?;
            } else if !delivered.is_empty() {
                let a = Attempt {
                    count: 0,
                    last_error: String::new(),
                    last_try_ms: now_ms,
                    next_try_ms: now_ms,
                    delivered,
                    failed: Vec::new(),
                };
                off_worker(|| store.outbox_record_failure(p.id, &a))?;
            }
            continue;
        }
        let count = previous.map_or(0, |a| a.count).saturating_add(1);
        let next_try_ms = now_ms + backoff_ms(count);
        let error = errors.join("; ");
        tracing::warn!(
            id = p.id,
            attempt = count,
            "notification not sent, retrying later: {error}"
        );
        let attempt = Attempt {
            count,
            last_error: error,
            last_try_ms: now_ms,
            next_try_ms,
            delivered,
            failed,
        };
        off_worker(|| store.outbox_record_failure(p.id, &attempt))?;
        wake_at(next_try_ms, &mut next);
    }
    Ok(next)
}

/// Keeps the earliest of the times to try again.
fn wake_at(t: i64, next: &mut Option<i64>) {
    *next = Some(next.map_or(t, |n| n.min(t)));
}

/// Runs a store commit (a write and an fsync) without holding up the other tasks
/// of an async worker: on the multi-threaded runtime the worker hands its tasks to
/// another thread meanwhile. Elsewhere (tests on one thread) it just runs.
fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The outbox task: delivers at start, whenever `wake` is notified (call
/// `notify_one()` after a commit that queued a notification) and when a backoff
/// ends; returns when `shutdown` completes. Run exactly one per store.
pub async fn run_outbox(
    store: Arc<dyn AlertStore>,
    channels: Vec<Arc<dyn Channel>>,
    wake: Arc<Notify>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut force = true;
    loop {
        let pass = deliver_due(&*store, &channels, now_ms(), force);
        let next = tokio::select! {
            _ = &mut shutdown => return,
            r = pass => r.unwrap_or_else(|e| {
                tracing::warn!("outbox: {e}");
                Some(now_ms() + STORE_RETRY_MS)
            }),
        };
        force = false;
        // Nothing waiting: sleep until woken (the day-long timer is only a safety net).
        let wait_ms = next.map_or(86_400_000, |t| (t - now_ms()).max(0));
        tokio::select! {
            _ = &mut shutdown => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait_ms.unsigned_abs())) => {}
        }
    }
}

/// What the dashboard and `/api/v1/alerts` show about outgoing notifications.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxStatus {
    pub pending: usize,
    /// The oldest waiting notification's failure, if it failed: "… is failing: …".
    pub failing: Option<Attempt>,
}

pub fn outbox_status(store: &dyn AlertStore) -> Result<OutboxStatus, StoreError> {
    let pending = store.outbox_pending()?;
    Ok(OutboxStatus {
        pending: pending.len(),
        failing: pending.into_iter().next().and_then(|p| p.attempt),
    })
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
pub use memory::MemoryStore;

/// Test doubles: compiled for tests only.
#[cfg(test)]
mod memory {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Mutex, MutexGuard};

    use super::*;

    /// In-memory [`AlertStore`] for tests. States and mails are kept as serialized
    /// bytes, like the real store, so a "restart" over it goes through serde.
    #[derive(Debug, Default)]
    pub struct MemoryStore {
        inner: Mutex<MemoryInner>,
    }

    #[derive(Debug, Default)]
    struct MemoryInner {
        states: HashMap<String, Vec<u8>>,
        history: HashMap<String, Vec<HistoryEntry>>,
        outbox: BTreeMap<u64, (Vec<u8>, Option<Attempt>)>,
        next_id: u64,
    }

    impl MemoryStore {
        pub fn new() -> Self {
            Self::default()
        }

        fn lock(&self) -> MutexGuard<'_, MemoryInner> {
            self.inner.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    fn to_bytes<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(v).map_err(|e| StoreError(e.to_string()))
    }

    fn from_bytes<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, StoreError> {
        serde_json::from_slice(b).map_err(|e| StoreError(e.to_string()))
    }

    impl AlertStore for MemoryStore {
        fn load_state(&self, alert: &str) -> Result<Option<AlertState>, StoreError> {
            self.lock()
                .states
                .get(alert)
                .map(|b| from_bytes(b))
                .transpose()
        }

        fn commit(
            &self,
            alert: &str,
            state: &AlertState,
            history: Option<&HistoryEntry>,
            mails: &[Notification],
        ) -> Result<Vec<u64>, StoreError> {
            let state = to_bytes(state)?;
            let mails = mails.iter().map(to_bytes).collect::<Result<Vec<_>, _>>()?;
            let mut inner = self.lock();
            inner.states.insert(alert.to_owned(), state);
            if let Some(h) = history {
                inner
                    .history
                    .entry(alert.to_owned())
                    .or_default()
                    .push(h.clone());
            }
            let mut ids = Vec::new();
            for mail in mails {
                inner.next_id += 1;
                let id = inner.next_id;
                inner.outbox.insert(id, (mail, None));
                ids.push(id);
            }
            Ok(ids)
        }

        fn history(&self, alert: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
            let inner = self.lock();
            let all = inner.history.get(alert).map_or(&[][..], |h| &h[..]);
            Ok(all.iter().rev().take(limit).cloned().collect())
        }

        fn outbox_pending(&self) -> Result<Vec<Pending>, StoreError> {
            let inner = self.lock();
            inner
                .outbox
                .iter()
                .map(|(id, (bytes, attempt))| {
                    Ok(Pending {
                        id: *id,
                        notification: from_bytes(bytes)?,
                        attempt: attempt.clone(),
                    })
                })
                .collect()
        }

        fn outbox_record_failure(&self, id: u64, attempt: &Attempt) -> Result<(), StoreError> {
            if let Some(entry) = self.lock().outbox.get_mut(&id) {
                entry.1 = Some(attempt.clone());
            }
            Ok(())
        }

        fn outbox_remove(&self, id: u64) -> Result<(), StoreError> {
            self.lock().outbox.remove(&id);
            Ok(())
        }
    }
}
