//! The persistent outbox: mails wait in the [`AlertStore`] until the server takes them.
//!
//! A mail is pushed in the same [`AlertStore::commit`] as the state change that caused
//! it, so a crash never splits the two. [`run_outbox`] sends the pending mails oldest
//! first, removes each one after the server accepted it, and on any failure records
//! the error on the mail and waits ([`backoff_ms`]: 30 s doubling to 1 h). A crash
//! between the server's "250 OK" and the removal is the one window in which a mail can
//! go out twice; it then carries the same Message-ID. No SMTP here (that is `mail.rs`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::mail::MailError;
use super::state::{AlertState, HistoryEntry};

/// A composed mail waiting to be sent. Sender and recipients come from `[smtp]` at
/// sending time, so a corrected config applies to mails already waiting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMail {
    /// The alert's name (empty for a test mail).
    pub alert: String,
    /// When the transition happened: the mail's Date header.
    pub created_ms: i64,
    /// `<…@domain>`, fixed at composing time so a re-send keeps it.
    pub message_id: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// The last failed attempt to send one mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Failed attempts so far.
    pub count: u32,
    /// The SMTP error with its hint, for the log and the dashboard.
    pub last_error: String,
    pub last_try_ms: i64,
    pub next_try_ms: i64,
}

/// A mail in the outbox with its id (ids grow: id order is sending order).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingMail {
    pub id: u64,
    pub mail: OutboxMail,
    pub attempt: Option<Attempt>,
}

#[derive(Debug, thiserror::Error)]
#[error("alert store: {0}")]
pub struct StoreError(pub String);

/// Alert state, history and outbox, kept by the store (sled) across restarts.
pub trait AlertStore: Send + Sync {
    fn load_state(&self, alert: &str) -> Result<Option<AlertState>, StoreError>;
    /// In one atomic step: the alert's new state, an optional history line and the
    /// mails it causes (appended to the outbox with growing ids, which are returned).
    fn commit(
        &self,
        alert: &str,
        state: &AlertState,
        history: Option<&HistoryEntry>,
        mails: &[OutboxMail],
    ) -> Result<Vec<u64>, StoreError>;
    /// The newest `limit` history lines, newest first.
    fn history(&self, alert: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError>;
    /// Every waiting mail, in id order.
    fn outbox_pending(&self) -> Result<Vec<PendingMail>, StoreError>;
    /// Replace the mail's last failed attempt.
    fn outbox_record_failure(&self, id: u64, attempt: &Attempt) -> Result<(), StoreError>;
    /// The server accepted the mail: forget it.
    fn outbox_remove(&self, id: u64) -> Result<(), StoreError>;
}

/// Something that delivers one mail: [`super::Mailer`], or a fake in tests.
pub trait MailSender: Send + Sync {
    fn send(&self, mail: &OutboxMail) -> impl Future<Output = Result<(), MailError>> + Send;
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

/// Send what is due at `now_ms`, oldest first. Stops at the first failure so mails
/// never overtake each other (a "resolved" before its "firing"): the server is the
/// same for all of them, so what failed for one almost always fails for the next.
/// Returns when to try again (`None`: the outbox is empty). `force` ignores backoff
/// (used once at start-up, so a corrected config is tried at once).
pub async fn deliver_due<S: MailSender>(
    store: &dyn AlertStore,
    sender: &S,
    now_ms: i64,
    force: bool,
) -> Result<Option<i64>, StoreError> {
    for p in store.outbox_pending()? {
        if let Some(a) = p
            .attempt
            .as_ref()
            .filter(|a| !force && a.next_try_ms > now_ms)
        {
            return Ok(Some(a.next_try_ms));
        }
        match sender.send(&p.mail).await {
            Ok(()) => {
                tracing::info!(id = p.id, subject = %p.mail.subject, "alert mail sent");
                off_worker(|| store.outbox_remove(p.id))?;
            }
            Err(e) => {
                let count = p.attempt.map_or(0, |a| a.count).saturating_add(1);
                let next_try_ms = now_ms + backoff_ms(count);
                tracing::warn!(
                    id = p.id,
                    attempt = count,
                    "alert mail not sent, retrying later: {e}"
                );
                let attempt = Attempt {
                    count,
                    last_error: e.to_string(),
                    last_try_ms: now_ms,
                    next_try_ms,
                };
                off_worker(|| store.outbox_record_failure(p.id, &attempt))?;
                return Ok(Some(next_try_ms));
            }
        }
    }
    Ok(None)
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

/// The outbox task: sends at start, whenever `wake` is notified (call
/// `notify_one()` after a commit that queued mail) and when a backoff ends; returns
/// when `shutdown` completes. Run exactly one per store.
pub async fn run_outbox<S: MailSender>(
    store: Arc<dyn AlertStore>,
    sender: S,
    wake: Arc<Notify>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut force = true;
    loop {
        let pass = deliver_due(&*store, &sender, now_ms(), force);
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

/// What the dashboard and `/api/v1/alerts` show about outgoing mail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxStatus {
    pub pending: usize,
    /// The oldest waiting mail's failure, if it failed: "mail is failing: …".
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
            mails: &[OutboxMail],
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

        fn outbox_pending(&self) -> Result<Vec<PendingMail>, StoreError> {
            let inner = self.lock();
            inner
                .outbox
                .iter()
                .map(|(id, (bytes, attempt))| {
                    Ok(PendingMail {
                        id: *id,
                        mail: from_bytes(bytes)?,
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
