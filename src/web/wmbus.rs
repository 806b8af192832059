//! `POST /api/v1/ingest/wmbusmeters`: one wireless M-Bus telegram as wmbusmeters'
//! `shell=` hook posts it (`$METER_JSON`), such as
//! `{"_":"telegram","media":"water","meter":"iperl","name":"MyTapWater","id":"33225544","total_m3":123.529,"timestamp":"2024-03-03T18:37:00Z"}`.
//!
//! The meter whose `[meter.wmbus] id` is the telegram's `id` takes `total_m3` as
//! its absolute reading at `timestamp` (the receive time without one), through the
//! reading engine: a meter resending the same total every few seconds adds nothing,
//! a misread is ignored. The meter's own alarm flags (`current_alarms`, `status`,
//! …: leak, burst, backflow, dry) are kept as the meter's alarms for the
//! `meter_alarm` alert kind. 204 once stored (after the fsync), 400 with the reason.

use std::sync::atomic::Ordering::Relaxed;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::config::MeterConfig;
use crate::meter::{MeterIdx, Sample, SampleValue};

/// Why a telegram was not taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error("the body is not JSON ({0}); post wmbusmeters' $METER_JSON as it is")]
    NotJson(String),
    #[error("the body is JSON but not one telegram object")]
    NotObject,
    #[error("the telegram has no \"id\" (the meter's wireless M-Bus id)")]
    NoId,
    #[error(
        "no meter has [meter.wmbus] id = \"{0}\"; add it to the meter this radio meter belongs to"
    )]
    UnknownMeter(String),
    #[error("the telegram of meter {0} has no numeric \"total_m3\" (is it a water meter?)")]
    NoTotal(String),
    #[error("\"timestamp\" {0:?} is not an RFC 3339 time")]
    BadTime(String),
    #[error("\"timestamp\" {time:?} cannot be true: {why}; check the receiver's clock")]
    Implausible {
        time: String,
        why: crate::clock::Implausible,
    },
}

impl Refused {
    /// The reason on `watermeter_points_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::NotJson(_) | Refused::NotObject => "parse",
            Refused::NoId | Refused::UnknownMeter(_) => "no_meter",
            Refused::NoTotal(_) => "no_field",
            Refused::BadTime(_) => "bad_timestamp",
            Refused::Implausible { why, .. } => why.reason(),
        }
    }
}

/// The fields in which wmbusmeters' drivers report a meter's alarms.
const ALARM_FIELDS: [&str; 4] = ["current_alarms", "alarms", "current_status", "status"];

/// The alarm flags of a telegram, lower case (`None`: it reports no status at all;
/// empty: it reports "OK"). Pure.
fn alarms_of(t: &serde_json::Map<String, serde_json::Value>) -> Option<Vec<String>> {
    let mut seen = false;
    let mut flags: Vec<String> = Vec::new();
    for field in ALARM_FIELDS {
        let Some(text) = t.get(field).and_then(serde_json::Value::as_str) else {
            continue;
        };
        seen = true;
        for word in text.split([',', ' ', ';']).map(|w| w.trim().to_lowercase()) {
            let quiet = matches!(
                word.as_str(),
                "" | "ok" | "no_alarm" | "none" | "null" | "no_error"
            );
            if !quiet && !flags.contains(&word) {
                flags.push(word);
            }
        }
    }
    seen.then_some(flags)
}

