//! `/metrics` in the Prometheus text exposition format (version 0.0.4).
//!
//! A small writer ([`Exposition`]) that escapes label values and formats numbers
//! the way Prometheus parses them, and [`render`], which lists every family in one
//! place. To add gauges, add one function like [`integrations`] or [`alerts`] and
//! call it from `render`. Reads only; changes nothing.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::ingest::MeterIdx;

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
}

/// A text exposition being written: `family` once, then its `sample`s.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a metric family with its HELP and TYPE lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    /// One sample line: `name{label="value",…} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", format_value(value));
        self
    }

    /// A family with one unlabelled sample (most gauges and totals).
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Everything `/metrics` shows, at `now_ms`.
pub fn render(state: &AppState, now_ms: i64) -> Result<String, ApiError> {
    let mut e = Exposition::default();
    meters(&mut e, state, now_ms)?;
    ingest(&mut e, state);
    integrations(&mut e, state);
    alerts(&mut e, state)?;
    e.family(
        "watermeter_store_bytes",
        Kind::Gauge,
        "Size of the store on disk.",
    )
    .sample(
        "watermeter_store_bytes",
        &[],
        state.store.size_on_disk() as f64,
    );
    let name = "watermeter_store_recovered_timestamp_seconds";
    let recovered = state
        .store
        .recovery_notice()
        .map_or(0, |n| n.recovered_at_ms / 1000);
    e.family(
        name,
        Kind::Gauge,
        "When unreadable journal records were last found (0: never).",
    )
    .sample(name, &[], recovered as f64);
    Ok(e.finish())
}

fn meters(e: &mut Exposition, state: &AppState, now_ms: i64) -> Result<(), ApiError> {
    let store = &state.store;
    let ids: Vec<(MeterIdx, &str)> = (0..state.config.meters.len())
        .map(|i| (i as MeterIdx, state.config.meters[i].id.as_str()))
        .collect();
    let name = "watermeter_water_liters_total";
    e.family(
        name,
        Kind::Counter,
        "Liters counted per meter since the store began (kept across restarts).",
    );
    for &(i, id) in &ids {
        e.sample(name, &[("meter", id)], store.total_ml(i)? as f64 / 1000.0);
    }
    let name = "watermeter_durable_liters";
    e.family(
        name,
        Kind::Gauge,
        "Each meter's total as of the last sync of the journal: liters a power cut can no longer take.",
    );
    let durable = state.progress.borrow().durable_ml.clone();
    for &(i, id) in &ids {
        let ml = durable.get(usize::from(i)).copied().unwrap_or(0);
        e.sample(name, &[("meter", id)], ml as f64 / 1000.0);
    }
    let name = "watermeter_meter_reading_cubic_meters";
    e.family(name, Kind::Gauge, "What the physical meter shows.");
    for &(i, id) in &ids {
        e.sample(name, &[("meter", id)], store.reading_m3(i)?);
    }
    let name = "watermeter_flow_liters_per_minute";
    e.family(name, Kind::Gauge, "Flow right now.");
    for &(i, id) in &ids {
        e.sample(
            name,
            &[("meter", id)],
            crate::figures::flow_l_per_min(&state.store, i, now_ms)
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        );
    }
    let name = "watermeter_readings_ignored_total";
    e.family(
        name,
        Kind::Counter,
        "Counter and reading values not taken as water since the start, by reason: decrease (a reading below the meter's), jump (more than max_flow_l_per_min can deliver), stale (a counter value older or slightly below the last).",
    );
    let ignored: Vec<_> = ids
        .iter()
        .map(|&(i, _)| store.readings_ignored(i))
        .collect();
    for (&(_, id), (reasons, _)) in ids.iter().zip(&ignored) {
        for &(reason, n) in reasons {
            e.sample(name, &[("meter", id), ("reason", reason)], n as f64);
        }
    }
    let name = "watermeter_readings_reanchored_total";
    e.family(
        name,
        Kind::Counter,
        "Times several readings in a row agreed on a value below the baseline, which then moved down to them.",
    );
    for (&(_, id), (_, reanchored)) in ids.iter().zip(&ignored) {
        e.sample(name, &[("meter", id)], *reanchored as f64);
    }
    Ok(())
}

