//! The S0 pulse input: a GPIO pin's edges → filtered pulses → unix-ms times.
//!
//! The hardware sits behind the tiny [`EdgeSource`] trait (the embedded-hal way):
//! [`rpi::RppalSource`] reads a Raspberry Pi pin through rppal, [`sim::SimSource`]
//! replays a recorded edge timeline (tests, the demo's simulated meter). Everything
//! above it — the pure [`filter::PulseFilter`], the clock mapping, the running task and
//! `gpio-test` — never knows which one it talks to.
//!
//! This module does not touch the store or convert pulses to liters: [`spawn`] hands
//! each pulse's time to a callback, and the caller does the rest.

pub mod filter;
pub mod probe;
pub mod rpi;
pub mod sim;

mod error;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use error::GpioError;
pub use filter::{Outcome, PulseFilter};
pub use probe::{run_gpio_test, TestSummary};
pub use rpi::open_rppal;
pub use sim::{Pace, SimSource};

use crate::config::{Edge, GpioConfig};

/// A pin's logic level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    High,
    Low,
}

impl Level {
    pub fn inverted(self) -> Level {
        match self {
            Level::High => Level::Low,
            Level::Low => Level::High,
        }
    }
}

/// One edge: the level the pin changed to, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeEvent {
    pub level: Level,
    /// Monotonic time since boot (CLOCK_MONOTONIC), as rppal's `Event::timestamp`.
    pub mono: Duration,
}

/// What waiting for an edge gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Edge(EdgeEvent),
    /// No edge within the timeout.
    Timeout,
    /// The source has no more edges (a replayed timeline ended).
    Closed,
}

/// The hardware edge: a source of pin edges with their monotonic times.
pub trait EdgeSource: Send {
    /// Wait up to `timeout` for the next edge (both edges, every one of them).
    fn next_edge(&mut self, timeout: Duration) -> Result<Next, GpioError>;

    /// The source's monotonic clock now, in the same clock as [`EdgeEvent::mono`].
    fn mono_now(&self) -> Duration;

    /// The pin's level right now, if the source can read it (for `gpio-test`).
    fn level_now(&self) -> Option<Level> {
        None
    }
}

/// The level that means "contact closed": falling edge = closes to low (pull-up wiring).
pub fn closed_level(cfg: &GpioConfig) -> Level {
    match cfg.edge {
        Edge::Falling => Level::Low,
        Edge::Rising => Level::High,
    }
}

/// A pulse filter set up from the meter's config.
pub fn filter_for(cfg: &GpioConfig) -> PulseFilter {
    PulseFilter::new(
        closed_level(cfg),
        Duration::from_millis(cfg.min_pulse_ms.into()),
        Duration::from_millis(cfg.min_gap_ms.into()),
    )
}

/// The edge source's monotonic clock → the stamp a pulse gets, fixed once at start.
///
/// Edge times come from the monotonic clock, which never jumps. The wall clock can:
/// NTP often steps it minutes or hours after a Pi boots without an RTC, and the
/// service does not wait for that (it starts at boot). So `spawn` maps edges onto
/// `clock::mono_stamp`, the monotonic time since boot: pulses keep their exact
/// spacing and order, and the store places them on the wall clock when it applies
/// them, by the clock's offset at that moment, once the clock is synchronised (see
/// `clock`). `probe` (gpio-test) maps onto the wall clock directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockMap {
    offset_ms: i64,
}

impl ClockMap {
    pub fn new(wall_now_ms: i64, mono_now: Duration) -> Self {
        Self {
            offset_ms: wall_now_ms - duration_ms(mono_now),
        }
    }

    pub fn wall_ms(&self, mono: Duration) -> i64 {
        self.offset_ms + duration_ms(mono)
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The system's wall clock in unix milliseconds.
pub fn system_wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// How long the task waits for an edge before polling the filter (pending pulses are
/// confirmed within this much after their gap) and checking for stop.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A running GPIO input; [`GpioHandle::stop`] ends it.
pub struct GpioHandle {
    pin: u8,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), GpioError>>>,
}

impl GpioHandle {
    /// Stop the thread, flush the filter (a pending pulse is handed over, see
    /// [`PulseFilter::finish`]) and report why it ended if it failed.
    pub fn stop(mut self) -> Result<(), GpioError> {
        self.join()
    }

    /// Wait until the source closes by itself (a replayed timeline ended), without
    /// asking the thread to stop.
    pub fn wait(mut self) -> Result<(), GpioError> {
        let outcome = self.thread.take().map(JoinHandle::join);
        self.joined(outcome)
    }

    /// True once the thread has ended on its own (the source closed or failed).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    fn join(&mut self) -> Result<(), GpioError> {
        self.stop.store(true, Ordering::SeqCst);
        let outcome = self.thread.take().map(JoinHandle::join);
        self.joined(outcome)
    }

