//! MQTT: publishes each meter's reading (m³), today's liters and the flow rate to a
//! broker, with Home Assistant MQTT discovery so every meter appears in HA as a
//! device with `water` sensors ready for the energy dashboard's water section.
//!
//! Topics (prefix `watermeter` by default):
//! - `<prefix>/status`: `online`/`offline`, retained; `offline` is also the last will,
//!   so HA greys the sensors out when the Pi disappears.
//! - `<prefix>/<meter>/total_m3`, `/today_l`, `/flow_l_min`: retained states,
//!   republished every `interval`.
//! - `<discovery>/sensor/watermeter_<meter>/<sensor>/config`: retained discovery
//!   messages, sent on every (re)connect.
//!
//! The client (rumqttc) reconnects by itself; this task polls it, re-announces on
//! every CONNACK and never blocks the rest of the app: a state that cannot be queued
//! while the broker is away is skipped (the next interval sends a fresh one).
//! The pure parts (topics and payloads) are separate from the loop and tested alone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, LastWill, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use serde_json::json;
use tokio::sync::watch;

use crate::config::Config;
use crate::config::{MeterConfig, MqttConfig};
use crate::figures::{snapshot, MeterSnapshot};
use crate::store::Store;

/// What `/metrics` shows about the broker connection.
#[derive(Debug, Default)]
pub struct Status {
    pub enabled: AtomicBool,
    pub connected: AtomicBool,
    /// Successful connections since the start (1 + reconnects).
    pub connects: AtomicU64,
}

/// One message to publish (always retained).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub topic: String,
    pub payload: String,
}

/// The availability topic, `<prefix>/status`.
pub fn availability_topic(cfg: &MqttConfig) -> String {
    format!("{}/status", cfg.topic_prefix)
}

/// The three sensors of a meter: (key, name, unit, device class, state class).
const SENSORS: [(&str, &str, &str, &str, &str); 3] = [
    (
        "total_m3",
        "Meter reading",
        "m³",
        "water",
        "total_increasing",
    ),
    // Resets at local midnight: total_increasing reads a drop as a new cycle.
    ("today_l", "Today", "L", "water", "total_increasing"),
    (
        "flow_l_min",
        "Flow",
        "L/min",
        "volume_flow_rate",
        "measurement",
    ),
];

/// Home Assistant discovery messages for one meter: one device, three sensors. Pure.
pub fn discovery(cfg: &MqttConfig, meter: &MeterConfig) -> Vec<Message> {
    let device_id = format!("watermeter_{}", meter.id);
    SENSORS
        .iter()
        .map(|(key, name, unit, device_class, state_class)| {
            let payload = json!({
                "name": name,
                "unique_id": format!("{device_id}_{key}"),
                "object_id": format!("{device_id}_{key}"),
                "state_topic": state_topic(cfg, &meter.id, key),
                "unit_of_measurement": unit,
                "device_class": device_class,
                "state_class": state_class,
                "availability_topic": availability_topic(cfg),
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": {
                    "identifiers": [device_id],
                    "name": meter.name,
                    "manufacturer": "watermeter",
                    "model": "S0 water meter",
                    "sw_version": env!("CARGO_PKG_VERSION"),
                },
            });
            Message {
                topic: format!("{}/sensor/{device_id}/{key}/config", cfg.discovery_prefix),
                payload: payload.to_string(),
            }
        })
        .collect()
}

/// The state messages of one meter. Pure.
pub fn states(cfg: &MqttConfig, s: &MeterSnapshot) -> Vec<Message> {
    let values = [
        format!("{:.3}", s.reading_m3),
        format!("{}", round(s.today_liters, 3)),
        format!("{}", round(s.flow_l_per_min, 2)),
    ];
    SENSORS
        .iter()
        .zip(values)
        .map(|((key, ..), payload)| Message {
            topic: state_topic(cfg, &s.id, key),
            payload,
        })
        .collect()
}

fn state_topic(cfg: &MqttConfig, meter: &str, key: &str) -> String {
    format!("{}/{meter}/{key}", cfg.topic_prefix)
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Runs until shutdown: keeps the connection, announces on connect, publishes states.
pub async fn run(
    store: std::sync::Arc<Store>,
    config: std::sync::Arc<Config>,
    status: std::sync::Arc<Status>,
    mut shutdown: watch::Receiver<bool>,
) {
    let state = (&*store, &*config);
    let Some(cfg) = config.mqtt.clone() else {
        return;
    };
    status.enabled.store(true, Relaxed);
    let client_id = format!("watermeter-{}", cfg.topic_prefix.replace('/', "-"));
    let mut opts = MqttOptions::new(client_id, cfg.host.clone(), cfg.port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_last_will(LastWill::new(
        availability_topic(&cfg),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
        opts.set_credentials(u.clone(), p.clone());
    }
    if cfg.tls {
        match crate::tls_client::client_config(cfg.ca_file.as_deref()) {
            Ok(tls) => {
                opts.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls)));
            }
            Err(e) => {
                tracing::error!(
                    host = cfg.host,
                    "[mqtt] {e}; MQTT stays off until [mqtt] is fixed"
                );
                return;
            }
        }
    }
    let capacity = 8 * config.meters.len() + 16;
    let (client, mut events) = AsyncClient::new(opts, capacity);
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures: u32 = 0;
    loop {
        tokio::select! {
            ev = events.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    failures = 0;
                    status.connected.store(true, Relaxed);
                    status.connects.fetch_add(1, Relaxed);
                    tracing::info!(host = cfg.host, port = cfg.port, "connected to the MQTT broker");
                    announce(&client, &cfg, state);
                    publish_states(&client, &cfg, state);
                }
                Ok(_) => {}
                Err(e) => {
                    if status.connected.swap(false, Relaxed) || failures == 0 {
                        tracing::warn!(host = cfg.host, port = cfg.port, "MQTT broker unreachable, retrying: {e}");
                    }
                    failures = failures.saturating_add(1);
                    let wait = crate::forward::backoff(failures).min(Duration::from_secs(30));
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => break,
                    }
                }
            },
            _ = tick.tick() => if status.connected.load(Relaxed) {
                publish_states(&client, &cfg, state);
            },
            _ = shutdown.changed() => break,
        }
    }
    if status.connected.load(Relaxed) {
        let _ = client.try_publish(availability_topic(&cfg), QoS::AtLeastOnce, true, "offline");
        let _ = client.try_disconnect();
        // Let the event loop send what is queued, briefly.
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while events.poll().await.is_ok() {}
        })
        .await;
    }
}

fn announce(client: &AsyncClient, cfg: &MqttConfig, (_, config): (&Store, &Config)) {
    for m in &config.meters {
        for msg in discovery(cfg, m) {
            send(client, msg);
        }
    }
    send(
        client,
        Message {
            topic: availability_topic(cfg),
            payload: "online".into(),
        },
    );
}

fn publish_states(client: &AsyncClient, cfg: &MqttConfig, (store, config): (&Store, &Config)) {
    let now = chrono::Utc::now().timestamp_millis();
    for i in 0..config.meters.len() {
        match snapshot(store, config, i as crate::meter::MeterIdx, now) {
            Ok(s) => states(cfg, &s).into_iter().for_each(|m| send(client, m)),
            Err(e) => tracing::warn!("reading a meter for MQTT failed: {e:?}"),
        }
    }
}

fn send(client: &AsyncClient, msg: Message) {
    if let Err(e) = client.try_publish(msg.topic, QoS::AtLeastOnce, true, msg.payload) {
        tracing::debug!("an MQTT message was not queued (broker away?): {e}");
    }
}

#[cfg(test)]
mod tests;
