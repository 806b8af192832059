//! What a hostile client on the LAN (or a web page in the owner's browser) can
//! send, against the real binary: future-dated telegrams, cross-site posts, deep
//! and huge queries, corrections over centuries, a heavy day read by many at
//! once. After each: the process is alive, `/healthz` answers, its resident set
//! stays below 100 MB, and the stored total is what was acknowledged.

use std::time::{Duration, Instant};

use crate::util::{get, post, post_json, urlencode, App, MAIN_METER};

const WMBUS_METER: &str = "[[meter]]\nid = \"main\"\nname = \"House\"\n[[meter]]\nid = \"radio\"\n[meter.wmbus]\nid = \"33225544\"\n";

fn rss_mb(app: &App) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", app.child.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// Alive, healthy within 1 s (one of three tries, for a loaded test machine),
/// and below 100 MB.
fn still_well(app: &mut App, after: &str) {
    assert!(
        app.child.try_wait().unwrap().is_none(),
        "the process died after {after}"
    );
    let quick = (0..3).any(|_| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(1)))
            .build()
            .new_agent()
            .get(&app.url("/healthz"))
            .call()
            .is_ok_and(|r| r.status() == 200)
    });
    assert!(
        quick,
        "/healthz did not answer 200 within 1 s after {after}"
    );
    let rss = rss_mb(app);
    assert!(rss < 100, "{rss} MB resident after {after}");
}

