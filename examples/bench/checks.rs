//! Correctness: after an ingest both systems must report the same totals and the
//! same hourly, daily and monthly bucket sums (and the totals must be the
//! generator's event counts: every event is one liter).

use anyhow::{bail, Result};
use chrono::{Months, TimeZone};
use chrono_tz::Europe::Vienna;

use crate::client::{first_values, influx_query, meter_json, usage_buckets};
use crate::servers::{Kind, Server};

/// A named list of `(bucket start ms, liters)`.
pub type Answers = Vec<(String, Vec<(i64, f64)>)>;

/// Local midnight of `y-m-d` in Europe/Vienna, as epoch ms.
pub fn local_ms(y: i32, m: u32, d: u32) -> i64 {
    Vienna
        .with_ymd_and_hms(y, m, d, 0, 0, 0)
        .single()
        .map_or(0, |t| t.timestamp_millis())
}

pub fn rfc3339(ms: i64) -> String {
    Vienna
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// Month starts from `(y, m)`, `n + 1` of them (the bounds of `n` months).
pub fn month_bounds(y: i32, m: u32, n: u32) -> Vec<i64> {
    let first = Vienna.with_ymd_and_hms(y, m, 1, 0, 0, 0).single();
    (0..=n)
        .filter_map(|i| first.and_then(|f| f.checked_add_months(Months::new(i))))
        .map(|t| t.timestamp_millis())
        .collect()
}

/// One bucket query against either system: `step` is hour or day.
pub fn buckets(s: &Server, meter: &str, step: &str, from: i64, to: i64) -> Result<Vec<(i64, f64)>> {
    match s.kind {
        Kind::Watermeter => usage_buckets(s, meter, step, &rfc3339(from), &rfc3339(to)),
        Kind::Influx => {
            let unit = if step == "hour" { "1h" } else { "1d" };
            let q = format!(
                "SELECT sum(liters) FROM water WHERE meter='{meter}' AND time >= {}ms AND time < {}ms GROUP BY time({unit}) fill(0) tz('Europe/Vienna')",
                from, to
            );
            Ok(first_values(&influx_query(s, &q)?, 0))
        }
    }
}

pub fn monthly(s: &Server, meter: &str, bounds: &[i64]) -> Result<Vec<(i64, f64)>> {
    match s.kind {
        Kind::Watermeter => usage_buckets(
            s,
            meter,
            "month",
            &rfc3339(bounds[0]),
            &rfc3339(bounds[bounds.len() - 1]),
        ),
        Kind::Influx => {
            let q = monthly_influxql(meter, bounds);
            let v = influx_query(s, &q)?;
            Ok((0..bounds.len() - 1)
                .map(|i| {
                    let sum = first_values(&v, i).first().map_or(0.0, |r| r.1);
                    (bounds[i], sum)
                })
                .collect())
        }
    }
}

/// InfluxQL has no calendar months: one statement per month, sent together.
pub fn monthly_influxql(meter: &str, bounds: &[i64]) -> String {
    bounds
        .windows(2)
        .map(|w| {
            format!(
                "SELECT sum(liters) FROM water WHERE meter='{meter}' AND time >= {}ms AND time < {}ms",
                w[0], w[1]
            )
        })
        .collect::<Vec<_>>()
        .join(";")
}

pub fn totals(s: &Server, meters: &[String]) -> Result<Vec<(i64, f64)>> {
    match s.kind {
        Kind::Watermeter => meters
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Ok((
                    i as i64,
                    meter_json(s, m)?["total_liters"].as_f64().unwrap_or(0.0),
                ))
            })
            .collect(),
        Kind::Influx => {
            let v = influx_query(s, "SELECT sum(liters) FROM water GROUP BY meter")?;
            let mut out = vec![0.0; meters.len()];
            for series in v["results"][0]["series"].as_array().into_iter().flatten() {
                let tag = series["tags"]["meter"].as_str().unwrap_or_default();
                if let Some(i) = meters.iter().position(|m| m == tag) {
                    out[i] = series["values"][0][1].as_f64().unwrap_or(0.0);
                }
            }
            Ok(out
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i as i64, v))
                .collect())
        }
    }
}

/// The span a workload covers: `[first local day, end)` and its first month.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub from: i64,
    pub to: i64,
    pub year: i32,
}

/// Everything compared after an ingest.
pub fn answers(s: &Server, meters: &[String], span: Span) -> Result<Answers> {
    let mut out = vec![("totals".to_string(), totals(s, meters)?)];
    let mut picked = vec![0, meters.len() / 2, meters.len() - 1];
    picked.dedup();
    for i in picked {
        let m = &meters[i];
        out.push((
            format!("daily {m}"),
            buckets(s, m, "day", span.from, span.to)?,
        ));
    }
    let m = &meters[0];
    let y = span.year;
    for (a, b) in [((y, 3, 24), (y, 3, 31)), ((y, 10, 25), (y, 11, 1))] {
        let (from, to) = (local_ms(a.0, a.1, a.2), local_ms(b.0, b.1, b.2));
        out.push((
            format!("hourly {m} {a:?}"),
            buckets(s, m, "hour", from, to)?,
        ));
    }
    out.push((
        format!("monthly {m} {y}"),
        monthly(s, m, &month_bounds(y, 1, 12))?,
    ));
    Ok(out)
}

/// Compares two systems' answers bucket by bucket (empty buckets count as 0).
pub fn compare(a: &Answers, b: &Answers) -> Result<()> {
    for ((name, x), (_, y)) in a.iter().zip(b) {
        let get = |v: &[(i64, f64)], t: i64| v.iter().find(|r| r.0 == t).map_or(0.0, |r| r.1);
        for &(t, _) in x.iter().chain(y) {
            let (p, q) = (get(x, t), get(y, t));
            if (p - q).abs() > 1e-6 {
                bail!("{name}: bucket {} is {p} here and {q} there", rfc3339(t));
            }
        }
    }
    Ok(())
}

/// The totals must be the generator's counts.
pub fn check_counts(a: &Answers, expected: &[u64]) -> Result<()> {
    for (i, &(_, got)) in a[0].1.iter().enumerate() {
        if (got - expected[i] as f64).abs() > 1e-6 {
            bail!(
                "meter #{i}: total {got} L, but the workload has {} events",
                expected[i]
            );
        }
    }
    Ok(())
}
