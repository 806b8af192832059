//! Draws through the real binary: points written over HTTP become draws on the
//! API, the owner relabels one and the draws like it follow (also after a
//! restart), bad relabels get 400 with the reason, away mode switches and stays.

use crate::auth::request;
use crate::util::{get, get_json, post, App};

/// Pulses of 1 L at `flow` L/min from `start_s` (unix seconds), `liters` of them.
fn train(start_s: f64, flow: f64, liters: usize) -> Vec<i64> {
    (1..=liters)
        .map(|k| ((start_s + 60.0 / flow * k as f64) * 1000.0) as i64)
        .collect()
}

#[test]
fn draws_are_listed_relabelled_and_similar_draws_follow() {
    let (app, tmp) = App::start("UTC", "");
    // Six days from 2025-06-01: each day a 60 L shower at 9 L/min, four 9 L
    // toilet refills at 4 L/min, and at 15:00 a 25 L draw at 5 L/min.
    let day0 = 1_748_736_000f64;
    let mut times = Vec::new();
    for d in 0..6 {
        let base = day0 + d as f64 * 86_400.0;
        times.extend(train(base + 7.0 * 3600.0, 9.0, 60));
        for k in 0..4 {
            times.extend(train(base + (8.0 + 3.0 * k as f64) * 3600.0, 4.0, 9));
        }
        times.extend(train(base + 15.0 * 3600.0, 5.0, 25));
    }
    let body: String = times
        .iter()
        .map(|t| format!("water,meter=main liters=1 {t}\n"))
        .collect();
    assert_eq!(post(&app.url("/write?precision=ms"), &body).status, 204);

    let url =
        app.url("/api/v1/meters/main/draws?from=2025-06-01T00:00:00Z&to=2025-06-07T00:00:00Z");
    let list = get_json(&url);
    let draws = list["draws"].as_array().expect("draws");
    assert_eq!(draws.len(), 36, "{list}");
    let of = |kind: &str, l: &serde_json::Value| {
        l["draws"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"] == kind)
            .count()
    };
    assert_eq!(of("toilet", &list), 24, "{list}");
    assert_eq!(of("shower", &list), 6, "{list}");
    let first_25 = draws
        .iter()
        .find(|d| d["liters"] == 25.0)
        .expect("a 25 L draw");
    assert_ne!(first_25["kind"], "dishwasher");
    // The same answer twice: ids are stable.
    assert_eq!(get_json(&url), list);

    let kind_url = |id: &str| app.url(&format!("/api/v1/meters/main/draws/{id}/kind"));
    let json = [("content-type", "application/json")];
    let id = first_25["id"].as_str().unwrap();
    let r = request("POST", &kind_url(id), &json, r#"{"kind":"dishwasher"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let after = get_json(&url);
    assert_eq!(
        of("dishwasher", &after),
        6,
        "the five like it follow: {after}"
    );
    assert_eq!(of("toilet", &after), 24);

    let bad = request("POST", &kind_url(id), &json, r#"{"kind":"jacuzzi"}"#);
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("not a kind of draw"), "{}", bad.body);
    let bad = request(
        "POST",
        &kind_url("abc-00000000"),
        &json,
        r#"{"kind":"tap"}"#,
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("no draw"), "{}", bad.body);

    // A year asks for pages of 31 days.
    let year = get_json(
        &app.url("/api/v1/meters/main/draws?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"),
    );
    assert_eq!(year["next_from"], "2025-02-01T00:00:00+00:00", "{year}");

    // Away mode switches and is kept.
    let r = request("POST", &app.url("/api/v1/away"), &json, r#"{"on":true}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let page = get(&app.url("/meters/main/draws?day=2025-06-03")).body;
    assert!(
        page.contains("Dishwasher") && page.contains("Toilet"),
        "{page}"
    );
    assert!(
        !page.contains("Still learning"),
        "history since 2025: {page}"
    );
    let (fresh, _fresh_dir) = App::start("UTC", "");
    let empty = get(&fresh.url("/meters/main/draws")).body;
    assert!(
        empty.contains("Still learning this home: 0 days"),
        "{empty}"
    );
    drop(fresh);

    let config = app.config.clone();
    drop(app);
    let app = App::start_with(&config, tmp.path());
    assert_eq!(get_json(&app.url("/api/v1/away"))["on"], true);
    let url =
        app.url("/api/v1/meters/main/draws?from=2025-06-01T00:00:00Z&to=2025-06-07T00:00:00Z");
    assert_eq!(
        of("dishwasher", &get_json(&url)),
        6,
        "labels survive a restart"
    );
}

/// A camera reader's readings: a rise spread over more than an hour (the device
/// was off) forms no draw; a rise within minutes does.
#[test]
fn interpolated_water_forms_no_draws() {
    let (app, _tmp) = App::start(
        "UTC",
        "[[meter]]\nid = \"main\"\nname = \"House\"\n[meter.line_protocol]\nmeasurement = \"watermeter\"\nreading_field = \"value\"\nreading_unit = \"m3\"\n",
    );
    let t0 = 1_748_736_000i64; // 2025-06-01 00:00 UTC
    let lines = [
        (100.000, t0),
        // Three hours without a reading, then 60 L more: spread, interpolated.
        (100.060, t0 + 3 * 3600),
        // Then 20 L within four minutes, read every minute: a real draw.
        (100.065, t0 + 3 * 3600 + 60),
        (100.070, t0 + 3 * 3600 + 120),
        (100.075, t0 + 3 * 3600 + 180),
        (100.080, t0 + 3 * 3600 + 240),
    ];
    let body: String = lines
        .iter()
        .map(|(m3, t)| format!("watermeter value={m3} {t}\n"))
        .collect();
    assert_eq!(post(&app.url("/write?precision=s"), &body).status, 204);
    let list = get_json(
        &app.url("/api/v1/meters/main/draws?from=2025-06-01T00:00:00Z&to=2025-06-02T00:00:00Z"),
    );
    let draws = list["draws"].as_array().expect("draws");
    let liters: f64 = draws.iter().map(|d| d["liters"].as_f64().unwrap()).sum();
    assert!(
        (liters - 20.0).abs() < 1e-6,
        "only the 20 L of the real draw: {list}"
    );
    assert!(
        draws
            .iter()
            .all(|d| d["start"].as_str().unwrap() >= "2025-06-01T02:59"),
        "{list}"
    );
}