/// The sample a telegram stands for (without a `timestamp` it gets `now_ms`), and
/// the alarm flags it reports, if it reports any. Pure.
pub fn read(
    meters: &[MeterConfig],
    body: &[u8],
    now_ms: i64,
) -> Result<(Sample, Option<Vec<String>>), Refused> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| Refused::NotJson(e.to_string()))?;
    let t = v.as_object().ok_or(Refused::NotObject)?;
    let id = match t.get("id") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Err(Refused::NoId),
    };
    let idx = meters
        .iter()
        .position(|m| m.wmbus_id.as_deref() == Some(id.as_str()))
        .ok_or_else(|| Refused::UnknownMeter(id.clone()))?;
    let total_m3 = t
        .get("total_m3")
        .and_then(serde_json::Value::as_f64)
        .filter(|x| x.is_finite() && *x >= 0.0)
        .ok_or_else(|| Refused::NoTotal(id.clone()))?;
    let ts_ms = match t.get("timestamp").and_then(serde_json::Value::as_str) {
        Some(text) => {
            let ts = chrono::DateTime::parse_from_rfc3339(text)
                .map(|d| d.timestamp_millis())
                .map_err(|_| Refused::BadTime(text.to_string()))?;
            crate::clock::plausible(ts, now_ms).map_err(|why| Refused::Implausible {
                time: text.to_string(),
                why,
            })?;
            ts
        }
        None => now_ms,
    };
    let sample = Sample {
        meter: idx as MeterIdx,
        ts_ms,
        value: SampleValue::Reading(total_m3 * 1000.0),
    };
    Ok((sample, alarms_of(t)))
}

pub async fn ingest(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let now = crate::clock::now_stamp();
    let (sample, alarms) = read(&state.config.meters, &body, now).map_err(|e| {
        state.stats.rejected(e.reason());
        state.stats.log_bad("http wmbusmeters", &e);
        ApiError::BadRequest(e.to_string())
    })?;
    // The alarms first: the alert evaluation that follows the stored reading sees them.
    if let Some(flags) = alarms {
        let (store, meter) = (state.store.clone(), sample.meter);
        tokio::task::spawn_blocking(move || store.set_meter_alarms(meter, &flags))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    }
    state
        .writer
        .submit_durable(vec![sample])
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    state.stats.accepted_http.fetch_add(1, Relaxed);
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meters() -> Vec<MeterConfig> {
        let mut a = crate::config::builtin_defaults().meters.remove(0);
        a.wmbus_id = Some("33225544".into());
        vec![a]
    }

    fn alarms(body: &[u8]) -> Option<Vec<String>> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        alarms_of(v.as_object()?)
    }

    #[test]
    fn a_telegram_is_its_meters_reading_at_its_time() {
        let body = br#"{"_":"telegram","media":"water","meter":"iperl","name":"MyTapWater","id":"33225544","total_m3":123.529,"timestamp":"2024-03-03T18:37:00Z"}"#;
        let now = 1_709_491_080_000;
        let s = read(&meters(), body, now).unwrap().0;
        assert_eq!(s.meter, 0);
        assert_eq!(s.ts_ms, 1_709_491_020_000);
        assert_eq!(s.value, SampleValue::Reading(123_529.0));
        let no_time = br#"{"id":"33225544","total_m3":1.5}"#;
        assert_eq!(read(&meters(), no_time, now).unwrap().0.ts_ms, now);
    }

    #[test]
    fn alarm_flags_are_read_from_the_drivers_fields() {
        assert_eq!(alarms(br#"{"id":"1","total_m3":1}"#), None);
        assert_eq!(
            alarms(br#"{"current_alarms":"no_alarm","status":"OK"}"#),
            Some(vec![])
        );
        assert_eq!(
            alarms(br#"{"current_alarms":"leak,burst","status":"LEAK"}"#),
            Some(vec!["leak".to_string(), "burst".to_string()])
        );
        assert_eq!(
            alarms(br#"{"status":"DRY BACKFLOW"}"#),
            Some(vec!["dry".to_string(), "backflow".to_string()])
        );
    }

    #[test]
    fn what_cannot_be_used_is_refused_with_the_reason() {
        let cases: [(&[u8], &str); 6] = [
            (b"not json", "not JSON"),
            (b"[1,2]", "not one telegram object"),
            (br#"{"total_m3":1}"#, "no \"id\""),
            (
                br#"{"id":"999","total_m3":1}"#,
                "no meter has [meter.wmbus] id = \"999\"",
            ),
            (
                br#"{"id":"33225544","total_m3":"x"}"#,
                "no numeric \"total_m3\"",
            ),
            (
                br#"{"id":"33225544","total_m3":1,"timestamp":"soon"}"#,
                "not an RFC 3339",
            ),
        ];
        for (body, want) in cases {
            let e = read(&meters(), body, 0).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
