//! Line protocol → samples: which meter a point belongs to and how many liters it
//! carries. Pure: the caller passes the receive time.
//!
//! A meter matches a point by measurement and tags (every configured tag must be
//! present with its value) and takes its water from the configured field: liters
//! (the first present of e.g. `liters`), a cumulative counter, or the meter's own
//! absolute reading. A counter or reading meter also accepts a plain `liters`
//! point, which is what `export` writes.
//!
//! Points that cannot be true are refused with the reason (and counted): liters
//! beyond what the meter's pipe delivers in an hour, a time before the year 2000
//! (almost always seconds sent without `precision=s`), and a time more than 5
//! minutes ahead while the clock is synchronised (before that the Pi's own clock
//! may be days behind its senders). Old history stays legal.

use super::line_protocol::{FieldValue, Point, Precision};
use super::{MeterIdx, Sample, SampleValue};
use crate::clock::Implausible;
use crate::config::{FieldSelector, MeterConfig};

/// Why a point was not stored; the label is the `reason` of the metrics counter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("no configured meter takes measurement '{measurement}' with tags {tags}")]
    NoMeter { measurement: String, tags: String },
    #[error("meter '{meter}' needs a numeric field {expected}, and this point has none{hint}")]
    NoField {
        meter: String,
        expected: String,
        hint: &'static str,
    },
    #[error("field '{field}' must be a non-negative number of liters, not {value}")]
    BadValue { field: String, value: String },
    #[error("timestamp {0} is outside the years 1970 to 2100 at the given precision")]
    BadTimestamp(i64),
    #[error("timestamp {0} is before the year 2000: were seconds sent without precision=s? add precision=s (or ms, us) to the URL, or send nanoseconds")]
    Before2000(i64),
    #[error("timestamp {ts} is {minutes} minutes ahead of this machine's synchronised clock; check the sender's clock and the precision")]
    InTheFuture { ts: i64, minutes: i64 },
    #[error("{} L in one point is more than meter '{meter}' can take in an hour at its max_flow_l_per_min ({max_flow} L/min); a misread or a wrong unit?", crate::words::short_number(.liters))]
    Implausible {
        meter: String,
        liters: f64,
        max_flow: f64,
    },
}

impl Rejection {
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::NoMeter { .. } => "no_meter",
            Rejection::NoField { .. } => "no_field",
            Rejection::BadValue { .. } => "bad_value",
            Rejection::BadTimestamp(_) => "bad_timestamp",
            Rejection::Before2000(_) => "before_2000",
            Rejection::InTheFuture { .. } => "in_the_future",
            Rejection::Implausible { .. } => "implausible",
        }
    }
}

/// Latest instant a point may carry (2100-01-01).
const MAX_TS_MS: i64 = 4_102_444_800_000;

/// The hint for a point that carries only `value` to a meter that takes liters.
const VALUE_HINT: &str = "; its `value` field is not read as liters, because camera readers such as AI-on-the-edge-device send the meter's absolute reading in it: set reading_field = \"value\" in the meter's [meter.line_protocol] for a reading, or field = \"value\" if it really is liters per point";

pub struct Matcher {
    meters: Vec<(String, crate::config::LineProtocolMatch)>,
    /// Each meter's `max_flow_l_per_min`.
    max_flow: Vec<f64>,
    /// Meters per measurement name. A short list searched in order: a config has a
    /// few measurements, and comparing them costs less than hashing one per point.
    by_measurement: Vec<(String, Vec<usize>)>,
}

