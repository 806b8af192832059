//! The NodeMCU sender of docs/nodemcu/: its configuration is valid ESPHome, and
//! what it posts adds up.

use std::process::Command;

use crate::util::{post, App};

const COUNTER_METER: &str = "[[meter]]\nid = \"main\"\nname = \"House\"\n\
    [meter.line_protocol]\nmeasurement = \"water\"\ntags = { meter = \"main\" }\ncounter_field = \"total\"\n";

/// Exactly what the ESPHome `http_request.post` of the configuration sends.
fn post_total(app: &App, liters_since_boot: u32) {
    let a = post(
        &app.url("/write?db=water"),
        &format!("water,meter=main total={liters_since_boot}i"),
    );
    assert_eq!(a.status, 204, "{}", a.body);
}

#[test]
fn nodemcu_counter_posts_survive_lost_requests_and_reboots() {
    let (app, _tmp) = App::start("UTC", COUNTER_METER);
    post_total(&app, 0); // on_connect right after boot: the baseline
    post_total(&app, 12);
    // The post of 20 is lost on the way: the next one carries the whole count.
    post_total(&app, 31);
    post_total(&app, 31); // no water in the last 30 s
    post_total(&app, 0); // the NodeMCU rebooted
    post_total(&app, 4);
    assert_eq!(app.total_liters("main"), 35.0);
}

#[test]
fn nodemcu_configuration_passes_esphome_config() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/esphome/validate.sh");
    let out = Command::new("bash")
        .arg(script)
        .output()
        .expect("run validate.sh");
    assert!(
        out.status.success(),
        "esphome config failed (the script installs esphome from PyPI into target/esphome-venv):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
