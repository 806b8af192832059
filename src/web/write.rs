//! InfluxDB-compatible ingest: `/write` (1.x), `/api/v2/write` (2.x) and `/ping`
//! (`/query` is `query.rs`).
//!
//! Semantics follow InfluxDB: 204 when every line was stored; a partial write keeps
//! the good lines and answers 400 with `{"error": …}` naming the first bad line.
//! A 204 is sent only after the store's fsync that covers the batch.

use std::sync::atomic::Ordering::Relaxed;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::ingest::points::parse_body;
use crate::line_protocol::Precision;

/// The InfluxDB version we answer to `/ping`, so clients pick the 1.x protocol.
pub const INFLUX_VERSION: &str = "1.8.10-watermeter";

#[derive(Debug, Deserialize)]
pub struct WriteParams {
    precision: Option<String>,
}

/// `POST /write` (InfluxDB 1.x) and `POST /api/v2/write` (2.x): the same lines;
/// `db`, `bucket` and `org` name nothing here (meters are matched by their tags).
pub async fn write(
    State(state): State<AppState>,
    Query(params): Query<WriteParams>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let precision = match params.precision.as_deref() {
        None | Some("") => Precision::Nanoseconds,
        Some(p) => Precision::parse(p).map_err(ApiError::BadRequest)?,
    };
    // A gzip body arrives here decompressed (`RequestDecompressionLayer`); any
    // other encoding was refused with 415 before.
    super::limits::check_lines(&body)?;
    // Lines without a timestamp get this; unplaced until the clock is synchronised.
    let now = crate::clock::now_stamp();
    let parsed = parse_body(
        &state.matcher,
        &body,
        precision,
        now,
        &state.stats,
        "http /write",
    );
    let stored = parsed.samples.len();
    if stored > 0 {
        state
            .writer
            .submit_durable(parsed.samples)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        state.stats.accepted_http.fetch_add(stored as u64, Relaxed);
    }
    match parsed.rejected.first() {
        None => Ok(with_version(StatusCode::NO_CONTENT.into_response())),
        Some((_, first)) => Err(ApiError::BadRequest(format!(
            "partial write: {first} dropped={} (the other {stored} lines were stored)",
            parsed.rejected.len()
        ))),
    }
}

pub async fn ping() -> Response {
    with_version(StatusCode::NO_CONTENT.into_response())
}

pub(super) fn with_version(mut r: Response) -> Response {
    r.headers_mut().insert(
        "x-influxdb-version",
        HeaderValue::from_static(INFLUX_VERSION),
    );
    r.headers_mut()
        .insert("x-influxdb-build", HeaderValue::from_static("OSS"));
    r
}
