//! The journal's cost, measured (docs/reliability.md, "Figures"):
//! - a Pi-sized history, 10 years of one household (2 million 1-liter events, one
//!   record per pulse as live pulses are written): journal size, the time to
//!   build or rebuild the index from it, and the time of a start that only checks it;
//! - bytes written per pulse at one pulse every 2 s (a running shower), each made
//!   durable on its own, from this process's `/proc/self/io` `write_bytes`.
//!
//! `cargo run --release --example journal_bench [DIR]` (DIR on the disk to measure,
//! default a temp dir under /var/tmp).

use std::time::Instant;

use watermeter::ingest::{Sample, SampleValue};
use watermeter::store::journal::{self, Journal};
use watermeter::store::record::{self, Event, Op};
use watermeter::store::Store;

const EVENTS: i64 = 2_000_000;
const YEARS_MS: i64 = 10 * 365 * 86_400_000;

fn write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn pulse(ts_ms: i64) -> Sample {
    Sample {
        meter: 0,
        ts_ms,
        value: SampleValue::Liters(1.0),
    }
}

fn main() -> anyhow::Result<()> {
    let base = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/var/tmp"));
    let tmp = tempfile::tempdir_in(&base)?;
    let dir = tmp.path().join("data");
    let meters = vec![watermeter::config::builtin_defaults().meters[0].clone()];
    let tz = chrono_tz::Europe::Vienna;
    let open = || Store::open(&dir, 4 << 20, tz, &meters);

    // Ten years of pulses, one record each (the live shape: a pulse per batch),
    // written straight into a journal; the first start builds the index from it.
    let start_ms = 1_500_000_000_000;
    let step = YEARS_MS / EVENTS;
    std::fs::create_dir_all(&dir)?;
    {
        let (mut journal, _) = Journal::open(&dir, 1)?;
        let registry = vec![
            Op::Put {
                key: b"Gmeter/main".to_vec(),
                value: 0u16.to_be_bytes().to_vec(),
            },
            Op::Put {
                key: b"Gnext_meter".to_vec(),
                value: 1u16.to_be_bytes().to_vec(),
            },
        ];
        journal.append(&record::encode(&registry))?;
        for i in 0..EVENTS {
            let event = Event {
                meter: 0,
                ts_ms: start_ms + i * step,
                ml: 1000,
            };
            let ops = [Op::Events {
                forward: false,
                events: vec![event],
            }];
            journal.append(&record::encode(&ops))?;
        }
        if let Some((file, _)) = journal.sync_target()? {
            journal::sync_file(&file)?;
        }
    }
    let journal_bytes = std::fs::metadata(dir.join("journal"))?.len();
    println!(
        "journal of {EVENTS} events, one record each: {:.1} MB ({:.1} B per event)",
        journal_bytes as f64 / 1e6,
        journal_bytes as f64 / EVENTS as f64
    );
    let t = Instant::now();
    let store = open()?;
    println!(
        "first start, index built from the journal: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    store.close()?;
    drop(store);

    let t = Instant::now();
    let store = open()?;
    println!(
        "start after a clean close (journal checked, index trusted): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    drop(store);
    std::fs::write(dir.join("index.state"), "boot another-boot\n")?;
    let t = Instant::now();
    let store = open()?;
    let r = store.open_report().clone();
    println!(
        "rebuild of the index from the journal (after a power cut): {:.2} s, {} records, {} events",
        t.elapsed().as_secs_f64(),
        r.replayed_records,
        r.replayed_events
    );
    assert_eq!(store.total_ml(0)?, EVENTS as u64 * 1000);

    // Live ingest at full speed, one pulse per record (the writer's pattern):
    // sled 0.34 must not stall under it (see Store::flush_index_if_due).
    let t = Instant::now();
    let live = 300_000;
    let from = start_ms + YEARS_MS;
    for i in 0..live {
        store.apply(&[pulse(from + i * 1_000)])?;
        store.flush_index_if_due()?;
    }
    store.sync()?;
    println!(
        "live ingest, one pulse per record: {:.0} records/s ({live} records)",
        live as f64 / t.elapsed().as_secs_f64()
    );

    // A running shower: one pulse every 2 s, each synced on its own.
    let now = chrono::Utc::now().timestamp_millis();
    let before = write_bytes();
    let n = 300;
    for i in 0..n {
        store.apply(&[pulse(now + i * 2_000)])?;
        store.sync()?;
        store.flush_index_if_due()?;
    }
    let per = (write_bytes() - before) as f64 / n as f64;
    println!("bytes written per pulse, each pulse synced on its own: {per:.0} B ({n} pulses)");
    Ok(())
}
