//! `GET`/`POST /query`: the InfluxQL reads of Grafana and Chronograf, answered from
//! the store as InfluxDB 1.x answers them (`influxql` parses them).
//!
//! What a data source sees: every meter's water as measurement and tags from its
//! `[meter.line_protocol]` (`water,meter=<id>` by default), field `liters`, one
//! point per stored event. Counter and reading meters expose the events their
//! deltas were spread into, so `sum` over any range is exact, while `count`,
//! `first` and `last` count and pick those events (docs/integrations.md). Tags
//! not named in the config are not stored: grouping by them groups nothing.

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Offset, TimeZone};
use serde::Deserialize;
use serde_json::{json, Value};

use super::AppState;
use crate::influxql::{self, Cond, Fill, Op, Select, Statement};
use crate::meter::MeterIdx;
use crate::store::budget::Stop;
use crate::store::StoreError;

#[derive(Debug, Default, Deserialize)]
pub struct QueryParams {
    q: Option<String>,
    db: Option<String>,
    epoch: Option<String>,
}

const DAY_MS: i64 = 86_400_000;

/// The most buckets one request may ask for, all its statements together
/// (Grafana asks for a few thousand per panel).
pub const MAX_BUCKETS: i64 = 200_000;
/// The longest answer one request may get, in bytes (a 10-year hourly panel is
/// about 3 MB).
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

/// What the statements of one request have used of its allowance.
#[derive(Default)]
struct Spent {
    buckets: i64,
}

pub async fn query(
    State(state): State<AppState>,
    Query(params): Query<QueryParams>,
    body: Bytes,
) -> Response {
    // `q` comes in the URL, or (POST) in a form-encoded body.
    let form: QueryParams = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let q = params.q.clone().or(form.q).unwrap_or_default();
    let epoch = params.epoch.clone().or(form.epoch);
    let db = params.db.clone().or(form.db);
    let now = chrono::Utc::now().timestamp_millis();
    let statements = influxql::parse_at(&q, now);
    if statements.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "missing required parameter \"q\"".into(),
        );
    }
    let mut parsed = Vec::with_capacity(statements.len());
    for s in statements {
        match s {
            Ok(s) => parsed.push(s),
            Err(e) => return error(StatusCode::BAD_REQUEST, e.0),
        }
    }
    // Already off the async workers, within the request's budget (`heavy`).
    let answered = (|| {
        // Written as text: a Grafana panel's thousands of rows are no tree of values.
        let mut body = String::from("{\"results\":[");
        let mut spent = Spent::default();
        for (i, s) in parsed.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            let _ = write!(body, "{{\"statement_id\":{i}");
            match answer(&state, s, epoch.as_deref(), db.as_deref(), now, &mut spent) {
                Ok(series) if series.is_empty() => {}
                Ok(series) => {
                    body.push_str(",\"series\":[");
                    body.push_str(&series.join(","));
                    body.push(']');
                }
                Err(e) => {
                    let _ = write!(body, ",\"error\":{}", Value::String(e));
                }
            }
            body.push('}');
            if body.len() > MAX_ANSWER_BYTES {
                return Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the answer is larger than {} MB, the most one request may get; ask for fewer statements, a shorter range or larger GROUP BY time() intervals",
                        MAX_ANSWER_BYTES >> 20
                    ),
                ));
            }
            if let Err(e) = crate::store::budget::check() {
                let status = match e {
                    StoreError::Stopped(Stop::Events { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                return Err((status, e.to_string()));
            }
        }
        body.push_str("]}");
        Ok(body)
    })();
    match answered {
        Err((status, e)) => error(status, e),
        Ok(body) => super::write::with_version(
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
        ),
    }
}

fn error(status: StatusCode, e: String) -> Response {
    super::write::with_version((status, Json(json!({ "error": e }))).into_response())
}

