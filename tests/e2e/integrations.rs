//! The dashboard's "Integrations" section: shown only with `[forward]` or `[mqtt]`;
//! the forward backlog grows and the error shows while the target is unreachable;
//! the MQTT line says whether the broker is connected.

use std::time::Duration;

use crate::servers::{eventually, free_port, mosquitto};
use crate::util::{get, points, post, App};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn unreachable_targets_show_a_growing_backlog_an_error_and_no_connection() {
    let (forward_port, mqtt_port) = (free_port(), free_port());
    let extra = format!(
        "[forward]\nurl = \"http://127.0.0.1:{forward_port}/write?db=water\"\ninterval = \"1s\"\n\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {mqtt_port}\ninterval = \"1s\"\n"
    );
    let (app, _tmp) = App::start("UTC", &extra);
    let a = post(
        &app.url("/write?db=w&precision=s"),
        &points(1_700_000_000, 10),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    let page = eventually(WAIT, || {
        let page = get(&app.url("/")).body;
        page.contains("last error:").then_some(page)
    })
    .expect("the forward error is shown on the dashboard");
    assert!(
        page.contains("<h2 id=\"integrations-title\">Integrations</h2>"),
        "{page}"
    );
    assert!(page.contains("data-forward-backlog=\"10\""), "{page}");
    assert!(
        page.contains(&format!("127.0.0.1:{forward_port}/write?db=water")),
        "{page}"
    );
    assert!(page.contains("last success not yet"), "{page}");
    assert!(page.contains(&format!("127.0.0.1:{mqtt_port}")), "{page}");
    assert!(page.contains("not connected"), "{page}");
}

#[test]
fn a_connected_broker_shows_as_connected() {
    let broker = mosquitto();
    let extra = format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\ninterval = \"1s\"\n",
        broker.port
    );
    let (app, _tmp) = App::start("UTC", &extra);
    let page = eventually(WAIT, || {
        let page = get(&app.url("/")).body;
        page.contains("badge ok\">connected").then_some(page)
    });
    assert!(page.is_some(), "{}", get(&app.url("/")).body);
    assert!(!get(&app.url("/")).body.contains("Forwarding to"));
}

#[test]
fn without_forward_or_mqtt_there_is_no_integrations_section() {
    let (app, _tmp) = App::start("UTC", "");
    assert!(!get(&app.url("/")).body.contains("Integrations"));
}
