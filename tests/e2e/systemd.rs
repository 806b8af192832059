//! The systemd notify protocol as the unit uses it (`Type=notify`, `WatchdogSec=`),
//! with the test playing systemd: a Unix datagram socket in `$NOTIFY_SOCKET`.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use crate::util::{config_text, get, App, MAIN_METER};

/// The next message systemd would receive, or `None` after `timeout`.
fn next_message(socket: &UnixDatagram, timeout: Duration) -> Option<String> {
    socket.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Starts the app as systemd would with `WatchdogSec=1s` and `env` on top; returns
/// it with systemd's end of `$NOTIFY_SOCKET`.
fn start_under_systemd(env: &[(&str, &str)]) -> (App, UnixDatagram, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let notify_path = tmp.path().join("notify");
    let systemd = UnixDatagram::bind(&notify_path).unwrap();
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        config_text(&tmp.path().join("data"), "UTC", MAIN_METER),
    )
    .unwrap();
    let mut vars = vec![
        ("NOTIFY_SOCKET", notify_path.as_os_str()),
        ("WATCHDOG_USEC", "1000000".as_ref()),
    ];
    vars.extend(env.iter().map(|(k, v)| (*k, v.as_ref())));
    let app = App::spawn_with_env(&config, tmp.path(), &vars);
    (app, systemd, tmp)
}

#[test]
fn ready_after_listening_then_watchdog_pings_then_stopping() {
    let (app, systemd, _tmp) = start_under_systemd(&[]);
    let ready = next_message(&systemd, Duration::from_secs(30)).expect("READY=1");
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(
        ready.contains(&format!("STATUS=dashboard on {}", app.http)),
        "{ready:?}"
    );
    // Ready means listening: the dashboard answers.
    assert_eq!(get(&app.url("/")).status, 200);

    // A 1 s watchdog is petted every half second while the store answers.
    for _ in 0..3 {
        let m = next_message(&systemd, Duration::from_secs(10)).expect("WATCHDOG=1");
        assert_eq!(m, "WATCHDOG=1");
    }

    let _ = Command::new("kill")
        .args(["-TERM", &app.child.id().to_string()])
        .status();
    let stopping = loop {
        let m = next_message(&systemd, Duration::from_secs(10)).expect("STOPPING=1");
        if m != "WATCHDOG=1" {
            break m;
        }
    };
    assert!(stopping.starts_with("STOPPING=1"), "{stopping:?}");
    assert!(app.stop().success());
}

#[test]
fn a_watchdog_meant_for_another_process_is_not_petted() {
    // WATCHDOG_PID of another process: the interval is not ours (sd_watchdog_enabled).
    let (app, systemd, _tmp) = start_under_systemd(&[("WATCHDOG_PID", "1")]);
    let ready = next_message(&systemd, Duration::from_secs(30)).expect("READY=1");
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert_eq!(next_message(&systemd, Duration::from_secs(2)), None);
    drop(app);
}
