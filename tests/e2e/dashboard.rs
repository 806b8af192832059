//! The dashboard through real HTTP: security headers, hashed assets, the range
//! browser across DST, CSV export, the reading form with its CSRF token, and the
//! live event stream.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util::{get, post, post_json, Answer, App};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn assert_secure(a: &Answer, what: &str) {
    assert_eq!(header(a, "content-security-policy"), Some(CSP), "{what}");
    assert_eq!(
        header(a, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(header(a, "referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(header(a, "x-frame-options"), Some("DENY"), "{what}");
}

/// The `/static/…` URLs a page links to.
fn asset_urls(html: &str) -> Vec<String> {
    html.split("\"/static/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(|s| format!("/static/{s}"))
        .collect()
}

/// A request exactly as written (no client-side path normalisation).
fn raw_get(app: &App, path: &str) -> String {
    let mut s = TcpStream::connect(app.http).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// One liter every 10 minutes from `from` (unix s) for `hours` hours.
fn every_ten_minutes(from: i64, hours: i64) -> String {
    (0..hours * 6)
        .map(|i| format!("water,meter=main liters=1 {}\n", from + i * 600))
        .collect()
}

fn bars(html: &str) -> usize {
    html.matches("<rect class=\"bar").count()
}

#[test]
fn pages_answer_200_with_the_security_headers_and_nothing_inline() {
    let (app, _tmp) = App::start("Europe/Vienna", "");
    for path in ["/", "/meters/main", "/meters/main?range=year", "/settings"] {
        let a = get(&app.url(path));
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        assert_secure(&a, path);
        assert!(header(&a, "content-type")
            .unwrap_or("")
            .starts_with("text/html"));
        for inline in ["style=", "<style", "<script>", "onclick", "javascript:"] {
            assert!(!a.body.contains(inline), "{path} has {inline}");
        }
        assert!(
            !a.body.contains("http://") && !a.body.contains("https://"),
            "{path} links out"
        );
    }
    for path in ["/api/v1/meters", "/healthz", "/no/such/page"] {
        assert_secure(&get(&app.url(path)), path);
    }
}

#[test]
fn assets_have_hashed_urls_with_long_cache_and_anything_else_is_404() {
    let (app, _tmp) = App::start("UTC", "");
    let html = get(&app.url("/")).body;
    let urls = asset_urls(&html);
    assert!(urls.iter().any(|u| u.ends_with(".css")), "{urls:?}");
    assert!(urls.iter().any(|u| u.ends_with(".js")), "{urls:?}");
    assert!(urls.iter().any(|u| u.ends_with(".svg")), "{urls:?}");
    let mut weight = html.len();
    for u in &urls {
        let name = u.trim_start_matches("/static/");
        let hash = name.split('.').nth(1).unwrap_or("");
        assert!(
            hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{u}"
        );
        let a = get(&app.url(u));
        assert_eq!(a.status, 200, "{u}");
        assert_eq!(
            header(&a, "cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_secure(&a, u);
        weight += a.body.len();
    }
    assert!(
        weight < 100_000,
        "the page weighs {weight} bytes with its assets"
    );
    for path in [
        "/static/app.css",
        "/static/app.00000000.css",
        "/static/..%2fCargo.toml",
        "/static/../Cargo.toml",
        "/static/%2e%2e/%2e%2e/Cargo.toml",
        "/static/",
    ] {
        let answer = raw_get(&app, path);
        assert!(answer.starts_with("HTTP/1.1 404"), "{path}: {answer}");
    }
}

#[test]
fn the_range_browser_shows_23_and_25_hour_days_in_vienna_with_prev_and_next() {
    let (app, _tmp) = App::start("Europe/Vienna", "");
    // 2026-03-28 23:00 UTC is local midnight of the 29th (spring forward);
    // 2026-10-24 22:00 UTC is local midnight of the 25th (fall back).
    for (from, hours) in [(1_774_738_800, 48), (1_792_879_200, 48)] {
        let body = every_ten_minutes(from, hours);
        assert_eq!(post(&app.url("/write?precision=s"), &body).status, 204);
    }
    let page = |q: &str| {
        let a = get(&app.url(&format!("/meters/main?{q}")));
        assert_eq!(a.status, 200, "{q}: {}", a.body);
        a.body
    };
    let spring = page("range=day&at=2026-03-29");
    assert_eq!(bars(&spring), 23);
    assert!(spring.contains("Sunday 29 March 2026"));
    assert!(spring.contains("href=\"/meters/main?range=day&amp;at=2026-03-28\">← previous"));
    assert!(spring.contains("href=\"/meters/main?range=day&amp;at=2026-03-30\">next →"));
    assert!(spring.contains("138 L"), "23 hours of 6 L");
    assert_eq!(bars(&page("range=day&at=2026-10-25")), 25);
    assert_eq!(bars(&page("range=week&at=2026-03-29")), 7);
    assert_eq!(bars(&page("range=month&at=2026-03-29")), 31);
    assert_eq!(bars(&page("range=year&at=2026-03-29")), 12);
    let form = page("range=month&at=2026-03-29");
    assert!(form.contains("<input type=\"date\" name=\"at\" value=\"2026-03-29\""));
    let far = page("range=day&at=2099-01-01");
    assert!(!far.contains("rel=\"next\""), "no link into the future");
    for (q, status) in [
        ("range=decade", 400),
        ("at=29.03.2026", 400),
        ("at=1900-01-01", 400),
    ] {
        let a = get(&app.url(&format!("/meters/main?{q}")));
        assert_eq!(a.status, status, "{q}");
        assert!(a.body.contains("<h1>"), "an HTML error page for {q}");
    }
    assert_eq!(get(&app.url("/meters/nope")).status, 404);

    // An hour in minutes: 2026-03-29 08:00–09:00 local (06:00 UTC), ten minutes
    // apart one liter each; the hour before and after are links.
    let hour = page("range=hour&at=2026-03-29&hour=8");
    assert_eq!(bars(&hour), 60);
    assert!(
        hour.contains("Sunday 29 March 2026, 08:00 to 09:00"),
        "{hour}"
    );
    assert!(hour.contains("6 L"), "six events in the hour");
    // (askama writes the `&` inside the value as `&#38;`, which reads the same)
    assert!(
        hour.contains("href=\"/meters/main?range=hour&amp;at=2026-03-29&#38;hour=7\">← previous")
    );
    assert!(hour.contains("href=\"/meters/main?range=hour&amp;at=2026-03-29&#38;hour=9\">next →"));
    let midnight = page("range=hour&at=2026-03-29&hour=0");
    assert!(midnight.contains("at=2026-03-28&#38;hour=23\">← previous"));
    for q in [
        "range=hour&at=2026-03-29&hour=24",
        "range=hour&at=2026-03-29&hour=x",
    ] {
        let a = get(&app.url(&format!("/meters/main?{q}")));
        assert_eq!(a.status, 400, "{q}");
        assert!(
            a.body.contains("not an hour from 0 to 23"),
            "{q}: {}",
            a.body
        );
    }
}

#[test]
fn csv_export_has_one_local_row_per_bucket_and_is_a_download() {
    let (app, _tmp) = App::start("Europe/Vienna", "");
    let body = every_ten_minutes(1_774_738_800, 24);
    assert_eq!(post(&app.url("/write?precision=s"), &body).status, 204);
    let page = get(&app.url("/meters/main?range=day&at=2026-03-29")).body;
    let link = page
        .split("href=\"/export.csv?")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSV link on the page")
        .replace("&#38;", "&");
    let a = get(&app.url(&format!("/export.csv?{link}")));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(header(&a, "content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        header(&a, "content-disposition"),
        Some("attachment; filename=\"watermeter-main-2026-03-29-hour.csv\"")
    );
    let lines: Vec<&str> = a.body.lines().collect();
    assert_eq!(lines.len(), 1 + 23, "{}", a.body);
    assert_eq!(lines[0], "meter,start,liters");
    assert_eq!(lines[1], "main,2026-03-29T00:00:00+01:00,6");
    assert_eq!(lines[3], "main,2026-03-29T03:00:00+02:00,6");
    let bad = get(&app.url("/export.csv?meter=main&step=week"));
    assert_eq!(bad.status, 400);
    // One query parser for the CSV and the API: an empty step is refused by both.
    assert_eq!(get(&app.url("/export.csv?meter=main&step=")).status, 400);
    assert_eq!(get(&app.url("/api/v1/meters/main/usage?step=")).status, 400);
}

/// (token from the hidden field, cookie pair from Set-Cookie) of the settings page.
fn settings_token(app: &App) -> (String, String) {
    form_token(app, "/settings")
}

/// (token from the hidden field, cookie pair from Set-Cookie) of a form page.
pub(crate) fn form_token(app: &App, path: &str) -> (String, String) {
    let a = get(&app.url(path));
    let cookie = header(&a, "set-cookie").expect("a CSRF cookie");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().unwrap_or("").to_string();
    let token = a
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a hidden csrf field")
        .to_string();
    (token, pair)
}

fn post_form(app: &App, body: &str, cookie: Option<&str>) -> Answer {
    post_form_to(app, "/settings/reading", body, cookie)
}

pub(crate) fn post_form_to(app: &App, path: &str, body: &str, cookie: Option<&str>) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut req = agent
        .post(&app.url(path))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let mut r = req.send(body).expect("post");
    Answer {
        status: r.status().as_u16(),
        headers: r
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

#[test]
fn the_reading_form_needs_the_csrf_token_and_then_sets_the_reading() {
    let (app, _tmp) = App::start("UTC", "");
    let (token, cookie) = settings_token(&app);
    let form = |t: &str, value: &str| format!("meter=main&reading_m3={value}&csrf={t}");
    for (body, cookie, why) in [
        (form(&token, "1234.567"), None, "no cookie"),
        (
            "meter=main&reading_m3=1".to_string(),
            Some(cookie.as_str()),
            "no field",
        ),
        (form("0000", "1"), Some(cookie.as_str()), "wrong field"),
        (form(&token, "1"), Some("wm_csrf=0000"), "wrong cookie"),
    ] {
        let a = post_form(&app, &body, cookie);
        assert_eq!(a.status, 403, "{why}: {}", a.body);
        assert_secure(&a, why);
    }
    assert_eq!(app.meter_json("main")["reading_m3"], 0.0);
    let bad = post_form(&app, &form(&token, "twelve"), Some(&cookie));
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("1234.567"),
        "says what to type: {}",
        bad.body
    );
    let ok = post_form(&app, &form(&token, "1234%2C567"), Some(&cookie));
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(header(&ok, "location"), Some("/settings?saved=main"));
    assert_eq!(app.meter_json("main")["reading_m3"], 1234.567);
    let page = get(&app.url("/settings?saved=main")).body;
    assert!(page.contains("Saved: House"));
    assert!(get(&app.url("/")).body.contains(">1234.567</span>"));
}

#[test]
fn a_correction_on_the_settings_page_lands_in_the_audit_list() {
    let (app, _tmp) = App::start("Europe/Vienna", "");
    // 30 L between 02:00 and 02:30 local time (UTC+2 in June).
    let body: String = (0..30)
        .map(|i| format!("water,meter=main liters=1 {}\n", 1_748_736_000 + i * 60))
        .collect();
    assert_eq!(post(&app.url("/write?precision=s"), &body).status, 204);
    let (token, cookie) = settings_token(&app);
    let form = format!(
        "csrf={token}&meter=main&from=2025-06-01T02%3A10&to=2025-06-01T02%3A20&action=set_liters&liters=2%2C5&reason=misread+by+the+camera"
    );
    let no_cookie = post_form_to(&app, "/settings/corrections", &form, None);
    assert_eq!(no_cookie.status, 403);
    assert_eq!(app.total_liters("main"), 30.0);
    let ok = post_form_to(&app, "/settings/corrections", &form, Some(&cookie));
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(app.total_liters("main"), 22.5);
    let page = get(&app.url("/settings?corrected=main")).body;
    assert!(page.contains("Corrected: House"), "{page}");
    assert!(page.contains("<td>2025-06-01 02:10 – 2025-06-01 02:20</td><td>set to 2.5 L (was 10 L)</td><td>misread by the camera</td>"), "{page}");
}

#[test]
fn a_meter_read_by_its_sensor_has_no_reading_form() {
    let extra = "[[meter]]\nid = \"main\"\nname = \"House\"\n[meter.wmbus]\nid = \"1\"\n";
    let (app, _tmp) = App::start("UTC", extra);
    let (token, cookie) = settings_token(&app);
    let page = get(&app.url("/settings")).body;
    assert!(page.contains("read by its sensor"), "{page}");
    assert!(!page.contains("action=\"/settings/reading\""), "{page}");
    let a = post_form(
        &app,
        &format!("meter=main&reading_m3=5&csrf={token}"),
        Some(&cookie),
    );
    assert_eq!(a.status, 400);
    assert!(a.body.contains("comes from its sensor"), "{}", a.body);
}

#[test]
fn a_meter_exchange_on_the_settings_page_restarts_a_radio_meters_count() {
    let extra = "[[meter]]\nid = \"main\"\nname = \"House\"\n[meter.wmbus]\nid = \"1\"\n";
    let (app, _tmp) = App::start("UTC", extra);
    let now = chrono::Utc::now();
    let telegram = |m3: &str, ago_min: i64| {
        let at = (now - chrono::Duration::minutes(ago_min)).format("%Y-%m-%dT%H:%M:%SZ");
        format!(r#"{{"id":"1","total_m3":{m3},"timestamp":"{at}"}}"#)
    };
    let url = app.url("/api/v1/ingest/wmbusmeters");
    assert_eq!(post_json(&url, &telegram("523.400", 120)).status, 204);
    assert_eq!(post_json(&url, &telegram("523.410", 90)).status, 204);
    let (token, cookie) = settings_token(&app);
    let at = (now - chrono::Duration::minutes(60)).format("%Y-%m-%dT%H%%3A%M");
    let form = format!("csrf={token}&meter=main&at={at}&reading_m3=0%2C012");
    let ok = post_form_to(&app, "/settings/exchange", &form, Some(&cookie));
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(app.meter_json("main")["reading_m3"], 0.012);
    assert_eq!(post_json(&url, &telegram("0.015", 30)).status, 204);
    let m = app.meter_json("main");
    assert_eq!(
        (m["total_liters"].as_f64(), m["reading_m3"].as_f64()),
        (Some(13.0), Some(0.015)),
        "{m}"
    );
    assert!(get(&app.url("/settings?exchanged=main"))
        .body
        .contains("new meter counts on"));
}

/// Reads server-sent events until one named `meters` arrives; returns its data.
fn next_meters_event(r: &mut BufReader<TcpStream>) -> String {
    let mut event = String::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).expect("read event") > 0,
            "stream ended"
        );
        let line = line.trim_end();
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            if event == "meters" {
                return d.to_string();
            }
        }
    }
}

#[test]
fn live_events_push_new_figures_and_end_when_the_server_stops() {
    let (app, _tmp) = App::start("UTC", "");
    let mut s = TcpStream::connect(app.http).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let first = next_meters_event(&mut r);
    assert!(first.contains("\"total_liters\":0.0"), "{first}");
    app.send_udp("water,meter=main liters=7");
    let pushed: serde_json::Value = serde_json::from_str(&next_meters_event(&mut r)).unwrap();
    assert_eq!(pushed["meters"][0]["id"], "main");
    assert_eq!(pushed["meters"][0]["total_liters"], 7.0);
    assert_eq!(pushed["meters"][0]["today_liters"], 7.0);
    assert!(app.stop().success());
    let mut rest = String::new();
    let _ = r.read_to_string(&mut rest);
    assert!(!rest.contains("event: meters"), "{rest}");
}

#[test]
fn an_unknown_page_is_the_styled_404_and_an_unknown_endpoint_answers_json() {
    let (app, _tmp) = App::start("UTC", "");
    for path in ["/nope", "/meters/nope", "/settings/x/y"] {
        let a = get(&app.url(path));
        assert_eq!(a.status, 404, "{path}");
        assert!(a.body.contains("<h1>Not found</h1>"), "{path}: {}", a.body);
        assert!(
            a.body.contains("<link rel=\"stylesheet\""),
            "{path}: styled like every page"
        );
    }
    let a = get(&app.url("/api/v1/nope"));
    assert_eq!(a.status, 404);
    let json: serde_json::Value = serde_json::from_str(&a.body).expect("JSON");
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("/api/v1/nope")),
        "{json}"
    );
}

/// A sender with a typo (`meter=mian`) is refused; the dashboard says so, with
/// the line and what to check, instead of only "no water used".
#[test]
fn a_mistyped_sender_is_named_on_the_dashboard() {
    let (app, _tmp) = App::start("UTC", "");
    let page = get(&app.url("/")).body;
    assert!(!page.contains("Refused at"), "nothing refused yet");
    let a = post(&app.url("/write"), "water,meter=mian liters=1\n");
    assert_eq!(a.status, 400, "{}", a.body);
    let page = get(&app.url("/")).body;
    assert!(page.contains("Refused at"), "{page}");
    assert!(
        page.contains("meter=mian") && page.contains("check the sender"),
        "{page}"
    );
}
