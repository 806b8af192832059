//! The dashboard in a real browser (headless Chromium, over the DevTools
//! protocol) against the real binary with three weeks of history: it loads, shows
//! the API's reading, logs no errors, fetches nothing from other hosts, shows a
//! UDP pulse through the live stream, and works with JavaScript off. It also
//! writes the README's screenshot, `docs/dashboard.png` (with UPDATE_SCREENSHOT=1).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cdp::Browser;
use crate::util::{post, App};

/// Three weeks of a plausible household up to the current hour, as /write lines:
/// showers in the morning, cooking at noon, the evening's washing and dishes.
fn history(now_s: i64) -> String {
    let hour = 3600;
    let start = now_s - now_s % hour - 21 * 24 * hour;
    let mut out = String::new();
    for h in 0..21 * 24 {
        let t0 = start + h * hour;
        let day = h / 24;
        let liters = match h % 24 {
            6 => 40 + (day * 13) % 50,
            7 => 20 + (day * 7) % 30,
            12 => 10 + (day * 5) % 15,
            18..=21 => 8 + (day * 11 + h) % 25,
            _ => 0,
        };
        for i in 0..liters {
            out.push_str(&format!(
                "water,meter=main liters=1 {}\n",
                t0 + i * (hour / liters.max(1))
            ));
        }
    }
    out
}

fn text(b: &mut Browser, field: &str) -> String {
    b.eval(&format!(
        "(document.querySelector('[data-f={field}]') || {{}}).textContent || ''"
    ))
    .as_str()
    .unwrap_or("")
    .to_string()
}

fn api_reading(app: &App) -> String {
    let r = app.meter_json("main")["reading_m3"]
        .as_f64()
        .expect("reading");
    format!("{r:.3}")
}

/// Console errors, uncaught exceptions and browser log errors (CSP violations
/// and failed loads land there).
fn errors(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| match e["method"].as_str() {
            Some("Runtime.exceptionThrown") => true,
            Some("Runtime.consoleAPICalled") => e["params"]["type"] == "error",
            Some("Log.entryAdded") => e["params"]["entry"]["level"] == "error",
            _ => false,
        })
        .map(|e| e.to_string())
        .collect()
}

fn screenshot(b: &mut Browser, width: u32, path: &std::path::Path) {
    let set = |b: &mut Browser, height: u64| {
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500}),
        );
    };
    set(b, 800);
    let height = b
        .eval("document.documentElement.scrollHeight")
        .as_u64()
        .unwrap_or(800);
    set(b, height.min(3000));
    let shot = b.call("Page.captureScreenshot", json!({"format": "png"}));
    let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
    std::fs::write(path, png).expect("write screenshot");
}

#[test]
fn dashboard_in_chromium_is_live_self_contained_and_works_without_javascript() {
    let (app, _tmp) = App::start("Europe/Vienna", "");
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Two liters in the last minutes, so "flow now" reads like a running tap.
    let recent = format!(
        "water,meter=main liters=1 {}\nwater,meter=main liters=1 {}\n",
        now_s - 120,
        now_s - 60
    );
    let w = post(
        &app.url("/write?precision=s"),
        &(history(now_s - 60) + &recent),
    );
    assert_eq!(w.status, 204, "{}", w.body);
    let origin = app.url("/");

    let mut b = Browser::start();
    b.load(Some(&origin));
    assert_eq!(b.eval("document.title"), "watermeter");
    assert_eq!(text(&mut b, "reading"), api_reading(&app));
    assert!(
        b.wait_for(
            "document.documentElement.dataset.live === 'on'",
            Duration::from_secs(10)
        ),
        "the live stream did not connect"
    );

    let before = app.meter_json("main")["reading_m3"].as_f64().unwrap();
    let expected = format!("{:.3}", before + 0.001);
    app.send_udp("water,meter=main liters=1");
    let sent = Instant::now();
    let shown = b.wait_for(
        &format!("document.querySelector('[data-f=reading]').textContent === '{expected}'"),
        Duration::from_secs(2),
    );
    assert!(
        shown,
        "the pulse did not reach the page within 2 s (waited {:?}; page shows {})",
        sent.elapsed(),
        text(&mut b, "reading")
    );
    assert_eq!(api_reading(&app), expected);

    // The README's screenshot is refreshed on request (UPDATE_SCREENSHOT=1), so a
    // plain test run leaves the work tree clean.
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    screenshot(&mut b, 1000, &shots.join("dashboard.png"));
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        screenshot(&mut b, 1000, &docs.join("dashboard.png"));
    }
    let phone = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-360.png");
    screenshot(&mut b, 360, &phone);

    assert_eq!(errors(&b.events), Vec::<String>::new());
    let foreign: Vec<String> = b
        .events
        .iter()
        .filter(|e| e["method"] == "Network.requestWillBeSent")
        .filter_map(|e| e["params"]["request"]["url"].as_str())
        .filter(|u| !u.starts_with(&origin) && !u.starts_with("data:"))
        .map(String::from)
        .collect();
    assert_eq!(foreign, Vec::<String>::new(), "requests to other hosts");

    b.call(
        "Emulation.setScriptExecutionDisabled",
        json!({"value": true}),
    );
    b.load(None);
    assert_eq!(text(&mut b, "reading"), api_reading(&app));
    let today: f64 = text(&mut b, "today")
        .replace(',', "")
        .parse()
        .expect("today");
    assert_eq!(Some(today), app.meter_json("main")["today_liters"].as_f64());
    assert!(
        b.eval("document.querySelectorAll('svg.chart rect.bar').length")
            .as_u64()
            > Some(60)
    );
    assert_eq!(
        b.eval("document.documentElement.dataset.live || 'off'"),
        "off",
        "no script ran"
    );
    assert_eq!(errors(&b.events), Vec::<String>::new());
}

