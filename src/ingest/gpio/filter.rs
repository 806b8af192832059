//! The pure pulse filter: edges with their level and monotonic time in, pulses out.
//!
//! A pulse counts only when the contact stayed closed at least `min_pulse` and then
//! stayed open at least `min_gap`. The filter sees *every* edge with its level, so it
//! does not matter which edge the hardware triggers on, and a repeated edge of the same
//! level is ignored. It does no IO and never reads a clock: time is passed in.
//!
//! How the rule plays out:
//! - Contact bounce while closing (closed/open/closed within a few ms): the short opens
//!   are shorter than `min_gap`, so the contact is "still closing"; the pulse starts at
//!   the *first* close.
//! - Bounce while opening: a re-close within `min_gap` of opening is the same pulse.
//! - EMI spikes: a closure shorter than `min_pulse` followed by a real gap is rejected.
//! - Once a closure has lasted `min_pulse` the pulse is certain to be counted exactly
//!   once; the gap only decides when (a re-close inside the gap merges into it). So a
//!   contact stuck closed for an hour is one pulse, counted when it opens again.
//! - A pulse's time is when the contact first closed.
//!
//! Shutdown ([`PulseFilter::finish`]): a pending closure that has been closed at least
//! `min_pulse` by `now` is counted, even if the contact has not opened or the gap has
//! not elapsed yet; after a restart the filter starts idle and ignores the opening
//! edge, so that liter is counted exactly once. A closure younger than `min_pulse` at
//! shutdown (including one arriving exactly at `now`) cannot be told from EMI and is
//! rejected.

use std::time::Duration;

use super::Level;

/// A contact closed longer than this without opening is reported once as stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(5 * 60);

/// One counted pulse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pulse {
    /// Monotonic time the contact first closed: the pulse's timestamp.
    pub closed_at: Duration,
    /// From the first close to the last open (bounces included).
    pub width: Duration,
}

/// What a pending closure turned into, or a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pulse(Pulse),
    /// A closure shorter than `min_pulse` (EMI, or cut off by shutdown).
    Rejected {
        closed_at: Duration,
        width: Duration,
    },
    /// The contact has been closed for [`STUCK_AFTER`] (reported once per closure).
    StuckClosed {
        since: Duration,
    },
}

/// What one edge meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeVerdict {
    /// Same level as the previous edge: ignored.
    Repeat,
    /// The contact closed: a pulse may start. `gap` is how long it was open, if known.
    Closed { gap: Option<Duration> },
    /// The contact re-closed only `gap` after opening: a bounce, the pulse goes on.
    Bounce { gap: Duration },
    /// The contact opened after `width` closed; `qualified` when the pulse has been
    /// closed at least `min_pulse` (in this or an earlier stretch of the same pulse).
    Opened { width: Duration, qualified: bool },
}

/// The result of feeding one edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub verdict: EdgeVerdict,
    /// A previous closure resolved by this edge (its gap had elapsed).
    pub outcome: Option<Outcome>,
}

/// Running totals, for `gpio-test`'s summary and the task's logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterStats {
    pub pulses: u64,
    /// Re-closes within `min_gap` plus rejected short closures.
    pub bounces: u64,
    pub shortest_pulse: Option<Duration>,
    /// Shortest open time between a counted pulse and the next closure.
    pub shortest_gap: Option<Duration>,
}

#[derive(Debug)]
pub struct PulseFilter {
    closed_level: Level,
    min_pulse: Duration,
    min_gap: Duration,
    state: State,
    last_open: Option<Duration>,
    last_pulse_end: Option<Duration>,
    stuck_reported: bool,
    stats: FilterStats,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Open, nothing pending.
    Idle,
    /// Closed since `since`; the pulse began at `start`.
    Closed {
        start: Duration,
        since: Duration,
        qualified: bool,
    },
    /// Open since `since`, waiting for `min_gap` to resolve the closure that began at `start`.
    Opened {
        start: Duration,
        since: Duration,
        qualified: bool,
    },
}

impl PulseFilter {
    /// `closed_level`: the level that means "contact closed" (low with the usual pull-up).
    pub fn new(closed_level: Level, min_pulse: Duration, min_gap: Duration) -> Self {
        Self {
            closed_level,
            min_pulse,
            min_gap,
            state: State::Idle,
            last_open: None,
            last_pulse_end: None,
            stuck_reported: false,
            stats: FilterStats::default(),
        }
    }

