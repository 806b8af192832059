//! `watermeter gpio-test`: print every edge live so a user can check the wiring by
//! opening a tap, then a summary (pulses, shortest pulse and gap, bounces filtered).
//!
//! It runs the same [`PulseFilter`] as `serve`, so what it counts is what `serve`
//! would count. It does not parse arguments or handle Ctrl-C: the CLI passes the
//! config, an opened source and a `stop` flag.

use std::fmt::Display;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::TimeZone;

use super::filter::{EdgeVerdict, Outcome, STUCK_AFTER};
use super::{closed_level, filter_for, system_wall_ms, ClockMap, EdgeSource, Level, Next};
use crate::config::{Edge, GpioConfig, Pull};

/// What `gpio-test` saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TestSummary {
    pub edges: u64,
    pub pulses: u64,
    pub shortest_pulse: Option<Duration>,
    pub shortest_gap: Option<Duration>,
    pub bounces: u64,
    /// The contact stayed closed for [`STUCK_AFTER`] at some point.
    pub stuck: bool,
}

/// Print each edge of `source` to `out` until `stop` is set or the source closes.
pub fn run_gpio_test(
    cfg: &GpioConfig,
    source: Box<dyn EdgeSource>,
    out: &mut dyn Write,
    stop: &AtomicBool,
) -> io::Result<TestSummary> {
    run_with(cfg, source, out, stop, &chrono::Local, system_wall_ms())
}

const WAIT: Duration = Duration::from_millis(100);

fn run_with<Tz>(
    cfg: &GpioConfig,
    mut source: Box<dyn EdgeSource>,
    out: &mut dyn Write,
    stop: &AtomicBool,
    tz: &Tz,
    wall_now_ms: i64,
) -> io::Result<TestSummary>
where
    Tz: TimeZone,
    Tz::Offset: Display,
{
    let mut printer = Printer {
        out,
        tz,
        clock: ClockMap::new(wall_now_ms, source.mono_now()),
        cfg,
        summary: TestSummary::default(),
    };
    printer.header(source.level_now())?;
    let mut filter = filter_for(cfg);
    while !stop.load(Ordering::SeqCst) {
        let next = source
            .next_edge(WAIT)
            .map_err(|e| io::Error::other(e.to_string()))?;
        match next {
            Next::Edge(edge) => {
                let step = filter.edge(edge.level, edge.mono);
                printer.edge(edge.mono, edge.level, step.verdict)?;
                printer.outcome(edge.mono, step.outcome)?;
            }
            Next::Timeout => {
                let now = source.mono_now();
                printer.outcome(now, filter.poll(now))?;
            }
            Next::Closed => break,
        }
    }
    let now = source.mono_now();
    printer.outcome(now, filter.finish(now))?;
    let stats = filter.stats();
    let summary = TestSummary {
        pulses: stats.pulses,
        shortest_pulse: stats.shortest_pulse,
        shortest_gap: stats.shortest_gap,
        bounces: stats.bounces,
        ..printer.summary
    };
    printer.footer(&summary)?;
    Ok(summary)
}

struct Printer<'a, Tz: TimeZone> {
    out: &'a mut dyn Write,
    tz: &'a Tz,
    clock: ClockMap,
    cfg: &'a GpioConfig,
    summary: TestSummary,
}