/// The series one statement answers, each as JSON text.
fn answer(
    state: &AppState,
    s: &Statement,
    epoch: Option<&str>,
    db: Option<&str>,
    now: i64,
    spent: &mut Spent,
) -> Result<Vec<String>, String> {
    if let Statement::Select(sel) = s {
        return select(state, sel, epoch, now, spent);
    }
    Ok(show(state, s, db)?
        .into_iter()
        .map(|v| v.to_string())
        .collect())
}

/// The series of a statement other than SELECT.
fn show(state: &AppState, s: &Statement, db: Option<&str>) -> Result<Vec<Value>, String> {
    let meters = &state.config.meters;
    let measurements = || {
        let mut m: Vec<&str> = meters
            .iter()
            .map(|m| m.line_protocol.measurement.as_str())
            .collect();
        m.sort_unstable();
        m.dedup();
        m
    };
    let chosen = |from: &Option<String>| -> Vec<String> {
        measurements()
            .into_iter()
            .filter(|m| from.as_deref().is_none_or(|f| f == *m))
            .map(str::to_string)
            .collect()
    };
    Ok(match s {
        Statement::CreateDatabase => Vec::new(),
        Statement::Unsupported(why) => return Err(why.clone()),
        Statement::ShowDatabases => {
            // The database the client names, and `water`: any name reads the same.
            let mut names = vec!["water".to_string()];
            if let Some(d) = db.filter(|d| *d != "water" && !d.is_empty()) {
                names.push(d.to_string());
            }
            vec![json!({"name": "databases", "columns": ["name"], "values": names.iter().map(|n| json!([n])).collect::<Vec<_>>()})]
        }
        Statement::ShowRetentionPolicies => vec![json!({
            "columns": ["name", "duration", "shardGroupDuration", "replicaN", "default"],
            "values": [["autogen", "0s", "168h0m0s", 1, true]],
        })],
        Statement::ShowMeasurements { pattern, limit } => {
            let values: Vec<Value> = measurements()
                .into_iter()
                .filter(|m| pattern.as_deref().is_none_or(|p| matches_pattern(p, m)))
                .take(limit.unwrap_or(usize::MAX))
                .map(|m| json!([m]))
                .collect();
            if values.is_empty() {
                Vec::new()
            } else {
                vec![json!({"name": "measurements", "columns": ["name"], "values": values})]
            }
        }
        Statement::ShowFieldKeys { from } => chosen(from)
            .into_iter()
            .map(|m| json!({"name": m, "columns": ["fieldKey", "fieldType"], "values": [["liters", "float"]]}))
            .collect(),
        Statement::ShowTagKeys { from } => chosen(from)
            .into_iter()
            .map(|m| {
                let mut keys: Vec<&str> = meters
                    .iter()
                    .filter(|c| c.line_protocol.measurement == m)
                    .flat_map(|c| c.line_protocol.tags.iter().map(|(k, _)| k.as_str()))
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                json!({"name": m, "columns": ["tagKey"], "values": keys.iter().map(|k| json!([k])).collect::<Vec<_>>()})
            })
            .collect(),
        Statement::ShowTagValues { from, key } => chosen(from)
            .into_iter()
            .filter_map(|m| {
                let mut values: Vec<&str> = meters
                    .iter()
                    .filter(|c| c.line_protocol.measurement == m)
                    .flat_map(|c| c.line_protocol.tags.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()))
                    .collect();
                values.sort_unstable();
                values.dedup();
                (!values.is_empty()).then(|| {
                    json!({"name": m, "columns": ["key", "value"], "values": values.iter().map(|v| json!([key, v])).collect::<Vec<_>>()})
                })
            })
            .collect(),
        Statement::Select(_) => Vec::new(), // answered by `select`
    })
}

/// `/(?i)wat/`-style patterns: case-insensitive with `(?i)`, `^`/`$` anchors,
/// otherwise a substring (what the query editors send).
fn matches_pattern(pattern: &str, name: &str) -> bool {
    let (p, n) = match pattern.strip_prefix("(?i)") {
        Some(p) => (p.to_lowercase(), name.to_lowercase()),
        None => (pattern.to_string(), name.to_string()),
    };
    let (start, p) = match p.strip_prefix('^') {
        Some(rest) => (true, rest.to_string()),
        None => (false, p),
    };
    let (end, p) = match p.strip_suffix('$') {
        Some(rest) => (true, rest.to_string()),
        None => (false, p),
    };
    match (start, end) {
        (true, true) => n == p,
        (true, false) => n.starts_with(&p),
        (false, true) => n.ends_with(&p),
        (false, false) => n.contains(&p),
    }
}

