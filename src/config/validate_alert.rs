//! `[[alert]]` tables: the keys common to every alert (`name`, `meter`, `repeat`).
//! `kind` and the kind's own keys are kept as [`Settings`] and checked by
//! `check_kind`, which the caller passes in: the kinds live in `alert/kinds/`,
//! above config. `[smtp]` is in `validate_smtp`.

use std::time::Duration;

use super::reader::{Problems, Table};
use super::settings::{Setting, Settings};
use super::values::closest;
use super::values::{self, format_duration};
use super::{AlertConfig, MeterConfig, Problem};

/// The keys every alert has; `kind` and the kind's own keys are kept as
/// [`Settings`] for the kind's file under `alert/` to read.
pub const COMMON_KEYS: &[&str] = &["name", "meter", "repeat", "notify"];

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// The valid alert rules; every problem goes to `problems`.
pub(super) fn alerts(
    root: &Table<'_, '_>,
    meters: &[MeterConfig],
    channels: &[&str],
    has_tariff: bool,
    check_kind: &dyn Fn(&Settings) -> Vec<Problem>,
    problems: &mut Problems,
) -> Vec<AlertConfig> {
    let ids: Vec<&str> = meters.iter().map(|m| m.id.as_str()).collect();
    let mut names: Vec<String> = Vec::new();
    let mut rules = Vec::new();
    for t in root.tables(problems, "alert") {
        let name = match t.string(problems, "name") {
            Some(f) if f.value.trim().is_empty() => {
                problems.bad(
                    &f,
                    "must not be empty; write what the alert is about, it becomes the mail subject",
                );
                None
            }
            Some(f) if f.value.chars().any(char::is_control) => {
                problems.bad(
                    &f,
                    "must be one line of text without control characters (a line break, a tab); it becomes the mail subject and a push title",
                );
                None
            }
            Some(f) if f.value.chars().count() > super::values::MAX_NAME_CHARS => {
                let message = format!(
                    "is {} characters long; an alert's name may have at most {} (it becomes the mail subject and a push title)",
                    f.value.chars().count(),
                    super::values::MAX_NAME_CHARS
                );
                problems.bad(&f, message);
                None
            }
            Some(f) if names.iter().any(|n| n == f.value) => {
                let message = format!(
                    "another alert is already named \"{}\"; give every alert its own name",
                    f.value
                );
                problems.bad(&f, message);
                None
            }
            Some(f) => {
                names.push(f.value.to_string());
                Some(f.value.to_string())
            }
            None => {
                if !t.has("name") {
                    t.missing(
                        problems,
                        "name",
                        "every alert needs a name, such as name = \"More than 100 L in one hour\"",
                    );
                }
                None
            }
        };
        let meter = meter_ref(&t, &ids, problems);
        // "0s" turns reminders off (docs/alerts.md); anything else is at least 5 minutes.
        let repeat = match t.string(problems, "repeat") {
            Some(f) if values::parse_duration(f.value).is_ok_and(|d| d.is_zero()) => {
                Some(Duration::ZERO)
            }
            _ => duration(&t, problems, "repeat", 5 * MINUTE, None),
        };
        let notify: Vec<String> = t
            .strings(problems, "notify")
            .map(|list| {
                list.value
                    .iter()
                    .filter_map(|f| {
                        if channels.contains(&f.value) {
                            Some(f.value.to_string())
                        } else {
                            let known = if channels.is_empty() { "none is configured".to_string() } else { channels.join(", ") };
                            problems.bad(f, format!("there is no channel \"{}\"; name a [[notify]] channel or \"email\" ([smtp]); known: {known}", f.value));
                            None
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let settings = settings(&t, problems);
        let mut kind_problems = check_kind(&settings);
        if !has_tariff && settings.has("limit_cost") {
            settings.bad(
                &mut kind_problems,
                "limit_cost",
                "a budget in money needs prices: add a [tariff] table, or give limit_liters instead",
            );
        }
        let kind_ok = kind_problems.is_empty();
        for p in kind_problems {
            problems.push(p);
        }
        if let (Some(name), Some(meter), true) = (name, meter, kind_ok) {
            rules.push(AlertConfig {
                name,
                meter,
                repeat: repeat.unwrap_or(4 * HOUR),
                notify,
                settings,
            });
        }
    }
    rules
}

fn meter_ref(t: &Table<'_, '_>, ids: &[&str], problems: &mut Problems) -> Option<String> {
    let Some(f) = t.string(problems, "meter") else {
        if !t.has("meter") {
            t.missing(
                problems,
                "meter",
                &format!("name the meter to watch, one of: {}", ids.join(", ")),
            );
        }
        return None;
    };
    if ids.contains(&f.value) {
        return Some(f.value.to_string());
    }
    let hint = match closest(f.value, ids) {
        Some(guess) => format!("did you mean \"{guess}\"?"),
        None => format!("use the id of a [[meter]]: {}", ids.join(", ")),
    };
    problems.bad(
        &f,
        format!("there is no meter with id \"{}\"; {hint}", f.value),
    );
    None
}

/// Every key but the common ones, as written, with its lines.
fn settings(t: &Table<'_, '_>, problems: &Problems) -> Settings {
    let entries = t
        .keys()
        .filter(|(key, _)| !COMMON_KEYS.contains(key))
        .filter_map(|(key, key_span)| {
            let (value, span) = t.raw(key)?;
            Some(Setting {
                key: key.to_string(),
                value,
                key_line: Some(problems.line_of(key_span.start)),
                value_line: Some(problems.line_of(span.start)),
            })
        })
        .collect();
    Settings {
        path: t.path.clone(),
        header_line: t.span.as_ref().map(|s| problems.line_of(s.start)),
        entries,
    }
}

/// An optional duration string within `min..=max`.
fn duration(
    t: &Table<'_, '_>,
    problems: &mut Problems,
    key: &str,
    min: Duration,
    max: Option<Duration>,
) -> Option<Duration> {
    let f = t.string(problems, key)?;
    let value = match values::parse_duration(f.value) {
        Ok(value) => value,
        Err(message) => {
            problems.bad(&f, message);
            return None;
        }
    };
    let in_range = value >= min && max.is_none_or(|max| value <= max);
    if in_range {
        return Some(value);
    }
    let range = match max {
        Some(max) => format!("from {} to {}", format_duration(min), format_duration(max)),
        None => format!("of at least {}", format_duration(min)),
    };
    problems.bad(
        &f,
        format!("\"{}\" is out of range; use a duration {range}", f.value),
    );
    None
}