impl<Tz> Printer<'_, Tz>
where
    Tz: TimeZone,
    Tz::Offset: Display,
{
    fn time(&self, mono: Duration) -> String {
        self.tz
            .timestamp_millis_opt(self.clock.wall_ms(mono))
            .single()
            .map_or_else(
                || "??:??:??.???".into(),
                |t| t.format("%H:%M:%S%.3f").to_string(),
            )
    }

    fn header(&mut self, level: Option<Level>) -> io::Result<()> {
        let cfg = self.cfg;
        let pull = match cfg.pull {
            Pull::Up => "up",
            Pull::Down => "down",
            Pull::Off => "off",
        };
        let edge = match cfg.edge {
            Edge::Falling => "falling",
            Edge::Rising => "rising",
        };
        let closed = level_name(closed_level(cfg));
        writeln!(
            self.out,
            "gpio-test: pin {} (BCM), pull {pull}, edge {edge} (contact closed = {closed}), \
             kernel debounce {} ms; a pulse counts when closed >= {} ms, then open >= {} ms.",
            cfg.pin, cfg.debounce_ms, cfg.min_pulse_ms, cfg.min_gap_ms
        )?;
        if let Some(level) = level {
            let contact = if level == closed_level(cfg) {
                "closed"
            } else {
                "open"
            };
            writeln!(
                self.out,
                "The pin is {} now (contact {contact}).",
                level_name(level)
            )?;
        }
        writeln!(self.out, "Open a tap and watch the pulses; Ctrl-C to stop.")
    }

    fn edge(&mut self, mono: Duration, level: Level, verdict: EdgeVerdict) -> io::Result<()> {
        self.summary.edges += 1;
        let what = match verdict {
            EdgeVerdict::Repeat => "same level again, ignored".to_string(),
            EdgeVerdict::Closed { gap: None } => "closed".to_string(),
            EdgeVerdict::Closed { gap: Some(gap) } => format!("closed after {} open", ms(gap)),
            EdgeVerdict::Bounce { gap } => {
                format!("closed after {} open: bounce, same pulse", ms(gap))
            }
            EdgeVerdict::Opened {
                width,
                qualified: true,
            } => format!("opened after {} closed", ms(width)),
            EdgeVerdict::Opened {
                width,
                qualified: false,
            } => format!(
                "opened after {} closed: shorter than {} ms so far",
                ms(width),
                self.cfg.min_pulse_ms
            ),
        };
        let time = self.time(mono);
        writeln!(self.out, "{time}  {:<4}  {what}", level_name(level))
    }

    fn outcome(&mut self, mono: Duration, outcome: Option<Outcome>) -> io::Result<()> {
        let time = self.time(mono);
        match outcome {
            None => Ok(()),
            Some(Outcome::Pulse(pulse)) => {
                self.summary.pulses += 1;
                writeln!(
                    self.out,
                    "{time}  PULSE #{} counted: closed at {}, {} long",
                    self.summary.pulses,
                    self.time(pulse.closed_at),
                    ms(pulse.width)
                )
            }
            Some(Outcome::Rejected { closed_at, width }) => writeln!(
                self.out,
                "{time}  filtered: closed only {} at {} (shorter than {} ms: bounce or interference)",
                ms(width),
                self.time(closed_at),
                self.cfg.min_pulse_ms
            ),
            Some(Outcome::StuckClosed { since }) => {
                self.summary.stuck = true;
                writeln!(
                    self.out,
                    "{time}  warning: the contact has been closed since {} (over {} minutes); \
                     if no water flows, the dial stopped on the contact or the wiring is shorted",
                    self.time(since),
                    STUCK_AFTER.as_secs() / 60
                )
            }
        }
    }

    fn footer(&mut self, s: &TestSummary) -> io::Result<()> {
        let opt = |d: Option<Duration>| d.map_or_else(|| "-".to_string(), ms);
        writeln!(
            self.out,
            "Summary: {} pulses counted from {} edges; shortest pulse {}, shortest gap {}; \
             {} bounces filtered.",
            s.pulses,
            s.edges,
            opt(s.shortest_pulse),
            opt(s.shortest_gap),
            s.bounces
        )?;
        if s.edges == 0 {
            writeln!(
                self.out,
                "No edges at all: check the wiring, the pin number (BCM, not the header \
                 position) and the pull setting; see docs/wiring.md."
            )?;
        } else if s.pulses == 0 {
            writeln!(
                self.out,
                "Edges but no pulse: the contact never stayed closed {} ms; check for \
                 interference and the edge setting.",
                self.cfg.min_pulse_ms
            )?;
        }
        Ok(())
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::High => "high",
        Level::Low => "low",
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
