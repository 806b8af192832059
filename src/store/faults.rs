//! Crash points for the power-cut tests: `WATERMETER_CRASH_AT=point[:n]` makes the
//! process kill itself with SIGKILL the `n`th time (default: first) it reaches
//! `point`, the way a power cut stops it: no destructor, no flush, no goodbye.
//!
//! Points: `journal-torn` (half a record written), `after-append` (a record in the
//! journal, not yet in sled), `after-sync` (synced, the answer not yet sent),
//! `rebuild` (while sled is being rebuilt from the journal). Unset, every check is
//! one relaxed atomic load. Nothing else reads the variable.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

const VAR: &str = "WATERMETER_CRASH_AT";

struct Plan {
    point: String,
    at: u64,
    seen: AtomicU64,
}

fn plan() -> Option<&'static Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let v = std::env::var(VAR).ok()?;
        let (point, at) = match v.split_once(':') {
            Some((p, n)) => (p.to_string(), n.parse().ok()?),
            None => (v, 1),
        };
        Some(Plan {
            point,
            at,
            seen: AtomicU64::new(0),
        })
    })
    .as_ref()
}

/// Whether the process should crash here now (counts the visit).
pub fn hit(point: &str) -> bool {
    match plan() {
        Some(p) if p.point == point => p.seen.fetch_add(1, Relaxed) + 1 == p.at,
        _ => false,
    }
}

/// Crashes here if this is the planned point.
pub fn maybe_crash(point: &str) {
    if hit(point) {
        crash();
    }
}

/// Dies at once, as in a power cut.
pub fn crash() -> ! {
    eprintln!("{VAR}: crashing on purpose");
    // SAFETY: sends a signal to this very process; nothing is dereferenced.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}
