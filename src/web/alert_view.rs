//! The alert section of the pages: what each configured alert looks like on the
//! dashboard: its state (ok, firing, resolving), since when, its last few events and,
//! when mail cannot be sent, a visible "mail is failing: …" line. [`alert_views`] is
//! the one place the section's data is assembled (from `web::alerts::load`, the same
//! read as `/api/v1/alerts`).
//!
//! It does not evaluate anything or send mail.

use chrono::TimeZone;
use chrono_tz::Tz;

use super::alerts::{load, Loaded};
use super::AppState;

/// History lines shown per alert on the pages.
pub const RECENT: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// The engine has not reported on this rule (yet).
    Unknown,
    Ok,
    Firing,
    /// Firing, but the condition is clear and the resolve hold runs.
    Resolving,
    /// A budget reached a level this period.
    Reached,
}

impl AlertState {
    pub fn label(self) -> &'static str {
        match self {
            AlertState::Unknown => "not evaluated yet",
            AlertState::Ok => "ok",
            AlertState::Firing => "firing",
            AlertState::Resolving => "resolving",
            AlertState::Reached => "level reached",
        }
    }

    /// The CSS class of the state badge.
    pub fn class(self) -> &'static str {
        match self {
            AlertState::Unknown => "unknown",
            AlertState::Ok => "ok",
            AlertState::Firing | AlertState::Resolving => "firing",
            AlertState::Reached => "reached",
        }
    }
}

/// One past alert event ("fired", "resolved") with its local time.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEventView {
    pub at: String,
    pub text: String,
}

/// One alert rule as the dashboard shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertView {
    pub name: String,
    pub meter: String,
    /// The rule in words: "more than 100 L within 1h".
    pub rule: String,
    pub state: AlertState,
    /// When the current state began (local time), if known.
    pub since: Option<String>,
    /// The last few events, newest first.
    pub recent: Vec<AlertEventView>,
    /// Why alert mail is not going out (the same for every alert), if it is not.
    pub mail_failing: Option<String>,
    /// The newest notification about this alert that no channel has taken yet
    /// (none configured, as in the demo, or all failing): subject and text, so the
    /// page shows what it says.
    pub waiting: Option<(String, String)>,
    /// A budget's progress this period.
    pub gauge: Option<Gauge>,
}

/// A budget as a bar: the share of the limit used, its levels, and words.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    /// Percent of the limit used (may pass 100).
    pub percent: f64,
    /// The first level, where the bar turns amber (`<meter high>`).
    pub high: f64,
    /// "760 L of 1,000 L this week".
    pub words: String,
}

/// The alerts on `meter` (all alerts when `None`), in config order. A failed read
/// is logged and shows the rules as "not evaluated yet": the page still renders.
pub fn alert_views(state: &AppState, meter: Option<&str>) -> Vec<AlertView> {
    let tz = state.config.timezone;
    match load(state, meter, RECENT) {
        Ok((loaded, mail)) => {
            use crate::alert::AlertStore;
            let pending = state.store.outbox_pending().unwrap_or_default();
            loaded
                .iter()
                .map(|l| {
                    let mut v = view(l, tz, mail.failing.clone());
                    v.gauge = gauge(l, state, tz);
                    v.waiting = pending
                        .iter()
                        .filter(|p| p.notification.alert == v.name)
                        .max_by_key(|p| p.notification.created_ms)
                        .map(|p| (p.notification.subject.clone(), p.notification.text.clone()));
                    v
                })
                .collect()
        }
        Err(e) => {
            tracing::warn!("reading the alert states failed: {e:?}");
            state
                .rules
                .active()
                .iter()
                .filter(|r| meter.is_none_or(|m| r.meter == m))
                .map(|rule| {
                    let l = Loaded {
                        rule: rule.clone(),
                        state: None,
                        history: Vec::new(),
                    };
                    view(&l, tz, None)
                })
                .collect()
        }
    }
}

