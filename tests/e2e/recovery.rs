//! An index that cannot be trusted is rebuilt from the journal, loudly and without
//! losing a liter; unreadable journal records are stepped over and reported, the
//! rest kept; a torn last record is cut.

use std::path::Path;

use crate::util::{get, points, post, App};

/// Stores 50 L, restarts, stores 20 L more: 70 L in several journal records.
pub(crate) fn store_seventy_liters(app: App) -> App {
    let a = post(
        &app.url("/write?db=w&precision=s"),
        &points(1_700_000_000, 50),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    let app = app.restart();
    let a = post(
        &app.url("/write?db=w&precision=s"),
        &points(1_750_000_000, 20),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    assert_eq!(app.total_liters("main"), 70.0);
    app
}

/// Offsets of the journal's records ("WMJ1" headers).
pub(crate) fn record_starts(journal: &[u8]) -> Vec<usize> {
    journal
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"WMJ1")
        .map(|(i, _)| i)
        .collect()
}

/// Where the journal's records end, by their framing (`magic | len u32 LE | seq
/// | crc | payload`); the zeros after it are room the journal made ahead.
pub(crate) fn records_end(journal: &[u8]) -> usize {
    let mut pos = 0;
    while journal.get(pos..pos + 4) == Some(b"WMJ1") {
        let len = u32::from_le_bytes(journal[pos + 4..pos + 8].try_into().unwrap());
        pos += 20 + len as usize;
    }
    pos
}

/// Says "the machine restarted since": the index is no longer trusted unless closed cleanly.
pub(crate) fn forget_boot(data: &Path) {
    std::fs::write(data.join("index.state"), "boot an-earlier-boot\n").unwrap();
}

fn check_rebuilt(damage: impl Fn(&Path)) {
    let (app, tmp) = App::start("UTC", "");
    let app = store_seventy_liters(app);
    let config = app.config.clone();
    app.kill();
    let data = tmp.path().join("data");
    forget_boot(&data);
    damage(&data.join("index"));
    let log = tmp.path().join("log.txt");
    let app = App::start_logged(&config, tmp.path(), &log);
    assert_eq!(app.total_liters("main"), 70.0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("rebuilt the index from the journal because"),
        "{text}"
    );
    assert!(text.contains("70 L in"), "{text}");
    // New data goes on top, and a restart keeps it all.
    let a = post(
        &app.url("/write?db=w&precision=s"),
        &points(1_760_000_000, 5),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    let app = app.restart();
    assert_eq!(app.total_liters("main"), 75.0);
    assert!(
        !get(&app.url("/")).body.contains("store-restored"),
        "a rebuild loses nothing: no banner"
    );
}

#[test]
fn an_index_overwritten_with_garbage_is_rebuilt_from_the_journal() {
    check_rebuilt(|index| {
        let db = index.join("db");
        let len = std::fs::metadata(&db).unwrap().len() as usize;
        let garbage: Vec<u8> = (0..len).map(|i| (i * 7 + 13) as u8).collect();
        std::fs::write(&db, garbage).unwrap();
    });
}

#[test]
fn a_truncated_index_is_rebuilt_from_the_journal() {
    check_rebuilt(|index| {
        let db = std::fs::OpenOptions::new()
            .write(true)
            .open(index.join("db"))
            .unwrap();
        db.set_len(0).unwrap();
    });
}

#[test]
fn a_missing_index_is_rebuilt_from_the_journal() {
    check_rebuilt(|index| std::fs::remove_dir_all(index).unwrap());
}

#[test]
fn an_index_left_as_it_was_after_a_machine_restart_is_rebuilt_too() {
    // Not visibly damaged, but not closed cleanly before the machine went down:
    // sled's files may hold writes the disk never got (see docs/reliability.md).
    check_rebuilt(|_| {});
}

#[test]
fn a_torn_last_journal_record_is_cut_and_the_rest_kept() {
    let (app, tmp) = App::start("UTC", "");
    let app = store_seventy_liters(app);
    let config = app.config.clone();
    app.kill();
    // Half a record where the next one goes, as a power cut leaves it.
    let journal = tmp.path().join("data").join("journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    let end = records_end(&bytes);
    let torn = b"WMJ1\x00\x01\x00\x00partial";
    bytes[end..end + torn.len()].copy_from_slice(torn);
    std::fs::write(&journal, &bytes).unwrap();
    let log = tmp.path().join("log.txt");
    let app = App::start_logged(&config, tmp.path(), &log);
    assert_eq!(app.total_liters("main"), 70.0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("cut 15 bytes from the end of the journal"),
        "{text}"
    );
    assert_eq!(std::fs::metadata(&journal).unwrap().len() as usize, end);
}
