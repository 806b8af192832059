//! Starts everything, wires it together and shuts it down cleanly.
//!
//! Order of shutdown on SIGTERM/SIGINT: stop the inputs (HTTP, UDP, GPIO), let the
//! writer apply what is queued, flush the store, exit. Nothing acknowledged is lost.
//! A mail waiting in the alert outbox gets a short grace to go out first.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::alert;
use crate::alert::persist::StoreUsage;
use crate::config::Config;
use crate::ingest::points::Matcher;
use crate::ingest::stats::IngestStats;
use crate::ingest::{gpio, udp, MeterIdx, Sample, SampleValue};
use crate::store::{writer, Store};
use crate::systemd;
use crate::web::{self, AppState};

/// Where the running app listens (port 0 in the config becomes a real port here).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub http: SocketAddr,
    pub udp: Option<SocketAddr>,
}

/// Extra work the `demo` command adds to a normal `serve`: runs before the
/// addresses are announced and returns the tasks it leaves running.
pub type Extra = Box<
    dyn FnOnce(
            AppState,
            watch::Receiver<bool>,
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<Output = anyhow::Result<Vec<tokio::task::JoinHandle<()>>>>
                    + Send,
            >,
        > + Send,
>;

/// Opens the store, creating `data_dir` if needed, with a message that says what to
/// do; an index that cannot be trusted is rebuilt from the journal (see `store::recovery`).
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    let dir = &config.data_dir;
    let c = config;
    Store::open(dir, c.store.cache_bytes, c.timezone, &c.meters).map_err(|e| {
        let text = e.to_string();
        if text.contains("lock") || text.contains("Resource temporarily unavailable") {
            anyhow::anyhow!(
                "the store in {} is in use by another watermeter process; stop it first (or send the data to its /write endpoint)",
                dir.display()
            )
        } else {
            anyhow::anyhow!("opening the store in {}: {text}", dir.display())
        }
    })
}

/// How a run differs from a plain `serve`: tests move the alert clock and stop the
/// app without signals.
pub struct RunOptions {
    /// The time the alert evaluator sees (default: the wall clock).
    pub clock: alert::engine::Clock,
    /// How often alerts are evaluated without new data (default 30 s).
    pub alert_tick: Duration,
    /// Shut down when this turns true, instead of on SIGTERM/SIGINT.
    pub shutdown: Option<watch::Receiver<bool>>,
    /// Receives the bound addresses once the app listens.
    pub bound: Option<std::sync::mpsc::Sender<Bound>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            clock: alert::engine::wall_clock(),
            alert_tick: alert::engine::DEFAULT_TICK,
            shutdown: None,
            bound: None,
        }
    }
}

/// Runs the appliance until SIGTERM/SIGINT.
pub async fn run(config: Config, extra: Option<Extra>) -> anyhow::Result<()> {
    run_with(config, extra, RunOptions::default()).await
}

