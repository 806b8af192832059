//! `[[alert]]` rules: the keys depend on `kind`, and a key of another kind
//! gets a message naming the kind it belongs to. `[smtp]` is in `validate_smtp`.

use std::time::Duration;

use super::reader::{closest, Problems, Table};
use super::validate::parsed;
use super::values::{self, format_duration};
use super::{AlertKind, AlertRule, MeterConfig};

const COMMON_KEYS: &[&str] = &["name", "meter", "kind", "repeat"];
const KIND_KEYS: &[&str] = &[
    "window",
    "threshold_liters",
    "duration",
    "quiet",
    "from",
    "to",
    "after",
];

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Volume,
    ContinuousFlow,
    NightUse,
    NoData,
}

impl Kind {
    const ALL: [(&'static str, Kind); 4] = [
        ("volume", Kind::Volume),
        ("continuous_flow", Kind::ContinuousFlow),
        ("night_use", Kind::NightUse),
        ("no_data", Kind::NoData),
    ];

    fn name(self) -> &'static str {
        Kind::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("", |(n, _)| n)
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Volume => &["window", "threshold_liters"],
            Kind::ContinuousFlow => &["duration", "quiet"],
            Kind::NightUse => &["from", "to", "threshold_liters"],
            Kind::NoData => &["after"],
        }
    }
}

/// The valid alert rules; every problem goes to `problems`.
pub(super) fn alerts(
    root: &Table<'_, '_>,
    meters: &[MeterConfig],
    problems: &mut Problems,
) -> Vec<AlertRule> {
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
        let kind = kind(&t, problems);
        check_alert_keys(&t, kind, problems);
        let repeat = duration(&t, problems, "repeat", 5 * MINUTE, None).unwrap_or(4 * HOUR);
        let alert_kind = kind.and_then(|k| kind_settings(&t, k, problems));
        if let (Some(name), Some(meter), Some(kind)) = (name, meter, alert_kind) {
            rules.push(AlertRule {
                name,
                meter,
                kind,
                repeat,
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

fn kind(t: &Table<'_, '_>, problems: &mut Problems) -> Option<Kind> {
    let choices = "use \"volume\", \"continuous_flow\", \"night_use\" or \"no_data\"";
    if !t.has("kind") {
        t.missing(problems, "kind", choices);
        return None;
    }
    parsed(t, problems, "kind", |s| {
        Kind::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, k)| *k)
            .ok_or_else(|| format!("\"{s}\" is not an alert kind; {choices}"))
    })
}

/// Unknown keys, and keys that belong to another kind of alert.
fn check_alert_keys(t: &Table<'_, '_>, kind: Option<Kind>, problems: &mut Problems) {
    let mut known: Vec<&str> = COMMON_KEYS.to_vec();
    known.extend(kind.map_or(KIND_KEYS, Kind::keys));
    for (key, span) in t.keys() {
        if known.contains(&key) {
            continue;
        }
        let message = match (kind, KIND_KEYS.contains(&key)) {
            (Some(kind), true) => {
                let owners: Vec<&str> = Kind::ALL
                    .iter()
                    .filter(|(_, k)| k.keys().contains(&key))
                    .map(|(n, _)| *n)
                    .collect();
                format!(
                    "`{key}` does not apply to a {} alert (it belongs to {} alerts); remove it (this kind takes {})",
                    kind.name(),
                    owners.join(" and "),
                    kind.keys().join(", ")
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
        problems.add(Some(&span), &t.key_path(key), message);
    }
}

fn kind_settings(t: &Table<'_, '_>, kind: Kind, problems: &mut Problems) -> Option<AlertKind> {
    let need = |key: &str, example: &str, problems: &mut Problems| {
        if !t.has(key) {
            t.missing(
                problems,
                key,
                &format!(
                    "a {} alert needs it, such as {key} = {example}",
                    kind.name()
                ),
            );
        }
    };
    match kind {
        Kind::Volume => {
            need("window", "\"1h\"", problems);
            need("threshold_liters", "100", problems);
            let window = duration(t, problems, "window", 15 * MINUTE, Some(7 * DAY));
            let threshold_liters = threshold(t, problems);
            Some(AlertKind::Volume {
                window: window?,
                threshold_liters: threshold_liters?,
            })
        }
        Kind::ContinuousFlow => {
            need("duration", "\"2h\"", problems);
            let duration_ = duration(t, problems, "duration", 15 * MINUTE, None);
            let quiet = duration(t, problems, "quiet", MINUTE, None).unwrap_or(15 * MINUTE);
            Some(AlertKind::ContinuousFlow {
                duration: duration_?,
                quiet,
            })
        }
        Kind::NightUse => {
            need("from", "\"00:00\"", problems);
            need("to", "\"05:00\"", problems);
            need("threshold_liters", "10", problems);
            let from = parsed(t, problems, "from", values::parse_time_of_day);
            let to = parsed(t, problems, "to", values::parse_time_of_day);
            let threshold_liters = threshold(t, problems);
            if from.is_some() && from == to {
                // Only reached when `to` is a valid string, so this reports nothing twice.
                if let Some(f) = t.string(problems, "to") {
                    problems.bad(&f, "is the same time as `from`; the night must have a length, such as from = \"00:00\", to = \"05:00\"");
                }
                return None;
            }
            Some(AlertKind::NightUse {
                from: from?,
                to: to?,
                threshold_liters: threshold_liters?,
            })
        }
        Kind::NoData => {
            need("after", "\"30m\"", problems);
            let after = duration(t, problems, "after", MINUTE, None);
            Some(AlertKind::NoData { after: after? })
        }
    }
}

fn threshold(t: &Table<'_, '_>, problems: &mut Problems) -> Option<f64> {
    let f = t.number(problems, "threshold_liters")?;
    if f.value > 0.0 {
        Some(f.value)
    } else {
        problems.bad(
            &f,
            format!("{} must be more than 0 liters, such as 100", f.value),
        );
        None
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
