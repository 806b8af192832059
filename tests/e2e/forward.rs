//! `[forward]` against a real InfluxDB 1.x (nothing lost while it is down) and a
//! real VictoriaMetrics over https with a CA made in the test (exact liters).

use std::time::Duration;

use crate::pki::https_get;
use crate::servers::{eventually, influx_number, influxd, victoria_metrics, Server};
use crate::util::{config_text, get, post, App, MAIN_METER};

/// Posts `n` one-liter points with distinct millisecond timestamps from `start_ms`.
fn write_liters(app: &App, start_ms: i64, n: i64) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let body: String = chunk
            .iter()
            .map(|i| format!("water,meter=main liters=1 {}\n", start_ms + i))
            .collect();
        let a = post(&app.url("/write?db=water&precision=ms"), &body);
        assert_eq!(a.status, 204, "{}", a.body);
    }
}

fn count(influx: &Server) -> Option<f64> {
    influx_number(influx, "SELECT count(liters) FROM water")
}

fn metric(app: &App, name: &str) -> f64 {
    let text = get(&app.url("/metrics")).body;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

#[test]
fn forwarding_survives_influxdb_downtime_and_an_app_restart_without_loss() {
    let mut influx = influxd();
    let extra = format!(
        "[forward]\nurl = \"http://127.0.0.1:{}/write?db=water\"\nbatch_size = 2000\ninterval = \"1s\"\n",
        influx.port
    );
    let (app, _tmp) = App::start("UTC", &extra);
    let base = 1_700_000_000_000;
    write_liters(&app, base, 10_000);
    let got = eventually(Duration::from_secs(60), || {
        (count(&influx) == Some(10_000.0)).then_some(())
    });
    assert!(
        got.is_some(),
        "InfluxDB has {:?} of 10000 points",
        count(&influx)
    );

    influx.stop();
    write_liters(&app, base + 10_000, 5_000);
    assert_eq!(metric(&app, "watermeter_forward_backlog_events"), 5_000.0);
    assert!(get(&app.url("/"))
        .body
        .contains("data-forward-backlog=\"5000\""));
    let failed = eventually(Duration::from_secs(20), || {
        (metric(&app, "watermeter_forward_failed_requests_total") >= 1.0).then_some(())
    });
    assert!(
        failed.is_some(),
        "the forwarder never noticed InfluxDB was down"
    );
    // The queue is on disk: a crash of the app while the target is down loses nothing.
    let app = app.restart();
    assert_eq!(metric(&app, "watermeter_forward_backlog_events"), 5_000.0);
    write_liters(&app, base + 15_000, 1_000);

    influx.start();
    let got = eventually(Duration::from_secs(90), || {
        (count(&influx) == Some(16_000.0)).then_some(())
    });
    assert!(
        got.is_some(),
        "InfluxDB has {:?} of 16000 points",
        count(&influx)
    );
    assert_eq!(
        influx_number(&influx, "SELECT sum(liters) FROM water"),
        Some(16_000.0)
    );
    let drained = eventually(Duration::from_secs(10), || {
        (metric(&app, "watermeter_forward_backlog_events") == 0.0).then_some(())
    });
    assert!(drained.is_some());
    assert!(get(&app.url("/"))
        .body
        .contains("data-forward-backlog=\"0\""));
    assert_eq!(app.total_liters("main"), 16_000.0);
}

#[test]
fn a_refused_batch_stays_queued() {
    let influx = influxd();
    // A database that does not exist: InfluxDB answers 404, which is not retried away.
    let extra = format!(
        "[forward]\nurl = \"http://127.0.0.1:{}/write?db=nosuchdb\"\ninterval = \"1s\"\n",
        influx.port
    );
    let (app, _tmp) = App::start("UTC", &extra);
    write_liters(&app, 1_700_000_000_000, 10);
    let failed = eventually(Duration::from_secs(20), || {
        (metric(&app, "watermeter_forward_failed_requests_total") >= 1.0).then_some(())
    });
    assert!(failed.is_some());
    assert_eq!(metric(&app, "watermeter_forward_backlog_events"), 10.0);
}

/// One value of a VictoriaMetrics instant query over https (`None`: no data yet).
fn vm_number(vm: &Server, query: &str) -> Option<f64> {
    let ca = vm.dir.path().join("ca.pem");
    let now = chrono::Utc::now().timestamp();
    let q: String = query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let body = https_get(vm.port, &ca, &format!("/api/v1/query?query={q}&time={now}"));
    let v: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("VictoriaMetrics answered {body:?}: {e}"));
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn https_forwarding_reaches_victoria_metrics_exactly_once_its_ca_is_trusted() {
    let vm = victoria_metrics(true);
    let ca = vm.dir.path().join("ca.pem");
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.toml");
    let log = tmp.path().join("log");
    let forward = format!(
        "{MAIN_METER}[forward]\nurl = \"https://127.0.0.1:{}/write?db=water\"\nbatch_size = 700\ninterval = \"1s\"\n",
        vm.port
    );
    let write_config = |extra: &str| {
        std::fs::write(&config, config_text(&tmp.path().join("data"), "UTC", extra)).unwrap()
    };

    // Not trusted yet: the system's CAs do not know the test CA. Nothing leaves the queue.
    write_config(&forward);
    let app = App::start_logged(&config, tmp.path(), &log);
    let start_ms = chrono::Utc::now().timestamp_millis() - 3_600_000;
    write_liters(&app, start_ms, 2_000);
    let mut half_liters = String::new();
    for i in 0..500 {
        half_liters.push_str(&format!(
            "water,meter=main liters=0.5 {}\n",
            start_ms + 2_000 + i
        ));
    }
    assert_eq!(
        post(&app.url("/write?precision=ms"), &half_liters).status,
        204
    );
    let failed = eventually(Duration::from_secs(20), || {
        (metric(&app, "watermeter_forward_failed_requests_total") >= 1.0).then_some(())
    });
    assert!(failed.is_some(), "an untrusted certificate was accepted");
    assert_eq!(metric(&app, "watermeter_forward_backlog_events"), 2_500.0);
    app.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("certificate") && text.contains("https://127.0.0.1"),
        "the log does not say the certificate was refused:\n{text}"
    );

    // Trusted through [forward] ca_file: every liter arrives, each event as one sample.
    write_config(&format!("{forward}ca_file = \"{}\"\n", ca.display()));
    let app = App::start_logged(&config, tmp.path(), &log);
    let sum = "sum(sum_over_time(water_liters{meter=\"main\"}[1d]))";
    let got = eventually(Duration::from_secs(60), || {
        (vm_number(&vm, sum) == Some(2_250.0)).then_some(())
    });
    assert!(
        got.is_some(),
        "VictoriaMetrics holds {:?} of 2250 L",
        vm_number(&vm, sum)
    );
    let count = "sum(count_over_time(water_liters{meter=\"main\"}[1d]))";
    assert_eq!(vm_number(&vm, count), Some(2_500.0));
    let drained = eventually(Duration::from_secs(10), || {
        (metric(&app, "watermeter_forward_backlog_events") == 0.0).then_some(())
    });
    assert!(drained.is_some());
    assert_eq!(app.total_liters("main"), 2_250.0);
}
