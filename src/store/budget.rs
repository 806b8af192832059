//! What one request may cost the store's reads: a deadline, a flag its client
//! sets when it goes away, and a number of events.
//!
//! The web layer enters a [`Budget`] on the thread that does a request's reads;
//! the store's read loop ([`charge`], once per chunk) stops with
//! [`StoreError::Stopped`] when the budget is spent, so a request that timed out
//! or was abandoned stops working at once and its memory comes back. Reads on a
//! thread without a budget (the writer, alerts, reports) are not limited.
//!
//! This module knows nothing of HTTP.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::StoreError;

/// Why a read was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The request ran past its deadline (`[http] request_timeout_s`).
    Deadline { seconds: u64 },
    /// The client went away.
    Abandoned,
    /// The request read more events than one request may.
    Events { limit: u64 },
    /// The process is shutting down.
    ShuttingDown,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Deadline { seconds } => write!(
                f,
                "the request took longer than {seconds} s and was stopped; ask for a shorter \
                 range or larger buckets"
            ),
            Stop::Abandoned => write!(f, "the client went away; the request was stopped"),
            Stop::ShuttingDown => {
                write!(f, "watermeter is shutting down; try again when it is back")
            }
            Stop::Events { limit } => write!(
                f,
                "the request reads more than {limit} events, the most one request may read; \
                 ask for a shorter range, or sum() with GROUP BY time of an hour or more \
                 (answered from the rollups)"
            ),
        }
    }
}

/// One request's allowance.
#[derive(Debug, Clone)]
pub struct Budget {
    pub deadline: Instant,
    pub timeout_s: u64,
    pub abandoned: Arc<AtomicBool>,
    /// Set when the service shuts down, so SIGTERM never waits for a long read.
    pub shutting_down: Arc<AtomicBool>,
    pub max_events: u64,
}

struct Spending {
    budget: Budget,
    events: u64,
}

thread_local! {
    static CURRENT: RefCell<Option<Spending>> = const { RefCell::new(None) };
}

/// Ends the budget on this thread when dropped.
pub struct Entered(());

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().take());
    }
}

/// Reads on this thread spend `budget` until the guard is dropped.
pub fn enter(budget: Budget) -> Entered {
    CURRENT.with(|c| *c.borrow_mut() = Some(Spending { budget, events: 0 }));
    Entered(())
}

/// Spends `events` (an estimate is fine) and checks the deadline and the client.
pub(super) fn charge(events: u64) -> Result<(), StoreError> {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        let Some(s) = c.as_mut() else {
            return Ok(());
        };
        s.events += events;
        let stop = if s.budget.shutting_down.load(Ordering::Relaxed) {
            Some(Stop::ShuttingDown)
        } else if s.budget.abandoned.load(Ordering::Relaxed) {
            Some(Stop::Abandoned)
        } else if s.events > s.budget.max_events {
            Some(Stop::Events {
                limit: s.budget.max_events,
            })
        } else if Instant::now() >= s.budget.deadline {
            Some(Stop::Deadline {
                seconds: s.budget.timeout_s,
            })
        } else {
            None
        };
        stop.map_or(Ok(()), |stop| Err(StoreError::Stopped(stop)))
    })
}

/// Whether this thread's request should stop (for loops that do not read the
/// store, such as writing out rows).
pub fn check() -> Result<(), StoreError> {
    charge(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn budget(max_events: u64, after: Duration) -> (Budget, Arc<AtomicBool>) {
        let abandoned = Arc::new(AtomicBool::new(false));
        let b = Budget {
            deadline: Instant::now() + after,
            timeout_s: after.as_secs(),
            abandoned: abandoned.clone(),
            shutting_down: Arc::new(AtomicBool::new(false)),
            max_events,
        };
        (b, abandoned)
    }

    #[test]
    fn a_budget_stops_reads_for_events_time_or_a_client_gone_and_ends_with_its_guard() {
        assert!(charge(u64::MAX).is_ok(), "no budget, no limit");
        let (b, _) = budget(10, Duration::from_secs(60));
        let guard = enter(b);
        assert!(charge(10).is_ok());
        let e = charge(1).unwrap_err();
        assert!(
            matches!(e, StoreError::Stopped(Stop::Events { limit: 10 })),
            "{e}"
        );
        drop(guard);
        assert!(charge(1_000).is_ok());

        let (b, abandoned) = budget(1_000, Duration::from_secs(60));
        let _g = enter(b);
        assert!(check().is_ok());
        abandoned.store(true, Ordering::Relaxed);
        assert!(matches!(check(), Err(StoreError::Stopped(Stop::Abandoned))));

        let (b, _) = budget(1_000, Duration::ZERO);
        let _g = enter(b);
        assert!(matches!(
            check(),
            Err(StoreError::Stopped(Stop::Deadline { .. }))
        ));
    }
}