impl Matcher {
    pub fn new(meters: &[MeterConfig]) -> Matcher {
        let mut by_measurement: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, m) in meters.iter().enumerate() {
            let name = &m.line_protocol.measurement;
            match by_measurement.iter_mut().find(|(n, _)| n == name) {
                Some((_, list)) => list.push(i),
                None => by_measurement.push((name.clone(), vec![i])),
            }
        }
        Matcher {
            meters: meters
                .iter()
                .map(|m| (m.id.clone(), m.line_protocol.clone()))
                .collect(),
            max_flow: meters.iter().map(|m| m.max_flow_l_per_min).collect(),
            by_measurement,
        }
    }

    /// The sample a point stands for; points without a timestamp get `now_ms`
    /// (an unplaced stamp while the clock is not synchronised, see `clock`).
    pub fn sample(
        &self,
        p: &Point<'_>,
        precision: Precision,
        now_ms: i64,
    ) -> Result<Sample, Rejection> {
        let idx = self.meter_of(p)?;
        let (id, lp) = &self.meters[idx];
        let value = match &lp.field {
            FieldSelector::Counter(name) => match p.field(name) {
                Some(v) => SampleValue::Counter(liters(name, v)?),
                None => SampleValue::Liters(liters_field(p, &["liters"], id, || name.clone())?),
            },
            FieldSelector::Reading {
                field,
                liters_per_unit,
            } => match p.field(field) {
                Some(v) => SampleValue::Reading(liters(field, v)? * liters_per_unit),
                None => SampleValue::Liters(liters_field(p, &["liters"], id, || field.clone())?),
            },
            FieldSelector::Liters(names) => {
                SampleValue::Liters(liters_field(p, names, id, || names.join(" or "))?)
            }
        };
        let max_flow = self.max_flow[idx];
        if let SampleValue::Liters(l) = value {
            if l > max_flow * 60.0 {
                return Err(Rejection::Implausible {
                    meter: id.clone(),
                    liters: l,
                    max_flow,
                });
            }
        }
        let ts_ms = match p.timestamp {
            None => now_ms,
            Some(ts) => {
                let t = precision
                    .to_unix_ms(ts)
                    .filter(|t| (0..MAX_TS_MS).contains(t))
                    .ok_or(Rejection::BadTimestamp(ts))?;
                // `now_ms` is the wall clock only once it is synchronised.
                match crate::clock::plausible(t, now_ms) {
                    Ok(()) => {}
                    Err(Implausible::Before2000) => return Err(Rejection::Before2000(ts)),
                    Err(Implausible::Ahead { minutes }) => {
                        return Err(Rejection::InTheFuture { ts, minutes })
                    }
                }
                t
            }
        };
        Ok(Sample {
            meter: idx as MeterIdx,
            ts_ms,
            value,
        })
    }

    fn meter_of(&self, p: &Point<'_>) -> Result<usize, Rejection> {
        let candidates = self
            .by_measurement
            .iter()
            .find(|(name, _)| name == p.measurement.as_ref())
            .map(|(_, list)| list);
        candidates
            .into_iter()
            .flatten()
            .copied()
            .find(|&i| {
                self.meters[i]
                    .1
                    .tags
                    .iter()
                    .all(|(k, v)| p.tag(k) == Some(v.as_str()))
            })
            .ok_or_else(|| Rejection::NoMeter {
                measurement: p.measurement.to_string(),
                tags: format_tags(p),
            })
    }
}

/// The first present field of `names` as liters. `expected` names them for the
/// error and runs only then (it allocates; this runs once per point).
fn liters_field(
    p: &Point<'_>,
    names: &[impl AsRef<str>],
    meter: &str,
    expected: impl FnOnce() -> String,
) -> Result<f64, Rejection> {
    for name in names {
        if let Some(v) = p.field(name.as_ref()) {
            return liters(name.as_ref(), v);
        }
    }
    let only_value = p.field("value").is_some() && !names.iter().any(|n| n.as_ref() == "value");
    Err(Rejection::NoField {
        meter: meter.to_string(),
        expected: expected(),
        hint: if only_value { VALUE_HINT } else { "" },
    })
}

fn liters(field: &str, v: &FieldValue<'_>) -> Result<f64, Rejection> {
    let x = match v {
        FieldValue::Float(f) => *f,
        FieldValue::Integer(i) => *i as f64,
        FieldValue::UInteger(u) => *u as f64,
        FieldValue::String(s) => {
            let cut: String = s.chars().take(40).collect();
            let more = if cut.len() < s.len() { "…" } else { "" };
            return Err(bad(field, format!("the string \"{cut}{more}\"")));
        }
        FieldValue::Boolean(b) => return Err(bad(field, format!("the boolean {b}"))),
    };
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(bad(field, crate::words::short_number(&x)))
    }
}

fn bad(field: &str, value: String) -> Rejection {
    Rejection::BadValue {
        field: field.to_string(),
        value,
    }
}

fn format_tags(p: &Point<'_>) -> String {
    if p.tags.is_empty() {
        return "(none)".to_string();
    }
    p.tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
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
    let mut lines = Lines {
        matcher,
        precision,
        now_ms,
        stats,
        source,
        out: Parsed::default(),
    };
    // One UTF-8 check for the whole body, then `str::split` (which finds '\n' with
    // memchr): every line of a valid body is valid, since '\n' is ASCII. Only a body
    // with bad bytes is checked line by line, to lose just those lines.
    match std::str::from_utf8(input) {
        Ok(text) => {
            for (i, line) in text.split('\n').enumerate() {
                let line = line.strip_suffix('\r').unwrap_or(line);
                lines.take(i + 1, line.as_bytes(), Some(line));
            }
        }
        Err(_) => {
            for (i, raw) in input.split(|&b| b == b'\n').enumerate() {
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                lines.take(i + 1, raw, std::str::from_utf8(raw).ok());
            }
        }
    }
    lines.out
}

