//! The single writer: every input hands samples to it; it applies them to the
//! store in batches and makes them durable with group commit.
//!
//! Durable requests (HTTP writes) are answered only after the fsync that covers
//! them; fire-and-forget samples (UDP, GPIO) reach disk within `flush_interval`.
//! Whatever is queued while one batch is being applied goes into the next batch,
//! so many writers share one fsync and a pulse is never blocked behind the disk.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::{Applied, Store, StoreError};
use crate::meter::{MeterIdx, Sample};

/// Quiet time after the last batch before freed memory goes back to the kernel.
const TRIM_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How often samples waiting for the clock look whether it is synchronised.
const PLACE_EVERY: Duration = Duration::from_millis(500);

/// How often the writer looks whether the clock is synchronised yet, to heal
/// future-dated data (`store::heal`) once it is.
const HEAL_CHECK_EVERY: Duration = Duration::from_secs(5);

/// How many queued requests one batch may take (bounds batch latency).
const MAX_REQUESTS_PER_BATCH: usize = 256;

#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("the store could not save the data: {0}")]
    Store(String),
    #[error("the store is shutting down")]
    Closed,
}

struct Request {
    samples: Vec<Sample>,
    /// "The meter shows m³ at time": applied after the samples of its batch.
    reading: Option<(MeterIdx, f64, i64)>,
    done: Option<oneshot::Sender<Result<Applied, WriteError>>>,
}

/// A cheap, cloneable handle for submitting samples.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
}

impl Writer {
    /// Queues samples; they reach disk within the flush interval.
    pub async fn submit(&self, samples: Vec<Sample>) -> Result<(), WriteError> {
        let req = Request {
            samples,
            reading: None,
            done: None,
        };
        self.tx.send(req).await.map_err(|_| WriteError::Closed)
    }

    /// The same from a plain thread (the GPIO interrupt thread, the UDP reader).
    pub fn submit_blocking(&self, samples: Vec<Sample>) -> Result<(), WriteError> {
        let req = Request {
            samples,
            reading: None,
            done: None,
        };
        self.tx.blocking_send(req).map_err(|_| WriteError::Closed)
    }

    /// Queues samples if the queue has room, without waiting: `Ok(Some(samples))`
    /// gives them back when it is full (the UDP reader keeps receiving meanwhile).
    pub fn try_submit(&self, samples: Vec<Sample>) -> Result<Option<Vec<Sample>>, WriteError> {
        let req = Request {
            samples,
            reading: None,
            done: None,
        };
        match self.tx.try_send(req) {
            Ok(()) => Ok(None),
            Err(mpsc::error::TrySendError::Full(req)) => Ok(Some(req.samples)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(WriteError::Closed),
        }
    }

    /// Queues samples and waits until they are on disk.
    pub async fn submit_durable(&self, samples: Vec<Sample>) -> Result<Applied, WriteError> {
        let (done, rx) = oneshot::channel();
        let req = Request {
            samples,
            reading: None,
            done: Some(done),
        };
        self.tx.send(req).await.map_err(|_| WriteError::Closed)?;
        rx.await.map_err(|_| WriteError::Closed)?
    }

    /// Sets the meter reading ("the meter shows `m3` at `at_ms`") and waits until it is on disk.
    pub async fn set_reading(
        &self,
        meter: MeterIdx,
        m3: f64,
        at_ms: i64,
    ) -> Result<(), WriteError> {
        let (done, rx) = oneshot::channel();
        let req = Request {
            samples: Vec::new(),
            reading: Some((meter, m3, at_ms)),
            done: Some(done),
        };
        self.tx.send(req).await.map_err(|_| WriteError::Closed)?;
        rx.await.map_err(|_| WriteError::Closed)?.map(|_| ())
    }
}

/// Counts of what the writer stored, for `/metrics` and live updates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub batches: u64,
    pub events: u64,
    pub failed_batches: u64,
    /// Each meter's total (mL, by meter index) as of the writer's last journal
    /// sync: what a power cut can no longer take. Updated without waking the
    /// watchers (it changes at every sync, after the batch that woke them).
    pub durable_ml: Vec<u64>,
}

/// Starts the writer task. It ends, after a last flush, when every `Writer` is dropped.
pub fn spawn(
    store: Arc<Store>,
    flush_interval: Duration,
) -> (
    Writer,
    watch::Receiver<Progress>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(1024);
    // The store synced its journal when it opened: its totals are durable.
    let (progress_tx, progress_rx) = watch::channel(Progress {
        durable_ml: store.totals_ml().unwrap_or_default(),
        ..Progress::default()
    });
    let task = tokio::spawn(run(store, rx, flush_interval, progress_tx));
    (Writer { tx }, progress_rx, task)
}

