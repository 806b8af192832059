//! The running alert engine: the evaluator task and the outbox task, as `app` starts them.
//!
//! The evaluator checks every rule when the writer stored a batch (at most once per
//! [`DEBOUNCE`]) and on a timer (resolving, `no_data` and `continuous_flow` need time
//! to pass). It reads the time from an injectable [`Clock`], so tests can move time
//! forward. Each evaluation's state goes to [`Live`], which the dashboard and the API
//! read for the current value. The decisions are in `state.rs`; this file only
//! schedules them. It never names sled, SMTP or another channel's protocol.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::{
    check_rule, run_outbox, AlertState, AlertStore, Channel, MailContext, RuleSet, UsageView,
};
use crate::config::Config;

/// "Now" in milliseconds since the epoch: the wall clock, or a test's clock.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn wall_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp_millis())
}

/// Evaluations caused by stored batches are at least this far apart.
pub const DEBOUNCE: Duration = Duration::from_secs(1);
/// The default timer between evaluations.
pub const DEFAULT_TICK: Duration = Duration::from_secs(30);
/// At shutdown, how long a waiting notification may still take to go out.
pub const OUTBOX_GRACE: Duration = Duration::from_millis(1500);

/// The latest evaluation of each alert, and why a channel cannot be set up, if one cannot.
#[derive(Debug, Default)]
pub struct Live {
    inner: Mutex<LiveInner>,
}

#[derive(Debug, Default)]
struct LiveInner {
    states: HashMap<String, AlertState>,
    mail_setup_error: Option<String>,
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, LiveInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of the last evaluation since the start (`None`: not evaluated yet).
    pub fn state(&self, alert: &str) -> Option<AlertState> {
        self.lock().states.get(alert).cloned()
    }

    /// Set when a channel cannot even be set up (for `[smtp]`: a bad address, an
    /// unreadable `ca_file`).
    pub fn mail_setup_error(&self) -> Option<String> {
        self.lock().mail_setup_error.clone()
    }

    /// Records why a channel cannot be set up (shown on the dashboard).
    pub fn set_setup_error(&self, error: String) {
        let mut inner = self.lock();
        inner.mail_setup_error = Some(match inner.mail_setup_error.take() {
            Some(before) => format!("{before}; {error}"),
            None => error,
        });
    }

    fn set_state(&self, alert: &str, state: AlertState) {
        self.lock().states.insert(alert.to_owned(), state);
    }
}

/// Everything one evaluation pass needs.
pub struct Evaluator {
    /// The alerts (the config's and the browser-made ones).
    rules: Arc<RuleSet>,
    /// Each meter's id and display name.
    meters: Vec<(String, String)>,
    ctx: MailContext,
    store: Arc<dyn AlertStore>,
    usage: Arc<dyn UsageView + Send + Sync>,
    live: Arc<Live>,
    wake: Arc<Notify>,
    clock: Clock,
}

impl Evaluator {
    /// `rules` are the alerts; each pass evaluates the ones active then.
    pub fn new(
        config: &Config,
        rules: Arc<RuleSet>,
        store: Arc<dyn AlertStore>,
        usage: Arc<dyn UsageView + Send + Sync>,
        live: Arc<Live>,
        wake: Arc<Notify>,
        clock: Clock,
    ) -> Self {
        let meters = config
            .meters
            .iter()
            .map(|m| (m.id.clone(), m.name.clone()))
            .collect();
        Evaluator {
            rules,
            meters,
            ctx: MailContext::from_config(config),
            store,
            usage,
            live,
            wake,
            clock,
        }
    }

    /// Evaluates every rule once at the clock's now; wakes the outbox after a transition.
    pub fn check_all(&self) {
        let now = (self.clock)();
        for rule in self.rules.active().iter() {
            let meter_name = self
                .meters
                .iter()
                .find(|(id, _)| *id == rule.meter)
                .map_or(rule.meter.as_str(), |(_, name)| name.as_str());
            match check_rule(rule, meter_name, &*self.usage, &*self.store, &self.ctx, now) {
                Ok(eval) => {
                    if eval.transition.is_some() {
                        self.wake.notify_one();
                    }
                    self.live.set_state(&rule.name, eval.state);
                }
                Err(e) => tracing::warn!(alert = %rule.name, "alert not evaluated: {e}"),
            }
        }
    }
}