/// A budget's bar as its latest evaluation saw it (0 before the first).
pub fn gauge(l: &Loaded, state: &AppState, tz: Tz) -> Option<Gauge> {
    let evaluated = l.state.as_ref().and_then(|s| s.evaluated_ms);
    let now = evaluated.unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    let levels = l.rule.kind.levels(now, tz)?;
    let percent = l
        .state
        .as_ref()
        .filter(|_| evaluated.is_some())
        .map_or(0.0, |s| s.value);
    let currency = state
        .config
        .tariff
        .as_ref()
        .map_or("", |t| t.currency.as_str());
    Some(Gauge {
        percent,
        high: levels.percents.first().copied().unwrap_or(100.0),
        words: l.rule.kind.progress(percent, currency)?,
    })
}

/// While firing, what was found ("Drip since Wed 12:00, about 2 L/h, 72 L so
/// far"); otherwise what the rule watches. The banner says the same.
pub fn rule_words(l: &Loaded) -> String {
    l.state
        .as_ref()
        .filter(|s| s.is_firing())
        .and_then(|s| s.finding.clone())
        .unwrap_or_else(|| l.rule.kind.describe())
}

/// The state badge of a loaded alert.
pub fn state_of(l: &Loaded) -> AlertState {
    let reached = l.state.as_ref().is_some_and(|s| s.level > 0);
    match l.phase() {
        "ok" if reached => AlertState::Reached,
        "ok" => AlertState::Ok,
        "firing" => AlertState::Firing,
        "resolving" => AlertState::Resolving,
        _ => AlertState::Unknown,
    }
}

/// The alert's history lines in words, newest first.
pub fn history_views(l: &Loaded, tz: Tz) -> Vec<AlertEventView> {
    l.history
        .iter()
        .map(|h| AlertEventView {
            at: local(h.at_ms, tz),
            text: h
                .summary
                .strip_prefix("[watermeter] ")
                .unwrap_or(&h.summary)
                .to_owned(),
        })
        .collect()
}

fn view(l: &Loaded, tz: Tz, mail_failing: Option<String>) -> AlertView {
    AlertView {
        name: l.rule.name.clone(),
        meter: l.rule.meter.clone(),
        rule: rule_words(l),
        state: state_of(l),
        since: l.since_ms().map(|t| local(t, tz)),
        recent: history_views(l, tz),
        mail_failing,
        waiting: None,
        gauge: None,
    }
}

fn local(ts_ms: i64, tz: Tz) -> String {
    match tz.timestamp_millis_opt(ts_ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => ts_ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::kinds::volume::Volume;
    use crate::alert::{HistoryEntry, Rule, TransitionKind};
    use std::sync::Arc;
    use std::time::Duration;

    fn volume() -> Rule {
        Rule {
            name: "r".into(),
            meter: "main".into(),
            repeat: Duration::from_secs(4 * 3600),
            kind: Arc::new(Volume {
                window: Duration::from_secs(3600),
                threshold_liters: 100.0,
            }),
            notify: Vec::new(),
        }
    }

    #[test]
    fn the_page_describes_the_rule_in_its_kinds_words() {
        let r = volume();
        let l = Loaded {
            rule: r.clone(),
            state: None,
            history: Vec::new(),
        };
        assert_eq!(
            view(&l, chrono_tz::UTC, None).rule,
            "more than 100 L within 1 h"
        );
    }

    #[test]
    fn a_never_evaluated_alert_says_so() {
        let r = volume();
        let l = Loaded {
            rule: r.clone(),
            state: None,
            history: Vec::new(),
        };
        let v = view(&l, chrono_tz::UTC, None);
        assert_eq!(v.state, AlertState::Unknown);
        assert_eq!(v.since, None);
    }

    #[test]
    fn a_firing_alert_shows_since_when_its_events_and_failing_mail() {
        let r = volume();
        let l = Loaded {
            rule: r.clone(),
            state: Some(crate::alert::AlertState {
                firing_since: Some(3_600_000),
                ..Default::default()
            }),
            history: vec![HistoryEntry {
                at_ms: 3_600_000,
                kind: TransitionKind::Firing,
                value: 120.0,
                summary: "[watermeter] House: 120 L in 1 h (limit 100 L)".into(),
            }],
        };
        let v = view(&l, chrono_tz::Europe::Vienna, Some("refused".into()));
        assert_eq!(v.state, AlertState::Firing);
        assert_eq!(v.since.as_deref(), Some("1970-01-01 02:00"));
        assert_eq!(v.recent[0].text, "House: 120 L in 1 h (limit 100 L)");
        assert_eq!(v.mail_failing.as_deref(), Some("refused"));
    }
}