/// What used the water, in a browser at phone and desktop width: the by-kind bars
/// are drawn, the draw log fits a phone, a relabel through the page's own form is
/// saved, and nothing breaks the page's content security policy.
#[test]
fn the_draw_log_in_chromium_fits_a_phone_and_its_form_relabels() {
    let (app, _tmp) = App::start("Europe/Vienna", "");
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let w = post(&app.url("/write?precision=s"), &history(now_s - 60));
    assert_eq!(w.status, 204, "{}", w.body);
    let yesterday = chrono::DateTime::from_timestamp(now_s - 86_400, 0)
        .unwrap()
        .with_timezone(&chrono_tz::Europe::Vienna)
        .format("%Y-%m-%d")
        .to_string();
    let url = app.url(&format!("/meters/main/draws?day={yesterday}"));

    let mut b = Browser::start();
    b.load(Some(&app.url("/")));
    assert!(
        b.eval("document.querySelectorAll('svg.stack rect').length")
            .as_u64()
            > Some(0),
        "the dashboard shows what used the water"
    );
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    screenshot(&mut b, 360, &dir.join("dashboard-kinds-360.png"));
    b.load(Some(&url));
    let rows = b.eval("document.querySelectorAll('table.log tbody tr').length");
    assert!(rows.as_u64() > Some(2), "draws of the day: {rows}");
    screenshot(&mut b, 360, &dir.join("draws-360.png"));
    assert!(
        b.eval("document.documentElement.scrollWidth").as_u64() <= Some(360),
        "the draw log is wider than a phone"
    );
    screenshot(&mut b, 1000, &dir.join("draws-1000.png"));

    // "It was…" on the first draw: a bath, through the page's form.
    b.eval(
        "(() => { const f = document.querySelector('details.relabel form'); \
         f.querySelector('select').value = 'bath'; f.submit(); })()",
    );
    assert!(
        b.wait_for(
            "document.body && document.body.textContent.includes('Draws like this one follow')",
            Duration::from_secs(10)
        ),
        "the relabel was not confirmed: {}",
        b.eval("document.body ? document.body.innerText.slice(0, 600) : ''")
    );
    assert!(
        b.eval("document.querySelector('table.log').textContent.includes('(yours)')")
            .as_bool()
            == Some(true)
    );
    assert_eq!(errors(&b.events), Vec::<String>::new());
}

fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let sextets: Vec<u8> = s.bytes().filter_map(value).collect();
    sextets
        .chunks(4)
        .flat_map(|c| {
            let n = c.iter().fold(0u32, |acc, &v| (acc << 6) | u32::from(v)) << (6 * (4 - c.len()));
            let bytes = n.to_be_bytes();
            bytes[1..c.len()].to_vec()
        })
        .collect()
}
