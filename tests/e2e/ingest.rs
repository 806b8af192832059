//! Line protocol over UDP and HTTP, durability, counters.

use std::time::Duration;

use crate::util::{get, post, App};

#[test]
fn ten_thousand_udp_datagrams_are_ten_thousand_liters() {
    let (app, _tmp) = App::start("Europe/Vienna", "");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..10_000 {
        socket
            .send_to(b"water,meter=main liters=1", app.udp)
            .unwrap();
        // A moderate pace: 10,000 in about a second and a half.
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(15));
        }
    }
    assert_eq!(
        app.wait_total("main", 10_000.0, Duration::from_secs(20)),
        10_000.0
    );
}

#[test]
fn udp_datagram_with_several_lines_and_a_bad_one_keeps_the_rest() {
    let (app, _tmp) = App::start("UTC", "");
    // `value` is not liters for the default meter: a camera reader's absolute
    // reading there would count the whole register again with every point.
    app.send_udp("water,meter=main liters=1\nwater,meter=main liters=oops\n# comment\nwater,meter=main liters=2.5 1700000000000000000\nwater,meter=main value=123.456\n");
    assert_eq!(app.wait_total("main", 3.5, Duration::from_secs(10)), 3.5);
    let metrics = get(&app.url("/metrics")).body;
    assert!(
        metrics.contains("watermeter_points_rejected_total{reason=\"parse\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("watermeter_points_rejected_total{reason=\"no_field\"} 1"),
        "{metrics}"
    );
}

#[test]
fn http_batch_with_one_bad_line_returns_400_and_keeps_the_rest() {
    let (app, _tmp) = App::start("UTC", "");
    let body = "water,meter=main liters=1 1700000000\nwater,meter=main liters=1 1700000001\nwater,meter=main liters= 1700000002\nwater,meter=main liters=1 1700000003\n";
    let a = post(&app.url("/write?db=water&precision=s"), body);
    assert_eq!(a.status, 400, "{}", a.body);
    let err: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    let msg = err["error"].as_str().unwrap();
    assert!(msg.starts_with("partial write: line 3:"), "{msg}");
    assert!(msg.contains("dropped=1"), "{msg}");
    assert_eq!(app.total_liters("main"), 3.0);
}

#[test]
fn http_write_v1_and_v2_answer_204_and_store_with_their_precision() {
    let (app, _tmp) = App::start("UTC", "");
    let a = post(
        &app.url("/write?db=water&precision=ms"),
        "water,meter=main liters=2 1700000000123",
    );
    assert_eq!(a.status, 204, "{}", a.body);
    let a = post(
        &app.url("/api/v2/write?bucket=water&org=home&precision=s"),
        "water,meter=main liters=1 1700000060",
    );
    assert_eq!(a.status, 204, "{}", a.body);
    let m = app.meter_json("main");
    assert_eq!(m["total_liters"], 3.0);
    assert_eq!(m["last_event"], "2023-11-14T22:14:20+00:00");
    let a = post(
        &app.url("/write?precision=fortnights"),
        "water,meter=main liters=1",
    );
    assert_eq!(a.status, 400);
    assert_eq!(app.total_liters("main"), 3.0);
}

#[test]
fn ping_and_create_database_answer_like_influxdb() {
    let (app, _tmp) = App::start("UTC", "");
    let a = get(&app.url("/ping"));
    assert_eq!(a.status, 204);
    assert!(a
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("x-influxdb-version")));
    let a = post(&app.url("/query?q=CREATE+DATABASE+%22water%22"), "");
    assert_eq!(
        (a.status, a.body.as_str()),
        (200, r#"{"results":[{"statement_id":0}]}"#)
    );
    let a = post(&app.url("/query?q=SELECT+*+FROM+water"), "");
    assert_eq!(a.status, 400);
    assert!(a.body.contains("/api/v1"), "{}", a.body);
}

#[test]
fn acknowledged_points_survive_sigkill_right_after_204() {
    let (app, _tmp) = App::start("UTC", "");
    let mut acked = 0;
    for batch in 0..20 {
        let body: String = (0..500)
            .map(|i| {
                format!(
                    "water,meter=main liters=1 {}\n",
                    1_700_000_000_000i64 + (batch * 500 + i) * 1000
                )
            })
            .collect();
        assert_eq!(post(&app.url("/write?precision=ms"), &body).status, 204);
        acked += 500;
    }
    let app = app.restart(); // SIGKILL, then start again
    assert_eq!(app.total_liters("main"), acked as f64);
}

#[test]
fn counter_form_with_a_fifth_of_the_datagrams_lost_gives_exact_totals() {
    let meter = "[[meter]]\nid = \"main\"\n[meter.line_protocol]\nmeasurement = \"water\"\ntags = { meter = \"main\" }\ncounter_field = \"total\"\n";
    let (app, _tmp) = App::start("UTC", meter);
    // The NodeMCU counts 1,000 liters from 5,000; every fifth datagram is lost, and
    // it reboots once (the counter restarts at 0) halfway through.
    let mut expected = 0;
    for i in 0..=1000u32 {
        let (total, last) = if i <= 500 {
            (5000 + i, 5000 + i.saturating_sub(1))
        } else {
            (i - 500, i - 501)
        };
        if i > 0 {
            expected += if i == 501 { total } else { total - last };
        }
        if i % 5 == 3 && i != 501 {
            continue;
        }
        app.send_udp(&format!("water,meter=main total={total}i"));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(expected, 1000);
    assert_eq!(
        app.wait_total("main", 1000.0, Duration::from_secs(10)),
        1000.0
    );
}

#[test]
fn sigterm_flushes_udp_points_and_exits_cleanly() {
    let (app, _tmp) = App::start("UTC", "");
    for _ in 0..50 {
        app.send_udp("water,meter=main liters=1");
    }
    assert_eq!(app.wait_total("main", 50.0, Duration::from_secs(10)), 50.0);
    let (config, dir) = (app.config.clone(), app.dir.clone());
    assert!(app.stop().success());
    let app = App::start_with(&config, &dir);
    assert_eq!(app.total_liters("main"), 50.0);
}
