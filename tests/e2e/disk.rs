//! A full or read-only disk: writes fail with 503, `/healthz` turns 503, nothing
//! unacknowledged is counted as stored, the process keeps running and recovers
//! when the disk takes writes again. The data directory is a small tmpfs mounted
//! for the test: this needs root, as `./test.sh` and CI run; without it the tests
//! fail and say so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{config_text, get, points, post, serve_refused, App, MAIN_METER};

/// A tmpfs of `mb` megabytes mounted on `dir`, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn new(dir: &Path, mb: u32) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert!(
            euid == 0,
            "the disk tests mount a small file system, which needs root: run ./test.sh as root (as CI does)"
        );
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs on {} failed", dir.display());
        Mount(dir.to_path_buf())
    }

    fn remount(&self, mode: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {mode}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn start_on(mount_dir: &Path, tmp: &Path) -> App {
    let config = tmp.join("config.toml");
    std::fs::write(&config, config_text(mount_dir, "UTC", MAIN_METER)).unwrap();
    App::start_with(&config, tmp)
}

fn wait_health(app: &App, status: u16) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = get(&app.url("/healthz")).status;
        if s == status || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Posts batches until one is refused; returns (points acknowledged, points sent).
fn write_until_refused(app: &App, first_s: u64) -> (u64, u64) {
    let (mut acked, mut sent) = (0, 0);
    for i in 0..200 {
        let a = post(
            &app.url("/write?precision=s"),
            &points(first_s + i * 5_000, 5_000),
        );
        sent += 5_000;
        match a.status {
            204 => acked += 5_000,
            503 => return (acked, sent),
            other => panic!("a write on a full disk answered {other}: {}", a.body),
        }
    }
    panic!("the disk never filled up");
}

#[test]
fn a_full_disk_refuses_writes_with_503_and_recovers_when_space_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let _mount = Mount::new(&data, 8);
    let app = start_on(&data, tmp.path());
    let a = post(&app.url("/write?precision=s"), &points(1_600_000_000, 100));
    assert_eq!(a.status, 204, "{}", a.body);
    // Fill what is left, then write until the store runs out of room.
    let filler = data.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    let (acked, sent) = write_until_refused(&app, 1_700_000_000);
    assert_eq!(wait_health(&app, 503), 503);
    // Reads go on; the process is alive.
    let meter = get(&app.url("/api/v1/meters/main"));
    assert_eq!(meter.status, 200, "{}", meter.body);
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(wait_health(&app, 200), 200);
    let a = post(&app.url("/write?precision=s"), &points(1_750_000_000, 100));
    assert_eq!(a.status, 204, "{}", a.body);
    let total = app.total_liters("main");
    let acked = (100 + acked + 100) as f64;
    assert!(
        total >= acked && total <= acked + (sent as f64),
        "{total} L stored, {acked} acknowledged"
    );
    // Everything counted is on disk.
    let app = app.restart();
    assert_eq!(app.total_liters("main"), total);
}

/// A file system cannot be remounted read-only under open files (EBUSY), so the
/// running case is the full disk above; here the disk is read-only at start.
#[test]
fn a_store_on_a_read_only_disk_refuses_to_start_with_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mount = Mount::new(&data, 16);
    let app = start_on(&data, tmp.path());
    let a = post(&app.url("/write?precision=s"), &points(1_600_000_000, 100));
    assert_eq!(a.status, 204, "{}", a.body);
    assert!(app.stop().success());
    mount.remount("ro");
    let (code, err) = serve_refused(&tmp.path().join("config.toml"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&data.display().to_string()), "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    mount.remount("rw");
    let app = start_on(&data, tmp.path());
    assert_eq!(app.total_liters("main"), 100.0);
}
