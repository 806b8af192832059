//! Typed, spanned access to a parsed TOML document.
//!
//! A [`Table`] hands out values with their key path and byte span; every wrong
//! type or unknown key becomes a [`Problem`] in [`Problems`] (with its line)
//! and the caller just sees `None`, so validation goes on and reports everything.
//! This module knows nothing about watermeter's keys; `validate*` does.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::values::closest;
use super::Problem;

/// Problems found so far, and the line index used to place them.
pub(super) struct Problems {
    line_starts: Vec<usize>,
    /// Each problem with the byte offset it is about, for sorting.
    list: Vec<(usize, Problem)>,
}

/// A value read from the document, with where it came from.
#[derive(Clone)]
pub(super) struct Field<T> {
    pub value: T,
    /// Key path such as `meter[0].gpio.pin`.
    pub key: String,
    pub span: Range<usize>,
}

/// One TOML table (the root, a `[header]` table, an inline table or one
/// entry of an array of tables) and its key path.
pub(super) struct Table<'t, 'i> {
    pub path: String,
    /// `None` for the root, which has no header line.
    pub span: Option<Range<usize>>,
    map: &'t DeTable<'i>,
}

impl Problems {
    pub fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Problems {
            line_starts,
            list: Vec::new(),
        }
    }

    /// The 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    pub fn add(&mut self, span: Option<&Range<usize>>, key: &str, message: impl Into<String>) {
        let problem = Problem {
            line: span.map(|s| self.line_of(s.start)),
            key: key.to_string(),
            message: message.into(),
        };
        self.list
            .push((span.map_or(usize::MAX, |s| s.start), problem));
    }

    /// A problem about the value of `field`.
    pub fn bad<T>(&mut self, field: &Field<T>, message: impl Into<String>) {
        self.add(Some(&field.span), &field.key, message);
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// A problem found by a higher layer over [`super::settings::Settings`]: sorted
    /// in at the start of its line.
    pub fn push(&mut self, problem: Problem) {
        let offset = problem
            .line
            .and_then(|l| self.line_starts.get(l.saturating_sub(1)).copied())
            .unwrap_or(usize::MAX);
        self.list.push((offset, problem));
    }

    /// All problems in file order; problems without a line go last.
    pub fn into_sorted(mut self) -> Vec<Problem> {
        self.list.sort_by_key(|(offset, _)| *offset);
        self.list.into_iter().map(|(_, p)| p).collect()
    }
}

impl<'t, 'i> Table<'t, 'i> {
    pub fn root(doc: &'t DeTable<'i>) -> Self {
        Table {
            path: String::new(),
            span: None,
            map: doc,
        }
    }

    /// The full key path of `key` in this table.
    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Every key of this table with the span of the key itself.
    pub fn keys(&self) -> impl Iterator<Item = (&'t str, Range<usize>)> + 't {
        self.map.keys().map(|k| (k.get_ref().as_ref(), k.span()))
    }

    /// Reports every key that is not in `known`, suggesting the closest one.
    pub fn check_keys(&self, problems: &mut Problems, known: &[&str]) {
        for (key, span) in self.keys() {
            if !known.contains(&key) {
                let message = match closest(key, known) {
                    Some(guess) => format!("unknown key; did you mean `{guess}`?"),
                    None => format!(
                        "unknown key; remove it (known keys here: {})",
                        known.join(", ")
                    ),
                };
                problems.add(Some(&span), &self.key_path(key), message);
            }
        }
    }

    /// The value of `key` as written, for [`super::settings::Settings`], with its span.
    pub fn raw(&self, key: &str) -> Option<(super::settings::RawValue, Range<usize>)> {
        use super::settings::RawValue;
        let (value, field) = self.get(key)?;
        let raw = match value {
            DeValue::String(s) => RawValue::Text(s.to_string()),
            DeValue::Integer(n) => match i64::from_str_radix(n.as_str(), n.radix()) {
                Ok(n) => RawValue::Integer(n),
                Err(_) => RawValue::Other("a whole number too large"),
            },
            DeValue::Float(x) => match x.as_str().parse::<f64>() {
                Ok(x) => RawValue::Float(x),
                Err(_) => RawValue::Other("a number with a decimal point"),
            },
            DeValue::Boolean(b) => RawValue::Bool(*b),
            DeValue::Array(items) => {
                let numbers: Option<Vec<f64>> = items
                    .iter()
                    .map(|item| match item.get_ref() {
                        DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix())
                            .ok()
                            .map(|n| n as f64),
                        DeValue::Float(x) => x.as_str().parse::<f64>().ok(),
                        _ => None,
                    })
                    .collect();
                match numbers {
                    Some(xs) => RawValue::Numbers(xs),
                    None => RawValue::Other(type_name(value)),
                }
            }
            other => RawValue::Other(type_name(other)),
        };
        Some((raw, field.span))
    }

    /// Reports that the required `key` is missing, at this table's header.
    pub fn missing(&self, problems: &mut Problems, key: &str, message: &str) {
        let message = format!("`{key}` is missing; {message}");
        problems.add(self.span.as_ref(), &self.key_path(key), message);
    }