/// The evaluator task: evaluates at start, after stored batches (debounced) and every
/// `tick`; returns when `shutdown` turns true (or its sender is gone).
pub async fn run_evaluator<T>(
    ev: Evaluator,
    mut progress: watch::Receiver<T>,
    tick: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let ev = Arc::new(ev);
    let mut writer_alive = true;
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Store reads and commits: on the blocking pool, not on an async worker.
        let checking = ev.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || checking.check_all()).await {
            tracing::error!("evaluating the alerts failed: {e}");
        }
        let last = Instant::now();
        tokio::select! {
            _ = shutdown.changed() => {}
            changed = progress.changed(), if writer_alive => {
                writer_alive = changed.is_ok();
                tokio::select! {
                    _ = shutdown.changed() => {}
                    _ = tokio::time::sleep_until(last + DEBOUNCE) => {}
                }
            }
            _ = tokio::time::sleep(tick) => {}
            _ = ev.rules.changed.notified() => {}
        }
        if shutdown.has_changed().is_err() {
            return;
        }
    }
}

/// The outbox task over the configured `channels`: delivers until `shutdown` turns
/// true, then gives a waiting notification [`OUTBOX_GRACE`] to go out. Without any
/// channel it does not run; notifications wait in the store for a fixed config.
pub async fn run_channels(
    channels: Vec<Arc<dyn Channel>>,
    store: Arc<dyn AlertStore>,
    wake: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) {
    if channels.is_empty() {
        return;
    }
    let grace = grace_after(shutdown, store.clone());
    run_outbox(store, channels, wake, grace).await;
}

/// Completes when `shutdown` turns true; later by [`OUTBOX_GRACE`] if mail is waiting.
async fn grace_after(mut shutdown: watch::Receiver<bool>, store: Arc<dyn AlertStore>) {
    let _ = shutdown.wait_for(|down| *down).await;
    if store.outbox_pending().is_ok_and(|p| !p.is_empty()) {
        tokio::time::sleep(OUTBOX_GRACE).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::alert::{MemoryStore, MemoryUsage};
    use crate::config::{AlertConfig, RawValue, Settings};

    fn config() -> Config {
        let mut c = crate::config::builtin_defaults();
        let settings = Settings::from_pairs(
            "alert[0]",
            vec![
                ("kind", RawValue::Text("volume".into())),
                ("window", RawValue::Text("1h".into())),
                ("threshold_liters", RawValue::Integer(100)),
            ],
        );
        c.alerts.push(AlertConfig {
            name: "hourly".into(),
            meter: c.meters[0].id.clone(),
            repeat: Duration::from_secs(4 * 3600),
            notify: Vec::new(),
            settings,
        });
        c
    }

    #[tokio::test]
    async fn the_evaluator_follows_its_clock_queues_one_mail_and_stops_on_shutdown() {
        let config = config();
        let mut usage = MemoryUsage::new();
        usage.add(&config.meters[0].id, 10_000, 120.0);
        let store = Arc::new(MemoryStore::new());
        let (live, wake) = (Arc::new(Live::default()), Arc::new(Notify::new()));
        let now = Arc::new(AtomicI64::new(5_000));
        let clock_now = now.clone();
        let ev = Evaluator::new(
            &config,
            Arc::new(RuleSet::new(&config, Vec::new())),
            store.clone(),
            Arc::new(usage),
            live.clone(),
            wake.clone(),
            Arc::new(move || clock_now.load(Ordering::SeqCst)),
        );
        let (progress_tx, progress) = watch::channel(0u64);
        let (down_tx, down) = watch::channel(false);
        let task = tokio::spawn(run_evaluator(ev, progress, Duration::from_millis(20), down));

        // Before the water flowed (by the clock) the alert is ok and nothing is queued.
        let evaluated = |at| {
            let live = live.clone();
            let wait = async move {
                while live.state("hourly").and_then(|s| s.evaluated_ms) != Some(at) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            async move {
                let r = tokio::time::timeout(Duration::from_secs(20), wait).await;
                r.unwrap_or_else(|_| panic!("never evaluated at {at}"));
            }
        };
        evaluated(5_000).await;
        assert!(!live.state("hourly").is_some_and(|s| s.is_firing()));
        now.store(20_000, Ordering::SeqCst);
        let _ = progress_tx.send(1);
        tokio::time::timeout(Duration::from_secs(20), wake.notified())
            .await
            .expect("a transition wakes the outbox");
        evaluated(20_000).await;
        assert_eq!(
            live.state("hourly").and_then(|s| s.firing_since),
            Some(20_000)
        );
        now.store(30_000, Ordering::SeqCst);
        evaluated(30_000).await;
        assert_eq!(store.outbox_pending().map(|p| p.len()).ok(), Some(1));

        let _ = down_tx.send(true);
        task.await.expect("the evaluator ends on shutdown");
    }
}