    fn joined(
        &self,
        outcome: Option<std::thread::Result<Result<(), GpioError>>>,
    ) -> Result<(), GpioError> {
        match outcome {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(GpioError::InterruptStopped {
                pin: self.pin,
                detail: "the GPIO task panicked".into(),
            }),
        }
    }
}

impl Drop for GpioHandle {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// Run a meter's GPIO input on its own thread: edges → filter → `on_pulse(unix_ms)`.
///
/// `on_pulse` runs on this thread and must not block (hand the time to a channel).
pub fn spawn(
    meter_name: &str,
    cfg: &GpioConfig,
    source: Box<dyn EdgeSource>,
    on_pulse: Box<dyn FnMut(i64) + Send>,
) -> Result<GpioHandle, GpioError> {
    // Pulses carry monotonic stamps that the store places on the wall clock when
    // it applies them: a Pi counts from boot, before NTP has set its clock, and a
    // later step of the clock never moves a pulse (see `clock`).
    spawn_with_clock(meter_name, cfg, source, on_pulse, crate::clock::mono_stamp)
}

fn spawn_with_clock(
    meter_name: &str,
    cfg: &GpioConfig,
    mut source: Box<dyn EdgeSource>,
    mut on_pulse: Box<dyn FnMut(i64) + Send>,
    wall_now_ms: fn() -> i64,
) -> Result<GpioHandle, GpioError> {
    let stop = Arc::new(AtomicBool::new(false));
    let task = Task {
        meter: meter_name.to_string(),
        pin: cfg.pin,
        filter: filter_for(cfg),
        clock: ClockMap::new(wall_now_ms(), source.mono_now()),
    };
    let stop_flag = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name(format!("gpio-{}", cfg.pin))
        .spawn(move || task.run(source.as_mut(), on_pulse.as_mut(), &stop_flag))
        .map_err(|e| GpioError::Thread {
            meter: meter_name.to_string(),
            detail: e.to_string(),
        })?;
    Ok(GpioHandle {
        pin: cfg.pin,
        stop,
        thread: Some(thread),
    })
}

struct Task {
    meter: String,
    pin: u8,
    filter: PulseFilter,
    clock: ClockMap,
}

impl Task {
    fn run(
        mut self,
        source: &mut dyn EdgeSource,
        on_pulse: &mut dyn FnMut(i64),
        stop: &AtomicBool,
    ) -> Result<(), GpioError> {
        tracing::info!(meter = %self.meter, pin = self.pin, "GPIO input started");
        let result = self.pump(source, on_pulse, stop, POLL_EVERY);
        // Take in edges that are already queued, then flush what is pending.
        if result.is_ok() {
            let _ = self.pump(source, on_pulse, &AtomicBool::new(false), Duration::ZERO);
        }
        let outcome = self.filter.finish(source.mono_now());
        self.handle(outcome, on_pulse);
        let stats = self.filter.stats();
        tracing::info!(
            meter = %self.meter,
            pin = self.pin,
            pulses = stats.pulses,
            bounces_filtered = stats.bounces,
            "GPIO input stopped"
        );
        if let Err(e) = &result {
            tracing::error!(meter = %self.meter, "{e}");
        }
        result
    }

    /// Feed edges to the filter until `stop`, the source closes, or (with a zero
    /// timeout) nothing is queued any more.
    fn pump(
        &mut self,
        source: &mut dyn EdgeSource,
        on_pulse: &mut dyn FnMut(i64),
        stop: &AtomicBool,
        timeout: Duration,
    ) -> Result<(), GpioError> {
        while !stop.load(Ordering::SeqCst) {
            match source.next_edge(timeout)? {
                Next::Edge(edge) => {
                    let step = self.filter.edge(edge.level, edge.mono);
                    self.handle(step.outcome, on_pulse);
                }
                Next::Timeout => {
                    let outcome = self.filter.poll(source.mono_now());
                    self.handle(outcome, on_pulse);
                    if timeout.is_zero() {
                        return Ok(());
                    }
                }
                Next::Closed => return Ok(()),
            }
        }
        Ok(())
    }

    fn handle(&self, outcome: Option<Outcome>, on_pulse: &mut dyn FnMut(i64)) {
        match outcome {
            Some(Outcome::Pulse(pulse)) => on_pulse(self.clock.wall_ms(pulse.closed_at)),
            Some(Outcome::Rejected { width, .. }) => tracing::debug!(
                meter = %self.meter,
                width_ms = width.as_secs_f64() * 1000.0,
                "GPIO: closure too short, filtered as a bounce"
            ),
            Some(Outcome::StuckClosed { .. }) => tracing::warn!(
                meter = %self.meter,
                pin = self.pin,
                "GPIO contact has been closed for over {} minutes: if no water flows, the \
                 meter's dial stopped on the contact (harmless, it counts once when it opens) \
                 or the wiring is shorted",
                filter::STUCK_AFTER.as_secs() / 60
            ),
            None => {}
        }
    }
}

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
