//! The alert section of the pages: what each configured alert looks like on the
//! dashboard. Today it lists the rules from the config with the state "not
//! evaluated yet"; the alerting engine fills `state`, `since` and `recent` through
//! [`alert_views`] (the one place to change) once it runs.
//!
//! It does not evaluate anything or send mail.

use crate::config::{AlertKind, AlertRule};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// The engine has not reported on this rule (yet).
    Unknown,
    Ok,
    Firing,
}

impl AlertState {
    pub fn label(self) -> &'static str {
        match self {
            AlertState::Unknown => "not evaluated yet",
            AlertState::Ok => "ok",
            AlertState::Firing => "firing",
        }
    }

    /// The CSS class of the state badge.
    pub fn class(self) -> &'static str {
        match self {
            AlertState::Unknown => "unknown",
            AlertState::Ok => "ok",
            AlertState::Firing => "firing",
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
}

/// The alerts on `meter` (all alerts when `None`), in config order.
pub fn alert_views(rules: &[AlertRule], meter: Option<&str>) -> Vec<AlertView> {
    rules
        .iter()
        .filter(|r| meter.is_none_or(|m| r.meter == m))
        .map(|r| AlertView {
            name: r.name.clone(),
            meter: r.meter.clone(),
            rule: describe(&r.kind),
            state: AlertState::Unknown,
            since: None,
            recent: Vec::new(),
        })
        .collect()
}

fn describe(kind: &AlertKind) -> String {
    let d = |d: &std::time::Duration| humanize(d.as_secs());
    match kind {
        AlertKind::Volume {
            window,
            threshold_liters,
        } => format!("more than {threshold_liters} L within {}", d(window)),
        AlertKind::ContinuousFlow { duration, .. } => {
            format!("water flowing without a pause for {}", d(duration))
        }
        AlertKind::NightUse {
            from,
            to,
            threshold_liters,
        } => format!(
            "more than {threshold_liters} L between {} and {}",
            from.format("%H:%M"),
            to.format("%H:%M")
        ),
        AlertKind::NoData { after } => format!("no pulse for {}", d(after)),
    }
}

fn humanize(secs: u64) -> String {
    match secs {
        s if s > 0 && s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s > 0 && s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s > 0 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rule(meter: &str, kind: AlertKind) -> AlertRule {
        AlertRule {
            name: "r".into(),
            meter: meter.into(),
            kind,
            repeat: Duration::from_secs(4 * 3600),
        }
    }

    #[test]
    fn rules_are_described_in_words_and_filtered_by_meter() {
        let rules = [
            rule(
                "main",
                AlertKind::Volume {
                    window: Duration::from_secs(3600),
                    threshold_liters: 100.0,
                },
            ),
            rule(
                "garden",
                AlertKind::NoData {
                    after: Duration::from_secs(2 * 86_400),
                },
            ),
        ];
        let v = alert_views(&rules, Some("main"));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].rule, "more than 100 L within 1 h");
        assert_eq!(v[0].state, AlertState::Unknown);
        assert_eq!(alert_views(&rules, None)[1].rule, "no pulse for 2 d");
    }
}
