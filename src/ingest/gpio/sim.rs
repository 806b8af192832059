//! A simulated pin: replays a recorded edge timeline, for tests and the demo's meter.
//!
//! The timeline is a list of `(offset from the source's start, level)`. Its monotonic
//! clock starts at `mono_start` (a fake "time since boot"). With [`Pace::Instant`] the
//! clock is virtual and jumps from edge to edge, so tests replay an hour in
//! microseconds; with [`Pace::RealTime`] edges come when the wall clock reaches them
//! (the demo). This does no filtering: edges come out exactly as recorded.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{EdgeEvent, EdgeSource, GpioError, Level, Next};

/// How fast a [`SimSource`] replays its timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Virtual time: no sleeping. After the last edge the clock runs on for `tail`
    /// (in timeout steps, so pending pulses get confirmed), then the source closes.
    Instant { tail: Duration },
    /// Edges are delivered when real time reaches them; the source closes after the last.
    RealTime,
}

pub struct SimSource {
    timeline: Vec<(Duration, Level)>,
    next: usize,
    pace: Pace,
    mono_start: Duration,
    /// Virtual time since start (Instant pace).
    now: Duration,
    /// Real start (RealTime pace): the first time the clock is read, so a task's clock
    /// mapping and the replay start together.
    started: OnceLock<Instant>,
}

impl SimSource {
    /// `timeline` need not be sorted; it is sorted by offset (stable, so same-time
    /// edges keep their order).
    pub fn new(mut timeline: Vec<(Duration, Level)>, mono_start: Duration, pace: Pace) -> Self {
        timeline.sort_by_key(|(offset, _)| *offset);
        Self {
            timeline,
            next: 0,
            pace,
            mono_start,
            now: Duration::ZERO,
            started: OnceLock::new(),
        }
    }

    /// A timeline in unix milliseconds (as `household::edge_timeline` makes), replayed
    /// from `start_unix_ms` on; earlier edges are skipped. For the demo's live meter.
    pub fn from_unix_ms(timeline: &[(i64, Level)], start_unix_ms: i64, pace: Pace) -> Self {
        let edges = timeline
            .iter()
            .filter(|(t, _)| *t >= start_unix_ms)
            .map(|&(t, level)| (Duration::from_millis((t - start_unix_ms) as u64), level))
            .collect();
        Self::new(edges, Duration::from_secs(1), pace)
    }

    fn elapsed(&self) -> Duration {
        match self.pace {
            Pace::Instant { .. } => self.now,
            Pace::RealTime => self.started.get_or_init(Instant::now).elapsed(),
        }
    }

    fn edge_at(&mut self, index: usize) -> Next {
        let (offset, level) = self.timeline[index];
        self.next = index + 1;
        if let Pace::Instant { .. } = self.pace {
            self.now = self.now.max(offset);
        }
        Next::Edge(EdgeEvent {
            level,
            mono: self.mono_start + offset,
        })
    }
}

impl EdgeSource for SimSource {
    fn next_edge(&mut self, timeout: Duration) -> Result<Next, GpioError> {
        let Some(&(offset, _)) = self.timeline.get(self.next) else {
            return Ok(self.after_the_end(timeout));
        };
        let now = self.elapsed();
        if offset <= now + timeout {
            if let Pace::RealTime = self.pace {
                std::thread::sleep(offset.saturating_sub(now));
            }
            return Ok(self.edge_at(self.next));
        }
        match self.pace {
            Pace::Instant { .. } => self.now += timeout,
            Pace::RealTime => std::thread::sleep(timeout),
        }
        Ok(Next::Timeout)
    }

    fn mono_now(&self) -> Duration {
        self.mono_start + self.elapsed()
    }
}

impl SimSource {
    fn after_the_end(&mut self, timeout: Duration) -> Next {
        let last = self.timeline.last().map_or(Duration::ZERO, |(t, _)| *t);
        match self.pace {
            Pace::Instant { tail } if self.now < last + tail && !timeout.is_zero() => {
                self.now = (self.now + timeout).min(last + tail);
                Next::Timeout
            }
            _ => Next::Closed,
        }
    }
}

/// The power-cut tests' stand-in for a meter on a pin: with
/// `WATERMETER_TEST_GPIO=<period_ms>:<log file>`, every meter with `[meter.gpio]`
/// reads a square wave (one pulse per period, for an hour, in real time) instead of
/// the pin, and each pulse handed to the store is logged with its time. Unset, the
/// real pin is used; nothing else reads the variable.
pub fn from_test_env() -> Option<(SimSource, std::path::PathBuf)> {
    let v = std::env::var("WATERMETER_TEST_GPIO").ok()?;
    let (period, log) = v.split_once(':')?;
    let period = Duration::from_millis(period.parse::<u64>().ok()?.max(80));
    let n = (3_600_000 / period.as_millis()) as u32;
    let start = Duration::from_millis(200);
    let timeline = (0..n)
        .flat_map(|k| {
            let at = start + period * k;
            [(at, Level::Low), (at + period / 2, Level::High)]
        })
        .collect();
    let source = SimSource::new(timeline, Duration::from_secs(1), Pace::RealTime);
    Some((source, std::path::PathBuf::from(log)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn instant_replay_gives_every_edge_in_order_then_runs_the_tail_then_closes() {
        let mut sim = SimSource::new(
            vec![(ms(100), Level::High), (ms(0), Level::Low)],
            ms(5_000),
            Pace::Instant { tail: ms(100) },
        );
        let mut seen = Vec::new();
        loop {
            match sim.next_edge(ms(50)) {
                Ok(Next::Edge(e)) => seen.push(format!("{:?}@{}", e.level, e.mono.as_millis())),
                Ok(Next::Timeout) => seen.push(format!("timeout@{}", sim.mono_now().as_millis())),
                Ok(Next::Closed) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(
            seen,
            [
                "Low@5000",
                "timeout@5050",
                "High@5100",
                "timeout@5150",
                "timeout@5200"
            ]
        );
    }

    #[test]
    fn unix_ms_timeline_skips_edges_before_the_start() {
        let timeline = [(900, Level::Low), (1_000, Level::High), (1_250, Level::Low)];
        let sim = SimSource::from_unix_ms(&timeline, 1_000, Pace::Instant { tail: ms(0) });
        assert_eq!(sim.timeline, [(ms(0), Level::High), (ms(250), Level::Low)]);
    }
}
