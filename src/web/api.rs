//! The JSON API (`/api/v1/…`) and `/healthz`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::DateTime;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::buckets::Step;
use crate::ingest::MeterIdx;

pub use crate::figures::MeterSnapshot;

/// [`crate::figures::snapshot`] for a handler: errors as the API words them.
pub fn snapshot(state: &AppState, idx: MeterIdx, now_ms: i64) -> Result<MeterSnapshot, ApiError> {
    crate::figures::snapshot(&state.store, &state.config, idx, now_ms)
        .map_err(|e| ApiError::Internal(e.to_string()))
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
    /// With a `[tariff]`: its currency code, and the cost of the whole range.
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_cost: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Bucket {
    start: String,
    liters: f64,
    /// With a `[tariff]`: water and sewage for these liters (no fixed charge).
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<f64>,
}

pub async fn usage(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<UsageParams>,
) -> Result<Json<UsageBody>, ApiError> {
    let (idx, m) = state.meter(&id).ok_or_else(|| unknown_meter(&id))?;
    let now = chrono::Utc::now().timestamp_millis();
    let UsageQuery { step, from, to } =
        UsageQuery::parse(p.step.as_deref(), p.from.as_deref(), p.to.as_deref(), now)?;
    let usage = state.store.usage(idx, step, from, to)?;
    let costs = match &state.config.tariff {
        Some(t) => Some(bucket_costs(&state, t, idx, &usage.bounds, &usage.ml)?),
        None => None,
    };
    let buckets = usage
        .bounds
        .iter()
        .zip(&usage.ml)
        .enumerate()
        .map(|(i, (&start, &ml))| Bucket {
            start: rfc3339(&state, start),
            liters: ml as f64 / 1000.0,
            cost: costs.as_ref().and_then(|c| c.get(i).copied()).map(cents),
        })
        .collect();
    Ok(Json(UsageBody {
        meter: m.id.clone(),
        step,
        unit: "L",
        buckets,
        total_liters: usage.total_ml() as f64 / 1000.0,
        currency: state.config.tariff.as_ref().map(|t| t.currency.clone()),
        total_cost: costs.map(|c| cents(c.iter().sum())),
    }))
}

/// The cost of each bucket: its liters priced after the liters of its tier period
/// before it (marginal tiers); shown rounded to 1/100 of the currency.
fn bucket_costs(
    state: &AppState,
    t: &crate::config::TariffConfig,
    idx: MeterIdx,
    starts: &[i64],
    ml: &[u64],
) -> Result<Vec<f64>, ApiError> {
    let tz = state.config.timezone;
    let mut out = Vec::with_capacity(ml.len());
    let mut period: Option<(i64, f64)> = None; // (period start, liters before the bucket)
    for (&start, &bucket_ml) in starts.iter().zip(ml) {
        let p = crate::tariff::period_start(t, tz, start);
        let before = match period {
            Some((q, liters)) if q == p => liters,
            _ => state.store.ml_between(idx, p, start)? as f64 / 1000.0,
        };
        let liters = bucket_ml as f64 / 1000.0;
        out.push(crate::tariff::cost(t, before, liters));
        period = Some((p, before + liters));
    }
    Ok(out)
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The span and step of a usage query, parsed the same way for the JSON API and
/// the CSV export: `step` defaults to hour (an empty `step=` is an error), `to` to
/// now, `from` to one span of the step before `to` (an hour of minutes, a day of
/// hours, 30 days, a year of months).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsageQuery {
    pub step: Step,
    pub from: i64,
    pub to: i64,
}

impl UsageQuery {
    pub fn parse(
        step: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        now_ms: i64,
    ) -> Result<UsageQuery, ApiError> {
        let step_name = step.unwrap_or("hour");
        let step = Step::parse(step_name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "step '{step_name}' is not one of minute, hour, day, month"
            ))
        })?;
        let to = parse_time("to", to)?.unwrap_or(now_ms);
        let default_span = match step {
            Step::Minute => 3_600_000,
            Step::Hour => 24 * 3_600_000,
            Step::Day => 30 * 86_400_000,
            Step::Month => 365 * 86_400_000,
        };
        let from = parse_time("from", from)?.unwrap_or(to - default_span);
        if from > to {
            return Err(ApiError::BadRequest("'from' is after 'to'".into()));
        }
        Ok(UsageQuery { step, from, to })
    }
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
    crate::figures::rfc3339(state.config.timezone, ts_ms)
}

fn unknown_meter(id: &str) -> ApiError {
    ApiError::NotFound(format!("no meter with id '{id}' is configured"))
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

#[cfg(test)]
mod usage_query_tests {
    use super::*;

    #[test]
    fn an_empty_step_is_an_error_and_a_missing_one_means_hours_over_a_day() {
        let now = 1_774_742_400_000;
        assert!(UsageQuery::parse(Some(""), None, None, now).is_err());
        assert_eq!(
            UsageQuery::parse(None, None, None, now).ok(),
            Some(UsageQuery {
                step: Step::Hour,
                from: now - 86_400_000,
                to: now
            })
        );
        let month = UsageQuery::parse(Some("month"), None, None, now).ok();
        assert_eq!(month.map(|q| q.to - q.from), Some(365 * 86_400_000));
        assert!(UsageQuery::parse(
            Some("day"),
            Some("2026-03-30T00:00:00Z"),
            Some("2026-03-29T00:00:00Z"),
            now
        )
        .is_err());
    }
}
