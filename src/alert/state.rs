//! The per-alert state machine: ok → firing → (reminders) → resolved → ok.
//!
//! Pure: [`evaluate`] takes the stored [`AlertState`], measures the rule at `now`
//! and returns the next state and at most one [`Transition`]. It never sends, never
//! stores; the caller commits the new state together with the transition's mail.
//!
//! Flapping is handled by a *resolve hold*: an alert fires at once, but resolves only
//! after its condition has been clear for [`resolve_hold`] without a break. A value
//! dancing around the threshold therefore keeps the alert firing (no mail) instead of
//! sending firing/resolved pairs.

use std::time::Duration;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::kinds::{Levels, Rule};
use super::rules::{Measurement, UsageView};

/// The longest resolve hold; shorter rules (a 5-minute `quiet`) use their own length.
pub const MAX_RESOLVE_HOLD: Duration = Duration::from_secs(15 * 60);

/// What the store keeps per alert (serde, so it can be stored as bytes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    /// `Some` while firing: when the condition first held.
    pub firing_since: Option<i64>,
    /// When the last mail for this alert was queued (firing, reminder or resolved).
    pub last_notified_ms: Option<i64>,
    /// While firing: since when the condition has been clear (the resolve hold runs).
    #[serde(default)]
    pub clear_since: Option<i64>,
    /// The measured value at the last evaluation (liters, or seconds for durations).
    pub value: f64,
    /// When the rule was last evaluated.
    #[serde(default)]
    pub evaluated_ms: Option<i64>,
    /// A kind with levels (a budget): the start of the period the levels count in.
    #[serde(default)]
    pub period_ms: Option<i64>,
    /// A kind with levels: how many of them this period has reached (and notified).
    #[serde(default)]
    pub level: usize,
    /// A kind with levels: the [`Levels::key`] `level` counts against.
    #[serde(default)]
    pub levels_key: Option<String>,
    /// While firing: when the water of the episode began, as the kind found it
    /// (a leak's first liter), the earliest seen.
    #[serde(default)]
    pub episode_start_ms: Option<i64>,
    /// While firing: the finding in words at the last evaluation ("Drip since
    /// Wed 12:00, about 2 L/h, 72 L so far"), for the banner and `/alerts`.
    #[serde(default)]
    pub finding: Option<String>,
}

impl AlertState {
    pub fn is_firing(&self) -> bool {
        self.firing_since.is_some()
    }

    /// True when `other` differs in anything but the live value: worth a store write.
    /// The value and evaluation time alone change on every tick and are not.
    pub fn differs_in_phase(&self, other: &AlertState) -> bool {
        self.firing_since != other.firing_since
            || self.last_notified_ms != other.last_notified_ms
            || self.clear_since != other.clear_since
            || self.period_ms != other.period_ms
            || self.level != other.level
            || self.levels_key != other.levels_key
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    Firing,
    Reminder,
    Resolved,
    /// A budget reached one of its levels.
    Level,
}

impl TransitionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionKind::Firing => "firing",
            TransitionKind::Reminder => "reminder",
            TransitionKind::Resolved => "resolved",
            TransitionKind::Level => "level",
        }
    }
}

/// A change worth one mail.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub kind: TransitionKind,
    pub at_ms: i64,
    /// The measured value (liters, or seconds for `continuous_flow` / `no_data`).
    pub value: f64,
    /// When the alert started firing (for `Resolved`: the episode that just ended).
    pub firing_since_ms: i64,
    /// Flow now in L/min (the dashboard's figure).
    pub flow_l_per_min: f64,
    /// What the kind adds in words (a meter's alarm flags), if anything.
    pub detail: Option<String>,
    /// The run of water behind the episode: from when the water began, to now
    /// (resolved: to when the condition cleared), and its liters; `None` for
    /// kinds that tell no run (`no_data`, `meter_alarm`).
    pub run: Option<(i64, i64, f64)>,
}

/// One line of an alert's history, as the dashboard and `/api/v1/alerts` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at_ms: i64,
    pub kind: TransitionKind,
    pub value: f64,
    /// The mail's subject: a one-line summary.
    pub summary: String,
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub state: AlertState,
    pub transition: Option<Transition>,
    /// Store the new state: the phase changed (a transition, or the hold started/stopped).
    pub persist: bool,
}

