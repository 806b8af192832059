//! Rough parse speed of the line protocol parser on the NodeMCU-style line.
//! Run: `cargo run --release --example line_protocol_bench`. Prints lines per second;
//! nothing asserts on it (speed is measured here, never in tests).

use std::time::Instant;

use watermeter::ingest::line_protocol::parse_lines;

fn main() {
    const LINES: usize = 200_000;
    let body = "water,meter=m001 liters=1 1672556400123456789\n".repeat(LINES);
    let mut best = f64::MAX;
    for _ in 0..10 {
        let start = Instant::now();
        let mut ok = 0usize;
        for point in parse_lines(body.as_bytes()).flatten() {
            ok += usize::from(point.timestamp.is_some());
        }
        assert_eq!(ok, LINES);
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "{LINES} lines in {:.1} ms: {:.2} M lines/s (best of 10, one core)",
        best * 1e3,
        LINES as f64 / best / 1e6
    );
}