fn query(app: &App, q: &str) -> crate::util::Answer {
    let body = format!("q={}", urlencode(q));
    let url = app.url("/query");
    let r = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .new_agent()
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(&body)
        .unwrap();
    let status = r.status().as_u16();
    let mut r = r;
    crate::util::Answer {
        status,
        body: r.body_mut().read_to_string().unwrap_or_default(),
        headers: Vec::new(),
    }
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn future_and_ancient_telegrams_are_refused_and_later_readings_count() {
    let (mut app, _tmp) = App::start("UTC", WMBUS_METER);
    let hook = app.url("/api/v1/ingest/wmbusmeters");
    let telegram =
        |m3: f64, ts: &str| format!(r#"{{"id":"33225544","total_m3":{m3},"timestamp":"{ts}"}}"#);
    let now = chrono::Utc::now();
    let at = |minutes: i64| (now + chrono::Duration::minutes(minutes)).to_rfc3339();
    let first = post_json(&hook, &telegram(100.0, &at(-10)));
    assert_eq!(first.status, 204, "{}", first.body);
    for ts in ["2099-01-01T00:00:00Z", "1990-01-01T00:00:00Z"] {
        let a = post_json(&hook, &telegram(100.02, ts));
        assert_eq!(a.status, 400, "{ts}: {}", a.body);
        assert!(
            a.body.contains("2000") || a.body.contains("ahead"),
            "{ts}: {}",
            a.body
        );
    }
    let later = post_json(&hook, &telegram(100.030, &at(0)));
    assert_eq!(later.status, 204, "{}", later.body);
    assert_eq!(app.total_liters("radio"), 30.0, "the later reading counts");
    let metrics = get(&app.url("/metrics")).body;
    assert!(
        metrics.lines().any(|l| l.contains("rejected")
            && (l.contains("in_the_future") || l.contains("implausible"))
            && !l.ends_with(" 0")),
        "the refusal is counted:\n{metrics}"
    );
    still_well(&mut app, "future-dated telegrams");
}

#[test]
fn a_web_page_cannot_write_and_scripts_still_can() {
    let (mut app, _tmp) = App::start("UTC", MAIN_METER);
    let start = now_s() - 3_600;
    let a = post(
        &app.url("/write?precision=s"),
        &crate::util::points(start, 10),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let delete = r#"{"from":"2001-01-01T00:00:00Z","to":"2026-01-01T00:00:00Z","action":"delete","reason":"evil"}"#;
    let corrections = app.url("/api/v1/meters/main/corrections");
    let evil = agent
        .post(&corrections)
        .header("Origin", "http://evil.example")
        .header("Content-Type", "text/plain")
        .send(delete)
        .unwrap();
    assert_eq!(evil.status(), 403);
    let fetch_meta = agent
        .post(&app.url("/api/v1/away"))
        .header("Sec-Fetch-Site", "cross-site")
        .header("Content-Type", "application/json")
        .send(r#"{"on":true}"#)
        .unwrap();
    assert_eq!(fetch_meta.status(), 403);
    let plain = agent
        .post(&corrections)
        .header("Content-Type", "text/plain")
        .send(delete)
        .unwrap();
    assert_eq!(plain.status(), 415, "JSON endpoints want JSON");
    let form = agent
        .post(&app.url("/away"))
        .header("Origin", "http://evil.example")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send("on=1")
        .unwrap();
    assert_eq!(form.status(), 403);
    assert_eq!(app.total_liters("main"), 10.0, "nothing was deleted");
    // curl, Telegraf and the influx CLI send no Origin: unchanged.
    let a = post(
        &app.url("/write?precision=s"),
        &crate::util::points(start + 10, 5),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    let away = post_json(&app.url("/api/v1/away"), r#"{"on":false}"#);
    assert_eq!(away.status, 200, "{}", away.body);
    assert_eq!(app.total_liters("main"), 15.0);
    still_well(&mut app, "cross-site posts");
}

#[test]
fn deep_long_and_huge_queries_are_refused_and_the_process_lives() {
    let (mut app, _tmp) = App::start("UTC", MAIN_METER);
    let start = now_s() - 3 * 86_400;
    let a = post(
        &app.url("/write?precision=s"),
        &crate::util::points(start, 2_000),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    let deep = format!(
        "SELECT sum(\"liters\") FROM \"water\" WHERE {}time > now() - 1d{}",
        "(".repeat(3_000),
        ")".repeat(3_000)
    );
    let a = query(&app, &deep);
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("nested too deeply"), "{}", a.body);
    still_well(&mut app, "3,000 parentheses");

    let chain = format!(
        "SELECT sum(\"liters\") FROM \"water\" WHERE time > now() - 1d{}",
        " AND \"meter\" = 'main'".repeat(100_000)
    );
    let a = query(&app, &chain);
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("nested too deeply"), "{}", a.body);
    still_well(&mut app, "a 100,000-term AND");

    let ten_years =
        "SELECT sum(\"liters\") FROM \"water\" WHERE time > now() - 3650d GROUP BY time(30m)";
    let many = vec![ten_years; 100].join(";");
    let a = query(&app, &many);
    assert!(a.status == 200 || a.status == 413, "{}", a.status);
    assert!(a.body.len() < 20 << 20, "{} bytes", a.body.len());
    assert!(
        a.body.contains("too many buckets"),
        "{}",
        &a.body[..a.body.len().min(500)]
    );
    still_well(&mut app, "100 ten-year statements");

    let statements = vec!["SHOW MEASUREMENTS"; 100_000].join(";");
    let a = query(&app, &statements);
    assert_eq!(a.status, 400, "{}", &a.body[..a.body.len().min(300)]);
    assert!(a.body.contains("statements"), "{}", a.body);
    still_well(&mut app, "100,000 statements");

    // The small wrong answers: a sum over all time, and 1u.
    let all = query(&app, "SELECT sum(\"liters\") FROM \"water\"");
    assert_eq!(all.status, 200, "{}", all.body);
    assert!(all.body.contains(",2000"), "{}", all.body);
    let tiny = query(
        &app,
        "SELECT sum(\"liters\") FROM \"water\" WHERE time > now() - 1h GROUP BY time(1u)",
    );
    assert!(
        tiny.body.contains("below the 1 ms resolution"),
        "{}",
        tiny.body
    );
    assert_eq!(app.total_liters("main"), 2_000.0);
}

#[test]
fn corrections_outside_2000_to_now_are_refused_and_a_long_one_leaves_writes_going() {
    let (mut app, _tmp) = App::start("UTC", MAIN_METER);
    let start = now_s() - 2 * 86_400;
    let a = post(
        &app.url("/write?precision=s"),
        &crate::util::points(start, 1_000),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    let corrections = app.url("/api/v1/meters/main/corrections");
    for (from, to) in [
        ("1970-01-01T00:00:00Z", "2400-01-01T00:00:00Z"),
        ("1970-01-01T00:00:00Z", "9999-01-01T00:00:00Z"),
        ("2010-01-01T00:00:00Z", "2099-01-01T00:00:00Z"),
    ] {
        let body = format!(
            r#"{{"from":"{from}","to":"{to}","action":"set_liters","liters":5,"reason":"r"}}"#
        );
        let a = post_json(&corrections, &body);
        assert_eq!(a.status, 400, "{from}..{to}: {}", a.body);
    }
    assert_eq!(app.total_liters("main"), 1_000.0);
    // Ten years, set to 5 L: written while a sender keeps writing.
    let ten_years_ago = chrono::Utc::now() - chrono::Duration::days(3_650);
    let body = format!(
        r#"{{"from":"{}","to":"{}","action":"set_liters","liters":5,"reason":"r"}}"#,
        ten_years_ago.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        chrono::DateTime::from_timestamp(start as i64 + 500, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let url = corrections.clone();
    let correcting = std::thread::spawn(move || post_json(&url, &body));
    let a = post(
        &app.url("/write?precision=s"),
        &crate::util::points(start + 5_000, 10),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    let c = correcting.join().unwrap();
    assert_eq!(c.status, 201, "{}", c.body);
    // 500 of the first 1,000 L became 5 L; the 10 written beside it count.
    assert_eq!(app.total_liters("main"), 515.0);
    still_well(&mut app, "a ten-year correction");
    let app = app.restart();
    assert_eq!(app.total_liters("main"), 515.0);
}

#[test]
fn a_heavy_day_read_by_many_at_once_never_holds_up_writes_or_health() {
    let (mut app, _tmp) = App::start("UTC", MAIN_METER);
    // 300,000 events in one day, in batches of 100,000 lines (the most one
    // request may hold: exactly that many is accepted).
    // Today's, so that the dashboard reads it: from midnight (or an hour ago,
    // just after midnight) to a minute ago.
    let first_ms = (now_s() - now_s() % 86_400).min(now_s() - 3_600) * 1000;
    let step_ms = (now_s() * 1000 - 60_000 - first_ms) as f64 / 300_000.0;
    for batch in 0..3u64 {
        let mut body = String::with_capacity(100_000 * 40);
        for i in 0..100_000u64 {
            let ms = ((batch * 100_000 + i) as f64 * step_ms) as u64;
            body.push_str(&format!("water,meter=main liters=0.1 {}\n", first_ms + ms));
        }
        let a = post(&app.url("/write?precision=ms"), &body);
        assert_eq!(a.status, 204, "{}", a.body);
    }
    // Many pages and worst-case queries at once, while a sender writes.
    let worst =
        "SELECT max(\"liters\") FROM \"water\" WHERE time > now() - 3650d GROUP BY time(1h)";
    let mut readers = Vec::new();
    for i in 0..24 {
        let url = if i % 3 == 0 {
            app.url("/")
        } else {
            format!("{}?q={}", app.url("/query"), urlencode(worst))
        };
        readers.push(std::thread::spawn(move || {
            crate::util::try_get(&url).map(|a| (a.status, a.headers))
        }));
    }
    let mut written = 0.0;
    let began = Instant::now();
    while readers.iter().any(|r| !r.is_finished()) && began.elapsed() < Duration::from_secs(60) {
        let a = post(&app.url("/write"), "water,meter=main liters=1\n");
        assert_eq!(a.status, 204, "{}", a.body);
        written += 1.0;
        still_well(&mut app, "reads of a heavy day");
    }
    let mut busy = 0;
    for r in readers {
        let (status, headers) = r.join().unwrap().expect("every reader got an answer");
        assert!(
            [200, 413, 503].contains(&status),
            "a heavy read answered {status}"
        );
        if status == 503 {
            busy += 1;
            assert!(
                headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("retry-after")),
                "a 503 says when to retry"
            );
        }
    }
    eprintln!("{busy} of 24 heavy reads were told to retry; {written} L written meanwhile");
    assert_eq!(app.total_liters("main"), 30_000.0 + written);
    // SIGTERM while reads run: out within 5 s.
    let mut readers = Vec::new();
    for _ in 0..4 {
        let url = format!("{}?q={}", app.url("/query"), urlencode(worst));
        readers.push(std::thread::spawn(move || crate::util::try_get(&url)));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = app.child.id().to_string();
    let asked = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = app.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "SIGTERM took {:?}",
        asked.elapsed()
    );
    for r in readers {
        let _ = r.join();
    }
}
