//! MQTT in: the topics meters take (`[meter.mqtt]`) and what one message means.
//! Pure; the connection loop in `mod.rs` subscribes and hands messages here.
//!
//! A payload is a plain number (`123.529`, as ESPHome, Tasmota or
//! AI-on-the-edge-device's `<maintopic>/<number>/value` send it) or, with
//! `json_field`, a JSON object holding the number (wmbusmeters' `wmbusmeters/<name>`
//! JSON, `"total_m3"`). `form` says what it is: the meter's own reading, a counter
//! that restarts on reboot, or liters since the last message; `unit` m³ or liters.

use crate::config::{MeterConfig, MqttForm};
use crate::meter::{MeterIdx, Sample, SampleValue};

/// Why a message carried no water watermeter could use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error("topic {0} is not a meter's [meter.mqtt] topic")]
    NoMeter(String),
    #[error("the payload on {topic} is not a number: {payload:?}")]
    NotANumber { topic: String, payload: String },
    #[error(
        "the payload on {topic} is not a JSON object with a number in \"{field}\": {payload:?}"
    )]
    NoField {
        topic: String,
        field: String,
        payload: String,
    },
}

impl Refused {
    /// The reason on `watermeter_points_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::NoMeter(_) => "no_meter",
            Refused::NotANumber { .. } => "bad_value",
            Refused::NoField { .. } => "no_field",
        }
    }
}

/// Every topic a meter takes.
pub fn topics(meters: &[MeterConfig]) -> Vec<&str> {
    meters
        .iter()
        .filter_map(|m| m.mqtt_in.as_ref().map(|i| i.topic.as_str()))
        .collect()
}

/// The sample one message stands for, stamped `now_ms` (MQTT carries no time).
pub fn sample(
    meters: &[MeterConfig],
    topic: &str,
    payload: &[u8],
    now_ms: i64,
) -> Result<Sample, Refused> {
    let (idx, input) = meters
        .iter()
        .enumerate()
        .find_map(|(i, m)| {
            m.mqtt_in
                .as_ref()
                .filter(|input| input.topic == topic)
                .map(|input| (i, input))
        })
        .ok_or_else(|| Refused::NoMeter(topic.to_string()))?;
    let text = String::from_utf8_lossy(payload);
    let shown = || text.chars().take(120).collect::<String>();
    let number = match &input.json_field {
        None => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| Refused::NotANumber {
                topic: topic.to_string(),
                payload: shown(),
            })?,
        Some(field) => serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| match v.get(field)? {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| Refused::NoField {
                topic: topic.to_string(),
                field: field.clone(),
                payload: shown(),
            })?,
    };
    let liters = number * input.liters_per_unit;
    let value = match input.form {
        MqttForm::Reading => SampleValue::Reading(liters),
        MqttForm::Counter => SampleValue::Counter(liters),
        MqttForm::Liters => SampleValue::Liters(liters),
    };
    Ok(Sample {
        meter: idx as MeterIdx,
        ts_ms: now_ms,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MqttIn;

    fn meters() -> Vec<MeterConfig> {
        let base = crate::config::builtin_defaults().meters.remove(0);
        let with = |id: &str, topic: &str, json: Option<&str>, form, unit| {
            let mut m = base.clone();
            m.id = id.into();
            m.mqtt_in = Some(MqttIn {
                topic: topic.into(),
                json_field: json.map(str::to_string),
                form,
                liters_per_unit: unit,
            });
            m
        };
        vec![
            with(
                "radio",
                "wmbusmeters/MyTapWater",
                Some("total_m3"),
                MqttForm::Reading,
                1000.0,
            ),
            with("esp", "esphome/water/total", None, MqttForm::Counter, 1.0),
            with(
                "cam",
                "watermeter/main/value",
                None,
                MqttForm::Reading,
                1000.0,
            ),
        ]
    }

    #[test]
    fn each_senders_shape_becomes_its_meters_sample() {
        let m = meters();
        let radio = br#"{"_":"telegram","media":"water","id":"33225544","total_m3":123.529}"#;
        let s = sample(&m, "wmbusmeters/MyTapWater", radio, 5).unwrap();
        assert_eq!(
            (s.meter, s.ts_ms, s.value),
            (0, 5, SampleValue::Reading(123_529.0))
        );
        let s = sample(&m, "esphome/water/total", b"1234", 5).unwrap();
        assert_eq!(s.value, SampleValue::Counter(1234.0));
        let s = sample(&m, "watermeter/main/value", b" 123.5405\n", 5).unwrap();
        assert_eq!(s.value, SampleValue::Reading(123_540.5));
        assert_eq!(topics(&m).len(), 3);
    }

    #[test]
    fn what_is_not_water_is_refused_with_the_reason() {
        let m = meters();
        let e = sample(&m, "other/topic", b"1", 0).unwrap_err();
        assert_eq!(e.reason(), "no_meter");
        let e = sample(&m, "esphome/water/total", b"unavailable", 0).unwrap_err();
        assert!(
            e.to_string().contains("not a number: \"unavailable\""),
            "{e}"
        );
        let e = sample(&m, "wmbusmeters/MyTapWater", b"[1]", 0).unwrap_err();
        assert_eq!(e.reason(), "no_field");
        let e = sample(&m, "esphome/water/total", b"-5", 0).unwrap_err();
        assert_eq!(e.reason(), "bad_value");
    }
}
