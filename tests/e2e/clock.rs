//! A Pi has no real-time clock: it boots with the time of its last shutdown and NTP
//! steps the clock later. Pulses and datagrams without a timestamp that arrive
//! before the sync must land at their true time; counting does not wait for it.
//! The binary's test clock (`WATERMETER_TEST_CLOCK_DIR`) plays a clock three days
//! behind, then the sync.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{config_text, get_json, post, App};

const THREE_DAYS_MS: i64 = 3 * 86_400_000;

struct Clock {
    dir: std::path::PathBuf,
}

impl Clock {
    /// Not synchronised, and three days behind.
    fn stale(tmp: &Path) -> Clock {
        let dir = tmp.join("clock");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("offset_ms"), (-THREE_DAYS_MS).to_string()).unwrap();
        Clock { dir }
    }

    /// NTP steps the clock to the true time and timesyncd sets its flag.
    fn sync(&self) {
        std::fs::write(self.dir.join("offset_ms"), "0").unwrap();
        std::fs::write(self.dir.join("synchronized"), "").unwrap();
    }
}

fn start(tmp: &Path, clock: &Clock, boot: &str) -> App {
    let config = tmp.join("config.toml");
    let meters = "[[meter]]\nid = \"main\"\nname = \"House\"\n\
                  [[meter]]\nid = \"gpio\"\nname = \"S0\"\n[meter.gpio]\npin = 17\n";
    std::fs::write(&config, config_text(&tmp.join("data"), "UTC", meters)).unwrap();
    let boot_file = tmp.join("boot_id");
    std::fs::write(&boot_file, boot).unwrap();
    let gpio = format!("300:{}", tmp.join("pulses").display());
    App::spawn_with_env(
        &config,
        tmp,
        &[
            ("WATERMETER_TEST_CLOCK_DIR", clock.dir.as_os_str()),
            ("WATERMETER_BOOT_ID_FILE", boot_file.as_os_str()),
            ("WATERMETER_TEST_GPIO", gpio.as_ref()),
        ],
    )
}

fn rfc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Liters of `meter` in `[from, to)` (whole hours around them).
fn liters(app: &App, meter: &str, from_ms: i64, to_ms: i64) -> f64 {
    get_json(&app.url(&format!(
        "/api/v1/meters/{meter}/usage?from={}&to={}&step=hour",
        rfc(from_ms),
        rfc(to_ms)
    )))["total_liters"]
        .as_f64()
        .unwrap()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn liters_counted_before_the_clock_is_synchronised_land_at_their_true_time() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Clock::stale(tmp.path());
    let app = start(tmp.path(), &clock, "boot-1");
    for _ in 0..5 {
        app.send_udp("water,meter=main liters=1");
    }
    let a = post(
        &app.url("/write?db=w"),
        "water,meter=main liters=1\nwater,meter=main liters=2",
    );
    assert_eq!(a.status, 204, "{}", a.body);
    std::thread::sleep(Duration::from_millis(1_500));
    // Nothing is placed at the wrong time while the clock is not synchronised.
    assert_eq!(app.total_liters("main"), 0.0);
    assert_eq!(app.total_liters("gpio"), 0.0);
    // A crash before the sync (same boot) keeps what waits.
    app.kill();
    let app = start(tmp.path(), &clock, "boot-1");
    app.send_udp("water,meter=main liters=1");
    std::thread::sleep(Duration::from_millis(700));

    let synced_at = chrono::Utc::now().timestamp_millis();
    clock.sync();
    wait_for("the waiting liters", || app.total_liters("main") == 9.0);
    let now = chrono::Utc::now().timestamp_millis();
    let hour = 3_600_000;
    assert_eq!(
        liters(&app, "main", synced_at - hour, now + hour),
        9.0,
        "at the true time"
    );
    assert_eq!(
        liters(
            &app,
            "main",
            synced_at - THREE_DAYS_MS - hour,
            synced_at - THREE_DAYS_MS + hour
        ),
        0.0,
        "not at the stale clock's time"
    );
    let last = app.meter_json("main")["last_event"]
        .as_str()
        .unwrap()
        .to_string();
    let last = chrono::DateTime::parse_from_rfc3339(&last)
        .unwrap()
        .timestamp_millis();
    assert!(
        (last - synced_at).abs() < 60_000,
        "the last event is now: {last} vs {synced_at}"
    );
    // The S0 pulses counted from the start land in this hour too.
    wait_for("the S0 pulses", || app.total_liters("gpio") >= 8.0);
    let gpio = app.total_liters("gpio");
    assert_eq!(liters(&app, "gpio", synced_at - hour, now + hour), gpio);
}

#[test]
fn liters_waiting_for_the_clock_survive_a_power_cut_placed_by_the_clock_of_then() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Clock::stale(tmp.path());
    let app = start(tmp.path(), &clock, "boot-1");
    for _ in 0..4 {
        app.send_udp("water,meter=main liters=1");
    }
    std::thread::sleep(Duration::from_millis(1_500));
    let stale_now = chrono::Utc::now().timestamp_millis() - THREE_DAYS_MS;
    app.kill();
    // The machine restarts (a new boot), and the clock is still not synchronised:
    // the monotonic times of the last boot mean nothing now, so they are placed by
    // the clock as it read when they arrived.
    let app = start(tmp.path(), &clock, "boot-2");
    assert_eq!(app.total_liters("main"), 4.0, "kept, not lost");
    let hour = 3_600_000;
    assert_eq!(
        liters(&app, "main", stale_now - hour, stale_now + hour),
        4.0
    );
}