async fn run(
    store: Arc<Store>,
    mut rx: mpsc::Receiver<Request>,
    flush_interval: Duration,
    progress: watch::Sender<Progress>,
) {
    let mut flush_due: Option<Instant> = None;
    let mut trim_due: Option<Instant> = None;
    let mut index_due: Option<Instant> = None;
    let mut place_due = store.has_unplaced().then(|| Instant::now() + PLACE_EVERY);
    // Future-dated data is set aside once, as soon as the clock can tell.
    let mut heal_due = Some(Instant::now());
    loop {
        let first = tokio::select! {
            req = rx.recv() => match req {
                Some(req) => req,
                None => break,
            },
            _ = sleep_until(flush_due) => {
                flush_due = None;
                let store = store.clone();
                match blocking(move || synced_totals(&store)).await {
                    Ok(totals) => note_durable(&progress, totals),
                    Err(e) => tracing::error!("flushing the store failed: {e}"),
                }
                continue;
            }
            _ = sleep_until(index_due) => {
                let store2 = store.clone();
                if let Err(e) = blocking(move || store2.flush_index_if_due()).await {
                    tracing::warn!("writing out the index failed (the journal has everything): {e}");
                }
                index_due = store.index_flush_due_in().map(|d| Instant::now() + d);
                continue;
            }
            _ = sleep_until(place_due) => {
                // Samples wait for the clock: an empty batch places them once it is set.
                place_due = None;
                let store2 = store.clone();
                let placed = blocking(move || {
                    store2.apply(&[])?;
                    synced_totals(&store2)
                })
                .await;
                match placed {
                    Ok(totals) => note_durable(&progress, totals),
                    Err(e) => tracing::error!("placing samples that waited for the clock failed: {e}"),
                }
                if store.has_unplaced() {
                    place_due = Some(Instant::now() + PLACE_EVERY);
                }
                continue;
            }
            _ = sleep_until(heal_due) => {
                if !crate::clock::synchronized() {
                    heal_due = Some(Instant::now() + HEAL_CHECK_EVERY);
                    continue;
                }
                heal_due = None;
                let store = store.clone();
                let now = crate::clock::wall_ms();
                if let Err(e) = blocking(move || store.heal_future(now)).await {
                    tracing::error!("setting aside future-dated data failed: {e}");
                }
                continue;
            }
            _ = sleep_until(trim_due) => {
                trim_due = None;
                // Off the async workers: trimming a large heap takes a while and
                // holds the allocator's locks meanwhile.
                let _ = tokio::task::spawn_blocking(release_free_memory).await;
                continue;
            }
        };
        let mut requests = vec![first];
        while requests.len() < MAX_REQUESTS_PER_BATCH {
            match rx.try_recv() {
                Ok(req) => requests.push(req),
                Err(_) => break,
            }
        }
        let durable = requests.iter().any(|r| r.done.is_some());
        let samples: Vec<Sample> = requests
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.samples))
            .collect();
        let readings: Vec<_> = requests.iter().filter_map(|r| r.reading).collect();
        let store2 = store.clone();
        let result = blocking(move || {
            let applied = store2.apply(&samples)?;
            for (meter, m3, at_ms) in readings {
                store2.set_reading(meter, m3, at_ms)?;
            }
            let totals = if durable {
                Some(synced_totals(&store2)?)
            } else {
                None
            };
            Ok((applied, totals))
        })
        .await;
        let result = result.map(|(applied, totals)| {
            if let Some(totals) = totals {
                note_durable(&progress, totals);
            }
            applied
        });
        trim_due = Some(Instant::now() + TRIM_AFTER_IDLE);
        if place_due.is_none() && store.has_unplaced() {
            place_due = Some(Instant::now() + PLACE_EVERY);
        }
        if durable {
            flush_due = None;
        } else if flush_due.is_none() {
            flush_due = Some(Instant::now() + flush_interval);
        }
        progress.send_modify(|p| match &result {
            Ok(a) => {
                p.batches += 1;
                p.events += a.events;
            }
            Err(_) => p.failed_batches += 1,
        });
        if let Err(e) = &result {
            tracing::error!("writing a batch failed: {e}");
            // sled keeps an IO error forever: reopen (rate-limited inside).
            let store = store.clone();
            let _ = tokio::task::spawn_blocking(move || store.heal()).await;
        }
        let answer = result.map_err(|e| WriteError::Store(e.to_string()));
        for req in requests {
            if let Some(done) = req.done {
                let _ = done.send(answer.clone());
            }
        }
        // After the answers: sled's own housekeeping never delays an acknowledgement.
        let store2 = store.clone();
        if let Err(e) = blocking(move || store2.flush_index_if_due()).await {
            tracing::warn!("writing out the index failed (the journal has everything): {e}");
        }
        index_due = store.index_flush_due_in().map(|d| Instant::now() + d);
    }
    let store = store.clone();
    if let Err(e) = blocking(move || store.sync()).await {
        tracing::error!("the last flush of the store failed: {e}");
    }
}

/// Syncs the journal and reads each meter's total: every event the writer applied
/// is covered (it applies nothing meanwhile), so these totals are durable.
fn synced_totals(store: &Store) -> Result<Vec<u64>, StoreError> {
    store.sync()?;
    store.totals_ml()
}

fn note_durable(progress: &watch::Sender<Progress>, totals: Vec<u64>) {
    progress.send_if_modified(|p| {
        p.durable_ml = totals;
        false
    });
}

/// Hands freed heap pages back to the kernel once the writer is idle: a burst of
/// large HTTP bodies otherwise leaves the process tens of MB larger for good
/// (glibc keeps freed memory for reuse).
fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(StoreError::Db(sled::Error::ReportableBug(format!(
            "store task failed: {e}"
        )))),
    }
}
