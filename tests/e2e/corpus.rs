//! Every input the fuzzers found interesting (tests/corpus/) still goes through the
//! line protocol adapter and the config loader without a panic.

use std::path::{Path, PathBuf};

use watermeter::config;
use watermeter::ingest::line_protocol::{parse_line, Precision};
use watermeter::ingest::points::{parse_body, Matcher};
use watermeter::ingest::stats::IngestStats;

fn corpus(name: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "the {name} corpus is missing");
    files
}

#[test]
fn every_line_protocol_corpus_file_parses_without_a_panic() {
    let defaults = config::builtin_defaults();
    let matcher = Matcher::new(&defaults.meters);
    let stats = IngestStats::default();
    for path in corpus("line_protocol") {
        let data = std::fs::read(&path).unwrap();
        if let Ok(text) = std::str::from_utf8(&data) {
            for line in text.split('\n') {
                let _ = parse_line(line);
            }
        }
        let parsed = parse_body(&matcher, &data, Precision::Nanoseconds, 0, &stats, "corpus");
        let lines = data.split(|&b| b == b'\n').count();
        assert!(
            parsed.samples.len() + parsed.rejected.len() <= lines,
            "{}",
            path.display()
        );
    }
}

#[test]
fn every_config_corpus_file_loads_or_explains_without_a_panic() {
    for path in corpus("config") {
        let data = std::fs::read(&path).unwrap();
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        if let Err(e) = watermeter::alert::kinds::parse_config(
            text,
            Path::new("/nonexistent/corpus/config.toml"),
        ) {
            assert!(!e.to_string().is_empty(), "{}", path.display());
        }
    }
}

#[test]
fn every_influxql_corpus_file_parses_or_is_refused_without_a_panic() {
    for path in corpus("influxql") {
        let data = std::fs::read(&path).unwrap();
        let Ok(q) = std::str::from_utf8(&data) else {
            continue;
        };
        for s in watermeter::influxql::parse_at(q, 1_700_000_000_000) {
            if let Err(e) = s {
                assert!(!e.0.is_empty(), "{}", path.display());
            }
        }
    }
}

#[test]
fn every_wmbus_corpus_file_is_read_or_refused_without_a_panic() {
    let mut meters = config::builtin_defaults().meters;
    meters[0].wmbus_id = Some("33225544".into());
    let now = 1_700_000_000_000;
    let mut read = 0;
    for path in corpus("wmbus") {
        let data = std::fs::read(&path).unwrap();
        if let Ok((sample, _)) = watermeter::web::wmbus::read(&meters, &data, now) {
            assert!(
                sample.ts_ms <= now + watermeter::clock::AHEAD_MS,
                "{}",
                path.display()
            );
            read += 1;
        }
    }
    assert!(read > 0, "no telegram in the corpus was read");
}
