//! A damaged store is restored from the newest backup, loudly; without a backup
//! the program refuses to start instead of starting empty.

use std::path::Path;

use crate::util::{get, points, post, run_cli, serve_refused, App};

/// Stores 50 L, takes a backup, stores 20 L more and stops cleanly: the
/// backup holds 50 L, the watermark 70 L.
pub(crate) fn store_back_up_and_add(app: App) -> App {
    let a = post(
        &app.url("/write?db=w&precision=s"),
        &points(1_700_000_000, 50),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    let (config, dir) = (app.config.clone(), app.dir.clone());
    assert!(app.stop().success());
    let cfg = config.to_str().unwrap();
    let (code, out, err) = run_cli(&["backup", "--config", cfg]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("backup written to"), "{out}");
    let app = App::start_with(&config, &dir);
    let a = post(
        &app.url("/write?db=w&precision=s"),
        &points(1_800_000_000, 20),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    assert_eq!(app.total_liters("main"), 70.0);
    app
}

fn check_restored(damage: impl Fn(&Path)) {
    let (app, tmp) = App::start("UTC", "");
    let app = store_back_up_and_add(app);
    let config = app.config.clone();
    assert!(app.stop().success());
    let data = tmp.path().join("data");
    damage(&data);
    let log = tmp.path().join("log.txt");
    let app = App::start_logged(&config, tmp.path(), &log);
    assert_eq!(app.total_liters("main"), 50.0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("ERROR"), "{text}");
    assert!(text.contains("restored from the backup"), "{text}");
    assert!(text.contains("may be missing"), "{text}");
    assert!(
        text.contains("at least 20 L are known to be missing"),
        "{text}"
    );
    let metrics = get(&app.url("/metrics")).body;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("watermeter_store_recovered_timestamp_seconds "))
        .expect("recovery gauge");
    assert_ne!(line, "watermeter_store_recovered_timestamp_seconds 0");
    let damaged = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("store.damaged-")
        });
    assert!(damaged, "the damaged files were moved aside");
    // New data goes on top, and a restart keeps it all (no second recovery).
    let a = post(
        &app.url("/write?db=w&precision=s"),
        &points(1_900_000_000, 5),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    let app = app.restart();
    assert_eq!(app.total_liters("main"), 55.0);
}

#[test]
fn a_store_overwritten_with_garbage_is_restored_from_the_backup() {
    check_restored(|data| {
        let db = data.join("db");
        let len = std::fs::metadata(&db).unwrap().len() as usize;
        let garbage: Vec<u8> = (0..len).map(|i| (i * 7 + 13) as u8).collect();
        std::fs::write(&db, garbage).unwrap();
    });
}

#[test]
fn a_truncated_store_is_restored_from_the_backup() {
    check_restored(|data| {
        let db = std::fs::OpenOptions::new()
            .write(true)
            .open(data.join("db"))
            .unwrap();
        db.set_len(0).unwrap();
    });
}

/// sled 0.34 opens such a store without an error and with an empty history:
/// only the watermark shows that history was lost.
#[test]
fn a_store_whose_log_sled_silently_drops_is_restored_from_the_backup() {
    check_restored(|data| {
        let path = data.join("db");
        let mut bytes = std::fs::read(&path).unwrap();
        let end = bytes.len().min(8192);
        bytes[300..end].fill(0);
        std::fs::write(&path, bytes).unwrap();
        for e in std::fs::read_dir(data).unwrap() {
            let p = e.unwrap().path();
            if p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("snap.")
            {
                std::fs::remove_file(p).unwrap();
            }
        }
    });
}

#[test]
fn a_damaged_store_without_a_backup_refuses_to_start_and_says_how_to_proceed() {
    let (app, tmp) = App::start("UTC", "");
    let a = post(
        &app.url("/write?db=w&precision=s"),
        &points(1_700_000_000, 10),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    let config = app.config.clone();
    assert!(app.stop().success());
    let data = tmp.path().join("data");
    for e in std::fs::read_dir(data.join("backups")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "lp") {
            std::fs::remove_file(p).unwrap();
        }
    }
    std::fs::write(data.join("db"), b"").unwrap();
    let (code, err) = serve_refused(&config);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is damaged"), "{err}");
    assert!(err.contains("no backup"), "{err}");
    assert!(err.contains("aside by hand"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}
