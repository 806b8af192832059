//! `GET /export.csv?meter=…&from=…&to=…&step=…`: usage buckets as a CSV download,
//! `meter,start,liters`, one row per bucket, times in RFC 3339 in the configured
//! zone. The same query (`api::UsageQuery`), buckets and defaults as
//! `/api/v1/meters/{id}/usage`.

use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::api::{rfc3339, UsageQuery};
use super::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub struct Params {
    meter: Option<String>,
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
}

pub async fn export(
    State(state): State<AppState>,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    let id = match p.meter.as_deref().filter(|m| !m.is_empty()) {
        Some(id) => id,
        None => state
            .config
            .meters
            .first()
            .map(|m| m.id.as_str())
            .ok_or_else(|| ApiError::BadRequest("no meter is configured".into()))?,
    };
    let (idx, m) = state
        .meter(id)
        .ok_or_else(|| ApiError::NotFound(format!("no meter with id '{id}' is configured")))?;
    let now = chrono::Utc::now().timestamp_millis();
    let UsageQuery { step, from, to } =
        UsageQuery::parse(p.step.as_deref(), p.from.as_deref(), p.to.as_deref(), now)?;
    let usage = state.store.usage(idx, step, from, to)?;
    let mut body = String::from("meter,start,liters\n");
    for (start, ml) in usage.bounds.iter().zip(&usage.ml) {
        let _ = writeln!(
            body,
            "{},{},{}",
            m.id,
            rfc3339(&state, *start),
            *ml as f64 / 1000.0
        );
    }
    let day = rfc3339(&state, from);
    let filename = format!(
        "watermeter-{}-{}-{}.csv",
        m.id,
        day.get(..10).unwrap_or("export"),
        step.as_str()
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response())
}
