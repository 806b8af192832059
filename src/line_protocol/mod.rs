//! InfluxDB line protocol: parse request bodies and datagrams into [`Point`]s, and
//! write points back out (for export and forwarding).
//!
//! Modelled on influxdb3's `influxdb_line_protocol` crate: no IO, points borrow from
//! the input (only escaped text allocates), and a batch yields one `Result` per line,
//! so a bad line is reported with its line number and text and never loses the good
//! lines around it.
//!
//! This module does not know about meters, configuration or time zones: matching
//! points to meters and turning timestamps into samples is the caller's job
//! ([`Precision::to_unix_ms`] is the one conversion offered here).
//!
//! Compatibility notes (InfluxDB 1.x is the reference where versions differ):
//! - Lines are split on `\n` (an optional `\r` before it is dropped). Unlike InfluxDB,
//!   a newline inside a quoted string value is *not* supported: it ends the line. This
//!   keeps an unterminated quote from swallowing the rest of a batch.
//! - Leading whitespace, trailing whitespace and several spaces between the sections
//!   are accepted, as InfluxDB does. Only the space separates sections; a tab inside a
//!   name is part of the name (as in InfluxDB 1.x).
//! - Floats follow InfluxDB 1.x: `1`, `-1.5`, `1.`, `.5`, `1e3`, `1E-3`; no `+` sign,
//!   no NaN or infinity.

mod error;
mod parse;
mod write;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use error::ParseError;
pub use parse::parse_line;
pub use write::write_line;

/// Timestamp precision of a batch of lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    /// InfluxDB 1.x `precision=m`.
    Minutes,
    /// InfluxDB 1.x `precision=h`.
    Hours,
}

impl Precision {
    /// Parses an InfluxDB `precision=` query value: 1.x (`n`, `u`, `µ`, `ms`, `s`, `m`,
    /// `h`) and 2.x (`ns`, `us`, `ms`, `s`). An empty value means nanoseconds, as in
    /// InfluxDB 1.x. The error names the bad value and lists the good ones.
    pub fn parse(s: &str) -> Result<Precision, String> {
        match s {
            "" | "n" | "ns" => Ok(Precision::Nanoseconds),
            "u" | "us" | "µ" | "µs" => Ok(Precision::Microseconds),
            "ms" => Ok(Precision::Milliseconds),
            "s" => Ok(Precision::Seconds),
            "m" => Ok(Precision::Minutes),
            "h" => Ok(Precision::Hours),
            other => Err(format!(
                "unknown precision '{other}': expected one of ns (or n), us (or u, µ), ms, s, \
                 m (minutes), h (hours)"
            )),
        }
    }

    /// Converts a timestamp in this precision to Unix milliseconds, rounding toward
    /// negative infinity (so -1 ns is -1 ms, the millisecond it falls in). `None` when
    /// the result does not fit an `i64`.
    pub fn to_unix_ms(self, ts: i64) -> Option<i64> {
        match self {
            Precision::Nanoseconds => Some(ts.div_euclid(1_000_000)),
            Precision::Microseconds => Some(ts.div_euclid(1_000)),
            Precision::Milliseconds => Some(ts),
            Precision::Seconds => ts.checked_mul(1_000),
            Precision::Minutes => ts.checked_mul(60_000),
            Precision::Hours => ts.checked_mul(3_600_000),
        }
    }
}

/// One field value, typed as line protocol types it: `1.5`, `12i`, `12u`, `"text"`, `t`.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Float(f64),
    Integer(i64),
    UInteger(u64),
    String(Cow<'a, str>),
    Boolean(bool),
}

impl FieldValue<'_> {
    /// The value as a number, for the numeric types (integers may lose precision
    /// beyond 2^53); `None` for strings and booleans.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Float(v) => Some(*v),
            FieldValue::Integer(v) => Some(*v as f64),
            FieldValue::UInteger(v) => Some(*v as f64),
            FieldValue::String(_) | FieldValue::Boolean(_) => None,
        }
    }
}

/// One parsed line. Text borrows from the input unless it contained escapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Point<'a> {
    pub measurement: Cow<'a, str>,
    /// In input order.
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// In input order; never empty.
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    /// Raw, in the batch's precision (see [`Precision::to_unix_ms`]).
    pub timestamp: Option<i64>,
}

impl<'a> Point<'a> {
    /// The value of tag `key`; when a key repeats, the last one wins.
    pub fn tag(&self, key: &str) -> Option<&str> {
        let (_, value) = self.tags.iter().rev().find(|(k, _)| k == key)?;
        Some(value)
    }

    /// The value of field `key`; when a key repeats, the last one wins (as in InfluxDB).
    pub fn field(&self, key: &str) -> Option<&FieldValue<'a>> {
        let (_, value) = self.fields.iter().rev().find(|(k, _)| k == key)?;
        Some(value)
    }
}

/// A line of a batch that did not parse: where, why, and what it said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse '{snippet}' (line {line_no}): {error}")]
pub struct LineError {
    /// 1-based line number in the input, counting blank and comment lines.
    pub line_no: usize,
    pub error: ParseError,
    /// The offending line, truncated to [`SNIPPET_CHARS`] characters (then `…`).
    pub snippet: String,
}

/// How much of a bad line an error quotes.
pub const SNIPPET_CHARS: usize = 100;

/// Iterates over a whole body or datagram: one `Result` per line that is neither blank
/// nor a `#` comment. Handles `\n` and `\r\n`; a line with invalid UTF-8 is an error
/// for that line only.
pub fn parse_lines(input: &[u8]) -> Lines<'_> {
    Lines {
        rest: input,
        line_no: 0,
    }
}

/// The iterator returned by [`parse_lines`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a [u8],
    line_no: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Point<'a>, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            let (line, rest) = match self.rest.iter().position(|&b| b == b'\n') {
                Some(nl) => (&self.rest[..nl], &self.rest[nl + 1..]),
                None => (self.rest, &self.rest[self.rest.len()..]),
            };
            self.rest = rest;
            self.line_no += 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match line.iter().find(|&&b| !matches!(b, b' ' | b'\t' | b'\r')) {
                None | Some(b'#') => continue,
                Some(_) => {}
            }
            return Some(self.parse(line));
        }
        None
    }
}

impl<'a> Lines<'a> {
    fn parse(&self, line: &'a [u8]) -> Result<Point<'a>, LineError> {
        let line_no = self.line_no;
        match std::str::from_utf8(line) {
            Ok(text) => parse_line(text).map_err(|error| LineError {
                line_no,
                error,
                snippet: snippet(text),
            }),
            Err(e) => {
                let valid = &line[..e.valid_up_to()];
                Err(LineError {
                    line_no,
                    error: ParseError::InvalidUtf8 {
                        column: error::char_column(valid, valid.len()),
                    },
                    snippet: snippet(&String::from_utf8_lossy(line)),
                })
            }
        }
    }
}

/// The line, cut to [`SNIPPET_CHARS`] characters so an error stays readable.
fn snippet(line: &str) -> String {
    match line.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}
