//! `/alerts` through the real binary: an alert made with the page's own forms
//! (CSRF cookie and field, no JavaScript) is refused with check-config's words
//! when wrong, fires to a real webhook receiver when right, survives a restart,
//! and can be edited, paused and deleted; the config file's alerts stay read-only.

use std::time::Duration;

use crate::channels::receiver;
use crate::dashboard::post_form_to;
use crate::servers::eventually;
use crate::util::{get, get_json, post, App};

/// (hidden field, cookie pair) of the alerts page.
fn token(app: &App) -> (String, String) {
    crate::dashboard::form_token(app, "/alerts")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn form(token: &str, original: &str, name: &str, kind: &str, keys: &str) -> String {
    format!(
        "csrf={token}&original={}&name={}&meter=main&kind={kind}&repeat=&notify=&keys={}",
        enc(original),
        enc(name),
        enc(keys)
    )
}

#[test]
fn an_alert_made_on_the_page_fires_survives_a_restart_and_can_be_changed() {
    let (hook_port, hook) = receiver(vec![]);
    let extra = format!(
        "[[meter]]\nid = \"main\"\nname = \"House\"\n\
         [[alert]]\nname = \"From the file\"\nmeter = \"main\"\nkind = \"no_data\"\nafter = \"2h\"\n\
         [[notify]]\nname = \"ha\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n"
    );
    let (app, _dir) = App::start("UTC", &extra);
    let page = get(&app.url("/alerts")).body;
    assert!(page.contains("runs without a login"), "says who may edit");
    assert!(page.contains("From the file") && page.contains("come from <code>[[alert]]</code>"));
    let (t, cookie) = token(&app);
    let send = |body: &str| post_form_to(&app, "/alerts", body, Some(&cookie));

    // Without the token: refused. With mistakes: the words of check-config, the
    // form filled in again, nothing stored.
    let no_token = form(
        "0000",
        "",
        "Hose",
        "volume",
        "window = \"1h\"\nthreshold_liters = 10",
    );
    assert_eq!(send(&no_token).status, 403);
    let wrong = send(&form(&t, "", "Hose", "volume", "window = \"1h\""));
    assert_eq!(wrong.status, 400);
    assert!(
        wrong.body.contains("threshold_liters: `threshold_liters` is missing; a volume alert needs it, such as threshold_liters = 100"),
        "{}",
        wrong.body
    );
    assert!(
        wrong.body.contains("value=\"Hose\""),
        "the form keeps what was typed"
    );
    let clash = send(&form(
        &t,
        "",
        "From the file",
        "volume",
        "window = \"1h\"\nthreshold_liters = 10",
    ));
    assert_eq!(clash.status, 400);
    assert!(
        clash.body.contains("another alert is already named"),
        "{}",
        clash.body
    );
    let budget0 = send(&form(
        &t,
        "",
        "Budget",
        "budget",
        "period = \"day\"\nlimit_liters = 0",
    ));
    assert!(
        budget0.body.contains("limit_liters: 0 must be more than 0"),
        "{}",
        budget0.body
    );

    let made = send(&form(
        &t,
        "",
        "Hose left on",
        "volume",
        "window = \"1h\"\nthreshold_liters = 10",
    ));
    assert_eq!(made.status, 303, "{}", made.body);
    let alerts = get_json(&app.url("/api/v1/alerts"));
    let names: Vec<&str> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, vec!["From the file", "Hose left on"]);
    assert_eq!(alerts["alerts"][0]["origin"], "config");
    assert_eq!(alerts["alerts"][1]["origin"], "page");

    // It fires: 20 L in the last hour reach the webhook once.
    let now = chrono::Utc::now().timestamp() - 300;
    let body: String = (0..20)
        .map(|i| format!("water,meter=main liters=1 {}\n", now + i))
        .collect();
    assert_eq!(post(&app.url("/write?precision=s"), &body).status, 204);
    let got = eventually(Duration::from_secs(30), || {
        let g = hook.lock().unwrap().clone();
        (!g.is_empty()).then_some(g)
    })
    .expect("the browser-made alert never notified");
    let fired: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(fired["alert"], "Hose left on");
    assert_eq!(fired["state"], "firing");

    // A restart keeps it, with its state: no second notification. (Once the
    // outbox has the receiver's answer: a delivery cut off by the restart would
    // rightly go out again, with the same id.)
    eventually(Duration::from_secs(30), || {
        let a = get_json(&app.url("/api/v1/alerts"));
        (a["outbox"]["pending"] == 0).then_some(())
    })
    .expect("the outbox took the receiver's answer");
    let app = app.restart();
    let page = eventually(Duration::from_secs(30), || {
        let p = get(&app.url("/alerts")).body;
        p.contains("firing").then_some(p)
    })
    .expect("the alert is firing after the restart");
    assert!(page.contains("Hose left on") && page.contains("Edit Hose left on"));
    std::thread::sleep(Duration::from_secs(2));
    let got = hook.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");

    // Edit (rename and raise the limit), pause, and delete, each by its form.
    let (t, cookie) = token(&app);
    let send = |path: &str, body: &str| post_form_to(&app, path, body, Some(&cookie));
    let edit = get(&app.url("/alerts?edit=Hose%20left%20on")).body;
    assert!(
        edit.contains("threshold_liters = 10"),
        "the form is filled in: {edit}"
    );
    let renamed = form(
        &t,
        "Hose left on",
        "Garden hose",
        "volume",
        "window = \"1h\"\nthreshold_liters = 500",
    );
    assert_eq!(send("/alerts", &renamed).status, 303);
    let a = get_json(&app.url("/api/v1/alerts"));
    assert_eq!(a["alerts"][1]["name"], "Garden hose");
    assert_eq!(a["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(
        send(
            "/alerts/pause",
            &format!("csrf={t}&name=Garden+hose&paused=true")
        )
        .status,
        303
    );
    let page = get(&app.url("/alerts")).body;
    assert!(
        page.contains(">paused<") && page.contains(">Resume<"),
        "{page}"
    );
    assert_eq!(
        get_json(&app.url("/api/v1/alerts"))["alerts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Delete asks first: the list links to a confirmation, which holds the form.
    let page = get(&app.url("/alerts")).body;
    // The kinds are named in words, with the id the config file uses.
    assert!(
        page.contains(">Water running without a pause (continuous_flow)</option>"),
        "{page}"
    );
    assert!(
        page.contains("href=\"/alerts?delete=Garden%20hose#delete-h\"")
            && !page.contains("Delete it"),
        "{page}"
    );
    let asking = get(&app.url("/alerts?delete=Garden%20hose")).body;
    assert!(
        asking.contains("Delete “Garden hose”?")
            && asking.contains("action=\"/alerts/delete\"")
            && asking.contains("Keep it"),
        "{asking}"
    );
    let file_alert = send("/alerts/delete", &format!("csrf={t}&name=From+the+file"));
    assert_eq!(file_alert.status, 400);
    assert!(file_alert.body.contains("comes from the config file"));
    assert_eq!(
        send("/alerts/delete", &format!("csrf={t}&name=Garden+hose")).status,
        303
    );
    let app = app.restart();
    let page = get(&app.url("/alerts")).body;
    assert!(
        !page.contains("Garden hose") && page.contains("None yet"),
        "{page}"
    );
}
