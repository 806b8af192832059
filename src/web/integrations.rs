//! The dashboard's "Integrations" section: how `[forward]` and `[mqtt]` are doing.
//!
//! Shown only when one of them is configured: the forward target, its backlog
//! (events stored but not yet accepted there), its last success and last error;
//! whether the MQTT broker is connected. Reads the integrations' live status and
//! the store's backlog counter; it does not forward or publish anything.

use std::sync::atomic::Ordering::Relaxed;

use chrono::TimeZone;

use super::AppState;

/// The section; `None` in [`view`] when neither integration is configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Integrations {
    pub forward: Option<ForwardView>,
    pub mqtt: Option<MqttView>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ForwardView {
    /// The URL as configured (it never holds a secret).
    pub target: String,
    /// Events waiting to be accepted by the target.
    pub backlog: u64,
    /// Local time of the last accepted batch, or "not yet".
    pub last_success: String,
    /// The last failure, when the last attempt failed.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MqttView {
    /// `host:port`.
    pub broker: String,
    pub connected: bool,
}

pub fn view(state: &AppState) -> Option<Integrations> {
    let config = &state.config;
    let forward = config.forward.as_ref().map(|f| {
        let last = state.forward.last_success_ms.load(Relaxed);
        ForwardView {
            target: f.url.clone(),
            backlog: crate::forward::backlog(&state.store),
            last_success: local(state, last),
            last_error: state.forward.last_error(),
        }
    });
    let mqtt = config.mqtt.as_ref().map(|m| MqttView {
        broker: format!("{}:{}", m.host, m.port),
        connected: state.mqtt.connected.load(Relaxed),
    });
    (forward.is_some() || mqtt.is_some()).then_some(Integrations { forward, mqtt })
}

/// "2026-03-29 14:03:27", or "not yet" for 0 (nothing accepted since the start).
fn local(state: &AppState, ms: i64) -> String {
    if ms <= 0 {
        return "not yet".to_string();
    }
    match state.config.timezone.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => ms.to_string(),
    }
}
