//! Errors as the browser and API clients see them: a status and a JSON
//! `{"error": …}` (InfluxDB's shape). Internal failures are logged here and shown
//! only as "internal error", never with their details.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug)]
pub enum ApiError {
    /// The client's fault, with a message that says what to change.
    BadRequest(String),
    NotFound(String),
    /// Over a size limit (413), with a message naming the limit.
    TooLarge(String),
    /// The store could not save; nothing was acknowledged.
    Unavailable(String),
    /// A read that cannot be answered now (too many at once, past its time):
    /// 503 with `Retry-After`, the message as it is.
    Busy(String),
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, msg) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            ApiError::Unavailable(m) => {
                tracing::error!("request failed: {m}");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the store could not save the data; nothing was stored".to_string(),
                )
            }
            ApiError::Busy(m) => {
                tracing::warn!("request refused: {m}");
                let mut res = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(serde_json::json!({ "error": m })),
                )
                    .into_response();
                res.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static(super::heavy::RETRY_AFTER_S),
                );
                return res;
            }
            ApiError::Internal(m) => {
                tracing::error!("request failed: {m}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_string(),
                )
            }
        };
        (status, Json(serde_json::json!({ "error": msg }))).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::budget::Stop;
        match e {
            crate::store::StoreError::Reopening => ApiError::Unavailable(e.to_string()),
            crate::store::StoreError::Stopped(Stop::Events { .. }) => {
                ApiError::TooLarge(e.to_string())
            }
            crate::store::StoreError::Stopped(_) => ApiError::Busy(e.to_string()),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<crate::store::query::QueryError> for ApiError {
    fn from(e: crate::store::query::QueryError) -> Self {
        match e {
            crate::store::query::QueryError::Range(r) => ApiError::BadRequest(r.to_string()),
            crate::store::query::QueryError::Store(e) => e.into(),
        }
    }
}

/// A handler that panicked (`CatchPanicLayer`): logged, and a 500 that shows no
/// internals; the server goes on.
pub fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string());
    tracing::error!("a request handler panicked: {text}");
    axum::response::IntoResponse::into_response(ApiError::Internal(
        "the request failed inside the server; the details are in its log".to_string(),
    ))
}
