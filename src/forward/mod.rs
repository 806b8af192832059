//! Forwarding: drains the store's forward queue to an external InfluxDB 1.x/2.x or
//! VictoriaMetrics as line protocol, over http or https, in order, at least once.
//!
//! A batch leaves the queue only after the target answered 2xx. Anything else keeps
//! it and backs off exponentially (capped): 5xx, 429 and network errors are logged
//! as warnings, other 4xx loudly as errors (the target refuses the data or the
//! credentials; it will not fix itself), and the queue keeps growing visibly on
//! `/metrics` rather than dropping anything.
//!
//! Every event becomes its own point: the timestamp is the event's millisecond plus
//! its queue number modulo 1,000,000 as nanoseconds, so two liters in the same
//! millisecond stay two points (InfluxDB keeps only the last of identical
//! timestamps) and a batch sent twice overwrites itself instead of doubling.
//! This module does not touch sled (the store does) and holds no state of its own
//! beyond counters for `/metrics`.

use crate::http_client as http;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{Config, ForwardAuth, ForwardConfig};
use crate::line_protocol::{write_line, FieldValue};
use crate::store::forward::QueuedEvent;
use crate::store::Store;

/// First wait after a failure; doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What `/metrics` and the dashboard show about forwarding.
#[derive(Debug, Default)]
pub struct Status {
    pub enabled: AtomicBool,
    /// Events the target acknowledged since the start.
    pub sent_events: AtomicU64,
    /// Failed requests since the start.
    pub failed_requests: AtomicU64,
    /// Unix ms of the last acknowledged batch (0: none yet).
    pub last_success_ms: AtomicI64,
    last_error: Mutex<Option<String>>,
}

impl Status {
    /// The last failure's message, if the last attempt failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    fn set_error(&self, e: Option<String>) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = e;
        }
    }
}

/// Events stored but not yet accepted by the forward target (for the dashboard).
pub fn backlog(store: &Store) -> u64 {
    store.forward_backlog()
}

/// How one attempt went, as the loop decides what to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Accepted,
    /// Worth retrying as is (network, 5xx, 429).
    Retry(String),
    /// The target refuses this request (4xx): retried too, but logged as an error.
    Refused(String),
}

/// Classifies an HTTP status. Pure.
pub fn outcome_of(status: u16, body: &str) -> Outcome {
    match status {
        200..=299 => Outcome::Accepted,
        429 | 500..=599 => Outcome::Retry(format!("HTTP {status}: {body}")),
        _ => Outcome::Refused(format!("HTTP {status}: {body}")),
    }
}

/// The wait after `failures` failures in a row (1 s, 2 s, 4 s … capped). Pure.
pub fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    MIN_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// The request path: the configured one with `precision=ns` (any other precision removed). Pure.
pub fn request_path(path_and_query: &str) -> String {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("precision="))
        .collect();
    params.push("precision=ns");
    format!("{path}?{}", params.join("&"))
}

/// The URI a batch goes to: scheme, host, port and [`request_path`]. Pure.
pub fn request_uri(fwd: &ForwardConfig) -> String {
    let scheme = if fwd.tls { "https" } else { "http" };
    let host = if fwd.host.contains(':') {
        format!("[{}]", fwd.host)
    } else {
        fwd.host.clone()
    };
    format!(
        "{scheme}://{host}:{}{}",
        fwd.port,
        request_path(&fwd.path_and_query)
    )
}

/// The line protocol body of a batch: each meter's measurement and tags, field `liters`. Pure.
pub fn body(config: &Config, events: &[(u64, QueuedEvent)]) -> String {
    let mut out = String::with_capacity(events.len() * 48);
    for (seq, e) in events {
        let Some(m) = config.meters.get(usize::from(e.meter)) else {
            continue;
        };
        let lp = &m.line_protocol;
        let tags: Vec<(&str, &str)> = lp
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let fields = [("liters", FieldValue::Float(e.ml as f64 / 1000.0))];
        let ns = e
            .ts_ms
            .saturating_mul(1_000_000)
            .saturating_add((seq % 1_000_000) as i64);
        write_line(&mut out, &lp.measurement, &tags, &fields, Some(ns));
    }
    out
}

