//! Starts everything, wires it together and shuts it down cleanly.
//!
//! Order of shutdown on SIGTERM/SIGINT: stop the inputs (HTTP, UDP, GPIO), let the
//! writer apply what is queued, flush the store, exit. Nothing acknowledged is lost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::config::Config;
use crate::ingest::points::Matcher;
use crate::ingest::stats::IngestStats;
use crate::ingest::{gpio, udp, MeterIdx, Sample, SampleValue};
use crate::store::{writer, Store};
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

/// Opens the store, creating `data_dir` if needed, with a message that says what to do.
pub fn open_store(config: &Config) -> anyhow::Result<Store> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    Store::open(dir, config.store.cache_bytes, config.timezone, &config.meters).map_err(|e| {
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

/// Runs the appliance until SIGTERM/SIGINT.
pub async fn run(config: Config, extra: Option<Extra>) -> anyhow::Result<()> {
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
    let (writer, progress, writer_task) = writer::spawn(store.clone(), config.store.flush_interval);
    let stats = Arc::new(IngestStats::default());
    let matcher = Arc::new(Matcher::new(&config.meters));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let mut bound_udp = None;
    if let Some(u) = &config.udp {
        let socket =
            udp::bind(u.listen).with_context(|| format!("listening for UDP on {}", u.listen))?;
        let socket = tokio::net::UdpSocket::from_std(socket)?;
        bound_udp = Some(socket.local_addr()?);
        let input = udp::UdpInput {
            socket,
            allow: u.allow.clone(),
            precision: u.precision,
        };
        tasks.push(tokio::spawn(udp::run(
            input,
            matcher.clone(),
            writer.clone(),
            stats.clone(),
            shutdown_rx.clone(),
        )));
    }

    let state = AppState {
        config: config.clone(),
        store: store.clone(),
        writer: writer.clone(),
        matcher,
        stats,
        forward: Arc::default(),
        mqtt: Arc::default(),
        progress,
        shutdown: shutdown_rx.clone(),
    };
    tasks.extend(start_integrations(&state, &shutdown_rx));
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

    let app = web::router(state);
    let server = tokio::spawn(web::tls::serve(listener, tls, app, shutdown_rx.clone()));
    drop(writer);

    wait_for_signal().await;
    tracing::info!("shutting down: stopping inputs, flushing the store");
    let _ = shutdown_tx.send(true);
    // Open keep-alive or streaming connections get a short grace period.
    stop_within(server, Duration::from_secs(3)).await;
    for t in tasks {
        stop_within(t, Duration::from_secs(2)).await;
    }
    for (meter, handle) in gpio_inputs {
        if let Err(e) = tokio::task::spawn_blocking(move || handle.stop()).await {
            tracing::warn!(meter, "stopping the GPIO input failed: {e}");
        }
    }
    writer_task.await.context("the store writer failed")?;
    tracing::info!("store flushed; bye");
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
        tasks.push(tokio::spawn(crate::mqtt::run(
            state.clone(),
            state.mqtt.clone(),
            shutdown.clone(),
        )));
    }
    tasks
}

/// Starts the GPIO input of every meter that has one. A meter whose pin cannot be
/// opened (not a Pi, no permission, pin busy) is logged with the fix and skipped:
/// the other inputs keep working.
fn start_gpio_meters(state: &AppState) -> Vec<(String, gpio::GpioHandle)> {
    let mut handles = Vec::new();
    for (idx, m) in state.config.meters.iter().enumerate() {
        let Some(cfg) = &m.gpio else { continue };
        let started = gpio::open_rppal(cfg).and_then(|source| {
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

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