/// `parse_body`'s state while it walks the lines.
struct Lines<'m, 's> {
    matcher: &'m Matcher,
    precision: Precision,
    now_ms: i64,
    stats: &'s super::stats::IngestStats,
    source: &'s str,
    out: Parsed,
}

impl Lines<'_, '_> {
    /// One line without its line break; `text` is `raw` if it is valid UTF-8.
    fn take(&mut self, line_no: usize, raw: &[u8], text: Option<&str>) {
        let (matcher, precision, now_ms, stats) =
            (self.matcher, self.precision, self.now_ms, self.stats);
        let trimmed = raw.trim_ascii_start();
        if trimmed.is_empty() || trimmed[0] == b'#' {
            return;
        }
        let result = match text {
            None => Err("the line is not valid UTF-8".to_string()),
            Some(line) => match super::line_protocol::parse_line(line) {
                Err(e) => Err(format!("unable to parse '{}': {e}", snippet(line))),
                Ok(point) => matcher.sample(&point, precision, now_ms).map_err(|e| {
                    stats.rejected(e.reason());
                    format!("'{}': {e}", snippet(line))
                }),
            },
        };
        match result {
            Ok(sample) => self.out.samples.push(sample),
            Err(msg) => {
                if !msg.starts_with('\'') {
                    stats.rejected("parse");
                }
                let msg = format!("line {line_no}: {msg}");
                stats.log_bad(self.source, &msg);
                self.out.rejected.push((line_no, msg));
            }
        }
    }
}

