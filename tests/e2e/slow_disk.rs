//! A disk that takes seconds to sync (an SD card under load) must not stop the
//! dashboard or the API: reads answer while an fsync hangs and a batch of new
//! pulses waits behind it. The slow disk is `slow_disk.c`, preloaded into the
//! real binary; it holds every fsync while a file exists.

use std::process::Command;
use std::time::Duration;

use crate::util::{config_text, get, App, MAIN_METER};

/// Compiles the fsync-holding library into `dir` with the C compiler that Rust
/// itself links with.
fn build_shim(dir: &std::path::Path) -> std::path::PathBuf {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/slow_disk.c");
    let out = dir.join("slow_disk.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&out)
        .arg(src)
        .arg("-ldl")
        .status()
        .expect("run cc (gcc), which Rust needs for linking anyway");
    assert!(status.success(), "compiling {src} failed");
    out
}

#[test]
fn reads_answer_while_an_fsync_hangs_and_a_batch_waits() {
    let tmp = tempfile::tempdir().unwrap();
    let shim = build_shim(tmp.path());
    let hold = tmp.path().join("hold-fsync");
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        config_text(
            &tmp.path().join("data"),
            "UTC",
            &format!("[store]\nflush_ms = 100\n{MAIN_METER}"),
        ),
    )
    .unwrap();
    let app = App::spawn_with_env(
        &config,
        tmp.path(),
        &[
            ("LD_PRELOAD", shim.as_os_str()),
            ("WATERMETER_TEST_HOLD", hold.as_os_str()),
        ],
    );
    app.send_udp("water,meter=main liters=1");
    assert_eq!(app.wait_total("main", 1.0, Duration::from_secs(10)), 1.0);
    // Let the start-up sync and the writer's own flush (100 ms after that pulse)
    // finish before the disk stalls: the writer must be idle, not stuck in a flush,
    // so that the next pulses reach the store as a batch while the disk hangs.
    assert_eq!(get(&app.url("/healthz")).status, 200);
    std::thread::sleep(Duration::from_secs(1));

    std::fs::write(&hold, "").unwrap();
    // A health check writes and flushes: its fsync now hangs.
    let health = {
        let url = app.url("/healthz");
        std::thread::spawn(move || get(&url).status)
    };
    std::thread::sleep(Duration::from_millis(500));
    // New pulses: the writer applies them as a batch during that fsync.
    for _ in 0..3 {
        app.send_udp("water,meter=main liters=1");
    }
    std::thread::sleep(Duration::from_millis(500));
    // Pages and the API still answer (util's client gives up after 30 s and then
    // prints where the server is stuck).
    let meter = get(&app.url("/api/v1/meters/main"));
    assert_eq!(meter.status, 200, "{}", meter.body);
    assert_eq!(get(&app.url("/")).status, 200);
    assert!(
        !health.is_finished(),
        "the health check's fsync should still hang while the hold file exists"
    );

    std::fs::remove_file(&hold).unwrap();
    assert_eq!(health.join().unwrap(), 200);
    assert_eq!(app.wait_total("main", 4.0, Duration::from_secs(10)), 4.0);
}