fn ingest(e: &mut Exposition, state: &AppState) {
    let s = &state.stats;
    let name = "watermeter_points_accepted_total";
    e.family(name, Kind::Counter, "Points stored, by input.");
    for (input, c) in [
        ("udp", &s.accepted_udp),
        ("http", &s.accepted_http),
        ("gpio", &s.accepted_gpio),
        ("mqtt", &s.accepted_mqtt),
    ] {
        e.sample(name, &[("input", input)], c.load(Relaxed) as f64);
    }
    let name = "watermeter_points_rejected_total";
    e.family(name, Kind::Counter, "Points not stored, by reason.");
    for (reason, n) in s.rejected_by_reason() {
        e.sample(name, &[("reason", reason)], n as f64);
    }
    e.single(
        "watermeter_udp_datagrams_total",
        Kind::Counter,
        "UDP datagrams received.",
        s.udp_datagrams.load(Relaxed) as f64,
    );
    let name = "watermeter_udp_dropped_total";
    e.family(name, Kind::Counter, "UDP datagrams dropped, by reason.")
        .sample(
            name,
            &[("reason", "not_allowed")],
            s.udp_dropped_not_allowed.load(Relaxed) as f64,
        )
        .sample(
            name,
            &[("reason", "too_large")],
            s.udp_dropped_too_large.load(Relaxed) as f64,
        );
}

/// Forwarding and MQTT.
fn integrations(e: &mut Exposition, state: &AppState) {
    e.single(
        "watermeter_forward_backlog_events",
        Kind::Gauge,
        "Events stored but not yet accepted by the [forward] target.",
        state.store.forward_backlog() as f64,
    );
    let f = &state.forward;
    if f.enabled.load(Relaxed) {
        e.single(
            "watermeter_forward_sent_events_total",
            Kind::Counter,
            "Events the [forward] target accepted since the start.",
            f.sent_events.load(Relaxed) as f64,
        );
        e.single(
            "watermeter_forward_failed_requests_total",
            Kind::Counter,
            "Forward requests that failed (they are retried).",
            f.failed_requests.load(Relaxed) as f64,
        );
        e.single(
            "watermeter_forward_last_success_timestamp_seconds",
            Kind::Gauge,
            "When the [forward] target last accepted a batch (0: never).",
            f.last_success_ms.load(Relaxed) as f64 / 1000.0,
        );
    }
    let m = &state.mqtt;
    if m.enabled.load(Relaxed) {
        e.single(
            "watermeter_mqtt_connected",
            Kind::Gauge,
            "1 while connected to the MQTT broker.",
            f64::from(u8::from(m.connected.load(Relaxed))),
        );
        e.single(
            "watermeter_mqtt_connects_total",
            Kind::Counter,
            "Connections to the MQTT broker since the start.",
            m.connects.load(Relaxed) as f64,
        );
    }
}

/// Alert states (1 while firing, also while the resolve hold runs) and the outbox.
fn alerts(e: &mut Exposition, state: &AppState) -> Result<(), ApiError> {
    if state.rules.active().is_empty() {
        return Ok(());
    }
    let (loaded, mail) = super::alerts::load(state, None, 0)?;
    let name = "watermeter_alert_firing";
    e.family(name, Kind::Gauge, "1 while the alert is firing.");
    for l in &loaded {
        let firing = l.state.as_ref().is_some_and(|s| s.is_firing());
        e.sample(
            name,
            &[("alert", &l.rule.name)],
            f64::from(u8::from(firing)),
        );
    }
    e.single(
        "watermeter_outbox_pending",
        Kind::Gauge,
        "Alert mails waiting to be sent.",
        mail.outbox.pending as f64,
    );
    e.single(
        "watermeter_outbox_failing",
        Kind::Gauge,
        "1 while the oldest waiting alert mail failed to send.",
        f64::from(u8::from(mail.failing.is_some())),
    );
    Ok(())
}

/// Prometheus text format (see `metrics`).
pub async fn handler(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    let body = render(&state, now)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_escapes_labels_and_formats_values() {
        let mut e = Exposition::default();
        e.family("m_total", Kind::Counter, "Help with \\ and\nnewline.")
            .sample("m_total", &[("meter", "a\"b\\c\nd")], 1.5)
            .sample("m_total", &[("a", "x"), ("b", "y")], 2.0)
            .sample("m_total", &[], f64::NAN)
            .sample("m_total", &[], f64::INFINITY);
        assert_eq!(
            e.finish(),
            "# HELP m_total Help with \\\\ and\\nnewline.\n# TYPE m_total counter\n\
             m_total{meter=\"a\\\"b\\\\c\\nd\"} 1.5\n\
             m_total{a=\"x\",b=\"y\"} 2\n\
             m_total NaN\n\
             m_total +Inf\n"
        );
    }

    #[test]
    fn large_counters_print_without_exponent() {
        assert_eq!(format_value(123_456_789.25), "123456789.25");
        assert_eq!(format_value(0.001), "0.001");
    }
}