/// The time range the top-level AND of a condition allows: `[from, to)`.
fn time_range(c: &Cond, range: &mut (Option<i64>, Option<i64>)) {
    match c {
        Cond::And(a, b) => {
            time_range(a, range);
            time_range(b, range);
        }
        Cond::Time(op, t) => {
            let (lo, hi) = range;
            let lower = |lo: &mut Option<i64>, v: i64| *lo = Some(lo.map_or(v, |l: i64| l.max(v)));
            let upper = |hi: &mut Option<i64>, v: i64| *hi = Some(hi.map_or(v, |h: i64| h.min(v)));
            match op {
                Op::Ge => lower(lo, *t),
                Op::Gt => lower(lo, t + 1),
                Op::Le => upper(hi, t + 1),
                Op::Lt => upper(hi, *t),
                Op::Eq => {
                    lower(lo, *t);
                    upper(hi, t + 1);
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// Whether a meter's tags pass the condition (time comparisons pass here).
fn tags_pass(c: &Cond, tags: &[(String, String)]) -> bool {
    match c {
        Cond::And(a, b) => tags_pass(a, tags) && tags_pass(b, tags),
        Cond::Or(a, b) => tags_pass(a, tags) || tags_pass(b, tags),
        Cond::Time(..) => true,
        Cond::Tag(k, op, v) => {
            let have = tags
                .iter()
                .find(|(tk, _)| tk == k)
                .map_or("", |(_, tv)| tv.as_str());
            match op {
                Op::Eq => have == v,
                Op::Ne => have != v,
                Op::Match => matches_pattern(v, have),
                Op::NotMatch => !matches_pattern(v, have),
                _ => false,
            }
        }
    }
}

/// Bucket starts of `[from, to)` every `d` ms, aligned as InfluxDB aligns them:
/// to the epoch, shifted by the zone's offset; whole days in a zone follow its
/// local midnights (23- and 25-hour days included).
fn bucket_starts(
    from: i64,
    to: i64,
    d: i64,
    tz: Option<chrono_tz::Tz>,
    left: i64,
) -> Result<Vec<i64>, String> {
    if to.saturating_sub(from) / d > left {
        return Err(format!("too many buckets: GROUP BY time({d}ms) over this range makes more than this request may ask for ({MAX_BUCKETS} for all its statements together); choose a larger interval"));
    }
    let offset = |t: i64| -> i64 {
        tz.and_then(|z| z.timestamp_millis_opt(t).single())
            .map_or(0, |x| i64::from(x.offset().fix().local_minus_utc()) * 1000)
    };
    let mut starts = Vec::new();
    if let (Some(z), true) = (tz, d % 86_400_000 == 0) {
        let days = d / 86_400_000;
        let mut day = crate::buckets::local_day_number(z, from);
        day -= day.rem_euclid(days);
        while let Some(date) = crate::buckets::date_of_day_number(day) {
            let start = crate::buckets::day_start(z, date);
            if start >= to {
                break;
            }
            starts.push(start);
            day += days;
        }
        return Ok(starts);
    }
    let off = offset(from);
    let mut t = (from + off).div_euclid(d) * d - off;
    while t < to {
        starts.push(t);
        t += d;
    }
    Ok(starts)
}

/// One aggregate of the liters of a bucket's events.
fn aggregate(agg: &str, events: &[(i64, f64)]) -> Option<f64> {
    if events.is_empty() {
        return None; // `fill` decides (and `count` of nothing is 0)
    }
    let values = events.iter().map(|(_, v)| *v);
    Some(match agg {
        "sum" => values.sum(),
        "count" => events.len() as f64,
        "mean" => values.sum::<f64>() / events.len() as f64,
        "max" => values.fold(f64::MIN, f64::max),
        "min" => values.fold(f64::MAX, f64::min),
        "first" => events.first()?.1,
        "last" => events.last()?.1,
        "spread" => {
            let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
            hi - lo
        }
        _ => return None,
    })
}

/// A series' tags: (key, value) pairs.
type Tags = Vec<(String, String)>;

fn select(
    state: &AppState,
    s: &Select,
    epoch: Option<&str>,
    now: i64,
    spent: &mut Spent,
) -> Result<Vec<String>, String> {
    let tz = match &s.tz {
        Some(name) => Some(
            name.parse::<chrono_tz::Tz>()
                .map_err(|_| format!("unable to find time zone {name:?}"))?,
        ),
        None => None,
    };
    let mut range = (None, None);
    if let Some(c) = &s.condition {
        time_range(c, &mut range);
    }
    let to = range.1.unwrap_or(now + 1);
    let from = match (range.0, s.interval_ms) {
        (Some(f), _) => f,
        (None, None) => 0,
        (None, Some(_)) => return Err(
            "a GROUP BY time() query needs a lower time bound, such as WHERE time > now() - 24h"
                .into(),
        ),
    };
    if to <= from {
        return Ok(Vec::new());
    }
    // The meters this measurement and these tags select, grouped by the GROUP BY tags.
    let mut groups: Vec<(Tags, Vec<MeterIdx>)> = Vec::new();
    for (i, m) in state.config.meters.iter().enumerate() {
        let lp = &m.line_protocol;
        if lp.measurement != s.measurement || !s.fields.iter().all(|f| f.field == "liters") {
            continue;
        }
        if s.condition
            .as_ref()
            .is_some_and(|c| !tags_pass(c, &lp.tags))
        {
            continue;
        }
        let key: Vec<(String, String)> = lp
            .tags
            .iter()
            .filter(|(k, _)| s.group_tags.iter().any(|g| g == "*" || g == k))
            .cloned()
            .collect();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(i as MeterIdx),
            None => groups.push((key, vec![i as MeterIdx])),
        }
    }
    let starts = match s.interval_ms {
        Some(d) => bucket_starts(from, to, d, tz, MAX_BUCKETS - spent.buckets)?,
        None => vec![from],
    };
    spent.buckets += starts.len() as i64 * groups.len().max(1) as i64;
    if spent.buckets > MAX_BUCKETS {
        return Err(format!(
            "too many buckets: this request's statements make more than {MAX_BUCKETS} together; choose larger GROUP BY time() intervals or fewer statements"
        ));
    }
    // Buckets that begin on whole UTC hours can take hour sums.
    let hour_aligned = s.interval_ms.is_some_and(|d| d % 3_600_000 == 0)
        && starts.iter().all(|t| t % 3_600_000 == 0);
    let mut out = Vec::new();
    for (tags, idxs) in groups {
        let mut events: Vec<(i64, f64)> = Vec::new();
        let mut columns: Vec<Vec<Option<f64>>> = Vec::new();
        let mut empty = vec![true; starts.len()];
        if s.interval_ms.is_some() && sums_only(s) {
            // Sums in buckets add up as the events stream by: no event list.
            let mut sums = vec![None::<f64>; starts.len()];
            for &idx in &idxs {
                // A meter's events come in time order: a cursor finds the bucket.
                let mut b = 0usize;
                read_events(state, s, idx, (from, to), tz, hour_aligned, &mut |ts, v| {
                    if starts.get(b).is_some_and(|&st| ts < st) {
                        b = 0; // out of order (never from the store): start over
                    }
                    while starts.get(b + 1).is_some_and(|&next| next <= ts) {
                        b += 1;
                    }
                    if let Some(sum) = sums.get_mut(b).filter(|_| starts[b] <= ts) {
                        *sum = Some(sum.unwrap_or(0.0) + v);
                    }
                })?;
            }
            for (e, sum) in empty.iter_mut().zip(&sums) {
                *e = sum.is_none();
            }
            let col = fill(sums, s.fill, "sum");
            columns = vec![col; s.fields.len()];
        }
        let streamed = !columns.is_empty();
        for &idx in idxs.iter().filter(|_| !streamed) {
            read_events(state, s, idx, (from, to), tz, hour_aligned, &mut |ts, v| {
                events.push((ts, v))
            })?;
        }
        events.sort_by_key(|e| e.0);
        for f in s.fields.iter().filter(|_| !streamed) {
            let mut col = Vec::with_capacity(starts.len());
            let mut at = 0;
            for (b, &start) in starts.iter().enumerate() {
                let end = starts.get(b + 1).copied().unwrap_or(to).min(to);
                while at < events.len() && events[at].0 < start {
                    at += 1;
                }
                let lo = at;
                while at < events.len() && events[at].0 < end {
                    at += 1;
                }
                let bucket = &events[lo..at];
                empty[b] &= bucket.is_empty();
                col.push(aggregate(&f.agg, bucket));
            }
            col = fill(col, s.fill, &f.agg);
            if let Some(t) = &f.transform {
                col = transform(t, &col);
            }
            columns.push(col);
        }
        // The buckets that make rows, and their times; written once in order.
        let differences = s.fields.iter().all(|f| {
            f.transform
                .as_deref()
                .is_some_and(|t| t != "cumulative_sum")
        });
        let mut picked: Vec<(usize, i64)> = Vec::with_capacity(starts.len());
        for (b, &start) in starts.iter().enumerate() {
            let all_none = columns
                .iter()
                .all(|c| c.get(b).copied().flatten().is_none());
            // fill(none) drops empty buckets; a difference has no value for its first.
            if (s.fill == Fill::None && empty[b]) || (differences && all_none) {
                continue;
            }
            // Without GROUP BY time, one selector answers with its point's own time.
            let at = match (s.interval_ms, s.fields.as_slice()) {
                (None, [f]) if f.transform.is_none() => {
                    selected_at(&f.agg, &events).unwrap_or(start)
                }
                _ => start,
            };
            picked.push((b, at));
        }
        if s.descending {
            picked.reverse();
        }
        if let Some(n) = s.limit {
            picked.truncate(n);
        }
        if picked.is_empty() {
            continue;
        }
        let mut rows = String::with_capacity(picked.len() * 24);
        for (i, &(b, at)) in picked.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(rows, "{comma}[{}", time_value(at, epoch, tz));
            for (c, f) in columns.iter().zip(&s.fields) {
                let v = c.get(b).copied().flatten();
                let cell = v.map_or(Value::Null, |x| number(x, f.agg == "count"));
                let _ = write!(rows, ",{cell}");
            }
            rows.push(']');
        }
        let mut columns_json = vec![json!("time")];
        columns_json.extend(s.fields.iter().map(|f| json!(f.name)));
        let mut series = String::new();
        let _ = write!(
            series,
            "{{\"name\":{},\"columns\":{}",
            Value::String(s.measurement.clone()),
            Value::Array(columns_json)
        );
        if !s.group_tags.is_empty() {
            let tags: serde_json::Map<String, Value> = tags
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            let _ = write!(series, ",\"tags\":{}", Value::Object(tags));
        }
        let _ = write!(series, ",\"values\":[{rows}]}}");
        out.push(series);
    }
    Ok(out)
}

/// The time of the point a selector (`max`, `min`, `first`, `last`) picks: the
/// first of equal values, as InfluxDB picks it.
fn selected_at(agg: &str, events: &[(i64, f64)]) -> Option<i64> {
    let pick = |better: fn(f64, f64) -> bool| {
        events
            .iter()
            .fold(None::<(i64, f64)>, |best, &(t, v)| match best {
                Some((_, b)) if !better(v, b) => best,
                _ => Some((t, v)),
            })
            .map(|(t, _)| t)
    };
    match agg {
        "max" => pick(|v, b| v > b),
        "min" => pick(|v, b| v < b),
        "first" => events.first().map(|e| e.0),
        "last" => events.last().map(|e| e.0),
        _ => None,
    }
}

/// The events of `[from, to)` a statement aggregates. A `sum` in buckets of whole
/// local days of the configured zone reads the day rollups for the whole days (one
/// stand-in point per day at its start, which sums the same) and events only for
/// the partial days at the ends, so a panel over years costs what the dashboard's
/// year chart does.
fn read_events(
    state: &AppState,
    s: &Select,
    idx: MeterIdx,
    (from, to): (i64, i64),
    tz: Option<chrono_tz::Tz>,
    hour_aligned: bool,
    out: &mut dyn FnMut(i64, f64),
) -> Result<(), String> {
    // No event is stored before 2000 (`clock::plausible`): a range without a
    // lower bound starts there, not in 1970.
    let from = from.max(crate::clock::EARLIEST_MS);
    if from >= to {
        return Ok(());
    }
    let zone = state.config.timezone;
    // One bucket for the whole range, or buckets of whole days of the store's zone.
    let whole_days = match s.interval_ms {
        None => true,
        Some(d) => d % 86_400_000 == 0 && tz.unwrap_or(chrono_tz::UTC) == zone,
    };
    let push = |a: i64, b: i64, out: &mut dyn FnMut(i64, f64)| {
        state
            .store
            .for_each_event(idx, a, b, |ts, ml| out(ts, ml as f64 / 1000.0))
            .map_err(|e| e.to_string())
    };
    if sums_only(s) && !whole_days && hour_aligned {
        // Buckets of whole hours: the whole UTC days inside from their hour sums
        // (one stand-in point per hour at its start), the ragged ends from events.
        let (first, last) = (
            from.div_euclid(DAY_MS) + i64::from(from.rem_euclid(DAY_MS) != 0),
            to.div_euclid(DAY_MS),
        );
        if first < last {
            push(from, first * DAY_MS, out)?;
            state
                .store
                .hour_sums(idx, first, last, |day, sums| {
                    for (h, &ml) in sums.iter().enumerate() {
                        if ml > 0 {
                            out(day + h as i64 * 3_600_000, ml as f64 / 1000.0);
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
            return push(last * DAY_MS, to, out);
        }
    }
    if !(sums_only(s) && whole_days) {
        return push(from, to, out);
    }
    let start_of = |day: i64| {
        crate::buckets::date_of_day_number(day).map(|d| crate::buckets::day_start(zone, d))
    };
    let from_day = crate::buckets::local_day_number(zone, from);
    let first = match start_of(from_day) {
        Some(start) if start == from => from,
        _ => start_of(from_day + 1).unwrap_or(to),
    };
    let last = start_of(crate::buckets::local_day_number(zone, to))
        .unwrap_or(to)
        .max(first);
    if first >= last {
        return push(from, to, out);
    }
    push(from, first, out)?;
    let days = state
        .store
        .usage(idx, crate::buckets::Step::Day, first, last)
        .map_err(|e| e.to_string())?;
    for (&b, &ml) in days.bounds.iter().zip(&days.ml) {
        if b >= first && b < last && ml > 0 {
            out(b, ml as f64 / 1000.0);
        }
    }
    push(last, to, out)
}

/// Whether every column is a plain `sum`, which the rollups can answer.
fn sums_only(s: &Select) -> bool {
    s.fields
        .iter()
        .all(|f| f.agg == "sum" && f.transform.is_none())
}

/// Empty buckets as `fill` says; `count` of nothing is 0 in InfluxDB.
fn fill(col: Vec<Option<f64>>, how: Fill, agg: &str) -> Vec<Option<f64>> {
    let col: Vec<Option<f64>> = if agg == "count" {
        col.into_iter().map(|v| v.or(Some(0.0))).collect()
    } else {
        col
    };
    match how {
        Fill::Null | Fill::None => col,
        Fill::Value(x) => col.into_iter().map(|v| v.or(Some(x))).collect(),
        Fill::Previous => {
            let mut last = None;
            col.into_iter()
                .map(|v| {
                    if v.is_some() {
                        last = v;
                    }
                    v.or(last)
                })
                .collect()
        }
        Fill::Linear => {
            let known: Vec<(usize, f64)> = col
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|x| (i, x)))
                .collect();
            (0..col.len())
                .map(|i| {
                    col[i].or_else(|| {
                        let before = known.iter().rev().find(|(j, _)| *j < i)?;
                        let after = known.iter().find(|(j, _)| *j > i)?;
                        let f = (i - before.0) as f64 / (after.0 - before.0) as f64;
                        Some(before.1 + (after.1 - before.1) * f)
                    })
                })
                .collect()
        }
    }
}

fn transform(t: &str, col: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut prev: Option<f64> = None;
    let mut acc = 0.0;
    col.iter()
        .map(|v| {
            let v = (*v)?;
            match t {
                "cumulative_sum" => {
                    acc += v;
                    Some(acc)
                }
                _ => {
                    let d = prev.map(|p| v - p);
                    prev = Some(v);
                    d.filter(|d| t != "non_negative_difference" || *d >= 0.0)
                }
            }
        })
        .collect()
}

/// A value as InfluxDB types it: a count is an integer, everything of the float
/// field `liters` a float (`150.0`, which clients read as a float).
fn number(v: f64, integer: bool) -> Value {
    if integer && v.fract() == 0.0 && v.abs() < 9e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// A bucket's time: an integer in the `epoch` unit, or RFC 3339 (in `tz` if given).
fn time_value(ms: i64, epoch: Option<&str>, tz: Option<chrono_tz::Tz>) -> Value {
    match epoch {
        Some("ns") => json!(ms.saturating_mul(1_000_000)),
        Some("u") | Some("µ") | Some("us") => json!(ms.saturating_mul(1000)),
        Some("ms") => json!(ms),
        Some("s") => json!(ms / 1000),
        Some("m") => json!(ms / 60_000),
        Some("h") => json!(ms / 3_600_000),
        _ => {
            let utc = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
            match tz {
                Some(z) => json!(utc
                    .with_timezone(&z)
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                None => json!(utc.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measurement_patterns_read_like_the_editors_mean_them() {
        assert!(matches_pattern("(?i)WAT", "water"));
        assert!(!matches_pattern("WAT", "water"));
        assert!(matches_pattern("^water$", "water"));
        assert!(!matches_pattern("^wat$", "water"));
    }

    #[test]
    fn days_in_a_zone_follow_its_midnights() {
        let vienna: chrono_tz::Tz = "Europe/Vienna".parse().unwrap();
        // 2026-03-28 23:00 UTC (Sunday 00:00 CET) to Monday 00:00 CEST: 23 hours.
        let from = 1_774_738_800_000;
        let starts = bucket_starts(
            from,
            from + 2 * 86_400_000,
            86_400_000,
            Some(vienna),
            MAX_BUCKETS,
        )
        .unwrap();
        assert_eq!(starts[0], from);
        assert_eq!(starts[1] - starts[0], 23 * 3_600_000);
    }

    #[test]
    fn fills_and_transforms() {
        let col = vec![Some(1.0), None, Some(3.0)];
        assert_eq!(
            fill(col.clone(), Fill::Value(0.0), "sum"),
            vec![Some(1.0), Some(0.0), Some(3.0)]
        );
        assert_eq!(
            fill(col.clone(), Fill::Previous, "sum"),
            vec![Some(1.0), Some(1.0), Some(3.0)]
        );
        assert_eq!(
            fill(col.clone(), Fill::Linear, "sum"),
            vec![Some(1.0), Some(2.0), Some(3.0)]
        );
        assert_eq!(fill(vec![None], Fill::Null, "count"), vec![Some(0.0)]);
        assert_eq!(
            transform("cumulative_sum", &[Some(1.0), Some(2.0)]),
            vec![Some(1.0), Some(3.0)]
        );
        assert_eq!(
            transform(
                "non_negative_difference",
                &[Some(3.0), Some(1.0), Some(4.0)]
            ),
            vec![None, None, Some(3.0)]
        );
    }
}
