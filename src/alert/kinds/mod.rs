//! The alert kinds, one file each: a kind's name, keys, the check of its keys, its
//! rule, its words and what its page shows live together in `<kind>.rs`.
//!
//! `config` keeps an `[[alert]]`'s common keys and leaves `kind` and the kind's own
//! keys as [`Settings`]; [`check`] reads them here with the same line-numbered
//! messages as every other key ([`load_config`] and [`parse_config`] run it inside
//! config validation, for `check-config` and `serve`). [`rules`] turns a valid
//! config into [`Rule`]s for the engine and the pages.
//!
//! Adding a kind: a file here implementing [`AlertKind`] with its [`KindDef`], and
//! one line in [`KINDS`]. Nothing else in the engine, the outbox or the pages.

pub mod budget;
pub mod continuous_flow;
pub mod leak;
pub mod meter_alarm;
pub mod night_use;
pub mod no_data;
pub mod volume;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;

use super::rules::{Measurement, UsageView};
use crate::config::settings::closest;
use crate::config::{self, Config, ConfigError, Problem, Settings, ALERT_COMMON_KEYS};

/// What every kind answers.
pub trait AlertKind: Send + Sync + std::fmt::Debug {
    /// The kind's name in the config (`kind = "volume"`) and the API.
    fn name(&self) -> &'static str;
    /// The unit of [`Measurement::value`]: `"L"` or `"s"`.
    fn unit(&self) -> &'static str;
    /// The rule at `now_ms`. `firing_since_ms` (from the alert's state) lets a kind
    /// look back over a condition that already fires.
    fn measure(
        &self,
        meter: &str,
        usage: &dyn UsageView,
        now_ms: i64,
        tz: Tz,
        firing_since_ms: Option<i64>,
    ) -> Measurement;
    /// How long the condition must stay clear before a firing alert resolves (the
    /// state machine caps it at `state::MAX_RESOLVE_HOLD`).
    fn resolve_hold(&self) -> Duration;
    /// One line about a transition, as the subject says it: "main: 120 L in 1 h
    /// (limit 100 L)". `value` is the measurement, `resolved` whether it resolved,
    /// `detail` what [`AlertKind::detail`] said when it happened.
    fn summary(&self, meter: &str, value: f64, resolved: bool, detail: Option<&str>) -> String;
    /// Words a transition carries beside its value (a meter's own alarm flags).
    fn detail(
        &self,
        _meter: &str,
        _usage: &dyn UsageView,
        _now_ms: i64,
        _tz: Tz,
    ) -> Option<String> {
        None
    }
    /// The rule in words for the pages: "more than 100 L within 1 h".
    fn describe(&self) -> String;
    /// How long before it fired the water of an episode began (a continuous flow
    /// fires `duration` after it started); the mail counts the run from there.
    fn began_before_firing(&self) -> Duration {
        Duration::ZERO
    }
    /// The last finding of an episode that just ended, in words for the resolved
    /// notification ("… 72 L in all" rather than "… so far").
    fn finding_ended(&self, finding: &str) -> String {
        finding.to_string()
    }
    /// When the water of the episode at `now_ms` began, when the kind knows it
    /// better than [`AlertKind::began_before_firing`] (a leak's first liter).
    fn run_start(
        &self,
        _meter: &str,
        _usage: &dyn UsageView,
        _now_ms: i64,
        _tz: Tz,
    ) -> Option<i64> {
        None
    }
    /// For a kind that notifies at levels within a period (a budget) instead of
    /// firing and resolving: the period holding `now_ms` and the levels.
    fn levels(&self, _now_ms: i64, _tz: Tz) -> Option<Levels> {
        None
    }
    /// A kind with levels: its use in words for a progress bar, such as
    /// "760 L of 1,000 L this week" (`currency` for money).
    fn progress(&self, _value: f64, _currency: &str) -> Option<String> {
        None
    }
    /// Whether the mail tells the run: when the water started and its liters
    /// (not for a silent sender or a meter's own flags).
    fn tells_run(&self) -> bool {
        true
    }
}

/// A period's levels: each notifies once when the measurement reaches it.
#[derive(Debug, Clone, PartialEq)]
pub struct Levels {
    /// When the period holding "now" began: a new period starts again quietly.
    pub period_start_ms: i64,
    /// Ascending, in the measurement's unit (percent for a budget).
    pub percents: Vec<f64>,
    /// The meter page's range that shows the period: `day`, `week` or `month`.
    pub range: &'static str,
    /// What the levels count against (the limit and the levels): when it changes
    /// (the budget was edited) the period's levels count again from 0.
    pub key: String,
}

/// Reads a kind's keys; every problem goes to the list (and `None` comes back).
pub type ReadKind = fn(&Settings, &mut Vec<Problem>) -> Option<Arc<dyn AlertKind>>;

/// A kind as the config names it: its keys and how to read them.
pub struct KindDef {
    pub name: &'static str,
    /// What it watches, in the owner's words (the alerts page's kind list).
    pub title: &'static str,
    pub keys: &'static [&'static str],
    /// Its keys as a config file (or the alerts page's form) would give them.
    pub example: &'static str,
    pub read: ReadKind,
}

