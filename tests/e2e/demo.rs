//! `watermeter demo`, the README's first command: a filled dashboard at once, and
//! no clash with a real install on the same machine (its ports are taken).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::eventually;
use crate::util::{get, get_json, BIN};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn the_demo_fills_the_dashboard_and_moves_off_ports_already_taken() {
    // Hold the defaults (or find them held by something else already): either way
    // they are taken, as by a real watermeter on this machine.
    let _http = std::net::TcpListener::bind("127.0.0.1:8080");
    let _udp = std::net::UdpSocket::bind("127.0.0.1:8089");
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["demo", "--data-dir"])
        .arg(tmp.path().join("demo"))
        .env("WATERMETER_LOG", "warn")
        // The zone the demo's days (and its drip) follow.
        .env("TZ", "Europe/Berlin")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the demo");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut http, mut udp, mut filled) = (None, None, false);
    let deadline = Instant::now() + Duration::from_secs(120);
    while http.is_none() || udp.is_none() || !filled {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("the demo announces itself");
        if let Some(a) = line.strip_prefix("watermeter: dashboard at http://") {
            http = Some(a.trim_end_matches('/').to_string());
        }
        if let Some(a) = line.strip_prefix("watermeter: line protocol over UDP on ") {
            udp = Some(a.to_string());
        }
        filled |= line.contains("demo back-filled");
    }
    let (http, udp) = (http.unwrap(), udp.unwrap());
    assert!(!http.ends_with(":8080"), "{http}");
    assert!(!udp.ends_with(":8089"), "{udp}");
    let meter = get_json(&format!("http://{http}/api/v1/meters/main"));
    assert!(meter["total_liters"].as_f64().unwrap() > 1_000.0, "{meter}");

    // A new user sees a leak at once: the alert fires, the banner is on every
    // page, the alerts part shows what the notification says (no mail server),
    // and the draw log holds the leak as one draw.
    let leak = eventually(WAIT, || {
        let alerts = get_json(&format!("http://{http}/api/v1/alerts"));
        alerts["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["name"] == "Leak" && a["state"] == "firing")
            .cloned()
    })
    .expect("the demo's leak alert fires");
    assert_eq!(leak["kind"], "leak");
    let page = get(&format!("http://{http}/")).body;
    assert!(page.contains("Firing: Leak"), "{page}");
    assert!(page.contains("what the notification says"), "{page}");
    // The banner and the waiting notification say the finding: which leak,
    // since when, how fast, how much so far.
    assert!(
        page.contains("Firing: Leak</strong> — Running toilet or stuck valve since"),
        "{page}"
    );
    assert!(
        page.contains("leak: Running toilet or stuck valve since") && page.contains(" L so far"),
        "{page}"
    );
    // The weekly budget is a bar; the comparisons and liters per person are there.
    assert!(
        page.contains("<meter") && page.contains("L of 3,000 L this week"),
        "{page}"
    );
    assert!(
        page.contains("This week:") && page.contains("a day per person"),
        "{page}"
    );
    // The leak began before the start, maybe yesterday: ask from two hours ago.
    let from = (chrono::Utc::now() - chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let draws = get_json(&format!(
        "http://{http}/api/v1/meters/main/draws?from={from}"
    ));
    let leaks = draws["draws"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "leak")
        .count();
    assert!(leaks >= 1, "{draws}");
    // The drip in the history (2 L/h, 01:00 to 11:00 two days ago) is one leak
    // episode with about its 20 liters, the family's use on top of it apart.
    let zone: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    let first = watermeter::demo::drip_start(zone, chrono::Utc::now().timestamp_millis());
    let at = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let draws = get_json(&format!(
        "http://{http}/api/v1/meters/main/draws?from={}&to={}",
        at(first - 3_600_000),
        at(first + 12 * 3_600_000)
    ));
    let drips: Vec<&serde_json::Value> = draws["draws"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "leak")
        .collect();
    assert_eq!(drips.len(), 1, "{draws}");
    let liters = drips[0]["liters"].as_f64().unwrap();
    assert!((17.0..=23.0).contains(&liters), "{draws}");
    let _ = child.kill();
    let _ = child.wait();
}