/// The start of a bad line, for error messages.
fn snippet(line: &str) -> String {
    const MAX: usize = 100;
    match line.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LineProtocolMatch, MeterConfig};
    use crate::ingest::stats::IngestStats;

    fn meter(
        id: &str,
        measurement: &str,
        tags: &[(&str, &str)],
        field: FieldSelector,
    ) -> MeterConfig {
        let mut m = MeterConfig::with_id(id);
        m.line_protocol = LineProtocolMatch {
            measurement: measurement.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            field,
        };
        m
    }

    fn matcher() -> Matcher {
        let liters = || FieldSelector::Liters(vec!["liters".into(), "value".into()]);
        Matcher::new(&[
            meter("main", "water", &[("meter", "main")], liters()),
            meter(
                "garden",
                "water",
                &[("meter", "garden"), ("site", "home")],
                liters(),
            ),
            meter("flat", "flow", &[], FieldSelector::Counter("total".into())),
        ])
    }

    /// Seconds of the test points (2023-11-14), and the receive time (2027).
    const T: i64 = 1_700_000_000;
    const NOW: i64 = 1_800_000_000_000;

    /// Parses `input` (seconds) at [`NOW`], and checks the samples and the rejections.
    fn check(input: &str, samples: &[(MeterIdx, i64, SampleValue)], rejected: &[&str]) {
        let stats = IngestStats::default();
        let parsed = parse_body(
            &matcher(),
            input.as_bytes(),
            Precision::Seconds,
            NOW,
            &stats,
            "test",
        );
        let got: Vec<_> = parsed
            .samples
            .iter()
            .map(|s| (s.meter, s.ts_ms, s.value))
            .collect();
        assert_eq!(got, samples, "{input}");
        assert_eq!(
            parsed.rejected.len(),
            rejected.len(),
            "{:?}",
            parsed.rejected
        );
        for ((_, msg), want) in parsed.rejected.iter().zip(rejected) {
            assert!(msg.contains(want), "{msg:?} should contain {want:?}");
        }
    }

    #[test]
    fn points_go_to_the_meter_whose_tags_all_match() {
        check(
            &format!("water,meter=main liters=1 {}\nwater,site=home,meter=garden value=2.5 {}\nwater,meter=garden liters=1 {}", T + 10, T + 11, T + 12),
            &[(0, (T + 10) * 1000, SampleValue::Liters(1.0)), (1, (T + 11) * 1000, SampleValue::Liters(2.5))],
            &[&format!("line 3: 'water,meter=garden liters=1 {}': no configured meter takes measurement 'water' with tags meter=garden", T + 12)],
        );
    }

    #[test]
    fn points_without_a_timestamp_get_the_receive_time() {
        check(
            "water,meter=main liters=3i",
            &[(0, NOW, SampleValue::Liters(3.0))],
            &[],
        );
    }

    #[test]
    fn counter_meters_take_counters_and_plain_liters() {
        check(
            &format!(
                "flow total=123456u {}\nflow liters=2 {}\nflow other=1 {}",
                T + 1,
                T + 2,
                T + 3
            ),
            &[
                (2, (T + 1) * 1000, SampleValue::Counter(123456.0)),
                (2, (T + 2) * 1000, SampleValue::Liters(2.0)),
            ],
            &["line 3: 'flow other=1 1700000003': meter 'flat' needs a numeric field total"],
        );
    }

    #[test]
    fn non_numeric_or_negative_liters_are_rejected_with_the_value() {
        check(
            "water,meter=main liters=\"one\"\nwater,meter=main liters=-1\nwater,meter=main liters=true\nwater,meter=main liters=1",
            &[(0, NOW, SampleValue::Liters(1.0))],
            &["the string \"one\"", "not -1", "the boolean true"],
        );
    }

    #[test]
    fn timestamps_outside_the_storable_years_are_rejected() {
        check(
            "water,meter=main liters=1 -5\nwater,meter=main liters=1 99999999999",
            &[],
            &["timestamp -5", "timestamp 99999999999"],
        );
    }

    #[test]
    fn parse_errors_name_the_line_and_quote_it() {
        check(
            &format!("water,meter=main liters=1 {}\n\n# note\nwater,meter=main liters=abc 2\r\nwater,meter=main liters=1 {}\r\n", T + 1, T + 3),
            &[(0, (T + 1) * 1000, SampleValue::Liters(1.0)), (0, (T + 3) * 1000, SampleValue::Liters(1.0))],
            &["line 4: unable to parse 'water,meter=main liters=abc 2'"],
        );
    }

    #[test]
    fn impossible_points_are_refused_with_the_reason_and_old_history_is_kept() {
        check(
            &format!(
                "water,meter=main liters=1e9 {t}\nwater,meter=main liters=1 1700000\nwater,meter=main liters=1 {far}\nwater,meter=main liters=1 946684800\nwater,meter=main liters=6000 {t}",
                t = T,
                far = NOW / 1000 + 600
            ),
            &[
                (0, 946_684_800_000, SampleValue::Liters(1.0)),
                (0, T * 1000, SampleValue::Liters(6000.0)),
            ],
            &[
                "1000000000 L in one point is more than meter 'main' can take in an hour",
                "before the year 2000: were seconds sent without precision=s?",
                "10 minutes ahead of this machine's synchronised clock",
            ],
        );
        // Before the clock is synchronised "now" is an unplaced stamp: no future check.
        let stats = IngestStats::default();
        let unplaced = crate::clock::UNPLACED_BASE + 5;
        let far = format!("water,meter=main liters=1 {}", NOW / 1000 + 600);
        let parsed = parse_body(
            &matcher(),
            far.as_bytes(),
            Precision::Seconds,
            unplaced,
            &stats,
            "test",
        );
        assert_eq!(parsed.samples.len(), 1);
    }

    #[test]
    fn a_value_field_is_not_liters_by_default_and_a_reading_field_is_a_reading() {
        let m = Matcher::new(&[
            meter(
                "main",
                "water",
                &[("meter", "main")],
                crate::config::LineProtocolMatch::default_for("main").field,
            ),
            meter(
                "cam",
                "watermeter",
                &[],
                FieldSelector::Reading {
                    field: "main/value".into(),
                    liters_per_unit: 1000.0,
                },
            ),
        ]);
        let stats = IngestStats::default();
        let body = format!(
            "water,meter=main value=123.456 {T}\nwatermeter main/value=123.529 {T}000000000"
        );
        let parsed = parse_body(
            &m,
            body.as_bytes(),
            Precision::Nanoseconds,
            NOW,
            &stats,
            "test",
        );
        // `value` alone is refused with the hint; the camera reader's line is a reading.
        assert_eq!(parsed.samples.len(), 1, "{:?}", parsed.rejected);
        assert_eq!(parsed.samples[0].value, SampleValue::Reading(123_529.0));
        assert!(
            parsed.rejected[0].1.contains("reading_field = \"value\""),
            "{:?}",
            parsed.rejected
        );
    }

    #[test]
    fn invalid_utf8_loses_only_its_line() {
        let stats = IngestStats::default();
        let input = b"water,meter=main liters=1 1700000001\nwater,meter=ma\xffin liters=1 2\nwater,meter=main liters=1 1700000003";
        let parsed = parse_body(&matcher(), input, Precision::Seconds, NOW, &stats, "test");
        assert_eq!(parsed.samples.len(), 2);
        assert_eq!(parsed.rejected[0].0, 2);
        assert_eq!(stats.rejected_by_reason()[0], ("parse", 1));
    }
}