/// Runs the appliance until SIGTERM/SIGINT or `opts.shutdown`.
pub async fn run_with(
    config: Config,
    extra: Option<Extra>,
    opts: RunOptions,
) -> anyhow::Result<()> {
    let signals = Signals::listen();
    limit_malloc_arenas();
    if let Some(warning) = web::auth::bind_rule(&config.http).map_err(anyhow::Error::msg)? {
        tracing::warn!("{warning}");
    }
    let tls = config
        .http
        .tls
        .as_ref()
        .map(web::tls::acceptor)
        .transpose()?;
    let config = Arc::new(config);
    let store = Arc::new(open_store(&config)?);
    let now = chrono::Utc::now().timestamp_millis();
    if let Some(notice) = store
        .recovery_notice()
        .filter(|n| alert::recovery_mail::is_recent(n, now))
    {
        tracing::warn!("{}", notice.message());
    }
    let (writer, progress, writer_task) = writer::spawn(store.clone(), config.store.flush_interval);
    let stats = Arc::new(IngestStats::default());
    let matcher = Arc::new(Matcher::new(&config.meters));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let mut bound_udp = None;
    let mut udp_thread = None;
    if let Some(u) = &config.udp {
        let socket =
            udp::bind(u.listen).with_context(|| format!("listening for UDP on {}", u.listen))?;
        bound_udp = Some(socket.local_addr()?);
        let input = udp::UdpInput {
            socket,
            allow: u.allow.clone(),
            precision: u.precision,
        };
        let thread = udp::spawn(
            input,
            matcher.clone(),
            writer.clone(),
            stats.clone(),
            shutdown_rx.clone(),
        )
        .context("starting the UDP receive thread")?;
        udp_thread = Some(thread);
    }

    let state = AppState {
        config: config.clone(),
        store: store.clone(),
        writer: writer.clone(),
        matcher,
        stats,
        forward: Arc::default(),
        mqtt: Arc::default(),
        rules: Arc::new(alert::RuleSet::new(
            &config,
            alert::persist::saved_alerts(&store).unwrap_or_else(|e| {
                tracing::error!("reading the browser-made alerts failed: {e}");
                Vec::new()
            }),
        )),
        alerts: Arc::default(),
        progress,
        shutdown: shutdown_rx.clone(),
        draws: Arc::default(),
    };
    tasks.extend(start_integrations(&state, &shutdown_rx));
    tasks.extend(start_alerts(&state, &opts, &shutdown_rx));
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("listening for HTTP on {}", config.http.listen))?;
    let bound = Bound {
        http: listener.local_addr()?,
        udp: bound_udp,
    };
    let gpio_inputs = start_gpio_meters(&state);
    if let Some(extra) = extra {
        tasks.extend(extra(state.clone(), shutdown_rx.clone()).await?);
    }
    announce(&bound, tls.is_some());
    // Under systemd (Type=notify): started means listening, and alive means the
    // runtime and the store still answer.
    let notifier = systemd::Notifier::from_env().map(Arc::new);
    if let Some(n) = &notifier {
        n.send(&format!("READY=1\nSTATUS=dashboard on {}", bound.http));
        if let Some(interval) = systemd::watchdog_interval() {
            tasks.push(tokio::spawn(systemd::run_watchdog(
                n.clone(),
                interval,
                store.clone(),
                shutdown_rx.clone(),
            )));
        }
    }
    if let Some(tx) = &opts.bound {
        let _ = tx.send(bound);
    }

    let listener = web::limits::LimitedListener::new(listener, config.http.max_connections);
    let app = web::router(state);
    let server = tokio::spawn(web::tls::serve(listener, tls, app, shutdown_rx.clone()));
    drop(writer);

    match opts.shutdown {
        Some(mut rx) => {
            let _ = rx.wait_for(|down| *down).await;
        }
        None => signals.wait().await,
    }
    tracing::info!("shutting down: stopping inputs, flushing the store");
    if let Some(n) = &notifier {
        n.send("STOPPING=1\nSTATUS=flushing the store");
    }
    let _ = shutdown_tx.send(true);
    // Open keep-alive or streaming connections get a short grace period.
    stop_within(server, Duration::from_secs(3)).await;
    for t in tasks {
        stop_within(t, Duration::from_secs(2)).await;
    }
    if let Some(thread) = udp_thread {
        // It wakes every 100 ms, hands over what it holds and drops its writer.
        if let Ok(Err(_)) = tokio::task::spawn_blocking(move || thread.join()).await {
            tracing::warn!("the UDP receive thread failed");
        }
    }
    for (meter, handle) in gpio_inputs {
        if let Err(e) = tokio::task::spawn_blocking(move || handle.stop()).await {
            tracing::warn!(meter, "stopping the GPIO input failed: {e}");
        }
    }
    writer_task.await.context("the store writer failed")?;
    let closing = store.clone();
    match tokio::task::spawn_blocking(move || closing.close()).await {
        Ok(Ok(())) => tracing::info!("store flushed and closed; bye"),
        Ok(Err(e)) => tracing::error!(
            "closing the store cleanly failed (the next start catches up from the journal): {e}"
        ),
        Err(e) => tracing::error!("closing the store failed: {e}"),
    }
    Ok(())
}

/// Starts forwarding and MQTT when configured.
fn start_integrations(
    state: &AppState,
    shutdown: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if state.config.forward.is_some() {
        state.store.enable_forwarding();
        tasks.push(tokio::spawn(crate::forward::run(
            state.store.clone(),
            state.config.clone(),
            state.forward.clone(),
            shutdown.clone(),
        )));
    }
    if state.config.mqtt.is_some() {
        let intake = crate::mqtt::Intake {
            writer: state.writer.clone(),
            stats: state.stats.clone(),
        };
        tasks.push(tokio::spawn(crate::mqtt::run(
            state.store.clone(),
            state.config.clone(),
            state.mqtt.clone(),
            intake,
            shutdown.clone(),
        )));
    }
    tasks
}