/// Runs until shutdown: peek a batch, send it, acknowledge it, or back off.
pub async fn run(
    store: Arc<Store>,
    config: Arc<Config>,
    status: Arc<Status>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(fwd) = config.forward.clone() else {
        return;
    };
    status.enabled.store(true, Relaxed);
    let client = match http::Client::new(fwd.ca_file.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                url = fwd.url,
                "[forward] {e}; events stay queued until [forward] is fixed"
            );
            status.set_error(Some(e));
            return;
        }
    };
    tracing::info!(url = fwd.url, "forwarding every stored event");
    let mut failures: u32 = 0;
    loop {
        let wait = match attempt(&client, &store, &config, &fwd, &status).await {
            Ok(full) => {
                failures = 0;
                if full {
                    Duration::ZERO
                } else {
                    fwd.interval
                }
            }
            Err(()) => {
                failures = failures.saturating_add(1);
                backoff(failures)
            }
        };
        if wait.is_zero() && !*shutdown.borrow() {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One round; `Ok(true)` when a full batch went out (more may be waiting).
async fn attempt(
    client: &http::Client,
    store: &Arc<Store>,
    config: &Config,
    fwd: &ForwardConfig,
    status: &Status,
) -> Result<bool, ()> {
    let s = store.clone();
    let max = fwd.batch_size;
    let peeked = match tokio::task::spawn_blocking(move || s.forward_peek(max)).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            tracing::error!("reading the forward queue failed: {e}");
            return Err(());
        }
        Err(e) => {
            tracing::error!("reading the forward queue failed: {e}");
            return Err(());
        }
    };
    let Some(through) = peeked.through else {
        return Ok(false);
    };
    if peeked.unknown_meter > 0 {
        tracing::warn!(
            entries = peeked.unknown_meter,
            "forward queue entries of meters that are no longer configured are skipped"
        );
    }
    let full = peeked.events.len() + peeked.unknown_meter as usize >= max;
    if !peeked.events.is_empty() {
        let text = body(config, &peeked.events);
        match send(client, fwd, text.into_bytes()).await {
            Outcome::Accepted => {}
            Outcome::Retry(e) => {
                tracing::warn!(
                    url = fwd.url,
                    backlog = store.forward_backlog(),
                    "forwarding failed, will retry: {e}"
                );
                status.failed_requests.fetch_add(1, Relaxed);
                status.set_error(Some(e));
                return Err(());
            }
            Outcome::Refused(e) => {
                tracing::error!(url = fwd.url, backlog = store.forward_backlog(), "the forward target REFUSED a batch; it stays queued and is retried with back-off until the target or [forward] is fixed: {e}");
                status.failed_requests.fetch_add(1, Relaxed);
                status.set_error(Some(e));
                return Err(());
            }
        }
    }
    let s = store.clone();
    match tokio::task::spawn_blocking(move || s.forward_ack(through)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("removing forwarded events from the queue failed: {e}"),
        Err(e) => tracing::error!("removing forwarded events from the queue failed: {e}"),
    }
    status
        .sent_events
        .fetch_add(peeked.events.len() as u64, Relaxed);
    status
        .last_success_ms
        .store(chrono::Utc::now().timestamp_millis(), Relaxed);
    status.set_error(None);
    Ok(full)
}

async fn send(client: &http::Client, fwd: &ForwardConfig, body: Vec<u8>) -> Outcome {
    let auth = match &fwd.auth {
        ForwardAuth::None => None,
        ForwardAuth::Token(t) => Some(format!("Token {t}")),
        ForwardAuth::Basic { username, password } => Some(http::basic_auth(username, password)),
    };
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    match client
        .post(&request_uri(fwd), &headers, body, REQUEST_TIMEOUT)
        .await
    {
        Ok(a) => outcome_of(a.status, &a.body),
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