    pub fn string(&self, problems: &mut Problems, key: &str) -> Option<Field<&'t str>> {
        let (value, field) = self.get(key)?;
        match value {
            DeValue::String(s) => Some(field.with(s.as_ref())),
            other => wrong_type(problems, &field, "a string in quotes", other),
        }
    }

    pub fn boolean(&self, problems: &mut Problems, key: &str) -> Option<Field<bool>> {
        let (value, field) = self.get(key)?;
        match value {
            DeValue::Boolean(b) => Some(field.with(*b)),
            other => wrong_type(problems, &field, "true or false", other),
        }
    }

    pub fn integer(&self, problems: &mut Problems, key: &str) -> Option<Field<i64>> {
        let (value, field) = self.get(key)?;
        match value {
            DeValue::Integer(n) => match i64::from_str_radix(n.as_str(), n.radix()) {
                Ok(n) => Some(field.with(n)),
                Err(_) => {
                    problems.bad(&field, format!("{n} is too large for a whole number"));
                    None
                }
            },
            other => wrong_type(problems, &field, "a whole number", other),
        }
    }

    /// An integer or a float, finite.
    pub fn number(&self, problems: &mut Problems, key: &str) -> Option<Field<f64>> {
        let (value, field) = self.get(key)?;
        let number = match value {
            DeValue::Integer(n) => i64::from_str_radix(n.as_str(), n.radix())
                .ok()
                .map(|n| n as f64),
            DeValue::Float(x) => x.as_str().parse::<f64>().ok(),
            other => return wrong_type(problems, &field, "a number", other),
        };
        match number {
            Some(x) if x.is_finite() => Some(field.with(x)),
            _ => {
                problems.bad(&field, "must be a finite number such as 1.5");
                None
            }
        }
    }

    /// A date-time written as a string or as a bare TOML date-time, as text.
    pub fn datetime_text(&self, problems: &mut Problems, key: &str) -> Option<Field<String>> {
        let (value, field) = self.get(key)?;
        match value {
            DeValue::String(s) => Some(field.with(s.to_string())),
            DeValue::Datetime(dt) => Some(field.with(dt.to_string())),
            other => wrong_type(problems, &field, "a date and time in quotes", other),
        }
    }

    /// A string, or a list of strings (`field = "liters"` or `field = ["a", "b"]`).
    pub fn strings(
        &self,
        problems: &mut Problems,
        key: &str,
    ) -> Option<Field<Vec<Field<&'t str>>>> {
        let (value, field) = self.get(key)?;
        let items = match value {
            DeValue::String(s) => vec![field.with(s.as_ref())],
            DeValue::Array(array) => {
                let mut items = Vec::new();
                for (i, item) in array.iter().enumerate() {
                    let item_field = Field {
                        value: (),
                        key: format!("{}[{i}]", field.key),
                        span: item.span(),
                    };
                    match item.get_ref() {
                        DeValue::String(s) => items.push(item_field.with(s.as_ref())),
                        other => {
                            wrong_type::<()>(problems, &item_field, "a string in quotes", other);
                        }
                    }
                }
                items
            }
            other => return wrong_type(problems, &field, "a string or a list of strings", other),
        };
        Some(field.with(items))
    }

    /// A sub-table (`[a.b]` header, dotted keys or an inline table).
    pub fn table(&self, problems: &mut Problems, key: &str) -> Option<Table<'t, 'i>> {
        let (value, field) = self.get(key)?;
        match value {
            DeValue::Table(map) => Some(Table {
                path: field.key,
                span: Some(field.span),
                map,
            }),
            other => wrong_type(
                problems,
                &field,
                &format!("a table, written [{}]", header_name(&field.key)),
                other,
            ),
        }
    }

    /// An array of tables (`[[key]]`); each entry's path is `key[i]`.
    pub fn tables(&self, problems: &mut Problems, key: &str) -> Vec<Table<'t, 'i>> {
        let Some((value, field)) = self.get(key) else {
            return Vec::new();
        };
        let DeValue::Array(array) = value else {
            let expected = format!("a list of tables, each one starting with [[{key}]]");
            wrong_type::<()>(problems, &field, &expected, value);
            return Vec::new();
        };
        let mut tables = Vec::new();
        for (i, item) in array.iter().enumerate() {
            let path = format!("{}[{i}]", field.key);
            match item.get_ref() {
                DeValue::Table(map) => tables.push(Table {
                    path,
                    span: Some(item.span()),
                    map,
                }),
                other => {
                    let item_field = Field {
                        value: (),
                        key: path,
                        span: item.span(),
                    };
                    wrong_type::<()>(problems, &item_field, &format!("a [[{key}]] table"), other);
                }
            }
        }
        tables
    }

    fn get(&self, key: &str) -> Option<(&'t DeValue<'i>, Field<()>)> {
        let value: &'t Spanned<DeValue<'i>> = self.map.get(key)?;
        let field = Field {
            value: (),
            key: self.key_path(key),
            span: value.span(),
        };
        Some((value.get_ref(), field))
    }
}

impl Field<()> {
    fn with<T>(&self, value: T) -> Field<T> {
        Field {
            value,
            key: self.key.clone(),
            span: self.span.clone(),
        }
    }
}

fn wrong_type<T>(
    problems: &mut Problems,
    field: &Field<()>,
    expected: &str,
    found: &DeValue<'_>,
) -> Option<T> {
    let hint = match (expected, found) {
        ("a whole number" | "a number" | "true or false", DeValue::String(_)) => {
            "; remove the quotes"
        }
        ("a string in quotes", DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_)) => {
            "; put the value in quotes"
        }
        _ => "",
    };
    let message = format!("must be {expected}, not {}{hint}", type_name(found));
    problems.bad(field, message);
    None
}

/// `meter[0].gpio` → `meter.gpio`, the way a table header names it.
fn header_name(key: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in key.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            _ if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "a whole number",
        DeValue::Float(_) => "a number with a decimal point",
        DeValue::Boolean(_) => "true/false",
        DeValue::Datetime(_) => "a date/time",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}
