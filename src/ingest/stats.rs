//! Ingest counters (for `/metrics`) and a rate-limited log of bad input.
//!
//! Bad lines are logged with where and why, but at most a few per minute: a
//! misconfigured sender at 1,000 datagrams a second must not fill the journal.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counters shared by all inputs. Relaxed atomics: they are statistics.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub accepted_udp: AtomicU64,
    pub accepted_http: AtomicU64,
    pub accepted_gpio: AtomicU64,
    pub accepted_mqtt: AtomicU64,
    pub rejected_parse: AtomicU64,
    pub rejected_no_meter: AtomicU64,
    pub rejected_no_field: AtomicU64,
    pub rejected_bad_value: AtomicU64,
    pub rejected_bad_timestamp: AtomicU64,
    pub rejected_before_2000: AtomicU64,
    pub rejected_in_the_future: AtomicU64,
    pub rejected_implausible: AtomicU64,
    pub rejected_other: AtomicU64,
    pub udp_datagrams: AtomicU64,
    pub udp_dropped_not_allowed: AtomicU64,
    pub udp_dropped_too_large: AtomicU64,
    log: Mutex<LogWindow>,
    /// The last bad input logged: (wall ms, where, why), for the dashboard.
    last_bad: Mutex<Option<(i64, String, String)>>,
}

#[derive(Debug, Default)]
struct LogWindow {
    started: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

const LOG_WINDOW: Duration = Duration::from_secs(60);
const LOGS_PER_WINDOW: u32 = 10;

impl IngestStats {
    pub fn rejected(&self, reason: &str) {
        let c = match reason {
            "parse" => &self.rejected_parse,
            "no_meter" => &self.rejected_no_meter,
            "no_field" => &self.rejected_no_field,
            "bad_value" => &self.rejected_bad_value,
            "bad_timestamp" => &self.rejected_bad_timestamp,
            "before_2000" => &self.rejected_before_2000,
            "in_the_future" => &self.rejected_in_the_future,
            "implausible" => &self.rejected_implausible,
            _ => &self.rejected_other,
        };
        c.fetch_add(1, Relaxed);
    }

    pub fn rejected_by_reason(&self) -> [(&'static str, u64); 9] {
        [
            ("parse", self.rejected_parse.load(Relaxed)),
            ("no_meter", self.rejected_no_meter.load(Relaxed)),
            ("no_field", self.rejected_no_field.load(Relaxed)),
            ("bad_value", self.rejected_bad_value.load(Relaxed)),
            ("bad_timestamp", self.rejected_bad_timestamp.load(Relaxed)),
            ("before_2000", self.rejected_before_2000.load(Relaxed)),
            ("in_the_future", self.rejected_in_the_future.load(Relaxed)),
            ("implausible", self.rejected_implausible.load(Relaxed)),
            ("other", self.rejected_other.load(Relaxed)),
        ]
    }

    /// The last bad input logged since `since_ms`: (when, where, why).
    pub fn last_bad_since(&self, since_ms: i64) -> Option<(i64, String, String)> {
        let last = self.last_bad.lock().ok()?;
        last.clone().filter(|(at, _, _)| *at >= since_ms)
    }

    /// Logs a bad item unless too many were logged in the last minute.
    pub fn log_bad(&self, source: &str, what: &dyn std::fmt::Display) {
        let Ok(mut w) = self.log.lock() else { return };
        let now = Instant::now();
        if w.started.is_none_or(|s| now.duration_since(s) > LOG_WINDOW) {
            if w.suppressed > 0 {
                tracing::warn!(
                    "{} more bad inputs were not logged in the last minute",
                    w.suppressed
                );
            }
            *w = LogWindow {
                started: Some(now),
                logged: 0,
                suppressed: 0,
            };
        }
        if w.logged < LOGS_PER_WINDOW {
            w.logged += 1;
            tracing::warn!("{source}: rejected: {what}");
            if let Ok(mut last) = self.last_bad.lock() {
                let text: String = what.to_string().chars().take(300).collect();
                *last = Some((crate::clock::wall_ms(), source.to_string(), text));
            }
        } else {
            w.suppressed += 1;
        }
    }
}
