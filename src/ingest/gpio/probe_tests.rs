use super::*;
use crate::ingest::gpio::sim::{Pace, SimSource};
use crate::ingest::gpio::testkit::{config, ms, Timeline};

const WALL_START: i64 = 1_767_268_800_000; // 2026-01-01T12:00:00Z

/// Run gpio-test over `tl` (closed = low) until the timeline ends; output and summary.
fn probe(tl: &Timeline, tail: Duration) -> (String, TestSummary) {
    let sim = SimSource::new(
        tl.levels(Level::Low),
        Duration::from_secs(500),
        Pace::Instant { tail },
    );
    let mut out = Vec::new();
    let stop = AtomicBool::new(false);
    let summary = run_with(
        &config(),
        Box::new(sim),
        &mut out,
        &stop,
        &chrono::Utc,
        WALL_START,
    )
    .unwrap();
    (String::from_utf8(out).unwrap(), summary)
}

#[test]
fn recorded_timeline_prints_each_edge_the_pulses_and_the_summary() {
    let tl = Timeline::default()
        .close(ms(1_000))
        .open(ms(1_001)) // bounce while closing
        .close(ms(1_002))
        .open(ms(1_100))
        .pulse(ms(2_000), ms(3)) // interference
        .pulse(ms(3_000), ms(80));
    let (out, summary) = probe(&tl, ms(1_000));
    let expected = "\
gpio-test: pin 17 (BCM), pull up, edge falling (contact closed = low), kernel debounce 30 ms; a pulse counts when closed >= 20 ms, then open >= 20 ms.
Open a tap and watch the pulses; Ctrl-C to stop.
12:00:01.000  low   closed
12:00:01.001  high  opened after 1.0 ms closed: shorter than 20 ms so far
12:00:01.002  low   closed after 1.0 ms open: bounce, same pulse
12:00:01.100  high  opened after 98.0 ms closed
12:00:01.200  PULSE #1 counted: closed at 12:00:01.000, 100.0 ms long
12:00:02.000  low   closed after 900.0 ms open
12:00:02.003  high  opened after 3.0 ms closed: shorter than 20 ms so far
12:00:02.103  filtered: closed only 3.0 ms at 12:00:02.000 (shorter than 20 ms: bounce or interference)
12:00:03.000  low   closed after 997.0 ms open
12:00:03.080  high  opened after 80.0 ms closed
12:00:03.180  PULSE #2 counted: closed at 12:00:03.000, 80.0 ms long
Summary: 2 pulses counted from 8 edges; shortest pulse 80.0 ms, shortest gap 900.0 ms; 2 bounces filtered.
";
    assert_eq!(out, expected);
    assert_eq!(
        summary,
        TestSummary {
            edges: 8,
            pulses: 2,
            shortest_pulse: Some(ms(80)),
            shortest_gap: Some(ms(900)),
            bounces: 2,
            stuck: false,
        }
    );
}

#[test]
fn no_edges_at_all_says_to_check_the_wiring() {
    let (out, summary) = probe(&Timeline::default(), ms(0));
    assert_eq!(summary.edges, 0);
    assert!(
        out.ends_with(
            "Summary: 0 pulses counted from 0 edges; shortest pulse -, shortest gap -; 0 bounces filtered.\n\
             No edges at all: check the wiring, the pin number (BCM, not the header position) \
             and the pull setting; see docs/wiring.md.\n"
        ),
        "{out}"
    );
}

#[test]
fn only_interference_says_edges_but_no_pulse() {
    let tl = Timeline::default()
        .pulse(ms(1_000), ms(2))
        .pulse(ms(1_500), ms(2));
    let (out, summary) = probe(&tl, ms(500));
    assert_eq!((summary.pulses, summary.bounces), (0, 2));
    assert!(
        out.contains("Edges but no pulse: the contact never stayed closed 20 ms"),
        "{out}"
    );
}

#[test]
fn train_of_16hz_pulses_is_summarised_exactly() {
    let (_, summary) = probe(&Timeline::train_16hz(10), ms(1_000));
    assert_eq!(summary.pulses, 160);
    assert_eq!(summary.edges, 320);
    assert_eq!(summary.shortest_pulse, Some(ms(30)));
}

#[test]
fn stuck_contact_is_warned_about_once() {
    let tl = Timeline::default().pulse(ms(1_000), Duration::from_secs(3_600));
    let (out, summary) = probe(&tl, ms(1_000));
    assert!(summary.stuck);
    assert_eq!(summary.pulses, 1);
    assert_eq!(
        out.matches("warning: the contact has been closed since")
            .count(),
        1
    );
}

#[test]
fn stop_ends_the_test_and_still_prints_the_summary() {
    let tl = Timeline::train_16hz(10);
    let sim = SimSource::new(tl.levels(Level::Low), ms(0), Pace::Instant { tail: ms(0) });
    let mut out = Vec::new();
    let stop = AtomicBool::new(true);
    let summary = run_with(
        &config(),
        Box::new(sim),
        &mut out,
        &stop,
        &chrono::Utc,
        WALL_START,
    )
    .unwrap();
    assert_eq!(summary.edges, 0);
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("Summary: 0 pulses"));
}
