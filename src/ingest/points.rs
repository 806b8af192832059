//! Line protocol → samples: which meter a point belongs to and how many liters it
//! carries. Pure: the caller passes the receive time.
//!
//! A meter matches a point by measurement and tags (every configured tag must be
//! present with its value) and takes its water from the configured field: liters
//! (the first present of e.g. `liters`, `value`) or a cumulative counter. A
//! counter meter also accepts a plain `liters` point, which is what `export` writes.

use std::collections::HashMap;

use super::line_protocol::{FieldValue, Point, Precision};
use super::{MeterIdx, Sample, SampleValue};
use crate::config::{FieldSelector, MeterConfig};

/// Why a point was not stored; the label is the `reason` of the metrics counter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("no configured meter takes measurement '{measurement}' with tags {tags}")]
    NoMeter { measurement: String, tags: String },
    #[error("meter '{meter}' needs a numeric field {expected}, and this point has none")]
    NoField { meter: String, expected: String },
    #[error("field '{field}' must be a non-negative number of liters, not {value}")]
    BadValue { field: String, value: String },
    #[error("timestamp {0} is outside the years 1970 to 2100 at the given precision")]
    BadTimestamp(i64),
}

impl Rejection {
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::NoMeter { .. } => "no_meter",
            Rejection::NoField { .. } => "no_field",
            Rejection::BadValue { .. } => "bad_value",
            Rejection::BadTimestamp(_) => "bad_timestamp",
        }
    }
}

/// Latest instant a point may carry (2100-01-01).
const MAX_TS_MS: i64 = 4_102_444_800_000;

pub struct Matcher {
    meters: Vec<(String, crate::config::LineProtocolMatch)>,
    by_measurement: HashMap<String, Vec<usize>>,
}

impl Matcher {
    pub fn new(meters: &[MeterConfig]) -> Matcher {
        let mut by_measurement: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, m) in meters.iter().enumerate() {
            by_measurement.entry(m.line_protocol.measurement.clone()).or_default().push(i);
        }
        Matcher {
            meters: meters.iter().map(|m| (m.id.clone(), m.line_protocol.clone())).collect(),
            by_measurement,
        }
    }

    /// The sample a point stands for; points without a timestamp get `now_ms`.
    pub fn sample(&self, p: &Point<'_>, precision: Precision, now_ms: i64) -> Result<Sample, Rejection> {
        let idx = self.meter_of(p)?;
        let (id, lp) = &self.meters[idx];
        let value = match &lp.field {
            FieldSelector::Counter(name) => match p.field(name) {
                Some(v) => SampleValue::Counter(liters(name, v)?),
                None => SampleValue::Liters(liters_field(p, &["liters".to_string()], id, name)?),
            },
            FieldSelector::Liters(names) => SampleValue::Liters(liters_field(p, names, id, &names.join(" or "))?),
        };
        let ts_ms = match p.timestamp {
            None => now_ms,
            Some(ts) => precision
                .to_unix_ms(ts)
                .filter(|t| (0..MAX_TS_MS).contains(t))
                .ok_or(Rejection::BadTimestamp(ts))?,
        };
        Ok(Sample { meter: idx as MeterIdx, ts_ms, value })
    }

    fn meter_of(&self, p: &Point<'_>) -> Result<usize, Rejection> {
        let candidates = self.by_measurement.get(p.measurement.as_ref());
        candidates
            .into_iter()
            .flatten()
            .copied()
            .find(|&i| self.meters[i].1.tags.iter().all(|(k, v)| p.tag(k) == Some(v.as_str())))
            .ok_or_else(|| Rejection::NoMeter {
                measurement: p.measurement.to_string(),
                tags: format_tags(p),
            })
    }
}

fn liters_field(p: &Point<'_>, names: &[String], meter: &str, expected: &str) -> Result<f64, Rejection> {
    for name in names {
        if let Some(v) = p.field(name) {
            return liters(name, v);
        }
    }
    Err(Rejection::NoField { meter: meter.to_string(), expected: expected.to_string() })
}

fn liters(field: &str, v: &FieldValue<'_>) -> Result<f64, Rejection> {
    let x = match v {
        FieldValue::Float(f) => *f,
        FieldValue::Integer(i) => *i as f64,
        FieldValue::UInteger(u) => *u as f64,
        FieldValue::String(s) => return Err(bad(field, format!("the string \"{s}\""))),
        FieldValue::Boolean(b) => return Err(bad(field, format!("the boolean {b}"))),
    };
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(bad(field, x.to_string()))
    }
}

fn bad(field: &str, value: String) -> Rejection {
    Rejection::BadValue { field: field.to_string(), value }
}

fn format_tags(p: &Point<'_>) -> String {
    if p.tags.is_empty() {
        return "(none)".to_string();
    }
    p.tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// What became of one body or datagram.
#[derive(Debug, Default)]
pub struct Parsed {
    pub samples: Vec<Sample>,
    /// `(line number, message)` of every rejected line, in input order.
    pub rejected: Vec<(usize, String)>,
}

/// Parses a whole body, keeping every good line and reporting every bad one.
pub fn parse_body(
    matcher: &Matcher,
    input: &[u8],
    precision: Precision,
    now_ms: i64,
    stats: &super::stats::IngestStats,
    source: &str,
) -> Parsed {
    let mut out = Parsed::default();
    for (i, raw) in input.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let trimmed = raw.trim_ascii_start();
        if trimmed.is_empty() || trimmed[0] == b'#' {
            continue;
        }
        let result = match std::str::from_utf8(raw) {
            Err(_) => Err("the line is not valid UTF-8".to_string()),
            Ok(line) => match super::line_protocol::parse_line(line) {
                Err(e) => Err(format!("unable to parse '{}': {e}", snippet(line))),
                Ok(point) => matcher.sample(&point, precision, now_ms).map_err(|e| {
                    stats.rejected(e.reason());
                    format!("'{}': {e}", snippet(line))
                }),
            },
        };
        match result {
            Ok(sample) => out.samples.push(sample),
            Err(msg) => {
                if !msg.starts_with('\'') {
                    stats.rejected("parse");
                }
                let msg = format!("line {line_no}: {msg}");
                stats.log_bad(source, &msg);
                out.rejected.push((line_no, msg));
            }
        }
    }
    out
}

/// The start of a bad line, for error messages.
fn snippet(line: &str) -> String {
    const MAX: usize = 100;
    match line.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}
