//! Tests for the MQTT topics and payloads; the connection is tested end to end
//! against a real mosquitto (tests/e2e/mqtt.rs).

use std::time::Duration;

use super::*;

fn cfg() -> MqttConfig {
    MqttConfig {
        host: "b".into(),
        port: 1883,
        username: None,
        password: None,
        topic_prefix: "watermeter".into(),
        discovery_prefix: "homeassistant".into(),
        interval: Duration::from_secs(10),
        tls: false,
        ca_file: None,
    }
}

#[test]
fn discovery_makes_one_device_with_three_water_sensors() {
    let meter = &crate::config::builtin_defaults().meters[0];
    let msgs = discovery(&cfg(), meter);
    let topics: Vec<&str> = msgs.iter().map(|m| m.topic.as_str()).collect();
    assert_eq!(
        topics,
        [
            "homeassistant/sensor/watermeter_main/total_m3/config",
            "homeassistant/sensor/watermeter_main/today_l/config",
            "homeassistant/sensor/watermeter_main/flow_l_min/config",
        ]
    );
    let total: serde_json::Value = serde_json::from_str(&msgs[0].payload).unwrap();
    assert_eq!(total["device_class"], "water");
    assert_eq!(total["state_class"], "total_increasing");
    assert_eq!(total["unit_of_measurement"], "m³");
    assert_eq!(total["unique_id"], "watermeter_main_total_m3");
    assert_eq!(total["state_topic"], "watermeter/main/total_m3");
    assert_eq!(total["availability_topic"], "watermeter/status");
    assert_eq!(total["device"]["identifiers"][0], "watermeter_main");
    assert_eq!(total["device"]["name"], "House");
    let today: serde_json::Value = serde_json::from_str(&msgs[1].payload).unwrap();
    assert_eq!(
        (
            today["unit_of_measurement"].as_str(),
            today["state_class"].as_str()
        ),
        (Some("L"), Some("total_increasing"))
    );
    let flow: serde_json::Value = serde_json::from_str(&msgs[2].payload).unwrap();
    assert_eq!(flow["state_class"], "measurement");
    assert_eq!(flow["unit_of_measurement"], "L/min");
}

#[test]
fn states_carry_reading_today_and_flow() {
    let s = MeterSnapshot {
        id: "main".into(),
        name: "House".into(),
        reading_m3: 123.4567891,
        total_liters: 5.0,
        today_liters: 42.5,
        this_hour_liters: 1.0,
        flow_l_per_min: 7.256,
        last_event: None,
    };
    let got: Vec<(String, String)> = states(&cfg(), &s, &mut None)
        .into_iter()
        .map(|m| (m.topic, m.payload))
        .collect();
    let want = [
        ("watermeter/main/total_m3", "123.457"),
        ("watermeter/main/today_l", "42.5"),
        ("watermeter/main/flow_l_min", "7.26"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn the_total_is_never_published_lower_nor_as_zero() {
    let mut s = MeterSnapshot {
        id: "main".into(),
        name: "House".into(),
        reading_m3: 0.0,
        total_liters: 0.0,
        today_liters: 0.0,
        this_hour_liters: 0.0,
        flow_l_per_min: 0.0,
        last_event: None,
    };
    let total = |msgs: Vec<Message>| {
        msgs.into_iter()
            .find(|m| m.topic.ends_with("/total_m3"))
            .map(|m| m.payload)
    };
    let mut published = None;
    assert_eq!(total(states(&cfg(), &s, &mut published)), None);
    s.reading_m3 = 123.5;
    assert_eq!(
        total(states(&cfg(), &s, &mut published)).as_deref(),
        Some("123.500")
    );
    // A reading moved down (a camera re-anchored): HA keeps seeing the higher one.
    s.reading_m3 = 123.4;
    assert_eq!(
        total(states(&cfg(), &s, &mut published)).as_deref(),
        Some("123.500")
    );
    s.reading_m3 = 123.6;
    assert_eq!(
        total(states(&cfg(), &s, &mut published)).as_deref(),
        Some("123.600")
    );
}

#[test]
fn discovery_names_the_entity_for_new_and_old_home_assistant() {
    let meter = &crate::config::builtin_defaults().meters[0];
    let msgs = discovery(&cfg(), meter);
    let total: serde_json::Value = serde_json::from_str(&msgs[0].payload).unwrap();
    assert_eq!(
        total["default_entity_id"],
        "sensor.watermeter_main_total_m3"
    );
    assert_eq!(total["object_id"], "watermeter_main_total_m3");
}
