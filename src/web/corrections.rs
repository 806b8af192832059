//! `POST /api/v1/meters/{id}/corrections` and `GET` of the same: the owner removes
//! or corrects the events of a range, and reads the audit list. The work is
//! `Store::correct` (one journal record); this file reads and checks the request.
//!
//! Body: `{"from": RFC 3339, "to": RFC 3339, "action": "delete" | "set_liters",
//! "liters": number (for set_liters), "reason": text}`. Events already forwarded or
//! mailed are not recalled (docs/integrations.md says so).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::store::correct::Correction;

/// A correction as the API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub from: String,
    pub to: String,
    pub action: String,
    pub liters: Option<f64>,
    pub reason: String,
}

/// What a correction does, checked. Pure.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub from_ms: i64,
    pub to_ms: i64,
    pub set_liters: Option<f64>,
    pub reason: String,
}

/// The request's words checked against the clock at `now_ms`; an error says
/// what to change. Pure.
pub fn check(body: &[u8], now_ms: i64) -> Result<Checked, String> {
    let r: Request = serde_json::from_slice(body).map_err(|e| {
        format!("the body must be JSON like {{\"from\":\"2026-11-26T00:00:00+01:00\",\"to\":\"2026-11-26T06:00:00+01:00\",\"action\":\"delete\",\"reason\":\"camera misread\"}} ({e})")
    })?;
    let time = |key: &str, v: &str| {
        chrono::DateTime::parse_from_rfc3339(v)
            .map(|t| t.timestamp_millis())
            .map_err(|_| format!("\"{key}\" must be an RFC 3339 time such as 2026-11-26T00:00:00+01:00, not {v:?}"))
    };
    let (from_ms, to_ms) = (time("from", &r.from)?, time("to", &r.to)?);
    if to_ms <= from_ms {
        return Err("\"to\" must be after \"from\"".into());
    }
    // The same rule as every input: history begins in 2000 and ends now. A range
    // beyond it holds nothing to correct, and set_liters would put water there.
    if crate::clock::plausible(from_ms, now_ms).is_err()
        || crate::clock::plausible(to_ms.saturating_sub(1), now_ms).is_err()
    {
        return Err(format!(
            "the range must lie between 2000-01-01 and now ({}), as every stored event does",
            chrono::DateTime::from_timestamp_millis(now_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        ));
    }
    let set_liters = match (r.action.as_str(), r.liters) {
        ("delete", None) => None,
        ("delete", Some(_)) => {
            return Err("\"liters\" applies only to \"set_liters\"; remove it to delete".into())
        }
        ("set_liters", Some(l)) if (0.0..=1e7).contains(&l) => Some(l),
        ("set_liters", _) => {
            return Err(
                "\"set_liters\" needs \"liters\": the liters the range really held, 0 or more"
                    .into(),
            )
        }
        (other, _) => {
            return Err(format!(
                "\"action\" must be \"delete\" or \"set_liters\", not {other:?}"
            ))
        }
    };
    let reason = r.reason.trim().to_string();
    if reason.is_empty() {
        return Err("\"reason\" must say why, for the audit list".into());
    }
    Ok(Checked {
        from_ms,
        to_ms,
        set_liters,
        reason,
    })
}

#[derive(Debug, Serialize)]
pub struct Line {
    pub at: String,
    pub from: String,
    pub to: String,
    pub action: String,
    pub removed_liters: f64,
    pub set_liters: f64,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Listing {
    pub meter: String,
    pub corrections: Vec<Line>,
}

pub fn line(state: &AppState, c: &Correction) -> Line {
    let t = |ms| crate::figures::rfc3339(state.config.timezone, ms);
    Line {
        at: t(c.at_ms),
        from: t(c.from_ms),
        to: t(c.to_ms),
        action: c.action.clone(),
        removed_liters: c.removed_liters,
        set_liters: c.set_liters,
        reason: c.reason.clone(),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Listing>, ApiError> {
    let (idx, _) = state
        .meter(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no meter with id '{id}' is configured")))?;
    let store = state.store.clone();
    let all = tokio::task::spawn_blocking(move || store.corrections(idx))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(Listing {
        meter: id,
        corrections: all.iter().map(|c| line(&state, c)).collect(),
    }))
}

pub async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (idx, _) = state
        .meter(&id)
        .ok_or_else(|| ApiError::NotFound(format!("no meter with id '{id}' is configured")))?;
    let c = check(&body, crate::clock::now_stamp()).map_err(ApiError::BadRequest)?;
    let store = state.store.clone();
    let now = chrono::Utc::now().timestamp_millis();
    let done = tokio::task::spawn_blocking(move || {
        store.correct(idx, c.from_ms, c.to_ms, c.set_liters, &c.reason, now)?;
        store.corrections(idx)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    tracing::info!(meter = %id, "history corrected");
    let last = done.last().map(|c| line(&state, c));
    Ok((StatusCode::CREATED, Json(last)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correction_says_what_to_change_when_it_is_wrong() {
        let now = 1_796_550_000_000; // 2026-12-06T09:40:00Z
        let ok = check(br#"{"from":"2025-11-26T00:00:00+01:00","to":"2025-11-26T06:00:00+01:00","action":"set_liters","liters":12.5,"reason":"misread"}"#, now).unwrap();
        assert_eq!(ok.set_liters, Some(12.5));
        assert_eq!(ok.to_ms - ok.from_ms, 6 * 3_600_000);
        let cases: [(&[u8], &str); 9] = [
            (br#"{"from":"1970-01-01T00:00:00Z","to":"2025-11-26T06:00:00Z","action":"delete","reason":"r"}"#, "between 2000-01-01 and now"),
            (br#"{"from":"2025-11-26T00:00:00Z","to":"2400-01-01T00:00:00Z","action":"set_liters","liters":5,"reason":"r"}"#, "between 2000-01-01 and now"),
            (br#"{"from":"2026-12-06T09:00:00Z","to":"2026-12-06T10:00:00Z","action":"delete","reason":"r"}"#, "between 2000-01-01 and now"),
            (b"{}", "must be JSON like"),
            (br#"{"from":"x","to":"2026-11-26T06:00:00Z","action":"delete","reason":"r"}"#, "\"from\" must be an RFC 3339"),
            (br#"{"from":"2026-11-26T06:00:00Z","to":"2026-11-26T06:00:00Z","action":"delete","reason":"r"}"#, "after"),
            (br#"{"from":"2026-11-26T00:00:00Z","to":"2026-11-26T06:00:00Z","action":"set_liters","reason":"r"}"#, "needs \"liters\""),
            (br#"{"from":"2026-11-26T00:00:00Z","to":"2026-11-26T06:00:00Z","action":"drop","reason":"r"}"#, "\"delete\" or \"set_liters\""),
            (br#"{"from":"2026-11-26T00:00:00Z","to":"2026-11-26T06:00:00Z","action":"delete","reason":" "}"#, "say why"),
        ];
        for (body, want) in cases {
            let e = check(body, now).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }
}
