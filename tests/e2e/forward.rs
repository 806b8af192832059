//! `[forward]` against a real InfluxDB 1.x: nothing lost while it is down.

use std::time::Duration;

use crate::servers::{eventually, influx_number, influxd, Server};
use crate::util::{get, post, App};

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