/// Every kind, in the order messages list them.
pub const KINDS: &[&KindDef] = &[
    &volume::DEF,
    &continuous_flow::DEF,
    &night_use::DEF,
    &no_data::DEF,
    &meter_alarm::DEF,
    &leak::DEF,
    &budget::DEF,
];

/// A configured alert, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub meter: String,
    /// Reminder interval while firing; zero: no reminders.
    pub repeat: Duration,
    pub kind: Arc<dyn AlertKind>,
    /// The channels it notifies; empty: all.
    pub notify: Vec<String>,
}

/// The problems of an alert's `kind` and kind keys (empty: it is fine).
pub fn check(settings: &Settings) -> Vec<Problem> {
    let mut problems = Vec::new();
    let def = kind_def(settings, &mut problems);
    check_keys(settings, def, &mut problems);
    if let Some(def) = def {
        (def.read)(settings, &mut problems);
    }
    problems
}

/// The config at `path` with every alert kind checked too.
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    config::load_with(path, &check)
}

/// Config `text` (named `path` in messages) with every alert kind checked too.
pub fn parse_config(text: &str, path: &Path) -> Result<Config, ConfigError> {
    config::parse_with(text, path, &check)
}

/// The alerts of `config` as rules. An alert whose kind does not read (a config
/// not checked with [`check`]) is logged and left out.
pub fn rules(config: &Config) -> Vec<Rule> {
    config
        .alerts
        .iter()
        .filter_map(|a| {
            let mut problems = Vec::new();
            let kind = kind_def(&a.settings, &mut problems)
                .and_then(|def| (def.read)(&a.settings, &mut problems));
            match kind {
                Some(kind) if problems.is_empty() => Some(Rule {
                    name: a.name.clone(),
                    meter: a.meter.clone(),
                    repeat: a.repeat,
                    kind,
                    notify: a.notify.clone(),
                }),
                _ => {
                    let why: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
                    tracing::error!(alert = %a.name, "alert left out: {}", why.join("; "));
                    None
                }
            }
        })
        .collect()
}

fn kind_def(settings: &Settings, problems: &mut Vec<Problem>) -> Option<&'static KindDef> {
    let names: Vec<String> = KINDS.iter().map(|k| format!("\"{}\"", k.name)).collect();
    let choices = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("use {} or {last}", rest.join(", ")),
        _ => format!("use {}", names.join("")),
    };
    if !settings.has("kind") {
        settings.missing(problems, "kind", &choices);
        return None;
    }
    settings.parsed(problems, "kind", |s| {
        KINDS
            .iter()
            .copied()
            .find(|k| k.name == s)
            .ok_or_else(|| format!("\"{s}\" is not an alert kind; {choices}"))
    })
}

/// Unknown keys, and keys that belong to another kind of alert.
fn check_keys(settings: &Settings, def: Option<&KindDef>, problems: &mut Vec<Problem>) {
    let all_kind_keys: Vec<&str> = KINDS.iter().flat_map(|k| k.keys.iter().copied()).collect();
    let mut known: Vec<&str> = vec![ALERT_COMMON_KEYS[0], ALERT_COMMON_KEYS[1], "kind"];
    known.extend(&ALERT_COMMON_KEYS[2..]);
    known.extend(def.map_or(all_kind_keys.as_slice(), |d| d.keys));
    for setting in &settings.entries {
        let key = setting.key.as_str();
        if known.contains(&key) {
            continue;
        }
        let message = match (def, all_kind_keys.contains(&key)) {
            (Some(def), true) => {
                let owners: Vec<&str> = KINDS
                    .iter()
                    .filter(|k| k.keys.contains(&key))
                    .map(|k| k.name)
                    .collect();
                format!(
                    "`{key}` does not apply to a {} alert (it belongs to {} alerts); remove it (this kind takes {})",
                    def.name,
                    owners.join(" and "),
                    def.keys.join(", ")
                )
            }
            _ => match closest(key, &known) {
                Some(guess) => format!("unknown key; did you mean `{guess}`?"),
                None => format!(
                    "unknown key; remove it (known keys here: {})",
                    known.join(", ")
                ),
            },
        };
        settings.bad_key(problems, key, message);
    }
}

/// Reports a required key that is missing: "a volume alert needs it, such as window = \"1h\"".
pub(super) fn need(
    settings: &Settings,
    problems: &mut Vec<Problem>,
    kind: &str,
    key: &str,
    example: &str,
) {
    if !settings.has(key) {
        settings.missing(
            problems,
            key,
            &format!("a {kind} alert needs it, such as {key} = {example}"),
        );
    }
}

/// A positive number of liters (`threshold_liters`).
pub(super) fn threshold(settings: &Settings, problems: &mut Vec<Problem>) -> Option<f64> {
    let x = settings.number(problems, "threshold_liters")?;
    if x > 0.0 {
        Some(x)
    } else {
        settings.bad(
            problems,
            "threshold_liters",
            format!("{x} must be more than 0 liters, such as 100"),
        );
        None
    }
}

/// Milliseconds of a duration, saturating.
pub(super) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

pub(super) const MINUTE: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests;