/// Starts the alert evaluator when alerts are configured, and the outbox when a
/// notification channel is configured and there are alerts or notifications waiting
/// (such as the notice about unreadable journal records, queued here once).
fn start_alerts(
    state: &AppState,
    opts: &RunOptions,
    shutdown: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let config = state.config.clone();
    let store: Arc<dyn alert::AlertStore> = state.store.clone();
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    if crate::notify::configured(&config) {
        queue_recovery_mail(state);
    }
    // Always: alerts made in the browser may come at any time.
    {
        let usage =
            StoreUsage::new(state.store.clone(), &config.meters).with_tariff(config.tariff.clone());
        let usage = Arc::new(usage);
        let evaluator = alert::engine::Evaluator::new(
            &config,
            state.rules.clone(),
            store.clone(),
            usage,
            state.alerts.clone(),
            wake.clone(),
            opts.clock.clone(),
        );
        tasks.push(tokio::spawn(alert::engine::run_evaluator(
            evaluator,
            state.progress.clone(),
            opts.alert_tick,
            shutdown.clone(),
        )));
    }
    tasks.push(tokio::spawn(crate::report::gather::run(
        config.clone(),
        crate::report::gather::Sources {
            store: state.store.clone(),
            draws: state.draws.clone(),
            rules: state.rules.clone(),
            outbox: wake.clone(),
        },
        shutdown.clone(),
    )));
    if crate::notify::configured(&config) {
        let (channels, problems) = crate::notify::channels(&config);
        for problem in problems {
            tracing::error!("alert notifications cannot be sent: {problem}");
            state.alerts.set_setup_error(problem);
        }
        tasks.push(tokio::spawn(alert::engine::run_channels(
            channels,
            store,
            wake,
            shutdown.clone(),
        )));
    }
    tasks
}

/// Queues the mail about unreadable journal records, unless it was queued before.
fn queue_recovery_mail(state: &AppState) {
    let Some(notice) = state.store.recovery_notice() else {
        return;
    };
    let ctx = alert::MailContext::from_config(&state.config);
    let now = chrono::Utc::now().timestamp_millis();
    match alert::recovery_mail::queue_once(&*state.store, &notice, &ctx, now) {
        Ok(true) => tracing::info!("queued the mail about unreadable journal records"),
        Ok(false) => {}
        Err(e) => tracing::error!("the mail about the store's restore could not be queued: {e}"),
    }
}

/// glibc gives every thread that meets contention its own heap arena (up to 8 per
/// core), each keeping freed memory; two are plenty for one writer and a few
/// request tasks, and keep the idle RSS of a Pi Zero small.
fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator tunable.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Starts the GPIO input of every meter that has one. A meter whose pin cannot be
/// opened (not a Pi, no permission, pin busy) is logged with the fix and skipped:
/// the other inputs keep working.
fn start_gpio_meters(state: &AppState) -> Vec<(String, gpio::GpioHandle)> {
    let mut handles = Vec::new();
    for (idx, m) in state.config.meters.iter().enumerate() {
        let Some(cfg) = &m.gpio else { continue };
        let (source, pulse_log) = match gpio::sim::from_test_env() {
            Some((sim, log)) => (Ok(Box::new(sim) as Box<dyn gpio::EdgeSource>), Some(log)),
            None => (gpio::open_rppal(cfg), None),
        };
        let mut pulse_log = pulse_log.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        let started = source.and_then(|source| {
            let (writer, stats) = (state.writer.clone(), state.stats.clone());
            let liters = m.liters_per_pulse;
            let on_pulse = Box::new(move |ts_ms: i64| {
                stats
                    .accepted_gpio
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let sample = Sample {
                    meter: idx as MeterIdx,
                    ts_ms,
                    value: SampleValue::Liters(liters),
                };
                if writer.submit_blocking(vec![sample]).is_err() {
                    tracing::warn!("a pulse arrived while shutting down and was not stored");
                } else if let Some(log) = pulse_log.as_mut() {
                    // The wall time the store gives it (a pulse's stamp is monotonic).
                    use std::io::Write;
                    let _ = writeln!(log, "{}", crate::clock::place(ts_ms));
                }
            });
            gpio::spawn(&m.id, cfg, source, on_pulse)
        });
        match started {
            Ok(h) => {
                tracing::info!(meter = m.id, pin = cfg.pin, "counting S0 pulses on GPIO");
                handles.push((m.id.clone(), h));
            }
            Err(e) => tracing::error!(meter = m.id, "{e}"),
        }
    }
    handles
}

/// Waits for a task to end, aborting it after `grace` (which drops what it holds,
/// such as its handle on the writer).
async fn stop_within(mut task: tokio::task::JoinHandle<()>, grace: Duration) {
    if tokio::time::timeout(grace, &mut task).await.is_err() {
        task.abort();
        let _ = task.await;
    }
}

fn announce(bound: &Bound, tls: bool) {
    // Tests and users read these lines: the real ports when the config said 0.
    let scheme = if tls { "https" } else { "http" };
    println!("watermeter: dashboard at {scheme}://{}/", bound.http);
    if let Some(u) = bound.udp {
        println!("watermeter: line protocol over UDP on {u}");
    }
}

/// SIGTERM and SIGINT, listened for from the moment `run` starts: a signal that
/// comes while the app is still starting ends it cleanly once it has started,
/// instead of killing it with the default action before anything is flushed.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn listen() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        let listen = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("cannot listen for {name}: {e}");
                None
            }
        };
        Signals {
            term: listen(SignalKind::terminate(), "SIGTERM"),
            int: listen(SignalKind::interrupt(), "SIGINT"),
        }
    }

    async fn wait(mut self) {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.term) => {}
            _ = recv(&mut self.int) => {}
        }
    }
}
