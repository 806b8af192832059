//! The JSON API (`/api/v1/…`), `/metrics` and `/healthz`.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, TimeZone};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::buckets::Step;
use crate::ingest::MeterIdx;

/// A meter's state at a glance (the API's and the pages' view of it).
#[derive(Debug, Clone, Serialize)]
pub struct MeterSnapshot {
    pub id: String,
    pub name: String,
    pub reading_m3: f64,
    pub total_liters: f64,
    pub today_liters: f64,
    pub this_hour_liters: f64,
    pub flow_l_per_min: f64,
    pub last_event: Option<String>,
}

pub fn snapshot(state: &AppState, idx: MeterIdx, now_ms: i64) -> Result<MeterSnapshot, ApiError> {
    let store = &state.store;
    let m = &state.config.meters[usize::from(idx)];
    let today = store
        .usage(idx, Step::Day, now_ms, now_ms)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let hour = store
        .usage(idx, Step::Hour, now_ms, now_ms)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(MeterSnapshot {
        id: m.id.clone(),
        name: m.name.clone(),
        reading_m3: round(store.reading_m3(idx)?, 6),
        total_liters: store.total_ml(idx)? as f64 / 1000.0,
        today_liters: today.total_ml() as f64 / 1000.0,
        this_hour_liters: hour.total_ml() as f64 / 1000.0,
        flow_l_per_min: round(flow_l_per_min(state, idx, now_ms)?, 2),
        last_event: store.last_event_ms(idx)?.map(|t| rfc3339(state, t)),
    })
}

/// Flow now: the last pulse's volume over the time since the pulse before it, or
/// over the time since the last pulse when that is longer (so the figure decays
/// when water stops), and 0 once nothing came for a minute and two intervals. A
/// lone pulse (none before it in the last hour) counts over at least a minute:
/// its own interval is unknown, and it must not read as a torrent.
pub(crate) fn flow_l_per_min(
    state: &AppState,
    idx: MeterIdx,
    now_ms: i64,
) -> Result<f64, ApiError> {
    let mut last = [(0i64, 0u64); 2];
    let mut n = 0;
    state
        .store
        .for_each_event(idx, now_ms - 3_600_000, now_ms + 1, |ts, ml| {
            last = [last[1], (ts, ml)];
            n += 1;
        })?;
    if n == 0 {
        return Ok(0.0);
    }
    let (t1, ml) = last[1];
    let since = (now_ms - t1).max(0);
    let interval = if n >= 2 {
        (t1 - last[0].0).max(1000)
    } else {
        since.max(60_000)
    };
    if since > (2 * interval).max(60_000) {
        return Ok(0.0);
    }
    Ok(ml as f64 / 1000.0 / (interval.max(since) as f64 / 60_000.0))
}

pub async fn meters(State(state): State<AppState>) -> Result<Json<Vec<MeterSnapshot>>, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    let list = (0..state.config.meters.len())
        .map(|i| snapshot(&state, i as MeterIdx, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(list))
}

pub async fn meter(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<MeterSnapshot>, ApiError> {
    let (idx, _) = state.meter(&id).ok_or_else(|| unknown_meter(&id))?;
    Ok(Json(snapshot(
        &state,
        idx,
        chrono::Utc::now().timestamp_millis(),
    )?))
}

#[derive(Debug, Deserialize)]
pub struct UsageParams {
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct UsageBody {
    meter: String,
    step: Step,
    unit: &'static str,
    buckets: Vec<Bucket>,
    total_liters: f64,
}

#[derive(Debug, Serialize)]
pub struct Bucket {
    start: String,
    liters: f64,
}

pub async fn usage(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<UsageParams>,
) -> Result<Json<UsageBody>, ApiError> {
    let (idx, m) = state.meter(&id).ok_or_else(|| unknown_meter(&id))?;
    let step_name = p.step.as_deref().unwrap_or("hour");
    let step = Step::parse(step_name).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "step '{step_name}' is not one of minute, hour, day, month"
        ))
    })?;
    let now = chrono::Utc::now().timestamp_millis();
    let to = parse_time("to", p.to.as_deref())?.unwrap_or(now);
    let default_span = match step {
        Step::Minute => 3_600_000,
        Step::Hour => 24 * 3_600_000,
        Step::Day => 30 * 86_400_000,
        Step::Month => 365 * 86_400_000,
    };
    let from = parse_time("from", p.from.as_deref())?.unwrap_or(to - default_span);
    if from > to {
        return Err(ApiError::BadRequest("'from' is after 'to'".into()));
    }
    let usage = state.store.usage(idx, step, from, to)?;
    let buckets = usage
        .bounds
        .iter()
        .zip(&usage.ml)
        .map(|(&start, &ml)| Bucket {
            start: rfc3339(&state, start),
            liters: ml as f64 / 1000.0,
        })
        .collect();
    Ok(Json(UsageBody {
        meter: m.id.clone(),
        step,
        unit: "L",
        buckets,
        total_liters: usage.total_ml() as f64 / 1000.0,
    }))
}

fn parse_time(name: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(v).map(|t| Some(t.timestamp_millis())).map_err(|e| {
        ApiError::BadRequest(format!("'{name}' must be an RFC 3339 time such as 2026-11-26T00:00:00+01:00, not '{v}' ({e})"))
    })
}

/// An instant in the configured zone, e.g. `2026-11-26T00:00:00+01:00`.
pub fn rfc3339(state: &AppState, ts_ms: i64) -> String {
    let tz = state.config.timezone;
    match tz.timestamp_millis_opt(ts_ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, false),
        None => ts_ms.to_string(),
    }
}

fn unknown_meter(id: &str) -> ApiError {
    ApiError::NotFound(format!("no meter with id '{id}' is configured"))
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

pub async fn healthz(State(state): State<AppState>) -> Response {
    // A write, an fsync and perhaps a reopen: not on the async workers.
    let store = state.store.clone();
    let checked =
        tokio::task::spawn_blocking(move || store.check_writable().map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(format!("the check failed: {e}")));
    match checked {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!("health check: the store is not writable: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "store not writable\n").into_response()
        }
    }
}

/// Prometheus text format (see `metrics`).
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    let body = super::metrics::render(&state, now)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
