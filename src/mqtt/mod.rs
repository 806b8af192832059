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
//! The same connection also takes water in: meters with `[meter.mqtt]` subscribe to
//! their topic on every connect, and each message goes through `input` into the
//! writer (readings and counters through the store's reading engine).
//!
//! The client (rumqttc) reconnects by itself; this task polls it, re-announces on
//! every CONNACK and never blocks the rest of the app: a state that cannot be queued
//! while the broker is away is skipped (the next interval sends a fresh one).
//! The pure parts (topics and payloads) are separate from the loop and tested alone.

pub mod input;

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
use crate::ingest::stats::IngestStats;
use crate::store::writer::Writer;
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
                // HA 2026.4 and later take the entity id from `default_entity_id`;
                // older ones from `object_id`.
                "default_entity_id": format!("sensor.{device_id}_{key}"),
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

/// The state messages of one meter. Pure. `published_m3` is the highest reading
/// published before (this run): HA's `total_increasing` reads any drop as a meter
/// reset and books the whole reading again, so the total is never published lower,
/// nor as 0 before anything was counted (a fresh store); the other two still go.
pub fn states(cfg: &MqttConfig, s: &MeterSnapshot, published_m3: &mut Option<f64>) -> Vec<Message> {
    let total = match *published_m3 {
        _ if s.reading_m3 <= 0.0 => None,
        Some(before) if s.reading_m3 < before => Some(before),
        _ => Some(s.reading_m3),
    };
    if total.is_some() {
        *published_m3 = total;
    }
    let values = [
        total.map(|t| format!("{t:.3}")),
        Some(format!("{}", round(s.today_liters, 3))),
        Some(format!("{}", round(s.flow_l_per_min, 2))),
    ];
    SENSORS
        .iter()
        .zip(values)
        .filter_map(|((key, ..), payload)| {
            Some(Message {
                topic: state_topic(cfg, &s.id, key),
                payload: payload?,
            })
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

/// Where messages on the meters' topics go.
pub struct Intake {
    pub writer: Writer,
    pub stats: std::sync::Arc<IngestStats>,
}

/// Runs until shutdown: keeps the connection, announces on connect, publishes
/// states, and takes the meters' topics in.
pub async fn run(
    store: std::sync::Arc<Store>,
    config: std::sync::Arc<Config>,
    status: std::sync::Arc<Status>,
    intake: Intake,
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
    let mut published = vec![None; config.meters.len()];
    loop {
        tokio::select! {
            ev = events.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    failures = 0;
                    status.connected.store(true, Relaxed);
                    status.connects.fetch_add(1, Relaxed);
                    tracing::info!(host = cfg.host, port = cfg.port, "connected to the MQTT broker");
                    announce(&client, &cfg, state);
                    publish_states(&client, &cfg, state, &mut published);
                    for topic in input::topics(&config.meters) {
                        if let Err(e) = client.try_subscribe(topic, QoS::AtLeastOnce) {
                            tracing::warn!(topic, "subscribing failed: {e}");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    take_in(&intake, &config, &p.topic, &p.payload).await;
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
                publish_states(&client, &cfg, state, &mut published);
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

/// One message on a meter's topic into the writer; a bad one is counted and logged.
async fn take_in(intake: &Intake, config: &Config, topic: &str, payload: &[u8]) {
    let now = crate::clock::now_stamp();
    match input::sample(&config.meters, topic, payload, now) {
        Ok(sample) => {
            if intake.writer.submit(vec![sample]).await.is_ok() {
                intake.stats.accepted_mqtt.fetch_add(1, Relaxed);
            }
        }
        Err(e) => {
            intake.stats.rejected(e.reason());
            intake.stats.log_bad("mqtt", &e);
        }
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

fn publish_states(
    client: &AsyncClient,
    cfg: &MqttConfig,
    (store, config): (&Store, &Config),
    published: &mut [Option<f64>],
) {
    let now = chrono::Utc::now().timestamp_millis();
    for (i, published_m3) in published.iter_mut().enumerate().take(config.meters.len()) {
        match snapshot(store, config, i as crate::meter::MeterIdx, now) {
            Ok(s) => states(cfg, &s, published_m3)
                .into_iter()
                .for_each(|m| send(client, m)),
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
