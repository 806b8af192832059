//! Heavy reads (InfluxQL, usage, draws, CSV, pages) never hold up writes.
//!
//! Each runs off the async workers (which keep answering `/write`, `/healthz`
//! and UDP), at most as many at once as the machine has cores; one more waits
//! up to [`QUEUE_WAIT`] and is then answered 503 with `Retry-After`. Each gets a
//! [`Budget`] for its store reads: the request's deadline, a flag set when its
//! client goes away (or the timeout layer gives up on it), and at most
//! [`MAX_EVENTS`] events read, so abandoned work stops at once.
//!
//! The layer ([`limit`]) takes the slot, makes the budget and runs the whole
//! handler on a blocking thread with the budget entered: a heavy handler does its
//! reads where it stands, without a thread hop of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::ApiError;
use crate::store::budget::{self, Budget};

/// How long a heavy request waits for a free slot before 503.
pub const QUEUE_WAIT: Duration = Duration::from_secs(2);
/// The `Retry-After` of a 503 for a busy or stopped read, in seconds.
pub const RETRY_AFTER_S: &str = "2";
/// The most events one request may read: ten years of a household's liters, or
/// five days at one pulse a second; sums over long spans come from the rollups
/// and read far fewer.
pub const MAX_EVENTS: u64 = 5_000_000;

/// The slots, shared by every heavy route.
#[derive(Clone)]
pub struct Gate {
    slots: Arc<Semaphore>,
    slots_total: usize,
    timeout: Duration,
    /// Turns true when the app shuts down: running reads stop.
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Gate {
    /// `slots` heavy reads at once (the number of cores), each stopped after
    /// `timeout` (`[http] request_timeout_s`).
    pub fn new(
        slots: usize,
        timeout: Duration,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Gate {
        Gate {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            slots_total: slots.max(1),
            timeout,
            shutdown,
        }
    }

    pub fn slots() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

/// Sets the flag when the request's future is dropped before it finished.
struct Abandon(Arc<AtomicBool>, bool);

impl Drop for Abandon {
    fn drop(&mut self) {
        if !self.1 {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// The layer on heavy routes: a slot (or 503), the request's budget, and the
/// whole handler on a blocking thread (its synchronous reads with it).
pub async fn limit(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let permit = match tokio::time::timeout(QUEUE_WAIT, gate.slots.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        _ => {
            return ApiError::Busy(format!(
                "{} heavy reads are running, the most at once; try again in {RETRY_AFTER_S} s",
                gate.slots_total
            ))
            .into_response()
        }
    };
    let abandoned = Arc::new(AtomicBool::new(false));
    let shutting_down = Arc::new(AtomicBool::new(false));
    let mut guard = Abandon(abandoned.clone(), false);
    let work = Budget {
        deadline: Instant::now() + gate.timeout,
        timeout_s: gate.timeout.as_secs(),
        abandoned,
        shutting_down: shutting_down.clone(),
        max_events: MAX_EVENTS,
    };
    let handle = tokio::runtime::Handle::current();
    let mut ran = tokio::task::spawn_blocking(move || {
        let _spending = budget::enter(work);
        let res = handle.block_on(next.run(req));
        drop(permit);
        res
    });
    let mut shutdown = gate.shutdown.clone();
    let down = async move {
        // The guard `wait_for` returns is not Send: dropped here, at once. A
        // sender gone without saying "down" (a test's state) stops nothing.
        if shutdown.wait_for(|down| *down).await.map(|_| ()).is_err() {
            std::future::pending::<()>().await;
        }
    };
    let ran = tokio::select! {
        r = &mut ran => r,
        () = down => {
            // SIGTERM: the read stops at its next chunk.
            shutting_down.store(true, Ordering::Relaxed);
            ran.await
        }
    };
    guard.1 = true;
    ran.unwrap_or_else(|e| ApiError::Internal(format!("a read failed: {e}")).into_response())
}