/// Measure `rule` at `now_ms` and advance its state. `tz` is the configured zone
/// (`night_use` reads wall-clock hours).
pub fn evaluate(
    rule: &Rule,
    usage: &dyn UsageView,
    state: &AlertState,
    now_ms: i64,
    tz: Tz,
) -> Evaluation {
    let m = rule
        .kind
        .measure(&rule.meter, usage, now_ms, tz, state.firing_since);
    let hold = rule.kind.resolve_hold().min(MAX_RESOLVE_HOLD);
    let (mut next, kind) = match rule.kind.levels(now_ms, tz) {
        Some(levels) => step_levels(state, m, now_ms, &levels),
        None => step(state, m, now_ms, rule.repeat, hold),
    };
    next.value = m.value;
    next.evaluated_ms = Some(now_ms);
    let firing = next.firing_since.is_some() || state.firing_since.is_some();
    let found_start = if m.breached && firing {
        rule.kind.run_start(&rule.meter, usage, now_ms, tz)
    } else {
        None
    };
    let episode_start = match (state.episode_start_ms, found_start) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let detail = firing
        .then(|| rule.kind.detail(&rule.meter, usage, now_ms, tz))
        .flatten();
    if next.firing_since.is_some() {
        next.episode_start_ms = episode_start;
        next.finding = detail.clone().or_else(|| state.finding.clone());
    } else {
        next.episode_start_ms = None;
        next.finding = None;
    }
    let transition = kind.map(|kind| Transition {
        kind,
        at_ms: now_ms,
        value: m.value,
        firing_since_ms: state.firing_since.or(next.firing_since).unwrap_or(now_ms),
        flow_l_per_min: usage.flow_l_per_min(&rule.meter, now_ms),
        detail: match kind {
            // The finding while it held; the episode is over now.
            TransitionKind::Resolved => {
                state.finding.as_deref().map(|f| rule.kind.finding_ended(f))
            }
            _ => detail
                .clone()
                .or_else(|| rule.kind.detail(&rule.meter, usage, now_ms, tz)),
        },
        run: rule.kind.tells_run().then(|| {
            let since = state.firing_since.or(next.firing_since).unwrap_or(now_ms);
            let lead = i64::try_from(rule.kind.began_before_firing().as_millis()).unwrap_or(0);
            let from = episode_start.unwrap_or(since - lead);
            let to = match kind {
                TransitionKind::Resolved => state.clear_since.unwrap_or(now_ms).min(now_ms),
                _ => now_ms,
            };
            (from, to, usage.liters_between(&rule.meter, from, to))
        }),
    });
    Evaluation {
        persist: transition.is_some() || next.differs_in_phase(state),
        state: next,
        transition,
    }
}

/// The machine of a kind with levels (a budget): a new period, or a changed
/// limit or levels, starts at level 0 without a word; reaching one or more new levels notifies once (for the
/// highest), and nothing ever fires or resolves.
pub fn step_levels(
    state: &AlertState,
    m: Measurement,
    now_ms: i64,
    levels: &Levels,
) -> (AlertState, Option<TransitionKind>) {
    let mut next = state.clone();
    next.firing_since = None;
    next.clear_since = None;
    let edited = state.levels_key.as_deref() != Some(levels.key.as_str());
    if state.period_ms != Some(levels.period_start_ms) || edited {
        next.period_ms = Some(levels.period_start_ms);
        next.levels_key = Some(levels.key.clone());
        next.level = 0;
    }
    let reached = levels.percents.iter().filter(|l| m.value >= **l).count();
    if reached > next.level {
        next.level = reached;
        next.last_notified_ms = Some(now_ms);
        return (next, Some(TransitionKind::Level));
    }
    (next, None)
}

/// The bare state machine, separate from measuring so it can be tested on its own.
/// A `repeat` of zero means no reminders.
pub fn step(
    state: &AlertState,
    m: Measurement,
    now_ms: i64,
    repeat: Duration,
    hold: Duration,
) -> (AlertState, Option<TransitionKind>) {
    let mut next = state.clone();
    let elapsed = |since: Option<i64>, d: Duration| {
        since.is_some_and(|s| u128::try_from(now_ms - s).is_ok_and(|e| e >= d.as_millis()))
    };
    match (state.is_firing(), m.breached) {
        (false, false) => return (next, None),
        (false, true) => {
            next.firing_since = Some(now_ms);
            next.last_notified_ms = Some(now_ms);
            next.clear_since = None;
            return (next, Some(TransitionKind::Firing));
        }
        (true, true) => {
            next.clear_since = None;
            let last = state.last_notified_ms.or(state.firing_since);
            if !repeat.is_zero() && elapsed(last, repeat) {
                next.last_notified_ms = Some(now_ms);
                return (next, Some(TransitionKind::Reminder));
            }
        }
        (true, false) => {
            let clear_since = state.clear_since.unwrap_or(now_ms);
            next.clear_since = Some(clear_since);
            if elapsed(Some(clear_since), hold) {
                next.firing_since = None;
                next.clear_since = None;
                next.last_notified_ms = Some(now_ms);
                return (next, Some(TransitionKind::Resolved));
            }
        }
    }
    (next, None)
}
