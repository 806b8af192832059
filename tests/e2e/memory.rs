//! Memory of the real binary: sled 0.34 fills 41 histograms (21 MB) with zeros
//! at its first open although its metrics are off; the binary gives their pages
//! back (`store::sled_memory`). Measured with the process's own figures: the log
//! line that says how much went back, and its resident set after a few pages.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{config_text, get, BIN};

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn sleds_unused_metrics_give_their_memory_back() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.toml");
    let text = config_text(&tmp.path().join("data"), "UTC", crate::util::MAIN_METER);
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env(
            "WATERMETER_LOG",
            "warn,watermeter::store::sled_memory=debug",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start watermeter");
    // Both pipes are read to their end in threads: a closed pipe would stop the
    // process at its next line.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let err_tx = tx.clone();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut released, mut http) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while released.is_none() || http.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("the start's log and address");
        if let Some(rest) = line.split("gave ").nth(1) {
            released = rest.split(' ').next().and_then(|n| n.parse::<u64>().ok());
        }
        if let Some(a) = line.strip_prefix("watermeter: dashboard at ") {
            http = Some(a.trim_end_matches('/').to_string());
        }
    }
    let http = http.expect("dashboard address");
    for path in ["/", "/meters/main?range=month", "/api/v1/meters/main"] {
        assert_eq!(get(&format!("{http}{path}")).status, 200, "{path}");
    }
    let rss = rss_kb(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let released = released.expect("the log says what went back");
    assert!(
        released >= 20_000_000,
        "{released} bytes of sled's metrics given back"
    );
    // Without it the process holds more than 30 MB here; with it about 13.
    assert!(rss > 0 && rss < 25_000, "resident set {rss} kB");
}
