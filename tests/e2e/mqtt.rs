//! `[mqtt]` against a real mosquitto: discovery, states, last will, reconnects.

use std::time::Duration;

use crate::servers::{eventually, mosquitto, mosquitto_tls, publish, retained, retained_tls};
use crate::util::{post, App};

fn value<'a>(msgs: &'a [(String, String)], topic: &str) -> Option<&'a str> {
    msgs.iter()
        .find(|(t, _)| t == topic)
        .map(|(_, p)| p.as_str())
}

#[test]
fn meters_appear_in_home_assistant_and_come_back_after_a_broker_restart() {
    let mut broker = mosquitto();
    let extra = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\ninterval = \"1s\"\n",
        broker.port
    );
    let (app, _tmp) = App::start("UTC", &extra);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let body = format!("water,meter=main liters=5 {now_ms}\n");
    assert_eq!(post(&app.url("/write?precision=ms"), &body).status, 204);

    let topics = ["homeassistant/#", "watermeter/#"];
    let msgs = eventually(Duration::from_secs(30), || {
        let m = retained(broker.port, &topics);
        (value(&m, "watermeter/main/today_l") == Some("5")).then_some(m)
    })
    .expect("the state of today's liters was not published");
    assert_eq!(value(&msgs, "watermeter/status"), Some("online"));
    assert_eq!(value(&msgs, "watermeter/main/total_m3"), Some("0.005"));
    assert!(value(&msgs, "watermeter/main/flow_l_min").is_some());
    let config = value(
        &msgs,
        "homeassistant/sensor/watermeter_main/total_m3/config",
    )
    .expect("discovery message");
    let config: serde_json::Value = serde_json::from_str(config).unwrap();
    assert_eq!(config["device_class"], "water");
    assert_eq!(config["state_class"], "total_increasing");
    assert_eq!(config["unit_of_measurement"], "m³");
    assert_eq!(config["state_topic"], "watermeter/main/total_m3");
    assert_eq!(config["device"]["identifiers"][0], "watermeter_main");
    for key in ["today_l", "flow_l_min"] {
        let topic = format!("homeassistant/sensor/watermeter_main/{key}/config");
        assert!(value(&msgs, &topic).is_some(), "{topic} missing");
    }

    // The broker forgets everything (no persistence): the app must reconnect and re-announce.
    broker.stop();
    std::thread::sleep(Duration::from_secs(2));
    broker.start();
    let again = eventually(Duration::from_secs(60), || {
        let m = retained(broker.port, &topics);
        let announced = value(&m, "homeassistant/sensor/watermeter_main/total_m3/config").is_some();
        (announced && value(&m, "watermeter/main/today_l") == Some("5")).then_some(m)
    });
    assert!(
        again.is_some(),
        "no discovery/state after the broker restart: {}",
        broker.log()
    );

    // The last will marks the device unavailable when the app dies.
    app.kill();
    let offline = eventually(Duration::from_secs(90), || {
        let m = retained(broker.port, &["watermeter/status"]);
        (value(&m, "watermeter/status") == Some("offline")).then_some(())
    });
    assert!(offline.is_some(), "no offline status after the app died");
}

#[test]
fn mqtt_over_tls_trusts_the_owners_ca() {
    let broker = mosquitto_tls();
    let ca = broker.dir.path().join("ca.pem");
    let extra = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\ntls = true\nca_file = \"{}\"\ninterval = \"1s\"\n",
        broker.port,
        ca.display()
    );
    let (app, _tmp) = App::start("UTC", &extra);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let body = format!("water,meter=main liters=7 {now_ms}\n");
    assert_eq!(post(&app.url("/write?precision=ms"), &body).status, 204);
    let msgs = eventually(Duration::from_secs(30), || {
        let m = retained_tls(broker.port, &ca, &["watermeter/#"]);
        (value(&m, "watermeter/main/today_l") == Some("7")).then_some(m)
    })
    .expect("no state arrived over TLS");
    assert_eq!(value(&msgs, "watermeter/status"), Some("online"));
    // The broker speaks only TLS: a plain client gets nothing.
    assert!(retained(broker.port, &["watermeter/#"]).is_empty());
}

/// Water in over MQTT, as the senders publish it: wmbusmeters' JSON with the
/// meter's own reading, and a plain counter from ESPHome that repeats, goes back
/// by a stale message and counts on.
#[test]
fn meters_take_their_water_from_mqtt_topics() {
    let broker = mosquitto();
    let extra = format!(
        "[[meter]]\nid = \"radio\"\n[meter.mqtt]\ntopic = \"wmbusmeters/MyTapWater\"\njson_field = \"total_m3\"\nform = \"reading\"\n\
         [[meter]]\nid = \"esp\"\nline_protocol = {{ tags = {{ meter = \"esp\" }} }}\n[meter.mqtt]\ntopic = \"esphome/water/total\"\nform = \"counter\"\nunit = \"l\"\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {}\ninterval = \"1s\"\n",
        broker.port
    );
    let (app, _tmp) = App::start("UTC", &extra);
    let connected = eventually(Duration::from_secs(30), || {
        let m = crate::util::get(&app.url("/metrics")).body;
        m.contains("watermeter_mqtt_connected 1").then_some(())
    });
    assert!(connected.is_some(), "never connected");
    // The subscription follows the CONNACK; give it a moment to reach the broker.
    std::thread::sleep(Duration::from_millis(500));
    let telegram = |m3: &str| {
        format!(
            r#"{{"_":"telegram","media":"water","meter":"iperl","name":"MyTapWater","id":"33225544","total_m3":{m3},"timestamp":"2026-11-30T10:00:00Z"}}"#
        )
    };
    for (topic, payload) in [
        ("wmbusmeters/MyTapWater", telegram("123.529")),
        ("esphome/water/total", "1000".to_string()),
        ("wmbusmeters/MyTapWater", telegram("123.529")),
        ("esphome/water/total", "1005".to_string()),
        ("esphome/water/total", "1003".to_string()),
        ("esphome/water/total", "unavailable".to_string()),
        ("wmbusmeters/MyTapWater", telegram("123.541")),
        ("esphome/water/total", "1010".to_string()),
    ] {
        publish(broker.port, topic, &payload);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(app.wait_total("radio", 12.0, Duration::from_secs(20)), 12.0);
    assert_eq!(app.wait_total("esp", 10.0, Duration::from_secs(20)), 10.0);
    assert_eq!(app.meter_json("radio")["reading_m3"], 123.541);
    let metrics = crate::util::get(&app.url("/metrics")).body;
    assert!(
        metrics.contains("watermeter_points_rejected_total{reason=\"bad_value\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("watermeter_readings_ignored_total{meter=\"esp\",reason=\"stale\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("watermeter_points_accepted_total{input=\"mqtt\"} 7"),
        "{metrics}"
    );
}