    pub fn stats(&self) -> FilterStats {
        self.stats
    }

    /// Feed one edge: the level the pin is at now, and the monotonic time it got there.
    pub fn edge(&mut self, level: Level, t: Duration) -> Step {
        if level == self.closed_level {
            self.close(t)
        } else {
            self.open(t)
        }
    }

    /// No edge until `now`: resolves a closure whose gap has elapsed, or reports a
    /// contact stuck closed (once).
    pub fn poll(&mut self, now: Duration) -> Option<Outcome> {
        match self.state {
            State::Idle => None,
            State::Opened {
                start,
                since,
                qualified,
            } if now.saturating_sub(since) >= self.min_gap => {
                self.state = State::Idle;
                Some(self.resolve(start, since, qualified))
            }
            State::Opened { .. } => None,
            State::Closed { start, since, .. } => {
                if !self.stuck_reported && now.saturating_sub(since) >= STUCK_AFTER {
                    self.stuck_reported = true;
                    return Some(Outcome::StuckClosed { since: start });
                }
                None
            }
        }
    }

    /// Shutdown at `now`: resolve whatever is pending (see the module docs).
    pub fn finish(&mut self, now: Duration) -> Option<Outcome> {
        let state = std::mem::replace(&mut self.state, State::Idle);
        match state {
            State::Idle => None,
            State::Opened {
                start,
                since,
                qualified,
            } => Some(self.resolve(start, since, qualified)),
            State::Closed {
                start,
                since,
                qualified,
            } => {
                let qualified = qualified || now.saturating_sub(since) >= self.min_pulse;
                Some(self.resolve(start, now.max(since), qualified))
            }
        }
    }

    fn close(&mut self, t: Duration) -> Step {
        let gap = self.last_open.map(|open| t.saturating_sub(open));
        match self.state {
            State::Closed { .. } => step(EdgeVerdict::Repeat, None),
            State::Opened {
                start,
                since,
                qualified,
            } if t.saturating_sub(since) < self.min_gap => {
                self.stats.bounces += 1;
                self.state = State::Closed {
                    start,
                    since: t,
                    qualified,
                };
                let gap = t.saturating_sub(since);
                step(EdgeVerdict::Bounce { gap }, None)
            }
            State::Opened {
                start,
                since,
                qualified,
            } => {
                let outcome = self.resolve(start, since, qualified);
                self.start(t, gap);
                step(EdgeVerdict::Closed { gap }, Some(outcome))
            }
            State::Idle => {
                self.start(t, gap);
                step(EdgeVerdict::Closed { gap }, None)
            }
        }
    }

    fn open(&mut self, t: Duration) -> Step {
        let State::Closed {
            start,
            since,
            qualified,
        } = self.state
        else {
            return step(EdgeVerdict::Repeat, None);
        };
        let width = t.saturating_sub(since);
        let qualified = qualified || width >= self.min_pulse;
        self.state = State::Opened {
            start,
            since: t,
            qualified,
        };
        self.last_open = Some(t);
        self.stuck_reported = false;
        step(EdgeVerdict::Opened { width, qualified }, None)
    }

    /// A new closure begins at `t`.
    fn start(&mut self, t: Duration, gap: Option<Duration>) {
        if let (Some(_), Some(gap)) = (self.last_pulse_end.take(), gap) {
            self.stats.shortest_gap = Some(self.stats.shortest_gap.map_or(gap, |g| g.min(gap)));
        }
        self.state = State::Closed {
            start: t,
            since: t,
            qualified: false,
        };
    }

    /// Count the closure that began at `start` and opened at `opened`.
    fn resolve(&mut self, start: Duration, opened: Duration, qualified: bool) -> Outcome {
        let since = opened;
        let width = since.saturating_sub(start);
        if qualified {
            self.stats.pulses += 1;
            self.stats.shortest_pulse =
                Some(self.stats.shortest_pulse.map_or(width, |w| w.min(width)));
            self.last_pulse_end = Some(since);
            Outcome::Pulse(Pulse {
                closed_at: start,
                width,
            })
        } else {
            self.stats.bounces += 1;
            Outcome::Rejected {
                closed_at: start,
                width,
            }
        }
    }
}

fn step(verdict: EdgeVerdict, outcome: Option<Outcome>) -> Step {
    Step { verdict, outcome }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
