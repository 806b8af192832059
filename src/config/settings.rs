//! The keys of one table that `config` keeps as written, for a higher layer to
//! read: an `[[alert]]`'s kind-specific keys (`window`, `threshold_liters`, …)
//! belong to the kind's own file under `alert/`, which config does not know.
//!
//! [`Settings`] keeps each key's value and line, and reads them with the same
//! checks and the same words as the rest of the config (a wrong type, a bad
//! duration, a missing key at the table's header), so `check-config` reports a
//! kind's problems exactly like any other. Pure.

use std::time::Duration;

use chrono::NaiveTime;

use super::values;
use super::Problem;

/// A value as written, reduced to what a setting can be.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    /// A list whose items are all numbers (`levels = [75, 100]`).
    Numbers(Vec<f64>),
    /// Anything else (a table, a date, a list of other things), named for messages.
    Other(&'static str),
}

impl RawValue {
    fn type_name(&self) -> &'static str {
        match self {
            RawValue::Text(_) => "a string",
            RawValue::Integer(_) => "a whole number",
            RawValue::Float(_) => "a number with a decimal point",
            RawValue::Bool(_) => "true/false",
            RawValue::Numbers(_) => "a list of numbers",
            RawValue::Other(name) => name,
        }
    }
}

/// One key of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub key: String,
    pub value: RawValue,
    /// The line of the key (for "unknown key") and of its value (for a bad value).
    pub key_line: Option<usize>,
    pub value_line: Option<usize>,
}

/// The kept keys of one table, with its key path (`alert[0]`) and header line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    pub path: String,
    pub header_line: Option<usize>,
    pub entries: Vec<Setting>,
}

impl Settings {
    /// Settings without lines, such as from a form: `("window", Text("1h"))`.
    pub fn from_pairs(path: &str, pairs: Vec<(&str, RawValue)>) -> Settings {
        Settings {
            path: path.to_string(),
            header_line: None,
            entries: pairs
                .into_iter()
                .map(|(key, value)| Setting {
                    key: key.to_string(),
                    value,
                    key_line: None,
                    value_line: None,
                })
                .collect(),
        }
    }

    /// `alert[0].window`.
    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn get(&self, key: &str) -> Option<&Setting> {
        self.entries.iter().find(|s| s.key == key)
    }

    /// A problem about the value of `key` (at its line).
    pub fn bad(&self, problems: &mut Vec<Problem>, key: &str, message: impl Into<String>) {
        problems.push(Problem {
            line: self.get(key).and_then(|s| s.value_line),
            key: self.key_path(key),
            message: message.into(),
        });
    }

    /// A problem about `key` itself (unknown, or of another kind), at the key's line.
    pub fn bad_key(&self, problems: &mut Vec<Problem>, key: &str, message: impl Into<String>) {
        problems.push(Problem {
            line: self.get(key).and_then(|s| s.key_line),
            key: self.key_path(key),
            message: message.into(),
        });
    }

    /// The required `key` is missing (reported at the table's header).
    pub fn missing(&self, problems: &mut Vec<Problem>, key: &str, message: &str) {
        problems.push(Problem {
            line: self.header_line,
            key: self.key_path(key),
            message: format!("`{key}` is missing; {message}"),
        });
    }

    /// A string value.
    pub fn string(&self, problems: &mut Vec<Problem>, key: &str) -> Option<&str> {
        match &self.get(key)?.value {
            RawValue::Text(s) => Some(s),
            other => self.wrong_type(problems, key, "a string in quotes", other),
        }
    }

    /// An integer or a float, finite.
    pub fn number(&self, problems: &mut Vec<Problem>, key: &str) -> Option<f64> {
        let x = match &self.get(key)?.value {
            RawValue::Integer(n) => *n as f64,
            RawValue::Float(x) => *x,
            other => return self.wrong_type(problems, key, "a number", other),
        };
        if x.is_finite() {
            Some(x)
        } else {
            self.bad(problems, key, "must be a finite number such as 1.5");
            None
        }
    }

    /// A list of finite numbers (`levels = [75, 100]`).
    pub fn numbers(&self, problems: &mut Vec<Problem>, key: &str) -> Option<Vec<f64>> {
        match &self.get(key)?.value {
            RawValue::Numbers(xs) if xs.iter().all(|x| x.is_finite()) => Some(xs.clone()),
            RawValue::Numbers(_) => {
                self.bad(problems, key, "must hold finite numbers such as [75, 100]");
                None
            }
            other => self.wrong_type(problems, key, "a list of numbers such as [75, 100]", other),
        }
    }

    /// A string read by `parse`; its error sentence becomes the problem.
    pub fn parsed<T>(
        &self,
        problems: &mut Vec<Problem>,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.string(problems, key)?;
        match parse(text) {
            Ok(v) => Some(v),
            Err(message) => {
                self.bad(problems, key, message);
                None
            }
        }
    }

    /// A duration string ("1h30m") within `min..=max`.
    pub fn duration(
        &self,
        problems: &mut Vec<Problem>,
        key: &str,
        min: Duration,
        max: Option<Duration>,
    ) -> Option<Duration> {
        let value = self.parsed(problems, key, values::parse_duration)?;
        if value >= min && max.is_none_or(|max| value <= max) {
            return Some(value);
        }
        let range = match max {
            Some(max) => format!(
                "from {} to {}",
                values::format_duration(min),
                values::format_duration(max)
            ),
            None => format!("of at least {}", values::format_duration(min)),
        };
        let written = self.string(problems, key).unwrap_or_default().to_string();
        self.bad(
            problems,
            key,
            format!("\"{written}\" is out of range; use a duration {range}"),
        );
        None
    }

    /// A local time of day, "HH:MM".
    pub fn time_of_day(&self, problems: &mut Vec<Problem>, key: &str) -> Option<NaiveTime> {
        self.parsed(problems, key, values::parse_time_of_day)
    }

    fn wrong_type<T>(
        &self,
        problems: &mut Vec<Problem>,
        key: &str,
        expected: &str,
        found: &RawValue,
    ) -> Option<T> {
        let hint = match (expected, found) {
            ("a number", RawValue::Text(_)) => "; remove the quotes",
            (
                "a string in quotes",
                RawValue::Integer(_) | RawValue::Float(_) | RawValue::Bool(_),
            ) => "; put the value in quotes",
            _ => "",
        };
        let message = format!("must be {expected}, not {}{hint}", found.type_name());
        self.bad(problems, key, message);
        None
    }
}

/// A duration in words as the config writes it ("15m", "1h30m").
pub fn format_duration(d: Duration) -> String {
    values::format_duration(d)
}

/// The candidate closest to `word` (a typo or a shortened form), as for any key.
pub use super::values::closest;
