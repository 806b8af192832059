//! Correcting history through the API, as an owner's script would: the totals,
//! the usage buckets and the reading follow, the audit list keeps each
//! correction with its reason, and all of it survives a restart and a rebuild.

use crate::auth::request;
use crate::util::{get_json, post, App};

#[test]
fn a_bad_night_is_deleted_or_set_and_every_figure_follows() {
    let (app, tmp) = App::start("UTC", "");
    // 60 one-liter points a minute apart, from 2025-06-01 00:00 UTC.
    let t0 = 1_748_736_000i64;
    let body: String = (0..60)
        .map(|i| format!("water,meter=main liters=1 {}\n", t0 + i * 60))
        .collect();
    assert_eq!(post(&app.url("/write?precision=s"), &body).status, 204);
    let url = app.url("/api/v1/meters/main/corrections");
    let json = [("content-type", "application/json")];

    let r = request(
        "POST",
        &url,
        &json,
        r#"{"from":"2025-06-01T00:10:00Z","to":"2025-06-01T00:20:00Z","action":"delete","reason":"the camera misread"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(app.total_liters("main"), 50.0);

    let r = request(
        "POST",
        &url,
        &json,
        r#"{"from":"2025-06-01T00:30:00Z","to":"2025-06-01T00:40:00Z","action":"set_liters","liters":2.5,"reason":"as read off the meter"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(app.total_liters("main"), 42.5);
    let usage = get_json(&app.url(
        "/api/v1/meters/main/usage?from=2025-06-01T00:00:00Z&to=2025-06-01T01:00:00Z&step=hour",
    ));
    assert_eq!(usage["total_liters"], 42.5, "{usage}");

    let bad = request(
        "POST",
        &url,
        &json,
        r#"{"from":"2025-06-01T00:30:00Z","to":"2025-06-01T00:20:00Z","action":"delete","reason":"x"}"#,
    );
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("\\\"to\\\" must be after \\\"from\\\""),
        "{}",
        bad.body
    );

    let list = get_json(&url);
    let lines = list["corrections"].as_array().expect("list");
    assert_eq!(lines.len(), 2, "{list}");
    assert_eq!(lines[0]["action"], "delete");
    assert_eq!(lines[0]["removed_liters"], 10.0);
    assert_eq!(lines[1]["set_liters"], 2.5);
    assert_eq!(lines[1]["reason"], "as read off the meter");

    // The journal holds them: a rebuild of the index gives the same figures.
    let config = app.config.clone();
    app.kill();
    std::fs::remove_dir_all(tmp.path().join("data").join("index")).unwrap();
    let app = App::start_with(&config, tmp.path());
    assert_eq!(app.total_liters("main"), 42.5);
    let url = app.url("/api/v1/meters/main/corrections");
    assert_eq!(
        get_json(&url)["corrections"].as_array().map(Vec::len),
        Some(2)
    );
}
