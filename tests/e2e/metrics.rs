//! `/metrics` scraped by a real Prometheus.

use std::time::Duration;

use crate::servers::{eventually, prometheus, Server};
use crate::util::{get, get_json, post, App};

/// The value of an instant PromQL query with a single result.
fn promql(p: &Server, query: &str) -> Option<f64> {
    let q: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let v = get_json(&format!(
        "http://127.0.0.1:{}/api/v1/query?query={q}",
        p.port
    ));
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_sees_the_liters_written_and_no_reset_across_a_restart() {
    let (app, _tmp) = App::start("UTC", "");
    // Pin the HTTP port so that the restarted app is the same scrape target.
    let text = std::fs::read_to_string(&app.config).unwrap();
    let pinned = text.replacen("127.0.0.1:0", &app.http.to_string(), 1);
    std::fs::write(&app.config, pinned).unwrap();
    let prom = prometheus(app.http);
    let series = "watermeter_water_liters_total{meter=\"main\"}";
    let seen_zero = eventually(Duration::from_secs(60), || {
        (promql(&prom, series) == Some(0.0)).then_some(())
    });
    assert!(
        seen_zero.is_some(),
        "Prometheus never scraped the app: {}",
        prom.log()
    );

    let body: String = (0..1234)
        .map(|i| format!("water,meter=main liters=1 {}\n", 1_700_000_000_000i64 + i))
        .collect();
    assert_eq!(post(&app.url("/write?precision=ms"), &body).status, 204);
    let app = app.restart();
    let after = eventually(Duration::from_secs(30), || {
        (promql(&prom, series) == Some(1234.0)).then_some(())
    });
    assert!(
        after.is_some(),
        "Prometheus shows {:?}",
        promql(&prom, series)
    );
    // Seeded from the store: the restart is no counter reset, and the growth is the liters.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(promql(&prom, &format!("resets({series}[10m])")), Some(0.0));
    let growth = format!("max_over_time({series}[10m]) - min_over_time({series}[10m])");
    assert_eq!(promql(&prom, &growth), Some(1234.0));
    let inc = promql(&prom, &format!("increase({series}[10m])")).expect("increase");
    assert!(inc >= 1234.0, "increase() is {inc}");
    let up = "up{job=\"watermeter\"}";
    assert_eq!(promql(&prom, up), Some(1.0));
    drop(app);
}

#[test]
fn metrics_text_lists_every_family_once_with_help_and_type() {
    let (app, _tmp) = App::start("UTC", "");
    let text = get(&app.url("/metrics")).body;
    for family in [
        "watermeter_water_liters_total",
        "watermeter_meter_reading_cubic_meters",
        "watermeter_flow_liters_per_minute",
        "watermeter_points_accepted_total",
        "watermeter_points_rejected_total",
        "watermeter_udp_datagrams_total",
        "watermeter_udp_dropped_total",
        "watermeter_forward_backlog_events",
        "watermeter_store_bytes",
    ] {
        assert_eq!(
            text.matches(&format!("# TYPE {family} ")).count(),
            1,
            "{family}:\n{text}"
        );
        assert_eq!(
            text.matches(&format!("# HELP {family} ")).count(),
            1,
            "{family}"
        );
    }
    assert!(
        !text.contains("watermeter_mqtt_connected"),
        "MQTT is not configured"
    );
}
