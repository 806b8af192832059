//! Meter sensors that send the meter's own reading, byte for byte as they send it:
//! AI-on-the-edge-device's InfluxDB v1 and v2 outputs (an ESP32 camera reading the
//! dials), with their auth headers, through the real binary.

use crate::auth::{auth_table, request, PASSWORD, TOKEN, USER};
use crate::util::App;

/// A meter taking AI-on-the-edge-device's `main/value` readings in m³, with login on.
fn camera_meter(secrets: &std::path::Path) -> String {
    format!(
        "[[meter]]\nid = \"main\"\nname = \"House\"\n[meter.line_protocol]\nmeasurement = \"watermeter\"\nreading_field = \"main/value\"\nreading_unit = \"m3\"\n{}",
        auth_table(secrets)
    )
}

fn basic() -> String {
    use base64::Engine;
    let pair = format!("{USER}:{PASSWORD}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// One reading round as the device's InfluxDB v1 output posts it: no precision
/// (nanoseconds), `text/plain`, no trailing newline, HTTP Basic auth.
fn post_v1(app: &App, reading_m3: &str, unix_s: i64) -> u16 {
    let body = format!("watermeter main/value={reading_m3} {unix_s}000000000");
    let auth = basic();
    request(
        "POST",
        &app.url("/write?db=watermeter"),
        &[("authorization", &auth), ("content-type", "text/plain")],
        &body,
    )
    .status
}

/// The same line as its InfluxDB v2 output posts it, with `Authorization: Token`.
fn post_v2(app: &App, reading_m3: &str, unix_s: i64) -> u16 {
    let body = format!("watermeter main/value={reading_m3} {unix_s}000000000");
    let auth = format!("Token {TOKEN}");
    request(
        "POST",
        &app.url("/api/v2/write?org=home&bucket=water"),
        &[("authorization", &auth), ("content-type", "text/plain")],
        &body,
    )
    .status
}

fn meter(app: &App) -> serde_json::Value {
    let token = format!("Token {TOKEN}");
    let r = request(
        "GET",
        &app.url("/api/v1/meters/main"),
        &[("authorization", &token)],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

fn metric(app: &App, line_start: &str) -> f64 {
    let token = format!("Token {TOKEN}");
    let r = request(
        "GET",
        &app.url("/metrics"),
        &[("authorization", &token)],
        "",
    );
    r.body
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line_start} not in /metrics:\n{}", r.body))
}

#[test]
fn a_camera_readers_readings_become_the_meter_reading_and_misreads_no_water() {
    let secrets = tempfile::tempdir().unwrap();
    let (app, _tmp) = App::start("UTC", &camera_meter(secrets.path()));
    // Whole minutes an hour ago, so the minute buckets below line up.
    let t0 = (chrono::Utc::now().timestamp() - 3600) / 60 * 60;

    assert_eq!(post_v1(&app, "123.529", t0), 204);
    let m = meter(&app);
    assert_eq!(m["reading_m3"], 123.529, "{m}");
    assert_eq!(
        m["total_liters"], 0.0,
        "the first reading is the baseline, not water"
    );

    assert_eq!(post_v1(&app, "123.540", t0 + 300), 204);
    assert_eq!(post_v2(&app, "123.5405", t0 + 600), 204);
    // A misread digit below, then one far above what a pipe delivers in 5 minutes.
    assert_eq!(post_v1(&app, "12.354", t0 + 900), 204);
    assert_eq!(post_v2(&app, "223.540", t0 + 1200), 204);
    assert_eq!(post_v1(&app, "123.560", t0 + 1500), 204);

    let m = meter(&app);
    assert_eq!(m["total_liters"], 31.0, "{m}");
    assert_eq!(m["reading_m3"], 123.56, "{m}");
    assert_eq!(
        metric(
            &app,
            "watermeter_readings_ignored_total{meter=\"main\",reason=\"decrease\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &app,
            "watermeter_readings_ignored_total{meter=\"main\",reason=\"jump\"}"
        ),
        1.0
    );

    // The 19.5 L between t0+600 and t0+1500 ran over those 15 minutes, not at one instant.
    let from = chrono::DateTime::from_timestamp(t0 + 600, 0)
        .unwrap()
        .to_rfc3339();
    let to = chrono::DateTime::from_timestamp(t0 + 1500, 0)
        .unwrap()
        .to_rfc3339();
    let token = format!("Token {TOKEN}");
    let url = app.url(&format!(
        "/api/v1/meters/main/usage?from={}&to={}&step=minute",
        urlencode(&from),
        urlencode(&to)
    ));
    let r = request("GET", &url, &[("authorization", &token)], "");
    let usage: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let buckets = usage["buckets"].as_array().expect("buckets");
    let wet = buckets
        .iter()
        .filter(|b| b["liters"].as_f64() > Some(0.0))
        .count();
    assert!(
        wet >= 12,
        "spread over the interval, not one burst: {usage}"
    );
    let most = buckets
        .iter()
        .filter_map(|b| b["liters"].as_f64())
        .fold(0.0, f64::max);
    assert!(most <= 2.0, "no minute holds the burst: {usage}");

    // A restart keeps the baseline: the next reading counts from it.
    let app = app.restart();
    assert_eq!(post_v1(&app, "123.561", t0 + 1800), 204);
    assert_eq!(meter(&app)["total_liters"], 32.0);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// A wireless M-Bus meter through wmbusmeters' `shell=` hook, which runs
/// `curl -s -X POST -H 'Content-Type: application/json' -d "$METER_JSON" http://pi:8080/api/v1/ingest/wmbusmeters`.
#[test]
fn wmbusmeters_telegrams_are_readings_and_repeats_add_nothing() {
    let config = "[[meter]]\nid = \"main\"\n[meter.wmbus]\nid = \"33225544\"\n";
    let (app, _tmp) = App::start("UTC", config);
    let url = app.url("/api/v1/ingest/wmbusmeters");
    let json = [("content-type", "application/json")];
    let t0 = chrono::Utc::now() - chrono::Duration::hours(2);
    let telegram = |total: &str, minutes: i64| {
        let at = (t0 + chrono::Duration::minutes(minutes)).format("%Y-%m-%dT%H:%M:%SZ");
        format!(
            r#"{{"_":"telegram","media":"water","meter":"iperl","name":"MyTapWater","id":"33225544","total_m3":{total},"current_status":"OK","timestamp":"{at}"}}"#
        )
    };
    for (total, minute) in [
        ("123.529", 0),
        ("123.529", 1),
        ("123.529", 2),
        ("123.541", 10),
        ("123.541", 11),
    ] {
        let r = request("POST", &url, &json, &telegram(total, minute));
        assert_eq!(r.status, 204, "{}", r.body);
    }
    let m: serde_json::Value =
        serde_json::from_str(&request("GET", &app.url("/api/v1/meters/main"), &[], "").body)
            .unwrap();
    assert_eq!(m["total_liters"], 12.0, "{m}");
    assert_eq!(m["reading_m3"], 123.541, "{m}");
    // A misread telegram: no water back, and the meter's page says so.
    let r = request("POST", &url, &json, &telegram("23.541", 12));
    assert_eq!(r.status, 204, "{}", r.body);
    let page = request("GET", &app.url("/meters/main"), &[], "").body;
    assert!(
        page.contains(
            "1 value ignored as misreads since the start (1 below the meter&#39;s reading)"
        ),
        "{page}"
    );

    let unknown = request("POST", &url, &json, r#"{"id":"11111111","total_m3":5}"#);
    assert_eq!(unknown.status, 400);
    assert!(
        unknown
            .body
            .contains("no meter has [meter.wmbus] id = \\\"11111111\\\""),
        "{}",
        unknown.body
    );
    let garbage = request("POST", &url, &json, "[1,2,3]");
    assert_eq!(garbage.status, 400);
    assert!(
        garbage.body.contains("not one telegram object"),
        "{}",
        garbage.body
    );
    let metrics = request("GET", &app.url("/metrics"), &[], "").body;
    assert!(
        metrics.contains("watermeter_points_rejected_total{reason=\"no_meter\"} 1"),
        "{metrics}"
    );
}

/// A radio meter's own leak flag, as wmbusmeters reports it, fires a `meter_alarm`
/// alert with its words in a real mail, and resolves when the flag clears.
#[test]
fn a_radio_meters_leak_flag_fires_a_meter_alarm_by_mail() {
    let smtp = crate::alerts::Smtp::started();
    let extra = format!(
        "[[meter]]\nid = \"main\"\nname = \"House\"\n[meter.wmbus]\nid = \"33225544\"\n\
         [[alert]]\nname = \"The meter reports a leak\"\nmeter = \"main\"\nkind = \"meter_alarm\"\nflags = \"leak\"\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"starttls\"\nusername = \"{}\"\npassword_file = \"{}\"\n\
         from = \"watermeter <pi@example.org>\"\nto = [\"owner@example.org\"]\nca_file = \"{}\"\n",
        smtp.port,
        crate::alerts::USER,
        smtp.dir.path().join("password").display(),
        smtp.ca_file().display()
    );
    let (app, _tmp) = App::start("UTC", &extra);
    let url = app.url("/api/v1/ingest/wmbusmeters");
    let json = [("content-type", "application/json")];
    let telegram = |total: &str, alarms: &str| {
        format!(
            r#"{{"_":"telegram","media":"water","meter":"iperl","id":"33225544","total_m3":{total},"current_alarms":"{alarms}"}}"#
        )
    };
    let r = request("POST", &url, &json, &telegram("123.529", "no_alarm"));
    assert_eq!(r.status, 204, "{}", r.body);
    let r = request("POST", &url, &json, &telegram("123.530", "leak,backflow"));
    assert_eq!(r.status, 204, "{}", r.body);
    let mails = smtp.wait_mails(1);
    assert_eq!(
        mails[0].subject,
        "[watermeter] The meter reports a leak: House: the meter itself reports an alarm: leak"
    );
    let r = request("POST", &url, &json, &telegram("123.531", "no_alarm"));
    assert_eq!(r.status, 204, "{}", r.body);
    let mails = smtp.wait_mails(2);
    assert_eq!(
        mails[1].subject,
        "[watermeter] resolved: The meter reports a leak: House: the meter no longer reports an alarm"
    );
}
